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

use std::sync::Arc;

use super::registry::{put_records, Records};
use super::{DimSet, Registry};
use crate::error::Result;
use crate::keys::dims::{self as dk, DimField};
use crate::kinds::ids as kind_ids;
use crate::metrics::state::Deltas;
use crate::order::RwLock;
use crate::store::Batch;
use crate::time::local_day;

/// What a dimension reads of one event.
pub(crate) struct DimEvent<'a> {
    pub user_id: u32,
    pub kind_id: u32,
    pub kind: &'a str,
    pub is_activity: bool,
    pub ts_ms: i64,
    pub amount_minor: Option<i64>,
}

/// The dimension deltas of one write.
pub(crate) struct DimWrites {
    set: Arc<DimSet>,
    offset_minutes: i32,
    deltas: Deltas,
    records: Records,
}

impl DimWrites {
    /// The dimension side of a write under `set`.
    pub fn new(set: Arc<DimSet>, offset_minutes: i32) -> Self {
        DimWrites {
            set,
            offset_minutes,
            deltas: Deltas::default(),
            records: Vec::new(),
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
        }
    }

    /// Puts the deltas and the registry records into `batch`; returns the
    /// records, to be marked stored once the batch commits.
    pub fn finish(self, batch: &mut Batch) -> Result<Records> {
        put_records(batch, &self.records)?;
        self.deltas.write(batch)?;
        Ok(self.records)
    }
}

/// Adds (`sign` 1) or takes away (−1) one event's part of dimension `dim`
/// value `value`.
pub(super) fn contribute(
    deltas: &mut Deltas,
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
    for &kind in kinds {
        let key = dk::users(dim, kind, day, value, e.user_id);
        if sign > 0 {
            deltas.add_user(key, e.user_id);
        } else {
            deltas.remove_user(key, e.user_id);
        }
    }
    deltas.count(
        dk::counter(dim, day, value, DimField::Events, e.kind_id),
        sign,
    );
    let amount = e.amount_minor.unwrap_or(0);
    let money = match e.kind_id {
        kind_ids::PURCHASE => Some((DimField::Orders, DimField::Gmv)),
        kind_ids::REFUND => Some((DimField::Refunds, DimField::RefundMinor)),
        _ => None,
    };
    if let Some((n, sum)) = money {
        deltas.count(dk::counter(dim, day, value, n, 0), sign);
        deltas.count(
            dk::counter(dim, day, value, sum, 0),
            sign.saturating_mul(amount),
        );
    }
}
