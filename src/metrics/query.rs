//! Queries over the maintained state. Nothing here writes.

use std::collections::{BTreeMap, HashMap};

use roaring::RoaringBitmap;
use serde::Serialize;

use super::days::Period;
use super::keys::{self, MoneyField, DAY_USERS, FIRST_USERS};
use super::rules::{Inputs, StageModel};
use super::state::{kind_ids, MoneyHead, UserActivity, ACTIVITY};
use super::user::{
    quintile_scores, rfm_inputs, rfm_segment, stage_inputs, UserMetrics, RFM_SEGMENTS,
};
use super::{corrupt, MetricSettings};
use crate::error::{InputError, Problem, Result};
use crate::keys::day_from_asc;
use crate::store::merge::{decode_bitmap, decode_counter};
use crate::store::{Cf, Snapshot};
use crate::time::DAY_MS;
use crate::timeline::{EventKind, KindRegistry};

/// Longest day range one query may span (about ten years).
pub const MAX_RANGE_DAYS: i32 = 3660;
/// Most steps in one funnel.
pub const MAX_FUNNEL_STEPS: usize = 16;
/// Longest funnel window: 90 days.
const MAX_FUNNEL_WINDOW_MS: i64 = 90 * DAY_MS;
/// Filters smaller than this are read user by user instead of by a full scan.
const POINT_READ_FILTER_USERS: u64 = 4096;

/// Read access to the metrics of one store. Get one from [`crate::Db::metrics`].
///
/// A handle reads the store as of the moment it was made (a RocksDB
/// snapshot): its answers are consistent with each other while writers run.
/// Make a new handle to see newer writes.
///
/// Every query takes an optional `filter`: a user set (e.g. from
/// [`crate::Db::segment`]) that restricts the metric to those users.
pub struct Metrics<'a> {
    /// Every query reads one consistent view, taken when the handle was made.
    pub(crate) view: Snapshot<'a>,
    pub(crate) kinds: &'a KindRegistry,
    pub(crate) settings: MetricSettings,
}

/// DAU/WAU/MAU of one day (rolling windows ending that day).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ActiveRow {
    /// The local day.
    pub day: i32,
    /// Users active that day.
    pub dau: u64,
    /// Users active in the 7 days ending that day.
    pub wau: u64,
    /// Users active in the 30 days ending that day.
    pub mau: u64,
    /// DAU ÷ MAU (0 when MAU is 0).
    pub stickiness: f64,
}

/// One row of a stickiness distribution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct DistributionRow {
    /// Number of distinct active days in the range.
    pub days_active: u32,
    /// Users active on exactly that many days.
    pub users: u64,
    /// Users active on at least that many days.
    pub users_at_least: u64,
}

/// How a retention cell counts returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReturnMode {
    /// A return event in period c+n.
    On,
    /// A return event in any period from c+n to the last period of the range.
    OnOrAfter,
}

/// A retention query (SPEC §3).
#[derive(Debug, Clone)]
pub struct RetentionQuery {
    /// Cohort and return period.
    pub period: Period,
    /// First day of the range (its period is the first cohort).
    pub from_day: i32,
    /// Last day of the range (its period is the last cohort and the last
    /// period a return is looked for in).
    pub to_day: i32,
    /// Most offsets per cohort (cells 0..=max_offset).
    pub max_offset: u32,
    /// Start event: `None` = first activity.
    pub start_kind: Option<EventKind>,
    /// Return event: `None` = any activity.
    pub return_kind: Option<EventKind>,
    /// On or on-or-after.
    pub mode: ReturnMode,
}

impl RetentionQuery {
    /// First-activity cohorts, any-activity returns, "on" mode.
    pub fn new(period: Period, from_day: i32, to_day: i32) -> Self {
        Self {
            period,
            from_day,
            to_day,
            max_offset: u32::MAX,
            start_kind: None,
            return_kind: None,
            mode: ReturnMode::On,
        }
    }
}

/// One cohort row of a retention matrix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RetentionCohort {
    /// First day of the cohort's period.
    pub cohort: i32,
    /// Users in the cohort.
    pub size: u64,
    /// `counts[n]` = users of the cohort returning in period c+n (or later).
    pub counts: Vec<u64>,
}

impl RetentionCohort {
    /// `counts[n] / size` (0 for an empty cohort).
    pub fn ratios(&self) -> Vec<f64> {
        self.counts.iter().map(|c| ratio(*c, self.size)).collect()
    }
}

/// A retention matrix.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RetentionMatrix {
    /// The period.
    pub period: Period,
    /// The mode.
    pub mode: ReturnMode,
    /// One row per cohort period in the range, oldest first.
    pub cohorts: Vec<RetentionCohort>,
}

/// Activation of one cohort (SPEC §3).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ActivationRow {
    /// First day of the cohort period.
    pub cohort: i32,
    /// Users whose first start event fell in the period.
    pub size: u64,
    /// Of those, users with an activation event within the window.
    pub activated: u64,
    /// `activated / size`.
    pub rate: f64,
}

/// Lifecycle counts of one period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct LifecycleRow {
    /// First day of the period.
    pub period: i32,
    /// Active in the period, first activity in the period.
    pub new: u64,
    /// Active in the period and the one before, not new.
    pub returning: u64,
    /// Active in the period, not in the one before, not new.
    pub resurrecting: u64,
    /// Active in the period before, not in this one (reported negative).
    pub dormant: i64,
}

/// Store-wide counters of one day.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DailyRow {
    /// The local day.
    pub day: i32,
    /// Every event that day.
    pub events: u64,
    /// Events per kind name.
    pub events_by_kind: BTreeMap<String, u64>,
    /// Purchase events.
    pub orders: u64,
    /// Sum of purchase amounts, minor units.
    pub gmv_minor: i64,
    /// Refund events.
    pub refunds: u64,
    /// Sum of refund amounts, minor units.
    pub refund_minor: i64,
    /// GMV ÷ orders; `None` without orders.
    pub aov_minor: Option<f64>,
    /// Users whose first activity fell on the day.
    pub new_users: u64,
    /// Sessions whose first event fell on the day.
    pub sessions: u64,
}

/// Events by local hour and weekday.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Habits {
    /// Events per local hour of day.
    pub hours: [u64; 24],
    /// Events per local weekday, Monday first.
    pub weekdays: [u64; 7],
}

/// Repurchase rate over a range.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RepurchaseRate {
    /// Users with purchases on ≥ 2 distinct days in the range.
    pub repeat_purchasers: u64,
    /// Users with ≥ 1 purchase in the range.
    pub purchasers: u64,
    /// `repeat_purchasers / purchasers` (0 without purchasers).
    pub rate: f64,
}

/// One purchaser's RFM values and scores.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserRfm {
    /// Internal user id.
    pub user_id: u32,
    /// Days since the last purchase.
    pub recency_days: i64,
    /// Purchase events.
    pub orders: u64,
    /// Distinct purchase days.
    pub purchase_days: u64,
    /// Purchases minus refunds, minor units.
    pub net_spend_minor: i64,
    /// Recency score, 5 = most recent.
    pub r_score: u8,
    /// Frequency (orders) score.
    pub f_score: u8,
    /// Monetary (net spend) score.
    pub m_score: u8,
    /// Named segment.
    pub segment: &'static str,
}

/// RFM of every purchaser as of a day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RfmReport {
    /// The day.
    pub as_of_day: i32,
    /// One row per purchaser (restricted to the filter), by user id.
    pub users: Vec<UserRfm>,
    /// Users per segment name (restricted to the filter).
    pub segments: BTreeMap<&'static str, u64>,
}

fn ratio(n: u64, d: u64) -> f64 {
    if d == 0 {
        0.0
    } else {
        n as f64 / d as f64
    }
}

/// Earliest and latest local day a query may name: a margin around the days
/// timestamps can fall on (−1 ..= 9999-12-31), so window arithmetic
/// (`d − 59`, `d + window`) can never overflow.
pub const MIN_QUERY_DAY: i32 = -100_000;
/// See [`MIN_QUERY_DAY`].
pub const MAX_QUERY_DAY: i32 = 3_100_000;

/// Checks a day argument against [`MIN_QUERY_DAY`]..=[`MAX_QUERY_DAY`].
fn check_day(field: &'static str, day: i32) -> Result<()> {
    if !(MIN_QUERY_DAY..=MAX_QUERY_DAY).contains(&day) {
        return Err(InputError::new(
            field,
            Problem::OutOfRange {
                value: i64::from(day),
                min: i64::from(MIN_QUERY_DAY),
                max: i64::from(MAX_QUERY_DAY),
            },
        )
        .into());
    }
    Ok(())
}

fn check_range(from: i32, to: i32) -> Result<()> {
    check_day("from_day", from)?;
    check_day("to_day", to)?;
    if from > to || i64::from(to) - i64::from(from) >= i64::from(MAX_RANGE_DAYS) {
        return Err(InputError::new(
            "to_day",
            Problem::OutOfRange {
                value: i64::from(to),
                min: i64::from(from),
                max: i64::from(from) + i64::from(MAX_RANGE_DAYS) - 1,
            },
        )
        .into());
    }
    Ok(())
}

fn union_range(sets: &BTreeMap<i32, RoaringBitmap>, from: i32, to: i32) -> RoaringBitmap {
    let mut u = RoaringBitmap::new();
    if from <= to {
        for s in sets.range(from..=to).map(|(_, s)| s) {
            u |= s;
        }
    }
    u
}

fn restrict(set: RoaringBitmap, filter: Option<&RoaringBitmap>) -> RoaringBitmap {
    match filter {
        Some(f) => set & f,
        None => set,
    }
}

impl Metrics<'_> {
    /// The id a kind selection reads: `None` = activity; `Some(None)` = a
    /// kind the store has never seen (no data).
    fn kind_id(&self, kind: Option<&EventKind>) -> Option<u32> {
        match kind {
            None => Some(ACTIVITY),
            Some(k) => self.kinds.id(k),
        }
    }

    /// User sets under `tag` for `kind` and days `from..=to`, by day.
    fn sets(
        &self,
        tag: u8,
        kind: Option<u32>,
        from: i32,
        to: i32,
        filter: Option<&RoaringBitmap>,
    ) -> Result<BTreeMap<i32, RoaringBitmap>> {
        let mut out = BTreeMap::new();
        let Some(kind) = kind else { return Ok(out) };
        if from > to {
            return Ok(out);
        }
        let (start, end) = keys::day_users_range(tag, kind, from, to);
        self.scan_days(start, end, 6, "user set", decode_bitmap, |day, set| {
            let set = restrict(set, filter);
            if !set.is_empty() {
                out.insert(day, set);
            }
        })?;
        Ok(out)
    }

    /// Scans metrics keys in `[start, end)` whose local day sits at byte
    /// `day_at`, decoding each merged value with `decode` and handing
    /// `(day, value)` to `f`. A short key or undecodable value is corruption.
    fn scan_days<T>(
        &self,
        start: Vec<u8>,
        end: Vec<u8>,
        day_at: usize,
        what: &str,
        decode: impl Fn(&[u8]) -> Option<T>,
        mut f: impl FnMut(i32, T),
    ) -> Result<()> {
        for item in self.view.range(Cf::Metrics, &start, Some(end))? {
            let (k, v) = item?;
            let day: [u8; 4] = k
                .get(day_at..day_at + 4)
                .and_then(|s| s.try_into().ok())
                .ok_or_else(|| corrupt(Cf::Metrics, &k, &format!("{what} key too short")))?;
            let value = decode(&v)
                .ok_or_else(|| corrupt(Cf::Metrics, &k, &format!("{what} does not decode")))?;
            f(day_from_asc(day), value);
        }
        Ok(())
    }

    /// The checked range's day sets of a kind id (`None`: no data).
    fn day_sets_in(
        &self,
        kind: Option<u32>,
        from_day: i32,
        to_day: i32,
        filter: Option<&RoaringBitmap>,
    ) -> Result<BTreeMap<i32, RoaringBitmap>> {
        check_range(from_day, to_day)?;
        self.sets(DAY_USERS, kind, from_day, to_day, filter)
    }

    /// Users with at least one event of `kind` (`None`: any activity) in
    /// `from..=to`. A calendar week or month is the range of its days.
    pub fn active_users(
        &self,
        kind: Option<&EventKind>,
        from_day: i32,
        to_day: i32,
        filter: Option<&RoaringBitmap>,
    ) -> Result<RoaringBitmap> {
        let sets = self.day_sets_in(self.kind_id(kind), from_day, to_day, filter)?;
        Ok(union_range(&sets, from_day, to_day))
    }

    /// Calendar active users: users with an event of `kind` (`None`: any
    /// activity) in the day, ISO week or calendar month holding `day`.
    ///
    /// ```
    /// # fn main() -> Result<(), stickydb::Error> {
    /// use stickydb::metrics::Period;
    /// let dir = tempfile::tempdir()?;
    /// let db = stickydb::Db::open(dir.path(), stickydb::Options::default())?;
    /// let monday = 19_779; // 2024-02-26
    /// db.record(&stickydb::Event::new("a", "view", monday as i64 * 86_400_000))?;
    /// db.record(&stickydb::Event::new("b", "view", (monday as i64 + 6) * 86_400_000))?;
    /// let m = db.metrics();
    /// assert_eq!(m.calendar_active(None, Period::Week, monday + 3, None)?, 2);
    /// assert_eq!(m.calendar_active(None, Period::Month, monday, None)?, 1); // b is in March
    /// # Ok(()) }
    /// ```
    pub fn calendar_active(
        &self,
        kind: Option<&EventKind>,
        period: Period,
        day: i32,
        filter: Option<&RoaringBitmap>,
    ) -> Result<u64> {
        check_day("day", day)?;
        let start = period.start(day);
        Ok(self
            .active_users(kind, start, period.end(start), filter)?
            .len())
    }

    /// DAU, rolling WAU and MAU, and stickiness for every day in `from..=to`.
    ///
    /// Unfiltered, the answer comes from counters kept on write (three range
    /// reads, whatever the number of users); with a filter, from the day sets.
    pub fn active(
        &self,
        kind: Option<&EventKind>,
        from_day: i32,
        to_day: i32,
        filter: Option<&RoaringBitmap>,
    ) -> Result<Vec<ActiveRow>> {
        check_range(from_day, to_day)?;
        let row = |d: i32, dau: u64, wau: u64, mau: u64| ActiveRow {
            day: d,
            dau,
            wau,
            mau,
            stickiness: ratio(dau, mau),
        };
        let Some(filter) = filter else {
            let kind = self.kind_id(kind);
            let [dau, wau, mau] =
                keys::WINDOWS_DAYS.map(|w| self.rolling(kind, w, from_day, to_day));
            let (dau, wau, mau) = (dau?, wau?, mau?);
            let get =
                |m: &BTreeMap<i32, i64>, d: i32| m.get(&d).copied().unwrap_or(0).max(0) as u64;
            return Ok((from_day..=to_day)
                .map(|d| row(d, get(&dau, d), get(&wau, d), get(&mau, d)))
                .collect());
        };
        let sets = self.sets(
            DAY_USERS,
            self.kind_id(kind),
            from_day - 29,
            to_day,
            Some(filter),
        )?;
        Ok((from_day..=to_day)
            .map(|d| {
                let dau = sets.get(&d).map_or(0, RoaringBitmap::len);
                let wau = union_range(&sets, d - 6, d).len();
                let mau = union_range(&sets, d - 29, d).len();
                row(d, dau, wau, mau)
            })
            .collect())
    }

    /// Rolling active-user counters of `kind` for `window_days`, by day.
    fn rolling(
        &self,
        kind: Option<u32>,
        window_days: u8,
        from_day: i32,
        to_day: i32,
    ) -> Result<BTreeMap<i32, i64>> {
        let mut out = BTreeMap::new();
        let Some(kind) = kind else { return Ok(out) };
        let start = keys::rolling(kind, window_days, from_day);
        let end = keys::rolling(kind, window_days, to_day.saturating_add(1));
        self.scan_days(
            start,
            end,
            7,
            "rolling counter",
            decode_counter,
            |day, n| {
                out.insert(day, n);
            },
        )?;
        Ok(out)
    }

    /// Mean DAU over `from..=to` ÷ users active anywhere in the range.
    pub fn average_stickiness(
        &self,
        kind: Option<&EventKind>,
        from_day: i32,
        to_day: i32,
        filter: Option<&RoaringBitmap>,
    ) -> Result<f64> {
        let sets = self.day_sets_in(self.kind_id(kind), from_day, to_day, filter)?;
        let days = f64::from(to_day - from_day + 1);
        let dau_sum: u64 = sets.values().map(RoaringBitmap::len).sum();
        let all = union_range(&sets, from_day, to_day).len();
        Ok(if all == 0 {
            0.0
        } else {
            dau_sum as f64 / days / all as f64
        })
    }

    fn day_counts(sets: &BTreeMap<i32, RoaringBitmap>) -> HashMap<u32, u32> {
        let mut counts: HashMap<u32, u32> = HashMap::new();
        for s in sets.values() {
            for u in s {
                *counts.entry(u).or_default() += 1;
            }
        }
        counts
    }

    /// Users by number of distinct active days in `from..=to`: one row per
    /// n = 1..=days in range.
    pub fn stickiness_distribution(
        &self,
        kind: Option<&EventKind>,
        from_day: i32,
        to_day: i32,
        filter: Option<&RoaringBitmap>,
    ) -> Result<Vec<DistributionRow>> {
        let sets = self.day_sets_in(self.kind_id(kind), from_day, to_day, filter)?;
        let days = (to_day - from_day + 1) as usize;
        let mut exactly = vec![0u64; days + 1];
        for n in Self::day_counts(&sets).into_values() {
            if let Some(slot) = exactly.get_mut(n as usize) {
                *slot += 1;
            }
        }
        let mut rows = Vec::with_capacity(days);
        let mut at_least = 0u64;
        for n in (1..=days).rev() {
            at_least += exactly[n];
            rows.push(DistributionRow {
                days_active: n as u32,
                users: exactly[n],
                users_at_least: at_least,
            });
        }
        rows.reverse();
        Ok(rows)
    }

    /// The retention matrix of `q` (SPEC §3): cohort c = users whose first
    /// start event fell in period c; cell (c, n) = cohort users with a return
    /// event in period c+n (mode `On`) or in any period from c+n to the last
    /// period of the range (`OnOrAfter`). Cells past the range are left out.
    pub fn retention(
        &self,
        q: &RetentionQuery,
        filter: Option<&RoaringBitmap>,
    ) -> Result<RetentionMatrix> {
        check_range(q.from_day, q.to_day)?;
        let periods = q.period.starts(q.from_day, q.to_day);
        let (Some(&first), Some(&last)) = (periods.first(), periods.last()) else {
            return Ok(RetentionMatrix {
                period: q.period,
                mode: q.mode,
                cohorts: Vec::new(),
            });
        };
        let end = q.period.end(last);
        let starts = self.sets(
            FIRST_USERS,
            self.kind_id(q.start_kind.as_ref()),
            first,
            end,
            filter,
        )?;
        let returns = self.sets(
            DAY_USERS,
            self.kind_id(q.return_kind.as_ref()),
            first,
            end,
            None,
        )?;
        // One pass over users instead of a bitmap intersection per cell:
        // tag every cohort user with its cohort, then walk each period's
        // returners once. Cost grows with users per period, not with cells.
        const NONE: u16 = u16::MAX;
        let offsets_max = q.max_offset.saturating_add(1) as usize;
        let top = starts.values().filter_map(RoaringBitmap::max).max();
        let mut cohort_of: Vec<u16> = vec![NONE; top.map_or(0, |t| t as usize + 1)];
        let mut sizes = vec![0u64; periods.len()];
        for (i, p) in periods.iter().enumerate() {
            for (_, set) in starts.range(*p..=q.period.end(*p)) {
                sizes[i] += set.len();
                for u in set {
                    cohort_of[u as usize] = i as u16;
                }
            }
        }
        let mut counts: Vec<Vec<u64>> = (0..periods.len())
            .map(|i| vec![0u64; (periods.len() - i).min(offsets_max)])
            .collect();
        // on-or-after: the last period each cohort user returned in
        let mut last_return: Vec<u16> = Vec::new();
        if q.mode == ReturnMode::OnOrAfter {
            last_return = vec![NONE; cohort_of.len()];
        }
        // Cohort users seen so far: a return in period p can only count for
        // cohorts up to p, so iterate returners ∩ those (a word-wise AND)
        // instead of every returner.
        let mut cohorts_so_far = RoaringBitmap::new();
        for (pi, p) in periods.iter().enumerate() {
            for (_, set) in starts.range(*p..=q.period.end(*p)) {
                cohorts_so_far |= set;
            }
            let mut returners = RoaringBitmap::new();
            for (_, set) in returns.range(*p..=q.period.end(*p)) {
                returners |= set & &cohorts_so_far;
            }
            for u in &returners {
                let Some(&c) = cohort_of.get(u as usize) else {
                    continue;
                };
                if c == NONE || usize::from(c) > pi {
                    continue;
                }
                match q.mode {
                    ReturnMode::On => {
                        if let Some(cell) = counts[usize::from(c)].get_mut(pi - usize::from(c)) {
                            *cell += 1;
                        }
                    }
                    ReturnMode::OnOrAfter => last_return[u as usize] = pi as u16,
                }
            }
        }
        if q.mode == ReturnMode::OnOrAfter {
            // a user last seen at offset k counts in cells 0..=k
            for (u, &c) in cohort_of.iter().enumerate() {
                let r = last_return[u];
                if c == NONE || r == NONE {
                    continue;
                }
                let row = &mut counts[usize::from(c)];
                let k = usize::from(r - c).min(row.len().saturating_sub(1));
                if let Some(cell) = row.get_mut(k) {
                    *cell += 1;
                }
            }
            for row in &mut counts {
                for n in (0..row.len().saturating_sub(1)).rev() {
                    row[n] += row[n + 1];
                }
            }
        }
        let cohorts = periods
            .iter()
            .zip(sizes)
            .zip(counts)
            .map(|((p, size), counts)| RetentionCohort {
                cohort: *p,
                size,
                counts,
            })
            .collect();
        Ok(RetentionMatrix {
            period: q.period,
            mode: q.mode,
            cohorts,
        })
    }

    /// Activation per cohort period: of the users whose first `start_kind`
    /// event fell in the period, those with an `activation_kind` event on the
    /// start day or within `within_days` days after it.
    #[allow(clippy::too_many_arguments)]
    pub fn activation(
        &self,
        start_kind: &EventKind,
        activation_kind: &EventKind,
        within_days: u32,
        period: Period,
        from_day: i32,
        to_day: i32,
        filter: Option<&RoaringBitmap>,
    ) -> Result<Vec<ActivationRow>> {
        check_range(from_day, to_day)?;
        let within = i32::try_from(within_days.min(MAX_RANGE_DAYS as u32)).unwrap_or(0);
        let periods = period.starts(from_day, to_day);
        let (Some(&first), Some(&last)) = (periods.first(), periods.last()) else {
            return Ok(Vec::new());
        };
        let end = period.end(last);
        let starts = self.sets(FIRST_USERS, self.kinds.id(start_kind), first, end, filter)?;
        let acts = self.sets(
            DAY_USERS,
            self.kinds.id(activation_kind),
            first,
            end + within,
            None,
        )?;
        Ok(periods
            .iter()
            .map(|p| {
                let mut size = 0;
                let mut activated = 0;
                for (day, users) in starts.range(*p..=period.end(*p)) {
                    size += users.len();
                    activated += users.intersection_len(&union_range(&acts, *day, day + within));
                }
                ActivationRow {
                    cohort: *p,
                    size,
                    activated,
                    rate: ratio(activated, size),
                }
            })
            .collect())
    }

    /// New / returning / resurrecting / dormant users per period touching
    /// `from..=to`.
    pub fn lifecycle(
        &self,
        period: Period,
        from_day: i32,
        to_day: i32,
        filter: Option<&RoaringBitmap>,
    ) -> Result<Vec<LifecycleRow>> {
        check_range(from_day, to_day)?;
        let periods = period.starts(from_day, to_day);
        let (Some(&first), Some(&last)) = (periods.first(), periods.last()) else {
            return Ok(Vec::new());
        };
        let before = period.prev(first);
        let end = period.end(last);
        let active = self.sets(DAY_USERS, Some(ACTIVITY), before, end, filter)?;
        let firsts = self.sets(FIRST_USERS, Some(ACTIVITY), first, end, filter)?;
        let mut prev = union_range(&active, before, first - 1);
        let mut rows = Vec::with_capacity(periods.len());
        for p in periods {
            let cur = union_range(&active, p, period.end(p));
            let new = union_range(&firsts, p, period.end(p));
            let not_new = &cur - &new;
            rows.push(LifecycleRow {
                period: p,
                new: new.len(),
                returning: not_new.intersection_len(&prev),
                resurrecting: (&not_new - &prev).len(),
                dormant: -((&prev - &cur).len() as i64),
            });
            prev = cur;
        }
        Ok(rows)
    }

    /// Store-wide daily counters for every day in `from..=to`.
    pub fn daily(&self, from_day: i32, to_day: i32) -> Result<Vec<DailyRow>> {
        check_range(from_day, to_day)?;
        let mut rows: BTreeMap<i32, DailyRow> = (from_day..=to_day)
            .map(|d| {
                (
                    d,
                    DailyRow {
                        day: d,
                        events: 0,
                        events_by_kind: BTreeMap::new(),
                        orders: 0,
                        gmv_minor: 0,
                        refunds: 0,
                        refund_minor: 0,
                        aov_minor: None,
                        new_users: 0,
                        sessions: 0,
                    },
                )
            })
            .collect();
        let start = keys::kind_day(from_day, 0);
        let end = keys::kind_day(to_day.saturating_add(1), 0);
        for item in self.view.range(Cf::Metrics, &start, Some(end))? {
            let (k, v) = item?;
            let (day, kind) = match (k.get(2..6), k.get(6..10)) {
                (Some(d), Some(kd)) if k.len() == 10 => (
                    day_from_asc(d.try_into().unwrap_or([0; 4])),
                    u32::from_be_bytes(kd.try_into().unwrap_or([0; 4])),
                ),
                _ => return Err(corrupt(Cf::Metrics, &k, "malformed kind-day counter key").into()),
            };
            let n = decode_counter(&v)
                .ok_or_else(|| corrupt(Cf::Metrics, &k, "counter does not decode"))?;
            if let Some(row) = rows.get_mut(&day) {
                if n != 0 {
                    row.events += n.max(0) as u64;
                    let name = self
                        .kinds
                        .kind(kind)
                        .map_or_else(|| format!("kind#{kind}"), |k| k.to_string());
                    row.events_by_kind.insert(name, n.max(0) as u64);
                }
            }
        }
        let start = keys::money(from_day, MoneyField::Orders);
        let end = keys::money(to_day.saturating_add(1), MoneyField::Orders);
        for item in self.view.range(Cf::Metrics, &start, Some(end))? {
            let (k, v) = item?;
            let (day, field) = match (
                k.get(2..6),
                k.get(6).copied().and_then(MoneyField::from_byte),
            ) {
                (Some(d), Some(f)) if k.len() == 7 => {
                    (day_from_asc(d.try_into().unwrap_or([0; 4])), f)
                }
                _ => return Err(corrupt(Cf::Metrics, &k, "malformed money counter key").into()),
            };
            let n = decode_counter(&v)
                .ok_or_else(|| corrupt(Cf::Metrics, &k, "counter does not decode"))?;
            if let Some(row) = rows.get_mut(&day) {
                match field {
                    MoneyField::Orders => row.orders = n.max(0) as u64,
                    MoneyField::Gmv => row.gmv_minor = n,
                    MoneyField::Refunds => row.refunds = n.max(0) as u64,
                    MoneyField::RefundMinor => row.refund_minor = n,
                    MoneyField::Sessions => row.sessions = n.max(0) as u64,
                    MoneyField::NewUsers => row.new_users = n.max(0) as u64,
                }
            }
        }
        Ok(rows
            .into_values()
            .map(|mut r| {
                if r.orders > 0 {
                    r.aov_minor = Some(r.gmv_minor as f64 / r.orders as f64);
                }
                r
            })
            .collect())
    }

    /// Events by local hour and weekday: store-wide counters, or summed over
    /// the users of `filter`.
    pub fn habits(&self, filter: Option<&RoaringBitmap>) -> Result<Habits> {
        let mut h = Habits {
            hours: [0; 24],
            weekdays: [0; 7],
        };
        match filter {
            None => {
                for (i, slot) in h.hours.iter_mut().enumerate() {
                    *slot = self
                        .view
                        .get_counter(Cf::Metrics, &keys::hour(i as u8))?
                        .max(0) as u64;
                }
                for (i, slot) in h.weekdays.iter_mut().enumerate() {
                    *slot = self
                        .view
                        .get_counter(Cf::Metrics, &keys::weekday(i as u8))?
                        .max(0) as u64;
                }
            }
            Some(f) => {
                let parts = self.fold_users(
                    Some(f),
                    || h,
                    |acc, _, s: &UserActivity| {
                        for i in 0..24 {
                            acc.hours[i] += s.hours[i];
                        }
                        for i in 0..7 {
                            acc.weekdays[i] += s.weekdays[i];
                        }
                    },
                )?;
                for p in parts {
                    for i in 0..24 {
                        h.hours[i] += p.hours[i];
                    }
                    for i in 0..7 {
                        h.weekdays[i] += p.weekdays[i];
                    }
                }
            }
        }
        Ok(h)
    }

    /// Folds `f` over the state of every user (restricted to `filter`), on
    /// two threads over two halves of the id space; returns both partial
    /// results. Per-user rules over a million users are the slowest queries,
    /// and the machines we target have two cores.
    fn fold_users<T: Send, V: serde::de::DeserializeOwned>(
        &self,
        filter: Option<&RoaringBitmap>,
        init: impl Fn() -> T + Sync,
        f: impl Fn(&mut T, u32, &V) + Sync,
    ) -> Result<Vec<T>> {
        let decode = |k: &[u8], v: &[u8]| -> Result<V> {
            crate::codec::decode_prefix(v)
                .map_err(|e| corrupt(Cf::Activity, k, &e.to_string()).into())
        };
        if let Some(set) = filter.filter(|s| s.len() < POINT_READ_FILTER_USERS) {
            let mut acc = init();
            for u in set {
                let key = keys::user_state(u);
                if let Some(bytes) = self.view.get_raw(Cf::Activity, &key)? {
                    f(&mut acc, u, &decode(&key, &bytes)?);
                }
            }
            return Ok(vec![acc]);
        }
        let top = match self.view.store().last_key(Cf::Activity)? {
            Some(k) => crate::keys::user_of(Cf::Activity.name(), &k)?,
            None => return Ok(vec![init()]),
        };
        let mid = top / 2 + 1;
        let scan = |lo: u32, hi: Option<u32>| -> Result<T> {
            let mut acc = init();
            let until = hi.map(keys::user_state);
            for item in self
                .view
                .range(Cf::Activity, &keys::user_state(lo), until)?
            {
                let (k, v) = item?;
                if k.len() != crate::keys::USER_BYTES {
                    continue; // a session entry
                }
                let u = crate::keys::user_of(Cf::Activity.name(), &k)?;
                if filter.is_some_and(|set| !set.contains(u)) {
                    continue;
                }
                f(&mut acc, u, &decode(&k, &v)?);
            }
            Ok(acc)
        };
        std::thread::scope(|sc| {
            let other = sc.spawn(|| scan(mid, None));
            let mine = scan(0, Some(mid));
            let theirs = other.join().unwrap_or_else(|_| {
                Err(crate::error::Error::LimitReached {
                    what: "a scan thread panicked",
                    max: 0,
                })
            });
            Ok(vec![mine?, theirs?])
        })
    }

    /// One user's maintained state, as stored.
    pub fn user_state(&self, user_id: u32) -> Result<Option<UserActivity>> {
        self.view.get(Cf::Activity, &keys::user_state(user_id))
    }

    /// The stage model in force.
    pub fn stage_model(&self) -> &StageModel {
        &self.settings.stage_model
    }

    /// One user's metrics as of `as_of_day`; `None` for a user without events.
    pub fn user(&self, user_id: u32, as_of_day: i32) -> Result<Option<UserMetrics>> {
        check_day("as_of_day", as_of_day)?;
        Ok(self
            .user_state(user_id)?
            .map(|s| UserMetrics::derive(user_id, &s, as_of_day, &self.settings.stage_model)))
    }

    /// Metrics of every user with events (restricted to `filter`), by user id.
    pub fn users(
        &self,
        as_of_day: i32,
        filter: Option<&RoaringBitmap>,
    ) -> Result<Vec<UserMetrics>> {
        check_day("as_of_day", as_of_day)?;
        let model = &self.settings.stage_model;
        // the halves come back lowest ids first, so the result is in id order
        let parts = self.fold_users(filter, Vec::new, |acc, u, s: &UserActivity| {
            acc.push(UserMetrics::derive(u, s, as_of_day, model))
        })?;
        Ok(parts.into_iter().flatten().collect())
    }

    /// Users per lifecycle stage as of `as_of_day`; every stage of the model
    /// is listed, with 0 when empty. Users without activity by then are left out.
    pub fn stages(
        &self,
        as_of_day: i32,
        filter: Option<&RoaringBitmap>,
    ) -> Result<BTreeMap<String, u64>> {
        check_day("as_of_day", as_of_day)?;
        let model = &self.settings.stage_model;
        let names = model.stages();
        let mut counts = vec![0u64; names.len()];
        self.classify_users(as_of_day, filter, |_, stage| {
            if let Some(i) = names.iter().position(|n| *n == stage) {
                counts[i] += 1;
            }
        })?;
        Ok(names
            .iter()
            .zip(counts)
            .map(|(n, c)| ((*n).to_owned(), c))
            .collect())
    }

    /// Users in lifecycle stage `stage` as of `as_of_day`.
    pub fn users_in_stage(&self, stage: &str, as_of_day: i32) -> Result<RoaringBitmap> {
        check_day("as_of_day", as_of_day)?;
        let mut out = RoaringBitmap::new();
        self.classify_users(as_of_day, None, |u, s| {
            if s == stage {
                out.insert(u);
            }
        })?;
        Ok(out)
    }

    /// Calls `f(user, stage)` for every user with activity by `as_of_day`.
    ///
    /// When the model reads only activity and purchase days (the standard
    /// model does), the inputs come from the day sets by bitmap iteration into
    /// dense per-user arrays — no per-user value is decoded. A model reading
    /// net spend needs the per-user money, so it scans the per-user states.
    fn classify_users(
        &self,
        as_of_day: i32,
        filter: Option<&RoaringBitmap>,
        mut f: impl FnMut(u32, &str),
    ) -> Result<()> {
        let model = &self.settings.stage_model;
        let d = as_of_day;
        if model.uses(super::rules::StageInput::NetSpendMinor) {
            let parts = self.fold_users(
                filter,
                Vec::<(u32, Inputs)>::new,
                |acc, u, s: &UserActivity| {
                    if let Some(x) = stage_inputs(s, d) {
                        acc.push((u, x));
                    }
                },
            )?;
            for (u, x) in parts.into_iter().flatten() {
                f(u, model.classify(&x));
            }
            return Ok(());
        }
        let firsts = self.sets(FIRST_USERS, Some(ACTIVITY), i32::MIN, d, filter)?;
        let top = firsts.values().filter_map(RoaringBitmap::max).max();
        let Some(top) = top else { return Ok(()) };
        let n = top as usize + 1;
        let mut first = vec![i32::MIN; n];
        for (day, set) in &firsts {
            for u in set {
                first[u as usize] = *day;
            }
        }
        drop(firsts);
        let mut last = vec![i32::MIN; n];
        let mut last30 = vec![0u16; n];
        let mut prev30 = vec![0u16; n];
        for (day, set) in self
            .sets(DAY_USERS, Some(ACTIVITY), i32::MIN, d, filter)?
            .iter()
            .rev()
        {
            for u in set {
                let u = u as usize;
                if u >= n {
                    continue;
                }
                if last[u] == i32::MIN {
                    last[u] = *day;
                }
                if *day > d - 30 {
                    last30[u] += 1;
                } else if *day > d - 60 {
                    prev30[u] += 1;
                }
            }
        }
        let mut purchase_days = vec![0u32; n];
        for set in self
            .sets(DAY_USERS, Some(kind_ids::PURCHASE), i32::MIN, d, filter)?
            .values()
        {
            for u in set {
                if let Some(p) = purchase_days.get_mut(u as usize) {
                    *p += 1;
                }
            }
        }
        for u in 0..n {
            if first[u] == i32::MIN || last[u] == i32::MIN {
                continue;
            }
            let x = Inputs {
                days_since_first: i64::from(d) - i64::from(first[u]),
                days_since_last: i64::from(d) - i64::from(last[u]),
                active_last30: i64::from(last30[u]),
                active_prev30: i64::from(prev30[u]),
                purchase_days: i64::from(purchase_days[u]),
                net_spend_minor: 0,
            };
            f(u as u32, model.classify(&x));
        }
        Ok(())
    }

    /// RFM values, scores and segments of every purchaser as of `as_of_day`.
    /// Scores are quintiles among all purchasers; `filter` restricts the rows
    /// and counts, not the population the scores are ranked in.
    pub fn rfm(&self, as_of_day: i32, filter: Option<&RoaringBitmap>) -> Result<RfmReport> {
        check_day("as_of_day", as_of_day)?;
        // (user, last purchase day, orders, purchase days, net spend)
        type Row = (u32, i32, u64, u64, i64);
        // Only purchasers have RFM values: the purchase first-day sets name
        // them, so the scan decodes no one else's state.
        let firsts = self.sets(
            FIRST_USERS,
            Some(kind_ids::PURCHASE),
            i32::MIN,
            as_of_day,
            None,
        )?;
        let purchasers = union_range(&firsts, i32::MIN, as_of_day);
        drop(firsts);
        let parts = self.fold_users(
            Some(&purchasers),
            Vec::<Row>::new,
            |acc, u, s: &MoneyHead| {
                if let Some((last, orders, days, net)) = rfm_inputs(&s.money, as_of_day) {
                    acc.push((u, last, orders, days, net));
                }
            },
        )?;
        let mut rows: Vec<Row> = parts.into_iter().flatten().collect();
        rows.sort_unstable_by_key(|r| r.0);
        let recency = |r: &Row| i64::from(as_of_day) - i64::from(r.1);
        let r = quintile_scores(&rows.iter().map(|x| -recency(x)).collect::<Vec<_>>());
        let f = quintile_scores(&rows.iter().map(|x| x.2 as i64).collect::<Vec<_>>());
        let mv = quintile_scores(&rows.iter().map(|x| x.4).collect::<Vec<_>>());
        let mut segments: BTreeMap<&'static str, u64> =
            RFM_SEGMENTS.iter().map(|s| (*s, 0)).collect();
        let mut users = Vec::new();
        for (i, x) in rows.iter().enumerate() {
            if filter.is_some_and(|set| !set.contains(x.0)) {
                continue;
            }
            let segment = rfm_segment(r[i], f[i]);
            *segments.entry(segment).or_default() += 1;
            users.push(UserRfm {
                user_id: x.0,
                recency_days: recency(x),
                orders: x.2,
                purchase_days: x.3,
                net_spend_minor: x.4,
                r_score: r[i],
                f_score: f[i],
                m_score: mv[i],
                segment,
            });
        }
        Ok(RfmReport {
            as_of_day,
            users,
            segments,
        })
    }

    /// Users with purchases on ≥ 2 distinct days in `from..=to` ÷ users with
    /// at least one.
    pub fn repurchase_rate(
        &self,
        from_day: i32,
        to_day: i32,
        filter: Option<&RoaringBitmap>,
    ) -> Result<RepurchaseRate> {
        let sets = self.day_sets_in(Some(kind_ids::PURCHASE), from_day, to_day, filter)?;
        let counts = Self::day_counts(&sets);
        let purchasers = counts.len() as u64;
        let repeat_purchasers = counts.values().filter(|n| **n >= 2).count() as u64;
        Ok(RepurchaseRate {
            repeat_purchasers,
            purchasers,
            rate: ratio(repeat_purchasers, purchasers),
        })
    }

    /// An ordered funnel: `counts[i]` = users who did `steps[0]` on a day in
    /// `from..=to` and then `steps[1]`, … `steps[i]`, each at or after the one
    /// before (distinct events), all within `window_ms` of the first step.
    ///
    /// Bitmaps decide step 1 and rule out users missing a step kind; only the
    /// remaining users' events in the window are read.
    pub fn funnel(
        &self,
        steps: &[EventKind],
        window_ms: i64,
        from_day: i32,
        to_day: i32,
        filter: Option<&RoaringBitmap>,
    ) -> Result<Vec<u64>> {
        check_range(from_day, to_day)?;
        if steps.is_empty() || steps.len() > MAX_FUNNEL_STEPS {
            return Err(InputError::new(
                "steps",
                Problem::OutOfRange {
                    value: steps.len() as i64,
                    min: 1,
                    max: MAX_FUNNEL_STEPS as i64,
                },
            )
            .into());
        }
        if !(0..=MAX_FUNNEL_WINDOW_MS).contains(&window_ms) {
            return Err(InputError::new(
                "window_ms",
                Problem::OutOfRange {
                    value: window_ms,
                    min: 0,
                    max: MAX_FUNNEL_WINDOW_MS,
                },
            )
            .into());
        }
        let ids: Vec<Option<u32>> = steps.iter().map(|k| self.kinds.id(k)).collect();
        let mut counts = vec![0u64; steps.len()];
        let Some(first_id) = ids[0] else {
            return Ok(counts);
        };
        let window_days = i32::try_from(window_ms / DAY_MS + 1).unwrap_or(i32::MAX);
        let starters = union_range(
            &self.sets(DAY_USERS, Some(first_id), from_day, to_day, filter)?,
            from_day,
            to_day,
        );
        // Users who did each later step kind somewhere the funnel could reach.
        let mut later: Vec<RoaringBitmap> = Vec::new();
        for id in &ids[1..] {
            let sets = self.sets(
                DAY_USERS,
                *id,
                from_day,
                to_day.saturating_add(window_days),
                Some(&starters),
            )?;
            later.push(union_range(
                &sets,
                from_day,
                to_day.saturating_add(window_days),
            ));
        }
        let offset_ms = i64::from(self.view.store().settings().utc_offset_minutes) * 60_000;
        let from_ms = i64::from(from_day) * DAY_MS - offset_ms;
        let to_ms = (i64::from(to_day) + 1) * DAY_MS - offset_ms; // exclusive, for step 1
        for u in &starters {
            let possible = 1 + later.iter().take_while(|s| s.contains(u)).count();
            let reached = if possible == 1 {
                1
            } else {
                let events = crate::timeline::kinds_and_times(
                    &self.view,
                    u,
                    from_ms,
                    to_ms + window_ms + 1,
                )?;
                funnel_steps(&events, &ids, from_ms, to_ms, window_ms).max(1)
            };
            for c in counts.iter_mut().take(reached) {
                *c += 1;
            }
        }
        Ok(counts)
    }

    /// Users of `segment`-style atoms: active within `days` days ending at `as_of_day`.
    pub fn active_within(&self, days: u32, as_of_day: i32) -> Result<RoaringBitmap> {
        check_day("as_of_day", as_of_day)?;
        let days = i32::try_from(days.clamp(1, MAX_RANGE_DAYS as u32)).unwrap_or(1);
        self.active_users(None, as_of_day - days + 1, as_of_day, None)
    }

    /// Users with at least one event of `kind`, ever: the union of the kind's
    /// first-day sets, which hold each such user exactly once.
    pub fn ever_did(&self, kind: &EventKind) -> Result<RoaringBitmap> {
        let sets = self.sets(
            FIRST_USERS,
            self.kinds.id(kind),
            i32::MIN,
            i32::MAX - 1,
            None,
        )?;
        Ok(union_range(&sets, i32::MIN, i32::MAX))
    }

    /// Users whose RFM segment as of `as_of_day` is `segment`.
    pub fn users_in_rfm_segment(&self, segment: &str, as_of_day: i32) -> Result<RoaringBitmap> {
        Ok(self
            .rfm(as_of_day, None)?
            .users
            .into_iter()
            .filter(|u| u.segment == segment)
            .map(|u| u.user_id)
            .collect())
    }
}

/// Steps one user reached: events are `(ts_ms, kind_id)` sorted by time.
/// Tries every step-1 event in `[from_ms, to_ms)` and, for each, takes the
/// earliest unused event of each next kind at or after the previous step and
/// within the window — earliest is never worse, so the greedy is exact.
fn funnel_steps(
    events: &[(i64, u32)],
    ids: &[Option<u32>],
    from_ms: i64,
    to_ms: i64,
    window_ms: i64,
) -> usize {
    let mut best = 0;
    for (s, (t0, k0)) in events.iter().enumerate() {
        if Some(*k0) != ids[0] || *t0 < from_ms || *t0 >= to_ms {
            continue;
        }
        let deadline = t0.saturating_add(window_ms);
        let mut used = vec![s];
        let mut prev = *t0;
        let mut reached = 1;
        for id in &ids[1..] {
            let lo = events.partition_point(|(t, _)| *t < prev);
            let next = (lo..events.len())
                .take_while(|j| events[*j].0 <= deadline)
                .find(|j| Some(events[*j].1) == *id && !used.contains(j));
            match next {
                Some(j) => {
                    used.push(j);
                    prev = events[j].0;
                    reached += 1;
                }
                None => break,
            }
        }
        best = best.max(reached);
        if best == ids.len() {
            break;
        }
    }
    best
}
