//! An identify call that arrives before the device's buffered events: the
//! merge registers the alias, and the device's later events go to the
//! member — every answer equals a store where they had always been the
//! member's.

mod common;
use common::*;

use stickydb::{Db, Event, IdentitySettings, MergeOptions};

fn anon(db: &Db) {
    db.set_identity_settings(IdentitySettings::anonymous(["dev:"]))
        .unwrap();
}

fn device_events(user: &str) -> Vec<Event> {
    (0..6)
        .map(|i| {
            let e = Event::new(
                user,
                if i % 3 == 2 { "purchase" } else { "view" },
                T0 + i * DAY / 2,
            )
            .with_id(format!("d{i}"));
            if i % 3 == 2 {
                e.with_amount(1_000 + i)
            } else {
                e
            }
        })
        .collect()
}

#[test]
fn identify_before_the_events_sends_them_to_the_member() {
    let (_a, merged) = open_temp();
    let (_b, oracle) = open_temp();
    anon(&merged);
    anon(&oracle);
    for db in [&merged, &oracle] {
        db.record(&Event::new("member", "signup", T0 - DAY))
            .unwrap();
    }
    // the identify comes first: `dev:1` has no events yet
    let out = merged
        .merge("dev:1", "member", "id-1", MergeOptions::default())
        .unwrap();
    assert_eq!((out.events_moved, out.into.as_str()), (0, "member"));
    assert_eq!(merged.user_count().unwrap(), 1);
    // then the device's buffered events, under its own id
    merged.record_batch(&device_events("dev:1")).unwrap();
    oracle.record_batch(&device_events("member")).unwrap();
    // replaying the identify changes nothing
    assert!(
        merged
            .merge("dev:1", "member", "id-1", MergeOptions::default())
            .unwrap()
            .replayed
    );

    assert_eq!(merged.newest("member", 100).unwrap().len(), 7);
    assert_eq!(merged.user_count().unwrap(), 1);
    let day = merged.local_day(T0) - 1;
    assert_same_answers(
        &metric_snapshot(&merged, day, day + 5),
        &metric_snapshot(&oracle, day, day + 5),
        "identify before events",
    );
    assert_clean(&merged);
}

#[test]
fn an_into_not_seen_yet_is_created() {
    let (_d, db) = open_temp();
    anon(&db);
    db.record_batch(&device_events("dev:2")).unwrap();
    let out = db
        .merge("dev:2", "member-2", "id-2", MergeOptions::default())
        .unwrap();
    assert_eq!(out.events_moved, 6);
    assert_eq!(db.newest("member-2", 100).unwrap().len(), 6);
    assert_eq!(db.user_count().unwrap(), 1);
    // both unknown: the alias and its member, no events
    db.merge("dev:3", "member-3", "id-3", MergeOptions::default())
        .unwrap();
    db.record(&Event::new("dev:3", "view", T0)).unwrap();
    assert_eq!(db.newest("member-3", 10).unwrap().len(), 1);
    assert_clean(&db);
}
