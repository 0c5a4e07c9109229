//! Recording events: one `record_batch` call is one atomic write holding the
//! events and their dedup entries (timeline), any new user ids and custom
//! kinds (users, kinds), every aggregate delta (metrics) and every
//! rule-earned points credit (ledger).

use std::collections::HashSet;

use crate::store::Batch;

use super::Writer;
use crate::error::{InputError, Problem, Result};
use crate::keys::EventKey;
use crate::ledger::session::Session;
use crate::metrics::{self, state::Contribution};
use crate::timeline::{self, Event, RecordOutcome, MAX_BATCH_EVENTS};
use crate::users::UserWrites;

impl Writer<'_> {
    /// Records `events` as one atomic write.
    pub fn record_batch(&self, events: &[Event]) -> Result<Vec<RecordOutcome>> {
        self.store.check_writable()?;
        if events.len() > MAX_BATCH_EVENTS {
            return Err(InputError::new(
                "events",
                Problem::TooMany {
                    count: events.len(),
                    max: MAX_BATCH_EVENTS,
                },
            )
            .into());
        }
        // Validate everything before taking a lock or touching the store: a bad
        // item rejects the whole batch and nothing is written.
        for (i, e) in events.iter().enumerate() {
            e.validate().map_err(|err| err.at(i))?;
        }

        let _guards = self.stripes.lock(events.iter().map(|e| e.user.as_str()));
        let mut batch = Batch::new();
        let reservation = self
            .kinds
            .reserve(events.iter().map(|e| &e.kind), &mut batch)?;
        let mut users = UserWrites::new(self.store, self.allocator);
        let mut seen_in_batch: HashSet<(&str, &str)> = HashSet::new();
        let mut outcomes = Vec::with_capacity(events.len());
        let mut contributions: Vec<Contribution<'_>> = Vec::new();
        // Only stores with earning rules pay for a ledger session.
        let ledger_settings = self.ledger_settings.read().clone();
        let mut ledger =
            (!ledger_settings.rules.is_empty()).then(|| Session::new(self.store, &ledger_settings));

        for e in events {
            if let Some(event_id) = &e.event_id {
                if !seen_in_batch.insert((e.user.as_str(), event_id.as_str())) {
                    outcomes.push(RecordOutcome::Duplicate);
                    continue;
                }
                if let Some(user_id) = users.existing_id(&e.user)? {
                    if timeline::is_recorded(self.store, user_id, event_id)? {
                        outcomes.push(RecordOutcome::Duplicate);
                        continue;
                    }
                }
            }
            let kind_id = reservation.id(&e.kind)?;
            let (user_id, seq) = users.next_event_seq(&e.user)?;
            let key = EventKey {
                user_id,
                ts_ms: e.ts_ms,
                seq,
            };
            timeline::put(&mut batch, &key, kind_id, e)?;
            contributions.push(Contribution {
                user_id,
                kind_id,
                is_activity: metrics::counts_as_activity(self.non_activity_kinds, e.kind.as_str()),
                ts_ms: e.ts_ms,
                amount_minor: e.amount_minor,
                session_id: e.session_id.as_deref(),
            });
            if let Some(ledger) = ledger.as_mut() {
                ledger.rule_credit(user_id, seq, e.kind.as_str(), e.ts_ms, e.amount_minor)?;
            }
            outcomes.push(RecordOutcome::Recorded { user_id, seq });
        }
        metrics::state::apply(
            self.store,
            &mut batch,
            self.store.settings().utc_offset_minutes,
            &contributions,
        )?;
        if let Some(ledger) = ledger {
            ledger.finish(&mut batch)?;
        }
        users.finish(&mut batch)?;
        self.store.write(batch)?;
        reservation.publish();
        Ok(outcomes)
    }
}
