//! Keeping dimensions whole outside the write path: the backfill of a
//! dimension declared on a store with events, the deletion of a dropped
//! one, a rebuild's replay, and `verify`'s re-derivation from the events.

use std::collections::BTreeMap;
use std::sync::Arc;

use roaring::RoaringBitmap;

use super::write::DimDeltas;
use super::write::DimEvent;
use super::{text_of_stored, DimSet, DimWrites, Registry, MAX_VALUE_BYTES, OTHER_ID};
use crate::error::Result;
use crate::keys::{self, dims as dk, metrics as mk, EventKey};
use crate::kinds::KindRegistry;
use crate::order::RwLock;
use crate::store::{Batch, Cf, Store};
use crate::timeline::{decode_event_value, EventValue};

/// Keys deleted per batch by a drop.
const DROP_BATCH_KEYS: usize = 10_000;

/// How the dimensions read kinds: names of kind ids, and which count as
/// activity.
pub(crate) struct KindView<'a> {
    pub kinds: &'a KindRegistry,
    pub non_activity: &'a [String],
}

impl KindView<'_> {
    fn name(&self, kind_id: u32) -> String {
        self.kinds
            .kind(kind_id)
            .map_or_else(String::new, |k| k.as_str().to_owned())
    }

    fn is_activity(&self, name: &str) -> bool {
        crate::metrics::counts_as_activity(self.non_activity, name)
    }

    /// What the dimensions read of a stored event (`name`: its kind's).
    fn event<'n>(&self, key: &EventKey, value: &EventValue, name: &'n str) -> DimEvent<'n> {
        DimEvent {
            user_id: key.user_id,
            seq: key.seq,
            kind_id: value.kind_id,
            kind: name,
            is_activity: self.is_activity(name),
            ts_ms: key.ts_ms,
            amount_minor: value.amount_minor,
        }
    }
}

/// Adds `value`'s event (of `user_id` at `ts_ms`) to `w`.
pub(crate) fn add_stored(
    w: &mut DimWrites,
    reg: &RwLock<Registry>,
    kv: &KindView<'_>,
    key: &EventKey,
    value: &EventValue,
) {
    let name = kv.name(value.kind_id);
    let e = kv.event(key, value, &name);
    w.add(reg, &e, |p| {
        value
            .properties
            .iter()
            .find(|(k, _)| k == p)
            .map(|(_, v)| text_of_stored(v))
    });
}

/// One page of a backfill of the dimensions of `set`: at most `limit`
/// events after the key `after`, in one batch; returns the batch, the
/// registry records it carries (mark them stored once it commits) and the
/// last key (`None`: no event was left).
pub(crate) fn backfill_page(
    store: &Store,
    set: Arc<DimSet>,
    reg: &RwLock<Registry>,
    kv: &KindView<'_>,
    (after, limit): (Option<&[u8]>, usize),
) -> Result<(Batch, super::registry::Records, Option<Vec<u8>>)> {
    let mut w = DimWrites::new(set, store.settings().utc_offset_minutes);
    let from = keys::resume_at(&[], after);
    let mut last = None;
    let mut n = 0;
    for item in store.range(Cf::Events, &from, None)? {
        let (k, v) = item?;
        let key = EventKey::decode(Cf::Events.name(), &k)?;
        let value = decode_event_value(&k, &v)?;
        add_stored(&mut w, reg, kv, &key, &value);
        last = Some(k.to_vec());
        n += 1;
        if n >= limit {
            break;
        }
    }
    let mut batch = Batch::new();
    let records = w.finish(store, &mut batch)?;
    Ok((batch, records, last))
}

/// Takes `user_id`'s events out of every dimension — at most `limit`
/// after the key `after`, as the erasure deleting them reads them (a
/// page of an erasure in steps, or all) — in `batch`. Their values are
/// looked up, never registered.
#[allow(clippy::too_many_arguments)]
pub(crate) fn forget_events(
    store: &Store,
    set: &DimSet,
    reg: &RwLock<Registry>,
    kv: &KindView<'_>,
    user_id: u32,
    (after, limit): (Option<&[u8]>, usize),
    batch: &mut Batch,
) -> Result<()> {
    if set.is_empty() {
        return Ok(());
    }
    let mut deltas = DimDeltas::default();
    let offset = store.settings().utc_offset_minutes;
    if after.is_none() {
        // (the first page of an erasure takes the touches)
        super::touch::forget(store, user_id, &mut deltas, batch)?;
    }
    let held = reg.read();
    store.prefix_page(Cf::Events, &keys::user(user_id), after, limit, |k, v| {
        let key = EventKey::decode(Cf::Events.name(), k)?;
        let value = decode_event_value(k, v)?;
        let name = kv.name(value.kind_id);
        let e = kv.event(&key, &value, &name);
        for d in set.stored().iter().filter(|d| d.reads(&name)) {
            if let Some((_, p)) = value.properties.iter().find(|(k, _)| *k == d.dim.name) {
                let id = held.lookup(d.id, &text_of_stored(p));
                super::write::contribute(&mut deltas, offset, d.id, id, &e, -1);
            }
        }
        Ok(())
    })?;
    deltas.write(batch)
}

/// Deletes dimension `dim`'s aggregates and registered values (batches
/// of bounded size; deleting twice deletes nothing more).
pub(crate) fn drop_step(store: &Store, dim: u16) -> Result<()> {
    store.delete_prefix(
        Cf::Metrics,
        &dk::dim_prefix(mk::USER_SET, dim),
        DROP_BATCH_KEYS,
    )?;
    store.delete_prefix(
        Cf::Metrics,
        &dk::dim_prefix(mk::COUNTER, dim),
        DROP_BATCH_KEYS,
    )?;
    store.delete_prefix(Cf::Metrics, &dk::touch_prefix(false, dim), DROP_BATCH_KEYS)?;
    store.delete_prefix(Cf::Metrics, &dk::touch_prefix(true, dim), DROP_BATCH_KEYS)?;
    super::touch::drop_records(store, dim)?;
    store.delete_prefix(Cf::Meta, &dk::values_of(dim), DROP_BATCH_KEYS)
}

/// What the stored events give every dimension: its user sets and
/// counters (keys of the `metrics` family), and what is wrong with the
/// registry (a value neither registered nor folded by a full cap).
pub(crate) type Expected = (
    BTreeMap<Vec<u8>, RoaringBitmap>,
    BTreeMap<Vec<u8>, i64>,
    Vec<String>,
);

/// Re-derives every dimension from the events (`verify`).
pub(crate) fn expected(
    store: &Store,
    set: &DimSet,
    reg: &Registry,
    kv: &KindView<'_>,
) -> Result<Expected> {
    let mut problems = Vec::new();
    let mut deltas = DimDeltas::default();
    let mut touches = super::touch::Touches::default();
    if set.is_empty() {
        // (no event to read: any touch record left is one too many)
        problems.extend(super::touch::check(store, BTreeMap::new())?);
        return Ok((BTreeMap::new(), BTreeMap::new(), problems));
    }
    for item in store.range(Cf::Events, &[], None)? {
        let (k, v) = item?;
        // (an event that does not decode is reported by the events' own
        // check; here it adds nothing)
        let (Ok(key), Ok(value)) = (
            EventKey::decode(Cf::Events.name(), &k),
            decode_event_value(&k, &v),
        ) else {
            continue;
        };
        let name = kv.name(value.kind_id);
        let e = kv.event(&key, &value, &name);
        for d in set.stored().iter().filter(|d| d.reads(&name)) {
            let Some((_, p)) = value.properties.iter().find(|(k, _)| *k == d.dim.name) else {
                continue;
            };
            let text = text_of_stored(p);
            let id = reg.lookup(d.id, &text);
            let full = reg.count(d.id) >= d.dim.max_values;
            if id == OTHER_ID && !full && text.len() <= MAX_VALUE_BYTES && problems.len() < 100 {
                problems.push(format!(
                    "dimensions: value {text:?} of {:?} is neither registered nor past the cap",
                    d.dim.name
                ));
            }
            touches.note(key.user_id, d.id, (key.ts_ms, key.seq, id));
            super::write::contribute(
                &mut deltas,
                store.settings().utc_offset_minutes,
                d.id,
                id,
                &e,
                1,
            );
        }
    }
    let records = touches.expected(&mut deltas);
    problems.extend(super::touch::check(store, records)?);
    let (sets, counters) = deltas.into_expected();
    Ok((sets, counters, problems))
}
