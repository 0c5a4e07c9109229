//! Writers racing on shared sharers: four threads record visits through
//! the same shares, signups, purchases and the sharers' own events, while
//! the shares themselves are claimed late by a fifth. Every write that pays
//! a referral credit must take the sharer's lock (starting over when it did
//! not hold it) and every social write the social lock: at the end each
//! sharer's balance is exactly its attributed first purchases' credits
//! plus the plain earns a sixth thread made on the same accounts (less the
//! credits of the referred users a seventh erased meanwhile), the
//! figures equal those of the same events written by one thread, and
//! verify is clean.

use std::sync::Arc;
use std::thread;

use stickydb::ledger::{EarnRule, LedgerSettings, RulePoints, REFERRAL_KIND};
use stickydb::{Db, Event, Options, SharerRank};

const DAY: i64 = 86_400_000;
/// 2024-03-01 00:00 UTC.
const T0: i64 = 1_709_251_200_000;
const SHARERS: u64 = 5;
const THREADS: u64 = 4;
const USERS_PER_THREAD: u64 = 150;

fn open(dir: &std::path::Path) -> Db {
    let db = Db::open(dir, Options::default().create_if_missing(true)).unwrap();
    db.set_ledger_settings(LedgerSettings::default().rules(vec![EarnRule {
        kind: REFERRAL_KIND.into(),
        points: RulePoints::Fixed(10),
        daily_cap_points: None,
        expires_after_days: None,
    }]))
    .unwrap();
    db
}

/// Thread `t`'s writes: each user visits through a sharer's share, signs
/// up and buys; every tenth batch also carries the sharer's own purchase.
fn thread_events(t: u64) -> Vec<Vec<Event>> {
    (0..USERS_PER_THREAD)
        .map(|i| {
            let user = format!("t{t}-u{i}");
            let k = (t + i) % SHARERS;
            let ts = T0 + DAY + (i as i64) * 60_000;
            let mut batch = vec![
                Event::new(user.as_str(), "view", ts).with_via(format!("s{k}")),
                Event::new(user.as_str(), "signup", ts + 1_000),
                Event::new(user.as_str(), "purchase", ts + 2_000).with_amount(100),
            ];
            if i % 10 == 0 {
                batch.push(Event::new(format!("sharer-{k}"), "purchase", ts).with_amount(50));
            }
            batch
        })
        .collect()
}

/// The referred users the racing run erases (each written by one batch).
fn erased() -> Vec<String> {
    (0..2)
        .flat_map(|t| {
            (0..USERS_PER_THREAD)
                .filter(|i| i % 4 == 1)
                .map(move |i| format!("t{t}-u{i}"))
        })
        .collect()
}

fn claims() -> Vec<Event> {
    (0..SHARERS)
        .map(|k| Event::new(format!("sharer-{k}"), "share", T0).with_share_id(format!("s{k}")))
        .collect()
}

#[test]
fn racing_writers_pay_every_referral_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(open(dir.path()));
    let mut handles = Vec::new();
    for t in 0..THREADS {
        let db = Arc::clone(&db);
        handles.push(thread::spawn(move || {
            for batch in thread_events(t) {
                db.record_batch(&batch).unwrap();
            }
        }));
    }
    const EARNS: u64 = 1_000;
    {
        // the sharers' accounts are written by plain points operations
        // (holding only their stripes) at the same time
        let db = Arc::clone(&db);
        handles.push(thread::spawn(move || {
            for n in 0..EARNS {
                let sharer = format!("sharer-{}", n % SHARERS);
                let op = stickydb::PointsOp::earn(1, "bonus");
                db.points(&sharer, &format!("bonus-{n}"), T0 + DAY, &op)
                    .unwrap();
            }
        }));
    }
    {
        // referred users erased while the others write: each erasure
        // reverses a sharer's credit, from a write that names only the
        // erased user (it must start over holding the sharer's stripe)
        let db = Arc::clone(&db);
        handles.push(thread::spawn(move || {
            for name in erased() {
                while db.user_id(&name).unwrap().is_none() {
                    thread::sleep(std::time::Duration::from_millis(1));
                }
                assert!(db.erase_user(&name).unwrap());
            }
        }));
    }
    {
        // the shares are claimed while the visits pour in
        let db = Arc::clone(&db);
        handles.push(thread::spawn(move || {
            for e in claims() {
                thread::sleep(std::time::Duration::from_millis(5));
                db.record(&e).unwrap();
            }
        }));
    }
    for h in handles {
        h.join().unwrap();
    }
    let day = db.local_day(T0 + DAY);
    let raced = db
        .top_sharers(day - 1, day + 1, SharerRank::Signups, 100, None)
        .unwrap();
    assert_eq!(raced.len() as u64, SHARERS);
    for r in &raced {
        let name = db.user_name(r.user_id).unwrap().unwrap();
        let balance = db.account(&name).unwrap().map_or(0, |a| a.balance);
        let bonus = (EARNS / SHARERS) as i64;
        assert_eq!(balance, 10 * r.figures.first_purchases + bonus, "{name}");
        assert!(r.figures.first_purchases > 0, "{name}");
    }
    let report = db.verify().unwrap();
    assert!(report.is_clean(), "{:?}", report.problems);

    // the same events from one thread, claims first
    let dir2 = tempfile::tempdir().unwrap();
    let serial = open(dir2.path());
    serial.record_batch(&claims()).unwrap();
    for t in 0..THREADS {
        for batch in thread_events(t) {
            serial.record_batch(&batch).unwrap();
        }
    }
    for name in erased() {
        assert!(serial.erase_user(&name).unwrap());
    }
    let one = serial
        .top_sharers(day - 1, day + 1, SharerRank::Signups, 100, None)
        .unwrap();
    let names = |db: &Db, rows: &[stickydb::SharerRow]| {
        let mut v: Vec<(String, stickydb::Figures)> = rows
            .iter()
            .map(|r| (db.user_name(r.user_id).unwrap().unwrap(), r.figures))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    };
    assert_eq!(names(&db, &raced), names(&serial, &one));
}
