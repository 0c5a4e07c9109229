//! The worked example of docs/identity.md, step by step.

mod common;
use common::*;
use stickydb::metrics::{Period, RetentionQuery};
use stickydb::{Db, Event, IdentitySettings, MergeOptions};

/// 2024-03-01 00:00 UTC.
const MAR1: i64 = 1_709_251_200_000;
const HOUR: i64 = 3_600_000;

/// (DAU 03-01, DAU 03-05, users, new users 03-01, new users 03-05)
fn row(db: &Db) -> (u64, u64, u64, u64, u64) {
    let d1 = db.local_day(MAR1);
    let m = db.metrics();
    let active = m.active(None, d1, d1 + 4, None).unwrap();
    let daily = m.daily(d1, d1 + 4).unwrap();
    (
        active[0].dau,
        active[4].dau,
        db.user_count().unwrap(),
        daily[0].new_users,
        daily[4].new_users,
    )
}

#[test]
fn the_worked_example_of_docs_identity() {
    let (_dir, db) = open_temp();
    db.set_identity_settings(IdentitySettings::anonymous(["anon:"]))
        .unwrap();
    // 1
    db.record(&Event::new("anon:7", "view", MAR1 + 10 * HOUR))
        .unwrap();
    db.record(&Event::new("anon:7", "view", MAR1 + 4 * DAY + 9 * HOUR))
        .unwrap();
    assert_eq!(row(&db), (1, 1, 1, 1, 0));
    // 2
    db.record(&Event::new("m-42", "signup", MAR1 + 4 * DAY + 10 * HOUR))
        .unwrap();
    db.record(
        &Event::new("m-42", "purchase", MAR1 + 4 * DAY + 10 * HOUR + 300_000).with_amount(900),
    )
    .unwrap();
    assert_eq!(row(&db), (1, 2, 2, 1, 1));
    // 3
    let out = db
        .merge("anon:7", "m-42", "signup-42", MergeOptions::default())
        .unwrap();
    // 03-05 both were active: one day added (03-01)
    assert_eq!(
        (out.events_moved, out.duplicate_events, out.days_added),
        (2, 0, 1)
    );
    assert_eq!(row(&db), (1, 1, 1, 1, 0));
    let kinds: Vec<String> = db
        .newest("m-42", 10)
        .unwrap()
        .iter()
        .map(|e| e.event.kind.as_str().to_owned())
        .collect();
    assert_eq!(kinds, ["purchase", "signup", "view", "view"]);
    let d1 = db.local_day(MAR1);
    let m42 = db.user_id("m-42").unwrap().unwrap();
    assert_eq!(
        db.metrics()
            .user(m42, d1 + 5)
            .unwrap()
            .unwrap()
            .first_seen_day,
        Some(d1)
    );
    let retention = db
        .metrics()
        .retention(&RetentionQuery::new(Period::Day, d1, d1 + 4), None)
        .unwrap();
    let cohort = &retention.cohorts[0];
    assert_eq!((cohort.cohort, cohort.size), (d1, 1));
    assert_eq!(cohort.counts[4], 1, "returned on day 4");
    assert!(retention.cohorts[4..].iter().all(|c| c.size == 0));
    // 4
    db.record(&Event::new("anon:7", "view", MAR1 + 5 * DAY))
        .unwrap();
    assert_eq!(row(&db), (1, 1, 1, 1, 0));
    assert_eq!(db.newest("m-42", 10).unwrap().len(), 5);
    assert_clean(&db);
}
