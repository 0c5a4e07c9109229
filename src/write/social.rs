//! The social part of a write (docs/social.md): the recorded events'
//! shares, touches, signups and purchases — and an erased or merged-away
//! user's contributions — through one attribution engine, into the write's
//! batch, under the store's social lock.
//!
//! The lock is taken after the stripes (every social writer does the same,
//! so no two wait on each other in a cycle) and held to the commit: the
//! engine re-derives users other than the write's own (the touchers of a
//! share registered late), and those records change only under this lock.

use crate::order::Held;
use parking_lot::MutexGuard;

use super::Writer;
use crate::error::Result;
use crate::kinds::{ids, EventKind, REFERRAL_KIND};
use crate::ledger::session::Session;
use crate::social::engine::{Engine, GroupEvent, SocialEvent};
use crate::social::referral::ReferralOp;
use crate::social::SocialSettings;
use crate::store::{Batch, Job, JobKind};
use crate::timeline::{Event, EventFacts, GroupFacts, RecordOutcome};
use crate::users;

/// The events of `events` that attribution reads, with where they were
/// recorded (duplicates left out).
pub(super) fn social_events(events: &[Event], outcomes: &[RecordOutcome]) -> Vec<SocialEvent> {
    events
        .iter()
        .zip(outcomes)
        .enumerate()
        .filter_map(|(index, (e, o))| {
            let RecordOutcome::Recorded { user_id, seq } = *o else {
                return None;
            };
            let event = SocialEvent {
                user_id,
                ts_ms: e.ts_ms,
                seq,
                // (a custom kind is none attribution reads: 0)
                kind_id: e.kind.known_id().unwrap_or(ids::ACTIVITY),
                amount_minor: e.amount_minor.unwrap_or(0),
                share_id: e.share_id.clone(),
                via: e.via.clone(),
                group: GroupFacts::of(e.group_id.as_deref(), e.group_target, e.group_deadline_ms),
                index,
            };
            event.matters().then_some(event)
        })
        .collect()
}

/// A user leaving attribution: its id and the instants of its share events.
pub(super) struct Leaving {
    pub user_id: u32,
    pub share_instants: Vec<i64>,
    pub groups: Vec<GroupEvent>,
}

impl Leaving {
    /// What attribution must take back of `user_id`'s stored events.
    pub fn of<'f>(user_id: u32, facts: impl IntoIterator<Item = &'f EventFacts>) -> Self {
        let mut leaving = Leaving {
            user_id,
            share_instants: Vec::new(),
            groups: Vec::new(),
        };
        for f in facts {
            if f.kind_id == ids::SHARE {
                leaving.share_instants.push(f.ts_ms);
            }
            if let Some(g) = &f.group {
                leaving.groups.push((g.clone(), f.ts_ms, f.seq));
            }
        }
        leaving
    }
}

/// Most times a write starts over to add sharers' stripes to its locks.
pub(super) const MAX_LOCK_ROUNDS: usize = 4;

/// One attempt of a write that may need more locks.
pub(super) enum Attempt<T> {
    /// Committed.
    Done(T),
    /// Start over holding these users' stripes too.
    NeedLocks(Vec<String>),
    /// Start over as a job ([`SocialWrite::NeedJob`]).
    NeedJob,
}

/// What the social part of a write produced.
pub(super) enum SocialWrite<'w> {
    /// In the batch; hold `guard` to the commit and apply `referrals`
    /// through the batch's ledger session.
    Done(SocialDone<'w>),
    /// Referral credits change the accounts of these users, whose stripes
    /// the write does not hold: start over holding them too. Nothing of
    /// this attempt may be committed.
    NeedLocks(Vec<String>),
    /// The write changes the owner of a share with more touchers than one
    /// write should re-derive: start over as a job, every writer held off
    /// ([`Deferral::Record`]). Nothing of this attempt may be committed.
    NeedJob,
}

/// What a write does with the touchers of a share whose owner it changes,
/// when they are more than one write should re-derive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Deferral {
    /// Re-derive them in this write, however many (a merge and a handover,
    /// which are one atomic write by contract).
    Inline,
    /// Give up this attempt ([`SocialWrite::NeedJob`]).
    Escalate,
    /// Leave them to a touchers job ([`SocialDone::deferred`]); the caller
    /// holds every writer off and records the job in this write's batch.
    Record,
}

/// See [`SocialWrite::Done`].
pub(super) struct SocialDone<'w> {
    pub _guard: Option<Held<MutexGuard<'w, ()>>>,
    pub referrals: Vec<ReferralOp>,
    /// The write stores the first social records: once it committed,
    /// signups and purchases must be checked against touches.
    pub opens: bool,
    /// Shares whose touchers are left to a touchers job.
    pub deferred: Vec<String>,
}

impl SocialDone<'_> {
    /// Call once the write committed (then releases the social lock):
    /// in-memory state changes only after what it reflects is stored.
    pub fn committed(self, state: &crate::social::SocialState) {
        if self.opens {
            state.set_live();
        }
    }
}

/// Applies a write's referral operations to the sharers' accounts.
pub(super) fn apply_referrals(ledger: &mut Session<'_>, ops: &[ReferralOp]) -> Result<()> {
    for op in ops {
        match *op {
            ReferralOp::Reverse {
                sharer,
                referred,
                generation,
                at_ms,
            } => ledger.referral_reverse(sharer, referred, generation, at_ms)?,
            ReferralOp::Credit {
                sharer,
                referred,
                generation,
                ts_ms,
                amount_minor,
            } => ledger.referral_credit(sharer, referred, generation, ts_ms, amount_minor)?,
        }
    }
    Ok(())
}

impl Writer<'_> {
    /// Whether the store's earning rules pay referral credits.
    pub(super) fn pays_referrals(&self) -> bool {
        self.ledger_settings
            .read()
            .rules
            .iter()
            .any(|r| r.kind == REFERRAL_KIND)
    }

    /// The sharers a write of `events` will likely pay referral credits to,
    /// read before it takes any lock: the owners of the shares its events
    /// come through, and of the shares its buyers came through before.
    /// Locking them up front spares most writes a second round; a wrong
    /// guess costs a lock, a missed one a round.
    pub(super) fn likely_sharers(&self, events: &[Event]) -> Result<Vec<String>> {
        if !self.social.is_live() || !self.pays_referrals() {
            return Ok(Vec::new());
        }
        let mut owners: Vec<u32> = Vec::new();
        let mut buyers: Vec<&str> = Vec::new();
        for e in events {
            if let Some(via) = &e.via {
                owners.extend(crate::social::owner_of(self.store, via)?);
            }
            if e.kind == EventKind::Purchase && !buyers.contains(&e.user.as_str()) {
                buyers.push(&e.user);
            }
        }
        for buyer in buyers {
            if let Some(id) = users::id_of(self.store, buyer)? {
                owners.extend(crate::social::touch_owners(self.store, id)?);
            }
        }
        owners.sort_unstable();
        owners.dedup();
        let mut names = Vec::with_capacity(owners.len());
        for id in owners {
            if let Some(r) = users::record_of(self.store, id)? {
                names.push(r.name);
            }
        }
        Ok(names)
    }

    /// Puts the social part of a write into `batch` (docs/social.md).
    /// Nothing is taken — no lock, no read — when the write cannot change
    /// attribution: no social field, no share, and either no signup or
    /// purchase or no social record in the store yet. `created` are the
    /// users this write created; `merge` is `(from, into)` for an identity
    /// merge; `holds` tells whether the write holds a user's stripe;
    /// `defer` what to do with the touchers of a share whose owner the
    /// write changes, when they are more than one write should re-derive.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn social_write(
        &self,
        batch: &mut Batch,
        leaving: Option<Leaving>,
        events: &[SocialEvent],
        created: &[u32],
        merge: Option<(u32, u32)>,
        holds: &dyn Fn(&str) -> bool,
        defer: Deferral,
    ) -> Result<SocialWrite<'_>> {
        let opens = events.iter().any(SocialEvent::opens_social);
        let leaves = leaving
            .as_ref()
            .is_some_and(|l| !l.share_instants.is_empty() || !l.groups.is_empty());
        // Who has touches, when this write adds none and already looked.
        let mut known_touched = None;
        let nothing = || {
            Ok(SocialWrite::Done(SocialDone {
                _guard: None,
                referrals: Vec::new(),
                opens: false,
                deferred: Vec::new(),
            }))
        };
        if !opens && !leaves {
            if !self.social.is_live() {
                return nothing();
            }
            // Only signups and purchases (or an erasure) left: they matter
            // only to users someone's share touched. A user's touches are
            // written only by writes naming it — this write holds its
            // stripe — so the check needs no social lock, and the writes of
            // untouched users never wait for it.
            let mut seen = rustc_hash::FxHashSet::default();
            let mut touched = rustc_hash::FxHashSet::default();
            let users = events
                .iter()
                .map(|e| e.user_id)
                .chain(leaving.iter().map(|l| l.user_id));
            for user in users {
                if created.contains(&user) || !seen.insert(user) {
                    continue;
                }
                if crate::social::touched(self.store, user)? {
                    touched.insert(user);
                }
            }
            if touched.is_empty() {
                return nothing();
            }
            known_touched = Some(touched);
        }
        let guard = self.social.lock.lock();
        let settings = *self.social.settings.read();
        let mut engine = Engine::new(self.store, &settings, false)
            .created(created)
            .touched_users(known_touched);
        if self.pays_referrals() {
            engine = engine.with_referrals(merge);
        }
        if defer != Deferral::Inline {
            engine = engine.deferring();
        }
        if let Some(l) = leaving {
            engine.erase(l.user_id, &l.share_instants, &l.groups)?;
        }
        engine.add(events)?;
        if defer == Deferral::Escalate && !engine.deferred().is_empty() {
            return Ok(SocialWrite::NeedJob);
        }
        let deferred = engine.deferred().to_vec();
        let mut referrals = Vec::new();
        let mut missing: Vec<String> = Vec::new();
        for op in engine.referral_ops()? {
            // a sharer this write creates is one it names: held
            if created.contains(&op.sharer()) {
                referrals.push(op);
                continue;
            }
            // (a sharer without a record has no account to change)
            let Some(record) = users::record_of(self.store, op.sharer())? else {
                continue;
            };
            if !holds(&record.name) && !missing.contains(&record.name) {
                missing.push(record.name);
            }
            referrals.push(op);
        }
        if !missing.is_empty() {
            return Ok(SocialWrite::NeedLocks(missing));
        }
        engine.finish(batch)?;
        Ok(SocialWrite::Done(SocialDone {
            _guard: Some(guard),
            referrals,
            opens,
            deferred,
        }))
    }
}

impl Writer<'_> {
    /// Changes the attribution window and re-derives every attribution
    /// under it, every writer held off: a job (docs/architecture.md,
    /// "Jobs") whose first batch saves the window, whose last pays and
    /// reverses the referral credits of every first purchase whose
    /// attribution moved. A kill anywhere leaves the job recorded; it is
    /// finished by `finish_jobs` (or this call again).
    pub(crate) fn set_social_settings(&self, settings: SocialSettings) -> Result<()> {
        self.check_not_nested()?;
        self.store.check_writable()?;
        settings.validate()?;
        let _advance = self.advance_lock.lock();
        let mut all = self.stripes.lock_all();
        self.finish_pending(&mut all)?;
        let _running = {
            let _social = self.social.lock.lock();
            let mut held = self.social.settings.write();
            let mut first = Batch::new();
            crate::social::put_settings(&mut first, &settings)?;
            let job = Job::new(JobKind::SocialWindow);
            let running = super::jobs::record(self.store, &job, first)?;
            // (in memory only once the new window is stored)
            *held = settings;
            running
        };
        self.resume_recorded(&mut all).map(|_| ())
    }
}
