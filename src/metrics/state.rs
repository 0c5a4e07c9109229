//! Per-user state and the deltas one write makes to shared aggregates.
//!
//! A user's state is split by what a write touches (`keys::activity`): a
//! small head (habits, first day per kind), one 64-day bit mask per kind
//! and block, money per day, and one entry per session. A write reads and
//! rewrites only the masks, money days and sessions its events fall in, so
//! its cost does not depend on how long the user has been around (SPEC §6).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::days::DaySet;
pub(crate) use super::deltas::{Deltas, EventCounts};
use super::rules::StageModel;
use super::transitions::{Publish, StageMark, Trigger};
pub(crate) use super::work::BlockMasks;
use super::work::UserWork;
use crate::error::Result;
use crate::keys::activity::{self, block_start};
use crate::keys::metrics as keys;
use crate::store::{Batch, Cf, Store};
use crate::time::{local_day, local_hour, weekday};

pub(crate) use crate::kinds::ids as kind_ids;
pub use crate::kinds::ids::ACTIVITY;

/// Money on one local day of one user.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayMoney {
    /// Purchase events.
    pub orders: u32,
    /// Sum of purchase amounts, minor units.
    pub purchase_minor: i64,
    /// Refund events.
    pub refunds: u32,
    /// Sum of refund amounts, minor units.
    pub refund_minor: i64,
}

/// Everything the engine keeps about one user, assembled from its stored
/// parts (head, day masks, money days) for per-user queries.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UserActivity {
    /// Local day → purchases and refunds that day (only days with money
    /// events).
    pub money: BTreeMap<i32, DayMoney>,
    /// Kind id → local days with at least one event of that kind;
    /// [`ACTIVITY`] → days with at least one activity event.
    pub days: BTreeMap<u32, DaySet>,
    /// Events by local hour of day.
    pub hours: [u64; 24],
    /// Events by local weekday, Monday first.
    pub weekdays: [u64; 7],
}

impl UserActivity {
    /// The days of `kind_id` (empty when none).
    pub fn days_of(&self, kind_id: u32) -> Option<&DaySet> {
        self.days.get(&kind_id)
    }
}

/// The stored head of a user (`activity` cf, `1 ‖ user`): what is not per
/// day. Bounded by the number of kinds, never by history.
/// Field order is the wire order: append only, behind a new format byte.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct UserHead {
    /// Events recorded for the user: the sequence number of its next event
    /// (numbers are handed out in arrival order and events are only ever
    /// deleted with their user).
    pub events: u32,
    /// Events by local hour of day.
    pub hours: [u64; 24],
    /// Events by local weekday, Monday first.
    pub weekdays: [u64; 7],
    /// Kind id → first local day with an event of it ([`ACTIVITY`]: first
    /// activity): a late event older than it moves the user's cohort.
    pub firsts: BTreeMap<u32, i32>,
    /// The last local day with activity (format 6).
    pub last_active: Option<i32>,
    /// The active days among the 64 ending at `last_active`: bit `k` is
    /// `last_active − k` (format 6). A stage walk reads the 60 days before
    /// its start from here instead of the day masks.
    pub recent: u64,
    /// Distinct local days with a purchase (format 6).
    pub purchase_days: u32,
    /// Sum of purchase amounts, minor units, saturating (format 6).
    pub bought_minor: i64,
    /// Sum of refund amounts, minor units, saturating (format 6).
    pub refunded_minor: i64,
    /// What the change feed last published of the user's stage (format 6).
    pub mark: Option<StageMark>,
}

impl UserHead {
    /// Adds active day `day` to `last_active` and `recent`; the result does
    /// not depend on the order days arrive in.
    pub(crate) fn note_active(&mut self, day: i32) {
        match self.last_active {
            Some(last) if day <= last => {
                if let Ok(k) = u32::try_from(i64::from(last) - i64::from(day)) {
                    if k < 64 {
                        self.recent |= 1 << k;
                    }
                }
            }
            Some(last) => {
                let shift = i64::from(day) - i64::from(last);
                self.recent = if shift >= 64 { 0 } else { self.recent << shift };
                self.recent |= 1;
                self.last_active = Some(day);
            }
            None => {
                self.recent = 1;
                self.last_active = Some(day);
            }
        }
    }

    /// The active days in `from..=to` that `recent` holds, ascending.
    pub(crate) fn recent_days(
        last_active: Option<i32>,
        recent: u64,
        from: i32,
        to: i32,
    ) -> Vec<i32> {
        let Some(last) = last_active else {
            return Vec::new();
        };
        let mut out: Vec<i32> = (0..64)
            .filter(|k| recent & (1u64 << k) != 0)
            .map(|k| last - k)
            .filter(|d| (from..=to).contains(d))
            .collect();
        out.reverse();
        out
    }
}

/// What one event contributes to the aggregates, as the write path sees it.
#[derive(Debug, Clone)]
pub(crate) struct Contribution<'a> {
    pub user_id: u32,
    pub kind_id: u32,
    pub is_activity: bool,
    pub ts_ms: i64,
    pub amount_minor: Option<i64>,
    pub session_id: Option<&'a str>,
}

/// The windows whose active-user counts a new day changes, besides the
/// day's own count (window 1).
const DIFF_WINDOWS: [u8; 2] = [7, 30];

/// How far a neighbouring active day can be and still share a window.
const NEIGHBOUR_SPAN_DAYS: i32 = 29;

/// What a write needs to keep stage marks: the model, the feed's clock and
/// how to publish.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StageCtx<'m> {
    pub model: &'m StageModel,
    /// The local day of the last `advance`.
    pub clock_day: Option<i32>,
    pub publish: Publish,
}

/// The days `window_days`-window counters gain when a user's day set gains
/// `day`, given its nearest other days before (`prev`) and after (`next`):
/// the windows ending in `day ..= day + w − 1` that no other day covers.
fn newly_covered(day: i32, prev: Option<i32>, next: Option<i32>, window_days: u8) -> (i32, i32) {
    let w = i32::from(window_days);
    let lo = prev.map_or(day, |p| day.max(p.saturating_add(w)));
    let hi = next.map_or(day.saturating_add(w - 1), |n| {
        (day.saturating_add(w - 1)).min(n - 1)
    });
    (lo, hi)
}

/// The state side of one logical write: loads the state of each user the
/// write names (once), hands out event sequence numbers, applies events,
/// and puts every change and shared delta into the batch. Callers hold the
/// stripe locks of these users, so the read-modify-write of per-user state
/// is race-free; shared keys are only ever merged.
pub(crate) struct StateWrites<'s> {
    store: &'s Store,
    stages: StageCtx<'s>,
    offset_minutes: i32,
    users: BTreeMap<u32, UserWork<'s>>,
    deltas: Deltas,
    counts: EventCounts,
    /// (user, local day) activity days this write added, over all users.
    new_active_days: u64,
}

impl<'s> StateWrites<'s> {
    /// Starts the state side of one write.
    pub fn new(store: &'s Store, stages: StageCtx<'s>) -> Self {
        Self {
            store,
            stages,
            offset_minutes: store.settings().utc_offset_minutes,
            users: BTreeMap::new(),
            deltas: Deltas::default(),
            counts: EventCounts::default(),
            new_active_days: 0,
        }
    }

    /// Activity days (per user) the events applied so far added: days their
    /// users had not been active on before (an identity merge reports it).
    pub fn new_active_days(&self) -> u64 {
        self.new_active_days
    }

    /// Whether `user_id` (named in this write) has ever had an event of
    /// `kind_id`, this write's included.
    pub fn has_kind(&self, user_id: u32, kind_id: u32) -> bool {
        self.users
            .get(&user_id)
            .is_some_and(|w| w.head.firsts.contains_key(&kind_id))
    }

    /// The user's working state, loaded on first use. `new`: the write
    /// creates the user, so nothing of it is stored and nothing is read.
    fn user(&mut self, user_id: u32, new: bool) -> Result<&mut UserWork<'s>> {
        if !self.users.contains_key(&user_id) {
            let w = UserWork::load(self.store, user_id, new)?;
            self.users.insert(user_id, w);
        }
        self.users
            .get_mut(&user_id)
            .ok_or(crate::error::Error::UnknownUser {
                user: format!("#{user_id}"),
            })
    }

    /// The sequence number of the user's next event: its event count, so
    /// arrival order breaks timestamp ties and numbers never repeat.
    pub fn next_seq(&mut self, user_id: u32, new: bool) -> Result<u32> {
        Ok(self.user(user_id, new)?.head.events)
    }

    /// Applies one event (of a user already named to [`Self::next_seq`] in
    /// the record path; any user in a rebuild).
    pub fn add(&mut self, c: &Contribution<'_>, new: bool) -> Result<()> {
        let user_id = c.user_id;
        let day = local_day(c.ts_ms, self.offset_minutes);
        let hour = local_hour(c.ts_ms, self.offset_minutes);
        self.counts.add(c.kind_id, c.amount_minor, day, hour, 1);
        let deltas = &mut self.deltas;
        let w = {
            if !self.users.contains_key(&user_id) {
                let w = UserWork::load(self.store, user_id, new)?;
                self.users.insert(user_id, w);
            }
            match self.users.get_mut(&user_id) {
                Some(w) => w,
                None => return Ok(()),
            }
        };
        w.head_changed = true;
        w.head.events = w
            .head
            .events
            .checked_add(1)
            .ok_or(crate::error::Error::LimitReached {
                what: "events per user",
                max: u64::from(u32::MAX),
            })?;
        w.head.hours[usize::from(hour) % 24] += 1;
        w.head.weekdays[usize::from(weekday(day)) % 7] += 1;
        let kinds: &[u32] = if c.is_activity {
            &[c.kind_id, ACTIVITY]
        } else {
            &[c.kind_id]
        };
        let mut trigger = Trigger {
            day,
            new_active: false,
            new_purchase_day: false,
            bought_minor: 0,
            refunded_minor: 0,
        };
        for &kind in kinds {
            if !w.firsts_before.contains_key(&kind) {
                let before = w.head.firsts.get(&kind).copied();
                w.firsts_before.insert(kind, before);
            }
            // Once per (user, kind, day): later events that day touch nothing shared.
            if !w.insert(kind, day)? {
                continue;
            }
            if kind == ACTIVITY {
                trigger.new_active = true;
                w.head.note_active(day);
            }
            if kind == kind_ids::PURCHASE {
                trigger.new_purchase_day = true;
                w.head.purchase_days = w.head.purchase_days.saturating_add(1);
            }
            deltas.add_user(keys::day_users(kind, day, user_id), user_id);
            let first = w.head.firsts.entry(kind).or_insert(day);
            *first = (*first).min(day);
            if kind == ACTIVITY {
                self.new_active_days += 1;
                // Active users are counted for activity only; per-kind
                // windows are answered from the day sets.
                deltas.count(keys::rolling(1, day), 1);
                let prev = w.prev_within(ACTIVITY, day, NEIGHBOUR_SPAN_DAYS)?;
                let next = w.next_within(ACTIVITY, day, NEIGHBOUR_SPAN_DAYS)?;
                for win in DIFF_WINDOWS {
                    let (lo, hi) = newly_covered(day, prev, next, win);
                    if lo <= hi {
                        deltas.rolling_diff(win, lo, 1);
                        deltas.rolling_diff(win, hi + 1, -1);
                    }
                }
            }
        }
        let amount = c.amount_minor.unwrap_or(0);
        match c.kind_id {
            kind_ids::PURCHASE => {
                let m = w.money_day(day)?;
                m.orders = m.orders.saturating_add(1);
                m.purchase_minor = m.purchase_minor.saturating_add(amount);
                w.head.bought_minor = w.head.bought_minor.saturating_add(amount);
                trigger.bought_minor = amount;
            }
            kind_ids::REFUND => {
                let m = w.money_day(day)?;
                m.refunds = m.refunds.saturating_add(1);
                m.refund_minor = m.refund_minor.saturating_add(amount);
                w.head.refunded_minor = w.head.refunded_minor.saturating_add(amount);
                trigger.refunded_minor = amount;
            }
            _ => {}
        }
        // Money always counts (net spend may feed a stage rule); a repeat
        // day of activity changes no stage input.
        let money = matches!(c.kind_id, kind_ids::PURCHASE | kind_ids::REFUND);
        if trigger.new_active || trigger.new_purchase_day || money {
            w.triggers.push(trigger);
        }
        if let Some(s) = c.session_id {
            w.session_event(s, day, c.ts_ms)?;
        }
        Ok(())
    }

    /// Settles the stage of `user_id` (which has a stage mark) up to `day`:
    /// the feed records the changes time brought. An `advance` calls it.
    pub fn settle(&mut self, user_id: u32, day: i32) -> Result<()> {
        let w = self.user(user_id, false)?;
        w.settle_to = w.settle_to.max(Some(day));
        Ok(())
    }

    /// Re-derives the stage of `user_id` under the write's model at its
    /// mark (and settles it up to `day`), whether or not a due day has come:
    /// a model change calls it for every user.
    pub fn resettle(&mut self, user_id: u32, day: i32) -> Result<()> {
        let w = self.user(user_id, false)?;
        if w.head.mark.is_some() {
            w.resettle = true;
            w.settle_to = w.settle_to.max(Some(day));
        }
        Ok(())
    }

    /// Puts every user's changed state and every shared delta into `batch`.
    pub(crate) fn finish(mut self, batch: &mut Batch) -> Result<()> {
        for (user_id, mut w) in std::mem::take(&mut self.users) {
            for record in w.move_mark(&self.stages, self.offset_minutes, batch)? {
                crate::feed::log(batch, &record)?;
            }
            for (kind, before) in &w.firsts_before {
                let after = w.head.firsts.get(kind).copied();
                if *before != after {
                    // A late event moved the user's first day: move the cohort membership.
                    if let Some(b) = *before {
                        self.deltas
                            .remove_user(keys::first_users(*kind, b, user_id), user_id);
                        if *kind == ACTIVITY {
                            self.deltas
                                .count(keys::money(b, keys::MoneyField::NewUsers), -1);
                        }
                    }
                    if let Some(a) = after {
                        self.deltas
                            .add_user(keys::first_users(*kind, a, user_id), user_id);
                        if *kind == ACTIVITY {
                            self.deltas
                                .count(keys::money(a, keys::MoneyField::NewUsers), 1);
                        }
                    }
                }
            }
            for (s, (stored, now)) in &w.sessions {
                if let Some(old) = stored {
                    old.contribute(&mut self.deltas, -1);
                }
                now.contribute(&mut self.deltas, 1);
                batch.put(Cf::Activity, activity::session(user_id, s), now.encode()?);
            }
            w.finish(batch)?;
        }
        self.counts.into_deltas(&mut self.deltas);
        std::mem::take(&mut self.deltas).write(batch)
    }
}

/// Adds the days of one stored day mask to `set`.
pub(crate) fn add_mask_days(set: &mut DaySet, block: i32, mut mask: u64) {
    let start = block_start(block);
    while mask != 0 {
        let bit = mask.trailing_zeros();
        set.insert(start + bit as i32);
        mask &= mask - 1;
    }
}

#[cfg(test)]
mod tests {
    use super::super::work::bits_between;
    use super::*;

    #[test]
    fn bit_ranges() {
        assert_eq!(bits_between(0, 63), u64::MAX);
        assert_eq!(bits_between(0, 0), 1);
        assert_eq!(bits_between(3, 5), 0b111000);
        assert_eq!(bits_between(63, 63), 1 << 63);
    }

    #[test]
    fn newly_covered_respects_neighbours() {
        assert_eq!(newly_covered(10, None, None, 7), (10, 16));
        assert_eq!(newly_covered(10, Some(8), None, 7), (15, 16));
        assert_eq!(newly_covered(10, None, Some(12), 7), (10, 11));
        assert_eq!(newly_covered(10, Some(9), Some(11), 7), (16, 10));
    }

    #[test]
    fn masks_give_their_days() {
        let mut s = DaySet::default();
        add_mask_days(&mut s, -1, 1 | (1 << 63));
        assert_eq!(s.iter().collect::<Vec<_>>(), vec![-64, -1]);
    }
}
