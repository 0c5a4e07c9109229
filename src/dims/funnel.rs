//! Funnels whose steps filter on a dimension's value
//! (`view[category=shoes],add_to_cart[category=shoes],purchase`): a
//! filtered step's users per day come from the dimension's user sets, and
//! an undecided user's events match a step by kind and value alike.

use std::collections::BTreeMap;

use roaring::RoaringBitmap;

use super::query::atom_value;
use super::{text_of_stored, DimSet, Registry, StoredDim};
use crate::error::{InputError, Problem, Result};
use crate::keys::dims as dk;
use crate::keys::metrics::MetricKey;
use crate::kinds::{EventKind, KindRegistry};
use crate::metrics::Metrics;
use crate::store::merge::decode_bitmap;
use crate::store::{Cf, Reader};

/// One funnel step: a kind, and optionally the value one of the store's
/// dimensions must have on the event.
///
/// ```
/// use stickydb::dims::FunnelStep;
/// let s = FunnelStep::parse("view[category=shoes]").unwrap();
/// assert_eq!(s, FunnelStep::kind("view").with("category", "shoes"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FunnelStep {
    /// The event kind.
    pub kind: String,
    /// `(dimension, value)` the event must carry.
    pub filter: Option<(String, String)>,
}

impl FunnelStep {
    /// A step of `kind`, any value.
    pub fn kind(kind: impl Into<String>) -> Self {
        FunnelStep {
            kind: kind.into(),
            filter: None,
        }
    }

    /// This step, only for events whose dimension `dim` is `value`.
    pub fn with(mut self, dim: impl Into<String>, value: impl Into<String>) -> Self {
        self.filter = Some((dim.into(), value.into()));
        self
    }

    /// Parses `KIND` or `KIND[DIM=VALUE]`.
    pub fn parse(text: &str) -> std::result::Result<Self, InputError> {
        let Some((kind, rest)) = text.split_once('[') else {
            return Ok(FunnelStep::kind(text));
        };
        match rest.strip_suffix(']').and_then(|r| r.split_once('=')) {
            Some((dim, value)) if !kind.is_empty() && !dim.is_empty() => {
                Ok(FunnelStep::kind(kind).with(dim, value))
            }
            _ => Err(InputError::new(
                "steps",
                Problem::Unparsable {
                    reason: format!("{text:?} is not KIND or KIND[DIM=VALUE]"),
                },
            )),
        }
    }
}

/// A step resolved against the store: its kind id, and its dimension and
/// value id (`None` inside: a value never seen, so no event matches).
struct Resolved<'a> {
    kind: Option<u32>,
    filter: Option<(&'a StoredDim, Option<u32>)>,
}

/// The funnel of `steps` (see [`Metrics::funnel`]; a filtered step counts
/// only events carrying its value).
pub(crate) fn funnel(
    m: &Metrics<'_>,
    (set, reg, kinds): (&DimSet, &Registry, &KindRegistry),
    steps: &[FunnelStep],
    window_ms: i64,
    days: (i32, i32),
    filter: Option<&RoaringBitmap>,
) -> Result<Vec<u64>> {
    let resolved = steps
        .iter()
        .map(|s| resolve(set, reg, kinds, s))
        .collect::<Result<Vec<_>>>()?;
    let ids: Vec<Option<u32>> = resolved.iter().map(|r| r.kind).collect();
    let sets = |i: usize, from: i32, to: i32, only: Option<&RoaringBitmap>| {
        let Some(r) = resolved.get(i) else {
            return Ok(BTreeMap::new());
        };
        match (r.kind, r.filter) {
            (None, _) | (_, Some((_, None))) => Ok(BTreeMap::new()),
            (Some(k), None) => m.day_sets_in(Some(k), from, to, only),
            (Some(k), Some((d, Some(v)))) => {
                value_day_sets(&m.view, (d.id, k, v), (from, to), only)
            }
        }
    };
    let read = |user: u32, from_ms: i64, to_ms: i64| {
        crate::timeline::events_between(&m.view, user, (from_ms, to_ms), |e| {
            mask(&resolved, reg, e.kind_id, &e.properties)
        })
    };
    m.funnel_core(&ids, &sets, &read, window_ms, days, filter)
}

fn resolve<'a>(
    set: &'a DimSet,
    reg: &Registry,
    kinds: &KindRegistry,
    s: &'a FunnelStep,
) -> Result<Resolved<'a>> {
    let kind = kinds.id(&EventKind::from_name(&s.kind));
    let filter = match &s.filter {
        None => None,
        Some((dim, value)) => {
            let Some(d) = set.get(dim) else {
                let reason = format!(
                    "{dim:?} is not a dimension: declare it (dims add {dim}) to filter steps by it"
                );
                return Err(InputError::new("steps", Problem::Invalid { reason }).into());
            };
            // (a step on a kind the dimension is not read from matches nothing)
            let value = if d.reads(&s.kind) {
                atom_value(reg, d, value)?
            } else {
                None
            };
            Some((d, value))
        }
    };
    Ok(Resolved { kind, filter })
}

/// Bit i set: the event's properties satisfy step i's filter.
fn mask(
    steps: &[Resolved<'_>],
    reg: &Registry,
    kind_id: u32,
    props: &[(String, crate::timeline::StoredProp)],
) -> u32 {
    let mut out = 0u32;
    for (i, s) in steps.iter().enumerate() {
        let ok = match s.filter {
            None => true,
            Some((_, None)) => false,
            Some((d, Some(v))) => {
                let of_kind = s.kind == Some(kind_id);
                props
                    .iter()
                    .find(|(k, _)| *k == d.dim.name)
                    .is_some_and(|(_, p)| of_kind && reg.lookup(d.id, &text_of_stored(p)) == v)
            }
        };
        if ok {
            out |= 1 << i;
        }
    }
    out
}

/// The users per day of value `v` of `dim` and kind `k` over `from..=to`
/// (within `only`).
fn value_day_sets(
    r: &impl Reader,
    (dim, kind, v): (u16, u32, u32),
    (from, to): (i32, i32),
    only: Option<&RoaringBitmap>,
) -> Result<BTreeMap<i32, RoaringBitmap>> {
    let mut out: BTreeMap<i32, RoaringBitmap> = BTreeMap::new();
    let start = dk::users_day_prefix(dim, kind, from);
    let until = dk::users_day_prefix(dim, kind, to.saturating_add(1));
    for item in r.read_range(Cf::Metrics, &start, Some(until))? {
        let (k, bytes) = item?;
        if let Some(MetricKey::DimUsers { day, value, .. }) = MetricKey::parse(&k) {
            if value == v {
                let mut users = decode_bitmap(&bytes).ok_or_else(|| corrupt(&k))?;
                if let Some(o) = only {
                    users &= o;
                }
                *out.entry(day).or_default() |= users;
            }
        }
    }
    Ok(out)
}

fn corrupt(key: &[u8]) -> crate::Error {
    crate::error::CorruptionError {
        cf: Cf::Metrics.name(),
        what: "value",
        key: key.to_vec(),
        reason: "a dimension user set does not decode".to_owned(),
    }
    .into()
}
