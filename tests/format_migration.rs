//! Backward compatibility: a format-1 store (events without aggregates, as
//! written before the aggregation engine) and a format-2 store (before the
//! ledger: no ledger column families) are migrated on a writable open and
//! refused read-only with `NeedsMigration`; `rebuild_aggregates` repairs
//! damaged aggregates and keeps the ledger's tier sets.

mod common;
use common::*;
use stickydb::{Db, Error, Event, OpenError, Options, ProfileUpdate, TagSource};

fn fill(db: &Db) {
    let kinds = [
        "signup",
        "view",
        "add_to_cart",
        "purchase",
        "sign_in",
        "refund",
        "share",
    ];
    for u in 0..25i64 {
        let events: Vec<Event> = (0..30i64)
            .map(|i| {
                let kind = kinds[((u + i) % 7) as usize];
                // days out of order: late events on purpose
                let day = (i * 13 + u * 5) % 45;
                let mut e =
                    Event::new(format!("u{u}"), kind, T0 + day * DAY + (i % 24) * 3_600_000)
                        .with_session(format!("s{}", i % 4));
                if kind == "purchase" || kind == "refund" {
                    e = e.with_amount(100 * (i + 1));
                }
                e
            })
            .collect();
        db.record_batch(&events).unwrap();
        db.update_profile(
            &format!("u{u}"),
            &ProfileUpdate::new().tag("t", TagSource::Rule, T0, None),
        )
        .unwrap();
    }
}

/// Turns a current store into what format 2 left on disk: no ledger.
fn downgrade_to_format_2(path: &std::path::Path) {
    let mut r = raw_open(path);
    r.drop_cf("ledger").unwrap();
    r.drop_cf("ledger_due").unwrap();
    let meta = r.cf_handle("meta").unwrap();
    r.put_cf(
        meta,
        b"format_version",
        stickydb::codec::encode(&2u32).unwrap(),
    )
    .unwrap();
    r.flush_wal(true).unwrap();
}

/// Turns a current store into what format 1 left on disk.
fn downgrade_to_format_1(path: &std::path::Path) {
    downgrade_to_format_2(path);
    let r = raw_open(path);
    for name in ["metrics", "activity"] {
        let cf = r.cf_handle(name).unwrap();
        let keys: Vec<Box<[u8]>> = r
            .iterator_cf(cf, rocksdb::IteratorMode::Start)
            .map(|kv| kv.unwrap().0)
            .collect();
        for k in keys {
            // format 1 kept the all-users set and the event totals
            let keep = name == "metrics" && (&k[..] == b"\x02users" || k.starts_with(b"\x01e"));
            if !keep {
                r.delete_cf(cf, k).unwrap();
            }
        }
    }
    let meta = r.cf_handle("meta").unwrap();
    r.delete_cf(meta, b"metric_settings").unwrap();
    r.put_cf(
        meta,
        b"format_version",
        stickydb::codec::encode(&1u32).unwrap(),
    )
    .unwrap();
    r.flush_wal(true).unwrap();
}

/// Checks that a read-only open of a format-`found` store is refused with
/// `NeedsMigration`; returns the read-only options for later opens.
fn refused_read_only(path: &std::path::Path, found: u32) -> Options {
    let read_only = Options {
        read_only: true,
        create_if_missing: false,
        ..Options::default()
    };
    match Db::open(path, read_only.clone()) {
        Err(Error::Open(OpenError::NeedsMigration {
            found: f,
            current: 3,
        })) if f == found => {}
        other => panic!("expected NeedsMigration from {found}, got {other:?}"),
    }
    read_only
}

/// A closed store holding `fill`'s data, its first local day, and the metric
/// answers it gave before anything was done to it.
fn filled_store() -> (tempfile::TempDir, i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), Options::default()).unwrap();
    fill(&db);
    let day = db.local_day(T0);
    let before = metric_snapshot(&db, day - 1, day + 50);
    (dir, day, before)
}

#[test]
fn a_format_1_store_is_migrated_on_open() {
    let (dir, day, before) = filled_store();
    downgrade_to_format_1(dir.path());
    let read_only = refused_read_only(dir.path(), 1);
    let db = Db::open(dir.path(), Options::default()).unwrap();
    assert_clean(&db);
    assert_eq!(metric_snapshot(&db, day - 1, day + 50), before);
    drop(db);
    // stamped: a read-only open now works
    let db = Db::open(dir.path(), read_only).unwrap();
    assert_eq!(metric_snapshot(&db, day - 1, day + 50), before);
}

#[test]
fn a_format_2_store_gains_a_ledger_on_open() {
    let (dir, day, before) = filled_store();
    downgrade_to_format_2(dir.path());
    let read_only = refused_read_only(dir.path(), 2);
    let db = Db::open(dir.path(), Options::default()).unwrap();
    assert_eq!(metric_snapshot(&db, day - 1, day + 50), before);
    let out = db
        .points("u1", "t1", T0, &stickydb::PointsOp::earn(10, "welcome"))
        .unwrap();
    assert_eq!(out.balance, 10);
    assert_clean(&db);
    drop(db);
    let db = Db::open(dir.path(), read_only).unwrap();
    assert_eq!(db.account("u1").unwrap().map(|a| a.balance), Some(10));
}

#[test]
fn rebuild_repairs_damaged_aggregates() {
    let (dir, day, before) = filled_store();
    {
        // a tier set in the metrics cf, which the rebuild must keep
        let db = Db::open(dir.path(), Options::default()).unwrap();
        let mut s = db.ledger_settings();
        s.tiers.levels = vec![stickydb::ledger::TierLevel {
            name: "gold".into(),
            min_growth: 5,
        }];
        db.set_ledger_settings(s).unwrap();
        db.points("u2", "t1", T0, &stickydb::PointsOp::earn(10, ""))
            .unwrap();
        assert_eq!(db.users_in_tier("gold").unwrap().len(), 1);
    }
    {
        let r = raw_open(dir.path());
        let mut k = vec![0x01, b'm'];
        k.extend_from_slice(&stickydb::keys::day_asc(day + 3));
        k.push(2); // GMV
        r.merge_cf(
            r.cf_handle("metrics").unwrap(),
            k,
            stickydb::store::merge::encode_counter(777),
        )
        .unwrap();
        let mut a = 3u32.to_be_bytes().to_vec();
        a.extend_from_slice(b"s1");
        r.delete_cf(r.cf_handle("activity").unwrap(), a).unwrap();
    }
    let db = Db::open(dir.path(), Options::default()).unwrap();
    assert!(!db.verify().unwrap().is_clean());
    assert_eq!(db.rebuild_aggregates().unwrap(), 25 * 30);
    assert_clean(&db);
    assert_eq!(db.users_in_tier("gold").unwrap().len(), 1);
    assert_eq!(metric_snapshot(&db, day - 1, day + 50), before);
}
