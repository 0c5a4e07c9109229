//! Human output, golden text (issue 17): `user` with typed values, local
//! times in the store's offset, tags with source and age, money in
//! currency units, the as-of line; a table command. Fixed clock: every
//! answer is asked `--as-of` a day, so nothing depends on when it runs.

mod common;

use common::cli::{ok, stickydb};
use stickydb::{Db, Event, Options, ProfileUpdate, TagSource};

const HOUR: i64 = 3_600_000;

fn store() -> (tempfile::TempDir, std::path::PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("s");
    let db = Db::open(
        &path,
        Options::default()
            .create_if_missing(true)
            .utc_offset_minutes(8 * 60),
    )
    .unwrap();
    let t0 = common::T0; // 2024-03-01 00:00 UTC = 08:00 at +08:00
    db.record_batch(&[
        Event::new("ana", "signup", t0 + HOUR),
        Event::new("ana", "view", t0 + 2 * HOUR),
        Event::new("ana", "purchase", t0 + 3 * HOUR).with_amount(123_456),
        Event::new(
            "ana",
            "view",
            t0 + 3 * common::DAY + 15 * HOUR + 30 * 60_000,
        ),
        Event::new("bo", "view", t0 + 4 * common::DAY),
    ])
    .unwrap();
    db.update_profile(
        "ana",
        &ProfileUpdate::new()
            .set("age", 37)
            .set("region", "north")
            .set("newsletter", true)
            .tag("vip", TagSource::Rule, t0 + 2 * common::DAY, None)
            .tag("trial", TagSource::Manual, t0, Some(t0 + 2 * common::DAY)),
    )
    .unwrap();
    let earn = stickydb::PointsOp::Earn {
        points: 120,
        expires_at_ms: Some(t0 + 30 * common::DAY),
        reason: "welcome".into(),
    };
    db.points("ana", "t1", t0 + 4 * HOUR, &earn).unwrap();
    let redeem = stickydb::PointsOp::Redeem {
        points: 20,
        reason: "coupon".into(),
    };
    db.points("ana", "t2", t0 + 5 * HOUR, &redeem).unwrap();
    db.close().unwrap();
    (tmp, path)
}

#[test]
fn user_reads_as_a_person_writes() {
    let (_tmp, db) = store();
    let out = ok(&stickydb(&db, &["user", "ana", "--as-of", "2024-03-05"]));
    let want = [
        "user ana",
        "as of 2024-03-05",
        "profile",
        "  age         37",
        "  newsletter  true",
        "  region      north",
        "tags",
        "  trial  manual, 4 days ago, expired 2024-03-03 08:00",
        "  vip    rule, 2 days ago",
        "activity",
        "  stage        new",
        "  active days  2",
        "  first seen   2024-03-01",
        "  last seen    2024-03-04",
        "  purchases    1 (1234.56 spent)",
        "stages (last 180 days)",
        "  new  2024-03-01 .. 2024-03-05",
        "points",
        "  balance  100",
        "  held     0",
        "  tier     -",
        "newest events",
        "  2024-03-04 23:30  view",
        "  2024-03-01 11:00  purchase     1234.56",
        "  2024-03-01 10:00  view",
        "  2024-03-01 09:00  signup",
    ]
    .map(|l| format!("{l}\n"))
    .concat();
    assert_eq!(out, want, "\n{out}");
}

#[test]
fn a_table_command_aligns_its_columns() {
    let (_tmp, db) = store();
    let out = ok(&stickydb(
        &db,
        &[
            "metrics",
            "active",
            "--from",
            "2024-03-01",
            "--to",
            "2024-03-05",
        ],
    ));
    let want = [
        "day         dau  wau  mau  stickiness",
        "2024-03-01    1    1    1         1.0",
        "2024-03-02    0    1    1         0.0",
        "2024-03-03    0    1    1         0.0",
        "2024-03-04    1    1    1         1.0",
        "2024-03-05    1    2    2         0.5",
    ]
    .map(|l| format!("{l}\n"))
    .concat();
    assert_eq!(out, want, "\n{out}");
}

#[test]
fn points_history_is_a_table() {
    let (_tmp, db) = store();
    let out = ok(&stickydb(&db, &["points", "history", "ana"]));
    let want = [
        "points of ana",
        "account",
        "  balance    100",
        "  held       0",
        "  available  100",
        "  tier       -",
        "open lots",
        "lot  earned            points  remaining  held  expires",
        "  0  2024-03-01 12:00     120        100     0  2024-03-31 08:00",
        "entries (newest first)",
        "when              kind    points  held  txn  reason",
        "2024-03-01 13:00  redeem     -20     0  t2   coupon",
        "2024-03-01 12:00  earn      +120     0  t1   welcome",
    ]
    .map(|l| format!("{l}\n"))
    .concat();
    assert_eq!(out, want, "\n{out}");
    // JSON only when asked
    assert!(ok(&stickydb(&db, &["--json", "points", "history", "ana"])).starts_with('{'));
}
