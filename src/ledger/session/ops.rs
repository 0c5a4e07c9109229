//! The operations: drawing lots, posting entries, holds, and running one
//! caller operation (earn, redeem, hold, capture, release, adjust, reverse).

use std::collections::BTreeSet;

use super::*;
use crate::error::{Error, LedgerError, Result};
use crate::keys::ledger as lk;
use crate::keys::prefix_successor;
use crate::store::Cf;
use crate::time::local_day;

impl Ctx<'_> {
    /// Ids of open lots whose expiry lies in `[from, until)` (`None` expiry =
    /// `i64::MAX`), from the stored index and the session, in drawing order:
    /// soonest expiry first, then oldest lot.
    pub(super) fn open_lots(
        &self,
        w: &mut Work,
        from: i64,
        until: Option<i64>,
    ) -> Result<Vec<u32>> {
        let start = lk::open_lot(w.user_id, Some(from), 0);
        let end = match until {
            Some(u) => Some(lk::open_lot(w.user_id, Some(u), 0)),
            None => prefix_successor(&lk::family(w.user_id, lk::OPEN_LOT)),
        };
        let mut ids: BTreeSet<(i64, u32)> = BTreeSet::new();
        for item in self.store.range(Cf::Ledger, &start, end)? {
            let (k, _) = item?;
            let (exp, id) = lk::open_lot_id(&k)
                .ok_or_else(|| self.corrupt(&k, "open-lot key does not decode".into()))?;
            ids.insert((exp, id));
            if ids.len() > MAX_LOTS_PER_DRAW {
                return Err(Error::LimitReached {
                    what: "open lots one operation may draw from",
                    max: MAX_LOTS_PER_DRAW as u64,
                });
            }
        }
        let in_range = |exp: i64| exp >= from && until.is_none_or(|u| exp < u);
        for lw in w.lots.values() {
            let exp = lw.lot.expires_at_ms.unwrap_or(i64::MAX);
            if lw.lot.is_open() && in_range(exp) {
                ids.insert((exp, lw.lot.id));
            }
        }
        // The stored index may list a lot this session closed: callers load
        // each lot and look at its points before using it.
        Ok(ids.into_iter().map(|(_, id)| id).collect())
    }

    /// Chooses lots for `points`: unexpired at `at_ms`, unheld points,
    /// soonest-expiring first.
    pub(super) fn draw(&self, w: &mut Work, at_ms: i64, points: i64) -> Result<Vec<LotDraw>> {
        let ids = self.open_lots(w, at_ms.saturating_add(1), None)?;
        let mut draws = Vec::new();
        let mut left = points;
        let mut available = 0i64;
        // Lots are loaded in drawing order and only until the points are
        // covered; a refusal has read them all, so its `available` is exact.
        for id in ids {
            let remaining = self.lot(w, id)?.lot.remaining;
            available = available.saturating_add(remaining);
            if remaining > 0 {
                let take = remaining.min(left);
                draws.push(LotDraw {
                    lot: id,
                    points: take,
                });
                left -= take;
                if left == 0 {
                    break;
                }
            }
        }
        if left > 0 {
            return Err(LedgerError::InsufficientPoints {
                requested: points,
                available,
            }
            .into());
        }
        Ok(draws)
    }

    /// Applies a draft to the working copy and records it. Checks the
    /// account's invariants on the way: a violation means the stored state
    /// was inconsistent, and the whole write is refused.
    pub(super) fn post(&self, w: &mut Work, d: Draft) -> Result<u32> {
        let account_key = lk::account(w.user_id);
        let seq = w.account.next_seq;
        w.account.next_seq = seq.checked_add(1).ok_or(Error::LimitReached {
            what: "ledger entries per account",
            max: u64::from(u32::MAX),
        })?;
        let balance = w.account.balance + d.amount;
        let held = w.account.held + d.held_delta;
        if balance > MAX_BALANCE {
            return Err(Error::LimitReached {
                what: "points balance",
                max: MAX_BALANCE as u64,
            });
        }
        if balance < 0 || held < 0 || held > balance {
            return Err(self.corrupt(
                &account_key,
                format!("entry {seq} would leave balance {balance} with {held} held"),
            ));
        }
        w.account.balance = balance;
        w.account.held = held;
        for m in &d.lots {
            let lw = self.lot(w, m.lot)?;
            lw.lot.remaining += m.remaining_delta;
            lw.lot.held += m.held_delta;
            lw.dirty = true;
            if lw.lot.remaining < 0 || lw.lot.held < 0 {
                return Err(self.corrupt(
                    &account_key,
                    format!("entry {seq} would overdraw lot {}", m.lot),
                ));
            }
        }
        if let Some(n) = d.new_lot {
            w.lots.insert(
                seq,
                LotWork {
                    lot: Lot {
                        id: seq,
                        earned_at_ms: d.at_ms,
                        earned: n.points,
                        remaining: n.points,
                        held: 0,
                        expires_at_ms: n.expires_at_ms,
                    },
                    stored_open: false,
                    dirty: true,
                },
            );
        }
        w.entries.push(LedgerEntry {
            seq,
            at_ms: d.at_ms,
            kind: d.kind,
            txn_id: d.txn_id,
            amount: d.amount,
            held_delta: d.held_delta,
            lots: d.lots,
            new_lot: d.new_lot,
            reason: d.reason,
            related: d.related,
            rule: d.rule,
            deadline_ms: d.deadline_ms,
            balance_after: balance,
        });
        w.changed = true;
        Ok(seq)
    }

    /// The open hold a capture or release names.
    pub(super) fn open_hold(&self, w: &mut Work, hold_txn: &str) -> Result<Hold> {
        let (rec, moved) = self
            .txn_of(w, hold_txn)?
            .ok_or_else(|| LedgerError::UnknownTxn {
                txn_id: hold_txn.to_owned(),
            })?;
        if moved {
            // a hold of a merged account that was no longer open then (open
            // ones were re-created here under their own record)
            return Err(LedgerError::HoldNotOpen {
                txn_id: hold_txn.to_owned(),
            }
            .into());
        }
        if !matches!(rec.op, PointsOp::Hold { .. }) {
            return Err(LedgerError::NotAHold {
                txn_id: hold_txn.to_owned(),
            }
            .into());
        }
        self.hold(w, rec.outcome.entry_seq)?
            .current
            .clone()
            .ok_or_else(|| {
                LedgerError::HoldNotOpen {
                    txn_id: hold_txn.to_owned(),
                }
                .into()
            })
    }

    pub(super) fn run(
        &self,
        w: &mut Work,
        txn_id: &str,
        at_ms: i64,
        op: &PointsOp,
        rule: Option<u16>,
    ) -> Result<PointsOutcome> {
        if let Some((rec, _)) = self.txn_of(w, txn_id)? {
            if rec.op == *op {
                let mut out = rec.outcome;
                out.replayed = true;
                return Ok(out);
            }
            return Err(LedgerError::TxnConflict {
                txn_id: txn_id.to_owned(),
            }
            .into());
        }
        crate::ledger::check_expiry_follows(op, at_ms)?;
        let t = w.account.clock_ms.max(at_ms);
        self.catch_up(w, t)?;
        let balance_before = w.account.balance;
        let txn = Some(txn_id.to_owned());
        let mut shortfall = 0;
        let mut expired = 0;
        let mut growth_changed = false;
        let (seq, lots) = match op {
            PointsOp::Earn {
                points,
                expires_at_ms,
                reason,
            } => {
                let mut d = Draft::new(at_ms, EntryKind::Earn, *points);
                d.txn_id = txn;
                d.new_lot = Some(NewLot {
                    points: *points,
                    expires_at_ms: *expires_at_ms,
                });
                d.reason = reason_of(reason);
                d.rule = rule;
                let seq = self.post(w, d)?;
                self.growth_add(w, local_day(at_ms, self.offset_minutes), *points)?;
                growth_changed = true;
                (
                    seq,
                    vec![LotDraw {
                        lot: seq,
                        points: *points,
                    }],
                )
            }
            PointsOp::Redeem { points, reason } => {
                let draws = self.draw(w, at_ms, *points)?;
                let mut d = Draft::new(at_ms, EntryKind::Redeem, -points);
                d.txn_id = txn;
                d.reason = reason_of(reason);
                d.lots = moves(&draws, -1, 0);
                (self.post(w, d)?, draws)
            }
            PointsOp::Hold { points, timeout_ms } => {
                let draws = self.draw(w, at_ms, *points)?;
                let deadline_ms = at_ms + timeout_ms;
                let mut d = Draft::new(at_ms, EntryKind::Hold, 0);
                d.txn_id = txn;
                d.held_delta = *points;
                d.lots = moves(&draws, -1, 1);
                d.deadline_ms = Some(deadline_ms);
                let seq = self.post(w, d)?;
                let hw = self.hold(w, seq)?;
                hw.current = Some(Hold {
                    seq,
                    txn_id: txn_id.to_owned(),
                    points: *points,
                    draws: draws.clone(),
                    deadline_ms,
                });
                (seq, draws)
            }
            PointsOp::Capture { hold_txn } => {
                let hold = self.open_hold(w, hold_txn)?;
                if at_ms >= hold.deadline_ms {
                    return Err(LedgerError::HoldTimedOut {
                        txn_id: hold_txn.clone(),
                        deadline_ms: hold.deadline_ms,
                        at_ms,
                    }
                    .into());
                }
                let mut d = Draft::new(at_ms, EntryKind::Capture, -hold.points);
                d.txn_id = txn;
                d.held_delta = -hold.points;
                d.lots = moves(&hold.draws, 0, -1);
                d.related = Some(hold.seq);
                let seq = self.post(w, d)?;
                self.hold(w, hold.seq)?.current = None;
                (seq, hold.draws)
            }
            PointsOp::Release { hold_txn } => {
                let hold = self.open_hold(w, hold_txn)?;
                let (seq, (_, exp)) =
                    self.release(w, hold.seq, at_ms, EntryKind::Release, Some(txn_id))?;
                expired = exp;
                (seq, hold.draws)
            }
            PointsOp::Adjust { points, reason } => {
                let mut d = Draft::new(at_ms, EntryKind::Adjust, *points);
                d.txn_id = txn;
                d.reason = reason_of(reason);
                if *points > 0 {
                    d.new_lot = Some(NewLot {
                        points: *points,
                        expires_at_ms: None,
                    });
                    let seq = self.post(w, d)?;
                    (
                        seq,
                        vec![LotDraw {
                            lot: seq,
                            points: *points,
                        }],
                    )
                } else {
                    let draws = self.draw(w, at_ms, -points)?;
                    d.lots = moves(&draws, -1, 0);
                    (self.post(w, d)?, draws)
                }
            }
            PointsOp::Reverse { txn: target } => {
                let r = self.reverse(w, txn_id, at_ms, target)?;
                shortfall = r.shortfall;
                expired = r.expired;
                growth_changed = r.growth_changed;
                (r.seq, r.lots)
            }
        };
        let outcome = PointsOutcome {
            txn_id: txn_id.to_owned(),
            entry_seq: seq,
            at_ms,
            amount: w.account.balance - balance_before,
            balance: w.account.balance,
            available: w.account.available(),
            lots,
            shortfall,
            expired,
            replayed: false,
        };
        w.txns.insert(
            txn_id.to_owned(),
            TxnRecord {
                op: op.clone(),
                outcome: outcome.clone(),
            },
        );
        if growth_changed && !self.settings.tiers.levels.is_empty() {
            self.evaluate_tier(w, t)?;
        }
        w.account.clock_ms = t;
        w.changed = true;
        Ok(outcome)
    }

    pub(super) fn reverse(
        &self,
        w: &mut Work,
        txn_id: &str,
        at_ms: i64,
        target: &str,
    ) -> Result<Reversal> {
        let (rec, moved) = self
            .txn_of(w, target)?
            .ok_or_else(|| LedgerError::UnknownTxn {
                txn_id: target.to_owned(),
            })?;
        if moved {
            // its entries stayed with the merged account (docs/identity.md)
            return Err(LedgerError::NotReversible {
                txn_id: target.to_owned(),
                op: "operation moved in by a merge",
            }
            .into());
        }
        if !matches!(
            rec.op,
            PointsOp::Earn { .. } | PointsOp::Redeem { .. } | PointsOp::Capture { .. }
        ) {
            return Err(LedgerError::NotReversible {
                txn_id: target.to_owned(),
                op: rec.op.name(),
            }
            .into());
        }
        let target_seq = rec.outcome.entry_seq;
        if let Some(by) = self.reversed_by(w, target_seq)? {
            return Err(LedgerError::AlreadyReversed {
                txn_id: target.to_owned(),
                by,
            }
            .into());
        }
        let original = self.entry(w, rec.outcome.at_ms, target_seq)?;
        let mut d = Draft::new(at_ms, EntryKind::Reverse, 0);
        d.txn_id = Some(txn_id.to_owned());
        d.related = Some(target_seq);
        let mut out = Reversal {
            seq: 0,
            lots: Vec::new(),
            shortfall: 0,
            expired: 0,
            growth_changed: false,
        };
        if let Some(n) = original.new_lot {
            // An earn: take back what is left of its lot; what was spent,
            // held or expired is the shortfall. Growth forgets the whole earn.
            let left = self.lot(w, target_seq)?.lot.remaining;
            d.amount = -left;
            if left > 0 {
                d.lots.push(LotMove {
                    lot: target_seq,
                    remaining_delta: -left,
                    held_delta: 0,
                });
                out.lots.push(LotDraw {
                    lot: target_seq,
                    points: left,
                });
            }
            out.shortfall = n.points - left;
            out.seq = self.post(w, d)?;
            // A rule credit moved in by a merge never counted as growth here
            // (docs/identity.md): only an earn gives growth back.
            if original.kind == EntryKind::Earn {
                self.growth_add(w, local_day(original.at_ms, self.offset_minutes), -n.points)?;
                out.growth_changed = true;
            }
        } else {
            // A redeem or capture: return each lot's points, except to lots
            // whose earn was reversed (those points are gone: shortfall).
            let mut returned = Vec::new();
            for m in &original.lots {
                let points = -(m.remaining_delta + m.held_delta);
                if points <= 0 {
                    continue;
                }
                if self.reversed_by(w, m.lot)?.is_some() {
                    out.shortfall += points;
                    continue;
                }
                d.amount += points;
                d.lots.push(LotMove {
                    lot: m.lot,
                    remaining_delta: points,
                    held_delta: 0,
                });
                out.lots.push(LotDraw { lot: m.lot, points });
                returned.push(m.lot);
            }
            out.seq = self.post(w, d)?;
            out.expired = self.expire_returned(w, &returned, at_ms)?.1;
        }
        w.reversed.insert(target_seq, txn_id.to_owned());
        Ok(out)
    }
}

pub(super) struct Reversal {
    seq: u32,
    lots: Vec<LotDraw>,
    shortfall: i64,
    expired: i64,
    growth_changed: bool,
}

/// Lot moves of `draws`, scaled: `(-1, 0)` debits, `(-1, 1)` reserves,
/// `(0, -1)` debits reserved points.
pub(super) fn moves(draws: &[LotDraw], remaining_sign: i64, held_sign: i64) -> Vec<LotMove> {
    draws
        .iter()
        .map(|x| LotMove {
            lot: x.lot,
            remaining_delta: remaining_sign * x.points,
            held_delta: held_sign * x.points,
        })
        .collect()
}
