//! Event timelines (SPEC §2): the event records and their dedup index, and
//! reading a user's events newest-first.
//!
//! Owns the `events` and `event_ids` column families: what an event is, its
//! validation, its stored form, and each user's next event sequence number
//! (`seq`: a primary record, never derived). The write path (`write`) puts events through
//! `put` into the batch that also carries their aggregate deltas. Must not
//! touch profiles, tags, aggregates or the ledger.

mod event;
mod facts;
#[cfg(feature = "json")]
pub mod json;
mod seq;

use crate::store::Batch;
use crate::store::Reader;

pub(crate) use crate::kinds::KindRegistry;
pub use crate::kinds::{EventKind, MAX_CUSTOM_KINDS, MAX_KIND_BYTES};
pub use event::{
    Event, PropValue, RecordOutcome, StoredEvent, GROUP_JOIN, GROUP_OPEN, MAX_AMOUNT_MINOR,
    MAX_EVENT_ID_BYTES, MAX_GROUP_TARGET, MAX_PROPERTIES, MAX_PROPERTIES_BYTES,
    MAX_SESSION_ID_BYTES, MAX_SOCIAL_ID_BYTES,
};

pub(crate) use event::{EventValue, StoredProp};
use event::{EventValueRef, Social};
pub(crate) use facts::{facts, facts_at, Fact};
pub use facts::{EXPERIMENT_PROPERTY, VARIANT_PROPERTY};
pub(crate) use seq::{rebuild_sequences, stored_next as stored_next_seq, Sequences};

use crate::codec;
use crate::error::{CorruptionError, Error, InputError, Problem, Result};
use crate::keys::{self, EventKey};
use crate::store::{decode_value, Cf, Store};
use crate::users;

/// Most events one `record_batch` call may carry.
pub const MAX_BATCH_EVENTS: usize = 100_000;

/// Most events one `timeline` call returns.
pub const MAX_TIMELINE_LIMIT: usize = 100_000;

/// Which of `(user_id, event_id)` were already recorded (the dedup lookups
/// of SPEC §2's idempotency), looked up together; answers in input order.
pub(crate) fn recorded(store: &Store, ids: &[(u32, &str)]) -> Result<Vec<bool>> {
    let mut order: Vec<(Vec<u8>, usize)> = ids
        .iter()
        .enumerate()
        .map(|(i, (u, e))| (keys::user_and_name(*u, e), i))
        .collect();
    order.sort_unstable();
    let sorted: Vec<Vec<u8>> = order.iter().map(|(k, _)| k.clone()).collect();
    let found = store.contains_sorted(Cf::EventIds, &sorted)?;
    let mut out = vec![false; ids.len()];
    for ((_, i), hit) in order.into_iter().zip(found) {
        out[i] = hit;
    }
    Ok(out)
}

/// Puts one event under `key` and, when it has an id, its dedup entry, into
/// `batch`.
pub(crate) fn put(batch: &mut Batch, key: &EventKey, kind_id: u32, e: &Event) -> Result<()> {
    let value = EventValueRef {
        kind_id,
        event_id: e.event_id.as_deref(),
        session_id: e.session_id.as_deref(),
        amount_minor: e.amount_minor,
        properties: &e.properties,
    };
    // Events without social fields keep format 1's bytes: nothing stored
    // before them needs rewriting, and they pay nothing for the fields.
    let bytes = match e.social() {
        None => codec::encode(&value)?,
        Some(social) => codec::encode_as(codec::FORMAT_V2, &(value, social))?,
    };
    batch.put(Cf::Events, key.encode(), bytes);
    if let Some(event_id) = &e.event_id {
        // The key is the whole record: dedup asks only whether it exists.
        batch.put(Cf::EventIds, keys::user_and_name(key.user_id, event_id), []);
    }
    Ok(())
}

/// Decodes one stored event.
pub(crate) fn decode_event(
    kinds: &KindRegistry,
    user: &str,
    key: &[u8],
    value: &[u8],
) -> Result<StoredEvent> {
    let k = EventKey::decode(Cf::Events.name(), key)?;
    let v = decode_event_value(key, value)?;
    stored_event(kinds, user, key, k, v)
}

/// Decodes an event value of either layout: format 1, or format 2 with the
/// social fields after the rest.
pub(crate) fn decode_event_value(key: &[u8], value: &[u8]) -> Result<EventValue> {
    if value.first() != Some(&codec::FORMAT_V2) {
        return decode_value(Cf::Events, key, value);
    }
    let (mut v, social): (EventValue, Social) = codec::decode_format(value, codec::FORMAT_V2)
        .map_err(|e| CorruptionError {
            cf: Cf::Events.name(),
            what: "value",
            key: key.to_vec(),
            reason: e.to_string(),
        })?;
    v.social = Some(social);
    Ok(v)
}

/// The stored event of a decoded key and value (`raw_key` names it in errors).
fn stored_event(
    kinds: &KindRegistry,
    user: &str,
    raw_key: &[u8],
    k: EventKey,
    v: EventValue,
) -> Result<StoredEvent> {
    let social = v.social.unwrap_or_default();
    let kind = kinds.kind(v.kind_id).ok_or_else(|| CorruptionError {
        cf: Cf::Events.name(),
        what: "value",
        key: raw_key.to_vec(),
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
            share_id: social.share_id,
            via: social.via,
            group_id: social.group_id,
            group_target: social.group_target,
            group_deadline_ms: social.group_deadline_ms,
        },
        seq: k.seq,
    })
}

/// A user's events with `from_ms <= ts_ms < to_ms`, newest first, at most `limit`.
pub(crate) fn timeline(
    store: &impl Reader,
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
    // An alias reads its target's timeline, labelled with the target.
    let (user_id, user) = match users::lookup(store, user)? {
        Some(users::NameEntry::User(id)) => (id, user.to_owned()),
        Some(users::NameEntry::Alias { user_id, into }) => (user_id, into),
        None => {
            return Err(Error::UnknownUser {
                user: user.to_owned(),
            })
        }
    };
    let user = user.as_str();
    let mut out = Vec::new();
    if from_ms >= to_ms || limit == 0 {
        return Ok(out);
    }
    let (start, until) = newest_first_bounds(user_id, to_ms);
    for item in store.read_range(Cf::Events, &start, until)? {
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

/// Takes every event of `user_id` out (an identity merge moves them): puts
/// the deletion of each event and of its event-id entries into `batch`, and
/// returns the events whole (labelled `user`), newest first, with the facts
/// the aggregates must forget — one scan for both. `None` when there are
/// more than `max` (a merge moves at most that many).
pub(crate) fn take_events(
    store: &Store,
    kinds: &KindRegistry,
    batch: &mut Batch,
    user_id: u32,
    user: &str,
    max: usize,
) -> Result<Option<Vec<(StoredEvent, EventFacts)>>> {
    let mut out = Vec::new();
    for item in store.prefix(Cf::Events, &keys::user(user_id))? {
        let (k, v) = item?;
        if out.len() == max {
            return Ok(None);
        }
        let key = EventKey::decode(Cf::Events.name(), &k)?;
        let value = decode_event_value(&k, &v)?;
        let facts = EventFacts::of(user_id, &key, &value);
        out.push((stored_event(kinds, user, &k, key, value)?, facts));
        batch.delete(Cf::Events, k);
    }
    delete_event_ids(store, batch, user_id)?;
    Ok(Some(out))
}

/// [`erase`] a page at a time: deletes at most `limit` of `user_id`'s
/// events after the key `after`, with their event-id entries, into
/// `batch`; returns the facts of the deleted events and the last key
/// (`None`: none was left). A step of an erasure in steps; the user's
/// sequence record goes last ([`delete_event_ids`] through [`erase`]).
pub(crate) fn erase_page(
    store: &Store,
    batch: &mut Batch,
    user_id: u32,
    after: Option<&[u8]>,
    limit: usize,
) -> Result<(Vec<EventFacts>, Option<Vec<u8>>)> {
    let mut out = Vec::new();
    let last = store.prefix_page(Cf::Events, &keys::user(user_id), after, limit, |k, v| {
        let key = EventKey::decode(Cf::Events.name(), k)?;
        let value = decode_event_value(k, v)?;
        if let Some(id) = &value.event_id {
            batch.delete(Cf::EventIds, keys::user_and_name(user_id, id));
        }
        out.push(EventFacts::of(user_id, &key, &value));
        batch.delete(Cf::Events, k);
        Ok(())
    })?;
    Ok((out, last))
}

/// The facts of `user_id`'s events that attribution keeps something of —
/// shares and group-buy events — for an erasure in steps, whose social part
/// goes first (its other events leave attribution with the user's records).
pub(crate) fn social_facts(store: &Store, user_id: u32) -> Result<Vec<EventFacts>> {
    let mut out = Vec::new();
    for item in store.prefix(Cf::Events, &keys::user(user_id))? {
        let (k, v) = item?;
        let key = EventKey::decode(Cf::Events.name(), &k)?;
        let value = decode_event_value(&k, &v)?;
        let facts = EventFacts::of(user_id, &key, &value);
        if facts.kind_id == crate::kinds::ids::SHARE || facts.group.is_some() {
            out.push(facts);
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
    let events = events_between(store, user_id, (from_ms, to_ms), |_| ())?;
    Ok(events.into_iter().map(|(t, k, ())| (t, k)).collect())
}

/// `(ts_ms, kind_id, f(value))` of every event of `user_id` with
/// `from_ms <= ts_ms < to_ms`, oldest first (a funnel whose steps filter
/// on properties: `f` reads them).
pub(crate) fn events_between<T>(
    store: &crate::store::Snapshot<'_>,
    user_id: u32,
    (from_ms, to_ms): (i64, i64),
    f: impl Fn(&EventValue) -> T,
) -> Result<Vec<(i64, u32, T)>> {
    let mut out = Vec::new();
    if from_ms >= to_ms {
        return Ok(out);
    }
    let (start, until) = newest_first_bounds(user_id, to_ms);
    walk_back(
        store.range(Cf::Events, &start, until)?,
        user_id,
        from_ms,
        |key, value| {
            out.push((key.ts_ms, value.kind_id, f(&value)));
        },
    )?;
    out.reverse();
    Ok(out)
}

/// Calls `f` with each event of a newest-first scan of `user_id`'s events
/// until one is older than `from_ms`.
fn walk_back(
    scan: impl Iterator<Item = Result<crate::store::KeyValue>>,
    user_id: u32,
    from_ms: i64,
    mut f: impl FnMut(EventKey, EventValue),
) -> Result<()> {
    for item in scan {
        let (k, v) = item?;
        let key = EventKey::decode(Cf::Events.name(), &k)?;
        if key.user_id != user_id || key.ts_ms < from_ms {
            break;
        }
        f(key, decode_event_value(&k, &v)?);
    }
    Ok(())
}

/// `(ts_ms, seq, amount_minor)` of every event of `kind_id` of `user_id`
/// with `from_ms <= ts_ms < to_ms`, newest first (attribution reads a
/// user's purchases in a window and its signups of one day).
pub(crate) fn events_of_kind(
    store: &Store,
    user_id: u32,
    kind_id: u32,
    from_ms: i64,
    to_ms: i64,
) -> Result<Vec<(i64, u32, i64)>> {
    let mut out = Vec::new();
    if from_ms >= to_ms {
        return Ok(out);
    }
    let (start, until) = newest_first_bounds(user_id, to_ms);
    walk_back(
        store.range(Cf::Events, &start, until)?,
        user_id,
        from_ms,
        |key, value| {
            if value.kind_id == kind_id {
                out.push((key.ts_ms, key.seq, value.amount_minor.unwrap_or(0)));
            }
        },
    )?;
    Ok(out)
}

/// Deletes every event of `user_id` and its event-id index entries (erasure,
/// SPEC §5), in `batch`; returns the facts of every deleted event, which
/// the aggregates must forget.
pub(crate) fn erase(store: &Store, batch: &mut Batch, user_id: u32) -> Result<Vec<EventFacts>> {
    let prefix = keys::user(user_id);
    let mut out = Vec::new();
    for item in store.prefix(Cf::Events, &prefix)? {
        let (k, v) = item?;
        let key = EventKey::decode(Cf::Events.name(), &k)?;
        let value = decode_event_value(&k, &v)?;
        out.push(EventFacts::of(user_id, &key, &value));
        batch.delete(Cf::Events, k);
    }
    delete_event_ids(store, batch, user_id)?;
    Ok(out)
}

/// Deletes every event-id entry of `user_id` and its sequence record, in
/// `batch`.
pub(crate) fn delete_event_ids(store: &Store, batch: &mut Batch, user_id: u32) -> Result<()> {
    for item in store.prefix(Cf::EventIds, &keys::user(user_id))? {
        let (k, _) = item?;
        batch.delete(Cf::EventIds, k);
    }
    Ok(())
}

/// What the aggregates need from one stored event (see [`for_each_event`]
/// and [`erase`]).
pub(crate) struct EventFacts {
    pub user_id: u32,
    pub ts_ms: i64,
    pub seq: u32,
    pub kind_id: u32,
    pub amount_minor: Option<i64>,
    pub session_id: Option<String>,
    pub share_id: Option<String>,
    pub via: Option<String>,
    /// The group buy of a `group_open` (with its target and deadline) or
    /// `group_join`.
    pub group: Option<GroupFacts>,
}

/// The group-buy fields of a stored event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GroupFacts {
    pub group_id: String,
    /// `(target, deadline_ms)` of an opening; `None` for a join.
    pub open: Option<(u32, i64)>,
}

impl GroupFacts {
    /// The group fields of an event, if it has a group id.
    pub fn of(
        group_id: Option<&str>,
        target: Option<u32>,
        deadline_ms: Option<i64>,
    ) -> Option<Self> {
        Some(GroupFacts {
            group_id: group_id?.to_owned(),
            open: target.zip(deadline_ms),
        })
    }
}

impl EventFacts {
    fn of(user_id: u32, key: &EventKey, value: &EventValue) -> Self {
        let social = value.social.as_ref();
        EventFacts {
            user_id,
            ts_ms: key.ts_ms,
            seq: key.seq,
            kind_id: value.kind_id,
            amount_minor: value.amount_minor,
            session_id: value.session_id.clone(),
            share_id: social.and_then(|s| s.share_id.clone()),
            via: social.and_then(|s| s.via.clone()),
            group: social.and_then(|s| {
                GroupFacts::of(s.group_id.as_deref(), s.group_target, s.group_deadline_ms)
            }),
        }
    }
}

/// Calls `f` with the key and facts of every stored event after the key
/// `after` (all: `None`), in key order (user by user), for a rebuild's
/// replay that resumes. Stops at the first error.
pub(crate) fn for_each_event_after(
    store: &Store,
    after: Option<&[u8]>,
    mut f: impl FnMut(&[u8], EventFacts) -> Result<()>,
) -> Result<()> {
    let from = keys::resume_at(&[], after);
    for item in store.range(Cf::Events, &from, None)? {
        let (k, v) = item?;
        let key = EventKey::decode(Cf::Events.name(), &k)?;
        let value = decode_event_value(&k, &v)?;
        f(&k, EventFacts::of(key.user_id, &key, &value))?;
    }
    Ok(())
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
        let value = decode_event_value(&k, &v)?;
        f(EventFacts::of(key.user_id, &key, &value))?;
    }
    Ok(())
}

/// Calls `f` with the key and value of every event of `user_id` with
/// `from_ms <= ts_ms <= to_ms`, newest first, until it returns false (a
/// read of one window of a user's history: derived per-user state is
/// recomputed from it).
pub(crate) fn for_user_events(
    store: &impl Reader,
    user_id: u32,
    from_ms: i64,
    to_ms: i64,
    mut f: impl FnMut(&EventKey, EventValue) -> Result<bool>,
) -> Result<()> {
    if from_ms > to_ms {
        return Ok(());
    }
    let (start, until) = newest_first_bounds(user_id, to_ms.saturating_add(1));
    for item in store.read_range(Cf::Events, &start, until)? {
        let (k, v) = item?;
        let key = EventKey::decode(Cf::Events.name(), &k)?;
        if key.ts_ms < from_ms || !f(&key, decode_event_value(&k, &v)?)? {
            break;
        }
    }
    Ok(())
}

/// `(ts_ms, seq, amount_minor)` of `user_id`'s oldest stored event before
/// `(ts_ms, seq)` that `f` accepts: a once-per-user reward asks whether an
/// earlier event holds it. Reads every older event of the user (keys
/// carry the inverted time, so the oldest comes last).
pub(crate) fn oldest_before(
    store: &Store,
    user_id: u32,
    before: (i64, u32),
    f: impl Fn(&EventValue) -> bool,
) -> Result<Option<(i64, u32, Option<i64>)>> {
    let mut oldest = None;
    each_older(store, user_id, before, |key, value| {
        if f(value) {
            oldest = Some((key.ts_ms, key.seq, value.amount_minor));
        }
    })?;
    Ok(oldest)
}

/// Calls `f` with every stored event of `user_id` before `(ts_ms, seq)`,
/// newest first.
pub(crate) fn each_older(
    store: &Store,
    user_id: u32,
    (ts_ms, seq): (i64, u32),
    mut f: impl FnMut(&EventKey, &EventValue),
) -> Result<()> {
    let start = EventKey {
        user_id,
        ts_ms,
        seq,
    }
    .encode();
    let end = keys::prefix_successor(&keys::user(user_id));
    for item in store.range(Cf::Events, &start, end)? {
        let (k, v) = item?;
        let key = EventKey::decode(Cf::Events.name(), &k)?;
        if (key.ts_ms, key.seq) != (ts_ms, seq) {
            f(&key, &decode_event_value(&k, &v)?);
        }
    }
    Ok(())
}

/// Whether `user_id` has an event at or before `t_ms` (one seek).
pub(crate) fn has_event_upto(store: &impl Reader, user_id: u32, t_ms: i64) -> Result<bool> {
    let (start, until) = newest_first_bounds(user_id, t_ms.saturating_add(1));
    Ok(store
        .read_range(Cf::Events, &start, until)?
        .next()
        .is_some())
}
