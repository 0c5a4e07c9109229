//! Activity questions: active users over days and calendar periods, DAU/WAU/MAU
//! and stickiness, the stickiness distribution, activity-window segments.

use std::collections::{BTreeMap, HashMap};

use roaring::RoaringBitmap;

use super::super::days::Period;
use super::*;
use crate::error::Result;
use crate::keys::metrics::{self as keys, DAY_USERS, FIRST_USERS};
use crate::kinds::EventKind;
use crate::store::merge::decode_counter;

impl Metrics<'_> {
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

    /// The users with an event of `kind` (`None`: any activity) on each day
    /// of `from..=to`, by day; a day without any is absent. What a
    /// partition exports for a global query plane (SPEC §7).
    pub fn day_sets(
        &self,
        kind: Option<&EventKind>,
        from_day: i32,
        to_day: i32,
    ) -> Result<BTreeMap<i32, RoaringBitmap>> {
        self.day_sets_in(self.kind_id(kind), from_day, to_day, None)
    }

    /// The last local day with any activity, if any: the day a store whose
    /// data ends in the past is looked at as of by default (docs/cli.md).
    /// One reverse seek.
    pub fn last_active_day(&self) -> Result<Option<i32>> {
        let (start, end) = keys::day_users_range(DAY_USERS, ACTIVITY, MIN_QUERY_DAY, MAX_QUERY_DAY);
        let Some(k) = self.view.last_in(Cf::Metrics, &start, end)? else {
            return Ok(None);
        };
        let day: [u8; 4] = k
            .get(keys::SET_DAY_AT..keys::SET_DAY_AT + 4)
            .and_then(|s| s.try_into().ok())
            .ok_or_else(|| corrupt(Cf::Metrics, &k, "user set key too short"))?;
        Ok(Some(crate::keys::day_from_asc(day)))
    }

    /// The users whose first activity fell on each day of `from..=to` (the
    /// first-activity cohorts), by day; a day without any is absent.
    pub fn first_day_sets(
        &self,
        from_day: i32,
        to_day: i32,
    ) -> Result<BTreeMap<i32, RoaringBitmap>> {
        check_range(from_day, to_day)?;
        self.sets(FIRST_USERS, Some(ACTIVITY), from_day, to_day, None)
    }

    /// Calendar active users: users with an event of `kind` (`None`: any
    /// activity) in the day, ISO week or calendar month holding `day`.
    ///
    /// ```
    /// # fn main() -> Result<(), stickydb::Error> {
    /// use stickydb::metrics::Period;
    /// let dir = tempfile::tempdir()?;
    /// let db = stickydb::Db::create(dir.path(), stickydb::Options::default())?;
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
        if filter.is_none() && kind.is_none() {
            // Activity: from the counters kept on write, whatever the
            // number of users.
            let [dau, wau, mau] = keys::WINDOWS_DAYS.map(|w| self.rolling(w, from_day, to_day));
            let (dau, wau, mau) = (dau?, wau?, mau?);
            let get =
                |m: &BTreeMap<i32, i64>, d: i32| m.get(&d).copied().unwrap_or(0).max(0) as u64;
            return Ok((from_day..=to_day)
                .map(|d| row(d, get(&dau, d), get(&wau, d), get(&mau, d)))
                .collect());
        }
        // A kind or a segment: from the day sets.
        let sets = self.sets(DAY_USERS, self.kind_id(kind), from_day - 29, to_day, filter)?;
        Ok((from_day..=to_day)
            .map(|d| {
                let dau = sets.get(&d).map_or(0, RoaringBitmap::len);
                let wau = union_range(&sets, d - 6, d).len();
                let mau = union_range(&sets, d - 29, d).len();
                row(d, dau, wau, mau)
            })
            .collect())
    }

    /// Users active in the `window_days` days ending at each day of
    /// `from..=to`, from the counters kept on write: window 1 directly;
    /// windows 7 and 30 as the sum of their changes up to the day — whole
    /// blocks before the range's block, then that block's days.
    pub(super) fn rolling(
        &self,
        window_days: u8,
        from_day: i32,
        to_day: i32,
    ) -> Result<BTreeMap<i32, i64>> {
        let mut out = BTreeMap::new();
        if window_days == 1 {
            let (start, end) = keys::rolling_range(keys::ROLLING, 1, from_day, to_day);
            self.scan_days(
                start,
                end,
                keys::ROLLING_DAY_AT,
                "active-user counter",
                decode_counter,
                |day, n| {
                    out.insert(day, n);
                },
            )?;
            return Ok(out);
        }
        let first_block = keys::rolling_block(from_day);
        let mut sum = 0i64;
        if let Some(before) = first_block.checked_sub(1) {
            let (start, end) =
                keys::rolling_range(keys::ROLLING_BLOCK, window_days, i32::MIN, before);
            self.scan_days(
                start,
                end,
                keys::ROLLING_DAY_AT,
                "active-user block sum",
                decode_counter,
                |_, n| sum = sum.saturating_add(n),
            )?;
        }
        let block_start = first_block.saturating_mul(keys::ROLLING_BLOCK_DAYS);
        let mut changes: BTreeMap<i32, i64> = BTreeMap::new();
        let (start, end) = keys::rolling_range(keys::ROLLING, window_days, block_start, to_day);
        self.scan_days(
            start,
            end,
            keys::ROLLING_DAY_AT,
            "active-user change",
            decode_counter,
            |day, n| {
                changes.insert(day, n);
            },
        )?;
        let mut changes = changes.into_iter().peekable();
        for d in block_start..=to_day {
            while let Some((_, n)) = changes.next_if(|(cd, _)| *cd <= d) {
                sum = sum.saturating_add(n);
            }
            if d >= from_day {
                out.insert(d, sum);
            }
        }
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
        let dau_sum: u64 = sets.values().map(RoaringBitmap::len).sum();
        let all = union_range(&sets, from_day, to_day).len();
        Ok(mean_stickiness(dau_sum, from_day, to_day, all))
    }

    pub(super) fn day_counts(sets: &BTreeMap<i32, RoaringBitmap>) -> HashMap<u32, u32> {
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
}
