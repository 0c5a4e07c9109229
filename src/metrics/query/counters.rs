//! Store-wide counters: daily events, orders, GMV, sessions, new users; habits.

use std::collections::BTreeMap;

use roaring::RoaringBitmap;

use super::super::corrupt;
use super::super::state::UserHead;
use super::*;
use crate::error::Result;
use crate::keys::day_from_asc;
use crate::keys::metrics::{self as keys, MoneyField};
use crate::store::merge::decode_counter;
use crate::store::Cf;

impl Metrics<'_> {
    /// Store-wide daily counters for every day in `from..=to`.
    pub fn daily(&self, from_day: i32, to_day: i32) -> Result<Vec<DailyRow>> {
        check_range(from_day, to_day)?;
        let mut rows: BTreeMap<i32, DailyRow> = (from_day..=to_day)
            .map(|d| {
                (
                    d,
                    DailyRow {
                        day: d,
                        events: 0,
                        events_by_kind: BTreeMap::new(),
                        orders: 0,
                        gmv_minor: 0,
                        refunds: 0,
                        refund_minor: 0,
                        aov_minor: None,
                        new_users: 0,
                        sessions: 0,
                    },
                )
            })
            .collect();
        let start = keys::kind_day(from_day, 0);
        let end = keys::kind_day(to_day.saturating_add(1), 0);
        for item in self.view.range(Cf::Metrics, &start, Some(end))? {
            let (k, v) = item?;
            let (day, kind) = match (k.get(2..6), k.get(6..10)) {
                (Some(d), Some(kd)) if k.len() == 10 => (
                    day_from_asc(d.try_into().unwrap_or([0; 4])),
                    u32::from_be_bytes(kd.try_into().unwrap_or([0; 4])),
                ),
                _ => return Err(corrupt(Cf::Metrics, &k, "malformed kind-day counter key").into()),
            };
            let n = decode_counter(&v)
                .ok_or_else(|| corrupt(Cf::Metrics, &k, "counter does not decode"))?;
            if let Some(row) = rows.get_mut(&day) {
                if n != 0 {
                    row.events += n.max(0) as u64;
                    let name = self
                        .kinds
                        .kind(kind)
                        .map_or_else(|| format!("kind#{kind}"), |k| k.to_string());
                    row.events_by_kind.insert(name, n.max(0) as u64);
                }
            }
        }
        let start = keys::money(from_day, MoneyField::Orders);
        let end = keys::money(to_day.saturating_add(1), MoneyField::Orders);
        for item in self.view.range(Cf::Metrics, &start, Some(end))? {
            let (k, v) = item?;
            let (day, field) = match (
                k.get(2..6),
                k.get(6).copied().and_then(MoneyField::from_byte),
            ) {
                (Some(d), Some(f)) if k.len() == 7 => {
                    (day_from_asc(d.try_into().unwrap_or([0; 4])), f)
                }
                _ => return Err(corrupt(Cf::Metrics, &k, "malformed money counter key").into()),
            };
            let n = decode_counter(&v)
                .ok_or_else(|| corrupt(Cf::Metrics, &k, "counter does not decode"))?;
            if let Some(row) = rows.get_mut(&day) {
                match field {
                    MoneyField::Orders => row.orders = n.max(0) as u64,
                    MoneyField::Gmv => row.gmv_minor = n,
                    MoneyField::Refunds => row.refunds = n.max(0) as u64,
                    MoneyField::RefundMinor => row.refund_minor = n,
                    MoneyField::Sessions => row.sessions = n.max(0) as u64,
                    MoneyField::NewUsers => row.new_users = n.max(0) as u64,
                    // (session depth: `Metrics::sessions`)
                    MoneyField::Bounces | MoneyField::SessionMs | MoneyField::SessionEvents => {}
                }
            }
        }
        Ok(rows
            .into_values()
            .map(|mut r| {
                if r.orders > 0 {
                    r.aov_minor = Some(r.gmv_minor as f64 / r.orders as f64);
                }
                r
            })
            .collect())
    }

    /// Events by local hour and weekday: store-wide counters, or summed over
    /// the users of `filter`.
    pub fn habits(&self, filter: Option<&RoaringBitmap>) -> Result<Habits> {
        let mut h = Habits {
            hours: [0; 24],
            weekdays: [0; 7],
        };
        match filter {
            None => {
                for (i, slot) in h.hours.iter_mut().enumerate() {
                    *slot = self
                        .view
                        .get_counter(Cf::Metrics, &keys::hour(i as u8))?
                        .max(0) as u64;
                }
                for (i, slot) in h.weekdays.iter_mut().enumerate() {
                    *slot = self
                        .view
                        .get_counter(Cf::Metrics, &keys::weekday(i as u8))?
                        .max(0) as u64;
                }
            }
            Some(f) => {
                let parts = self.fold_heads(
                    Some(f),
                    || h,
                    |acc, _, s: &UserHead| {
                        for i in 0..24 {
                            acc.hours[i] += s.hours[i];
                        }
                        for i in 0..7 {
                            acc.weekdays[i] += s.weekdays[i];
                        }
                    },
                )?;
                for p in parts {
                    for i in 0..24 {
                        h.hours[i] += p.hours[i];
                    }
                    for i in 0..7 {
                        h.weekdays[i] += p.weekdays[i];
                    }
                }
            }
        }
        Ok(h)
    }
}
