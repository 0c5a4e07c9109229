//! Per-user activity state and the deltas one write makes to shared aggregates.

use std::collections::{BTreeMap, HashMap};

use crate::store::Batch;
use serde::{Deserialize, Serialize};

use super::days::DaySet;
use crate::codec;
use crate::error::Result;
use crate::keys::activity;
use crate::keys::metrics as keys;
use crate::store::merge::{self, BitmapDelta};
use crate::store::{Cf, Store};
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

/// Everything the engine keeps per user, in one value (key: the user id).
/// Field order is the wire order: append only, behind a new format byte.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UserActivity {
    /// Local day → purchases and refunds that day (only days with money
    /// events). First on the wire so RFM scans decode only this
    /// (a private head type that mirrors this field).
    pub money: BTreeMap<i32, DayMoney>,
    /// Kind id → local days with at least one event of that kind;
    /// [`ACTIVITY`] → days with at least one activity event.
    pub days: BTreeMap<u32, DaySet>,
    /// Events by local hour of day.
    pub hours: [u64; 24],
    /// Events by local weekday, Monday first.
    pub weekdays: [u64; 7],
}

/// The first field of a stored [`UserActivity`], decodable on its own with
/// [`crate::codec::decode_prefix`]. Must mirror `UserActivity`'s head.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub(crate) struct MoneyHead {
    pub money: BTreeMap<i32, DayMoney>,
}

impl UserActivity {
    /// The days of `kind_id` (empty when none).
    pub fn days_of(&self, kind_id: u32) -> Option<&DaySet> {
        self.days.get(&kind_id)
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

/// Changes to shared keys collected over one write, emitted as one merge
/// operand per key so a batch never carries two operands for one key.
#[derive(Debug, Default)]
pub(crate) struct Deltas {
    sets: BTreeMap<Vec<u8>, BitmapDelta>,
    counters: BTreeMap<Vec<u8>, i64>,
}

impl Deltas {
    pub fn add_user(&mut self, key: Vec<u8>, user_id: u32) {
        let d = self.sets.remove(&key).unwrap_or_default();
        self.sets.insert(key, d.then(&BitmapDelta::add(user_id)));
    }

    pub fn remove_user(&mut self, key: Vec<u8>, user_id: u32) {
        let d = self.sets.remove(&key).unwrap_or_default();
        self.sets.insert(key, d.then(&BitmapDelta::remove(user_id)));
    }

    pub fn count(&mut self, key: Vec<u8>, delta: i64) {
        let c = self.counters.entry(key).or_insert(0);
        *c = c.saturating_add(delta);
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
fn count_event(deltas: &mut Deltas, c: &Contribution<'_>, day: i32, hour: u8, sign: i64) {
    deltas.count(keys::events_total(), sign);
    deltas.count(keys::events_of_kind(c.kind_id), sign);
    deltas.count(keys::kind_day(day, c.kind_id), sign);
    deltas.count(keys::hour(hour), sign);
    deltas.count(keys::weekday(weekday(day)), sign);
    let amount = c.amount_minor.unwrap_or(0);
    match c.kind_id {
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

/// Applies one write's events to the per-user state of every user they name
/// and collects the shared deltas. Callers hold the stripe locks of these
/// users, so the read-modify-write of per-user state is race-free; shared keys
/// are only ever merged.
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
        let state_key = activity::user_state(user_id);
        let mut state: UserActivity = store.get(Cf::Activity, &state_key)?.unwrap_or_default();
        let mut firsts_before: HashMap<u32, Option<i32>> = HashMap::new();
        // Session id → (stored first day, first day after this write).
        let mut sessions: BTreeMap<&str, (Option<i32>, i32)> = BTreeMap::new();
        for c in list {
            let day = local_day(c.ts_ms, utc_offset_minutes);
            let hour = local_hour(c.ts_ms, utc_offset_minutes);
            count_event(&mut deltas, c, day, hour, 1);
            state.hours[usize::from(hour) % 24] += 1;
            state.weekdays[usize::from(weekday(day)) % 7] += 1;
            let mut kinds = vec![c.kind_id];
            if c.is_activity {
                kinds.push(ACTIVITY);
            }
            for kind in kinds {
                let set = state.days.entry(kind).or_default();
                firsts_before.entry(kind).or_insert_with(|| set.first());
                // Once per (user, kind, day): later events that day touch nothing shared.
                if set.insert(day) {
                    deltas.add_user(keys::day_users(kind, day), user_id);
                    let prev = set.last_at_or_before(day - 1);
                    let next = set.first_after(day);
                    for w in keys::WINDOWS_DAYS {
                        let (lo, hi) = newly_covered(day, prev, next, w);
                        for d in lo..=hi {
                            deltas.count(keys::rolling(kind, w, d), 1);
                        }
                    }
                }
            }
            let amount = c.amount_minor.unwrap_or(0);
            match c.kind_id {
                kind_ids::PURCHASE => {
                    let m = state.money.entry(day).or_default();
                    m.orders = m.orders.saturating_add(1);
                    m.purchase_minor = m.purchase_minor.saturating_add(amount);
                }
                kind_ids::REFUND => {
                    let m = state.money.entry(day).or_default();
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
            let after = state.days.get(&kind).and_then(DaySet::first);
            if before != after {
                // A late event moved the user's first day: move the cohort membership.
                if let Some(b) = before {
                    deltas.remove_user(keys::first_users(kind, b), user_id);
                    if kind == ACTIVITY {
                        deltas.count(keys::money(b, keys::MoneyField::NewUsers), -1);
                    }
                }
                if let Some(a) = after {
                    deltas.add_user(keys::first_users(kind, a), user_id);
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
        batch.put(Cf::Activity, state_key, codec::encode(&state)?);
    }
    deltas.write(batch)
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

/// Every day whose `window_days` window ending there holds a day of `days`.
fn covered_days(days: &DaySet, window_days: u8) -> Vec<i32> {
    let mut out: Vec<i32> = Vec::new();
    for a in days.iter() {
        let from = out.last().map_or(a, |l| a.max(l + 1));
        out.extend(from..=a.saturating_add(i32::from(window_days) - 1));
    }
    out
}

/// One stored event reduced to what erasure must subtract.
pub(crate) struct ErasedEvent {
    pub kind_id: u32,
    pub ts_ms: i64,
    pub amount_minor: Option<i64>,
}

/// Removes every trace of `user_id` from the shared aggregates and deletes
/// its per-user state, given all of its stored events. The caller deletes the
/// events themselves and holds the user's stripe lock.
pub(crate) fn erase(
    store: &Store,
    batch: &mut Batch,
    utc_offset_minutes: i32,
    user_id: u32,
    events: &[ErasedEvent],
) -> Result<()> {
    let mut deltas = Deltas::default();
    for e in events {
        let day = local_day(e.ts_ms, utc_offset_minutes);
        let hour = local_hour(e.ts_ms, utc_offset_minutes);
        let c = Contribution {
            user_id,
            kind_id: e.kind_id,
            is_activity: false,
            ts_ms: e.ts_ms,
            amount_minor: e.amount_minor,
            session_id: None,
        };
        count_event(&mut deltas, &c, day, hour, -1);
    }
    let state: UserActivity = store
        .get(Cf::Activity, &activity::user_state(user_id))?
        .unwrap_or_default();
    for (kind, days) in &state.days {
        for day in days.iter() {
            deltas.remove_user(keys::day_users(*kind, day), user_id);
        }
        for w in keys::WINDOWS_DAYS {
            for d in covered_days(days, w) {
                deltas.count(keys::rolling(*kind, w, d), -1);
            }
        }
        if let Some(first) = days.first() {
            deltas.remove_user(keys::first_users(*kind, first), user_id);
            if *kind == ACTIVITY {
                deltas.count(keys::money(first, keys::MoneyField::NewUsers), -1);
            }
        }
    }
    for item in store.prefix(Cf::Activity, &crate::keys::user(user_id))? {
        let (k, v) = item?;
        if k.len() > crate::keys::USER_BYTES {
            let first: i32 = crate::store::decode_value(Cf::Activity, &k, &v)?;
            deltas.count(keys::money(first, keys::MoneyField::Sessions), -1);
        }
        batch.delete(Cf::Activity, k);
    }
    deltas.write(batch)
}

/// Deletes every aggregate derived from events, in batches of bounded size
/// (the first step of a rebuild): every `metrics` key but the all-users set
/// (owned by the users module) and the tier sets (owned by the ledger), and
/// the whole `activity` column family. Not atomic; the caller holds every
/// stripe lock and replays the events afterwards.
pub(crate) fn clear(store: &Store) -> Result<()> {
    /// Deletes per write batch while clearing.
    const CLEAR_BATCH_KEYS: usize = 10_000;
    for cf in [Cf::Metrics, Cf::Activity] {
        let mut batch = Batch::new();
        for item in store.range(cf, &[], None)? {
            let (k, _) = item?;
            if cf == Cf::Metrics
                && keys::MetricKey::parse(&k).is_some_and(|p| !p.derived_from_events())
            {
                continue;
            }
            batch.delete(cf, k);
            if batch.len() >= CLEAR_BATCH_KEYS {
                store.write(std::mem::take(&mut batch))?;
            }
        }
        store.write(batch)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_head_decodes_from_a_full_state() {
        let mut s = UserActivity::default();
        s.money.insert(
            -1,
            DayMoney {
                orders: 2,
                purchase_minor: 300,
                refunds: 1,
                refund_minor: 50,
            },
        );
        s.money.insert(
            19_000,
            DayMoney {
                orders: 1,
                purchase_minor: 7,
                refunds: 0,
                refund_minor: 0,
            },
        );
        s.days.insert(ACTIVITY, [-1, 19_000].into_iter().collect());
        s.hours[3] = 9;
        let head: MoneyHead =
            crate::codec::decode_prefix(&codec::encode(&s).unwrap_or_default()).unwrap_or_default();
        assert_eq!(head.money, s.money);
    }
}
