//! Per-user metrics derived from one user's state as of a day.

use serde::Serialize;

use super::rules::{Inputs, StageModel};
use std::collections::BTreeMap;

use super::state::{kind_ids, DayMoney, UserActivity, ACTIVITY};

/// The buy-till-you-die summary of one purchaser (SPEC §3, CLV).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Clv {
    /// Purchase days − 1.
    pub frequency: u64,
    /// Last − first purchase day.
    pub recency: i64,
    /// As-of day − first purchase day.
    pub t: i64,
    /// Mean purchase amount per repeat purchase day (every purchase day but
    /// the first), minor units; 0 when `frequency` is 0.
    pub monetary_value: f64,
}

/// One user's metrics as of a day; only events on or before that day count.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UserMetrics {
    /// Internal user id.
    pub user_id: u32,
    /// The day the figures are as of.
    pub as_of_day: i32,
    /// First local day with activity.
    pub first_seen_day: Option<i32>,
    /// Last local day with activity.
    pub last_seen_day: Option<i32>,
    /// Distinct active days.
    pub active_days: u64,
    /// Distinct active days in the 30 days ending at the as-of day.
    pub active_days_last30: u64,
    /// Distinct active days in the 30 days before those.
    pub active_days_prev30: u64,
    /// Purchase events (orders).
    pub purchase_count: u64,
    /// Distinct local days with a purchase.
    pub purchase_days: u64,
    /// Sum of purchase amounts, minor units.
    pub total_spend_minor: i64,
    /// Sum of refund amounts, minor units.
    pub refund_minor: i64,
    /// Purchases minus refunds, minor units.
    pub net_spend_minor: i64,
    /// First local day with a purchase.
    pub first_purchase_day: Option<i32>,
    /// Last local day with a purchase.
    pub last_purchase_day: Option<i32>,
    /// CLV summary; `None` for users without a purchase.
    pub clv: Option<Clv>,
    /// Lifecycle stage; `None` for users without activity.
    pub stage: Option<String>,
    /// Consecutive sign-in days ending at the as-of day (or the day before,
    /// while the as-of day may still bring one).
    pub sign_in_streak_current: u64,
    /// Longest run of consecutive sign-in days.
    pub sign_in_streak_longest: u64,
    /// Events by local hour (all time).
    pub hours: [u64; 24],
    /// Events by local weekday, Monday first (all time).
    pub weekdays: [u64; 7],
}

fn streaks(state: &UserActivity, d: i32) -> (u64, u64) {
    let Some(days) = state.days_of(kind_ids::SIGN_IN) else {
        return (0, 0);
    };
    let mut longest = 0u64;
    let mut run = 0u64;
    let mut prev: Option<i32> = None;
    let mut last_run_end: Option<i32> = None;
    let mut last_run_len = 0u64;
    for day in days.iter().take_while(|x| *x <= d) {
        run = if prev == Some(day - 1) { run + 1 } else { 1 };
        longest = longest.max(run);
        prev = Some(day);
        last_run_end = Some(day);
        last_run_len = run;
    }
    let current = match last_run_end {
        Some(end) if end == d || end == d - 1 => last_run_len,
        _ => 0,
    };
    (current, longest)
}

/// The stage-rule inputs of a user as of `d`; `None` without activity by then.
pub(crate) fn stage_inputs(state: &UserActivity, d: i32) -> Option<Inputs> {
    let active = state.days_of(ACTIVITY)?;
    let first = active.first().filter(|f| *f <= d)?;
    let last = active.last_at_or_before(d)?;
    let (_, net_spend_minor) = money_up_to(state, d);
    Some(Inputs {
        days_since_first: i64::from(d) - i64::from(first),
        days_since_last: i64::from(d) - i64::from(last),
        active_last30: active.count_between(d - 29, d) as i64,
        active_prev30: active.count_between(d - 59, d - 30) as i64,
        purchase_days: state
            .days_of(kind_ids::PURCHASE)
            .map_or(0, |p| p.count_at_or_before(d)) as i64,
        net_spend_minor,
    })
}

/// Orders and net spend up to `d`: purchases and refunds are each summed
/// (saturating; both are non-negative, so the order of days does not
/// matter), then subtracted — the rule the write path's totals follow.
fn money_up_to(state: &UserActivity, d: i32) -> (u64, i64) {
    let mut orders = 0u64;
    let (mut bought, mut refunded) = (0i64, 0i64);
    for m in state.money.range(..=d).map(|(_, m)| m) {
        orders += u64::from(m.orders);
        bought = bought.saturating_add(m.purchase_minor);
        refunded = refunded.saturating_add(m.refund_minor);
    }
    (orders, bought.saturating_sub(refunded))
}

/// RFM inputs as of `d` from a user's money alone: (last purchase day,
/// orders, purchase days, net spend); `None` without a purchase by then.
pub(crate) fn rfm_inputs(money: &BTreeMap<i32, DayMoney>, d: i32) -> Option<(i32, u64, u64, i64)> {
    let mut last = None;
    let (mut orders, mut days, mut net) = (0u64, 0u64, 0i64);
    for (day, m) in money.range(..=d) {
        if m.orders > 0 {
            last = Some(*day);
            days += 1;
        }
        orders += u64::from(m.orders);
        net = net
            .saturating_add(m.purchase_minor)
            .saturating_sub(m.refund_minor);
    }
    Some((last?, orders, days, net))
}

impl UserMetrics {
    /// Derives a user's metrics as of day `d`.
    pub(crate) fn derive(user_id: u32, state: &UserActivity, d: i32, model: &StageModel) -> Self {
        let empty = super::days::DaySet::default();
        let active = state.days_of(ACTIVITY).unwrap_or(&empty);
        let purchases = state.days_of(kind_ids::PURCHASE).unwrap_or(&empty);
        let first_seen_day = active.first().filter(|f| *f <= d);
        let last_seen_day = active.last_at_or_before(d);
        let mut purchase_count = 0u64;
        let mut total_spend_minor = 0i64;
        let mut refund_minor = 0i64;
        let mut first_day_spend = 0i64;
        let first_purchase_day = purchases.first().filter(|f| *f <= d);
        for (day, m) in state.money.range(..=d) {
            purchase_count += u64::from(m.orders);
            total_spend_minor = total_spend_minor.saturating_add(m.purchase_minor);
            refund_minor = refund_minor.saturating_add(m.refund_minor);
            if Some(*day) == first_purchase_day {
                first_day_spend = m.purchase_minor;
            }
        }
        let purchase_days = purchases.count_at_or_before(d);
        let last_purchase_day = purchases.last_at_or_before(d);
        let net_spend_minor = total_spend_minor.saturating_sub(refund_minor);
        let clv = match (first_purchase_day, last_purchase_day) {
            (Some(first), Some(last)) => {
                let frequency = purchase_days.saturating_sub(1);
                let repeat_spend = total_spend_minor.saturating_sub(first_day_spend);
                Some(Clv {
                    frequency,
                    recency: i64::from(last) - i64::from(first),
                    t: i64::from(d) - i64::from(first),
                    monetary_value: if frequency == 0 {
                        0.0
                    } else {
                        repeat_spend as f64 / frequency as f64
                    },
                })
            }
            _ => None,
        };
        let active_days_last30 = active.count_between(d - 29, d);
        let active_days_prev30 = active.count_between(d - 59, d - 30);
        let stage = stage_inputs(state, d).map(|x| model.classify(&x).to_owned());
        let (sign_in_streak_current, sign_in_streak_longest) = streaks(state, d);
        Self {
            user_id,
            as_of_day: d,
            first_seen_day,
            last_seen_day,
            active_days: active.count_at_or_before(d),
            active_days_last30,
            active_days_prev30,
            purchase_count,
            purchase_days,
            total_spend_minor,
            refund_minor,
            net_spend_minor,
            first_purchase_day,
            last_purchase_day,
            clv,
            stage,
            sign_in_streak_current,
            sign_in_streak_longest,
            hours: state.hours,
            weekdays: state.weekdays,
        }
    }
}

/// The RFM segment of a pair of recency and frequency scores (1..=5).
///
/// | segment | rule |
/// |---|---|
/// | champions | R ≥ 4 and F ≥ 4 |
/// | loyal | R ≥ 3 and F ≥ 3 |
/// | new customers | R ≥ 4 and F = 1 |
/// | potential | R ≥ 3 |
/// | at risk | F ≥ 3 |
/// | hibernating | R = 2 |
/// | lost | otherwise (R = 1, F ≤ 2) |
pub(crate) fn rfm_segment(r: u8, f: u8) -> &'static str {
    if r >= 4 && f >= 4 {
        "champions"
    } else if r >= 3 && f >= 3 {
        "loyal"
    } else if r >= 4 && f == 1 {
        "new_customers"
    } else if r >= 3 {
        "potential"
    } else if f >= 3 {
        "at_risk"
    } else if r == 2 {
        "hibernating"
    } else {
        "lost"
    }
}

/// Every RFM segment name, best first.
pub const RFM_SEGMENTS: [&str; 7] = [
    "champions",
    "loyal",
    "new_customers",
    "potential",
    "at_risk",
    "hibernating",
    "lost",
];

/// Quintile scores 1..=5 for `values`: a value's score is
/// `1 + floor(5 × (values strictly below it) / n)` — the quintile its
/// group of equal values starts in. Ties share a score and the order of users
/// does not matter; the many users tied at the minimum (one order, say) score
/// 1, as RFM segment rules expect. When every value is equal, every score is 1.
#[cfg(test)]
pub(crate) fn quintile_scores(values: &[i64]) -> Vec<u8> {
    let mut h = Distribution::default();
    values.iter().for_each(|v| h.add(*v));
    let h = h.ranked();
    values.iter().map(|v| h.score(*v)).collect()
}

/// How many users hold each value: what a quintile score ranks in. Two
/// partitions' distributions add up to the whole deployment's (SPEC §7), so
/// scores ranked in the sum equal a single store's.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Distribution(BTreeMap<i64, u64>);

impl Distribution {
    /// Counts one more user holding `value`.
    pub fn add(&mut self, value: i64) {
        *self.0.entry(value).or_default() += 1;
    }

    /// Adds another distribution's counts.
    pub fn merge(&mut self, other: &Distribution) {
        for (v, n) in &other.0 {
            *self.0.entry(*v).or_default() += n;
        }
    }

    /// Users counted.
    pub fn total(&self) -> u64 {
        self.0.values().sum()
    }

    /// The values with the count of users strictly below each.
    pub(crate) fn ranked(&self) -> Ranked {
        let mut below = 0u64;
        let mut rows = Vec::with_capacity(self.0.len());
        for (v, n) in &self.0 {
            rows.push((*v, below));
            below += n;
        }
        Ranked { rows, total: below }
    }
}

/// A [`Distribution`] ready to score values.
pub(crate) struct Ranked {
    rows: Vec<(i64, u64)>,
    total: u64,
}

impl Ranked {
    /// The quintile score of `value`: `1 + floor(5 × below / n)`.
    pub(crate) fn score(&self, value: i64) -> u8 {
        let i = self.rows.partition_point(|(v, _)| *v < value);
        let below = match self.rows.get(i) {
            Some((_, b)) => *b,
            None => self.total,
        };
        (1 + (5 * below) / self.total.max(1)).clamp(1, 5) as u8
    }
}

/// The three distributions RFM scores rank in as of a day: recency (as
/// the negated days since the last purchase, so recent ranks high), orders
/// and net spend, over every purchaser.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RfmScale {
    /// Negated days since the last purchase.
    pub recency: Distribution,
    /// Purchase events.
    pub frequency: Distribution,
    /// Net spend, minor units.
    pub monetary: Distribution,
}

impl RfmScale {
    /// Adds another partition's distributions.
    pub fn merge(&mut self, other: &RfmScale) {
        self.recency.merge(&other.recency);
        self.frequency.merge(&other.frequency);
        self.monetary.merge(&other.monetary);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quintiles_share_ties() {
        assert_eq!(quintile_scores(&[1, 2, 3, 4, 5]), vec![1, 2, 3, 4, 5]);
        assert_eq!(quintile_scores(&[7, 7, 7]), vec![1, 1, 1]);
        assert_eq!(quintile_scores(&[1, 1, 9, 9]), vec![1, 1, 3, 3]);
        assert_eq!(quintile_scores(&[4]), vec![1]);
        assert_eq!(quintile_scores(&[3, 1, 2]), vec![4, 1, 2]);
        // six one-order buyers of ten all score 1
        assert_eq!(
            quintile_scores(&[1, 1, 1, 1, 1, 1, 2, 3, 5, 9]),
            vec![1, 1, 1, 1, 1, 1, 4, 4, 5, 5]
        );
    }

    #[test]
    fn streak_tolerates_the_open_day() {
        let mut s = UserActivity::default();
        s.days
            .insert(kind_ids::SIGN_IN, [1, 2, 3, 5, 6].into_iter().collect());
        assert_eq!(streaks(&s, 6), (2, 3));
        assert_eq!(streaks(&s, 7), (2, 3));
        assert_eq!(streaks(&s, 8), (0, 3));
        assert_eq!(streaks(&s, 3), (3, 3));
    }
}
