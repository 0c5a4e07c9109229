//! Coupons against a plain in-memory model (docs/coupons.md): random
//! sequences over three users and five templates (fixed with stock and a
//! per-user limit, percent with a cap and an absolute end, threshold that
//! does not stack, a stackable one without expiry, one for purchases of
//! shoes only) — issues, holds that are redeemed, released or time out,
//! redeems above and below thresholds, plain or describing the order (of
//! a kind and category that match or not: eligibility),
//! reversals before and after the expiry, retries of the same transaction,
//! conflicting replays, back-dated operations, checkouts redeeming two
//! coupons in one transaction (stacking), the clock advancing (expiries,
//! hold timeouts) or time passing without it (coupons past their expiry
//! refused before the expiry run reaches them), erasures and identity merges (coupons move with their
//! ids). After every step the outcome (or the exact refusal), every user's
//! coupons and every template's counts equal the model's; a refused
//! operation leaves the store byte-identical; `verify` stays clean.

mod common;
#[path = "model/coupons.rs"]
mod coupon_model;

use coupon_model::{err, pick_coupon, same, Model, Out};
use proptest::prelude::*;
use stickydb::{CouponOp, CouponTemplate, Db, MergeOptions};

const T0: i64 = common::T0;
const DAY: i64 = common::DAY;
const USERS: [&str; 3] = ["ann", "bob", "cat"];

fn templates() -> Vec<CouponTemplate> {
    vec![
        CouponTemplate::fixed("F5", 500)
            .valid_days(2)
            .stock(6)
            .per_user(2),
        CouponTemplate::percent("P10", 10, Some(300))
            .valid_until_ms(T0 + 2 * DAY)
            .stackable(true),
        CouponTemplate::threshold("T15", 10_000, 1_500)
            .valid_days(1)
            .per_user(1),
        CouponTemplate::fixed("S", 100).stackable(true).stock(3),
        CouponTemplate::fixed("SH", 300)
            .for_kinds(["purchase"])
            .where_prop("category", "shoes"),
    ]
}

#[derive(Debug, Clone)]
enum Step {
    Issue {
        user: usize,
        template: usize,
        late: i64,
    },
    Hold {
        user: usize,
        pick: usize,
        timeout: i64,
    },
    Redeem {
        user: usize,
        pick: usize,
        order: i64,
        late: i64,
        /// The order described (kind, category; index 2: no category), or
        /// a plain redeem.
        described: Option<(usize, usize)>,
    },
    Release {
        user: usize,
        pick: usize,
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
    Checkout {
        user: usize,
        a: usize,
        b: usize,
        order: i64,
    },
    Advance(i64),
    /// Time passes without an `advance`: coupons past their expiry are
    /// still available in the store, and refused as expired.
    Wait(i64),
    Erase {
        user: usize,
    },
    Merge {
        from: usize,
        into: usize,
    },
}

fn step() -> impl Strategy<Value = Step> {
    let u = 0..USERS.len();
    let pick = 0..8usize;
    prop_oneof![
        5 => (u.clone(), 0..5usize, 0..DAY).prop_map(|(user, template, late)| Step::Issue { user, template, late }),
        2 => (u.clone(), pick.clone(), 1..DAY / 2).prop_map(|(user, pick, timeout)| Step::Hold { user, pick, timeout }),
        4 => (u.clone(), pick.clone(), 0..20_000i64, 0..DAY / 4, prop::option::of((0..2usize, 0..3usize)))
            .prop_map(|(user, pick, order, late, described)| Step::Redeem { user, pick, order, late, described }),
        1 => (u.clone(), pick.clone()).prop_map(|(user, pick)| Step::Release { user, pick }),
        2 => (u.clone(), pick.clone()).prop_map(|(user, pick)| Step::Reverse { user, pick }),
        2 => pick.clone().prop_map(|pick| Step::Retry { pick }),
        1 => pick.clone().prop_map(|pick| Step::Conflict { pick }),
        2 => (u.clone(), pick.clone(), pick, 0..20_000i64).prop_map(|(user, a, b, order)| Step::Checkout { user, a, b, order }),
        3 => (1..DAY).prop_map(Step::Advance),
        2 => (1..DAY).prop_map(Step::Wait),
        1 => u.clone().prop_map(|user| Step::Erase { user }),
        1 => (u.clone(), u).prop_map(|(from, into)| Step::Merge { from, into }),
    ]
}

fn run(steps: Vec<Step>) {
    let (_dir, db) = common::open_temp();
    for t in templates() {
        assert!(db.add_coupon_template(&t).unwrap());
        // (an equal template again is a no-op)
        assert!(!db.add_coupon_template(&t).unwrap());
    }
    let mut m = Model::new(templates());
    let mut now = T0;
    let mut done: Vec<(String, String, i64, CouponOp)> = Vec::new();
    let mut merges = 0usize;
    for (n, s) in steps.into_iter().enumerate() {
        now += 60_000;
        let mut calls: Vec<(String, String, i64, CouponOp)> = Vec::new();
        match &s {
            Step::Issue {
                user,
                template,
                late,
            } => {
                let t = ["F5", "P10", "T15", "S", "SH"][*template];
                calls.push((
                    USERS[*user].into(),
                    format!("i{n}"),
                    now - late,
                    CouponOp::Issue { template: t.into() },
                ));
            }
            Step::Hold {
                user,
                pick,
                timeout,
            } => {
                let c = pick_coupon(&m, USERS[*user], *pick);
                calls.push((
                    USERS[*user].into(),
                    format!("h{n}"),
                    now,
                    CouponOp::Hold {
                        coupon: c,
                        timeout_ms: *timeout,
                    },
                ));
            }
            Step::Redeem {
                user,
                pick,
                order,
                late,
                described,
            } => {
                let c = pick_coupon(&m, USERS[*user], *pick);
                let op = match described {
                    None => CouponOp::Redeem {
                        coupon: c,
                        order_minor: *order,
                    },
                    Some((kind, category)) => CouponOp::RedeemOrder {
                        coupon: c,
                        order_minor: *order,
                        kind: ["purchase", "view"][*kind].into(),
                        properties: ["shoes", "bags"]
                            .get(*category)
                            .map(|v| ("category".to_owned(), (*v).to_owned()))
                            .into_iter()
                            .collect(),
                    },
                };
                calls.push((USERS[*user].into(), format!("r{n}"), now - late, op));
            }
            Step::Release { user, pick } => {
                let c = pick_coupon(&m, USERS[*user], *pick);
                calls.push((
                    USERS[*user].into(),
                    format!("l{n}"),
                    now,
                    CouponOp::Release { coupon: c },
                ));
            }
            Step::Reverse { user, pick } => {
                let c = pick_coupon(&m, USERS[*user], *pick);
                calls.push((
                    USERS[*user].into(),
                    format!("v{n}"),
                    now,
                    CouponOp::Reverse { coupon: c },
                ));
            }
            Step::Retry { pick } if !done.is_empty() => {
                let (u, t, _, op) = done[pick % done.len()].clone();
                // (stamped later: still a replay)
                calls.push((u, t, now, op));
            }
            Step::Conflict { pick } if !done.is_empty() => {
                let (u, t, at, _) = done[pick % done.len()].clone();
                calls.push((
                    u,
                    t,
                    at,
                    CouponOp::Issue {
                        template: "S".into(),
                    },
                ));
            }
            Step::Checkout { user, a, b, order } => {
                let name = USERS[*user];
                let (ca, cb) = (pick_coupon(&m, name, *a), pick_coupon(&m, name, *b));
                let ops = [
                    (
                        format!("ca{n}"),
                        CouponOp::Redeem {
                            coupon: ca,
                            order_minor: *order,
                        },
                    ),
                    (
                        format!("cb{n}"),
                        CouponOp::Redeem {
                            coupon: cb,
                            order_minor: *order,
                        },
                    ),
                ];
                let before = db.raw_dump().unwrap();
                let got = db.write(|tx| {
                    let mut outs = Vec::new();
                    for (txn, op) in &ops {
                        outs.push(Out::from(&tx.coupon(name, txn, now, op)?));
                    }
                    Ok(outs)
                });
                let mut trial = m.clone();
                trial.here.clear();
                let expected: Result<Vec<Out>, String> = ops
                    .iter()
                    .map(|(txn, op)| trial.apply(name, txn, now, op))
                    .collect();
                trial.here.clear();
                match (&got, &expected) {
                    (Ok(g), Ok(e)) => {
                        assert_eq!(g, e, "checkout {n}");
                        m = trial;
                        for (txn, op) in &ops {
                            done.push((name.into(), txn.clone(), now, op.clone()));
                        }
                    }
                    (Err(g), Err(e)) => {
                        assert_eq!(&err(g), e, "checkout {n}");
                        assert_eq!(before, db.raw_dump().unwrap(), "refused checkout {n} wrote");
                    }
                    _ => panic!("checkout {n}: store {got:?}, model {expected:?}"),
                }
            }
            Step::Advance(by) => {
                now += by;
                let report = db.advance(now).unwrap();
                m.advance(now);
                let _ = report;
            }
            Step::Wait(by) => now += by,
            Step::Erase { user } => {
                db.erase_user(USERS[*user]).unwrap();
                m.erase(USERS[*user]);
            }
            Step::Merge { from, into } => {
                let (f, i) = (USERS[*from], USERS[*into]);
                let mut trial = m.clone();
                if trial.merge(f, i).is_ok() {
                    merges += 1;
                    db.merge(f, i, &format!("m{merges}"), MergeOptions::forced())
                        .unwrap();
                    m = trial;
                }
            }
            Step::Retry { .. } | Step::Conflict { .. } => {}
        }
        for (user, txn, at, op) in calls {
            let before = db.raw_dump().unwrap();
            let got = db.coupon(&user, &txn, at, &op);
            m.here.clear();
            let expected = m.apply(&user, &txn, at, &op);
            m.here.clear();
            match (&got, &expected) {
                (Ok(g), Ok(e)) => {
                    assert_eq!(&Out::from(g), e, "step {n} {s:?}");
                    if !e.replayed {
                        done.push((user, txn, at, op));
                    }
                }
                (Err(g), Err(e)) => {
                    assert_eq!(&err(g), e, "step {n} {s:?}: {g}");
                    assert_eq!(before, db.raw_dump().unwrap(), "refused step {n} wrote");
                }
                _ => panic!("step {n} {s:?}: store {got:?}, model {expected:?}"),
            }
        }
        same(&db, &m, &USERS);
    }
    common::assert_clean(&db);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn coupons_equal_the_model(steps in proptest::collection::vec(step(), 1..60)) {
        run(steps);
    }
}

/// A coupon redeemed, refunded after its expiry: it comes back expired,
/// and the counts say so.
#[test]
fn a_refund_after_the_expiry_returns_an_expired_coupon() {
    let (_dir, db) = common::open_temp();
    db.add_coupon_template(&CouponTemplate::fixed("F", 300).valid_days(1))
        .unwrap();
    db.coupon(
        "ann",
        "i",
        T0,
        &CouponOp::Issue {
            template: "F".into(),
        },
    )
    .unwrap();
    let redeem = CouponOp::Redeem {
        coupon: "F-1".into(),
        order_minor: 200,
    };
    assert_eq!(
        db.coupon("ann", "r", T0 + 1, &redeem).unwrap().off_minor,
        200
    );
    let back = db
        .coupon(
            "ann",
            "v",
            T0 + 2 * DAY,
            &CouponOp::Reverse {
                coupon: "F-1".into(),
            },
        )
        .unwrap();
    assert_eq!(back.state, "expired");
    let s = db.coupon_stats("F").unwrap();
    assert_eq!(
        (s.issued, s.redeemed, s.expired, s.outstanding),
        (1, 0, 1, 0)
    );
    common::assert_clean(&db);
}

/// The coupon notices of the change feed: once per available coupon whose
/// expiry falls within the notice period (7 days), at `advance`; in the
/// issuing write when already due; none for a redeemed coupon.
#[test]
fn expiring_coupons_are_noticed_once() {
    use stickydb::Change;
    let (_dir, db) = common::open_temp();
    db.add_coupon_template(&CouponTemplate::fixed("F", 300).valid_days(10))
        .unwrap();
    let issue = CouponOp::Issue {
        template: "F".into(),
    };
    db.coupon("ann", "i", T0, &issue).unwrap(); // F-1, expires T0 + 10 d
    db.coupon("bob", "i", T0, &issue).unwrap(); // F-2, redeemed below
    let redeem = CouponOp::Redeem {
        coupon: "F-2".into(),
        order_minor: 500,
    };
    db.coupon("bob", "r", T0 + 1, &redeem).unwrap();
    let notices = |db: &Db| -> Vec<(String, String, i64, i64)> {
        db.feed(0, 100)
            .unwrap()
            .into_iter()
            .filter_map(|e| match e.record.change {
                Change::CouponExpiryNotice {
                    coupon,
                    expires_at_ms,
                    at_ms,
                    ..
                } => Some((e.user.unwrap_or_default(), coupon, expires_at_ms, at_ms)),
                _ => None,
            })
            .collect()
    };
    db.advance(T0 + 2 * DAY).unwrap();
    assert!(notices(&db).is_empty(), "not due before T0 + 3 d");
    let report = db.advance(T0 + 4 * DAY).unwrap();
    let expected = vec![(
        "ann".to_owned(),
        "F-1".to_owned(),
        T0 + 10 * DAY,
        T0 + 3 * DAY,
    )];
    assert_eq!(notices(&db), expected);
    assert_eq!(report.notices, 1);
    db.advance(T0 + 5 * DAY).unwrap();
    assert_eq!(notices(&db), expected, "once");
    // issued with its notice due already (clock at T0 + 5 d, expiry T0 + 15 d
    // is not; a 2-day template is)
    db.add_coupon_template(&CouponTemplate::fixed("G", 100).valid_days(2))
        .unwrap();
    let g = CouponOp::Issue {
        template: "G".into(),
    };
    db.coupon("cat", "i", T0 + 5 * DAY, &g).unwrap();
    let got = notices(&db);
    assert_eq!(got.len(), 2);
    assert_eq!(got[1].1, "G-1");
    db.advance(T0 + 6 * DAY).unwrap();
    assert_eq!(notices(&db).len(), 2, "not again at advance");
    // held while the scan passes its expiry, its hold timing out later
    // inside the notice period: noticed when it is available again
    db.add_coupon_template(&CouponTemplate::fixed("H", 100).valid_days(10))
        .unwrap();
    let h = CouponOp::Issue {
        template: "H".into(),
    };
    db.coupon("dan", "i", T0 + 6 * DAY, &h).unwrap(); // expires T0 + 16 d
    let hold = CouponOp::Hold {
        coupon: "H-1".into(),
        timeout_ms: DAY,
    };
    db.coupon("dan", "h", T0 + 8 * DAY + DAY / 2, &hold)
        .unwrap();
    db.advance(T0 + 9 * DAY + DAY / 4).unwrap(); // the scan reaches T0 + 16.25 d
    assert_eq!(notices(&db).len(), 2, "not while held");
    db.advance(T0 + 10 * DAY).unwrap(); // the hold timed out at T0 + 9.5 d
    let got = notices(&db);
    assert_eq!(got.len(), 3);
    assert_eq!((got[2].1.as_str(), got[2].2), ("H-1", T0 + 16 * DAY));
    common::assert_clean(&db);
}
