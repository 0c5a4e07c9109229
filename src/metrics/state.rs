//! Per-user state and the deltas one write makes to shared aggregates.
//!
//! A user's state is split by what a write touches (`keys::activity`): a
//! small head (habits, first day per kind), one 64-day bit mask per kind
//! and block, money per day, and one entry per session. A write reads and
//! rewrites only the masks, money days and sessions its events fall in, so
//! its cost does not depend on how long the user has been around (SPEC §6).

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use super::days::DaySet;
use crate::codec;
use crate::error::Result;
use crate::keys::activity::{self, block_of, block_start};
use crate::keys::metrics as keys;
use crate::store::merge::{self, BitmapDelta};
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
    /// Events by local hour of day.
    pub hours: [u64; 24],
    /// Events by local weekday, Monday first.
    pub weekdays: [u64; 7],
    /// Kind id → first local day with an event of it ([`ACTIVITY`]: first
    /// activity): a late event older than it moves the user's cohort.
    pub firsts: BTreeMap<u32, i32>,
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

/// Changes to shared keys collected over one write, emitted as one merge
/// operand per key so a batch never carries two operands for one key.
#[derive(Debug, Default)]
pub(crate) struct Deltas {
    sets: BTreeMap<Vec<u8>, BitmapDelta>,
    counters: BTreeMap<Vec<u8>, i64>,
}

impl Deltas {
    pub fn add_user(&mut self, key: Vec<u8>, user_id: u32) {
        let d = self.sets.entry(key).or_default();
        d.removes.remove(user_id);
        d.adds.insert(user_id);
    }

    pub fn remove_user(&mut self, key: Vec<u8>, user_id: u32) {
        let d = self.sets.entry(key).or_default();
        d.adds.remove(user_id);
        d.removes.insert(user_id);
    }

    pub fn count(&mut self, key: Vec<u8>, delta: i64) {
        let c = self.counters.entry(key).or_insert(0);
        *c = c.saturating_add(delta);
    }

    /// A change of `n` at `day` of the users active in the `window_days`
    /// windows: the day's counter and its block's sum.
    pub fn rolling_diff(&mut self, window_days: u8, day: i32, n: i64) {
        self.count(keys::rolling(window_days, day), n);
        self.count(
            keys::rolling_block_key(window_days, keys::rolling_block(day)),
            n,
        );
    }

    /// Puts one merge operand per changed key into `batch`.
    pub fn write(self, batch: &mut Batch) -> Result<()> {
        for (k, d) in self.sets {
            if !d.adds.is_empty() || !d.removes.is_empty() {
                batch.merge(Cf::Metrics, k, d.encode());
            }
        }
        for (k, n) in self.counters {
            if n != 0 {
                batch.merge(Cf::Metrics, k, merge::encode_counter(n));
            }
        }
        Ok(())
    }
}

/// Adds `sign` × the event's contribution to the store-wide counters.
pub(crate) fn count_event(
    deltas: &mut Deltas,
    kind_id: u32,
    amount_minor: Option<i64>,
    day: i32,
    hour: u8,
    sign: i64,
) {
    deltas.count(keys::events_total(), sign);
    deltas.count(keys::events_of_kind(kind_id), sign);
    deltas.count(keys::kind_day(day, kind_id), sign);
    deltas.count(keys::hour(hour), sign);
    deltas.count(keys::weekday(weekday(day)), sign);
    let amount = amount_minor.unwrap_or(0);
    match kind_id {
        kind_ids::PURCHASE => {
            deltas.count(keys::money(day, keys::MoneyField::Orders), sign);
            deltas.count(keys::money(day, keys::MoneyField::Gmv), sign * amount);
        }
        kind_ids::REFUND => {
            deltas.count(keys::money(day, keys::MoneyField::Refunds), sign);
            deltas.count(
                keys::money(day, keys::MoneyField::RefundMinor),
                sign * amount,
            );
        }
        _ => {}
    }
}

/// The windows whose active-user counts a new day changes, besides the
/// day's own count (window 1).
const DIFF_WINDOWS: [u8; 2] = [7, 30];

/// How far a neighbouring active day can be and still share a window.
const NEIGHBOUR_SPAN_DAYS: i32 = 29;

/// Bits `from..=to` of a `u64` (both in 0..64).
fn bits_between(from: u32, to: u32) -> u64 {
    let high = if to >= 63 {
        u64::MAX
    } else {
        (1u64 << (to + 1)) - 1
    };
    high & (u64::MAX << from)
}

/// One user's state as one write changes it: what was read and what it
/// became, so only changed parts are written back.
struct UserWork<'s> {
    store: &'s Store,
    user_id: u32,
    head: UserHead,
    /// (kind, block) → (stored mask, current mask).
    masks: HashMap<(u32, i32), (u64, u64)>,
    /// day → (stored money, current money).
    money: BTreeMap<i32, (Option<DayMoney>, DayMoney)>,
}

impl<'s> UserWork<'s> {
    fn load(store: &'s Store, user_id: u32) -> Result<Self> {
        Ok(Self {
            store,
            user_id,
            head: store
                .get(Cf::Activity, &activity::head(user_id))?
                .unwrap_or_default(),
            masks: HashMap::new(),
            money: BTreeMap::new(),
        })
    }

    fn mask(&mut self, kind: u32, block: i32) -> Result<u64> {
        if let Some((_, now)) = self.masks.get(&(kind, block)) {
            return Ok(*now);
        }
        let stored: u64 = self
            .store
            .get(Cf::Activity, &activity::days(self.user_id, kind, block))?
            .unwrap_or(0);
        self.masks.insert((kind, block), (stored, stored));
        Ok(stored)
    }

    /// Adds `day` to the days of `kind`; returns whether it was new.
    fn insert(&mut self, kind: u32, day: i32) -> Result<bool> {
        let (block, bit) = block_of(day);
        let m = self.mask(kind, block)?;
        if m & (1 << bit) != 0 {
            return Ok(false);
        }
        if let Some(slot) = self.masks.get_mut(&(kind, block)) {
            slot.1 = m | (1 << bit);
        }
        Ok(true)
    }

    /// The latest day of `kind` in `day − span ..= day − 1`.
    fn prev_within(&mut self, kind: u32, day: i32, span: i32) -> Result<Option<i32>> {
        let (lo, hi) = (day - span, day - 1);
        for block in (block_of(lo).0..=block_of(hi).0).rev() {
            let start = block_start(block);
            let from = (lo.max(start) - start) as u32;
            let to = (hi.min(start + 63) - start) as u32;
            let hits = self.mask(kind, block)? & bits_between(from, to);
            if hits != 0 {
                return Ok(Some(start + (63 - hits.leading_zeros()) as i32));
            }
        }
        Ok(None)
    }

    /// The earliest day of `kind` in `day + 1 ..= day + span`.
    fn next_within(&mut self, kind: u32, day: i32, span: i32) -> Result<Option<i32>> {
        let (lo, hi) = (day + 1, day + span);
        for block in block_of(lo).0..=block_of(hi).0 {
            let start = block_start(block);
            let from = (lo.max(start) - start) as u32;
            let to = (hi.min(start + 63) - start) as u32;
            let hits = self.mask(kind, block)? & bits_between(from, to);
            if hits != 0 {
                return Ok(Some(start + hits.trailing_zeros() as i32));
            }
        }
        Ok(None)
    }

    fn money_day(&mut self, day: i32) -> Result<&mut DayMoney> {
        if !self.money.contains_key(&day) {
            let stored: Option<DayMoney> = self
                .store
                .get(Cf::Activity, &activity::money(self.user_id, day))?;
            self.money.insert(day, (stored, stored.unwrap_or_default()));
        }
        Ok(&mut self
            .money
            .entry(day)
            .or_insert((None, DayMoney::default()))
            .1)
    }

    /// Puts the head and every changed mask and money day into `batch`.
    fn finish(self, batch: &mut Batch) -> Result<()> {
        let u = self.user_id;
        batch.put(Cf::Activity, activity::head(u), codec::encode(&self.head)?);
        for ((kind, block), (stored, now)) in self.masks {
            if stored != now {
                batch.put(
                    Cf::Activity,
                    activity::days(u, kind, block),
                    codec::encode(&now)?,
                );
            }
        }
        for (day, (stored, now)) in self.money {
            if stored != Some(now) {
                batch.put(Cf::Activity, activity::money(u, day), codec::encode(&now)?);
            }
        }
        Ok(())
    }
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

/// Applies one write's events to the state of every user they name and
/// collects the shared deltas. Callers hold the stripe locks of these users,
/// so the read-modify-write of per-user state is race-free; shared keys are
/// only ever merged.
pub(crate) fn apply(
    store: &Store,
    batch: &mut Batch,
    utc_offset_minutes: i32,
    contributions: &[Contribution<'_>],
) -> Result<()> {
    let mut deltas = Deltas::default();
    let mut by_user: BTreeMap<u32, Vec<&Contribution<'_>>> = BTreeMap::new();
    for c in contributions {
        by_user.entry(c.user_id).or_default().push(c);
    }
    for (user_id, list) in by_user {
        let mut w = UserWork::load(store, user_id)?;
        let mut firsts_before: HashMap<u32, Option<i32>> = HashMap::new();
        // Session id → (stored first day, first day after this write).
        let mut sessions: BTreeMap<&str, (Option<i32>, i32)> = BTreeMap::new();
        for c in list {
            let day = local_day(c.ts_ms, utc_offset_minutes);
            let hour = local_hour(c.ts_ms, utc_offset_minutes);
            count_event(&mut deltas, c.kind_id, c.amount_minor, day, hour, 1);
            w.head.hours[usize::from(hour) % 24] += 1;
            w.head.weekdays[usize::from(weekday(day)) % 7] += 1;
            let kinds: &[u32] = if c.is_activity {
                &[c.kind_id, ACTIVITY]
            } else {
                &[c.kind_id]
            };
            for &kind in kinds {
                firsts_before
                    .entry(kind)
                    .or_insert_with(|| w.head.firsts.get(&kind).copied());
                // Once per (user, kind, day): later events that day touch nothing shared.
                if !w.insert(kind, day)? {
                    continue;
                }
                deltas.add_user(keys::day_users(kind, day, user_id), user_id);
                let first = w.head.firsts.entry(kind).or_insert(day);
                *first = (*first).min(day);
                if kind == ACTIVITY {
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
                }
                kind_ids::REFUND => {
                    let m = w.money_day(day)?;
                    m.refunds = m.refunds.saturating_add(1);
                    m.refund_minor = m.refund_minor.saturating_add(amount);
                }
                _ => {}
            }
            if let Some(s) = c.session_id {
                match sessions.get_mut(s) {
                    Some(entry) => entry.1 = entry.1.min(day),
                    None => {
                        let stored: Option<i32> =
                            store.get(Cf::Activity, &activity::session(user_id, s))?;
                        let first = stored.map_or(day, |d| d.min(day));
                        sessions.insert(s, (stored, first));
                    }
                }
            }
        }
        for (kind, before) in firsts_before {
            let after = w.head.firsts.get(&kind).copied();
            if before != after {
                // A late event moved the user's first day: move the cohort membership.
                if let Some(b) = before {
                    deltas.remove_user(keys::first_users(kind, b, user_id), user_id);
                    if kind == ACTIVITY {
                        deltas.count(keys::money(b, keys::MoneyField::NewUsers), -1);
                    }
                }
                if let Some(a) = after {
                    deltas.add_user(keys::first_users(kind, a, user_id), user_id);
                    if kind == ACTIVITY {
                        deltas.count(keys::money(a, keys::MoneyField::NewUsers), 1);
                    }
                }
            }
        }
        for (s, (stored, first)) in sessions {
            if stored != Some(first) {
                if let Some(old) = stored {
                    deltas.count(keys::money(old, keys::MoneyField::Sessions), -1);
                }
                deltas.count(keys::money(first, keys::MoneyField::Sessions), 1);
                batch.put(
                    Cf::Activity,
                    activity::session(user_id, s),
                    codec::encode(&first)?,
                );
            }
        }
        w.finish(batch)?;
    }
    deltas.write(batch)
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
