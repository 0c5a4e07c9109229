//! Recording events: one `record_batch` call is one atomic write holding the
//! events and their dedup entries (timeline), any new user ids and custom
//! kinds (users, kinds), every aggregate delta (metrics) and every
//! rule-earned points credit (ledger).

use rustc_hash::FxHashSet;

use super::tx::Plan;
use crate::partition::LogPosition;
use crate::store::Batch;

use super::Writer;
use crate::error::Result;
use crate::keys::EventKey;
use crate::kinds::Reservation;
use crate::ledger::session::{RewardEvent, Session};
use crate::metrics::{
    self,
    state::{Contribution, StageCtx, StateWrites},
};
use crate::timeline::{self, Event, RecordOutcome};
use crate::users::UserWrites;

use crate::dims::{DimEvent, DimWrites};
use crate::experiments::ExposureWrites;
use crate::features::FeatureWrites;
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
        self.validate_events(events)?;
        if let Some(p) = position {
            p.validate()?;
        }
        // What the transaction would find it needs, held from its first
        // round: the events' users, the sharers a referral credit pays
        // (learned again under the locks), the kinds not registered yet.
        let mut plan = Plan::with_names(events.iter().map(|e| e.user.as_str()));
        plan.names.extend(self.likely_sharers(events)?);
        for e in events {
            if self.kinds.id(&e.kind).is_none() && !plan.kinds.contains(&e.kind) {
                plan.kinds.push(e.kind.clone());
            }
        }
        plan.position = position.cloned();
        plan.events_validated = true;
        plan.single_call = true;
        self.transact(plan, &mut |tx| tx.record_batch(events))
    }
}

/// The event side of one write, kept across the calls of a transaction so
/// that its second `record` sees what its first one did (per-user heads,
/// sequence numbers, dedup within the write).
pub(super) struct Recording<'s> {
    state: StateWrites<'s>,
    seqs: timeline::Sequences<'s>,
    exposures: ExposureWrites<'s>,
    exposure_id: Option<u32>,
    /// The events features read, per user (nothing without definitions).
    features: FeatureWrites,
    /// The events' parts of the declared dimensions.
    dims: DimWrites,
    /// `(user, event id)` recorded by this write: keyed by internal id, so
    /// an alias and its target are one user.
    seen: rustc_hash::FxHashMap<u32, FxHashSet<String>>,
    /// Later calls of the transaction may record more events: keep the
    /// event ids of each call for them (a single call needs none kept).
    remember_ids: bool,
}

impl<'s> Recording<'s> {
    /// Starts the event side of a write whose kinds `reservation` holds
    /// (`events`: the events known up front, for the exposure kind's id).
    pub(super) fn new(
        w: &'s Writer<'_>,
        reservation: &Reservation<'_>,
        events: &[Event],
        stages: StageCtx<'s>,
        features: FeatureWrites,
        dims: DimWrites,
    ) -> Result<Self> {
        let exposure_kind = EventKind::from_name(w.exposure_kind);
        let exposure_id = match w.kinds.id(&exposure_kind) {
            Some(id) => Some(id),
            None if events.iter().any(|e| e.kind == exposure_kind) => {
                Some(reservation.id(&exposure_kind)?)
            }
            None => reservation.id(&exposure_kind).ok(),
        };
        Ok(Self {
            state: StateWrites::new(w.store, stages),
            seqs: timeline::Sequences::new(w.store),
            exposures: ExposureWrites::new(w.store, exposure_id),
            exposure_id,
            features,
            dims,
            seen: Default::default(),
            remember_ids: true,
        })
    }

    /// Keeps no event ids past the call that records them: the write has
    /// one call (the single `record_batch`), so none can repeat them.
    pub(super) fn single_call(mut self) -> Self {
        self.remember_ids = false;
        self
    }

    /// Whether an event of `kind` can be recorded by this write: its id is
    /// known or reserved, and an exposure's id was known when it started.
    pub(super) fn can_record(
        &self,
        w: &Writer<'_>,
        reservation: &Reservation<'_>,
        kind: &EventKind,
    ) -> bool {
        if self.exposure_id.is_none() && kind.as_str() == w.exposure_kind {
            return false;
        }
        reservation.id(kind).is_ok()
    }

    /// Puts `events` into `batch` (see [`Writer::record_into`]); returns
    /// each event's outcome.
    pub(super) fn add(
        &mut self,
        w: &Writer<'_>,
        batch: &mut Batch,
        users: &mut UserWrites<'_, '_>,
        reservation: &Reservation<'_>,
        events: &[Event],
        mut ledger: Option<(&mut Session<'_>, bool)>,
    ) -> Result<Vec<RecordOutcome>> {
        let mut outcomes = Vec::with_capacity(events.len());
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
        let recorded = timeline::recorded(w.store, &lookups)?;
        // (user, event id) of this call; kept for later calls only when
        // there can be any
        let mut seen_now: FxHashSet<(u32, &str)> = FxHashSet::default();
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
                let earlier = self
                    .seen
                    .get(&user_id)
                    .is_some_and(|ids| ids.contains(event_id.as_str()));
                if earlier || !seen_now.insert((user_id, event_id.as_str())) {
                    outcomes.push(RecordOutcome::Duplicate);
                    continue;
                }
            }
            let kind_id = reservation.id(&e.kind)?;
            let seq = self.seqs.take(user_id, new)?;
            // The head's event count is derived; the sequence is primary.
            // Where they disagree the aggregates are damaged: refuse the
            // write (a rebuild repairs them) rather than build on it.
            let counted = self.state.next_seq(user_id, new)?;
            if counted != seq {
                return Err(metrics::count_mismatch(user_id, counted, seq));
            }
            let key = EventKey {
                user_id,
                ts_ms: e.ts_ms,
                seq,
            };
            timeline::put(batch, &key, kind_id, e)?;
            if self.exposure_id.is_some() {
                self.exposures
                    .add(user_id, Fact::of_event(e, seq, kind_id, self.exposure_id));
            }
            let is_activity = metrics::counts_as_activity(w.non_activity_kinds, e.kind.as_str());
            self.state.add(
                &Contribution {
                    user_id,
                    kind_id,
                    is_activity,
                    ts_ms: e.ts_ms,
                    amount_minor: e.amount_minor,
                    session_id: e.session_id.as_deref(),
                },
                new,
            )?;
            if !self.dims.is_empty() {
                let de = DimEvent {
                    user_id,
                    seq,
                    kind_id,
                    kind: e.kind.as_str(),
                    is_activity,
                    ts_ms: e.ts_ms,
                    amount_minor: e.amount_minor,
                };
                let props = &e.properties;
                self.dims.add(&w.dims.values, &de, |p| {
                    props.get(p).map(crate::dims::text_of)
                });
            }
            if !self.features.set().is_empty() {
                self.features.add(user_id, new, seq, e);
            }
            if let Some((ledger, rules)) = ledger.as_mut() {
                let campaign = match e.properties.get(crate::kinds::CAMPAIGN_PROPERTY) {
                    Some(crate::timeline::PropValue::Str(c)) => Some(c.as_str()),
                    _ => None,
                };
                let credit = RewardEvent {
                    seq,
                    kind: e.kind.as_str(),
                    ts_ms: e.ts_ms,
                    amount_minor: e.amount_minor,
                    campaign,
                    is_activity,
                };
                ledger.event_credit(user_id, &credit, *rules)?;
            }
            outcomes.push(RecordOutcome::Recorded { user_id, seq });
        }
        if self.remember_ids {
            for (user_id, id) in seen_now {
                self.seen.entry(user_id).or_default().insert(id.to_owned());
            }
        }
        Ok(outcomes)
    }

    /// (user, day) activity days this write added so far.
    pub(super) fn new_active_days(&self) -> u64 {
        self.state.new_active_days()
    }

    /// Puts the sequence records, per-user state and exposures into
    /// `batch`; returns how many (user, day) activity days the write added.
    pub(super) fn finish(
        self,
        w: &Writer<'_>,
        batch: &mut Batch,
    ) -> Result<(u64, crate::dims::Records)> {
        let new_active_days = self.state.new_active_days();
        // Who has ever had an exposure is in the heads (their first day of
        // the kind); only they have assignments to read.
        let exposed: FxHashSet<u32> = match self.exposure_id {
            Some(x) => self
                .exposures
                .users()
                .filter(|u| self.state.has_kind(*u, x))
                .collect(),
            None => FxHashSet::default(),
        };
        self.features.finish(w.store, w.kinds, batch)?;
        self.seqs.finish(batch)?;
        self.state.finish(batch)?;
        self.exposures.finish(|u| exposed.contains(&u), batch)?;
        let records = self.dims.finish(w.store, batch)?;
        Ok((new_active_days, records))
    }
}
