//! What experiments read of a user's events (docs/metrics.md,
//! "Experiments"): instants, kinds, amounts and, on exposures, the
//! experiment and variant — one newest-first scan from a bound.

use super::event::{EventValue, StoredProp};
use super::{newest_first_bounds, walk_back};
use crate::error::Result;
use crate::keys::EventKey;
use crate::store::{Cf, KeyValue, Snapshot, Store};

/// Property naming an exposure's experiment.
pub const EXPERIMENT_PROPERTY: &str = "experiment";
/// Property naming an exposure's variant.
pub const VARIANT_PROPERTY: &str = "variant";

/// One stored event as experiments see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Fact {
    pub ts_ms: i64,
    pub seq: u32,
    pub kind_id: u32,
    /// 0 when the event has none.
    pub amount_minor: i64,
    /// `(experiment, variant)` of an event of the exposure kind carrying
    /// both as strings; `None` otherwise.
    pub exposure: Option<(String, String)>,
}

/// The `experiment` and `variant` string properties of `properties`.
fn exposure_props<'a, V: 'a>(
    properties: impl IntoIterator<Item = (&'a String, &'a V)>,
    as_str: impl Fn(&V) -> Option<&str>,
) -> Option<(String, String)> {
    let (mut experiment, mut variant) = (None, None);
    for (k, v) in properties {
        match k.as_str() {
            EXPERIMENT_PROPERTY => experiment = as_str(v),
            VARIANT_PROPERTY => variant = as_str(v),
            _ => {}
        }
    }
    Some((experiment?.to_owned(), variant?.to_owned()))
}

impl Fact {
    /// The fact of an event as a caller gives it (the write path's own
    /// events) or as it decodes (`verify`), recorded with `seq` under
    /// `kind_id`.
    pub(crate) fn of_event(
        e: &super::Event,
        seq: u32,
        kind_id: u32,
        exposure_kind: Option<u32>,
    ) -> Self {
        let exposure = if Some(kind_id) == exposure_kind {
            exposure_props(&e.properties, |v| match v {
                super::PropValue::Str(s) => Some(s.as_str()),
                _ => None,
            })
        } else {
            None
        };
        Fact {
            ts_ms: e.ts_ms,
            seq,
            kind_id,
            amount_minor: e.amount_minor.unwrap_or(0),
            exposure,
        }
    }
}

fn fact(key: &EventKey, value: &EventValue, exposure_kind: Option<u32>) -> Fact {
    let exposure = if Some(value.kind_id) == exposure_kind {
        exposure_props(value.properties.iter().map(|(k, v)| (k, v)), |v| match v {
            StoredProp::Str(s) => Some(s.as_str()),
            _ => None,
        })
    } else {
        None
    };
    Fact {
        ts_ms: key.ts_ms,
        seq: key.seq,
        kind_id: value.kind_id,
        amount_minor: value.amount_minor.unwrap_or(0),
        exposure,
    }
}

fn collect(
    scan: impl Iterator<Item = Result<KeyValue>>,
    user_id: u32,
    from_ms: i64,
    exposure_kind: Option<u32>,
) -> Result<Vec<Fact>> {
    let mut out = Vec::new();
    walk_back(scan, user_id, from_ms, |key, value| {
        out.push(fact(&key, &value, exposure_kind));
    })?;
    out.reverse();
    Ok(out)
}

/// The facts of `user_id`'s events with `from_ms <= ts_ms < to_ms`,
/// oldest first, through `range` (the store's or a snapshot's).
fn read<I: Iterator<Item = Result<KeyValue>>>(
    range: impl FnOnce(&[u8], Option<Vec<u8>>) -> Result<I>,
    user_id: u32,
    from_ms: i64,
    to_ms: i64,
    exposure_kind: Option<u32>,
) -> Result<Vec<Fact>> {
    if from_ms >= to_ms {
        return Ok(Vec::new());
    }
    let (start, until) = newest_first_bounds(user_id, to_ms);
    collect(range(&start, until)?, user_id, from_ms, exposure_kind)
}

/// The facts of `user_id`'s events with `from_ms <= ts_ms < to_ms`, oldest
/// first, as committed (the write path adds its own batch's events).
pub(crate) fn facts(
    store: &Store,
    user_id: u32,
    from_ms: i64,
    to_ms: i64,
    exposure_kind: Option<u32>,
) -> Result<Vec<Fact>> {
    let range = |from: &[u8], until| store.range(Cf::Events, from, until);
    read(range, user_id, from_ms, to_ms, exposure_kind)
}

/// [`facts`] through a query's snapshot.
pub(crate) fn facts_at(
    view: &Snapshot<'_>,
    user_id: u32,
    from_ms: i64,
    to_ms: i64,
    exposure_kind: Option<u32>,
) -> Result<Vec<Fact>> {
    let range = |from: &[u8], until| view.range(Cf::Events, from, until);
    read(range, user_id, from_ms, to_ms, exposure_kind)
}
