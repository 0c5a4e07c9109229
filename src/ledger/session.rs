//! The write side of the ledger: a [`Session`] loads the accounts one logical
//! write touches, applies operations to an in-memory working copy, and only
//! when every operation succeeded puts the result into the write's batch.
//! A refused operation therefore changes nothing: the caller drops the
//! session. Callers hold the stripe locks of every user named.

use std::collections::{BTreeMap, BTreeSet};

use rocksdb::WriteBatch;

use super::keys as lk;
use super::{
    Account, EntryKind, ExpireReport, Hold, LedgerEntry, LedgerSettings, Lot, LotDraw, LotMove,
    NewLot, PointsOp, PointsOutcome, TierChange, TxnRecord, MAX_BALANCE, RULE_TXN_PREFIX,
};
use crate::error::{CorruptionError, Error, LedgerError, Result};
use crate::keys::prefix_successor;
use crate::store::merge::BitmapDelta;
use crate::store::{decode_value, Cf, Store};
use crate::time::{local_day, DAY_MS};

/// Most lots one draw may consider: bounds the work of one redeem.
pub const MAX_LOTS_PER_DRAW: usize = 100_000;

struct LotWork {
    lot: Lot,
    stored_open: bool,
    dirty: bool,
}

struct HoldWork {
    stored: Option<Hold>,
    current: Option<Hold>,
}

/// One account's working copy.
struct Work {
    user_id: u32,
    account: Account,
    stored_review: Option<i64>,
    stored_tier: Option<String>,
    changed: bool,
    lots: BTreeMap<u32, LotWork>,
    holds: BTreeMap<u32, HoldWork>,
    txns: BTreeMap<String, TxnRecord>,
    growth: BTreeMap<i32, (i64, bool)>,
    caps: BTreeMap<(i32, u16), i64>,
    entries: Vec<LedgerEntry>,
    tier_changes: Vec<(u32, TierChange)>,
    reversed: BTreeMap<u32, String>,
}

/// An entry before it is posted.
struct Draft {
    at_ms: i64,
    kind: EntryKind,
    txn_id: Option<String>,
    amount: i64,
    held_delta: i64,
    lots: Vec<LotMove>,
    new_lot: Option<NewLot>,
    reason: Option<String>,
    related: Option<u32>,
    rule: Option<u16>,
    deadline_ms: Option<i64>,
}

impl Draft {
    fn new(at_ms: i64, kind: EntryKind, amount: i64) -> Self {
        Self {
            at_ms,
            kind,
            txn_id: None,
            amount,
            held_delta: 0,
            lots: Vec::new(),
            new_lot: None,
            reason: None,
            related: None,
            rule: None,
            deadline_ms: None,
        }
    }
}

/// What the session needs from the store and the settings.
struct Ctx<'a> {
    store: &'a Store,
    settings: &'a LedgerSettings,
    offset_minutes: i32,
}

/// The ledger side of one logical write.
pub(crate) struct Session<'a> {
    ctx: Ctx<'a>,
    users: BTreeMap<u32, Work>,
}

fn reason_of(r: &str) -> Option<String> {
    (!r.is_empty()).then(|| r.to_owned())
}

impl<'a> Session<'a> {
    /// Starts a session.
    pub fn new(store: &'a Store, settings: &'a LedgerSettings) -> Self {
        Self {
            ctx: Ctx {
                store,
                settings,
                offset_minutes: store.settings().utc_offset_minutes,
            },
            users: BTreeMap::new(),
        }
    }

    fn with<T>(
        &mut self,
        user_id: u32,
        f: impl FnOnce(&Ctx<'a>, &mut Work) -> Result<T>,
    ) -> Result<T> {
        let mut w = match self.users.remove(&user_id) {
            Some(w) => w,
            None => self.ctx.load(user_id)?,
        };
        let out = f(&self.ctx, &mut w);
        self.users.insert(user_id, w);
        out
    }

    /// Applies one caller operation (already validated) to `user_id`'s account.
    pub fn apply(
        &mut self,
        user_id: u32,
        txn_id: &str,
        at_ms: i64,
        op: &PointsOp,
    ) -> Result<PointsOutcome> {
        self.with(user_id, |ctx, w| ctx.run(w, txn_id, at_ms, op, None))
    }

    /// Credits what the earning rules give for one new event.
    pub fn rule_credit(
        &mut self,
        user_id: u32,
        event_seq: u32,
        kind: &str,
        ts_ms: i64,
        amount_minor: Option<i64>,
    ) -> Result<()> {
        let rules = &self.ctx.settings.rules;
        if !rules.iter().any(|r| r.kind == kind) {
            return Ok(());
        }
        self.with(user_id, |ctx, w| {
            let day = local_day(ts_ms, ctx.offset_minutes);
            for (i, rule) in ctx.settings.rules.iter().enumerate() {
                if rule.kind != kind {
                    continue;
                }
                let rule_idx = i as u16;
                let mut points = LedgerSettings::rule_points(rule, amount_minor);
                if points <= 0 {
                    continue;
                }
                // Every rule keeps its per-day total (capped or not), so a cap
                // added later starts from the truth and verify has one rule.
                let used = ctx.cap(w, day, rule_idx)?;
                if let Some(cap) = rule.daily_cap_points {
                    points = points.min(cap - used);
                }
                if points <= 0 {
                    continue;
                }
                w.caps.insert((day, rule_idx), used + points);
                let expires_at_ms = rule
                    .expires_after_days
                    .map(|d| ts_ms.saturating_add(i64::from(d) * DAY_MS));
                let op = PointsOp::Earn {
                    points,
                    expires_at_ms,
                    reason: format!("rule {i}: {kind}"),
                };
                let txn_id = format!("{RULE_TXN_PREFIX}{event_seq}:{i}");
                ctx.run(w, &txn_id, ts_ms, &op, Some(rule_idx))?;
            }
            Ok(())
        })
    }

    /// Everything due at or before `now_ms` in one account: timed-out holds,
    /// expired lots, tier reviews. Adds what it did to `report`.
    pub fn expire_account(
        &mut self,
        user_id: u32,
        now_ms: i64,
        report: &mut ExpireReport,
    ) -> Result<()> {
        self.with(user_id, |ctx, w| ctx.expire_account(w, now_ms, report))
    }

    /// Re-evaluates the account's tier under the (new) settings, at its clock.
    pub fn retier(&mut self, user_id: u32) -> Result<()> {
        self.with(user_id, |ctx, w| {
            if w.account == Account::default() && w.entries.is_empty() {
                return Ok(());
            }
            let clock = w.account.clock_ms;
            ctx.evaluate_tier(w, clock)
        })
    }

    /// Puts every change into `batch`.
    pub fn finish(self, batch: &mut WriteBatch) -> Result<()> {
        let store = self.ctx.store;
        let ledger = store.cf(Cf::Ledger)?;
        let due = store.cf(Cf::LedgerDue)?;
        let metrics = store.cf(Cf::Metrics)?;
        let enc = crate::codec::encode::<LedgerEntry>;
        for (uid, w) in self.users {
            if !w.changed {
                continue;
            }
            batch.put_cf(ledger, lk::account(uid), crate::codec::encode(&w.account));
            for e in &w.entries {
                batch.put_cf(ledger, lk::timed(uid, lk::ENTRY, e.at_ms, e.seq), enc(e));
            }
            for (seq, t) in &w.tier_changes {
                batch.put_cf(
                    ledger,
                    lk::timed(uid, lk::TIER, t.at_ms, *seq),
                    crate::codec::encode(t),
                );
            }
            for (id, lw) in &w.lots {
                if !lw.dirty {
                    continue;
                }
                let lot = &lw.lot;
                batch.put_cf(
                    ledger,
                    lk::numbered(uid, lk::LOT, *id),
                    crate::codec::encode(lot),
                );
                let open_key = lk::open_lot(uid, lot.expires_at_ms, *id);
                let due_key = lot.expires_at_ms.map(|e| lk::due(lk::DUE_LOT, e, uid, *id));
                match (lw.stored_open, lot.is_open()) {
                    (false, true) => {
                        batch.put_cf(ledger, open_key, []);
                        if let Some(k) = due_key {
                            batch.put_cf(due, k, []);
                        }
                    }
                    (true, false) => {
                        batch.delete_cf(ledger, open_key);
                        if let Some(k) = due_key {
                            batch.delete_cf(due, k);
                        }
                    }
                    _ => {}
                }
            }
            for (seq, hw) in &w.holds {
                match (&hw.stored, &hw.current) {
                    (None, Some(h)) => {
                        batch.put_cf(
                            ledger,
                            lk::numbered(uid, lk::HOLD, *seq),
                            crate::codec::encode(h),
                        );
                        batch.put_cf(due, lk::due(lk::DUE_HOLD, h.deadline_ms, uid, *seq), []);
                    }
                    (Some(h), None) => {
                        batch.delete_cf(ledger, lk::numbered(uid, lk::HOLD, *seq));
                        batch.delete_cf(due, lk::due(lk::DUE_HOLD, h.deadline_ms, uid, *seq));
                    }
                    _ => {}
                }
            }
            for (txn_id, rec) in &w.txns {
                batch.put_cf(ledger, lk::txn(uid, txn_id), crate::codec::encode(rec));
            }
            for (day, (v, dirty)) in &w.growth {
                if !dirty {
                    continue;
                }
                if *v == 0 {
                    batch.delete_cf(ledger, lk::growth(uid, *day));
                } else {
                    batch.put_cf(ledger, lk::growth(uid, *day), crate::codec::encode(v));
                }
            }
            for ((day, rule), v) in &w.caps {
                batch.put_cf(ledger, lk::cap(uid, *day, *rule), crate::codec::encode(v));
            }
            for (seq, by) in &w.reversed {
                batch.put_cf(
                    ledger,
                    lk::numbered(uid, lk::REVERSED, *seq),
                    crate::codec::encode(by),
                );
            }
            if w.stored_review != w.account.review_at_ms {
                if let Some(r) = w.stored_review {
                    batch.delete_cf(due, lk::due(lk::DUE_REVIEW, r, uid, 0));
                }
                if let Some(r) = w.account.review_at_ms {
                    batch.put_cf(due, lk::due(lk::DUE_REVIEW, r, uid, 0), []);
                }
            }
            if w.stored_tier != w.account.tier {
                if let Some(t) = &w.stored_tier {
                    batch.merge_cf(metrics, lk::tier_set(t), BitmapDelta::remove(uid).encode());
                }
                if let Some(t) = &w.account.tier {
                    batch.merge_cf(metrics, lk::tier_set(t), BitmapDelta::add(uid).encode());
                }
            }
        }
        Ok(())
    }
}

impl Ctx<'_> {
    fn corrupt(&self, key: &[u8], reason: String) -> Error {
        CorruptionError {
            cf: Cf::Ledger.name(),
            what: "value",
            key: key.to_vec(),
            reason,
        }
        .into()
    }

    fn load(&self, user_id: u32) -> Result<Work> {
        let account: Account = self
            .store
            .get(Cf::Ledger, &lk::account(user_id))?
            .unwrap_or_default();
        Ok(Work {
            user_id,
            stored_review: account.review_at_ms,
            stored_tier: account.tier.clone(),
            account,
            changed: false,
            lots: BTreeMap::new(),
            holds: BTreeMap::new(),
            txns: BTreeMap::new(),
            growth: BTreeMap::new(),
            caps: BTreeMap::new(),
            entries: Vec::new(),
            tier_changes: Vec::new(),
            reversed: BTreeMap::new(),
        })
    }

    fn lot<'w>(&self, w: &'w mut Work, id: u32) -> Result<&'w mut LotWork> {
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

    fn hold<'w>(&self, w: &'w mut Work, seq: u32) -> Result<&'w mut HoldWork> {
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

    fn txn(&self, w: &Work, txn_id: &str) -> Result<Option<TxnRecord>> {
        if let Some(r) = w.txns.get(txn_id) {
            return Ok(Some(r.clone()));
        }
        self.store.get(Cf::Ledger, &lk::txn(w.user_id, txn_id))
    }

    fn reversed_by(&self, w: &Work, seq: u32) -> Result<Option<String>> {
        if let Some(by) = w.reversed.get(&seq) {
            return Ok(Some(by.clone()));
        }
        self.store
            .get(Cf::Ledger, &lk::numbered(w.user_id, lk::REVERSED, seq))
    }

    fn entry(&self, w: &Work, at_ms: i64, seq: u32) -> Result<LedgerEntry> {
        if let Some(e) = w.entries.iter().find(|e| e.seq == seq) {
            return Ok(e.clone());
        }
        let key = lk::timed(w.user_id, lk::ENTRY, at_ms, seq);
        self.store
            .get(Cf::Ledger, &key)?
            .ok_or_else(|| self.corrupt(&key, format!("entry {seq} is referenced but missing")))
    }

    fn cap(&self, w: &Work, day: i32, rule: u16) -> Result<i64> {
        if let Some(v) = w.caps.get(&(day, rule)) {
            return Ok(*v);
        }
        Ok(self
            .store
            .get(Cf::Ledger, &lk::cap(w.user_id, day, rule))?
            .unwrap_or(0))
    }

    /// Ids of open lots whose expiry lies in `[from, until)` (`None` expiry =
    /// `i64::MAX`), from the stored index and the session, in drawing order:
    /// soonest expiry first, then oldest lot.
    fn open_lots(&self, w: &mut Work, from: i64, until: Option<i64>) -> Result<Vec<u32>> {
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
    fn draw(&self, w: &mut Work, at_ms: i64, points: i64) -> Result<Vec<LotDraw>> {
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
    fn post(&self, w: &mut Work, d: Draft) -> Result<u32> {
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

    /// Expires what is left of lot `id` at `at_ms` (its unheld points).
    fn expire_lot(&self, w: &mut Work, id: u32, at_ms: i64) -> Result<i64> {
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
    fn expire_lots_through(&self, w: &mut Work, through: i64) -> Result<(u64, i64)> {
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
    fn expire_returned(&self, w: &mut Work, lots: &[u32], at_ms: i64) -> Result<(u64, i64)> {
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
    fn release(
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

    /// The open hold a capture or release names.
    fn open_hold(&self, w: &mut Work, hold_txn: &str) -> Result<Hold> {
        let rec = self
            .txn(w, hold_txn)?
            .ok_or_else(|| LedgerError::UnknownTxn {
                txn_id: hold_txn.to_owned(),
            })?;
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

    fn growth_add(&self, w: &mut Work, day: i32, delta: i64) -> Result<()> {
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

    /// Growth over the window ending on local day `day`, and the oldest day
    /// in it that holds growth.
    fn window(&self, w: &Work, day: i32) -> Result<(i64, Option<i32>)> {
        let window = self.settings.tiers.window_days as i32;
        let lo = day.saturating_sub(window - 1);
        let mut days: BTreeMap<i32, i64> = BTreeMap::new();
        let start = lk::growth(w.user_id, lo);
        let end = lk::growth(w.user_id, day.saturating_add(1));
        for item in self.store.range(Cf::Ledger, &start, Some(end))? {
            let (k, v) = item?;
            let d: [u8; 4] = k
                .get(crate::keys::USER_BYTES + 1..)
                .and_then(|s| s.try_into().ok())
                .ok_or_else(|| self.corrupt(&k, "growth key does not decode".into()))?;
            days.insert(
                crate::keys::day_from_asc(d),
                decode_value(Cf::Ledger, &k, &v)?,
            );
        }
        for (d, (v, _)) in w.growth.range(lo..=day) {
            days.insert(*d, *v);
        }
        let sum = days.values().sum();
        let oldest = days.iter().find(|(_, v)| **v != 0).map(|(d, _)| *d);
        Ok((sum, oldest))
    }

    /// Sets the account's tier as of `t_ms` (recording a change) and
    /// schedules the next review: the instant the oldest growth in the window
    /// leaves it.
    fn evaluate_tier(&self, w: &mut Work, t_ms: i64) -> Result<()> {
        let tiers = &self.settings.tiers;
        let (growth, oldest) = if tiers.levels.is_empty() {
            (0, None)
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
        let offset_ms = i64::from(self.offset_minutes) * 60_000;
        w.account.review_at_ms = match (&w.account.tier, oldest) {
            (Some(_), Some(o)) => {
                Some((i64::from(o) + i64::from(tiers.window_days)) * DAY_MS - offset_ms)
            }
            _ => None,
        };
        w.changed = true;
        Ok(())
    }

    /// Runs the tier reviews due at or before `t_ms`, each at its own time.
    fn catch_up(&self, w: &mut Work, t_ms: i64) -> Result<u64> {
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

    fn run(
        &self,
        w: &mut Work,
        txn_id: &str,
        at_ms: i64,
        op: &PointsOp,
        rule: Option<u16>,
    ) -> Result<PointsOutcome> {
        if let Some(rec) = self.txn(w, txn_id)? {
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
        super::check_expiry_follows(op, at_ms)?;
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

    fn reverse(&self, w: &mut Work, txn_id: &str, at_ms: i64, target: &str) -> Result<Reversal> {
        let rec = self
            .txn(w, target)?
            .ok_or_else(|| LedgerError::UnknownTxn {
                txn_id: target.to_owned(),
            })?;
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
            self.growth_add(w, local_day(original.at_ms, self.offset_minutes), -n.points)?;
            out.growth_changed = true;
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

    fn expire_account(&self, w: &mut Work, now_ms: i64, report: &mut ExpireReport) -> Result<()> {
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
}

struct Reversal {
    seq: u32,
    lots: Vec<LotDraw>,
    shortfall: i64,
    expired: i64,
    growth_changed: bool,
}

/// Lot moves of `draws`, scaled: `(-1, 0)` debits, `(-1, 1)` reserves,
/// `(0, -1)` debits reserved points.
fn moves(draws: &[LotDraw], remaining_sign: i64, held_sign: i64) -> Vec<LotMove> {
    draws
        .iter()
        .map(|x| LotMove {
            lot: x.lot,
            remaining_delta: remaining_sign * x.points,
            held_delta: held_sign * x.points,
        })
        .collect()
}
