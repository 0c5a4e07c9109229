//! Threshold atoms of segments (`spend>=50000@90d`, `orders>=3@30d`,
//! `points>=1000`, `tier>=gold`, `rfm.m>=4`, `stickiness>=0.5@30d`): each
//! a comparison of a per-user value the engine already keeps, as of the
//! segment's day (docs/metrics.md, "Targeting").

use std::collections::HashMap;

use roaring::RoaringBitmap;

use super::Snapshot;
use crate::error::{InputError, Problem, Result};
use crate::profiles::AttrOp;
use crate::segments::Measure;
use crate::store::Area;

/// Whether `a op b` holds.
fn holds<T: PartialOrd>(a: T, op: AttrOp, b: T) -> bool {
    match op {
        AttrOp::Ge => a >= b,
        AttrOp::Gt => a > b,
        AttrOp::Le => a <= b,
        AttrOp::Lt => a < b,
        AttrOp::Prefix => false,
    }
}

fn bad_value(measure: Measure, value: &str, why: &str) -> crate::Error {
    InputError::new(
        "segment.threshold",
        Problem::Unparsable {
            reason: format!("{}: {value:?} {why}", measure.name()),
        },
    )
    .into()
}

impl Snapshot<'_> {
    /// The users of `universe` whose `measure` (over the `window_days`
    /// local days ending with `today`, where it has a window) compares with
    /// `value` as `op` says. A user without the value has 0 (spend, orders,
    /// points, stickiness) or no value at all (RFM scores of a user who
    /// never bought, the tier of one without).
    pub(super) fn threshold(
        &self,
        universe: &RoaringBitmap,
        measure: Measure,
        op: AttrOp,
        value: &str,
        window_days: Option<u32>,
        today: i32,
    ) -> Result<RoaringBitmap> {
        let from = window_days.map_or(i32::MIN, |n| today - (n as i32 - 1));
        match measure {
            Measure::Tier => self.tier_at_least(universe, op, value),
            Measure::Stickiness => {
                let x: f64 = value
                    .parse()
                    .map_err(|_| bad_value(measure, value, "is not a number"))?;
                let days = window_days.unwrap_or(30);
                let counts = self.active_day_counts(from, today)?;
                let ratio =
                    |u: u32| f64::from(counts.get(&u).copied().unwrap_or(0)) / f64::from(days);
                Ok(universe
                    .iter()
                    .filter(|&u| holds(ratio(u), op, x))
                    .collect())
            }
            Measure::Spend | Measure::Orders => {
                let x: i64 = value
                    .parse()
                    .map_err(|_| bad_value(measure, value, "is not an integer"))?;
                let money = self.metrics().money_pairs(from, today, Some(universe))?;
                let of = |&(orders, net): &(i64, i64)| match measure {
                    Measure::Orders => orders,
                    _ => net,
                };
                let with_money = money.iter().map(|(u, _)| *u);
                let passing = money
                    .iter()
                    .filter(|(_, m)| holds(of(m), op, x))
                    .map(|(u, _)| *u);
                // (the pairs come in ascending user order: built in one pass)
                let set = |ids: &mut dyn Iterator<Item = u32>| ids.collect::<RoaringBitmap>();
                let mut out = RoaringBitmap::from_sorted_iter(passing.clone())
                    .unwrap_or_else(|_| set(&mut passing.clone()));
                // a user without money in the window has 0
                if holds(0, op, x) {
                    let with_money = RoaringBitmap::from_sorted_iter(with_money.clone())
                        .unwrap_or_else(|_| set(&mut with_money.clone()));
                    out |= universe - with_money;
                }
                Ok(out)
            }
            Measure::Points => {
                let x: i64 = value
                    .parse()
                    .map_err(|_| bad_value(measure, value, "is not an integer"))?;
                let balances: HashMap<u32, i64> = crate::ledger::read::balances(&self.view)?
                    .into_iter()
                    .collect();
                let balance = |u: u32| balances.get(&u).copied().unwrap_or(0);
                Ok(universe
                    .iter()
                    .filter(|&u| holds(balance(u), op, x))
                    .collect())
            }
            Measure::RfmR | Measure::RfmF | Measure::RfmM => {
                let x: u8 = value
                    .parse()
                    .map_err(|_| bad_value(measure, value, "is not a score 1..=5"))?;
                let report = self.metrics().rfm(today, Some(universe))?;
                Ok(report
                    .users
                    .iter()
                    .filter(|r| {
                        let score = match measure {
                            Measure::RfmR => r.r_score,
                            Measure::RfmF => r.f_score,
                            _ => r.m_score,
                        };
                        holds(score, op, x)
                    })
                    .map(|r| r.user_id)
                    .collect())
            }
        }
    }

    /// Users holding a tier that compares with `tier` in the tiers' order.
    fn tier_at_least(
        &self,
        universe: &RoaringBitmap,
        op: AttrOp,
        tier: &str,
    ) -> Result<RoaringBitmap> {
        self.db.store.check_area(Area::Tiers)?;
        let levels: Vec<String> = {
            let settings = self.db.ledger_settings.read();
            settings
                .tiers
                .levels
                .iter()
                .map(|l| l.name.clone())
                .collect()
        };
        let Some(at) = levels.iter().position(|l| l == tier) else {
            let why = format!("is not one of the tiers ({})", levels.join(", "));
            return Err(bad_value(Measure::Tier, tier, &why));
        };
        let mut out = RoaringBitmap::new();
        for (i, level) in levels.iter().enumerate() {
            if holds(i, op, at) {
                out |= crate::ledger::read::users_in_tier(&self.view, level)? & universe;
            }
        }
        Ok(out)
    }

    /// Per user, the local days in `from..=to` with any activity.
    fn active_day_counts(&self, from: i32, to: i32) -> Result<HashMap<u32, u32>> {
        let mut counts: HashMap<u32, u32> = HashMap::new();
        for set in self.metrics().day_sets(None, from, to)?.values() {
            for u in set {
                *counts.entry(u).or_default() += 1;
            }
        }
        Ok(counts)
    }
}
