//! Drives the engine and a BTreeMap model with the same operations and checks
//! they agree: timelines, dedup, tags, points balances, erasure; and that
//! `verify` (every aggregate, every ledger invariant) stays clean.
#![no_main]

use std::collections::{BTreeMap, BTreeSet};

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use stickydb::{Db, Error, Event, LedgerError, Options, PointsOp, ProfileUpdate, RecordOutcome, TagSource};

const T0: i64 = 1_709_251_200_000;

#[derive(Debug, Arbitrary)]
enum Op {
    Record { user: u8, kind: u8, dt_s: u16, id: Option<u8> },
    Tag { user: u8, tag: u8 },
    Untag { user: u8, tag: u8 },
    Earn { user: u8, points: u8, ttl_s: Option<u8>, dt_s: u16 },
    Redeem { user: u8, points: u8, dt_s: u16 },
    Expire { dt_s: u16 },
    Erase { user: u8 },
    Reopen,
}

fuzz_target!(|ops: Vec<Op>| {
    let Ok(dir) = tempfile::tempdir() else { return };
    let Ok(mut db) = Db::open(dir.path(), Options::default()) else { return };
    let mut events: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    let mut ids: BTreeSet<(String, u8)> = BTreeSet::new();
    let mut tags: BTreeSet<(String, u8)> = BTreeSet::new();
    let mut txn = 0u32;
    for op in ops.into_iter().take(200) {
        txn += 1;
        match op {
            Op::Record { user, kind, dt_s, id } => {
                let user = format!("u{}", user % 4);
                let kind = ["view", "purchase", "sign_in", "custom_x"][kind as usize % 4];
                let ts = T0 + i64::from(dt_s) * 1000;
                let mut e = Event::new(user.as_str(), kind, ts);
                if let Some(id) = id {
                    e = e.with_id(format!("e{id}"));
                }
                let out = db.record(&e).expect("valid event");
                let dup = id.is_some_and(|id| !ids.insert((user.clone(), id)));
                assert_eq!(out == RecordOutcome::Duplicate, dup);
                if !dup {
                    events.entry(user).or_default().push(ts);
                }
            }
            Op::Tag { user, tag } => {
                let user = format!("u{}", user % 4);
                let up = ProfileUpdate::new().tag(format!("t{}", tag % 4), TagSource::Rule, T0, None);
                db.update_profile(&user, &up).expect("valid update");
                tags.insert((user, tag % 4));
            }
            Op::Untag { user, tag } => {
                let user = format!("u{}", user % 4);
                db.update_profile(&user, &ProfileUpdate::new().untag(format!("t{}", tag % 4)))
                    .expect("valid update");
                tags.remove(&(user, tag % 4));
            }
            Op::Earn { user, points, ttl_s, dt_s } => {
                let user = format!("u{}", user % 4);
                let at = T0 + i64::from(dt_s) * 1000;
                let op = PointsOp::Earn {
                    points: i64::from(points) + 1,
                    expires_at_ms: ttl_s.map(|t| at + (i64::from(t) + 1) * 1000),
                    reason: String::new(),
                };
                let before = db.account(&user).ok().flatten().map_or(0, |a| a.balance);
                let out = db.points(&user, &format!("t{txn}"), at, &op).expect("earn");
                assert_eq!(out.balance, before + i64::from(points) + 1);
            }
            Op::Redeem { user, points, dt_s } => {
                let user = format!("u{}", user % 4);
                let at = T0 + i64::from(dt_s) * 1000;
                let before = db.raw_dump().expect("dump");
                match db.points(&user, &format!("t{txn}"), at, &PointsOp::redeem(i64::from(points) + 1, "")) {
                    Ok(out) => assert!(out.balance >= 0 && out.available >= 0),
                    Err(Error::Ledger(LedgerError::InsufficientPoints { .. }) | Error::UnknownUser { .. }) => {
                        assert_eq!(before, db.raw_dump().expect("dump"), "a refusal wrote");
                    }
                    Err(e) => panic!("redeem: {e}"),
                }
            }
            Op::Expire { dt_s } => {
                let now = T0 + i64::from(dt_s) * 1000;
                db.expire_points(now).expect("expire");
                let before = db.raw_dump().expect("dump");
                db.expire_points(now).expect("expire again");
                assert_eq!(before, db.raw_dump().expect("dump"), "a re-run wrote");
            }
            Op::Erase { user } => {
                let user = format!("u{}", user % 4);
                db.erase_user(&user).expect("erase");
                events.remove(&user);
                ids.retain(|(u, _)| *u != user);
                tags.retain(|(u, _)| *u != user);
            }
            Op::Reopen => {
                drop(db);
                db = Db::open(dir.path(), Options::default()).expect("reopen");
            }
        }
    }
    for (user, ts) in &mut events {
        ts.sort_unstable_by(|a, b| b.cmp(a));
        let got: Vec<i64> = db.newest(user, 10_000).expect("timeline").iter().map(|e| e.event.ts_ms).collect();
        assert_eq!(&got, ts);
    }
    for t in 0..4u8 {
        let want: BTreeSet<u32> = tags
            .iter()
            .filter(|(_, x)| *x == t)
            .map(|(u, _)| db.user_id(u).expect("read").expect("exists"))
            .collect();
        let got: BTreeSet<u32> = db.users_with_tag(&format!("t{t}"), None).expect("index").iter().collect();
        assert_eq!(got, want);
    }
    assert!(db.verify().expect("verify").is_clean());
});
