//! The dimension side of one write: each accepted event's contribution to
//! its (dimension, value, day) user sets and counters, summed per key into
//! one merge operand each; and the same taken out for erased events.
//!
//! Adding a user to a set is idempotent, so late, duplicate-day and
//! out-of-order events need no per-user state: a set holds exactly the
//! users with at least one stored event of the (kind, value, day). Erasure
//! takes every event of the user away, so removing the user from every set
//! its erased events touch is exact too; a merge is an erasure of the
//! visitor and its events recorded again under the member.

use std::collections::BTreeMap;
use std::sync::Arc;

use roaring::RoaringBitmap;
use rustc_hash::FxHashMap;

use super::registry::{put_records, Records};
use super::{DimSet, Registry};
use crate::error::Result;
use crate::keys::dims::{self as dk, DimField};
use crate::keys::metrics::chunk_of;
use crate::kinds::ids as kind_ids;
use crate::order::RwLock;
use crate::store::merge::{encode_counter, BitmapDelta};
use crate::store::Batch;
use crate::store::Cf;
use crate::time::local_day;

/// What a dimension reads of one event.
pub(crate) struct DimEvent<'a> {
    pub user_id: u32,
    /// The event's sequence number (orders touches at one instant).
    pub seq: u32,
    pub kind_id: u32,
    pub kind: &'a str,
    pub is_activity: bool,
    pub ts_ms: i64,
    pub amount_minor: Option<i64>,
}

/// A user set's coordinates: dimension, kind, day, value, user chunk.
type SetAt = (u16, u32, i32, u32, u16);
/// A counter's: dimension, day, value, field, kind.
type CounterAt = (u16, i32, u32, DimField, u32);

/// Changes to the dimension aggregates, summed per set and counter by
/// their coordinates (a key is built once per write, not per event).
#[derive(Debug, Default)]
pub(crate) struct DimDeltas {
    sets: FxHashMap<SetAt, BitmapDelta>,
    counters: FxHashMap<CounterAt, i64>,
    touches: FxHashMap<TouchAt, BitmapDelta>,
}

/// A touch set's coordinates: last (else first), dimension, value, chunk.
pub(crate) type TouchAt = (bool, u16, u32, u16);

/// Adds (`sign` > 0) or removes `user_id` in `d`.
fn flip(d: &mut BitmapDelta, user_id: u32, sign: i64) {
    let (from, to) = if sign > 0 {
        (&mut d.removes, &mut d.adds)
    } else {
        (&mut d.adds, &mut d.removes)
    };
    from.remove(user_id);
    to.insert(user_id);
}

impl DimDeltas {
    fn user(&mut self, at: SetAt, user_id: u32, sign: i64) {
        flip(self.sets.entry(at).or_default(), user_id, sign);
    }

    pub(super) fn touch_user(&mut self, at: TouchAt, user_id: u32, sign: i64) {
        flip(self.touches.entry(at).or_default(), user_id, sign);
    }

    /// Moves `user_id` between the touch sets of `dim` from `old` to `now`.
    pub(super) fn move_touch(
        &mut self,
        user_id: u32,
        dim: u16,
        old: Option<super::touch::Touch>,
        now: super::touch::Touch,
    ) {
        let chunk = chunk_of(user_id);
        for (last, was, is) in [
            (false, old.map(|o| o.first.2), now.first.2),
            (true, old.map(|o| o.last.2), now.last.2),
        ] {
            if was != Some(is) {
                if let Some(w) = was {
                    self.touch_user((last, dim, w, chunk), user_id, -1);
                }
                self.touch_user((last, dim, is, chunk), user_id, 1);
            }
        }
    }

    fn count(&mut self, at: CounterAt, n: i64) {
        let c = self.counters.entry(at).or_insert(0);
        *c = c.saturating_add(n);
    }

    /// Puts one merge operand per changed set and counter into `batch`.
    pub fn write(self, batch: &mut Batch) -> Result<()> {
        for ((dim, kind, day, value, chunk), d) in self.sets {
            if !d.adds.is_empty() || !d.removes.is_empty() {
                let key = dk::users_of_chunk(dim, kind, day, value, chunk);
                batch.merge(Cf::Metrics, key, d.encode());
            }
        }
        for ((dim, day, value, field, kind), n) in self.counters {
            if n != 0 {
                let key = dk::counter(dim, day, value, field, kind);
                batch.merge(Cf::Metrics, key, encode_counter(n));
            }
        }
        for ((last, dim, value, chunk), d) in self.touches {
            if !d.adds.is_empty() || !d.removes.is_empty() {
                let key = dk::touch_users(last, dim, value, chunk);
                batch.merge(Cf::Metrics, key, d.encode());
            }
        }
        Ok(())
    }

    /// The sets' additions and the counters, by key (`verify`).
    pub fn into_expected(self) -> (BTreeMap<Vec<u8>, RoaringBitmap>, BTreeMap<Vec<u8>, i64>) {
        let sets = self
            .sets
            .into_iter()
            .map(|((dim, kind, day, value, chunk), d)| {
                (dk::users_of_chunk(dim, kind, day, value, chunk), d.adds)
            });
        let touches = self
            .touches
            .into_iter()
            .map(|((last, dim, value, chunk), d)| {
                (dk::touch_users(last, dim, value, chunk), d.adds)
            });
        let sets = sets.chain(touches);
        let counters = self
            .counters
            .into_iter()
            .map(|((dim, day, value, field, kind), n)| {
                (dk::counter(dim, day, value, field, kind), n)
            });
        (sets.collect(), counters.collect())
    }
}

/// The dimension deltas of one write.
pub(crate) struct DimWrites {
    set: Arc<DimSet>,
    offset_minutes: i32,
    deltas: DimDeltas,
    records: Records,
    touches: super::touch::Touches,
}

impl DimWrites {
    /// The dimension side of a write under `set`.
    pub fn new(set: Arc<DimSet>, offset_minutes: i32) -> Self {
        DimWrites {
            set,
            offset_minutes,
            deltas: DimDeltas::default(),
            records: Vec::new(),
            touches: Default::default(),
        }
    }

    /// Whether no dimension is declared (the write skips this side).
    pub fn is_empty(&self) -> bool {
        self.set.is_empty()
    }

    /// Adds one accepted event (`prop`: its property of a name, as text).
    pub fn add<'p>(
        &mut self,
        reg: &RwLock<Registry>,
        e: &DimEvent<'_>,
        prop: impl Fn(&str) -> Option<std::borrow::Cow<'p, str>>,
    ) {
        let set = Arc::clone(&self.set);
        for d in set.stored().iter().filter(|d| d.reads(e.kind)) {
            let Some(text) = prop(&d.dim.name) else {
                continue;
            };
            // (the common case under a shared lock: a value registered and
            // stored, or folded with every id of the cap stored)
            let known = reg.read().settled(d, &text);
            let value = match known {
                Some(v) => v,
                None => reg.write().resolve(d, &text, &mut self.records),
            };
            contribute(&mut self.deltas, self.offset_minutes, d.id, value, e, 1);
            self.touches.note(e.user_id, d.id, (e.ts_ms, e.seq, value));
        }
    }

    /// Puts the deltas and the registry records into `batch`; returns the
    /// records, to be marked stored once the batch commits.
    pub fn finish(mut self, store: &crate::store::Store, batch: &mut Batch) -> Result<Records> {
        put_records(batch, &self.records)?;
        self.touches.finish(store, &mut self.deltas, batch)?;
        self.deltas.write(batch)?;
        Ok(self.records)
    }
}

/// Adds (`sign` 1) or takes away (−1) one event's part of dimension `dim`
/// value `value`.
pub(super) fn contribute(
    deltas: &mut DimDeltas,
    offset_minutes: i32,
    dim: u16,
    value: u32,
    e: &DimEvent<'_>,
    sign: i64,
) {
    let day = local_day(e.ts_ms, offset_minutes);
    let kinds: &[u32] = if e.is_activity {
        &[e.kind_id, kind_ids::ACTIVITY]
    } else {
        &[e.kind_id]
    };
    let chunk = chunk_of(e.user_id);
    for &kind in kinds {
        deltas.user((dim, kind, day, value, chunk), e.user_id, sign);
    }
    deltas.count((dim, day, value, DimField::Events, e.kind_id), sign);
    let amount = e.amount_minor.unwrap_or(0);
    let money = match e.kind_id {
        kind_ids::PURCHASE => Some((DimField::Orders, DimField::Gmv)),
        kind_ids::REFUND => Some((DimField::Refunds, DimField::RefundMinor)),
        _ => None,
    };
    if let Some((n, sum)) = money {
        deltas.count((dim, day, value, n, 0), sign);
        deltas.count((dim, day, value, sum, 0), sign.saturating_mul(amount));
    }
}
