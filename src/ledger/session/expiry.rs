//! What falls due by time alone: lot expiries, hold timeouts, tier reviews;
//! and the tier evaluation that growth changes trigger.

use super::*;
use crate::error::{Error, Result};
use crate::keys::ledger as lk;
use crate::store::{decode_value, Cf};
use crate::time::local_day;

impl Ctx<'_> {
    /// Expires what is left of lot `id` at `at_ms` (its unheld points).
    pub(super) fn expire_lot(&self, w: &mut Work, id: u32, at_ms: i64) -> Result<i64> {
        let r = self.lot(w, id)?.lot.remaining;
        if r > 0 {
            let mut d = Draft::new(at_ms, EntryKind::Expire, -r);
            d.lots.push(LotMove {
                lot: id,
                remaining_delta: -r,
                held_delta: 0,
            });
            d.related = Some(id);
            self.post(w, d)?;
        }
        Ok(r)
    }

    /// Expires every lot whose expiry is at or before `through`, each at its
    /// own expiry time. Returns (lots, points).
    pub(super) fn expire_lots_through(&self, w: &mut Work, through: i64) -> Result<(u64, i64)> {
        let ids = self.open_lots(w, i64::MIN, Some(through.saturating_add(1)))?;
        let (mut n, mut points) = (0, 0);
        for id in ids {
            let Some(exp) = self.lot(w, id)?.lot.expires_at_ms else {
                continue;
            };
            let p = self.expire_lot(w, id, exp)?;
            if p > 0 {
                n += 1;
                points += p;
            }
        }
        Ok((n, points))
    }

    /// Points returned to lots at `at_ms` expire at once when their lot is
    /// past its expiry: a refund or release does not extend points' life.
    /// Returns (lots, points) expired.
    pub(super) fn expire_returned(
        &self,
        w: &mut Work,
        lots: &[u32],
        at_ms: i64,
    ) -> Result<(u64, i64)> {
        let (mut n, mut expired) = (0, 0);
        for &id in lots {
            if self
                .lot(w, id)?
                .lot
                .expires_at_ms
                .is_some_and(|e| e <= at_ms)
            {
                let p = self.expire_lot(w, id, at_ms)?;
                if p > 0 {
                    n += 1;
                    expired += p;
                }
            }
        }
        Ok((n, expired))
    }

    /// Lets go of an open hold. Returns the entry's seq and the (lots,
    /// points) that expired at once.
    pub(super) fn release(
        &self,
        w: &mut Work,
        hold_seq: u32,
        at_ms: i64,
        kind: EntryKind,
        txn_id: Option<&str>,
    ) -> Result<(u32, (u64, i64))> {
        let hold = self.hold(w, hold_seq)?.current.take().ok_or_else(|| {
            self.corrupt(
                &lk::numbered(w.user_id, lk::HOLD, hold_seq),
                "hold not open".into(),
            )
        })?;
        let mut d = Draft::new(at_ms, kind, 0);
        d.txn_id = txn_id.map(str::to_owned);
        d.held_delta = -hold.points;
        d.related = Some(hold_seq);
        d.lots = hold
            .draws
            .iter()
            .map(|x| LotMove {
                lot: x.lot,
                remaining_delta: x.points,
                held_delta: -x.points,
            })
            .collect();
        let seq = self.post(w, d)?;
        let lots: Vec<u32> = hold.draws.iter().map(|x| x.lot).collect();
        let expired = self.expire_returned(w, &lots, at_ms)?;
        Ok((seq, expired))
    }

    pub(super) fn expire_account(
        &self,
        w: &mut Work,
        now_ms: i64,
        report: &mut ExpireReport,
    ) -> Result<()> {
        let mut due: Vec<(i64, u32)> = Vec::new();
        let prefix = lk::family(w.user_id, lk::HOLD);
        for item in self.store.prefix(Cf::Ledger, &prefix)? {
            let (k, v) = item?;
            let h: Hold = decode_value(Cf::Ledger, &k, &v)?;
            self.hold(w, h.seq)?;
        }
        for (seq, hw) in &w.holds {
            if let Some(h) = &hw.current {
                if h.deadline_ms <= now_ms {
                    due.push((h.deadline_ms, *seq));
                }
            }
        }
        due.sort_unstable();
        for (deadline, seq) in due {
            let (n, p) = self.expire_lots_through(w, deadline)?;
            report.lots_expired += n;
            report.points_expired += p;
            let (_, (n, p)) = self.release(w, seq, deadline, EntryKind::HoldTimeout, None)?;
            report.holds_timed_out += 1;
            report.lots_expired += n;
            report.points_expired += p;
        }
        let (n, p) = self.expire_lots_through(w, now_ms)?;
        report.lots_expired += n;
        report.points_expired += p;
        report.tier_changes += self.catch_up(w, now_ms)?;
        if w.changed {
            w.account.clock_ms = w.account.clock_ms.max(now_ms);
        }
        Ok(())
    }

    pub(super) fn growth_add(&self, w: &mut Work, day: i32, delta: i64) -> Result<()> {
        if !w.growth.contains_key(&day) {
            let v: i64 = self
                .store
                .get(Cf::Ledger, &lk::growth(w.user_id, day))?
                .unwrap_or(0);
            w.growth.insert(day, (v, false));
        }
        if let Some(slot) = w.growth.get_mut(&day) {
            slot.0 += delta;
            slot.1 = true;
        }
        Ok(())
    }

    /// Growth over the window ending on local day `day` (from earned points
    /// or growth value: the tiers' basis), the oldest day in it that holds
    /// growth, and whether a day in it holds negative growth (refunds).
    pub(super) fn window(&self, w: &Work, day: i32) -> Result<Window> {
        let window = self.settings.tiers.window_days as i32;
        let lo = day.saturating_sub(window - 1);
        let mut days: BTreeMap<i32, i64> = BTreeMap::new();
        let by_value = self.settings.growth.tier_basis == TierBasis::GrowthValue;
        let (start, end) = if by_value {
            (
                lk::growth_value(w.user_id, lo),
                lk::growth_value(w.user_id, day.saturating_add(1)),
            )
        } else {
            (
                lk::growth(w.user_id, lo),
                lk::growth(w.user_id, day.saturating_add(1)),
            )
        };
        for item in self.store.range(Cf::Ledger, &start, Some(end))? {
            let (k, v) = item?;
            let d: [u8; 4] = k
                .get(crate::keys::USER_BYTES + 1..)
                .and_then(|s| s.try_into().ok())
                .ok_or_else(|| self.corrupt(&k, "growth key does not decode".into()))?;
            let v = if by_value {
                decode_value::<GrowthDay>(Cf::Ledger, &k, &v)?.value
            } else {
                decode_value(Cf::Ledger, &k, &v)?
            };
            days.insert(crate::keys::day_from_asc(d), v);
        }
        if by_value {
            for (d, (g, _)) in w.growth_values.range(lo..=day) {
                days.insert(*d, g.value);
            }
        } else {
            for (d, (v, _)) in w.growth.range(lo..=day) {
                days.insert(*d, *v);
            }
        }
        Ok(Window {
            // (refunds can leave a window below zero; growth is not)
            growth: days.values().fold(0i64, |a, v| a.saturating_add(*v)).max(0),
            oldest: days.iter().find(|(_, v)| **v != 0).map(|(d, _)| *d),
            negative: days.values().any(|v| *v < 0),
        })
    }

    /// Sets the account's tier as of `t_ms` (recording a change) and
    /// schedules the next review: the instant the oldest growth in the window
    /// leaves it.
    pub(super) fn evaluate_tier(&self, w: &mut Work, t_ms: i64) -> Result<()> {
        let tiers = &self.settings.tiers;
        let Window {
            growth,
            oldest,
            negative,
        } = if tiers.levels.is_empty() {
            Window::default()
        } else {
            self.window(w, local_day(t_ms, self.offset_minutes))?
        };
        let new = tiers.tier_for(growth).map(str::to_owned);
        if new != w.account.tier {
            let seq = w.account.next_seq;
            w.account.next_seq = seq.checked_add(1).ok_or(Error::LimitReached {
                what: "ledger entries per account",
                max: u64::from(u32::MAX),
            })?;
            w.tier_changes.push((
                seq,
                TierChange {
                    at_ms: t_ms,
                    from: w.account.tier.take(),
                    to: new.clone(),
                    growth,
                },
            ));
            w.account.tier = new;
        }
        // Growth leaving the window can only lower a tier, unless the window
        // holds a refund's negative day: then it can raise one too.
        w.account.review_at_ms = match (w.account.tier.is_some() || negative, oldest) {
            (true, Some(o)) => Some(crate::time::local_midnight_ms(
                o.saturating_add_unsigned(tiers.window_days),
                self.offset_minutes,
            )),
            (_, None) | (false, _) => None,
        };
        w.changed = true;
        Ok(())
    }

    /// Runs the tier reviews due at or before `t_ms`, each at its own time.
    pub(super) fn catch_up(&self, w: &mut Work, t_ms: i64) -> Result<u64> {
        let mut changes = 0;
        while let Some(r) = w.account.review_at_ms.filter(|r| *r <= t_ms) {
            let before = w.tier_changes.len();
            self.evaluate_tier(w, r)?;
            changes += (w.tier_changes.len() - before) as u64;
            if w.account.review_at_ms.is_some_and(|next| next <= r) {
                return Err(self.corrupt(
                    &lk::account(w.user_id),
                    format!("tier review at {r} does not move forward"),
                ));
            }
        }
        Ok(changes)
    }
}
