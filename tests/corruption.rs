//! Corrupted bytes on disk are typed errors and verify findings, never panics.

mod common;
use common::*;
use stickydb::{Db, Error, Event, Options, ProfileUpdate, Sensitive, TagSource};

#[test]
fn corrupted_values_surface_as_corruption_errors() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), Options::default().create_if_missing(true)).unwrap();
    db.record(&Event::new("ann", "view", T0).with_id("e1"))
        .unwrap();
    db.update_profile(
        "ann",
        &ProfileUpdate::new()
            .set("age", 3)
            .tag("vip", TagSource::Manual, T0, None),
    )
    .unwrap();
    let ann = db.user_id("ann").unwrap().unwrap();
    drop(db);
    {
        let r = raw_open(dir.path());
        // overwrite every event value and the profile attribute with garbage
        let events = r.cf_handle("events").unwrap();
        let keys: Vec<Box<[u8]>> = r
            .iterator_cf(events, rocksdb::IteratorMode::Start)
            .map(|kv| kv.unwrap().0)
            .collect();
        for k in keys {
            r.put_cf(events, k, [1u8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff])
                .unwrap();
        }
        let pk = stickydb::keys::user_and_name(ann, "age");
        r.put_cf(r.cf_handle("profiles").unwrap(), pk, [7u8, 1, 2])
            .unwrap();
        // a tag index value that is not a bitmap
        r.put_cf(
            r.cf_handle("tag_index").unwrap(),
            stickydb::keys::tag_index("vip", ann),
            [1u8, 9, 9, 9],
        )
        .unwrap();
    }
    let db = Db::open(dir.path(), Options::default().create_if_missing(true)).unwrap();
    match db.newest("ann", 10) {
        Err(Error::Corruption(c)) => assert_eq!(c.cf, "events"),
        other => panic!("expected corruption, got {other:?}"),
    }
    match db.profile("ann", Sensitive::Include) {
        Err(Error::Corruption(c)) => {
            assert_eq!(c.cf, "profiles");
            assert!(c.to_string().contains("unknown format byte"), "{c}");
        }
        other => panic!("expected corruption, got {other:?}"),
    }
    assert!(matches!(
        db.users_with_tag("vip", None),
        Err(Error::Corruption(_))
    ));
    let report = db.verify().unwrap();
    assert!(report.problem_count >= 3, "{:#?}", report.problems);
}

#[test]
fn a_bad_merge_operand_poisons_the_value_instead_of_failing_rocksdb() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), Options::default().create_if_missing(true)).unwrap();
    db.update_profile(
        "ann",
        &ProfileUpdate::new().tag("vip", TagSource::Manual, T0, None),
    )
    .unwrap();
    let ann = db.user_id("ann").unwrap().unwrap();
    drop(db);
    {
        let r = raw_open(dir.path());
        r.merge_cf(
            r.cf_handle("tag_index").unwrap(),
            stickydb::keys::tag_index("vip", ann),
            [0xde, 0xad],
        )
        .unwrap();
    }
    let db = Db::open(dir.path(), Options::default().create_if_missing(true)).unwrap();
    // the store keeps working: reads of the poisoned key are typed errors,
    // other writes go on, and a flush (which runs the merge) succeeds
    assert!(matches!(
        db.users_with_tag("vip", None),
        Err(Error::Corruption(_))
    ));
    db.record(&Event::new("bob", "view", T0)).unwrap();
    db.flush().unwrap();
    db.record(&Event::new("bob", "view", T0 + 1)).unwrap();
    assert_eq!(db.event_count().unwrap(), 2);
    assert!(!db.verify().unwrap().is_clean());
}

/// verify notices each kind of damage to the maintained aggregates, and
/// queries report a damaged per-user state as corruption, not a panic.
#[test]
fn verify_catches_tampered_aggregates() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), Options::default().create_if_missing(true)).unwrap();
    let day = db.local_day(T0);
    db.record_batch(&[
        Event::new("ann", "view", T0).with_session("s1"),
        Event::new("ann", "purchase", T0 + DAY).with_amount(700),
        Event::new("bob", "view", T0),
    ])
    .unwrap();
    let ann = db.user_id("ann").unwrap().unwrap();
    let bob = db.user_id("bob").unwrap().unwrap();
    assert_clean(&db);
    drop(db);

    // each tamper on a fresh copy of the healthy store
    type Tamper = Box<dyn Fn(&rocksdb::DB)>;
    use stickydb::keys::{activity, metrics as mk};
    // (what, how verify names it, the damage)
    let tampers: Vec<(&str, String, Tamper)> = vec![
        (
            "a user dropped from a day set",
            format!("DayUsers {{ kind: 0, day: {day}"),
            Box::new(move |r: &rocksdb::DB| {
                let k = mk::day_users(0, day, bob);
                let d = stickydb::store::merge::BitmapDelta::remove(bob);
                r.merge_cf(r.cf_handle("metrics").unwrap(), k, d.encode())
                    .unwrap();
            }),
        ),
        (
            "a GMV counter bumped",
            format!("Money {{ day: {}, field: Gmv }} is 705", day + 1),
            Box::new(move |r: &rocksdb::DB| {
                let k = mk::money(day + 1, stickydb::metrics::MoneyField::Gmv);
                r.merge_cf(
                    r.cf_handle("metrics").unwrap(),
                    k,
                    stickydb::store::merge::encode_counter(5),
                )
                .unwrap();
            }),
        ),
        (
            "a per-user state garbled",
            "column family activity at key 01".to_owned(),
            Box::new(move |r: &rocksdb::DB| {
                r.put_cf(
                    r.cf_handle("activity").unwrap(),
                    activity::head(ann),
                    [1u8, 0xff, 3],
                )
                .unwrap();
            }),
        ),
        (
            "a day dropped from a user's days",
            format!("user {ann} day sets differ"),
            Box::new(move |r: &rocksdb::DB| {
                let (block, _) = activity::block_of(day + 1);
                r.delete_cf(r.cf_handle("activity").unwrap(), activity::days(ann, block))
                    .unwrap();
            }),
        ),
        (
            "a session entry removed",
            format!("session \"s1\" of user {ann} not tracked"),
            Box::new(move |r: &rocksdb::DB| {
                let k = activity::session(ann, "s1");
                r.delete_cf(r.cf_handle("activity").unwrap(), k).unwrap();
            }),
        ),
        (
            "an active-user change bumped",
            format!("Rolling {{ window_days: 30, day: {} }}", day + 3),
            Box::new(move |r: &rocksdb::DB| {
                r.merge_cf(
                    r.cf_handle("metrics").unwrap(),
                    mk::rolling(30, day + 3),
                    stickydb::store::merge::encode_counter(1),
                )
                .unwrap();
            }),
        ),
    ];
    for (what, needle, tamper) in tampers {
        let copy = tempfile::tempdir().unwrap();
        let target = copy.path().join("db");
        {
            let db = Db::open(dir.path(), Options::default().create_if_missing(true)).unwrap();
            db.checkpoint(&target).unwrap();
        }
        {
            let r = raw_open(&target);
            tamper(&r);
        }
        let db = Db::open(&target, Options::default().create_if_missing(true)).unwrap();
        let report = db.verify().unwrap();
        assert!(!report.is_clean(), "verify missed: {what}");
        assert!(
            report.problems.iter().any(|p| p.contains(&needle)),
            "{what}: no problem names {needle:?}: {:#?}",
            report.problems
        );
        if what == "a per-user state garbled" {
            assert!(matches!(
                db.metrics().user(ann, day),
                Err(Error::Corruption(_))
            ));
            // a write touching the damaged user fails whole, changing nothing
            let before = db.raw_dump().unwrap();
            assert!(matches!(
                db.record(&Event::new("ann", "view", T0)),
                Err(Error::Corruption(ref c)) if c.cf == "activity" && c.key == activity::head(ann)
            ));
            assert_eq!(db.raw_dump().unwrap(), before);
        }
    }
}

#[test]
fn verify_catches_tampered_ledgers() {
    use stickydb::ledger::{Account, LedgerSettings, Lot, TierLevel, Tiers};
    use stickydb::PointsOp;
    // Each damage is applied to a fresh copy of one healthy store.
    let healthy = tempfile::tempdir().unwrap();
    {
        let db = Db::open(healthy.path(), Options::default().create_if_missing(true)).unwrap();
        db.set_ledger_settings(LedgerSettings::default().tiers(Tiers {
            window_days: 30,
            levels: vec![TierLevel {
                name: "gold".into(),
                min_growth: 10,
            }],
        }))
        .unwrap();
        let exp = PointsOp::Earn {
            points: 100,
            expires_at_ms: Some(T0 + DAY),
            reason: String::new(),
        };
        db.points("ann", "e", T0, &exp).unwrap();
        db.points("ann", "r", T0, &PointsOp::redeem(30, ""))
            .unwrap();
        assert_clean(&db);
    }
    fn key(tag: u8, rest: &[u8]) -> Vec<u8> {
        let mut k = 0u32.to_be_bytes().to_vec(); // ann is user 0
        k.push(tag);
        k.extend_from_slice(rest);
        k
    }
    type Damage = Box<dyn Fn(&rocksdb::DB)>;
    let damages: Vec<(&str, Damage)> = vec![
        (
            "balance bumped",
            Box::new(|r| {
                let cf = r.cf_handle("ledger").unwrap();
                let mut a: Account =
                    stickydb::codec::decode(&r.get_cf(cf, key(1, &[])).unwrap().unwrap()).unwrap();
                a.balance += 1;
                r.put_cf(cf, key(1, &[]), stickydb::codec::encode(&a).unwrap())
                    .unwrap();
            }),
        ),
        (
            "lot remaining changed",
            Box::new(|r| {
                let cf = r.cf_handle("ledger").unwrap();
                let k = key(3, &0u32.to_be_bytes());
                let mut l: Lot =
                    stickydb::codec::decode(&r.get_cf(cf, &k).unwrap().unwrap()).unwrap();
                l.remaining -= 1;
                r.put_cf(cf, k, stickydb::codec::encode(&l).unwrap())
                    .unwrap();
            }),
        ),
        (
            "due entry lost",
            Box::new(|r| {
                let cf = r.cf_handle("ledger_due").unwrap();
                let k = r
                    .iterator_cf(cf, rocksdb::IteratorMode::Start)
                    .next()
                    .unwrap()
                    .unwrap()
                    .0;
                r.delete_cf(cf, k).unwrap();
            }),
        ),
        (
            "tier member dropped",
            Box::new(|r| {
                let cf = r.cf_handle("metrics").unwrap();
                r.merge_cf(
                    cf,
                    stickydb::keys::metrics::tier_users("gold", 0),
                    stickydb::store::merge::BitmapDelta::remove(0).encode(),
                )
                .unwrap();
            }),
        ),
        (
            "transaction record lost",
            Box::new(|r| {
                let cf = r.cf_handle("ledger").unwrap();
                r.delete_cf(cf, key(6, b"r")).unwrap();
            }),
        ),
    ];
    for (what, damage) in damages {
        let copy = tempfile::tempdir().unwrap();
        let dst = copy.path().join("s");
        {
            let db = Db::open(healthy.path(), Options::default().create_if_missing(true)).unwrap();
            db.checkpoint(&dst).unwrap();
        }
        {
            let r = raw_open(&dst);
            damage(&r);
            r.flush_wal(true).unwrap();
        }
        let db = Db::open(&dst, Options::default().create_if_missing(true)).unwrap();
        let report = db.verify().unwrap();
        assert!(!report.is_clean(), "{what}: verify saw nothing");
    }

    // A garbled account is a typed error on the next operation, which writes nothing.
    {
        let r = raw_open(healthy.path());
        let cf = r.cf_handle("ledger").unwrap();
        r.put_cf(cf, key(1, &[]), [1u8, 0xff, 0xff]).unwrap();
        r.flush_wal(true).unwrap();
    }
    let db = Db::open(healthy.path(), Options::default().create_if_missing(true)).unwrap();
    let before = db.raw_dump().unwrap();
    let err = db
        .points("ann", "n", T0, &PointsOp::earn(1, ""))
        .unwrap_err();
    assert!(matches!(err, Error::Corruption(_)), "{err}");
    assert_eq!(before, db.raw_dump().unwrap());
    assert!(!db.verify().unwrap().is_clean());
}
