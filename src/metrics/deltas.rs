//! The shared-aggregate changes of one write: summed per key before any
//! merge operand is built, so a batch carries one operand per key.

use std::collections::BTreeMap;

use super::state::kind_ids;
use crate::error::Result;
use crate::keys::metrics as keys;
use crate::store::merge::{self, BitmapDelta};
use crate::store::{Batch, Cf};
use crate::time::weekday;

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
    pub(crate) fn write(self, batch: &mut Batch) -> Result<()> {
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

/// The store-wide counters one write changes, summed per counter before any
/// key is built (an event touches five to seven of them).
#[derive(Debug, Default)]
pub(crate) struct EventCounts {
    total: i64,
    of_kind: BTreeMap<u32, i64>,
    kind_day: BTreeMap<(i32, u32), i64>,
    hours: [i64; 24],
    weekdays: [i64; 7],
    money: BTreeMap<(i32, keys::MoneyField), i64>,
}

impl EventCounts {
    /// Adds `sign` × one event's contribution.
    pub fn add(&mut self, kind_id: u32, amount_minor: Option<i64>, day: i32, hour: u8, sign: i64) {
        self.total += sign;
        *self.of_kind.entry(kind_id).or_default() += sign;
        *self.kind_day.entry((day, kind_id)).or_default() += sign;
        self.hours[usize::from(hour) % 24] += sign;
        self.weekdays[usize::from(weekday(day)) % 7] += sign;
        let amount = amount_minor.unwrap_or(0);
        let mut money = |field, n: i64| {
            let c = self.money.entry((day, field)).or_default();
            *c = c.saturating_add(n);
        };
        match kind_id {
            kind_ids::PURCHASE => {
                money(keys::MoneyField::Orders, sign);
                money(keys::MoneyField::Gmv, sign.saturating_mul(amount));
            }
            kind_ids::REFUND => {
                money(keys::MoneyField::Refunds, sign);
                money(keys::MoneyField::RefundMinor, sign.saturating_mul(amount));
            }
            _ => {}
        }
    }

    /// Moves the sums into `deltas`, one counter key each.
    pub fn into_deltas(self, deltas: &mut Deltas) {
        deltas.count(keys::events_total(), self.total);
        for (kind, n) in self.of_kind {
            deltas.count(keys::events_of_kind(kind), n);
        }
        for ((day, kind), n) in self.kind_day {
            deltas.count(keys::kind_day(day, kind), n);
        }
        for (h, n) in self.hours.into_iter().enumerate() {
            if n != 0 {
                deltas.count(keys::hour(h as u8), n);
            }
        }
        for (w, n) in self.weekdays.into_iter().enumerate() {
            if n != 0 {
                deltas.count(keys::weekday(w as u8), n);
            }
        }
        for ((day, field), n) in self.money {
            deltas.count(keys::money(day, field), n);
        }
    }
}
