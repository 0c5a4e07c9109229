//! Reading the figures: top sharers, one sharer's figures, per-day totals
//! and the referred-user sets.

use std::collections::BTreeMap;

use roaring::RoaringBitmap;
use rustc_hash::FxHashMap;
use serde::Serialize;

use super::Figures;
use crate::error::{CorruptionError, Result};
use crate::keys::social as k;
use crate::store::{decode_value, Cf, Store};

/// What top sharers are ranked by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SharerRank {
    /// Users first reached.
    Reached,
    /// First signups attributed.
    Signups,
    /// Attributed GMV.
    Gmv,
}

impl SharerRank {
    fn score(self, f: &Figures) -> i64 {
        match self {
            SharerRank::Reached => f.reached,
            SharerRank::Signups => f.signups,
            SharerRank::Gmv => f.gmv_minor,
        }
    }
}

/// One sharer's figures over a range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SharerRow {
    /// The sharer's internal id.
    pub user_id: u32,
    /// Summed over the range.
    pub figures: Figures,
}

/// The viral coefficient of one period.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ViralPeriod {
    /// First local day of the period.
    pub from_day: i32,
    /// Last local day of the period.
    pub to_day: i32,
    /// Users with a `share` event in the period.
    pub sharing_users: u64,
    /// First signups in the period attributed to a sharer.
    pub attributed_signups: i64,
    /// `attributed_signups ÷ sharing_users`; `None` when nobody shared.
    pub coefficient: Option<f64>,
}

fn corrupt(key: &[u8]) -> crate::error::Error {
    CorruptionError {
        cf: Cf::Social.name(),
        what: "key",
        key: key.to_vec(),
        reason: "not a figures key".to_owned(),
    }
    .into()
}

/// Calls `f(day, sharer, figures)` for every per-sharer figures record of
/// the days `from_day..=to_day`.
fn for_each_sharer_day(
    store: &Store,
    from_day: i32,
    to_day: i32,
    mut f: impl FnMut(i32, u32, Figures),
) -> Result<()> {
    if from_day > to_day {
        return Ok(());
    }
    let from = k::day_prefix(k::SHARER_DAY, from_day);
    let until = match to_day.checked_add(1) {
        Some(d) => k::day_prefix(k::SHARER_DAY, d),
        None => vec![k::SHARER_DAY + 1],
    };
    for item in store.range(Cf::Social, &from, Some(until))? {
        let (key, value) = item?;
        let (day, sharer) = k::parse_sharer_day(&key).ok_or_else(|| corrupt(&key))?;
        f(day, sharer, decode_value(Cf::Social, &key, &value)?);
    }
    Ok(())
}

/// The `top` sharers of `from_day..=to_day` by `by` (ties: lower id
/// first), only sharers in `filter` when given; sharers scoring 0 are left
/// out.
pub(crate) fn top_sharers(
    store: &Store,
    from_day: i32,
    to_day: i32,
    by: SharerRank,
    top: usize,
    filter: Option<&RoaringBitmap>,
) -> Result<Vec<SharerRow>> {
    let mut sums: FxHashMap<u32, Figures> = FxHashMap::default();
    for_each_sharer_day(store, from_day, to_day, |_, sharer, f| {
        if filter.is_none_or(|s| s.contains(sharer)) {
            let e = sums.entry(sharer).or_default();
            *e = e.plus(&f);
        }
    })?;
    let mut rows: Vec<SharerRow> = sums
        .into_iter()
        .filter(|(_, f)| by.score(f) > 0)
        .map(|(user_id, figures)| SharerRow { user_id, figures })
        .collect();
    let order = |a: &SharerRow, b: &SharerRow| {
        by.score(&b.figures)
            .cmp(&by.score(&a.figures))
            .then(a.user_id.cmp(&b.user_id))
    };
    if rows.len() > top {
        rows.select_nth_unstable_by(top, order);
        rows.truncate(top);
    }
    rows.sort_unstable_by(order);
    Ok(rows)
}

/// `sharer`'s figures summed over `from_day..=to_day`.
pub(crate) fn sharer_figures(
    store: &Store,
    sharer: u32,
    from_day: i32,
    to_day: i32,
) -> Result<Figures> {
    let mut sum = Figures::default();
    for_each_sharer_day(store, from_day, to_day, |_, s, f| {
        if s == sharer {
            sum = sum.plus(&f);
        }
    })?;
    Ok(sum)
}

/// Per-day figures of `from_day..=to_day`: the store's, or summed over the
/// sharers in `filter`.
pub(crate) fn figures_by_day(
    store: &Store,
    from_day: i32,
    to_day: i32,
    filter: Option<&RoaringBitmap>,
) -> Result<BTreeMap<i32, Figures>> {
    let mut out: BTreeMap<i32, Figures> = BTreeMap::new();
    if let Some(filter) = filter {
        for_each_sharer_day(store, from_day, to_day, |day, sharer, f| {
            if filter.contains(sharer) {
                let e = out.entry(day).or_default();
                *e = e.plus(&f);
            }
        })?;
        return Ok(out);
    }
    if from_day > to_day {
        return Ok(out);
    }
    let until = match to_day.checked_add(1) {
        Some(d) => k::day(d),
        None => vec![k::DAY + 1],
    };
    for item in store.range(Cf::Social, &k::day(from_day), Some(until))? {
        let (key, value) = item?;
        let day = k::parse_day(&key).ok_or_else(|| corrupt(&key))?;
        out.insert(day, decode_value(Cf::Social, &key, &value)?);
    }
    Ok(out)
}

/// The users whose first signup is attributed to `sharer` (to anyone, for
/// `None`).
pub(crate) fn referred(store: &Store, sharer: Option<u32>) -> Result<RoaringBitmap> {
    let mut out = RoaringBitmap::new();
    for item in store.prefix(Cf::Social, &k::referred_prefix(sharer))? {
        let (key, _) = item?;
        out.insert(k::referred_user(&key).ok_or_else(|| corrupt(&key))?);
    }
    Ok(out)
}
