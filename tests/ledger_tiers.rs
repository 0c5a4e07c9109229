//! Tiers (SPEC §4): growth = points earned over a trailing window of local
//! days; ordered thresholds name the tier; every change is recorded with its
//! time — upgrades when points are earned, downgrades at the exact instant
//! old growth leaves the window (settled by `expire_points`); the recorded
//! tier is a segment atom; changing the tiers re-evaluates every account.

mod common;
use common::*;
use stickydb::ledger::{LedgerSettings, TierLevel, Tiers};
use stickydb::{Db, Options, PointsOp, Segment};

fn tiers(window_days: u32) -> LedgerSettings {
    let level = |name: &str, min_growth| TierLevel {
        name: name.into(),
        min_growth,
    };
    LedgerSettings::default().tiers(Tiers {
        window_days,
        levels: vec![level("silver", 100), level("gold", 300)],
    })
}

fn earn(db: &Db, user: &str, txn: &str, at: i64, points: i64) {
    db.points(user, txn, at, &PointsOp::earn(points, ""))
        .unwrap();
}

fn changes(db: &Db, user: &str) -> Vec<(i64, Option<String>, Option<String>)> {
    let mut v: Vec<_> = db
        .tier_history(user)
        .unwrap()
        .into_iter()
        .map(|c| (c.at_ms, c.from, c.to))
        .collect();
    v.reverse();
    v
}

fn s(x: &str) -> Option<String> {
    Some(x.to_owned())
}

#[test]
fn upgrades_on_earn_and_downgrades_when_growth_leaves_the_window() {
    // +02:00: the window moves at local midnight, 22:00 UTC
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(
        dir.path(),
        Options::default()
            .create_if_missing(true)
            .utc_offset_minutes(120),
    )
    .unwrap();
    db.set_ledger_settings(tiers(30)).unwrap();
    let day0 = db.local_day(T0);
    let midnight = |d: i32| d as i64 * DAY - 2 * 3_600_000;
    earn(&db, "ann", "a", T0, 150);
    assert_eq!(db.tier("ann").unwrap(), s("silver"));
    earn(&db, "ann", "b", T0 + 10 * DAY, 200);
    assert_eq!(db.tier("ann").unwrap(), s("gold"));
    assert_eq!(db.growth("ann", T0 + 10 * DAY).unwrap(), 350);

    // the 150 of day0 leave the window at the start of day0 + 30
    let drop_at = midnight(day0 + 30);
    let r = db.expire_points(drop_at - 1).unwrap();
    assert_eq!(r.tier_changes, 0);
    assert_eq!(db.tier("ann").unwrap(), s("gold"));
    let r = db.expire_points(drop_at + 5 * DAY).unwrap();
    assert_eq!(r.tier_changes, 1);
    assert_eq!(db.tier("ann").unwrap(), s("silver"));
    // the 200 of day0 + 10 leave at day0 + 40: one run settles both drops,
    // each at its own instant
    earn(&db, "bob", "x", T0, 400);
    let r = db.expire_points(T0 + 100 * DAY).unwrap();
    assert_eq!(r.tier_changes, 2, "ann silver → none, bob gold → none");
    assert_eq!(
        changes(&db, "ann"),
        vec![
            (T0, None, s("silver")),
            (T0 + 10 * DAY, s("silver"), s("gold")),
            (drop_at, s("gold"), s("silver")),
            (midnight(day0 + 40), s("silver"), None),
        ]
    );
    assert_eq!(db.tier("bob").unwrap(), None);
    assert_clean(&db);
    // re-running changes nothing
    let before = db.raw_dump().unwrap();
    assert_eq!(db.expire_points(T0 + 100 * DAY).unwrap().tier_changes, 0);
    assert_eq!(before, db.raw_dump().unwrap());
}

#[test]
fn a_write_after_a_long_gap_records_the_missed_downgrade_first() {
    let (_d, db) = open_temp();
    db.set_ledger_settings(tiers(30)).unwrap();
    earn(&db, "ann", "a", T0, 350);
    // no expiry run; the next write comes 60 days later
    earn(&db, "ann", "b", T0 + 60 * DAY, 120);
    let day0 = db.local_day(T0);
    assert_eq!(
        changes(&db, "ann"),
        vec![
            (T0, None, s("gold")),
            ((day0 as i64 + 30) * DAY, s("gold"), None),
            (T0 + 60 * DAY, None, s("silver")),
        ]
    );
    assert_clean(&db);
}

#[test]
fn reversing_an_earn_lowers_growth_and_tier() {
    let (_d, db) = open_temp();
    db.set_ledger_settings(tiers(365)).unwrap();
    earn(&db, "ann", "a", T0, 120);
    earn(&db, "ann", "b", T0 + DAY, 200);
    db.points("ann", "r", T0 + 2 * DAY, &PointsOp::redeem(250, ""))
        .unwrap();
    assert_eq!(db.tier("ann").unwrap(), s("gold"));
    let out = db
        .points(
            "ann",
            "undo",
            T0 + 3 * DAY,
            &PointsOp::Reverse { txn: "b".into() },
        )
        .unwrap();
    // neither lot expires, so the older (a) was drawn first: 120 from a,
    // 130 from b; 70 of b are left to take back, 130 are the shortfall.
    assert_eq!((out.amount, out.shortfall), (-70, 130));
    assert_eq!(db.growth("ann", T0 + 3 * DAY).unwrap(), 120);
    assert_eq!(db.tier("ann").unwrap(), s("silver"));
    assert_clean(&db);
}

#[test]
fn tier_is_a_segment_atom_and_settings_changes_retier() {
    let (_d, db) = open_temp();
    db.set_ledger_settings(tiers(365)).unwrap();
    earn(&db, "ann", "a", T0, 350);
    earn(&db, "bob", "a", T0, 150);
    earn(&db, "cid", "a", T0, 50);
    let names = |seg: &str| -> Vec<String> {
        let set = db.segment(&Segment::parse(seg).unwrap(), T0).unwrap();
        set.iter()
            .map(|u| db.user_name(u).unwrap().unwrap())
            .collect()
    };
    assert_eq!(names("tier:gold"), ["ann"]);
    assert_eq!(names("tier:silver or tier:gold"), ["ann", "bob"]);
    assert_eq!(names("not tier:silver and not tier:gold"), ["cid"]);

    // raise the bar: ann drops to silver, bob to none; recorded at their clocks
    let mut harder = tiers(365);
    harder.tiers.levels[0].min_growth = 200;
    harder.tiers.levels[1].min_growth = 400;
    db.set_ledger_settings(harder).unwrap();
    assert_eq!(names("tier:silver"), ["ann"]);
    assert!(names("tier:gold").is_empty());
    assert_eq!(db.tier("bob").unwrap(), None);
    // no tiers at all: nobody has one
    db.set_ledger_settings(LedgerSettings::default()).unwrap();
    assert!(names("tier:silver").is_empty());
    assert_eq!(db.tier("ann").unwrap(), None);
    assert_clean(&db);
}
