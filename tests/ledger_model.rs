//! The ledger against a plain in-memory model (SPEC §4): random operation
//! sequences over two accounts — earns with and without expiry, redeems,
//! holds that are captured, released or time out, adjustments, reversals of
//! anything, retries of the same transaction, conflicting replays, late
//! (back-dated) operations and expiry runs at random clocks, each run twice.
//! After every step the outcome (or the exact error), the account, every lot
//! and every open hold must equal the model's; a refused operation must
//! leave the store byte-identical; `verify` must stay clean.

mod common;

use std::collections::BTreeMap;

use proptest::prelude::*;
use stickydb::ledger::{ExpireReport, Hold, Lot, LotDraw};
use stickydb::{Db, Error, LedgerError, PointsOp, PointsOutcome};

const USERS: [&str; 2] = ["ann", "bob"];
const T0: i64 = common::T0;

#[derive(Debug, Clone)]
enum Step {
    Earn {
        user: usize,
        points: i64,
        ttl: Option<i64>,
        late: i64,
    },
    Redeem {
        user: usize,
        points: i64,
        late: i64,
    },
    Hold {
        user: usize,
        points: i64,
        timeout: i64,
    },
    Capture {
        user: usize,
        pick: usize,
        late: i64,
    },
    Release {
        user: usize,
        pick: usize,
    },
    Adjust {
        user: usize,
        points: i64,
    },
    Reverse {
        user: usize,
        pick: usize,
    },
    Retry {
        pick: usize,
    },
    Conflict {
        pick: usize,
    },
    Expire {
        ahead: i64,
    },
    Advance(i64),
}

/// Times are multiples of this grid, so that operations often land exactly
/// on an expiry or a deadline: the boundaries are where rules go wrong.
const GRID_MS: i64 = 5;

fn grid(lo: i64, hi: i64) -> impl Strategy<Value = i64> + Clone {
    (lo..hi).prop_map(|n| n * GRID_MS)
}

fn late() -> impl Strategy<Value = i64> + Clone {
    prop_oneof![3 => Just(0i64), 1 => grid(1, 8)]
}

fn step() -> impl Strategy<Value = Step> {
    let user = 0..USERS.len();
    prop_oneof![
        4 => (user.clone(), 1..200i64, prop::option::of(grid(1, 16)), late())
            .prop_map(|(user, points, ttl, late)| Step::Earn { user, points, ttl, late }),
        3 => (user.clone(), 1..250i64, late())
            .prop_map(|(user, points, late)| Step::Redeem { user, points, late }),
        2 => (user.clone(), 1..150i64, grid(1, 12))
            .prop_map(|(user, points, timeout)| Step::Hold { user, points, timeout }),
        2 => (user.clone(), any::<usize>(), late())
            .prop_map(|(user, pick, late)| Step::Capture { user, pick, late }),
        1 => (user.clone(), any::<usize>()).prop_map(|(user, pick)| Step::Release { user, pick }),
        1 => (user.clone(), prop_oneof![-120..0i64, 1..120i64])
            .prop_map(|(user, points)| Step::Adjust { user, points }),
        2 => (user.clone(), any::<usize>()).prop_map(|(user, pick)| Step::Reverse { user, pick }),
        2 => any::<usize>().prop_map(|pick| Step::Retry { pick }),
        1 => any::<usize>().prop_map(|pick| Step::Conflict { pick }),
        2 => grid(0, 14).prop_map(|ahead| Step::Expire { ahead }),
        3 => grid(1, 5).prop_map(Step::Advance),
    ]
}

// ---------------------------------------------------------------- the model

#[derive(Debug, Clone, PartialEq)]
struct MHold {
    seq: u32,
    txn: String,
    points: i64,
    draws: Vec<(u32, i64)>,
    deadline: i64,
}

#[derive(Debug, Clone, Default)]
struct Account {
    exists: bool,
    balance: i64,
    held: i64,
    next_seq: u32,
    lots: BTreeMap<u32, Lot>,
    holds: BTreeMap<u32, MHold>,
    txns: BTreeMap<String, (PointsOp, PointsOutcome)>,
    reversed: BTreeMap<u32, String>,
}

type Res = Result<PointsOutcome, String>;

fn ledger_err(e: LedgerError) -> String {
    format!("{e:?}")
}

impl Account {
    fn post(&mut self, amount: i64, held: i64) -> u32 {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.balance += amount;
        self.held += held;
        assert!(self.balance >= 0 && self.held >= 0 && self.held <= self.balance);
        seq
    }

    fn new_lot(&mut self, seq: u32, at: i64, points: i64, expires: Option<i64>) {
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
    fn draw(&self, at: i64, points: i64) -> Result<Vec<(u32, i64)>, String> {
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

    fn expire_lot(&mut self, id: u32, at: i64) -> i64 {
        let r = self.lots[&id].remaining;
        let _ = at;
        if r > 0 {
            self.post(-r, 0);
            self.lots.get_mut(&id).unwrap().remaining = 0;
        }
        r
    }

    /// Returned points expire at once in lots past their expiry.
    fn expire_returned(&mut self, lots: &[u32], at: i64) -> (u64, i64) {
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

    fn release(&mut self, hold_seq: u32, at: i64) -> (u32, (u64, i64)) {
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

    fn expire_through(&mut self, t: i64, rep: &mut ExpireReport) {
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

    fn expire(&mut self, now: i64, rep: &mut ExpireReport) {
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

    fn open_hold(&self, hold_txn: &str) -> Result<MHold, String> {
        let Some((op, out)) = self.txns.get(hold_txn) else {
            return Err(ledger_err(LedgerError::UnknownTxn {
                txn_id: hold_txn.into(),
            }));
        };
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

    fn apply(&mut self, txn: &str, at: i64, op: &PointsOp) -> Res {
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
        let out = next.run(txn, at, op)?;
        next.exists = true;
        next.txns.insert(txn.into(), (op.clone(), out.clone()));
        *self = next;
        Ok(out)
    }

    fn run(&mut self, txn: &str, at: i64, op: &PointsOp) -> Res {
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
                let seq = self.post(0, *points);
                for (l, x) in &d {
                    let lot = self.lots.get_mut(l).unwrap();
                    lot.remaining -= x;
                    lot.held += x;
                }
                self.holds.insert(
                    seq,
                    MHold {
                        seq,
                        txn: txn.into(),
                        points: *points,
                        draws: d.clone(),
                        deadline: at + timeout_ms,
                    },
                );
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
                let out = if let PointsOp::Earn { .. } = top {
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
        Ok(PointsOutcome {
            txn_id: txn.into(),
            entry_seq: seq,
            at_ms: at,
            amount: self.balance - before,
            balance: self.balance,
            available: self.balance - self.held,
            lots: lots
                .into_iter()
                .map(|(lot, points)| LotDraw { lot, points })
                .collect(),
            shortfall,
            expired,
            replayed: false,
        })
    }
}

// ---------------------------------------------------------------- the check

fn db_res(r: stickydb::Result<PointsOutcome>) -> Res {
    match r {
        Ok(o) => Ok(o),
        Err(Error::Ledger(e)) => Err(ledger_err(e)),
        Err(Error::UnknownUser { .. }) => Err("UnknownUser".into()),
        Err(e) => panic!("unexpected error {e}"),
    }
}

fn compare(db: &Db, model: &[Account]) {
    for (u, m) in USERS.iter().zip(model) {
        if !m.exists {
            continue;
        }
        let a = db.account(u).unwrap().expect("account exists");
        assert_eq!(
            (a.balance, a.held),
            (m.balance, m.held),
            "{u}: balance, held"
        );
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

fn pick<T: Clone>(v: &[T], i: usize) -> Option<T> {
    (!v.is_empty()).then(|| v[i % v.len()].clone())
}

fn run(steps: Vec<Step>) {
    let (_dir, db) = common::open_temp();
    let mut model: Vec<Account> = vec![Account::default(); USERS.len()];
    // (user, txn, at, op) of every call that succeeded, for retries.
    let mut done: Vec<(usize, String, i64, PointsOp)> = Vec::new();
    let mut clock = T0;
    let mut n = 0u32;
    for s in steps {
        let mut call: Option<(usize, String, i64, PointsOp)> = None;
        let fresh = |n: &mut u32| {
            *n += 1;
            format!("t{n}")
        };
        let txns_of = |m: &Account, holds_only: bool| -> Vec<String> {
            m.txns
                .iter()
                .filter(|(_, (op, _))| !holds_only || matches!(op, PointsOp::Hold { .. }))
                .map(|(t, _)| t.clone())
                .collect()
        };
        match s {
            Step::Advance(ms) => clock += ms,
            Step::Expire { ahead } => {
                let now = clock + ahead;
                let mut want = ExpireReport::default();
                for m in model.iter_mut() {
                    m.expire(now, &mut want);
                }
                let got = db.expire_points(now).unwrap();
                assert_eq!(
                    (got.lots_expired, got.points_expired, got.holds_timed_out),
                    (want.lots_expired, want.points_expired, want.holds_timed_out),
                    "expire at +{}",
                    now - T0
                );
                // re-running with the same clock finds nothing and writes nothing
                let before = db.raw_dump().unwrap();
                let again = db.expire_points(now).unwrap();
                assert_eq!(again, ExpireReport::default());
                assert_eq!(before, db.raw_dump().unwrap());
            }
            Step::Earn {
                user,
                points,
                ttl,
                late,
            } => {
                let at = clock - late;
                let op = PointsOp::Earn {
                    points,
                    expires_at_ms: ttl.map(|t| at + t),
                    reason: "r".into(),
                };
                call = Some((user, fresh(&mut n), at, op));
            }
            Step::Redeem { user, points, late } => {
                call = Some((
                    user,
                    fresh(&mut n),
                    clock - late,
                    PointsOp::redeem(points, ""),
                ));
            }
            Step::Hold {
                user,
                points,
                timeout,
            } => {
                let op = PointsOp::Hold {
                    points,
                    timeout_ms: timeout,
                };
                call = Some((user, fresh(&mut n), clock, op));
            }
            Step::Capture {
                user,
                pick: p,
                late,
            } => {
                let holds = txns_of(&model[user], p % 3 != 0);
                let hold_txn = pick(&holds, p / 3).unwrap_or_else(|| "nope".into());
                call = Some((
                    user,
                    fresh(&mut n),
                    clock - late,
                    PointsOp::Capture { hold_txn },
                ));
            }
            Step::Release { user, pick: p } => {
                let holds = txns_of(&model[user], p % 3 != 0);
                let hold_txn = pick(&holds, p / 3).unwrap_or_else(|| "nope".into());
                call = Some((user, fresh(&mut n), clock, PointsOp::Release { hold_txn }));
            }
            Step::Adjust { user, points } => {
                let op = PointsOp::Adjust {
                    points,
                    reason: "fix".into(),
                };
                call = Some((user, fresh(&mut n), clock, op));
            }
            Step::Reverse { user, pick: p } => {
                let txn = pick(&txns_of(&model[user], false), p).unwrap_or_else(|| "nope".into());
                call = Some((user, fresh(&mut n), clock, PointsOp::Reverse { txn }));
            }
            Step::Retry { pick: p } => {
                // the same call again, possibly stamped later
                if let Some((u, t, at, op)) = pick(&done, p) {
                    call = Some((u, t, at.max(clock), op));
                }
            }
            Step::Conflict { pick: p } => {
                if let Some((u, t, at, op)) = pick(&done, p) {
                    let other = match op {
                        PointsOp::Redeem { points, .. } => PointsOp::redeem(points + 1, ""),
                        _ => PointsOp::redeem(1, "different"),
                    };
                    call = Some((u, t, at, other));
                }
            }
        }
        let Some((user, txn, at, op)) = call else {
            compare(&db, &model);
            continue;
        };
        let before = db.raw_dump().unwrap();
        let want = model[user].apply(&txn, at, &op);
        let got = db_res(db.points(USERS[user], &txn, at, &op));
        assert_eq!(got, want, "{} {txn} at +{} {op:?}", USERS[user], at - T0);
        match &got {
            Ok(o) if !o.replayed => done.push((user, txn, at, op)),
            // refused or replayed: not one byte changed
            _ => assert_eq!(before, db.raw_dump().unwrap(), "{txn} changed the store"),
        }
        compare(&db, &model);
    }
    common::assert_clean(&db);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn ledger_matches_model(steps in prop::collection::vec(step(), 1..60)) {
        run(steps);
    }
}

#[test]
fn verify_clean_after_every_kind_of_entry() {
    use Step::*;
    run(vec![
        Earn {
            user: 0,
            points: 100,
            ttl: Some(10),
            late: 0,
        },
        Earn {
            user: 0,
            points: 50,
            ttl: None,
            late: 0,
        },
        Hold {
            user: 0,
            points: 120,
            timeout: 30,
        },
        Advance(5),
        Redeem {
            user: 0,
            points: 20,
            late: 0,
        },
        Expire { ahead: 40 },
        Reverse { user: 0, pick: 0 },
        Adjust {
            user: 0,
            points: -10,
        },
        Retry { pick: 1 },
        Conflict { pick: 0 },
    ]);
}
