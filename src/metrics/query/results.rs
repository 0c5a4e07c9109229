//! The result types of metric queries.

use std::collections::BTreeMap;

use serde::Serialize;

use super::super::days::Period;
use super::ratio;
use crate::kinds::EventKind;

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

/// A run of days one user spent in one lifecycle stage
/// ([`crate::metrics::Metrics::stage_history`]).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StageSpan {
    /// First local day of the run: the day the stage took effect (the
    /// first day of the range asked for when it began earlier).
    pub from_day: i32,
    /// Last local day of the run (within the range asked for).
    pub to_day: i32,
    /// The stage on those days, as `stages` would answer for each of them.
    pub stage: String,
}
