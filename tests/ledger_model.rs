//! The ledger against a plain in-memory model (SPEC §4): random operation
//! sequences over two accounts — earns with and without expiry, redeems,
//! holds that are captured, released or time out, adjustments, reversals of
//! anything, retries of the same transaction, conflicting replays, late
//! (back-dated) operations and expiry runs at random clocks, each run twice;
//! events that earn through rules (a per-amount rule and a fixed rule with a
//! daily cap, both with expiring credits), a first-order reward (late older
//! purchases take it over; a credit reversed by hand stays reversed),
//! duplicate deliveries that earn nothing, and days passing so caps
//! restart and rule credits expire; tiers
//! over a 2-day window (upgrades on earning, downgrades when growth leaves
//! the window, at reviews run before a later write or by an expiry run);
//! identity merges of one account into another (lots, holds, rule credits
//! and transaction records move as docs/identity.md#ledger says; the same
//! event delivered under both ids counts once, and so does its credit; a
//! transaction id both used refuses the merge), after which every name,
//! merged or not, answers with the account it resolves to.
//! Every account's tier, tier history, next review, clock and entry count
//! must equal the model's too.
//! After every step the outcome (or the exact error), the account, every lot
//! and every open hold must equal the model's; a refused operation must
//! leave the store byte-identical; `verify` must stay clean.

mod common;
#[path = "model/ledger.rs"]
mod model;

use model::{compare, db_res, Account};
use proptest::prelude::*;
use stickydb::ledger::{ExpireReport, LedgerSettings, TierLevel, Tiers};
use stickydb::{Error, Event, MergeError, MergeOptions, PointsOp, RecordOutcome};

const USERS: [&str; 3] = ["ann", "bob", "cat"];
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
    /// An event (sign_in, purchase or view); `dup` re-delivers the user's
    /// last event instead.
    Event {
        user: usize,
        kind: usize,
        amount: i64,
        late: i64,
        dup: bool,
    },
    NextDay,
    /// `other`'s last event delivered under `user`'s name too (the same
    /// event reaching both ids, as a merge later finds it).
    Echo {
        user: usize,
        other: usize,
    },
    /// `from` merged into `into` (forced: both are members).
    Merge {
        from: usize,
        into: usize,
    },
    /// An earn under a transaction id another user used: a merge of the two
    /// is refused.
    Borrow {
        user: usize,
        pick: usize,
    },
}

/// The sample rules (a per-amount purchase rule, a capped sign-in rule)
/// and a first-order reward with expiring credits.
fn rules() -> Vec<stickydb::ledger::EarnRule> {
    let mut rules = common::sample_earn_rules();
    rules.push(stickydb::ledger::EarnRule {
        kind: stickydb::ledger::FIRST_ORDER_KIND.into(),
        points: stickydb::ledger::RulePoints::Fixed(40),
        daily_cap_points: None,
        expires_after_days: Some(3),
    });
    rules
}

/// Tiers over a 2-day window, so growth leaves it within a run (days pass
/// with `NextDay`).
fn tiers() -> Tiers {
    Tiers {
        window_days: 2,
        levels: vec![
            TierLevel {
                name: "silver".into(),
                min_growth: 100,
            },
            TierLevel {
                name: "gold".into(),
                min_growth: 300,
            },
        ],
    }
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
        4 => (user.clone(), 0..3usize, 1..500i64, late(), prop::bool::weighted(0.2))
            .prop_map(|(user, kind, amount, late, dup)| Step::Event { user, kind, amount, late, dup }),
        1 => Just(Step::NextDay),
        2 => (user.clone(), user.clone()).prop_map(|(user, other)| Step::Echo { user, other }),
        2 => (user.clone(), user.clone()).prop_map(|(from, into)| Step::Merge { from, into }),
        1 => (user.clone(), any::<usize>()).prop_map(|(user, pick)| Step::Borrow { user, pick }),
    ]
}

fn pick<T: Clone>(v: &[T], i: usize) -> Option<T> {
    (!v.is_empty()).then(|| v[i % v.len()].clone())
}

fn run(steps: Vec<Step>) {
    let (_dir, db) = common::open_temp();
    db.set_ledger_settings(LedgerSettings::new(rules(), tiers()))
        .unwrap();
    let mut model: Vec<Account> = vec![
        Account {
            tiers: tiers(),
            ..Account::default()
        };
        USERS.len()
    ];
    let mut last_event: Vec<Option<Event>> = vec![None; USERS.len()];
    // each name's merge target, once merged (chains re-pointed at each merge)
    let mut alias: Vec<Option<usize>> = vec![None; USERS.len()];
    let mut merges = 0u32;
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
            Step::NextDay => clock += common::DAY,
            Step::Event {
                user,
                kind,
                amount,
                late,
                dup,
            } => {
                let e = match (&last_event[user], dup) {
                    (Some(e), true) => e.clone(),
                    _ => {
                        let kind = ["sign_in", "purchase", "view"][kind];
                        let mut e =
                            Event::new(USERS[user], kind, clock - late).with_id(fresh(&mut n));
                        if kind == "purchase" {
                            e = e.with_amount(amount);
                        }
                        e
                    }
                };
                deliver(&db, &mut model[canon(&alias, user)], &e);
                last_event[user] = Some(e);
            }
            Step::Echo { user, other } => {
                if let Some(mut e) = last_event[other].clone() {
                    e.user = USERS[user].into();
                    deliver(&db, &mut model[canon(&alias, user)], &e);
                    last_event[user] = Some(e);
                }
            }
            Step::Merge { from, into } => {
                merges += 1;
                merge(&db, &mut model, &mut alias, (from, into), merges);
            }
            Step::Borrow { user, pick: p } => {
                let (u, c) = (user, canon(&alias, user));
                let theirs: Vec<&(usize, String, i64, PointsOp)> =
                    done.iter().filter(|d| canon(&alias, d.0) != c).collect();
                if let Some((_, t, _, _)) = pick(&theirs, p) {
                    let op = PointsOp::Earn {
                        points: 5,
                        expires_at_ms: None,
                        reason: "borrowed id".into(),
                    };
                    call = Some((u, t.clone(), clock, op));
                }
            }
            Step::Expire { ahead } => {
                let now = clock + ahead;
                let mut want = ExpireReport::default();
                for m in model.iter_mut() {
                    m.expire(now, &mut want);
                }
                let got = db.expire_points(now).unwrap();
                assert_eq!(
                    (
                        got.lots_expired,
                        got.points_expired,
                        got.holds_timed_out,
                        got.tier_changes
                    ),
                    (
                        want.lots_expired,
                        want.points_expired,
                        want.holds_timed_out,
                        want.tier_changes
                    ),
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
                let holds = txns_of(&model[canon(&alias, user)], p % 3 != 0);
                let hold_txn = pick(&holds, p / 3).unwrap_or_else(|| "nope".into());
                call = Some((
                    user,
                    fresh(&mut n),
                    clock - late,
                    PointsOp::Capture { hold_txn },
                ));
            }
            Step::Release { user, pick: p } => {
                let holds = txns_of(&model[canon(&alias, user)], p % 3 != 0);
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
                let txn = pick(&txns_of(&model[canon(&alias, user)], false), p)
                    .unwrap_or_else(|| "nope".into());
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
            compare_all(&db, &model, &alias);
            continue;
        };
        let before = db.raw_dump().unwrap();
        let want = model[canon(&alias, user)].apply(&txn, at, &op);
        let got = db_res(db.points(USERS[user], &txn, at, &op));
        assert_eq!(got, want, "{} {txn} at +{} {op:?}", USERS[user], at - T0);
        match &got {
            Ok(o) if !o.replayed => done.push((user, txn, at, op)),
            // refused or replayed: not one byte changed
            _ => assert_eq!(before, db.raw_dump().unwrap(), "{txn} changed the store"),
        }
        compare_all(&db, &model, &alias);
    }
    common::assert_clean(&db);
}

/// The account a name resolves to.
fn canon(alias: &[Option<usize>], u: usize) -> usize {
    alias[u].unwrap_or(u)
}

/// Every name against the account it resolves to.
fn compare_all(db: &stickydb::Db, model: &[Account], alias: &[Option<usize>]) {
    compare(
        db,
        (0..USERS.len()).map(|v| (USERS[v], &model[canon(alias, v)])),
    );
}

/// Records `e`; the user `m` models earns by the rules unless it has the
/// event already (a duplicate earns nothing).
fn deliver(db: &stickydb::Db, m: &mut Account, e: &Event) {
    let out = db.record(e).unwrap();
    let id = e.event_id.as_deref().expect("every event here has an id");
    if m.has_event(id) {
        assert_eq!(out, RecordOutcome::Duplicate, "a re-delivery earns nothing");
        return;
    }
    assert!(
        matches!(out, RecordOutcome::Recorded { seq, .. } if seq == m.events),
        "{out:?}"
    );
    m.event(&rules(), id, e.kind.as_str(), e.ts_ms, e.amount_minor);
}

/// Merges `from` into `into` when both are users of their own and not one
/// already; a transaction id both used must refuse it, writing nothing.
fn merge(
    db: &stickydb::Db,
    model: &mut [Account],
    alias: &mut [Option<usize>],
    (from, into): (usize, usize),
    n: u32,
) {
    let (cf, ci) = (canon(alias, from), canon(alias, into));
    if alias[from].is_some() || cf == ci || !model[cf].exists || !model[ci].exists {
        return; // (those refusals are tests/identity_rules.rs's)
    }
    let id = format!("m{n}");
    let before = db.raw_dump().unwrap();
    let got = db.merge(USERS[from], USERS[into], &id, MergeOptions::forced());
    if model[ci].clashes(&model[cf]) {
        assert!(
            matches!(got, Err(Error::Merge(MergeError::TxnClash { .. }))),
            "{got:?}"
        );
        assert_eq!(before, db.raw_dump().unwrap(), "a refused merge wrote");
        return;
    }
    let out = got.unwrap();
    assert_eq!(out.into, USERS[ci]);
    let leaving = std::mem::replace(
        &mut model[cf],
        Account {
            tiers: tiers(),
            ..Account::default()
        },
    );
    let reason = format!("merge {id}: from {}", USERS[from]);
    model[ci].merge_from(&leaving, &rules(), &reason);
    for a in alias.iter_mut() {
        if *a == Some(cf) {
            *a = Some(ci);
        }
    }
    alias[cf] = Some(ci);
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
