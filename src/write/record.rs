//! Recording events: one `record_batch` call is one atomic write holding the
//! events and their dedup entries (timeline), any new user ids and custom
//! kinds (users, kinds), every aggregate delta (metrics) and every
//! rule-earned points credit (ledger).

use rustc_hash::FxHashSet;

use crate::codec;
use crate::keys::meta;
use crate::partition::LogPosition;
use crate::store::{Batch, Cf, Job, JobKind};

use super::Writer;
use crate::error::{InputError, Result};
use crate::feed::{Clock, StageCause};
use crate::keys::EventKey;
use crate::kinds::Reservation;
use crate::ledger::session::Session;
use crate::ledger::LedgerSettings;
use crate::metrics::{
    self,
    state::{Contribution, StageCtx, StateWrites},
};
use crate::timeline::{self, Event, RecordOutcome, MAX_BATCH_EVENTS};
use crate::users::{self, UserWrites};

use super::social::{Deferral, SocialWrite};
use crate::experiments::ExposureWrites;
use crate::kinds::EventKind;
use crate::timeline::Fact;

impl Writer<'_> {
    /// Records `events` as one atomic write; with `position`, the write
    /// also stores it as its log partition's position (the caller, which
    /// holds the position lock, has checked that it moves forward).
    pub fn record_batch(
        &self,
        events: &[Event],
        position: Option<&LogPosition>,
    ) -> Result<Vec<RecordOutcome>> {
        self.store.check_writes_allowed()?;
        InputError::check_count("events", events.len(), MAX_BATCH_EVENTS)?;
        // Validate everything before taking a lock or touching the store: a bad
        // item rejects the whole batch and nothing is written.
        for (i, e) in events.iter().enumerate() {
            e.validate().map_err(|err| err.at(i))?;
            crate::experiments::check_exposure(e, self.exposure_kind).map_err(|err| err.at(i))?;
        }
        if let Some(p) = position {
            p.validate()?;
        }

        // A write that pays referral credits must hold the sharers' stripes
        // too; it learns who they are only under its own locks, so it starts
        // over holding them (each round only adds names).
        let mut sharers: Vec<String> = self.likely_sharers(events)?;
        // A write that changes the owner of a share more users came through
        // than one write should re-derive (a late claim) starts over as a
        // job, every writer held off (`write/touchers.rs`).
        let mut as_job = false;
        for _ in 0..=super::social::MAX_LOCK_ROUNDS {
            let mut names: Vec<&str> = events.iter().map(|e| e.user.as_str()).collect();
            names.extend(sharers.iter().map(String::as_str));
            let _advance = as_job.then(|| self.advance_lock.lock());
            let (mut guards, resolved) = if as_job {
                let mut all = self.stripes.lock_all();
                self.finish_pending(&mut all)?;
                (all, users::Resolved::default())
            } else {
                users::lock_resolving(self.stripes, self.store, &names)?
            };
            // (a job that ran while this write waited for the locks may
            // have failed and left its work half done)
            self.store.check_no_job()?;
            let mut batch = Batch::new();
            let reservation = self
                .kinds
                .reserve(events.iter().map(|e| &e.kind), &mut batch)?;
            let mut users = UserWrites::new(self.store, self.allocator, &mut guards, resolved);
            let settings = self.metric_settings.read();
            let clock = self.clock.read();
            let stages = self.stage_ctx(&settings, &clock, StageCause::Event);
            // Only stores with earning rules pay for a ledger session.
            let ledger_settings = self.ledger_settings.read().clone();
            let rules = (!ledger_settings.rules.is_empty()).then_some(&*ledger_settings);
            let (outcomes, _, mut ledger) = self.record_into(
                &mut batch,
                &mut users,
                &reservation,
                events,
                rules,
                stages,
                &clock,
            )?;
            users.finish(&mut batch)?;
            let social = super::social::social_events(events, &outcomes);
            let done = match self.social_write(
                &mut batch,
                None,
                &social,
                users.created(),
                None,
                &|name| users.holds(name),
                if as_job {
                    Deferral::Record
                } else {
                    Deferral::Escalate
                },
            )? {
                SocialWrite::NeedLocks(more) => {
                    sharers.extend(more);
                    continue;
                }
                SocialWrite::NeedJob => {
                    as_job = true;
                    continue;
                }
                SocialWrite::Done(done) => done,
            };
            if let Some(ledger) = ledger.as_mut() {
                super::social::apply_referrals(ledger, &done.referrals)?;
            }
            if let Some(ledger) = ledger {
                ledger.finish(&mut batch)?;
            }
            if let Some(p) = position {
                batch.put(
                    Cf::Meta,
                    meta::source(&p.topic, p.partition),
                    codec::encode(&p.next_offset)?,
                );
            }
            // The touchers left to a job are recorded with this write.
            let job = (!done.deferred.is_empty()).then(|| Job {
                subject: done.deferred.clone(),
                ..Job::new(JobKind::Touchers)
            });
            if let Some(job) = &job {
                batch.set_job(job)?;
            }
            self.store.write(batch)?;
            done.committed(self.social);
            users.remember();
            reservation.publish();
            if job.is_some() {
                // (the job takes the settings and the clock in the
                // hierarchy's order)
                drop(clock);
                drop(settings);
                // The events are stored whatever the job does: a step that
                // fails leaves the job recorded, and writes refused until
                // `finish_jobs`, rather than a caller told "not written"
                // retrying events without ids twice.
                let _ = self.resume_recorded(&mut guards);
            }
            return Ok(outcomes);
        }
        Err(crate::error::Error::LimitReached {
            what: "lock rounds of a write paying referral credits",
            max: super::social::MAX_LOCK_ROUNDS as u64,
        })
    }

    /// Puts `events` into `batch` under locks the caller holds: dedup, ids,
    /// event records, aggregate deltas and (with `rules`) rule credits. The
    /// caller finishes `users` and the returned ledger session (rule credits,
    /// with `rules`), and commits. Returns each event's outcome and how many
    /// (user, day) activity days the events added.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn record_into<'l>(
        &'l self,
        batch: &mut Batch,
        users: &mut UserWrites<'_, '_>,
        reservation: &Reservation<'_>,
        events: &[Event],
        rules: Option<&'l LedgerSettings>,
        stages: StageCtx<'_>,
        clock: &Clock,
    ) -> Result<(Vec<RecordOutcome>, u64, Option<Session<'l>>)> {
        // Keyed by internal id: an alias and its target are one user.
        let mut seen_in_batch: FxHashSet<(u32, &str)> = FxHashSet::default();
        let mut outcomes = Vec::with_capacity(events.len());
        let mut state = StateWrites::new(self.store, stages);
        let mut seqs = timeline::Sequences::new(self.store);
        let mut ledger = rules.map(|r| Session::new(self.store, r).with_notices(*clock));

        // The dedup lookups of every event of an existing user, together.
        let mut lookups: Vec<(u32, &str)> = Vec::new();
        let mut lookup_of: Vec<Option<usize>> = Vec::with_capacity(events.len());
        for e in events {
            let at = match &e.event_id {
                Some(id) => users.existing_id(&e.user)?.map(|u| {
                    lookups.push((u, id.as_str()));
                    lookups.len() - 1
                }),
                None => None,
            };
            lookup_of.push(at);
        }
        let recorded = timeline::recorded(self.store, &lookups)?;
        let exposure_kind = EventKind::from_name(self.exposure_kind);
        let exposure_id = match self.kinds.id(&exposure_kind) {
            Some(id) => Some(id),
            None if events.iter().any(|e| e.kind == exposure_kind) => {
                Some(reservation.id(&exposure_kind)?)
            }
            None => None,
        };
        let mut exposures = ExposureWrites::new(self.store, exposure_id);

        for (i, (e, lookup)) in events.iter().zip(lookup_of).enumerate() {
            if lookup.is_some_and(|i| recorded.get(i).copied().unwrap_or(false)) {
                outcomes.push(RecordOutcome::Duplicate);
                continue;
            }
            // (a duplicate within the batch found its user created by the
            // event it repeats: no id is allocated for nothing)
            // A user refused here (another partition's, or handed over to
            // one) is refused by the event's position, like a bad field.
            let (user_id, new) = users.id_created(&e.user).map_err(|err| match err {
                crate::Error::Input(input) => input.at(i).into(),
                other => other,
            })?;
            if let Some(event_id) = &e.event_id {
                if !seen_in_batch.insert((user_id, event_id.as_str())) {
                    outcomes.push(RecordOutcome::Duplicate);
                    continue;
                }
            }
            let kind_id = reservation.id(&e.kind)?;
            let seq = seqs.take(user_id, new)?;
            // The head's event count is derived; the sequence is primary.
            // Where they disagree the aggregates are damaged: refuse the
            // write (a rebuild repairs them) rather than build on it.
            let counted = state.next_seq(user_id, new)?;
            if counted != seq {
                return Err(metrics::count_mismatch(user_id, counted, seq));
            }
            let key = EventKey {
                user_id,
                ts_ms: e.ts_ms,
                seq,
            };
            timeline::put(batch, &key, kind_id, e)?;
            if exposure_id.is_some() {
                exposures.add(user_id, Fact::of_event(e, seq, kind_id, exposure_id));
            }
            state.add(
                &Contribution {
                    user_id,
                    kind_id,
                    is_activity: metrics::counts_as_activity(
                        self.non_activity_kinds,
                        e.kind.as_str(),
                    ),
                    ts_ms: e.ts_ms,
                    amount_minor: e.amount_minor,
                    session_id: e.session_id.as_deref(),
                },
                new,
            )?;
            if let Some(ledger) = ledger.as_mut() {
                ledger.rule_credit(user_id, seq, e.kind.as_str(), e.ts_ms, e.amount_minor)?;
            }
            outcomes.push(RecordOutcome::Recorded { user_id, seq });
        }
        let new_active_days = state.new_active_days();
        // Who has ever had an exposure is in the heads (their first day of
        // the kind); only they have assignments to read.
        let exposed: FxHashSet<u32> = match exposure_id {
            Some(x) => exposures
                .users()
                .filter(|u| state.has_kind(*u, x))
                .collect(),
            None => FxHashSet::default(),
        };
        seqs.finish(batch)?;
        state.finish(batch)?;
        exposures.finish(|u| exposed.contains(&u), batch)?;
        Ok((outcomes, new_active_days, ledger))
    }
}
