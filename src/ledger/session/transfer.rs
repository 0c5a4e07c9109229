//! The receiving side of an identity merge: a merged account's lots, holds
//! and transaction records written into the target account (see
//! `ledger::transfer` and docs/identity.md).

use super::*;
use crate::error::Result;

impl Session<'_> {
    /// Moves `out` (a merged account's ledger, see `ledger::transfer`) into
    /// `user_id`'s account: one `Transfer` entry per open lot, at the lot's
    /// earn time, keeping its expiry; each open hold re-created on the moved
    /// lots under its transaction id and deadline; every other caller
    /// transaction kept as a replay-only record. The account's clock moves
    /// to the later of the two, as an operation at that time would move it.
    ///
    /// A rule-credit lot is the credit of one of the merged user's events:
    /// `renumbered` gives that event's sequence number here, and the moved
    /// lot becomes the credit of the moved event (`event:<seq>:<rule>`), so
    /// a later merge still knows which event it belongs to. A credit lot
    /// whose event is not in `renumbered` (a duplicate of one this account
    /// had) does not move — the event counts once, and so does its credit —
    /// unless a hold reserves some of it.
    ///
    /// A caller transaction id this account used too refuses the merge
    /// (`MergeError::TxnClash`): the two operations cannot share an id.
    pub fn transfer_in(
        &mut self,
        user_id: u32,
        out: &crate::ledger::Outgoing,
        renumbered: &BTreeMap<u32, u32>,
        reason: &str,
    ) -> Result<crate::ledger::TransferReport> {
        self.with(user_id, |ctx, w| {
            let mut report = crate::ledger::TransferReport::default();
            for txn_id in out.txns.keys() {
                if ctx.txn_of(w, txn_id)?.is_some() {
                    return Err(crate::error::MergeError::TxnClash {
                        txn_id: txn_id.clone(),
                    }
                    .into());
                }
            }
            for (day, rule) in &out.cap_days {
                let capped = ctx
                    .settings
                    .rules
                    .get(usize::from(*rule))
                    .is_some_and(|r| r.daily_cap_points.is_some());
                if capped && ctx.cap(w, *day, *rule)? > 0 {
                    report.cap_conflicts.push((*day, *rule));
                }
            }
            if out.lots.is_empty() && out.txns.is_empty() {
                return Ok(report);
            }
            let t = w.account.clock_ms.max(out.clock_ms);
            ctx.catch_up(w, t)?;
            // old lot id → new lot id
            let mut lot_ids: BTreeMap<u32, u32> = BTreeMap::new();
            for lot in &out.lots {
                // A reward's lot stays (the target re-derives its rewards),
                // but for what an open hold reserves of it.
                let reward = out.rewards.contains(&lot.id);
                if reward {
                    report.dropped += lot.remaining;
                    if lot.held == 0 {
                        continue;
                    }
                }
                let points = if reward {
                    lot.held
                } else {
                    lot.remaining + lot.held
                };
                let credit = match out.credited_by.get(&lot.id) {
                    Some(&(event_seq, rule)) => match renumbered.get(&event_seq) {
                        Some(&seq) => Some((format!("{RULE_TXN_PREFIX}{seq}:{rule}"), rule)),
                        None if lot.held == 0 => {
                            report.dropped += points;
                            continue;
                        }
                        None => None,
                    },
                    None => None,
                };
                let mut d = Draft::new(lot.earned_at_ms, EntryKind::Transfer, points);
                d.new_lot = Some(NewLot {
                    points,
                    expires_at_ms: lot.expires_at_ms,
                });
                d.reason = reason_of(reason);
                d.related = Some(lot.id);
                d.txn_id = credit.as_ref().map(|(t, _)| t.clone());
                d.rule = credit.as_ref().map(|(_, r)| *r);
                let seq = ctx.post(w, d)?;
                lot_ids.insert(lot.id, seq);
                if let Some((txn_id, _)) = credit {
                    let outcome = PointsOutcome {
                        txn_id: txn_id.clone(),
                        entry_seq: seq,
                        at_ms: lot.earned_at_ms,
                        amount: points,
                        balance: w.account.balance,
                        available: w.account.available(),
                        lots: vec![LotDraw { lot: seq, points }],
                        shortfall: 0,
                        expired: 0,
                        replayed: false,
                    };
                    let op = PointsOp::Earn {
                        points,
                        expires_at_ms: lot.expires_at_ms,
                        reason: reason.to_owned(),
                    };
                    w.txns.insert(txn_id, TxnRecord { op, outcome });
                }
                report.points += points;
                report.lots += 1;
            }
            for h in &out.holds {
                let mut draws = Vec::with_capacity(h.draws.len());
                for dr in &h.draws {
                    let lot = lot_ids.get(&dr.lot).copied().ok_or_else(|| {
                        ctx.corrupt(
                            &[],
                            format!("hold {} draws from lot {} that is not open", h.seq, dr.lot),
                        )
                    })?;
                    draws.push(LotDraw {
                        lot,
                        points: dr.points,
                    });
                }
                let (op, at_ms) = match out.txns.get(&h.txn_id) {
                    Some(rec) => (rec.op.clone(), rec.outcome.at_ms),
                    None => {
                        return Err(ctx.corrupt(
                            &[],
                            format!("open hold {:?} has no transaction record", h.txn_id),
                        ));
                    }
                };
                let mut d = Draft::new(at_ms, EntryKind::Hold, 0);
                d.txn_id = Some(h.txn_id.clone());
                d.held_delta = h.points;
                d.lots = ops::moves(&draws, -1, 1);
                d.deadline_ms = Some(h.deadline_ms);
                d.reason = reason_of(reason);
                let seq = ctx.post(w, d)?;
                ctx.hold(w, seq)?.current = Some(Hold {
                    seq,
                    txn_id: h.txn_id.clone(),
                    points: h.points,
                    draws: draws.clone(),
                    deadline_ms: h.deadline_ms,
                });
                let outcome = PointsOutcome {
                    txn_id: h.txn_id.clone(),
                    entry_seq: seq,
                    at_ms,
                    amount: 0,
                    balance: w.account.balance,
                    available: w.account.available(),
                    lots: draws,
                    shortfall: 0,
                    expired: 0,
                    replayed: false,
                };
                w.txns.insert(h.txn_id.clone(), TxnRecord { op, outcome });
                report.holds += 1;
            }
            let open_holds: std::collections::BTreeSet<&str> =
                out.holds.iter().map(|h| h.txn_id.as_str()).collect();
            for (txn_id, rec) in &out.txns {
                if !open_holds.contains(txn_id.as_str()) {
                    w.moved_txns.insert(txn_id.clone(), rec.clone());
                    report.txns += 1;
                }
            }
            w.account.clock_ms = t;
            w.changed = true;
            Ok(report)
        })
    }
}
