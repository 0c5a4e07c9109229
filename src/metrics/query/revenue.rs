//! Revenue by day, store-wide or for any segment: buyers, orders, GMV,
//! refunds, net and average order value (docs/metrics.md, "Revenue").
//! Store-wide it reads the daily counters and the purchase day sets; for a
//! segment, the money days of its users that bought or refunded (the day
//! sets say which), by MultiGet.

use std::collections::BTreeMap;

use roaring::RoaringBitmap;
use serde::Serialize;

use super::*;
use crate::error::Result;
use crate::keys::activity;
use crate::kinds::ids::{PURCHASE, REFUND};
use crate::store::Cf;

/// Most (user, day) money records ever read by MultiGet for one question.
const MAX_MONEY_PAIRS: usize = 1 << 20;
/// Keys per MultiGet.
const MULTI_GET_KEYS: usize = 8192;

/// One day of revenue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct RevenueRow {
    /// The local day.
    pub day: i32,
    /// Distinct users with a purchase that day.
    pub buyers: u64,
    /// Purchase events.
    pub orders: u64,
    /// Sum of purchase amounts, minor units.
    pub gmv_minor: i64,
    /// Sum of refund amounts, minor units (refunds dated that day).
    pub refunds_minor: i64,
    /// GMV − refunds.
    pub net_minor: i64,
    /// GMV ÷ orders, rounded down; `None` without orders.
    pub aov_minor: Option<i64>,
}

impl RevenueRow {
    fn new(day: i32) -> Self {
        RevenueRow {
            day,
            buyers: 0,
            orders: 0,
            gmv_minor: 0,
            refunds_minor: 0,
            net_minor: 0,
            aov_minor: None,
        }
    }

    fn settle(mut self) -> Self {
        self.net_minor = self.gmv_minor.saturating_sub(self.refunds_minor);
        self.aov_minor = (self.orders > 0).then(|| self.gmv_minor.div_euclid(self.orders as i64));
        self
    }
}

impl Metrics<'_> {
    /// Revenue of every day of `from..=to`, of every user or of `filter`'s.
    pub fn revenue(
        &self,
        from_day: i32,
        to_day: i32,
        filter: Option<&RoaringBitmap>,
    ) -> Result<Vec<RevenueRow>> {
        check_range(from_day, to_day)?;
        let mut rows: BTreeMap<i32, RevenueRow> = (from_day..=to_day)
            .map(|d| (d, RevenueRow::new(d)))
            .collect();
        let buyers = self.day_sets_in(Some(PURCHASE), from_day, to_day, filter)?;
        for (day, set) in &buyers {
            if let Some(r) = rows.get_mut(day) {
                r.buyers = set.len();
            }
        }
        match filter {
            None => {
                for d in self.daily(from_day, to_day)? {
                    if let Some(r) = rows.get_mut(&d.day) {
                        r.orders = d.orders;
                        r.gmv_minor = d.gmv_minor;
                        r.refunds_minor = d.refund_minor;
                    }
                }
            }
            Some(users) => self.add_money_of(users, (from_day, to_day), &mut rows)?,
        }
        Ok(rows.into_values().map(RevenueRow::settle).collect())
    }

    /// Adds the money days in `from..=to` of every user of `users`.
    fn add_money_of(
        &self,
        users: &RoaringBitmap,
        (from_day, to_day): (i32, i32),
        rows: &mut BTreeMap<i32, RevenueRow>,
    ) -> Result<()> {
        let mut add = |day: i32, m: &DayMoney| {
            if let Some(r) = rows.get_mut(&day) {
                r.orders += u64::from(m.orders);
                r.gmv_minor = r.gmv_minor.saturating_add(m.purchase_minor);
                r.refunds_minor = r.refunds_minor.saturating_add(m.refund_minor);
            }
        };
        if !self.money_days_of(users, (from_day, to_day), |_, day, m| add(day, m))? {
            // past the pair limit: one scan of every user's money
            super::super::load::for_each_money(&self.view, 0, None, |user, money| {
                if users.contains(user) {
                    for (day, m) in money.range(from_day..=to_day) {
                        add(*day, m);
                    }
                }
            })?;
        }
        Ok(())
    }

    /// Calls `f(user, day, money)` for every money day in `from..=to` of a
    /// user of `users`: the (user, day) pairs are the purchase and refund
    /// day sets ∩ `users`, read by MultiGet — exactly the records that
    /// exist, not every member's range. Returns false, having read nothing,
    /// when there are more pairs than a scan of the money family is worth.
    pub(super) fn money_days_of(
        &self,
        users: &RoaringBitmap,
        (from_day, to_day): (i32, i32),
        mut f: impl FnMut(u32, i32, &DayMoney),
    ) -> Result<bool> {
        // A point read of a cold money record costs ~85 µs (a block read
        // and decompressed) where a scan pays < 1 µs a record: past one
        // pair per 64 users of the store, the caller's scan is cheaper.
        let all_users = crate::users::all_users(self.view.store())?.len() as usize;
        let max_pairs = (all_users / 64).clamp(4096, MAX_MONEY_PAIRS);
        let mut pairs: Vec<(u32, i32)> = Vec::new();
        for kind in [PURCHASE, REFUND] {
            // (no range check: LTV asks whole periods around its range)
            for (day, set) in self.sets(DAY_USERS, Some(kind), from_day, to_day, Some(users))? {
                pairs.extend(set.iter().map(|u| (u, day)));
                if pairs.len() > max_pairs {
                    return Ok(false);
                }
            }
        }
        pairs.sort_unstable();
        pairs.dedup();
        for chunk in pairs.chunks(MULTI_GET_KEYS) {
            let keys: Vec<Vec<u8>> = chunk.iter().map(|(u, d)| activity::money(*u, *d)).collect();
            let values = self.view.get_raw_sorted(Cf::Activity, &keys)?;
            for ((&(user, day), key), value) in chunk.iter().zip(&keys).zip(values) {
                // (a day in a purchase set has its money record: its absence
                // is damage, which verify reports; the answer skips it)
                if let Some(v) = value {
                    let m: DayMoney = crate::store::decode_value(Cf::Activity, key, &v)?;
                    f(user, day, &m);
                }
            }
        }
        Ok(true)
    }
}
