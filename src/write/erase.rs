//! Erasure (SPEC §5): one atomic write deletes a user's profile, tags,
//! events, ledger and id mappings and takes every trace of the user out of
//! the shared aggregates.

use crate::store::Batch;

use super::social::{Attempt, Deferral, SocialWrite};
use super::Writer;
use crate::error::{InputError, Result};
use crate::keys::meta;
use crate::metrics::forget::ErasedEvent;
use crate::store::{Cf, Job, JobKind};
use crate::users::NameEntry;
use crate::{ledger, metrics, profiles, timeline, users};

impl Writer<'_> {
    /// Erases `user` (named by its id or by an alias of it, with every
    /// history merged into it); returns whether it existed. Its internal id
    /// is never reused.
    pub fn erase_user(&self, user: &str) -> Result<bool> {
        self.check_not_nested()?;
        self.erase_user_marking(user, &[], None)
    }

    /// [`Writer::erase_user`], also putting `marks` (meta keys and values)
    /// in the erasure's own batch — a cross-partition handover's marks
    /// (SPEC §7). Nothing is written, marks included, for an unknown user.
    /// With `expect_next_seq`, refused (nothing written) unless the user's
    /// next event sequence number is still the one a handover read: an
    /// event recorded since would be erased without being handed over.
    pub fn erase_user_marking(
        &self,
        user: &str,
        marks: &[(Vec<u8>, Vec<u8>)],
        expect_next_seq: Option<u32>,
    ) -> Result<bool> {
        self.check_not_nested()?;
        self.store.check_writes_allowed()?;
        users::check_user(user).map_err(|p| InputError::new("user", p))?;
        if marks.is_empty() && expect_next_seq.is_none() {
            if let Some(user_id) = self.large_user(user)? {
                return self.erase_as_job(user_id);
            }
        }
        let erasing = self.erase_lock.lock();
        // Reversing or moving referral credits needs the sharers' stripes
        // too (see `record_batch`): start over holding them.
        let mut sharers: Vec<String> = Vec::new();
        for _ in 0..super::social::MAX_LOCK_ROUNDS {
            match self.erase_attempt(user, &sharers, marks, expect_next_seq)? {
                Attempt::Done(existed) => return Ok(existed),
                Attempt::NeedLocks(more) => sharers.extend(more),
                // it owns a share with more touchers than one write should
                // re-derive: a job (which takes the advance lock first)
                Attempt::NeedJob => {
                    drop(erasing);
                    return match users::id_of(self.store, user)? {
                        Some(user_id) => self.erase_as_job(user_id),
                        None => Ok(false),
                    };
                }
            }
        }
        Err(crate::error::Error::Busy {
            what: "lock rounds of an erasure moving referral credits",
            rounds: super::social::MAX_LOCK_ROUNDS as u32,
        })
    }

    /// The id of `user` when it has more events than one erasure's write
    /// should carry (its sequence record counts them).
    fn large_user(&self, user: &str) -> Result<Option<u32>> {
        let Some(user_id) = users::id_of(self.store, user)? else {
            return Ok(None);
        };
        let events = timeline::stored_next_seq(self.store, user_id)?;
        Ok((events > super::erase_job::ERASE_INLINE_EVENTS).then_some(user_id))
    }

    /// Erases `user_id` as a job of bounded batches
    /// (`write/erase_job.rs`), every writer held off.
    fn erase_as_job(&self, user_id: u32) -> Result<bool> {
        let _advance = self.advance_lock.lock();
        let _erasing = self.erase_lock.lock();
        let mut all = self.stripes.lock_all();
        self.finish_pending(&mut all)?;
        // (erased or merged away while this call waited for the locks)
        if users::record_of(self.store, user_id)?.is_none() {
            return Ok(false);
        }
        let job = Job::new(JobKind::Erase { user_id });
        let _running = super::jobs::record(self.store, &job, Batch::new())?;
        self.resume_recorded(&mut all)?;
        Ok(true)
    }

    /// A name handed over to another partition (SPEC §7) leaves only its
    /// `moved:` mark here, naming it and its target: erasing the name
    /// deletes it. Returns whether there was one.
    /// Takes `user_id`'s events (a page of them: `after`, `limit`) out of
    /// the declared dimensions, before the same write deletes them.
    pub(super) fn forget_dims(
        &self,
        user_id: u32,
        page: (Option<&[u8]>, usize),
        batch: &mut Batch,
    ) -> Result<()> {
        let set = self.dims.set.read().clone();
        let kv = crate::dims::KindView {
            kinds: self.kinds,
            non_activity: self.non_activity_kinds,
        };
        crate::dims::forget_events(
            self.store,
            &set,
            &self.dims.values,
            &kv,
            user_id,
            page,
            batch,
        )
    }

    fn erase_moved_mark(&self, user: &str) -> Result<bool> {
        if self.store.partition().count <= 1 {
            return Ok(false);
        }
        let key = meta::moved(user);
        if self.store.get_raw(Cf::Meta, &key)?.is_none() {
            return Ok(false);
        }
        let mut batch = Batch::new();
        batch.delete(Cf::Meta, key);
        self.store.write(batch)?;
        Ok(true)
    }

    fn erase_attempt(
        &self,
        user: &str,
        sharers: &[String],
        marks: &[(Vec<u8>, Vec<u8>)],
        expect_next_seq: Option<u32>,
    ) -> Result<Attempt<bool>> {
        let mut names = vec![user];
        names.extend(sharers.iter().map(String::as_str));
        let (mut guard, resolved) = users::lock_resolving(self.stripes, self.store, &names)?;
        let (user_id, user) = match resolved.get(user).cloned().flatten() {
            None if marks.is_empty() => return self.erase_moved_mark(user).map(Attempt::Done),
            None => return Ok(Attempt::Done(false)),
            Some(NameEntry::User(id)) => (id, user.to_owned()),
            Some(NameEntry::Alias { user_id, into }) => (user_id, into),
        };
        if let Some(expected) = expect_next_seq {
            // (checked under the user's lock: no event slips in after it)
            let now = timeline::stored_next_seq(self.store, user_id)?;
            if now != expected {
                return Err(crate::error::MergeError::Handover {
                    from: user.clone(),
                    into: String::new(),
                    reason: format!(
                        "{} event(s) were recorded since the handover was made \
                         (next sequence {expected} then, {now} now): make it again",
                        now.saturating_sub(expected)
                    ),
                }
                .into());
            }
        }
        let user = user.as_str();
        let mut batch = Batch::new();
        for (key, value) in marks {
            batch.put(Cf::Meta, key, value);
        }
        // Its aliases and the records of the merges that made them go too:
        // they name the user.
        for (name, merge_id) in users::aliases(self.store, user_id)? {
            users::delete_alias(&mut batch, &name, user_id);
            batch.delete(Cf::Meta, meta::merge(&merge_id));
        }
        profiles::erase(self.store, &mut batch, user_id)?;
        crate::features::erase(
            self.store,
            &mut batch,
            user_id,
            crate::feed::StageCause::Erase,
        )?;
        self.forget_dims(user_id, (None, usize::MAX), &mut batch)?;
        let facts = timeline::erase(self.store, &mut batch, user_id)?;
        let leaving = super::social::Leaving::of(user_id, &facts);
        let events: Vec<ErasedEvent> = facts.iter().map(ErasedEvent::from).collect();
        metrics::forget::erase(
            self.store,
            &mut batch,
            self.store.settings().utc_offset_minutes,
            user_id,
            &events,
            crate::feed::StageCause::Erase,
        )?;
        crate::experiments::forget(self.store, &mut batch, user_id)?;
        // (the coupon lock to the commit: the erased coupons leave their
        // templates' counts)
        let _coupons = self.coupon_lock.lock();
        ledger::coupons::read::count_erased(self.store, &mut batch, user_id)?;
        ledger::erase(self.store, &mut batch, user_id)?;
        users::erase(self.store, &mut batch, user_id, user)?;
        // The clock before the social lock, as every writer takes them
        // (docs/architecture.md, "Lock hierarchy"): taken after it, a
        // queued `advance` could close a cycle with a recording write.
        let clock = self.clock.read();
        // (a hand-over's erasure re-derives inline: its marks ride in this
        // one write)
        let defer = if marks.is_empty() && expect_next_seq.is_none() {
            Deferral::Escalate
        } else {
            Deferral::Inline
        };
        let done = match self.social_write(
            &mut batch,
            Some(leaving),
            &[],
            &[],
            None,
            &|name| guard.holds(name),
            defer,
        )? {
            SocialWrite::NeedLocks(more) => return Ok(Attempt::NeedLocks(more)),
            SocialWrite::NeedJob => return Ok(Attempt::NeedJob),
            SocialWrite::Done(done) => done,
        };
        if !done.referrals.is_empty() {
            // the sharers' accounts (never the erased user's: its credits
            // go with its ledger)
            let settings = self.ledger_settings.read().clone();
            let mut session =
                crate::ledger::session::Session::new(self.store, &settings).with_notices(*clock);
            super::social::apply_referrals(&mut session, &done.referrals)?;
            session.finish(&mut batch)?;
        }
        self.store.write(batch)?;
        done.committed(self.social);
        if let Some(shard) = guard.shard(user) {
            shard.remove(user);
        }
        Ok(Attempt::Done(true))
    }
}
