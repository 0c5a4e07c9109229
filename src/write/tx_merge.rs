//! A merge inside a write transaction (SPEC §2, docs/identity.md): after
//! it every answer equals that of a store where all of `from`'s events had
//! always been recorded under `into`.
//!
//! Composed from two paths that are exact on their own: `from` leaves every
//! aggregate as an erasure would take it out, and its events are recorded
//! again under `into` through the transaction's record path (exact for late,
//! duplicate and out-of-order events). `from`'s name becomes an alias of
//! `into`. A `from` with no events yet (an identify call that arrives before
//! the device's buffered events) becomes an alias and nothing moves: its
//! later events go to `into`, which is what the oracle asks.

use super::tx::{Core, Merged};
use crate::codec;
use crate::error::{Error, InputError, MergeError, Problem, Result, TxError};
use crate::keys::meta;
use crate::ledger::{TransferPlan, TransferReport};
use crate::metrics::forget::ErasedEvent;
use crate::store::Cf;
use crate::timeline::{RecordOutcome, MAX_BATCH_EVENTS};
use crate::users::{self, MergeOptions, MergeOutcome, NameEntry};
use crate::{ledger, metrics, profiles, timeline};

use super::social::Leaving;

impl Core<'_, '_> {
    pub(super) fn merge_inner(
        &mut self,
        from: &str,
        into: &str,
        merge_id: &str,
        options: MergeOptions,
    ) -> Result<MergeOutcome> {
        users::check_user(from).map_err(|p| InputError::new("from", p))?;
        users::check_user(into).map_err(|p| InputError::new("into", p))?;
        users::check_merge_id(merge_id)?;
        // Merges and erasures rewrite shared records (the alias index, the
        // id floor): one at a time, under the merge lock.
        if !self.plan.merge || !self.holds(from) || !self.holds(into) {
            self.plan.merge = true;
            self.plan.names.insert(from.to_owned());
            self.plan.names.insert(into.to_owned());
            return self.start_over();
        }
        if self.merged.is_some() {
            return Err(TxError::SecondMerge.into());
        }
        if let Some(done) = self
            .w
            .store
            .get::<MergeOutcome>(Cf::Meta, &meta::merge(merge_id))?
        {
            return self.w.merge_replay(done, from, into);
        }
        if from == into {
            return Err(MergeError::SelfMerge {
                user: from.to_owned(),
            }
            .into());
        }
        let (from_id, into_id, into_name) = self.resolve_pair(from, into)?;
        // (its reads are of the store: a user this transaction used already,
        // by any of its names, would be read without those changes)
        let used = |id: Option<u32>| id.is_some_and(|id| self.users.uses(id));
        if self.users.in_write(from) || self.users.in_write(into) || used(from_id) || used(into_id)
        {
            return Err(TxError::MergeNotFirst {
                from: from.to_owned(),
                into: into.to_owned(),
            }
            .into());
        }
        // A name not seen yet becomes an alias (or a user) only in its own
        // partition (SPEC §7): elsewhere it lives in another store, and a
        // handover moves it.
        let partition = self.w.allocator.partition;
        for (name, id) in [(from, from_id), (into_name.as_str(), into_id)] {
            if id.is_some() {
                continue;
            }
            if !partition.owns(name) {
                return Err(Error::UnknownUser {
                    user: name.to_owned(),
                });
            }
            // (a name handed over to another partition is not new: it is
            // the user it was merged into there)
            if partition.count > 1 {
                if let Some(into) = self.w.store.get::<String>(Cf::Meta, &meta::moved(name))? {
                    let field = if name == from { "from" } else { "into" };
                    return Err(InputError::new(field, Problem::Moved { into }).into());
                }
            }
        }
        let identity = self.w.identity_settings.read().clone();
        if !options.force && !identity.is_anonymous(from) && !identity.is_anonymous(&into_name) {
            return Err(MergeError::BothIdentified {
                from: from.to_owned(),
                into: into_name,
            }
            .into());
        }
        let into_id = match into_id {
            Some(id) => id,
            // An `into` not seen yet is created: the alias needs its id.
            None => self.users.id(&into_name)?,
        };
        let outcome = match from_id {
            Some(from_id) => self.merge_user(from, from_id, into_id, into_name, merge_id)?,
            None => self.merge_alias_only(from, into_id, into_name, merge_id)?,
        };
        self.batch
            .put(Cf::Meta, meta::merge(merge_id), codec::encode(&outcome)?);
        self.users.redirect(from, into_id);
        self.forget.push(from.to_owned());
        Ok(outcome)
    }

    /// `from`'s id (`None`: not seen yet), and `into`'s id (`None`: not
    /// seen yet) and external id (an alias named as `into` resolves to its
    /// target).
    fn resolve_pair(
        &mut self,
        from: &str,
        into: &str,
    ) -> Result<(Option<u32>, Option<u32>, String)> {
        let from_id = match self.users.entry(from)? {
            Some(NameEntry::User(id)) => Some(id),
            Some(NameEntry::Alias { into: target, .. }) => {
                return Err(MergeError::AlreadyMerged {
                    from: from.to_owned(),
                    into: target,
                }
                .into())
            }
            None => None,
        };
        let (into_id, into_name) = match self.users.entry(into)? {
            Some(NameEntry::User(id)) => (Some(id), into.to_owned()),
            Some(NameEntry::Alias { user_id, into }) => (Some(user_id), into),
            None => (None, into.to_owned()),
        };
        if from_id.is_some() && into_id == from_id {
            return Err(MergeError::Cycle {
                from: from.to_owned(),
                into: into.to_owned(),
            }
            .into());
        }
        Ok((from_id, into_id, into_name))
    }

    /// A merge whose `from` has no events, profile or account yet: it
    /// becomes an alias of `into` and nothing moves.
    fn merge_alias_only(
        &mut self,
        from: &str,
        into_id: u32,
        into_name: String,
        merge_id: &str,
    ) -> Result<MergeOutcome> {
        users::put_alias(&mut self.batch, from, into_id, &into_name, merge_id)?;
        self.merged = Some(Merged {
            leaving: None,
            pair: None,
        });
        Ok(MergeOutcome::new(merge_id, from, into_name))
    }

    /// A merge of an existing user (see the module doc).
    fn merge_user(
        &mut self,
        from: &str,
        from_id: u32,
        into_id: u32,
        into_name: String,
        merge_id: &str,
    ) -> Result<MergeOutcome> {
        let store = self.w.store;
        let plan = ledger::plan_transfer(store, from_id)?;
        // `from` leaves every aggregate as an erasure takes it out (its
        // events are read and deleted in one scan)...
        let taken = timeline::take_events(
            store,
            self.w.kinds,
            &mut self.batch,
            from_id,
            &into_name,
            MAX_BATCH_EVENTS,
        )?
        .ok_or(Error::LimitReached {
            what: "events one merge moves",
            max: MAX_BATCH_EVENTS as u64,
        })?;
        self.w
            .forget_dims(from_id, (None, usize::MAX), &mut self.batch)?;
        let facts: Vec<ErasedEvent> = taken.iter().map(|(_, f)| ErasedEvent::from(f)).collect();
        let leaving = Leaving::of(from_id, taken.iter().map(|(_, f)| f));
        let seqs: Vec<u32> = taken.iter().map(|(e, _)| e.seq).collect();
        let events: Vec<crate::timeline::Event> = taken.into_iter().map(|(e, _)| e.event).collect();
        let offset = store.settings().utc_offset_minutes;
        metrics::forget::erase(
            store,
            &mut self.batch,
            offset,
            from_id,
            &facts,
            crate::feed::StageCause::Merge,
        )?;
        crate::experiments::forget(store, &mut self.batch, from_id)?;
        let update = profiles::merge_update(store, from_id, into_id)?;
        profiles::erase(store, &mut self.batch, from_id)?;
        crate::features::erase(
            store,
            &mut self.batch,
            from_id,
            crate::feed::StageCause::Merge,
        )?;
        self.add_profile_update(into_id, update)?;
        // ...its name and every earlier alias of it now resolve to `into`...
        let aliases = users::aliases(store, from_id)?;
        for (name, their_merge) in &aliases {
            self.batch.delete(Cf::Meta, meta::alias(from_id, name));
            users::put_alias(&mut self.batch, name, into_id, &into_name, their_merge)?;
            // (later calls naming an older alias of `from` go to `into` too)
            self.users.redirect(name, into_id);
        }
        users::put_alias(&mut self.batch, from, into_id, &into_name, merge_id)?;
        users::retire(store, &mut self.batch, from_id)?;
        // ...and its events are recorded again under `into` (rules do not
        // credit them again: their credits moved with the lots; growth value
        // is derived from the events, so they give it again), with the
        // attribution of both re-derived at the commit.
        let days_before = self.recording.new_active_days();
        self.session.defer_rewards();
        let outcomes = self.recording.add(
            self.w,
            &mut self.batch,
            &mut self.users,
            &self.reservation,
            &events,
            self.growth.then_some((&mut self.session, false)),
        )?;
        self.session.settle_rewards()?;
        let days_added = self.recording.new_active_days() - days_before;
        let offset_events = self.events_total;
        self.social.extend(
            super::social::social_events(&events, &outcomes)
                .into_iter()
                .map(|mut s| {
                    s.index += offset_events;
                    s
                }),
        );
        self.events_total += events.len();
        self.merged = Some(Merged {
            leaving: Some(leaving),
            pair: Some((from_id, into_id)),
        });
        // ...its open lots move to `into`'s account as the rule credits of
        // the moved events, and its ledger goes.
        let renumbered: std::collections::BTreeMap<u32, u32> = seqs
            .iter()
            .zip(&outcomes)
            .filter_map(|(old, o)| match o {
                RecordOutcome::Recorded { seq, .. } => Some((*old, *seq)),
                RecordOutcome::Duplicate => None,
            })
            .collect();
        let mut moved = TransferReport::default();
        if let TransferPlan::Move(out) = &plan {
            ledger::erase(store, &mut self.batch, from_id)?;
            let reason = format!("merge {merge_id}: from {from}");
            moved = self
                .session
                .transfer_in(into_id, out, &renumbered, &reason)?;
            // (coupons keep their ids and states: no count changes)
            self.coupons.transfer_in(into_id, from_id)?;
        }
        let events_moved = outcomes
            .iter()
            .filter(|o| matches!(o, RecordOutcome::Recorded { .. }))
            .count() as u64;
        Ok(MergeOutcome {
            events_moved,
            duplicate_events: outcomes.len() as u64 - events_moved,
            days_added,
            aliases_moved: aliases.len() as u64,
            points_moved: moved.points,
            lots_moved: moved.lots,
            holds_moved: moved.holds,
            txns_moved: moved.txns,
            cap_conflicts: moved.cap_conflicts,
            ..MergeOutcome::new(merge_id, from, into_name)
        })
    }
}
