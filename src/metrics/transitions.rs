//! Stage transitions as they happen (SPEC §4a): the per-user stage mark
//! (which stage the feed last published, as of which day, and the next day
//! the stage changes with no new event), and the walk that moves a mark
//! forward after a write or when time passes, producing feed records.
//!
//! The stage of a user on day `d` is the stage model applied to the user's
//! inputs as of `d` (SPEC §3): the same function `stages` and
//! `stage_history` answer from. A mark at day `P` says the feed has told
//! consumers `S(P)`, and that `S` does not change on `P+1 ..= due−1`. The
//! walk reads only what it needs: the user's totals and recent active days
//! kept in its head, and the write's own events — never the user's whole
//! history. [`Days`] evaluates consecutive days in one forward pass; the
//! transitions query uses it too.

use serde::{Deserialize, Serialize};

use super::rules::{Condition, Inputs, StageInput, StageModel};
use crate::feed::{Change, Record, StageCause};

/// Days a scheduled change may lie after the day it is computed from: a
/// model whose next change for a user lies further out (thresholds over ten
/// years, or percent conditions between day counts) schedules none.
pub const MAX_DUE_AHEAD_DAYS: i32 = 3_660;

/// Longest walk over days one write or advance makes; longer gaps (a user
/// back after more than ten years with no `advance` run) publish the stage
/// at the end of the gap as one change.
const MAX_WALK_DAYS: i32 = 3_660;

/// What the feed last published for one user (kept in the user's head).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageMark {
    /// The day the published stage is as of.
    pub day: i32,
    /// The published stage (`None`: no activity by `day`).
    pub stage: Option<String>,
    /// The first day after `day` on which the stage changes with no new
    /// event; `None` when it never does (or beyond [`MAX_DUE_AHEAD_DAYS`]).
    pub due: Option<i32>,
    /// The day of the user's key in the due index: at or before `due` (a
    /// write that moves `due` later leaves the key; `advance` moves it when
    /// it meets it); `None` when the user has no key.
    pub indexed: Option<i32>,
}

/// One event of a write, as far as stages care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Trigger {
    pub day: i32,
    /// The event made `day` an active day of the user.
    pub new_active: bool,
    /// The event made `day` a purchase day of the user.
    pub new_purchase_day: bool,
    /// Purchase amount it added, minor units.
    pub bought_minor: i64,
    /// Refund amount it added, minor units.
    pub refunded_minor: i64,
}

/// Everything needed to classify any day at or after `base` with no event
/// beyond those known: totals as of `base` plus the changes after it. The
/// write path builds one from a user's head and a write's events; the
/// transitions query from a user's loaded state.
#[derive(Debug, Clone, Default)]
pub(crate) struct Series {
    pub base: i32,
    /// First active day (overall).
    pub first: Option<i32>,
    /// Last active day at or before `base`.
    pub last_at_base: Option<i32>,
    pub purchase_days_at_base: i64,
    pub bought_at_base: i64,
    pub refunded_at_base: i64,
    /// Active days from `base − 59` on, ascending.
    pub active: Vec<i32>,
    /// Purchase days after `base`, ascending.
    pub purchase_days_after: Vec<i32>,
    /// (day, bought, refunded) after `base`, ascending by day.
    pub money_after: Vec<(i32, i64, i64)>,
}

/// The stages of consecutive days of a [`Series`], each day's inputs from
/// pointers moved forward into the series' sorted days and money rather
/// than searched for anew.
pub(crate) struct Days<'s> {
    s: &'s Series,
    /// Active days ≤ the last day asked, < it − 29, < it − 59.
    upto: usize,
    before30: usize,
    before60: usize,
    /// Purchase days and money days after the base, ≤ the last day asked.
    bought_days: usize,
    paid: usize,
    bought: i64,
    refunded: i64,
    last_day: Option<i32>,
}

impl Days<'_> {
    /// The stage inputs on day `d`; `d` must not go back, nor before the
    /// series' base. `None` before the first activity.
    pub fn inputs(&mut self, d: i32) -> Option<Inputs> {
        let s = self.s;
        debug_assert!(d >= s.base, "a series answers from its base on");
        debug_assert!(self.last_day.is_none_or(|l| l <= d), "days go forward");
        self.last_day = Some(d);
        let active = &s.active;
        while self.upto < active.len() && active[self.upto] <= d {
            self.upto += 1;
        }
        while self.before30 < active.len() && active[self.before30] < d - 29 {
            self.before30 += 1;
        }
        while self.before60 < active.len() && active[self.before60] < d - 59 {
            self.before60 += 1;
        }
        while self.bought_days < s.purchase_days_after.len()
            && s.purchase_days_after[self.bought_days] <= d
        {
            self.bought_days += 1;
        }
        while self.paid < s.money_after.len() && s.money_after[self.paid].0 <= d {
            let (_, b, r) = s.money_after[self.paid];
            self.bought = self.bought.saturating_add(b);
            self.refunded = self.refunded.saturating_add(r);
            self.paid += 1;
        }
        let first = s.first.filter(|f| *f <= d)?;
        let recent = self.upto.checked_sub(1).map(|i| active[i]);
        let last = recent.max(s.last_at_base)?;
        Some(Inputs {
            days_since_first: i64::from(d) - i64::from(first),
            days_since_last: i64::from(d) - i64::from(last),
            active_last30: (self.upto - self.before30) as i64,
            active_prev30: (self.before30 - self.before60) as i64,
            purchase_days: s.purchase_days_at_base + self.bought_days as i64,
            net_spend_minor: self.bought.saturating_sub(self.refunded),
        })
    }

    /// The stage on day `d` (days going forward).
    pub fn stage<'m>(&mut self, model: &'m StageModel, d: i32) -> Option<&'m str> {
        self.inputs(d).map(|x| model.classify(&x))
    }
}

impl Series {
    /// A forward pass over the series' days.
    pub fn days(&self) -> Days<'_> {
        Days {
            s: self,
            upto: 0,
            before30: 0,
            before60: 0,
            bought_days: 0,
            paid: 0,
            bought: self.bought_at_base,
            refunded: self.refunded_at_base,
            last_day: None,
        }
    }

    /// The stage on day `d` (≥ `base`).
    pub fn stage<'m>(&self, model: &'m StageModel, d: i32) -> Option<&'m str> {
        self.days().stage(model, d)
    }

    /// The first day after `after` (≥ `base`) whose stage differs from the
    /// stage on `after`, with no event beyond those known.
    pub fn next_change(&self, model: &StageModel, after: i32) -> Option<i32> {
        let first = self.first?;
        let last = self
            .active
            .last()
            .copied()
            .max(self.last_at_base)
            .unwrap_or(first);
        // Past `limit` every input is constant or past every threshold.
        let limit = match model.days_since_horizon() {
            Some(t) => {
                let t = i32::try_from(t).unwrap_or(i32::MAX);
                last.saturating_add(60)
                    .max(first.saturating_add(t).saturating_add(1))
                    .max(last.saturating_add(t).saturating_add(1))
            }
            None => last.saturating_add(MAX_DUE_AHEAD_DAYS),
        }
        .min(after.saturating_add(MAX_DUE_AHEAD_DAYS));
        let mut days = self.days();
        let now = days.stage(model, after);
        (after.saturating_add(1)..=limit).find(|d| days.stage(model, *d) != now)
    }
}

/// How a walk publishes: a live write or advance emits records; a rebuild
/// only re-derives the mark.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Publish {
    /// Emit records with this cause.
    Live(StageCause),
    /// Re-derive the mark at the target day, emitting nothing.
    Silent,
}

/// The outcome of moving one user's mark.
pub(crate) struct Moved {
    pub mark: StageMark,
    pub records: Vec<Record>,
}

/// Moves a user's mark from `old` to `target` over `series` (whose base is
/// the mark's effective day, see [`crate::metrics::state`]): a correction
/// when the stage at the base changed under the write (a late event, a
/// merge, a model change; its day is `correction_day`), then every change
/// on the days after the base up to `target`. Write-caused records are
/// retroactive when their day is before `target`; time-caused ones never.
#[allow(clippy::too_many_arguments)]
pub(crate) fn walk(
    model: &StageModel,
    series: &Series,
    published: Option<&str>,
    target: i32,
    correction_day: i32,
    publish: Publish,
    user_id: u32,
    utc_offset_minutes: i32,
) -> Moved {
    let target = target.max(series.base);
    let mut records = Vec::new();
    let mut emit = |from: Option<&str>, to: Option<&str>, day: i32| {
        if let Publish::Live(cause) = publish {
            records.push(Record {
                user_id,
                change: Change::Stage {
                    from: from.map(str::to_owned),
                    to: to.map(str::to_owned),
                    day,
                    at_ms: crate::time::local_midnight_ms(day, utc_offset_minutes),
                    cause,
                },
                retroactive: cause != StageCause::Time && day < target,
            });
        }
    };
    let mut prev = published;
    let at_base = series.stage(model, series.base);
    if at_base != prev {
        emit(prev, at_base, correction_day.min(series.base));
        prev = at_base;
    }
    let start = series.base.max(target.saturating_sub(MAX_WALK_DAYS));
    let mut days = series.days();
    for d in start..=target {
        let s = days.stage(model, d);
        // (the base's own stage was compared above)
        if s != prev && d > series.base {
            emit(prev, s, d);
            prev = s;
        }
    }
    Moved {
        mark: StageMark {
            day: target,
            stage: prev.map(str::to_owned),
            due: series.next_change(model, target),
            indexed: None,
        },
        records,
    }
}

impl StageModel {
    /// The largest day count a rule compares a days-since input with, plus
    /// one; `None` when a percent condition involves a days-since input (its
    /// answer can change at any distance).
    pub(crate) fn days_since_horizon(&self) -> Option<i64> {
        let is_since = |i: StageInput| {
            matches!(
                i,
                StageInput::DaysSinceFirstActivity | StageInput::DaysSinceLastActivity
            )
        };
        let mut t = 0i64;
        for c in self.rules.iter().flat_map(|r| r.any_of.iter().flatten()) {
            match *c {
                Condition::AtMost(i, v) | Condition::AtLeast(i, v) if is_since(i) => {
                    t = t.max(v.saturating_add(1));
                }
                Condition::BelowPercentOf { input, of, .. } if is_since(input) || is_since(of) => {
                    return None;
                }
                _ => {}
            }
        }
        Some(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(active: &[i32], base: i32) -> Series {
        Series {
            base,
            first: active.first().copied(),
            last_at_base: active.iter().copied().filter(|d| *d <= base).max(),
            active: active.iter().copied().filter(|d| *d >= base - 59).collect(),
            ..Series::default()
        }
    }

    #[test]
    fn quiet_user_declines_then_churns() {
        let m = StageModel::standard();
        let s = series(&[100], 100);
        assert_eq!(s.stage(&m, 100), Some("new"));
        assert_eq!(s.next_change(&m, 100), Some(107)); // new for 7 days
        let moved = walk(
            &m,
            &s,
            Some("new"),
            140,
            140,
            Publish::Live(StageCause::Time),
            1,
            0,
        );
        let days: Vec<i32> = moved
            .records
            .iter()
            .map(|r| match r.change {
                Change::Stage { day, .. } => day,
                _ => 0,
            })
            .collect();
        // growing on 107, declining on 114 (14 quiet days), churned on 130
        assert_eq!(days, vec![107, 114, 130]);
        assert_eq!(moved.mark.stage.as_deref(), Some("churned"));
        assert_eq!(moved.mark.due, None);
        assert!(moved.records.iter().all(|r| !r.retroactive));
    }
}
