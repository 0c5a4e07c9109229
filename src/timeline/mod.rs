//! Event timelines (SPEC §2): recording events idempotently and reading a
//! user's events newest-first.
//!
//! Owns the `events` and `event_ids` column families and the custom-kind
//! registry. One `record_batch` call is one atomic WriteBatch holding the
//! events, their dedup entries, any new user ids and kinds, every
//! aggregate delta and every rule-earned points credit (through the ledger's
//! session). Must not touch profiles or tags.

mod event;
mod kinds;

use std::collections::HashSet;

use rocksdb::WriteBatch;

pub use event::{
    Event, EventKind, PropValue, RecordOutcome, StoredEvent, MAX_AMOUNT_MINOR, MAX_EVENT_ID_BYTES,
    MAX_KIND_BYTES, MAX_PROPERTIES, MAX_PROPERTIES_BYTES, MAX_SESSION_ID_BYTES,
};
pub use kinds::{KindRegistry, MAX_CUSTOM_KINDS};

use event::{EventValue, StoredProp};

use crate::codec;
use crate::error::{CorruptionError, Error, InputError, Problem, Result};
use crate::keys::{self, EventKey};
use crate::metrics;
use crate::store::{decode_value, Cf, Store};
use crate::users::{self, Allocator, LockStripes, UserWrites};

/// Most events one `record_batch` call may carry.
pub const MAX_BATCH_EVENTS: usize = 100_000;

/// Most events one `timeline` call returns.
pub const MAX_TIMELINE_LIMIT: usize = 100_000;

/// What the timeline needs from the store to write.
pub(crate) struct Writer<'a> {
    pub store: &'a Store,
    pub allocator: &'a Allocator,
    pub stripes: &'a LockStripes,
    pub kinds: &'a KindRegistry,
    /// Kinds that do not count as activity, by name.
    pub non_activity_kinds: &'a [String],
    /// Earning rules: a rule credit rides in its event's batch. Read once
    /// the stripes are held, so a settings change (which holds them all) is
    /// wholly before or after this write.
    pub ledger_settings: &'a parking_lot::RwLock<std::sync::Arc<crate::ledger::LedgerSettings>>,
}

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
        let mut batch = WriteBatch::default();
        let reservation =
            self.kinds
                .reserve(self.store, events.iter().map(|e| &e.kind), &mut batch)?;
        let mut users = UserWrites::new(self.store, self.allocator);
        let events_cf = self.store.cf(Cf::Events)?;
        let ids_cf = self.store.cf(Cf::EventIds)?;
        let mut seen_in_batch: HashSet<(&str, &str)> = HashSet::new();
        let mut outcomes = Vec::with_capacity(events.len());
        let mut contributions: Vec<metrics::state::Contribution<'_>> = Vec::new();
        // Only stores with earning rules pay for a ledger session.
        let ledger_settings = self.ledger_settings.read().clone();
        let mut ledger = (!ledger_settings.rules.is_empty())
            .then(|| crate::ledger::session::Session::new(self.store, &ledger_settings));

        for e in events {
            if let Some(event_id) = &e.event_id {
                if !seen_in_batch.insert((e.user.as_str(), event_id.as_str())) {
                    outcomes.push(RecordOutcome::Duplicate);
                    continue;
                }
                if let Some(user_id) = users.existing_id(&e.user)? {
                    let key = keys::user_and_name(user_id, event_id);
                    if self.store.contains(Cf::EventIds, &key)? {
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
            let value = EventValue {
                kind_id,
                event_id: e.event_id.clone(),
                session_id: e.session_id.clone(),
                amount_minor: e.amount_minor,
                properties: e
                    .properties
                    .iter()
                    .map(|(k, v)| (k.clone(), StoredProp::from(v)))
                    .collect(),
            };
            batch.put_cf(events_cf, key.encode(), codec::encode(&value));
            if let Some(event_id) = &e.event_id {
                batch.put_cf(
                    ids_cf,
                    keys::user_and_name(user_id, event_id),
                    codec::encode(&(e.ts_ms, seq)),
                );
            }
            contributions.push(metrics::state::Contribution {
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

/// Decodes one stored event.
pub(crate) fn decode_event(
    kinds: &KindRegistry,
    user: &str,
    key: &[u8],
    value: &[u8],
) -> Result<StoredEvent> {
    let k = EventKey::decode(Cf::Events.name(), key)?;
    let v: EventValue = decode_value(Cf::Events, key, value)?;
    let kind = kinds.kind(v.kind_id).ok_or_else(|| CorruptionError {
        cf: Cf::Events.name(),
        what: "value",
        key: key.to_vec(),
        reason: format!("unknown kind id {}", v.kind_id),
    })?;
    Ok(StoredEvent {
        event: Event {
            user: user.to_owned(),
            kind,
            ts_ms: k.ts_ms,
            event_id: v.event_id,
            session_id: v.session_id,
            amount_minor: v.amount_minor,
            properties: v
                .properties
                .into_iter()
                .map(|(k, p)| (k, p.into()))
                .collect(),
        },
        seq: k.seq,
    })
}

/// A user's events with `from_ms <= ts_ms < to_ms`, newest first, at most `limit`.
pub(crate) fn timeline(
    store: &Store,
    kinds: &KindRegistry,
    user: &str,
    from_ms: i64,
    to_ms: i64,
    limit: usize,
) -> Result<Vec<StoredEvent>> {
    if limit > MAX_TIMELINE_LIMIT {
        return Err(InputError::new(
            "limit",
            Problem::OutOfRange {
                value: limit as i64,
                min: 0,
                max: MAX_TIMELINE_LIMIT as i64,
            },
        )
        .into());
    }
    let Some(user_id) = users::id_of(store, user)? else {
        return Err(Error::UnknownUser {
            user: user.to_owned(),
        });
    };
    let mut out = Vec::new();
    if from_ms >= to_ms || limit == 0 {
        return Ok(out);
    }
    let (start, until) = newest_first_bounds(user_id, to_ms);
    for item in store.range(Cf::Events, &start, until)? {
        let (k, v) = item?;
        let e = decode_event(kinds, user, &k, &v)?;
        if e.event.ts_ms < from_ms {
            break;
        }
        out.push(e);
        if out.len() == limit {
            break;
        }
    }
    Ok(out)
}

/// Where a newest-first scan of `user_id`'s events before `to_ms` starts and
/// ends: the newest possible key below `to_ms` (keys carry the inverted time,
/// so a forward scan walks back in time) up to the end of the user's prefix.
fn newest_first_bounds(user_id: u32, to_ms: i64) -> ([u8; keys::EVENT_KEY_BYTES], Option<Vec<u8>>) {
    let start = EventKey {
        user_id,
        ts_ms: to_ms - 1,
        seq: u32::MAX,
    }
    .encode();
    (start, keys::prefix_successor(&keys::user(user_id)))
}

/// `(ts_ms, kind_id)` of every event of `user_id` with `from_ms <= ts_ms <
/// to_ms`, oldest first. For metrics that need event times (funnels).
pub(crate) fn kinds_and_times(
    store: &crate::store::Snapshot<'_>,
    user_id: u32,
    from_ms: i64,
    to_ms: i64,
) -> Result<Vec<(i64, u32)>> {
    let mut out = Vec::new();
    if from_ms >= to_ms {
        return Ok(out);
    }
    let (start, until) = newest_first_bounds(user_id, to_ms);
    for item in store.range(Cf::Events, &start, until)? {
        let (k, v) = item?;
        let key = EventKey::decode(Cf::Events.name(), &k)?;
        if key.user_id != user_id || key.ts_ms < from_ms {
            break;
        }
        let value: EventValue = decode_value(Cf::Events, &k, &v)?;
        out.push((key.ts_ms, value.kind_id));
    }
    out.reverse();
    Ok(out)
}

/// Deletes every event of `user_id` and its event-id index entries (erasure,
/// SPEC §5), in `batch`; returns what the aggregates must forget.
pub(crate) fn erase(
    store: &Store,
    batch: &mut WriteBatch,
    user_id: u32,
) -> Result<Vec<metrics::state::ErasedEvent>> {
    let prefix = keys::user(user_id);
    let events_cf = store.cf(Cf::Events)?;
    let ids_cf = store.cf(Cf::EventIds)?;
    let mut out = Vec::new();
    for item in store.prefix(Cf::Events, &prefix)? {
        let (k, v) = item?;
        let key = EventKey::decode(Cf::Events.name(), &k)?;
        let value: EventValue = decode_value(Cf::Events, &k, &v)?;
        out.push(metrics::state::ErasedEvent {
            kind_id: value.kind_id,
            ts_ms: key.ts_ms,
            amount_minor: value.amount_minor,
        });
        batch.delete_cf(events_cf, k);
    }
    for item in store.prefix(Cf::EventIds, &prefix)? {
        let (k, _) = item?;
        batch.delete_cf(ids_cf, k);
    }
    Ok(out)
}

/// What the aggregates need from one stored event.
/// See [`for_each_event`].
pub(crate) struct EventFacts {
    pub user_id: u32,
    pub ts_ms: i64,
    pub kind_id: u32,
    pub amount_minor: Option<i64>,
    pub session_id: Option<String>,
}

/// Calls `f` with every stored event in key order (user by user), for
/// rebuilding aggregates. Stops at the first error.
pub(crate) fn for_each_event(
    store: &Store,
    mut f: impl FnMut(EventFacts) -> Result<()>,
) -> Result<()> {
    for item in store.range(Cf::Events, &[], None)? {
        let (k, v) = item?;
        let key = EventKey::decode(Cf::Events.name(), &k)?;
        let value: EventValue = decode_value(Cf::Events, &k, &v)?;
        f(EventFacts {
            user_id: key.user_id,
            ts_ms: key.ts_ms,
            kind_id: value.kind_id,
            amount_minor: value.amount_minor,
            session_id: value.session_id,
        })?;
    }
    Ok(())
}
