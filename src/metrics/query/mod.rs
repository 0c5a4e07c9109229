//! Queries over the maintained state, one file per kind of question. Nothing
//! here writes.

mod activity;
mod cohorts;
mod counters;
mod funnel;
mod ltv;
mod per_user;
mod results;
mod revenue;
mod sessions;
mod transitions;

pub use ltv::{LtvCohort, LtvReport};
pub use revenue::RevenueRow;
pub use sessions::SessionRow;
pub use transitions::TransitionRow;

pub use results::{
    ActivationRow, ActiveRow, DailyRow, DistributionRow, Habits, LifecycleRow, RepurchaseRate,
    RetentionCohort, RetentionMatrix, RetentionQuery, ReturnMode, RfmReport, StageSpan, UserRfm,
};

use std::collections::BTreeMap;

use roaring::RoaringBitmap;

use super::dense::Bits;
use super::load;
use super::rules::StageModel;
use super::state::ACTIVITY;
use super::state::{DayMoney, UserActivity, UserHead};
use super::{corrupt, MetricSettings};
use crate::error::{InputError, Problem, Result};
use crate::keys::day_from_asc;
use crate::keys::metrics::{self as keys, DAY_USERS};
use crate::kinds::{EventKind, KindRegistry};
use crate::store::merge::decode_bitmap;
use crate::store::{Cf, Snapshot};
use crate::time::DAY_MS;

/// Longest day range one query may span (about ten years).
pub const MAX_RANGE_DAYS: i32 = 3660;
/// Most steps in one funnel.
pub const MAX_FUNNEL_STEPS: usize = 16;
/// Longest funnel window: 90 days.
pub(super) const MAX_FUNNEL_WINDOW_MS: i64 = 90 * DAY_MS;
/// Filters smaller than this are read user by user instead of by a full scan.
pub(super) const POINT_READ_FILTER_USERS: u64 = 4096;

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

/// `n ÷ d`, 0 when `d` is 0: how every ratio of the metrics is computed
/// (a cluster adds partitions' counts, then divides the same way).
pub fn ratio(n: u64, d: u64) -> f64 {
    if d == 0 {
        0.0
    } else {
        n as f64 / d as f64
    }
}

/// Average stickiness: the mean DAU over `from..=to` (`dau_sum` ÷ days) ÷
/// the users active anywhere in the range, 0 without any.
pub fn mean_stickiness(dau_sum: u64, from_day: i32, to_day: i32, users: u64) -> f64 {
    let days = f64::from(to_day - from_day + 1);
    if users == 0 {
        0.0
    } else {
        dau_sum as f64 / days / users as f64
    }
}

/// Earliest and latest local day a query may name: a margin around the days
/// timestamps can fall on (−1 ..= 9999-12-31), so window arithmetic
/// (`d − 59`, `d + window`) can never overflow.
pub const MIN_QUERY_DAY: i32 = -100_000;
/// See [`MIN_QUERY_DAY`].
pub const MAX_QUERY_DAY: i32 = 3_100_000;

/// Checks a day argument against [`MIN_QUERY_DAY`]..=[`MAX_QUERY_DAY`].
pub(super) fn check_day(field: &'static str, day: i32) -> Result<()> {
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

pub(super) fn check_range(from: i32, to: i32) -> Result<()> {
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

pub(super) fn union_range(
    sets: &BTreeMap<i32, RoaringBitmap>,
    from: i32,
    to: i32,
) -> RoaringBitmap {
    let mut u = RoaringBitmap::new();
    if from <= to {
        for s in sets.range(from..=to).map(|(_, s)| s) {
            u |= s;
        }
    }
    u
}

pub(super) fn restrict(set: RoaringBitmap, filter: Option<&RoaringBitmap>) -> RoaringBitmap {
    match filter {
        Some(f) => set & f,
        None => set,
    }
}

/// Stored user-set chunk values by chunk: `(day, value)` in day order.
pub(super) type ChunkValues = BTreeMap<u16, Vec<(i32, Box<[u8]>)>>;

impl Metrics<'_> {
    /// The id a kind selection reads: `None` = activity; `Some(None)` = a
    /// kind the store has never seen (no data).
    pub(super) fn kind_id(&self, kind: Option<&EventKind>) -> Option<u32> {
        match kind {
            None => Some(ACTIVITY),
            Some(k) => self.kinds.id(k),
        }
    }

    /// User sets under `tag` for `kind` and days `from..=to`, by day (the
    /// union of each day's chunks).
    pub(super) fn sets(
        &self,
        tag: u8,
        kind: Option<u32>,
        from: i32,
        to: i32,
        filter: Option<&RoaringBitmap>,
    ) -> Result<BTreeMap<i32, RoaringBitmap>> {
        let mut out: BTreeMap<i32, RoaringBitmap> = BTreeMap::new();
        let Some(kind) = kind else { return Ok(out) };
        if from > to {
            return Ok(out);
        }
        let (start, end) = keys::day_users_range(tag, kind, from, to);
        self.scan_days(
            start,
            end,
            keys::SET_DAY_AT,
            "user set",
            decode_bitmap,
            |day, set| {
                let set = restrict(set, filter);
                if !set.is_empty() {
                    *out.entry(day).or_default() |= set;
                }
            },
        )?;
        Ok(out)
    }

    /// The stored chunk values of the user sets under `tag` for `kind` and
    /// days `from..=to`, by chunk: `(day, value)` in day order. Decoded by
    /// the caller ([`Bits::or_stored`]) one chunk at a time, into buffers it
    /// reuses.
    pub(super) fn chunk_values(
        &self,
        tag: u8,
        kind: Option<u32>,
        from: i32,
        to: i32,
    ) -> Result<ChunkValues> {
        let mut out = ChunkValues::new();
        let Some(kind) = kind else { return Ok(out) };
        if from > to {
            return Ok(out);
        }
        let (start, end) = keys::day_users_range(tag, kind, from, to);
        for item in self.view.range(Cf::Metrics, &start, Some(end))? {
            let (k, v) = item?;
            let (day, chunk) = match keys::MetricKey::parse(&k) {
                Some(keys::MetricKey::DayUsers { day, chunk, .. })
                | Some(keys::MetricKey::FirstUsers { day, chunk, .. }) => (day, chunk),
                _ => return Err(corrupt(Cf::Metrics, &k, "user set key does not decode").into()),
            };
            out.entry(chunk).or_default().push((day, v));
        }
        Ok(out)
    }

    /// ORs each stored value of `values` into the buffer of its day's period
    /// (`period_of`); a value that does not decode is corruption.
    pub(super) fn or_into_periods(
        values: &[(i32, Box<[u8]>)],
        period_of: impl Fn(i32) -> Option<usize>,
        buffers: &mut [Bits],
    ) -> Result<()> {
        for (day, v) in values {
            if let Some(b) = period_of(*day).and_then(|i| buffers.get_mut(i)) {
                b.or_stored(v).ok_or_else(|| {
                    corrupt(Cf::Metrics, &day.to_be_bytes(), "user set does not decode")
                })?;
            }
        }
        Ok(())
    }

    /// Scans metrics keys in `[start, end)` whose local day sits at byte
    /// `day_at`, decoding each merged value with `decode` and handing
    /// `(day, value)` to `f`. A short key or undecodable value is corruption.
    pub(super) fn scan_days<T>(
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
    pub(crate) fn day_sets_in(
        &self,
        kind: Option<u32>,
        from_day: i32,
        to_day: i32,
        filter: Option<&RoaringBitmap>,
    ) -> Result<BTreeMap<i32, RoaringBitmap>> {
        check_range(from_day, to_day)?;
        self.sets(DAY_USERS, kind, from_day, to_day, filter)
    }

    /// Runs `scan` over two halves of the user-id space on two threads
    /// (or once over a small `filter`'s users by point reads, through
    /// `point`); returns both partial results. Per-user rules over a million
    /// users are the slowest queries, and the machines we target have two
    /// cores.
    fn split_users<T: Send>(
        &self,
        filter: Option<&RoaringBitmap>,
        init: impl Fn() -> T + Sync,
        point: impl Fn(&mut T, u32) -> Result<()>,
        scan: impl Fn(&mut T, u32, Option<u32>) -> Result<()> + Sync,
    ) -> Result<Vec<T>> {
        if let Some(set) = filter.filter(|s| s.len() < POINT_READ_FILTER_USERS) {
            let mut acc = init();
            for u in set {
                point(&mut acc, u)?;
            }
            return Ok(vec![acc]);
        }
        let all = crate::users::all_users(self.view.store())?;
        let (Some(bottom), Some(top)) = (all.min(), all.max()) else {
            return Ok(vec![init()]);
        };
        // A partition's ids start at its range's base, not at 0 (SPEC §7).
        let mid = bottom + (top - bottom) / 2 + 1;
        let run = |lo: u32, hi: Option<u32>| -> Result<T> {
            let mut acc = init();
            scan(&mut acc, lo, hi)?;
            Ok(acc)
        };
        std::thread::scope(|sc| {
            let other = sc.spawn(|| run(mid, None));
            let mine = run(0, Some(mid));
            let theirs = other
                .join()
                .unwrap_or_else(|_| Err(crate::error::Error::internal("a scan thread panicked")));
            Ok(vec![mine?, theirs?])
        })
    }

    /// Folds `f` over the state of every user with events (restricted to
    /// `filter`); returns the partial results of the scan threads.
    pub(super) fn fold_users<T: Send>(
        &self,
        filter: Option<&RoaringBitmap>,
        init: impl Fn() -> T + Sync,
        f: impl Fn(&mut T, u32, &UserActivity) + Sync,
    ) -> Result<Vec<T>> {
        self.split_users(
            filter,
            init,
            |acc, u| {
                if let Some(state) = load::load_user(&self.view, u)? {
                    f(acc, u, &state);
                }
                Ok(())
            },
            |acc, lo, hi| {
                load::for_each_user(&self.view, lo, hi, |u, state| {
                    if filter.is_none_or(|set| set.contains(u)) {
                        f(acc, u, &state);
                    }
                    Ok(())
                })
            },
        )
    }

    /// Folds `f` over the money days of every user with any (restricted to
    /// `filter`), reading nothing else.
    pub(super) fn fold_money<T: Send>(
        &self,
        filter: Option<&RoaringBitmap>,
        init: impl Fn() -> T + Sync,
        f: impl Fn(&mut T, u32, &BTreeMap<i32, DayMoney>) + Sync,
    ) -> Result<Vec<T>> {
        self.split_users(
            filter,
            init,
            |acc, u| load::for_each_money(&self.view, u, u.checked_add(1), |u, m| f(acc, u, m)),
            |acc, lo, hi| {
                load::for_each_money(&self.view, lo, hi, |u, m| {
                    if filter.is_none_or(|set| set.contains(u)) {
                        f(acc, u, m);
                    }
                })
            },
        )
    }

    /// Folds `f` over the heads (habits) of every user with events
    /// (restricted to `filter`).
    pub(super) fn fold_heads<T: Send>(
        &self,
        filter: Option<&RoaringBitmap>,
        init: impl Fn() -> T + Sync,
        f: impl Fn(&mut T, u32, &UserHead) + Sync,
    ) -> Result<Vec<T>> {
        self.split_users(
            filter,
            init,
            |acc, u| load::for_each_head(&self.view, u, u.checked_add(1), |u, h| f(acc, u, h)),
            |acc, lo, hi| {
                load::for_each_head(&self.view, lo, hi, |u, h| {
                    if filter.is_none_or(|set| set.contains(u)) {
                        f(acc, u, h);
                    }
                })
            },
        )
    }

    /// One user's maintained state, assembled from its stored parts.
    pub fn user_state(&self, user_id: u32) -> Result<Option<UserActivity>> {
        load::load_user(&self.view, user_id)
    }

    /// The stage model in force.
    pub fn stage_model(&self) -> &StageModel {
        &self.settings.stage_model
    }
}
