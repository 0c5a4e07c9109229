//! Loading an account's records into the working copy on first use, and
//! putting every change of the session into the write's batch.

use crate::store::Batch;

use super::*;
use crate::error::{CorruptionError, Error, Result};
use crate::keys::ledger as lk;
use crate::ledger::{CreditRecord, StoredTxn};
use crate::store::merge::BitmapDelta;
use crate::store::Cf;

impl Session<'_> {
    /// Puts every change into `batch`.
    pub(crate) fn finish(self, batch: &mut Batch) -> Result<()> {
        let enc = crate::codec::encode::<LedgerEntry>;
        let notices = self.notices;
        for (uid, w) in self.users {
            // (a reward's holder may change without an entry: one recorded
            // before the rule holds it unpaid)
            for ((reward, campaign), (h, dirty)) in &w.firsts {
                if let (Some(h), true) = (h, dirty) {
                    batch.put(
                        Cf::Ledger,
                        lk::first_reward(uid, *reward, campaign),
                        crate::codec::encode(h)?,
                    );
                }
            }
            if let (Some(st), true) = (&w.streak, w.streak_dirty) {
                batch.put(
                    Cf::Ledger,
                    lk::family(uid, lk::STREAK),
                    crate::codec::encode(st)?,
                );
            }
            // (the first-order holder's position rides in the account)
            let first_order_at = first_order_at(&w);
            let moved_holder = w.account_stored && first_order_at != w.stored_first_order_at;
            if !(w.changed || moved_holder) {
                continue;
            }
            batch.put(
                Cf::Ledger,
                lk::account(uid),
                crate::ledger::account_value::encode(&w.account, first_order_at)?,
            );
            for e in &w.entries {
                batch.put(
                    Cf::Ledger,
                    lk::timed(uid, lk::ENTRY, e.at_ms, e.seq),
                    enc(e)?,
                );
            }
            for (seq, t) in &w.tier_changes {
                batch.put(
                    Cf::Ledger,
                    lk::timed(uid, lk::TIER, t.at_ms, *seq),
                    crate::codec::encode(t)?,
                );
                // The ledger's clock never moves back, so a tier change is
                // never retroactive.
                crate::feed::log(
                    batch,
                    &crate::feed::Record {
                        user_id: uid,
                        change: crate::feed::Change::Tier {
                            from: t.from.clone(),
                            to: t.to.clone(),
                            at_ms: t.at_ms,
                        },
                        retroactive: false,
                    },
                )?;
            }
            for (id, lw) in &w.lots {
                if !lw.dirty {
                    continue;
                }
                let lot = &lw.lot;
                batch.put(
                    Cf::Ledger,
                    lk::numbered(uid, lk::LOT, *id),
                    crate::codec::encode(lot)?,
                );
                let open_key = lk::open_lot(uid, lot.expires_at_ms, *id);
                let due_key = lot.expires_at_ms.map(|e| lk::due(lk::DUE_LOT, e, uid, *id));
                match (lw.stored_open, lot.is_open()) {
                    (false, true) => {
                        batch.put(Cf::Ledger, open_key, []);
                        if let Some(k) = due_key {
                            batch.put(Cf::LedgerDue, k, []);
                        }
                        if let (Some(c), Some(e)) = (notices, lot.expires_at_ms) {
                            if c.notice_due(e) {
                                let points = lot.remaining + lot.held;
                                crate::feed::notice(batch, uid, *id, points, e, c.notice_ms())?;
                            }
                        }
                    }
                    (true, false) => {
                        batch.delete(Cf::Ledger, open_key);
                        if let Some(k) = due_key {
                            batch.delete(Cf::LedgerDue, k);
                            batch.delete(Cf::Feed, crate::keys::feed::noticed(uid, *id));
                        }
                    }
                    _ => {}
                }
            }
            for (seq, hw) in &w.holds {
                match (&hw.stored, &hw.current) {
                    (None, Some(h)) => {
                        batch.put(
                            Cf::Ledger,
                            lk::numbered(uid, lk::HOLD, *seq),
                            crate::codec::encode(h)?,
                        );
                        batch.put(
                            Cf::LedgerDue,
                            lk::due(lk::DUE_HOLD, h.deadline_ms, uid, *seq),
                            [],
                        );
                    }
                    (Some(h), None) => {
                        batch.delete(Cf::Ledger, lk::numbered(uid, lk::HOLD, *seq));
                        batch.delete(
                            Cf::LedgerDue,
                            lk::due(lk::DUE_HOLD, h.deadline_ms, uid, *seq),
                        );
                    }
                    _ => {}
                }
            }
            for (txn_id, rec) in &w.txns {
                // Rule credits (earns) keep a compact record; a reversal in
                // the rule space (a referral credit taken back) a full one.
                let compact = txn_id.starts_with(RULE_TXN_PREFIX)
                    && matches!(rec.op, crate::ledger::PointsOp::Earn { .. });
                let value = if compact {
                    crate::codec::encode(&CreditRecord {
                        entry_seq: rec.outcome.entry_seq,
                        at_ms: rec.outcome.at_ms,
                    })?
                } else {
                    crate::codec::encode(rec)?
                };
                batch.put(Cf::Ledger, lk::txn(uid, txn_id), value);
            }
            for (txn_id, rec) in &w.moved_txns {
                let moved = crate::ledger::MovedTxn {
                    marker: crate::ledger::MOVED_TXN_MARKER,
                    record: rec.clone(),
                };
                batch.put(
                    Cf::Ledger,
                    lk::txn(uid, txn_id),
                    crate::codec::encode(&moved)?,
                );
            }
            for (day, (v, dirty)) in &w.growth {
                if !dirty {
                    continue;
                }
                if *v == 0 {
                    batch.delete(Cf::Ledger, lk::growth(uid, *day));
                } else {
                    batch.put(Cf::Ledger, lk::growth(uid, *day), crate::codec::encode(v)?);
                }
            }
            for (day, (g, dirty)) in &w.growth_values {
                if !dirty {
                    continue;
                }
                let key = lk::growth_value(uid, *day);
                if g.is_empty() {
                    batch.delete(Cf::Ledger, key);
                } else {
                    batch.put(Cf::Ledger, key, crate::codec::encode(g)?);
                }
            }
            for ((day, rule), v) in &w.caps {
                batch.put(
                    Cf::Ledger,
                    lk::cap(uid, *day, *rule),
                    crate::codec::encode(v)?,
                );
            }
            for (seq, by) in &w.reversed {
                batch.put(
                    Cf::Ledger,
                    lk::numbered(uid, lk::REVERSED, *seq),
                    crate::codec::encode(by)?,
                );
            }
            if w.stored_review != w.account.review_at_ms {
                if let Some(r) = w.stored_review {
                    batch.delete(Cf::LedgerDue, lk::due(lk::DUE_REVIEW, r, uid, 0));
                }
                if let Some(r) = w.account.review_at_ms {
                    batch.put(Cf::LedgerDue, lk::due(lk::DUE_REVIEW, r, uid, 0), []);
                }
            }
            if w.stored_tier != w.account.tier {
                if let Some(t) = &w.stored_tier {
                    batch.merge(
                        Cf::Metrics,
                        crate::keys::metrics::tier_users(t, uid),
                        BitmapDelta::remove(uid).encode(),
                    );
                }
                if let Some(t) = &w.account.tier {
                    batch.merge(
                        Cf::Metrics,
                        crate::keys::metrics::tier_users(t, uid),
                        BitmapDelta::add(uid).encode(),
                    );
                }
            }
        }
        Ok(())
    }
}

/// The first-order holder's position an account keeps
/// (`ledger::account_value`): this session's holder when it read or changed
/// it, else the stored copy.
fn first_order_at(w: &Work) -> Option<crate::ledger::account_value::HolderAt> {
    match w.firsts.get(&(rewards::FIRST_ORDER, String::new())) {
        Some((h, _)) => h.as_ref().map(|h| (h.ts_ms, h.seq)),
        None => w.stored_first_order_at,
    }
}

impl Ctx<'_> {
    pub(super) fn corrupt(&self, key: &[u8], reason: String) -> Error {
        CorruptionError {
            cf: Cf::Ledger.name(),
            what: "value",
            key: key.to_vec(),
            reason,
        }
        .into()
    }

    pub(super) fn load(&self, user_id: u32) -> Result<Work> {
        // (a first-order holder is read when a purchase asks for it: a
        // batched MultiGet of both keys measured slower than two gets once
        // they sit in table files — docs/performance.md, "Rewards")
        let key = lk::account(user_id);
        let stored = crate::store::Reader::read_with(self.store, Cf::Ledger, &key, |v| {
            crate::ledger::account_value::decode_full(&key, v)
        })?;
        let account_stored = stored.is_some();
        let (account, stored_first_order_at) = stored.unwrap_or_default();
        Ok(Work {
            account_stored,
            stored_first_order_at,
            user_id,
            stored_review: account.review_at_ms,
            stored_tier: account.tier.clone(),
            account,
            changed: false,
            lots: BTreeMap::new(),
            holds: BTreeMap::new(),
            txns: BTreeMap::new(),
            moved_txns: BTreeMap::new(),
            growth: BTreeMap::new(),
            growth_values: BTreeMap::new(),
            firsts: BTreeMap::new(),
            streak: None,
            streak_dirty: false,
            birthday: None,
            caps: BTreeMap::new(),
            entries: Vec::new(),
            tier_changes: Vec::new(),
            reversed: BTreeMap::new(),
        })
    }

    pub(super) fn lot<'w>(&self, w: &'w mut Work, id: u32) -> Result<&'w mut LotWork> {
        if !w.lots.contains_key(&id) {
            let key = lk::numbered(w.user_id, lk::LOT, id);
            let lot: Lot = self
                .store
                .get(Cf::Ledger, &key)?
                .ok_or_else(|| self.corrupt(&key, format!("lot {id} is referenced but missing")))?;
            w.lots.insert(
                id,
                LotWork {
                    stored_open: lot.is_open(),
                    lot,
                    dirty: false,
                },
            );
        }
        w.lots
            .get_mut(&id)
            .ok_or_else(|| self.corrupt(&[], format!("lot {id} vanished from the session")))
    }

    pub(super) fn hold<'w>(&self, w: &'w mut Work, seq: u32) -> Result<&'w mut HoldWork> {
        if !w.holds.contains_key(&seq) {
            let h: Option<Hold> = self
                .store
                .get(Cf::Ledger, &lk::numbered(w.user_id, lk::HOLD, seq))?;
            w.holds.insert(
                seq,
                HoldWork {
                    stored: h.clone(),
                    current: h,
                },
            );
        }
        w.holds
            .get_mut(&seq)
            .ok_or_else(|| self.corrupt(&[], format!("hold {seq} vanished from the session")))
    }

    /// Transaction `txn_id` of the account, and whether it was moved in by
    /// an identity merge (then only a replay may use it).
    pub(super) fn txn_of(&self, w: &Work, txn_id: &str) -> Result<Option<(TxnRecord, bool)>> {
        if let Some(r) = w.moved_txns.get(txn_id) {
            return Ok(Some((r.clone(), true)));
        }
        if let Some(r) = w.txns.get(txn_id) {
            return Ok(Some((r.clone(), false)));
        }
        let key = lk::txn(w.user_id, txn_id);
        let Some(bytes) = self.store.get_raw(Cf::Ledger, &key)? else {
            return Ok(None);
        };
        match crate::ledger::decode_txn(txn_id, &key, &bytes)? {
            StoredTxn::Moved(r) => Ok(Some((r, true))),
            StoredTxn::Full(r) => Ok(Some((r, false))),
            StoredTxn::Credit(c) => {
                // A rule credit: its operation and outcome are its entry's
                // (the balance the credit left is the entry's; what was
                // available then is not kept, and nothing reads it).
                let e = self.entry(w, c.at_ms, c.entry_seq)?;
                let lot = e.new_lot.ok_or_else(|| {
                    self.corrupt(&key, format!("rule credit {txn_id} names no earning entry"))
                })?;
                Ok(Some((
                    TxnRecord {
                        op: PointsOp::Earn {
                            points: lot.points,
                            expires_at_ms: lot.expires_at_ms,
                            reason: e.reason.clone().unwrap_or_default(),
                        },
                        outcome: PointsOutcome {
                            txn_id: txn_id.to_owned(),
                            entry_seq: e.seq,
                            at_ms: e.at_ms,
                            amount: e.amount,
                            balance: e.balance_after,
                            available: e.balance_after,
                            lots: vec![LotDraw {
                                lot: e.seq,
                                points: lot.points,
                            }],
                            shortfall: 0,
                            expired: 0,
                            replayed: false,
                        },
                    },
                    false,
                )))
            }
        }
    }

    /// Takes back a reward's (or referral's) credit `target` at `at_ms`,
    /// under `{target}:reverse`, when it is live here: recorded, not moved
    /// in by a merge, and not reversed by someone else already — a caller
    /// may have reversed it by hand, and that correction stands: the
    /// reward moving must not refuse the event that moves it.
    pub(super) fn reverse_credit(&self, w: &mut Work, target: &str, at_ms: i64) -> Result<()> {
        let Some((rec, false)) = self.txn_of(w, target)? else {
            return Ok(());
        };
        let reverse_txn = format!("{target}:reverse");
        if self
            .reversed_by(w, rec.outcome.entry_seq)?
            .is_some_and(|by| by != reverse_txn)
        {
            return Ok(());
        }
        let op = PointsOp::Reverse {
            txn: target.to_owned(),
        };
        self.run(w, &reverse_txn, at_ms, &op, None)?;
        Ok(())
    }

    pub(super) fn reversed_by(&self, w: &Work, seq: u32) -> Result<Option<String>> {
        if let Some(by) = w.reversed.get(&seq) {
            return Ok(Some(by.clone()));
        }
        self.store
            .get(Cf::Ledger, &lk::numbered(w.user_id, lk::REVERSED, seq))
    }

    pub(super) fn entry(&self, w: &Work, at_ms: i64, seq: u32) -> Result<LedgerEntry> {
        if let Some(e) = w.entries.iter().find(|e| e.seq == seq) {
            return Ok(e.clone());
        }
        let key = lk::timed(w.user_id, lk::ENTRY, at_ms, seq);
        self.store
            .get(Cf::Ledger, &key)?
            .ok_or_else(|| self.corrupt(&key, format!("entry {seq} is referenced but missing")))
    }

    pub(super) fn cap(&self, w: &Work, day: i32, rule: u16) -> Result<i64> {
        if let Some(v) = w.caps.get(&(day, rule)) {
            return Ok(*v);
        }
        Ok(self
            .store
            .get(Cf::Ledger, &lk::cap(w.user_id, day, rule))?
            .unwrap_or(0))
    }
}
