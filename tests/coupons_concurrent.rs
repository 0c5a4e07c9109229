//! Coupons under concurrency and kills (docs/coupons.md): eight threads
//! issuing from one template with a stock of 1 000 to 5 000 users issue
//! exactly 1 000, none to a user over its limit; a checkout (a coupon
//! redeemed, points spent, the purchase recorded) is one atomic write; a
//! writer killed with SIGKILL while it issues and redeems loses no
//! acknowledged coupon and issues none twice, and `verify` stays clean.

mod common;
use common::*;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use stickydb::{CouponError, CouponOp, CouponTemplate, Db, Error, Event, Options, PointsOp};

const CHILD_ENV: &str = "STICKYDB_COUPON_CHILD";

#[test]
fn eight_threads_never_issue_past_the_stock() {
    let (_dir, db) = open_temp();
    db.add_coupon_template(&CouponTemplate::fixed("NEW", 500).stock(1_000).per_user(1))
        .unwrap();
    let issued: Vec<Vec<String>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|t| {
                let db = &db;
                s.spawn(move || {
                    let mut mine = Vec::new();
                    // 5 000 users, each asked for twice (by two threads)
                    for i in 0..1_250usize {
                        let user = format!("u{}", (t * 1_250 + i) % 5_000);
                        let op = CouponOp::Issue {
                            template: "NEW".into(),
                        };
                        match db.coupon(&user, &format!("i{t}-{i}"), T0, &op) {
                            Ok(o) => mine.push(o.coupon),
                            Err(Error::Coupon(
                                CouponError::OutOfStock { .. } | CouponError::PerUserLimit { .. },
                            )) => {}
                            Err(e) => panic!("{e}"),
                        }
                    }
                    mine
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let ids: BTreeSet<String> = issued.iter().flatten().cloned().collect();
    assert_eq!(ids.len(), 1_000, "distinct coupons issued");
    assert_eq!(issued.iter().map(Vec::len).sum::<usize>(), 1_000);
    let expected: BTreeSet<String> = (1..=1_000).map(|n| format!("NEW-{n}")).collect();
    assert_eq!(ids, expected);
    let mut held = 0;
    for u in 0..5_000 {
        let n = db.coupons(&format!("u{u}")).unwrap().len();
        assert!(n <= 1, "u{u} holds {n}");
        held += n;
    }
    assert_eq!(held, 1_000);
    let s = db.coupon_stats("NEW").unwrap();
    assert_eq!(
        (s.issued, s.outstanding, s.stock_left),
        (1_000, 1_000, Some(0))
    );
    assert_clean(&db);
}

/// A checkout redeeming a coupon, spending points and recording the
/// purchase: all three or none.
#[test]
fn a_checkout_is_one_atomic_write() {
    let (_dir, db) = open_temp();
    db.add_coupon_template(&CouponTemplate::threshold("T", 10_000, 1_000))
        .unwrap();
    db.points("ann", "seed", T0, &PointsOp::earn(300, "seed"))
        .unwrap();
    db.coupon(
        "ann",
        "i",
        T0,
        &CouponOp::Issue {
            template: "T".into(),
        },
    )
    .unwrap();
    let checkout = |order: &str, amount: i64, points: i64| {
        db.write(|tx| {
            let redeem = CouponOp::Redeem {
                coupon: "T-1".into(),
                order_minor: amount,
            };
            let off = tx.coupon("ann", order, T0 + 1, &redeem)?.off_minor;
            tx.points("ann", order, T0 + 1, &PointsOp::redeem(points, order))?;
            tx.record(
                &Event::new("ann", "purchase", T0 + 1)
                    .with_id(order)
                    .with_amount(amount - off),
            )?;
            Ok(off)
        })
    };
    // too many points: the coupon stays available, no purchase
    let before = db.raw_dump().unwrap();
    assert!(checkout("o1", 12_000, 301).is_err());
    assert_eq!(before, db.raw_dump().unwrap());
    assert_eq!(checkout("o2", 12_000, 200).unwrap(), 1_000);
    assert_eq!(db.coupons("ann").unwrap()[0].state.name(), "redeemed");
    assert_eq!(db.account("ann").unwrap().unwrap().balance, 100);
    assert_eq!(db.newest("ann", 10).unwrap().len(), 1);
    assert_clean(&db);
}

/// Not a test on its own: the body of the child process that gets killed.
/// Issues a coupon to a user and redeems it, acknowledging each.
#[test]
#[ignore]
fn coupon_child() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let round: usize = std::env::var("STICKYDB_COUPON_ROUND")
        .unwrap()
        .parse()
        .unwrap();
    let db = Db::open(&dir, Options::default()).unwrap();
    let mut out = std::io::stdout();
    for i in 0.. {
        let user = format!("r{round}-{i}");
        let issue = CouponOp::Issue {
            template: "K".into(),
        };
        let Ok(o) = db.coupon(&user, "issue", T0, &issue) else {
            return;
        };
        writeln!(out, "ISSUED {user} {}", o.coupon).unwrap();
        out.flush().unwrap();
        let redeem = CouponOp::Redeem {
            coupon: o.coupon.clone(),
            order_minor: 1_000,
        };
        db.coupon(&user, "redeem", T0 + 1, &redeem).unwrap();
        writeln!(out, "REDEEMED {user} {}", o.coupon).unwrap();
        out.flush().unwrap();
    }
}

#[test]
fn a_killed_coupon_writer_loses_nothing_and_issues_nothing_twice() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = Db::create(dir.path(), Options::default()).unwrap();
        db.add_coupon_template(&CouponTemplate::fixed("K", 100).per_user(1))
            .unwrap();
    }
    let exe = std::env::current_exe().unwrap();
    let (mut issued, mut redeemed) = (Vec::new(), Vec::new());
    for round in 0..3 {
        let mut child = Command::new(&exe)
            .args([
                "coupon_child",
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, dir.path())
            .env("STICKYDB_COUPON_ROUND", round.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let kill_after = 15 + round * 23;
        let mut seen = 0;
        for line in BufReader::new(stdout).lines() {
            let line = line.unwrap();
            let mut parts = line.split(' ');
            let (what, user, coupon) = (parts.next(), parts.next(), parts.next());
            let (Some(user), Some(coupon)) = (user, coupon) else {
                continue;
            };
            match what {
                Some("ISSUED") => issued.push((user.to_owned(), coupon.to_owned())),
                Some("REDEEMED") => redeemed.push((user.to_owned(), coupon.to_owned())),
                _ => continue,
            }
            seen += 1;
            if seen == kill_after {
                child.kill().unwrap(); // SIGKILL: mid-write, no flush
                break;
            }
        }
        child.wait().unwrap();
        let db = Db::open(dir.path(), Options::default()).unwrap();
        assert_clean(&db);
        for (user, coupon) in &issued {
            let held = db.coupons(user).unwrap();
            assert_eq!(held.len(), 1, "{user}");
            assert_eq!(&held[0].id, coupon, "{user}");
        }
        for (user, _) in &redeemed {
            assert_eq!(
                db.coupons(user).unwrap()[0].state.name(),
                "redeemed",
                "{user}"
            );
        }
        // every coupon the counts say was issued is held by someone, once
        let s = db.coupon_stats("K").unwrap();
        assert!(s.issued >= issued.len() as u64);
        assert_eq!(s.outstanding + s.redeemed, s.issued);
    }
}
