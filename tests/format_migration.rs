//! Backward compatibility: stores written by older builds (kept in
//! tests/data/formats: format 1 without aggregates, format 2 without the
//! ledger, format 3 before the write path v2) are refused read-only with
//! `NeedsMigration`, migrated on a writable open, and then answer every
//! metric exactly as they did; `rebuild_aggregates` repairs damaged
//! aggregates and keeps the ledger's tier sets.

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

/// Checks that a read-only open of a format-`found` store is refused with
/// `NeedsMigration`; returns the read-only options for later opens.
fn refused_read_only(path: &std::path::Path, found: u32) -> Options {
    let read_only = Options::default()
        .create_if_missing(true)
        .read_only(true)
        .create_if_missing(false);
    match Db::open(path, read_only.clone()) {
        Err(Error::Open(OpenError::NeedsMigration { found: f, current }))
            if f == found && current == stickydb::store::FORMAT_VERSION => {}
        other => panic!("expected NeedsMigration from {found}, got {other:?}"),
    }
    read_only
}

/// A closed store holding `fill`'s data, its first local day, and the metric
/// answers it gave before anything was done to it.
fn filled_store() -> (tempfile::TempDir, i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), Options::default().create_if_missing(true)).unwrap();
    fill(&db);
    let day = db.local_day(T0);
    let before = metric_snapshot(&db, day - 1, day + 50);
    (dir, day, before)
}

/// A copy of a store an older build wrote (tests/data/formats), with the
/// first local day of its data and the metric answers it gave then.
fn fixture(version: u32) -> (tempfile::TempDir, i32, String) {
    let (dir, src) = common::copy_fixture(&format!("v{version}"));
    let text = std::fs::read_to_string(src.join("expected.txt")).unwrap();
    let (first, rest) = text.split_once('\n').unwrap();
    let day: i32 = first.trim_start_matches("day ").parse().unwrap();
    (dir, day, rest.to_owned())
}

/// Opens an older store writable (migrating it), checks it, then checks a
/// read-only reopen gives the same answers.
fn migrates(version: u32) -> (tempfile::TempDir, Db) {
    let (dir, day, before) = fixture(version);
    let read_only = refused_read_only(dir.path(), version);
    let db = Db::open(dir.path(), Options::default().create_if_missing(true)).unwrap();
    assert_clean(&db);
    assert_eq!(metric_snapshot(&db, day - 1, day + 50), before);
    drop(db);
    // stamped: a read-only open now works and answers the same
    let db = Db::open(dir.path(), read_only).unwrap();
    assert_eq!(metric_snapshot(&db, day - 1, day + 50), before);
    drop(db);
    let db = Db::open(dir.path(), Options::default().create_if_missing(true)).unwrap();
    (dir, db)
}

#[test]
fn a_format_1_store_is_migrated_on_open() {
    let (_dir, db) = migrates(1);
    // aggregates rebuilt from events: a new event lands on them exactly
    db.record(&Event::new("u1", "view", T0 + 60 * DAY)).unwrap();
    assert_clean(&db);
}

#[test]
fn a_format_2_store_gains_a_ledger_on_open() {
    let (_dir, db) = migrates(2);
    let out = db
        .points("u1", "t1", T0, &stickydb::PointsOp::earn(10, "welcome"))
        .unwrap();
    assert_eq!(out.balance, 10);
    assert_clean(&db);
}

#[test]
fn a_format_3_store_is_migrated_with_its_ledger() {
    let (_dir, db) = migrates(3);
    // the ledger is primary data: untouched; its tier sets re-derived
    let u3 = db.account("u3").unwrap().unwrap();
    assert!(u3.balance > 0);
    let tiers: u64 = ["silver", "gold"]
        .iter()
        .map(|t| db.users_in_tier(t).unwrap().len())
        .sum();
    assert!(tiers > 0, "the fixture has tiered users");
    assert_eq!(
        db.profile("u0", stickydb::Sensitive::Exclude)
            .unwrap()
            .unwrap()
            .tags
            .len(),
        2
    );
    assert!(db.users_with_tag("t", None).unwrap().len() >= 20);
    assert_clean(&db);
}

#[test]
fn a_format_4_store_is_migrated_and_can_merge() {
    let (_dir, db) = migrates(4);
    // identity merges work on the migrated store: a new visitor merged
    // into one of the fixture's users
    db.record(&Event::new("visitor", "view", T0 + 50 * DAY))
        .unwrap();
    let out = db
        .merge("visitor", "u6", "m1", stickydb::MergeOptions::forced())
        .unwrap();
    assert_eq!(out.events_moved, 1);
    assert_eq!(db.user_id("visitor").unwrap(), db.user_id("u6").unwrap());
    assert_clean(&db);
}

#[test]
fn a_format_5_store_gains_stage_marks_and_a_feed() {
    let (_dir, db) = migrates(5);
    // the merge of format 5 survives: the alias still resolves
    assert_eq!(db.user_id("anon-1").unwrap(), db.user_id("u6").unwrap());
    // marks were derived silently (the feed starts empty); time passing
    // then publishes changes through the due index
    assert_eq!(db.feed(0, 10).unwrap().len(), 0);
    let report = db.advance(T0 + 200 * DAY).unwrap();
    assert!(report.stage_changes > 0);
    assert_eq!(db.feed(0, 1000).unwrap().len() as u64, report.stage_changes);
    assert_clean(&db);
}

#[test]
fn a_format_6_store_gains_a_social_family() {
    let (_dir, db) = migrates(6);
    assert_eq!(db.user_id("anon-1").unwrap(), db.user_id("u6").unwrap());
    // the share events written before social commerce count as shares
    let day = db.local_day(T0);
    let shares: i64 = db
        .social_by_day(day - 1, day + 50, None)
        .unwrap()
        .values()
        .map(|f| f.shares)
        .sum();
    let mut stored = 0i64;
    for u in 0..25 {
        if let Ok(events) = db.newest(&format!("u{u}"), 10_000) {
            stored += events
                .iter()
                .filter(|e| e.event.kind.as_str() == "share")
                .count() as i64;
        }
    }
    assert!(stored > 0, "the fixture has share events");
    assert_eq!(shares, stored);
    // and the migrated store takes social events
    db.record(&Event::new("u1", "share", T0 + 60 * DAY).with_share_id("s1"))
        .unwrap();
    db.record(&Event::new("u2", "view", T0 + 60 * DAY + 1).with_via("s1"))
        .unwrap();
    db.record(&Event::new("u2", "purchase", T0 + 60 * DAY + 2).with_amount(900))
        .unwrap();
    let top = db
        .top_sharers(day + 60, day + 60, stickydb::SharerRank::Gmv, 5, None)
        .unwrap();
    assert_eq!(top.len(), 1);
    assert_eq!(top[0].figures.gmv_minor, 900);
    assert_clean(&db);
}

#[test]
fn a_format_7_store_gains_experiment_assignments() {
    let (_dir, db) = migrates(7);
    // derived from the exposure events the format-7 build kept as plain
    // events (tests/data/formats/generate_v7.rs.txt): u10's late earlier
    // exposure to b moved it out of control; every fifth user saw the
    // other variant a day later; u1's exposure without properties is none
    let list = db.experiments().list().unwrap();
    type Summary = (String, Vec<(String, u64)>, u64);
    let summary: Vec<Summary> = list
        .iter()
        .map(|e| {
            let v = e
                .variants
                .iter()
                .map(|v| (v.variant.clone(), v.users))
                .collect();
            (e.experiment.clone(), v, e.contaminated_users)
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (
                "banner".into(),
                vec![("blue".into(), 4), ("red".into(), 4)],
                0
            ),
            (
                "checkout".into(),
                vec![("b".into(), 13), ("control".into(), 11)],
                5
            ),
        ]
    );
    // the store keeps its activity rule: its exposures counted as activity
    assert!(db.metric_settings().non_activity_kinds.is_empty());
    // and it takes new exposures
    db.record(
        &Event::new("u30", "exposure", T0 + 60 * DAY)
            .with_property("experiment", stickydb::PropValue::Str("checkout".into()))
            .with_property("variant", stickydb::PropValue::Str("control".into())),
    )
    .unwrap();
    assert_eq!(db.experiments().list().unwrap()[1].variants[1].users, 12);
    assert_clean(&db);
}

#[test]
fn a_format_8_store_gains_sequence_records() {
    // format 8 kept a user's next event sequence number only in its head
    // (derived state); the migration writes it as a primary record from
    // the events (docs/architecture.md, "Opening")
    let (_dir, db) = migrates(8);
    let stored = db.newest("u3", 1_000).unwrap();
    let at = stored[0].event.ts_ms;
    // a new event at a stored instant takes the next number: it adds
    match db.record(&Event::new("u3", "view", at)).unwrap() {
        stickydb::RecordOutcome::Recorded { seq, .. } => assert_eq!(seq as usize, stored.len()),
        other => panic!("{other:?}"),
    }
    let after = db.newest("u3", 1_000).unwrap();
    assert_eq!(after.len(), stored.len() + 1);
    for s in &stored {
        assert!(after.iter().any(|a| a.seq == s.seq && a.event == s.event));
    }
    assert_clean(&db);
}

/// Every session of the users `ids` from their stored events: day of the
/// first event → (sessions, bounces, duration ms, events).
fn sessions_from_events(
    db: &Db,
    ids: &[u32],
) -> std::collections::BTreeMap<i32, (u64, u64, i64, u64)> {
    let mut sessions: std::collections::BTreeMap<(u32, String), (i64, i64, u64)> =
        Default::default();
    for &u in ids {
        for e in db.newest(&format!("u{u}"), 10_000).unwrap_or_default() {
            if let Some(s) = &e.event.session_id {
                let t = e.event.ts_ms;
                let slot = sessions.entry((u, s.clone())).or_insert((t, t, 0));
                slot.0 = slot.0.min(t);
                slot.1 = slot.1.max(t);
                slot.2 += 1;
            }
        }
    }
    let mut days: std::collections::BTreeMap<i32, (u64, u64, i64, u64)> = Default::default();
    for (first, last, n) in sessions.values() {
        let d = days.entry(db.local_day(*first)).or_default();
        d.0 += 1;
        d.1 += u64::from(*n == 1);
        d.2 += last - first;
        d.3 += n;
    }
    days
}

#[test]
fn a_format_9_store_gains_session_depth() {
    // format 9 kept a session as its first day alone; the migration
    // re-derives each session's instants and events, and the day counters
    // of bounces, durations and events (docs/metrics.md, "Sessions")
    let (_dir, db) = migrates(9);
    let day = db.local_day(T0);
    let check = |db: &Db, ids: &[u32], filter: Option<&roaring::RoaringBitmap>| {
        let want = sessions_from_events(db, ids);
        let rows = db.metrics().sessions(day - 1, day + 50, filter).unwrap();
        assert!(want.values().map(|w| w.0).sum::<u64>() > 20, "{want:?}");
        for r in rows {
            let w = want.get(&r.day).copied().unwrap_or_default();
            assert_eq!(
                (r.sessions, r.bounces, r.duration_ms, r.events),
                w,
                "day {}",
                r.day
            );
        }
    };
    let all: Vec<u32> = (0..24).collect();
    check(&db, &all, None);
    // a segment's sessions read its users' records
    let odd: Vec<u32> = (0..24).filter(|u| u % 2 == 1).collect();
    let ids: roaring::RoaringBitmap = odd
        .iter()
        .filter_map(|u| db.user_id(&format!("u{u}")).ok().flatten())
        .collect();
    check(&db, &odd, Some(&ids));
    // a late earlier event of a stored session moves and lengthens it
    let first = db
        .newest("u5", 10_000)
        .unwrap()
        .into_iter()
        .filter(|e| e.event.session_id.as_deref() == Some("s1"))
        .map(|e| e.event.ts_ms)
        .min()
        .unwrap();
    db.record(&Event::new("u5", "view", first - 3 * DAY).with_session("s1"))
        .unwrap();
    check(&db, &all, None);
    assert_clean(&db);
}

#[test]
fn an_older_store_gains_the_attribute_index() {
    // format ≤ 10 had no attribute index: the migration derives it from the
    // profiles (every migration's assert_clean compares it with them too)
    let (_dir, db) = migrates(9);
    let now = T0 + 60 * DAY;
    let users = |parity: u32| -> roaring::RoaringBitmap {
        (0..24u32)
            .filter(|u| parity > 1 || u % 2 == parity)
            .filter_map(|u| db.user_id(&format!("u{u}")).unwrap())
            .collect()
    };
    for (expr, parity) in [
        ("attr:region=north", 0),
        ("attr:region=south", 1),
        ("attr:region^=so", 1),
        ("has:region", 2),
        ("attr:region>=north", 2),
    ] {
        let got = db
            .segment(&stickydb::Segment::parse(expr).unwrap(), now)
            .unwrap();
        assert_eq!(got, users(parity), "{expr}");
    }
    // and keeps it from then on
    db.update_profile("u0", &stickydb::ProfileUpdate::new().set("region", "south"))
        .unwrap();
    let south = db
        .segment(&stickydb::Segment::parse("attr:region=south").unwrap(), now)
        .unwrap();
    let mut want = users(1);
    want.insert(db.user_id("u0").unwrap().unwrap());
    assert_eq!(south, want);
    assert_clean(&db);
}

#[test]
fn rebuild_repairs_damaged_aggregates() {
    let (dir, day, before) = filled_store();
    {
        // a tier set in the metrics cf, which the rebuild must keep
        let db = Db::open(dir.path(), Options::default().create_if_missing(true)).unwrap();
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
        let k = stickydb::keys::metrics::money(day + 3, stickydb::metrics::MoneyField::Gmv);
        r.merge_cf(
            r.cf_handle("metrics").unwrap(),
            k,
            stickydb::store::merge::encode_counter(777),
        )
        .unwrap();
        let a = stickydb::keys::activity::session(3, "s1");
        r.delete_cf(r.cf_handle("activity").unwrap(), a).unwrap();
    }
    let db = Db::open(dir.path(), Options::default().create_if_missing(true)).unwrap();
    assert!(!db.verify().unwrap().is_clean());
    assert_eq!(db.rebuild_aggregates().unwrap(), 25 * 30);
    assert_clean(&db);
    assert_eq!(db.users_in_tier("gold").unwrap().len(), 1);
    assert_eq!(metric_snapshot(&db, day - 1, day + 50), before);
}
