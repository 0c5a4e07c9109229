//! The change feed's derived state, re-derived from the events: each
//! user's money totals and last active day in its head, its stage mark
//! (the published stage equals the stage recomputed on the mark's day, the
//! due day equals the first later day the recomputed stage changes), and
//! the due index holding exactly the marks' due days.

use std::collections::{BTreeMap, BTreeSet};

use super::VerifyReport;
use crate::error::Result;
use crate::keys::feed as fk;
use crate::kinds::ids::{ACTIVITY, PURCHASE};
use crate::metrics::{DayMoney, StageMark, StageModel, UserActivity, MAX_DUE_AHEAD_DAYS};
use crate::store::{Cf, Store};

/// The head fields the feed relies on, as stored.
pub(super) struct HeadTotals<'a> {
    pub last_active: Option<i32>,
    pub recent: u64,
    pub purchase_days: u32,
    pub bought_minor: i64,
    pub refunded_minor: i64,
    pub mark: &'a Option<StageMark>,
}

/// Checks one user's totals and mark; adds its due day to `due`.
pub(super) fn check_user(
    user_id: u32,
    days: &BTreeMap<u32, BTreeSet<i32>>,
    money: &BTreeMap<i32, DayMoney>,
    head: &HeadTotals<'_>,
    model: &StageModel,
    due: &mut BTreeSet<(i32, u32)>,
    r: &mut VerifyReport,
) {
    let active = days.get(&ACTIVITY);
    let last_active = active.and_then(|d| d.last().copied());
    let purchase_days = days.get(&PURCHASE).map_or(0, BTreeSet::len);
    let bought = money
        .values()
        .fold(0i64, |a, m| a.saturating_add(m.purchase_minor));
    let refunded = money
        .values()
        .fold(0i64, |a, m| a.saturating_add(m.refund_minor));
    let recent = match last_active {
        None => 0,
        Some(l) => active.into_iter().flatten().fold(0u64, |m, d| {
            let k = i64::from(l) - i64::from(*d);
            if (0..64).contains(&k) {
                m | 1 << k
            } else {
                m
            }
        }),
    };
    if head.last_active != last_active
        || head.recent != recent
        || head.purchase_days as usize != purchase_days
        || head.bought_minor != bought
        || head.refunded_minor != refunded
    {
        r.problem(format!(
            "activity: user {user_id} head totals (last active day, recent days, purchase days, money) differ from its events"
        ));
    }
    let last_money = money.keys().next_back().copied();
    let Some(mark) = head.mark else {
        if last_active.is_some() || last_money.is_some() {
            r.problem(format!(
                "feed: user {user_id} has activity but no stage mark"
            ));
        }
        return;
    };
    if last_active.max(last_money).is_some_and(|l| l > mark.day) {
        r.problem(format!(
            "feed: user {user_id} stage mark day {} is before its last activity",
            mark.day
        ));
        return;
    }
    let state = UserActivity {
        money: money.clone(),
        days: days
            .iter()
            .map(|(k, v)| (*k, v.iter().copied().collect()))
            .collect(),
        ..UserActivity::default()
    };
    let stage_on =
        |d: i32| crate::metrics::stage_inputs_of(&state, d).map(|x| model.classify(&x).to_owned());
    let published = stage_on(mark.day);
    if published != mark.stage {
        r.problem(format!(
            "feed: user {user_id} published stage {:?} on day {}, its events give {:?}",
            mark.stage, mark.day, published
        ));
    }
    // Past this day no input crosses a threshold any more (or the model
    // schedules nothing further out).
    let last = last_active.unwrap_or(mark.day);
    let bound = match model.days_since_horizon() {
        Some(t) => i64::from(last) + 61 + t,
        None => i64::from(last) + i64::from(MAX_DUE_AHEAD_DAYS),
    }
    .min(i64::from(mark.day) + i64::from(MAX_DUE_AHEAD_DAYS));
    let bound = i32::try_from(bound).unwrap_or(i32::MAX);
    let expected_due = (mark.day.saturating_add(1)..=bound).find(|d| stage_on(*d) != published);
    if expected_due != mark.due {
        r.problem(format!(
            "feed: user {user_id} is due on {:?}, its events give {:?}",
            mark.due, expected_due
        ));
    }
    // The index key is a lower bound of the due day.
    match (mark.indexed, mark.due) {
        (Some(i), Some(d)) if i > d => r.problem(format!(
            "feed: user {user_id} is indexed on day {i}, after its due day {d}"
        )),
        (None, Some(d)) => r.problem(format!(
            "feed: user {user_id} is due on day {d} but has no index key"
        )),
        _ => {}
    }
    if let Some(i) = mark.indexed {
        due.insert((i, user_id));
    }
}

/// Compares the due index with the marks' due days, both ways.
pub(super) fn check_due_index(
    store: &Store,
    expected: &BTreeSet<(i32, u32)>,
    r: &mut VerifyReport,
) -> Result<()> {
    let mut stored = BTreeSet::new();
    for item in store.range(Cf::Feed, &[fk::DUE], Some(vec![fk::DUE + 1]))? {
        let (k, _) = item?;
        r.count(Cf::Feed);
        match fk::parse_due(&k) {
            Some(p) => {
                stored.insert(p);
            }
            None => r.problem(format!("feed: due key {k:02x?} does not decode")),
        }
    }
    for (d, u) in stored.difference(expected) {
        r.problem(format!(
            "feed: due index holds user {u} on day {d}, its mark does not"
        ));
    }
    for (d, u) in expected.difference(&stored) {
        r.problem(format!(
            "feed: user {u} is due on day {d}, the due index misses it"
        ));
    }
    Ok(())
}
