//! An in-memory model of the loyalty ledger as docs/ledger.md states it
//! (lots drawn soonest-expiring first, expiry, holds and their timeouts,
//! replays and conflicts, adjustments, reversals, and an identity merge's
//! transfer as docs/identity.md#ledger states it), written independently
//! of the engine, and the comparison of one account with the store. Shared
//! by `tests/ledger_model.rs` and the `engine_model` fuzz target.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};

use stickydb::ledger::{EarnRule, ExpireReport, Hold, Lot, LotDraw, RulePoints, TierChange, Tiers};
use stickydb::{Db, Error, LedgerError, PointsOp, PointsOutcome};

// ---------------------------------------------------------------- the model

#[derive(Debug, Clone, PartialEq)]
pub struct MHold {
    pub seq: u32,
    pub txn: String,
    pub points: i64,
    pub draws: Vec<(u32, i64)>,
    pub deadline: i64,
}

/// Which purchase holds the first-order reward, its generation and the
/// credits paid for it.
#[derive(Debug, Clone, PartialEq)]
pub struct MFirst {
    pub ts: i64,
    pub seq: u32,
    pub generation: u32,
    pub paid: Vec<String>,
}

#[derive(Debug, Clone, Default)]
pub struct Account {
    pub exists: bool,
    pub balance: i64,
    pub held: i64,
    pub next_seq: u32,
    pub lots: BTreeMap<u32, Lot>,
    pub holds: BTreeMap<u32, MHold>,
    pub txns: BTreeMap<String, (PointsOp, PointsOutcome)>,
    pub reversed: BTreeMap<u32, String>,
    /// Events recorded for the user: the next event's sequence number.
    pub events: u32,
    /// (rule index, local day) → points that rule credited that day.
    pub rule_days: BTreeMap<(usize, i64), i64>,
    /// The store's tiers (none by default).
    pub tiers: Tiers,
    /// Local day → points earned that day (earns and rule credits, minus
    /// reversed earns): the growth value's terms.
    pub growth: BTreeMap<i64, i64>,
    pub tier: Option<String>,
    pub tier_history: Vec<TierChange>,
    /// When the oldest growth in the window leaves it (only with a tier).
    pub review_at: Option<i64>,
    /// The latest time the account has seen.
    pub clock: i64,
    /// Set by an operation that changed the growth value.
    pub growth_changed: bool,
    /// The user's events: (instant, sequence number) → (event id, kind,
    /// amount), in the timeline's order.
    pub timeline: BTreeMap<(i64, u32), (String, String, Option<i64>)>,
    /// The first-order reward's holder (docs/ledger.md#first-order-and-campaign-rewards).
    pub first: Option<MFirst>,
    /// Caller transactions a merge moved in: they only replay.
    pub moved: BTreeSet<String>,
    /// Lots a merge moved in (reversing their credit leaves growth alone).
    pub transferred: BTreeSet<u32>,
}

const DAY_MS: i64 = 86_400_000;

pub type Res = Result<PointsOutcome, String>;

/// What rule `r` credits for an event of `amount`.
fn rule_points(r: &EarnRule, amount: Option<i64>) -> i64 {
    match r.points {
        RulePoints::Fixed(n) => n,
        RulePoints::PerAmount { points, per_minor } => amount
            .filter(|a| *a > 0)
            .map_or(0, |a| a * points / per_minor),
    }
}

pub fn ledger_err(e: LedgerError) -> String {
    format!("{e:?}")
}

impl Account {
    pub fn post(&mut self, amount: i64, held: i64) -> u32 {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.balance += amount;
        self.held += held;
        assert!(self.balance >= 0 && self.held >= 0 && self.held <= self.balance);
        seq
    }

    pub fn new_lot(&mut self, seq: u32, at: i64, points: i64, expires: Option<i64>) {
        self.lots.insert(
            seq,
            Lot {
                id: seq,
                earned_at_ms: at,
                earned: points,
                remaining: points,
                held: 0,
                expires_at_ms: expires,
            },
        );
    }

    /// Lots to draw `points` from at `at`, or the error.
    pub fn draw(&self, at: i64, points: i64) -> Result<Vec<(u32, i64)>, String> {
        let mut cands: Vec<&Lot> = self
            .lots
            .values()
            .filter(|l| l.remaining > 0 && l.expires_at_ms.is_none_or(|e| e > at))
            .collect();
        cands.sort_by_key(|l| (l.expires_at_ms.unwrap_or(i64::MAX), l.id));
        let available: i64 = cands.iter().map(|l| l.remaining).sum();
        if available < points {
            return Err(ledger_err(LedgerError::InsufficientPoints {
                requested: points,
                available,
            }));
        }
        let mut left = points;
        let mut out = Vec::new();
        for l in cands {
            if left == 0 {
                break;
            }
            let take = l.remaining.min(left);
            out.push((l.id, take));
            left -= take;
        }
        Ok(out)
    }

    pub fn expire_lot(&mut self, id: u32, at: i64) -> i64 {
        let r = self.lots[&id].remaining;
        let _ = at;
        if r > 0 {
            self.post(-r, 0);
            self.lots.get_mut(&id).unwrap().remaining = 0;
        }
        r
    }

    /// Returned points expire at once in lots past their expiry.
    pub fn expire_returned(&mut self, lots: &[u32], at: i64) -> (u64, i64) {
        let (mut n, mut p) = (0, 0);
        for &id in lots {
            if self.lots[&id].expires_at_ms.is_some_and(|e| e <= at) {
                let x = self.expire_lot(id, at);
                if x > 0 {
                    n += 1;
                    p += x;
                }
            }
        }
        (n, p)
    }

    pub fn release(&mut self, hold_seq: u32, at: i64) -> (u32, (u64, i64)) {
        let h = self.holds.remove(&hold_seq).unwrap();
        let seq = self.post(0, -h.points);
        for (lot, x) in &h.draws {
            let l = self.lots.get_mut(lot).unwrap();
            l.remaining += x;
            l.held -= x;
        }
        let ids: Vec<u32> = h.draws.iter().map(|d| d.0).collect();
        (seq, self.expire_returned(&ids, at))
    }

    pub fn expire_through(&mut self, t: i64, rep: &mut ExpireReport) {
        let mut ids: Vec<(i64, u32)> = self
            .lots
            .values()
            .filter(|l| l.expires_at_ms.is_some_and(|e| e <= t) && l.remaining > 0)
            .map(|l| (l.expires_at_ms.unwrap(), l.id))
            .collect();
        ids.sort();
        for (e, id) in ids {
            let p = self.expire_lot(id, e);
            rep.lots_expired += 1;
            rep.points_expired += p;
        }
    }

    pub fn expire(&mut self, now: i64, rep: &mut ExpireReport) {
        let seq_before = self.next_seq;
        let tiers_before = self.tier_history.len();
        self.expire_holds_and_lots(now, rep);
        let reviews = self.catch_up(now);
        rep.tier_changes += (self.tier_history.len() - tiers_before) as u64;
        // an account the run changed has seen `now`
        if self.next_seq != seq_before || reviews > 0 {
            self.clock = self.clock.max(now);
        }
    }

    fn expire_holds_and_lots(&mut self, now: i64, rep: &mut ExpireReport) {
        let mut due: Vec<(i64, u32)> = self
            .holds
            .values()
            .filter(|h| h.deadline <= now)
            .map(|h| (h.deadline, h.seq))
            .collect();
        due.sort();
        for (deadline, seq) in due {
            self.expire_through(deadline, rep);
            let (_, (n, p)) = self.release(seq, deadline);
            rep.holds_timed_out += 1;
            rep.lots_expired += n;
            rep.points_expired += p;
        }
        self.expire_through(now, rep);
    }

    pub fn open_hold(&self, hold_txn: &str) -> Result<MHold, String> {
        let Some((op, out)) = self.txns.get(hold_txn) else {
            return Err(ledger_err(LedgerError::UnknownTxn {
                txn_id: hold_txn.into(),
            }));
        };
        if self.moved.contains(hold_txn) {
            // closed when it moved (open ones were re-created under their
            // own records)
            return Err(ledger_err(LedgerError::HoldNotOpen {
                txn_id: hold_txn.into(),
            }));
        }
        if !matches!(op, PointsOp::Hold { .. }) {
            return Err(ledger_err(LedgerError::NotAHold {
                txn_id: hold_txn.into(),
            }));
        }
        self.holds.get(&out.entry_seq).cloned().ok_or_else(|| {
            ledger_err(LedgerError::HoldNotOpen {
                txn_id: hold_txn.into(),
            })
        })
    }

    fn tier_for(&self, growth: i64) -> Option<String> {
        let mut best = None;
        for l in &self.tiers.levels {
            if growth >= l.min_growth {
                best = Some(l.name.clone());
            }
        }
        best
    }

    /// Sets the tier as of `t` from the growth of the window ending on t's
    /// local day (recording a change, which takes an entry number) and
    /// schedules the review at the midnight the oldest growth leaves it.
    fn evaluate_tier(&mut self, t: i64) {
        let window = i64::from(self.tiers.window_days);
        let day = t.div_euclid(DAY_MS);
        let days = self.growth.range(day - window + 1..=day);
        let growth: i64 = days.clone().map(|(_, v)| v).sum();
        let oldest = days.clone().find(|(_, v)| **v != 0).map(|(d, _)| *d);
        let new = self.tier_for(growth);
        if new != self.tier {
            self.next_seq += 1;
            self.tier_history.push(TierChange {
                at_ms: t,
                from: self.tier.clone(),
                to: new.clone(),
                growth,
            });
            self.tier = new;
        }
        self.review_at = match (&self.tier, oldest) {
            (Some(_), Some(o)) => Some((o + window) * DAY_MS),
            _ => None,
        };
    }

    /// Runs the reviews due at or before `t`, each at its own time; returns
    /// how many ran.
    fn catch_up(&mut self, t: i64) -> usize {
        let mut ran = 0;
        while let Some(r) = self.review_at.filter(|r| *r <= t) {
            self.evaluate_tier(r);
            ran += 1;
        }
        ran
    }

    /// One operation at the account's clock: due reviews first, then the
    /// operation, then the tier if growth changed.
    fn run_tiered(&mut self, txn: &str, at: i64, op: &PointsOp) -> Res {
        let t = self.clock.max(at);
        self.catch_up(t);
        self.growth_changed = false;
        let out = self.run(txn, at, op)?;
        if self.growth_changed && !self.tiers.levels.is_empty() {
            self.evaluate_tier(t);
        }
        self.clock = t;
        Ok(out)
    }

    pub fn apply(&mut self, txn: &str, at: i64, op: &PointsOp) -> Res {
        if let Some((o, out)) = self.txns.get(txn) {
            if o == op {
                let mut out = out.clone();
                out.replayed = true;
                return Ok(out);
            }
            return Err(ledger_err(LedgerError::TxnConflict { txn_id: txn.into() }));
        }
        let credit = matches!(op, PointsOp::Earn { .. })
            || matches!(op, PointsOp::Adjust { points, .. } if *points > 0);
        if !self.exists && !credit {
            return Err("UnknownUser".into());
        }
        // Work on a copy: a refused operation must change nothing.
        let mut next = self.clone();
        let out = next.run_tiered(txn, at, op)?;
        next.exists = true;
        next.txns.insert(txn.into(), (op.clone(), out.clone()));
        *self = next;
        Ok(out)
    }

    /// An event of `kind` recorded for this user at `at` (a UTC store): every
    /// matching rule credits its points, capped per rule and local day, as
    /// an earn with the transaction id `event:<seq>:<rule>` (docs/ledger.md,
    /// "Earning rules").
    pub fn event(
        &mut self,
        rules: &[EarnRule],
        id: &str,
        kind: &str,
        at: i64,
        amount: Option<i64>,
    ) {
        let seq = self.events;
        self.events += 1;
        let stored = (id.to_owned(), kind.to_owned(), amount);
        self.timeline.insert((at, seq), stored);
        self.exists = true;
        let day = at.div_euclid(DAY_MS);
        for (i, r) in rules.iter().enumerate() {
            if r.kind != kind {
                continue;
            }
            let base = rule_points(r, amount);
            let total = self.rule_days.entry((i, day)).or_default();
            let credit = match r.daily_cap_points {
                Some(cap) => base.min(cap - *total).max(0),
                None => base,
            };
            *total += credit;
            if credit > 0 {
                let txn = format!("event:{seq}:{i}");
                let op = PointsOp::Earn {
                    points: credit,
                    expires_at_ms: r.expires_after_days.map(|d| at + i64::from(d) * DAY_MS),
                    reason: String::new(),
                };
                let out = self
                    .run_tiered(&txn, at, &op)
                    .expect("an earn is never refused");
                self.txns.insert(txn, (op, out));
            }
        }
        if kind == "purchase" {
            self.first_order(rules, seq, at, amount);
        }
    }

    /// A purchase's first-order reward: paid when no older purchase holds
    /// it; an older one arriving late takes it over (the holder's credits
    /// reversed under `<txn>:reverse` unless reversed by hand already, the
    /// next generation paid).
    pub fn first_order(&mut self, rules: &[EarnRule], seq: u32, at: i64, amount: Option<i64>) {
        if !rules.iter().any(|r| r.kind == "reward:first_order") {
            return;
        }
        if let Some(h) = &self.first {
            if (h.ts, h.seq) <= (at, seq) {
                return;
            }
        }
        let generation = match self.first.take() {
            Some(h) => {
                for target in &h.paid {
                    self.reverse_credit(target, at);
                }
                h.generation + 1
            }
            None => 0,
        };
        let mut paid = Vec::new();
        for (i, r) in rules.iter().enumerate() {
            if r.kind != "reward:first_order" {
                continue;
            }
            let points = rule_points(r, amount);
            if points <= 0 {
                continue;
            }
            *self
                .rule_days
                .entry((i, at.div_euclid(DAY_MS)))
                .or_default() += points;
            let txn = format!("event:first:{i}:{generation}:");
            let op = PointsOp::Earn {
                points,
                expires_at_ms: r.expires_after_days.map(|d| at + i64::from(d) * DAY_MS),
                reason: format!("rule {i}: {}", r.kind),
            };
            let out = self
                .run_tiered(&txn, at, &op)
                .expect("an earn is never refused");
            self.txns.insert(txn.clone(), (op, out));
            paid.push(txn);
        }
        self.first = Some(MFirst {
            ts: at,
            seq,
            generation,
            paid,
        });
    }

    /// Takes back a reward credit when it is live: recorded here (not
    /// moved in) and not reversed by someone else.
    fn reverse_credit(&mut self, target: &str, at: i64) {
        let Some((_, out)) = self.txns.get(target) else {
            return;
        };
        let reverse = format!("{target}:reverse");
        if self.moved.contains(target)
            || self.txns.contains_key(&reverse)
            || self.reversed.contains_key(&out.entry_seq)
        {
            return;
        }
        let op = PointsOp::Reverse {
            txn: target.to_owned(),
        };
        let out = self
            .run_tiered(&reverse, at, &op)
            .expect("a live credit reverses");
        self.txns.insert(reverse, (op, out));
    }

    pub fn run(&mut self, txn: &str, at: i64, op: &PointsOp) -> Res {
        let before = self.balance;
        let (mut shortfall, mut expired) = (0, 0);
        let (seq, lots): (u32, Vec<(u32, i64)>) = match op {
            PointsOp::Earn {
                points,
                expires_at_ms,
                ..
            } => {
                let seq = self.post(*points, 0);
                self.new_lot(seq, at, *points, *expires_at_ms);
                *self.growth.entry(at.div_euclid(DAY_MS)).or_default() += points;
                self.growth_changed = true;
                (seq, vec![(seq, *points)])
            }
            PointsOp::Redeem { points, .. } => {
                let d = self.draw(at, *points)?;
                let seq = self.post(-points, 0);
                for (l, x) in &d {
                    self.lots.get_mut(l).unwrap().remaining -= x;
                }
                (seq, d)
            }
            PointsOp::Hold { points, timeout_ms } => {
                let d = self.draw(at, *points)?;
                let seq = self.reserve(txn, *points, &d, at + timeout_ms);
                (seq, d)
            }
            PointsOp::Capture { hold_txn } => {
                let h = self.open_hold(hold_txn)?;
                if at >= h.deadline {
                    return Err(ledger_err(LedgerError::HoldTimedOut {
                        txn_id: hold_txn.clone(),
                        deadline_ms: h.deadline,
                        at_ms: at,
                    }));
                }
                let seq = self.post(-h.points, -h.points);
                for (l, x) in &h.draws {
                    self.lots.get_mut(l).unwrap().held -= x;
                }
                self.holds.remove(&h.seq);
                (seq, h.draws)
            }
            PointsOp::Release { hold_txn } => {
                let h = self.open_hold(hold_txn)?;
                let (seq, (_, p)) = self.release(h.seq, at);
                expired = p;
                (seq, h.draws)
            }
            PointsOp::Adjust { points, .. } if *points > 0 => {
                let seq = self.post(*points, 0);
                self.new_lot(seq, at, *points, None);
                (seq, vec![(seq, *points)])
            }
            PointsOp::Adjust { points, .. } => {
                let d = self.draw(at, -points)?;
                let seq = self.post(*points, 0);
                for (l, x) in &d {
                    self.lots.get_mut(l).unwrap().remaining -= x;
                }
                (seq, d)
            }
            PointsOp::Reverse { txn: target } => {
                let Some((top, tout)) = self.txns.get(target).cloned() else {
                    return Err(ledger_err(LedgerError::UnknownTxn {
                        txn_id: target.clone(),
                    }));
                };
                if self.moved.contains(target) {
                    return Err(ledger_err(LedgerError::NotReversible {
                        txn_id: target.clone(),
                        op: "operation moved in by a merge",
                    }));
                }
                if !matches!(
                    top,
                    PointsOp::Earn { .. } | PointsOp::Redeem { .. } | PointsOp::Capture { .. }
                ) {
                    return Err(ledger_err(LedgerError::NotReversible {
                        txn_id: target.clone(),
                        op: top.name(),
                    }));
                }
                if let Some(by) = self.reversed.get(&tout.entry_seq) {
                    return Err(ledger_err(LedgerError::AlreadyReversed {
                        txn_id: target.clone(),
                        by: by.clone(),
                    }));
                }
                let out = if let PointsOp::Earn { points, .. } = top {
                    // the whole earn leaves the growth of its own day (a
                    // moved credit never counted here)
                    if !self.transferred.contains(&tout.entry_seq) {
                        *self
                            .growth
                            .entry(tout.at_ms.div_euclid(DAY_MS))
                            .or_default() -= points;
                        self.growth_changed = true;
                    }
                    let lot = self.lots.get(&tout.entry_seq).unwrap().clone();
                    let left = lot.remaining;
                    let seq = self.post(-left, 0);
                    self.lots.get_mut(&lot.id).unwrap().remaining = 0;
                    shortfall = lot.earned - left;
                    let lots = if left > 0 {
                        vec![(lot.id, left)]
                    } else {
                        vec![]
                    };
                    (seq, lots)
                } else {
                    let mut back = Vec::new();
                    for d in &tout.lots {
                        if self.reversed.contains_key(&d.lot) {
                            shortfall += d.points;
                        } else {
                            back.push((d.lot, d.points));
                        }
                    }
                    let total: i64 = back.iter().map(|b| b.1).sum();
                    let seq = self.post(total, 0);
                    for (l, x) in &back {
                        self.lots.get_mut(l).unwrap().remaining += x;
                    }
                    let ids: Vec<u32> = back.iter().map(|b| b.0).collect();
                    expired = self.expire_returned(&ids, at).1;
                    (seq, back)
                };
                self.reversed.insert(tout.entry_seq, txn.into());
                out
            }
        };
        let mut out = self.outcome(txn, (seq, at), self.balance - before, lots);
        out.shortfall = shortfall;
        out.expired = expired;
        Ok(out)
    }
}

// ---------------------------------------------------------------- the merge

/// A once-per-user or streak reward's credit or its reversal: it stays
/// with the merged user's ledger.
fn is_reward(txn: &str) -> bool {
    txn.starts_with("event:first:") || txn.starts_with("event:streak:")
}

/// A caller's transaction (not a rule credit, not a reward's).
fn is_caller(txn: &str) -> bool {
    rule_credit(txn).is_none() && !is_reward(txn)
}

/// `event:<seq>:<rule>`: rule `rule`'s credit for event `seq`.
fn rule_credit(txn: &str) -> Option<(u32, u16)> {
    let (seq, rule) = txn.strip_prefix("event:")?.split_once(':')?;
    Some((seq.parse().ok()?, rule.parse().ok()?))
}

impl Account {
    /// Whether the user has an event with this id.
    pub fn has_event(&self, id: &str) -> bool {
        self.timeline.values().any(|(x, _, _)| x == id)
    }

    /// Whether merging `from` into this account must be refused: a caller
    /// transaction id both used (`MergeError::TxnClash`).
    pub fn clashes(&self, from: &Account) -> bool {
        from.txns
            .keys()
            .any(|t| is_caller(t) && self.txns.contains_key(t))
    }

    /// `from` merged into this account (docs/identity.md#ledger): its
    /// events are recorded again here, newest first (a duplicate by id
    /// is dropped; rules do not credit them again); each open lot moves as
    /// a `Transfer` at its earn time, a rule credit becoming the credit of
    /// the moved event (the credit of a dropped duplicate stays behind,
    /// unless a hold reserves some of it); open holds are re-created on the
    /// moved lots; every other caller transaction only replays here; the
    /// clock moves to the later of the two, running the reviews due.
    /// The caller checked [`Account::clashes`].
    pub fn merge_from(&mut self, from: &Account, rules: &[EarnRule], reason: &str) {
        let mut renumbered: BTreeMap<u32, u32> = BTreeMap::new();
        let mut moved = Vec::new();
        // (the timeline lists the newest first: instant, then arrival, descending)
        for (&(ts, old), ev) in from.timeline.iter().rev() {
            if self.has_event(&ev.0) {
                continue;
            }
            let seq = self.events;
            self.events += 1;
            self.timeline.insert((ts, seq), ev.clone());
            renumbered.insert(old, seq);
            moved.push((ts, seq, ev.1.clone(), ev.2));
        }
        self.exists = true;
        // the moved events' rewards, oldest first (the merged user's stay
        // behind)
        moved.sort_by_key(|m| (m.0, m.1));
        for (ts, seq, kind, amount) in moved {
            if kind == "purchase" {
                self.first_order(rules, seq, ts, amount);
            }
        }
        let open: Vec<&Lot> = from
            .lots
            .values()
            .filter(|l| l.remaining + l.held > 0)
            .collect();
        let caller: Vec<(&String, &(PointsOp, PointsOutcome))> =
            from.txns.iter().filter(|(t, _)| is_caller(t)).collect();
        if open.is_empty() && caller.is_empty() {
            return;
        }
        let t = self.clock.max(from.clock);
        self.catch_up(t);
        let lot_ids = self.move_lots(from, &open, &renumbered, reason);
        for h in from.holds.values() {
            self.move_hold(from, h, &lot_ids);
        }
        for (txn, rec) in caller {
            if !from.holds.values().any(|h| &h.txn == txn) {
                self.txns.insert(txn.clone(), rec.clone());
                self.moved.insert(txn.clone());
            }
        }
        self.clock = t;
    }

    /// The `Transfer` entries of a merge; returns old lot id → new lot id.
    fn move_lots(
        &mut self,
        from: &Account,
        open: &[&Lot],
        renumbered: &BTreeMap<u32, u32>,
        reason: &str,
    ) -> BTreeMap<u32, u32> {
        // lot id → (event sequence number, rule) of the rule credit it is
        let credited: BTreeMap<u32, (u32, u16)> = from
            .txns
            .iter()
            .filter_map(|(t, (_, out))| Some((out.entry_seq, rule_credit(t)?)))
            .collect();
        // lots of the merged user's rewards: they stay, but for what an
        // open hold reserves of them
        let rewards: BTreeSet<u32> = from
            .txns
            .iter()
            .filter(|(t, (op, _))| is_reward(t) && matches!(op, PointsOp::Earn { .. }))
            .map(|(_, (_, out))| out.entry_seq)
            .collect();
        let mut lot_ids = BTreeMap::new();
        for lot in open {
            let reward = rewards.contains(&lot.id);
            if reward && lot.held == 0 {
                continue;
            }
            let points = if reward {
                lot.held
            } else {
                lot.remaining + lot.held
            };
            let credit = match credited.get(&lot.id) {
                Some((event, rule)) => match renumbered.get(event) {
                    Some(seq) => Some(format!("event:{seq}:{rule}")),
                    None if lot.held == 0 => continue,
                    None => None,
                },
                None => None,
            };
            let seq = self.post(points, 0);
            self.new_lot(seq, lot.earned_at_ms, points, lot.expires_at_ms);
            self.transferred.insert(seq);
            lot_ids.insert(lot.id, seq);
            if let Some(txn) = credit {
                let out = self.outcome(&txn, (seq, lot.earned_at_ms), points, vec![(seq, points)]);
                let op = PointsOp::Earn {
                    points,
                    expires_at_ms: lot.expires_at_ms,
                    reason: reason.to_owned(),
                };
                self.txns.insert(txn, (op, out));
            }
        }
        lot_ids
    }

    /// An open hold of a merged account, re-created on the moved lots under
    /// its own transaction id, deadline and time.
    fn move_hold(&mut self, from: &Account, h: &MHold, lot_ids: &BTreeMap<u32, u32>) {
        let draws: Vec<(u32, i64)> = h.draws.iter().map(|(l, x)| (lot_ids[l], *x)).collect();
        let (op, was) = from.txns[&h.txn].clone();
        let seq = self.reserve(&h.txn, h.points, &draws, h.deadline);
        let out = self.outcome(&h.txn, (seq, was.at_ms), 0, draws);
        self.txns.insert(h.txn.clone(), (op, out));
    }

    /// Opens hold `txn` of `points` on `draws` (lot, points) until
    /// `deadline`: the entry, the lots' reserved points, the hold; returns
    /// its entry number.
    fn reserve(&mut self, txn: &str, points: i64, draws: &[(u32, i64)], deadline: i64) -> u32 {
        let seq = self.post(0, points);
        for (l, x) in draws {
            let lot = self.lots.get_mut(l).unwrap();
            lot.remaining -= x;
            lot.held += x;
        }
        let hold = MHold {
            seq,
            txn: txn.into(),
            points,
            draws: draws.to_vec(),
            deadline,
        };
        self.holds.insert(seq, hold);
        seq
    }

    /// An operation's outcome as of the account now: entry `seq` at `at`,
    /// `amount` posted, `lots` drawn or credited.
    fn outcome(
        &self,
        txn: &str,
        (seq, at): (u32, i64),
        amount: i64,
        lots: Vec<(u32, i64)>,
    ) -> PointsOutcome {
        // (the outcome type may gain fields: built from its default)
        let mut out = PointsOutcome::default();
        out.txn_id = txn.into();
        out.entry_seq = seq;
        out.at_ms = at;
        out.amount = amount;
        out.balance = self.balance;
        out.available = self.balance - self.held;
        out.lots = lots
            .into_iter()
            .map(|(lot, points)| LotDraw { lot, points })
            .collect();
        out
    }
}

// ---------------------------------------------------------------- the check

pub fn db_res(r: stickydb::Result<PointsOutcome>) -> Res {
    match r {
        Ok(o) => Ok(o),
        Err(Error::Ledger(e)) => Err(ledger_err(e)),
        Err(Error::UnknownUser { .. }) => Err("UnknownUser".into()),
        Err(e) => panic!("unexpected error {e}"),
    }
}

pub fn compare<'a>(db: &Db, model: impl IntoIterator<Item = (&'a str, &'a Account)>) {
    for (u, m) in model {
        if !m.exists {
            continue;
        }
        // A user the store knows (events, profiles) has no account until
        // its first entry: the model must then hold nothing either.
        let Some(a) = db.account(u).unwrap() else {
            assert!(
                m.next_seq == 0 && m.lots.is_empty() && m.holds.is_empty(),
                "{u}: the model has entries, the store no account"
            );
            continue;
        };
        assert_eq!(
            (a.balance, a.held),
            (m.balance, m.held),
            "{u}: balance, held"
        );
        assert_eq!(
            (&a.tier, a.review_at_ms, a.clock_ms, a.next_seq),
            (&m.tier, m.review_at, m.clock, m.next_seq),
            "{u}: tier, review, clock, next entry"
        );
        // the store lists the newest change first
        let want: Vec<TierChange> = m.tier_history.iter().rev().cloned().collect();
        assert_eq!(db.tier_history(u).unwrap(), want, "{u}: tier history");
        let lots = db.lots(u).unwrap();
        let want: Vec<Lot> = m.lots.values().cloned().collect();
        assert_eq!(lots, want, "{u}: lots");
        let holds = db.holds(u).unwrap();
        let want: Vec<Hold> = m
            .holds
            .values()
            .map(|h| Hold {
                seq: h.seq,
                txn_id: h.txn.clone(),
                points: h.points,
                draws: h
                    .draws
                    .iter()
                    .map(|&(lot, points)| LotDraw { lot, points })
                    .collect(),
                deadline_ms: h.deadline,
            })
            .collect();
        assert_eq!(holds, want, "{u}: holds");
        // balance = sum of entries, newest first
        let entries = db.ledger(u, i64::MIN, i64::MAX, 100_000).unwrap();
        let sum: i64 = entries.iter().map(|e| e.amount).sum();
        assert_eq!(sum, m.balance, "{u}: entries sum to the balance");
        assert!(entries
            .windows(2)
            .all(|w| (w[0].at_ms, w[0].seq) > (w[1].at_ms, w[1].seq)));
    }
}
