//! Lifetime value by cohort (docs/metrics.md, "LTV"): cohort c = users
//! whose first start event (any activity by default) fell in period c;
//! cell (c, n) = the net spend (purchases − refunds) of its users in
//! period c+n; the curve is the cumulative net per cohort user.

use roaring::RoaringBitmap;
use serde::Serialize;

use super::super::days::Period;
use super::super::load;
use super::*;
use crate::error::Result;
use crate::keys::metrics::FIRST_USERS;
use crate::kinds::EventKind;

/// One cohort's value over the periods after it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct LtvCohort {
    /// The cohort's first day.
    pub cohort: i32,
    /// Users in the cohort.
    pub size: u64,
    /// Net spend of the cohort's users in period c+n, n = 0, 1, …
    pub net_minor: Vec<i64>,
    /// Cumulative net spend up to period c+n ÷ the cohort's size (0 for an
    /// empty cohort): the LTV curve.
    pub cumulative_net_minor: Vec<f64>,
}

/// Every cohort of an LTV question.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct LtvReport {
    /// The period the cohorts and offsets are counted in.
    pub period: Period,
    /// The cohorts, oldest first.
    pub cohorts: Vec<LtvCohort>,
}

impl Metrics<'_> {
    /// The LTV curves of the cohorts of `from..=to` (see the module doc),
    /// offsets up to `max_offset` and within the range, of every user or of
    /// `filter`'s. The members' money days by MultiGet.
    pub fn ltv(
        &self,
        period: Period,
        (from_day, to_day): (i32, i32),
        max_offset: u32,
        start_kind: Option<&EventKind>,
        filter: Option<&RoaringBitmap>,
    ) -> Result<LtvReport> {
        check_range(from_day, to_day)?;
        let periods = period.starts(from_day, to_day);
        let (Some(&first), Some(&last)) = (periods.first(), periods.last()) else {
            return Ok(LtvReport {
                period,
                cohorts: Vec::new(),
            });
        };
        let end = period.end(last);
        let kind = self.kind_id(start_kind);
        let firsts = self.sets(FIRST_USERS, kind, first, end, filter)?;
        let period_of = |day: i32| periods.partition_point(|p| *p <= day).checked_sub(1);
        let mut members: Vec<RoaringBitmap> = vec![RoaringBitmap::new(); periods.len()];
        for (day, users) in &firsts {
            if let Some(c) = period_of(*day) {
                members[c] |= users;
            }
        }
        let offsets = max_offset.saturating_add(1) as usize;
        let mut net: Vec<Vec<i64>> = (0..periods.len())
            .map(|c| vec![0; (periods.len() - c).min(offsets)])
            .collect();
        let cohort_of: rustc_hash::FxHashMap<u32, usize> = members
            .iter()
            .enumerate()
            .flat_map(|(c, users)| users.iter().map(move |u| (u, c)))
            .collect();
        let mut add = |c: usize, day: i32, m: &DayMoney| {
            let n = period_of(day).and_then(|p| p.checked_sub(c));
            if let Some(cell) = n.and_then(|n| net[c].get_mut(n)) {
                *cell += m.purchase_minor.saturating_sub(m.refund_minor);
            }
        };
        // The members' money days by MultiGet (exactly the records their
        // purchase and refund days name); past the pair limit, one scan.
        let all: RoaringBitmap = members.iter().fold(RoaringBitmap::new(), |a, m| a | m);
        let read = self.money_days_of(&all, (first, end), |user, day, m| {
            if let Some(&c) = cohort_of.get(&user) {
                add(c, day, m);
            }
        })?;
        if !read {
            load::for_each_money(&self.view, 0, None, |user, money| {
                let Some(&c) = cohort_of.get(&user) else {
                    return;
                };
                for (day, m) in money.range(first..=end) {
                    add(c, *day, m);
                }
            })?;
        }
        let cohorts = periods
            .iter()
            .zip(members.iter().zip(net))
            .map(|(start, (users, net))| {
                let size = users.len();
                let mut sum = 0i64;
                let cumulative = net
                    .iter()
                    .map(|n| {
                        sum += n;
                        if size == 0 {
                            0.0
                        } else {
                            ((sum as f64 / size as f64) * 10_000.0).round() / 10_000.0
                        }
                    })
                    .collect();
                LtvCohort {
                    cohort: *start,
                    size,
                    net_minor: net,
                    cumulative_net_minor: cumulative,
                }
            })
            .collect();
        Ok(LtvReport { period, cohorts })
    }
}
