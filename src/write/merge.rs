//! Identity merge (SPEC §2, docs/identity.md): one atomic write after which
//! every answer equals that of a store where all of `from`'s events had
//! always been recorded under `into`.
//!
//! Composed from two paths that are exact on their own: `from` leaves every
//! aggregate as an erasure would take it out, and its events are recorded
//! again under `into` through the ordinary record path (which is exact for
//! late, duplicate and out-of-order events). Both build deltas on shared
//! aggregates and rewrite only per-user state of their own user, so the two
//! halves compose in one batch. `from`'s name becomes an alias of `into`.

use crate::store::Batch;

use super::Writer;
use crate::codec;
use crate::error::{Error, InputError, MergeError, Result};
use crate::feed::StageCause;
use crate::keys::meta;
use crate::ledger::session::Session;
use crate::ledger::{TransferPlan, TransferReport};
use crate::metrics::forget::ErasedEvent;
use crate::store::Cf;
use crate::timeline::{RecordOutcome, MAX_BATCH_EVENTS};
use crate::users::{
    self, IdentitySettings, MergeOptions, MergeOutcome, NameEntry, Resolved, UserWrites,
};
use crate::{ledger, metrics, profiles, timeline};

use super::social::{Attempt, Deferral, SocialWrite};

impl Writer<'_> {
    /// Merges `from` into `into` as one atomic write (see the module doc);
    /// idempotent by `merge_id`.
    pub fn merge(
        &self,
        from: &str,
        into: &str,
        merge_id: &str,
        options: MergeOptions,
        identity: &IdentitySettings,
    ) -> Result<MergeOutcome> {
        self.store.check_writes_allowed()?;
        users::check_user(from).map_err(|p| InputError::new("from", p))?;
        users::check_user(into).map_err(|p| InputError::new("into", p))?;
        users::check_merge_id(merge_id)?;
        // Merges and erasures rewrite shared records (the alias index, the
        // id floor): one at a time.
        let _one = self.erase_lock.lock();
        if let Some(done) = self
            .store
            .get::<MergeOutcome>(Cf::Meta, &meta::merge(merge_id))?
        {
            return self.replay(done, from, into);
        }
        if from == into {
            return Err(MergeError::SelfMerge {
                user: from.to_owned(),
            }
            .into());
        }
        // A merge that moves referral credits must hold the sharers'
        // stripes too (see `record_batch`): it starts over holding them.
        let mut sharers: Vec<String> = Vec::new();
        for _ in 0..super::social::MAX_LOCK_ROUNDS {
            let attempt = self.merge_attempt(from, into, merge_id, options, identity, &sharers)?;
            match attempt {
                Attempt::Done(outcome) => return Ok(outcome),
                Attempt::NeedLocks(more) => sharers.extend(more),
                // (never: a merge re-derives inline)
                Attempt::NeedJob => {
                    return Err(Error::LimitReached {
                        what: "merges left to a job",
                        max: 0,
                    })
                }
            }
        }
        Err(Error::LimitReached {
            what: "lock rounds of a merge moving referral credits",
            max: super::social::MAX_LOCK_ROUNDS as u64,
        })
    }

    /// One attempt of [`Writer::merge`] holding the stripes of `from`,
    /// `into` and `sharers`.
    fn merge_attempt(
        &self,
        from: &str,
        into: &str,
        merge_id: &str,
        options: MergeOptions,
        identity: &IdentitySettings,
        sharers: &[String],
    ) -> Result<Attempt<MergeOutcome>> {
        let mut names = vec![from, into];
        names.extend(sharers.iter().map(String::as_str));
        let (mut guards, resolved) = users::lock_resolving(self.stripes, self.store, &names)?;
        let (from_id, into_id, into_name) = resolve_pair(&resolved, from, into)?;
        if !options.force && !identity.is_anonymous(from) && !identity.is_anonymous(&into_name) {
            return Err(MergeError::BothIdentified {
                from: from.to_owned(),
                into: into_name,
            }
            .into());
        }
        let plan = ledger::plan_transfer(self.store, from_id)?;
        let mut batch = Batch::new();
        // `from` leaves every aggregate as an erasure takes it out (its
        // events are read and deleted in one scan)...
        let taken = timeline::take_events(
            self.store,
            self.kinds,
            &mut batch,
            from_id,
            &into_name,
            MAX_BATCH_EVENTS,
        )?
        .ok_or(Error::LimitReached {
            what: "events one merge moves",
            max: MAX_BATCH_EVENTS as u64,
        })?;
        let facts: Vec<ErasedEvent> = taken.iter().map(|(_, f)| ErasedEvent::from(f)).collect();
        let leaving = super::social::Leaving::of(from_id, taken.iter().map(|(_, f)| f));
        let seqs: Vec<u32> = taken.iter().map(|(e, _)| e.seq).collect();
        let events: Vec<crate::timeline::Event> = taken.into_iter().map(|(e, _)| e.event).collect();
        // Kinds are reserved before the settings and the clock are read, as
        // every writer takes them (docs/architecture.md, "Lock hierarchy").
        let reservation = self
            .kinds
            .reserve(events.iter().map(|e| &e.kind), &mut batch)?;
        let offset = self.store.settings().utc_offset_minutes;
        let settings = self.metric_settings.read();
        let clock = self.clock.read();
        let stages = self.stage_ctx(&settings, &clock, StageCause::Merge);
        metrics::forget::erase(
            self.store,
            &mut batch,
            offset,
            from_id,
            &facts,
            StageCause::Merge,
        )?;
        crate::experiments::forget(self.store, &mut batch, from_id)?;
        let update = profiles::merge_update(self.store, from_id, into_id)?;
        profiles::erase(self.store, &mut batch, from_id)?;
        profiles::apply_update(self.store, &mut batch, into_id, &update)?;
        // ...its name and every earlier alias of it now resolve to `into`...
        let aliases = users::aliases(self.store, from_id)?;
        for (name, their_merge) in &aliases {
            batch.delete(Cf::Meta, meta::alias(from_id, name));
            users::put_alias(&mut batch, name, into_id, &into_name, their_merge)?;
        }
        users::put_alias(&mut batch, from, into_id, &into_name, merge_id)?;
        users::retire(self.store, &mut batch, from_id)?;
        // ...and its events are recorded again under `into` (rules do not
        // credit them again: their credits moved with the lots).
        let mut users_w =
            UserWrites::new(self.store, self.allocator, &mut guards, Resolved::default());
        let (outcomes, days_added, _) = self.record_into(
            &mut batch,
            &mut users_w,
            &reservation,
            &events,
            None,
            stages,
            &clock,
        )?;
        users_w.finish(&mut batch)?;
        // ...with the attribution of both re-derived (from's shares are
        // into's now; from's touches of into's shares are self-referrals)...
        let social = super::social::social_events(&events, &outcomes);
        let done = match self.social_write(
            &mut batch,
            Some(leaving),
            &social,
            &[],
            Some((from_id, into_id)),
            &|name| users_w.holds(name),
            // (a merge is one atomic write by contract: its shares' touchers
            // are re-derived in it, however many)
            Deferral::Inline,
        )? {
            SocialWrite::NeedLocks(more) => return Ok(Attempt::NeedLocks(more)),
            SocialWrite::Done(done) => done,
            SocialWrite::NeedJob => return Ok(Attempt::NeedJob),
        };
        // ...its open lots move to `into`'s account as the rule credits of
        // the moved events (not those of events `into` had already), and
        // its ledger goes.
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
            ledger::erase(self.store, &mut batch, from_id)?;
            let settings = self.ledger_settings.read().clone();
            let mut session = Session::new(self.store, &settings).with_notices(*clock);
            let reason = format!("merge {merge_id}: from {from}");
            moved = session.transfer_in(into_id, out, &renumbered, &reason)?;
            super::social::apply_referrals(&mut session, &done.referrals)?;
            session.finish(&mut batch)?;
        } else if !done.referrals.is_empty() {
            let settings = self.ledger_settings.read().clone();
            let mut session = Session::new(self.store, &settings).with_notices(*clock);
            super::social::apply_referrals(&mut session, &done.referrals)?;
            session.finish(&mut batch)?;
        }
        let events_moved = outcomes
            .iter()
            .filter(|o| matches!(o, RecordOutcome::Recorded { .. }))
            .count() as u64;
        let outcome = MergeOutcome {
            merge_id: merge_id.to_owned(),
            from: from.to_owned(),
            into: into_name,
            events_moved,
            duplicate_events: outcomes.len() as u64 - events_moved,
            days_added,
            aliases_moved: aliases.len() as u64,
            points_moved: moved.points,
            lots_moved: moved.lots,
            holds_moved: moved.holds,
            txns_moved: moved.txns,
            cap_conflicts: moved.cap_conflicts,
            replayed: false,
        };
        batch.put(Cf::Meta, meta::merge(merge_id), codec::encode(&outcome)?);
        self.store.write(batch)?;
        done.committed(self.social);
        users_w.remember();
        reservation.publish();
        // `from` is an alias now: aliases are never cached.
        if let Some(shard) = guards.shard(from) {
            shard.remove(from);
        }
        Ok(Attempt::Done(outcome))
    }

    /// A merge id seen before: the same pair is answered with what was done,
    /// another pair is refused.
    fn replay(&self, done: MergeOutcome, from: &str, into: &str) -> Result<MergeOutcome> {
        // `into` may have been named by an alias of the target the record names
        let same_target = done.into == into || {
            let asked = users::id_of(self.store, into)?;
            asked.is_some() && asked == users::id_of(self.store, &done.into)?
        };
        if done.from == from && same_target {
            return Ok(MergeOutcome {
                replayed: true,
                ..done
            });
        }
        Err(MergeError::IdConflict {
            merge_id: done.merge_id,
            from: done.from,
            into: done.into,
        }
        .into())
    }
}

/// `from`'s id, and `into`'s id and external id (an alias named as `into`
/// resolves to its target).
fn resolve_pair(resolved: &Resolved, from: &str, into: &str) -> Result<(u32, u32, String)> {
    let unknown = |user: &str| Error::UnknownUser {
        user: user.to_owned(),
    };
    let from_id = match resolved.get(from).cloned().flatten() {
        Some(NameEntry::User(id)) => id,
        Some(NameEntry::Alias { into: target, .. }) => {
            return Err(MergeError::AlreadyMerged {
                from: from.to_owned(),
                into: target,
            }
            .into())
        }
        None => return Err(unknown(from)),
    };
    let (into_id, into_name) = match resolved.get(into).cloned().flatten() {
        Some(NameEntry::User(id)) => (id, into.to_owned()),
        Some(NameEntry::Alias { user_id, into }) => (user_id, into),
        None => return Err(unknown(into)),
    };
    if into_id == from_id {
        return Err(MergeError::Cycle {
            from: from.to_owned(),
            into: into.to_owned(),
        }
        .into());
    }
    Ok((from_id, into_id, into_name))
}
