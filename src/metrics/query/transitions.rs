//! Stage transitions per day and the users who entered a stage (SPEC
//! §4a): recomputed from each user's activity over the range, so they
//! follow late events, merges and erasures exactly, and do not depend on
//! when `advance` ran.

use std::collections::BTreeMap;

use roaring::RoaringBitmap;

use super::super::state::UserActivity;
use super::super::state::{kind_ids, ACTIVITY};
use super::super::transitions::Series;
use super::*;
use crate::error::Result;

/// Users who changed stage on one day ([`Metrics::stage_transitions`]).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TransitionRow {
    /// The local day.
    pub day: i32,
    /// Stage → users whose stage became it on this day (a user's first
    /// active day enters its first stage).
    pub entered: BTreeMap<String, u64>,
    /// Stage → users whose stage stopped being it on this day.
    pub left: BTreeMap<String, u64>,
}

/// Calls `f(day, from, to)` for every change of `state`'s stage on a day
/// of `from_day..=to_day` (the day before `from_day` is the reference): one
/// forward pass over a [`Series`] based on that day, the evaluator the
/// write path's walk uses. A user whose every input is constant or past
/// every threshold over the range (quiet for longer than the model looks
/// back) is skipped.
fn changes<'m>(
    state: &UserActivity,
    model: &'m StageModel,
    from_day: i32,
    to_day: i32,
    mut f: impl FnMut(i32, Option<&'m str>, &'m str),
) {
    let Some(active) = state.days_of(ACTIVITY) else {
        return;
    };
    let (Some(first), Some(last)) = (active.first(), active.last()) else {
        return;
    };
    let start = from_day - 1;
    if first > to_day {
        return;
    }
    let purchases: Vec<i32> = state
        .days_of(kind_ids::PURCHASE)
        .map(|p| p.iter().collect())
        .unwrap_or_default();
    let last_money = state.money.keys().next_back().copied();
    if let Some(t) = model.days_since_horizon() {
        let t = i32::try_from(t).unwrap_or(i32::MAX);
        let settled = last.saturating_add(60) < start
            && first.saturating_add(t) < start
            && last.saturating_add(t) < start
            && purchases.last().is_none_or(|p| *p <= start)
            && last_money.is_none_or(|m| m <= start);
        if settled {
            return;
        }
    }
    let mut series = Series {
        base: start,
        first: Some(first),
        last_at_base: active.last_at_or_before(start),
        active: active.iter().filter(|d| *d >= start - 59).collect(),
        ..Series::default()
    };
    for p in purchases {
        if p <= start {
            series.purchase_days_at_base += 1;
        } else {
            series.purchase_days_after.push(p);
        }
    }
    for (day, m) in &state.money {
        if *day <= start {
            series.bought_at_base = series.bought_at_base.saturating_add(m.purchase_minor);
            series.refunded_at_base = series.refunded_at_base.saturating_add(m.refund_minor);
        } else {
            series
                .money_after
                .push((*day, m.purchase_minor, m.refund_minor));
        }
    }
    let mut days = series.days();
    let mut prev = days.stage(model, start);
    for d in from_day..=to_day {
        let now = days.stage(model, d);
        if now != prev {
            if let Some(to) = now {
                f(d, prev, to);
            }
            prev = now;
        }
    }
}

impl Metrics<'_> {
    /// Per day of `from_day..=to_day`, how many users (restricted to
    /// `filter`) entered and left each stage: `entered["declining"]` on a
    /// day is the win-back list's size for it. Every stage of the model is
    /// listed, with 0 when none. At most [`MAX_RANGE_DAYS`] days; the cost
    /// grows with users and days, like `stages` per day.
    ///
    /// ```
    /// # fn main() -> Result<(), stickydb::Error> {
    /// let dir = tempfile::tempdir()?;
    /// let db = stickydb::Db::create(dir.path(), stickydb::Options::default())?;
    /// db.record(&stickydb::Event::new("ann", "view", 19_800 * 86_400_000))?;
    /// let rows = db.metrics().stage_transitions(19_800, 19_830, None)?;
    /// assert_eq!(rows[0].entered["new"], 1);
    /// assert_eq!(rows[14].entered["declining"], 1); // 14 quiet days
    /// # Ok(()) }
    /// ```
    pub fn stage_transitions(
        &self,
        from_day: i32,
        to_day: i32,
        filter: Option<&RoaringBitmap>,
    ) -> Result<Vec<TransitionRow>> {
        check_range(from_day, to_day)?;
        let model = &self.settings.stage_model;
        let names = model.stages();
        let width = names.len();
        let days = (to_day - from_day + 1) as usize;
        let index = |s: &str| names.iter().position(|n| *n == s);
        let parts = self.fold_users(
            filter,
            || vec![0u64; days * width * 2],
            |acc, _, s: &UserActivity| {
                changes(s, model, from_day, to_day, |d, from, to| {
                    let row = (d - from_day) as usize * width * 2;
                    if let Some(i) = index(to) {
                        acc[row + i] += 1;
                    }
                    if let Some(i) = from.and_then(index) {
                        acc[row + width + i] += 1;
                    }
                });
            },
        )?;
        let mut total = vec![0u64; days * width * 2];
        for p in parts {
            for (t, v) in total.iter_mut().zip(p) {
                *t += v;
            }
        }
        Ok((0..days)
            .map(|i| {
                let row = &total[i * width * 2..(i + 1) * width * 2];
                let named = |off: usize| {
                    names
                        .iter()
                        .enumerate()
                        .map(|(j, n)| ((*n).to_owned(), row[off + j]))
                        .collect()
                };
                TransitionRow {
                    day: from_day + i as i32,
                    entered: named(0),
                    left: named(width),
                }
            })
            .collect())
    }

    /// The users whose stage became `stage` on a day of `from_day..=to_day`
    /// (the segment atom `entered:STAGE@FROM..TO`).
    pub fn users_entered(&self, stage: &str, from_day: i32, to_day: i32) -> Result<RoaringBitmap> {
        check_range(from_day, to_day)?;
        let model = &self.settings.stage_model;
        let parts = self.fold_users(None, RoaringBitmap::new, |acc, u, s: &UserActivity| {
            let mut hit = false;
            changes(s, model, from_day, to_day, |_, _, to| hit |= to == stage);
            if hit {
                acc.insert(u);
            }
        })?;
        Ok(parts.into_iter().fold(RoaringBitmap::new(), |a, b| a | b))
    }
}
