//! Breakdowns: a dimension's values day by day over a range — distinct
//! users of a kind (or of any activity), events, orders and GMV — read by
//! two range scans (the day-ordered user sets and counters of the
//! dimension), never the events.

use std::collections::BTreeMap;

use roaring::RoaringBitmap;
use serde::Serialize;

use super::{DimSet, Registry, OTHER, OTHER_ID};
use crate::error::{InputError, Problem, Result};
use crate::keys::dims::{self as dk, DimField};
use crate::keys::metrics::MetricKey;
use crate::kinds::ids::ACTIVITY;
use crate::store::merge::{decode_bitmap, decode_counter};
use crate::store::{Cf, Reader};

/// Most days one breakdown covers.
pub const MAX_BREAKDOWN_DAYS: i32 = 3_660;

/// What to break down: dimension `by` over local days `from_day ..=
/// to_day`.
///
/// ```
/// use stickydb::dims::BreakdownQuery;
/// let q = BreakdownQuery::new("channel", 19_800, 19_829).kind("purchase").top(5);
/// assert_eq!(q.top, Some(5));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BreakdownQuery {
    /// The dimension.
    pub by: String,
    /// Users and events of this kind (none: any activity kind).
    pub kind: Option<String>,
    /// First local day.
    pub from_day: i32,
    /// Last local day (inclusive).
    pub to_day: i32,
    /// Keep the values with the most users over the range; fold the rest
    /// into `(other)`.
    pub top: Option<usize>,
    /// Users active in the `w` days ending on each day (1 = that day).
    pub window_days: u16,
}

impl BreakdownQuery {
    /// Dimension `by` over `from_day ..= to_day`, any activity, daily users.
    pub fn new(by: impl Into<String>, from_day: i32, to_day: i32) -> Self {
        BreakdownQuery {
            by: by.into(),
            kind: None,
            from_day,
            to_day,
            top: None,
            window_days: 1,
        }
    }

    /// Users and events of `kind` only.
    pub fn kind(mut self, kind: impl Into<String>) -> Self {
        self.kind = Some(kind.into());
        self
    }

    /// Keeps the `n` values with the most users.
    pub fn top(mut self, n: usize) -> Self {
        self.top = Some(n);
        self
    }

    /// Rolling users over `w` days (7 or 30 in the CLI).
    pub fn window_days(mut self, w: u16) -> Self {
        self.window_days = w;
        self
    }
}

/// One day of one value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct BreakdownRow {
    /// Local day.
    pub day: i32,
    /// The value (or `(other)`).
    pub value: String,
    /// Distinct users with an event of the kind carrying the value: that
    /// day, or in the window ending there.
    pub users: u64,
    /// Events of the kind (any activity kind) carrying the value that day;
    /// `None` under a segment (counters are store-wide).
    pub events: Option<u64>,
    /// Purchases carrying the value that day (`None` under a segment).
    pub orders: Option<u64>,
    /// Their amounts (`None` under a segment).
    pub gmv_minor: Option<i64>,
}

/// A breakdown's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Breakdown {
    /// The dimension.
    pub by: String,
    /// The kind asked (none: any activity).
    pub kind: Option<String>,
    /// Rows by day, each day's values by their rank over the range.
    pub rows: Vec<BreakdownRow>,
}

/// Counters of one (day, value).
#[derive(Default, Clone, Copy)]
struct Sums {
    events: i64,
    orders: i64,
    gmv: i64,
}

/// Answers `q`. `kind_id`: the kind's id (None: any activity);
/// `is_activity`: whether a kind id counts as activity; `segment`: only
/// these users (the counters are then left out).
pub(crate) fn breakdown(
    r: &impl Reader,
    set: &DimSet,
    reg: &Registry,
    q: &BreakdownQuery,
    kind_id: Option<u32>,
    is_activity: &dyn Fn(u32) -> bool,
    segment: Option<&RoaringBitmap>,
) -> Result<Breakdown> {
    let Some(d) = set.get(&q.by) else {
        let reason = format!("no dimension named {:?} (declare it with `dims add`)", q.by);
        return Err(InputError::new("by", Problem::Invalid { reason }).into());
    };
    let span = i64::from(q.to_day) - i64::from(q.from_day);
    if !(0..i64::from(MAX_BREAKDOWN_DAYS)).contains(&span) {
        let reason = format!("from ≤ to, at most {MAX_BREAKDOWN_DAYS} days");
        return Err(InputError::new("to", Problem::Invalid { reason }).into());
    }
    if !(1..=366).contains(&q.window_days) {
        let reason = "1 to 366 days".to_owned();
        return Err(InputError::new("window", Problem::Invalid { reason }).into());
    }
    let first = q.from_day - i32::from(q.window_days) + 1;
    let sets = read_sets(
        r,
        d.id,
        kind_id.unwrap_or(ACTIVITY),
        first,
        q.to_day,
        segment,
    )?;
    let sums = match segment {
        Some(_) => BTreeMap::new(),
        None => read_sums(r, d.id, q.from_day, q.to_day, kind_id, is_activity)?,
    };
    // each value's users over the range rank it
    let mut totals: BTreeMap<u32, Vec<&RoaringBitmap>> = BTreeMap::new();
    for ((_, v), users) in sets.range((q.from_day, 0)..) {
        totals.entry(*v).or_default().push(users);
    }
    for (_, v) in sums.keys() {
        totals.entry(*v).or_default();
    }
    let mut ranked: Vec<(u32, u64)> = totals.into_iter().map(|(v, u)| (v, union_len(u))).collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    ranked.retain(|(v, _)| *v != OTHER_ID);
    let keep = q.top.unwrap_or(usize::MAX).min(ranked.len());
    let mut order: Vec<u32> = ranked[..keep].iter().map(|(v, _)| *v).collect();
    let kept: std::collections::HashSet<u32> = order.iter().copied().collect();
    order.push(OTHER_ID);
    let fold = |v: u32| if kept.contains(&v) { v } else { OTHER_ID };
    let mut rows = Vec::new();
    for day in q.from_day..=q.to_day {
        let mut groups: BTreeMap<u32, Vec<&RoaringBitmap>> = BTreeMap::new();
        let lo = day - i32::from(q.window_days) + 1;
        for ((_, v), u) in sets.range((lo, 0)..=(day, u32::MAX)) {
            groups.entry(fold(*v)).or_default().push(u);
        }
        let users: BTreeMap<u32, u64> =
            groups.into_iter().map(|(v, g)| (v, union_len(g))).collect();
        let mut day_sums: BTreeMap<u32, Sums> = BTreeMap::new();
        for ((_, v), s) in sums.range((day, 0)..=(day, u32::MAX)) {
            let t = day_sums.entry(fold(*v)).or_default();
            t.events += s.events;
            t.orders += s.orders;
            t.gmv += s.gmv;
        }
        for &v in &order {
            let n = users.get(&v).copied().unwrap_or(0);
            let s = day_sums.get(&v).copied();
            if n == 0 && s.is_none_or(|s| s.events == 0 && s.orders == 0) {
                continue;
            }
            let s = s.unwrap_or_default();
            let counted = segment.is_none();
            rows.push(BreakdownRow {
                day,
                value: reg.text(d.id, v).unwrap_or(OTHER).to_owned(),
                users: n,
                events: counted.then_some(s.events.max(0) as u64),
                orders: counted.then_some(s.orders.max(0) as u64),
                gmv_minor: counted.then_some(s.gmv),
            });
        }
    }
    Ok(Breakdown {
        by: q.by.clone(),
        kind: q.kind.clone(),
        rows,
    })
}

/// The users with an event of `kind_id` carrying `value` of dimension
/// `dim` on a local day of `days` (`None`: ever): `did:KIND[DIM=VALUE]`.
/// A value the dimension does not track because its cap was reached is
/// refused (its users are in `(other)`); one never seen has no user.
pub(crate) fn users_with(
    r: &impl Reader,
    set: &DimSet,
    reg: &Registry,
    (kind_id, dim, value): (u32, &str, &str),
    days: Option<(i32, i32)>,
) -> Result<RoaringBitmap> {
    let bad = |reason: String| -> crate::Error {
        InputError::new("segment.did", Problem::Invalid { reason }).into()
    };
    let Some(d) = set.get(dim) else {
        return Err(bad(format!("no dimension named {dim:?}")));
    };
    let Some(id) = atom_value(reg, d, value)? else {
        return Ok(RoaringBitmap::new());
    };
    let (from, to) = days.unwrap_or((i32::MIN, i32::MAX));
    let start = dk::users_day_prefix(d.id, kind_id, from);
    let until = match to.checked_add(1) {
        Some(next) => dk::users_day_prefix(d.id, kind_id, next),
        None => crate::keys::prefix_successor(&dk::users_day_prefix(d.id, kind_id, to))
            .unwrap_or_default(),
    };
    let mut out = RoaringBitmap::new();
    for item in r.read_range(Cf::Metrics, &start, Some(until))? {
        let (k, v) = item?;
        match MetricKey::parse(&k) {
            Some(MetricKey::DimUsers { value: at, .. }) if at == id => {
                out |= decode_bitmap(&v).ok_or_else(|| corrupt(&k, "a user set"))?;
            }
            Some(MetricKey::DimUsers { .. }) => {}
            _ => return Err(corrupt(&k, "not a dimension user set")),
        }
    }
    Ok(out)
}

/// The id `value` has in `d`, for an atom: `None` for a value never seen
/// (no users); refused for one past the cap (its users are in `(other)`).
pub(super) fn atom_value(reg: &Registry, d: &super::StoredDim, value: &str) -> Result<Option<u32>> {
    if value == OTHER {
        return Ok(Some(OTHER_ID));
    }
    match reg.lookup(d.id, value) {
        OTHER_ID if reg.count(d.id) >= d.dim.max_values => {
            let reason = format!(
                "value {value:?} of {:?} is not tracked (the dimension's {} values are taken; it counts in (other))",
                d.dim.name, d.dim.max_values
            );
            Err(InputError::new("segment", Problem::Invalid { reason }).into())
        }
        OTHER_ID => Ok(None),
        id => Ok(Some(id)),
    }
}

/// The users of `first:DIM=VALUE` (`last`: `last:DIM=VALUE`).
pub(crate) fn touched(
    r: &impl Reader,
    set: &DimSet,
    reg: &Registry,
    (last, dim, value): (bool, &str, &str),
) -> Result<RoaringBitmap> {
    let Some(d) = set.get(dim) else {
        let reason = format!("no dimension named {dim:?}");
        return Err(InputError::new("segment", Problem::Invalid { reason }).into());
    };
    let Some(id) = atom_value(reg, d, value)? else {
        return Ok(RoaringBitmap::new());
    };
    let prefix = dk::touch_value_prefix(last, d.id, id);
    let until = crate::keys::prefix_successor(&prefix);
    let mut out = RoaringBitmap::new();
    for item in r.read_range(Cf::Metrics, &prefix, until)? {
        let (k, v) = item?;
        out |= decode_bitmap(&v).ok_or_else(|| corrupt(&k, "a user set"))?;
    }
    Ok(out)
}

/// The users of every (day, value) of `dim` and `kind` over `from ..=
/// to` (within `segment`).
fn read_sets(
    r: &impl Reader,
    dim: u16,
    kind: u32,
    from: i32,
    to: i32,
    segment: Option<&RoaringBitmap>,
) -> Result<BTreeMap<(i32, u32), RoaringBitmap>> {
    let mut out: BTreeMap<(i32, u32), RoaringBitmap> = BTreeMap::new();
    let start = dk::users_day_prefix(dim, kind, from);
    let until = dk::users_day_prefix(dim, kind, to.saturating_add(1));
    for item in r.read_range(Cf::Metrics, &start, Some(until))? {
        let (k, v) = item?;
        let Some(MetricKey::DimUsers { day, value, .. }) = MetricKey::parse(&k) else {
            return Err(corrupt(&k, "not a dimension user set"));
        };
        let mut users = decode_bitmap(&v).ok_or_else(|| corrupt(&k, "a user set"))?;
        if let Some(s) = segment {
            users &= s;
        }
        *out.entry((day, value)).or_default() |= users;
    }
    Ok(out)
}

/// The counters of every (day, value) of `dim` over `from ..= to`: events
/// of `kind` (None: of activity kinds), orders and GMV.
fn read_sums(
    r: &impl Reader,
    dim: u16,
    from: i32,
    to: i32,
    kind: Option<u32>,
    is_activity: &dyn Fn(u32) -> bool,
) -> Result<BTreeMap<(i32, u32), Sums>> {
    let mut out: BTreeMap<(i32, u32), Sums> = BTreeMap::new();
    let start = dk::counters_day_prefix(dim, from);
    let until = dk::counters_day_prefix(dim, to.saturating_add(1));
    for item in r.read_range(Cf::Metrics, &start, Some(until))? {
        let (k, v) = item?;
        let Some(MetricKey::DimCounter {
            day,
            value,
            field,
            kind: k_id,
            ..
        }) = MetricKey::parse(&k)
        else {
            return Err(corrupt(&k, "not a dimension counter"));
        };
        let n = decode_counter(&v).ok_or_else(|| corrupt(&k, "a counter"))?;
        let s = out.entry((day, value)).or_default();
        match field {
            DimField::Events if kind.map_or(is_activity(k_id), |want| want == k_id) => {
                s.events += n;
            }
            DimField::Orders => s.orders += n,
            DimField::Gmv => s.gmv += n,
            _ => {}
        }
    }
    Ok(out)
}

/// Distinct users of the union of `sets`: one set's length as it is (no
/// copy), several unioned container by container at once.
fn union_len(sets: Vec<&RoaringBitmap>) -> u64 {
    match sets.as_slice() {
        [] => 0,
        [one] => one.len(),
        _ => roaring::MultiOps::union(sets).len(),
    }
}

fn corrupt(key: &[u8], reason: &str) -> crate::Error {
    crate::error::CorruptionError {
        cf: Cf::Metrics.name(),
        what: "value",
        key: key.to_vec(),
        reason: reason.to_owned(),
    }
    .into()
}
