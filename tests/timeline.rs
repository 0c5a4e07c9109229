//! Timelines read newest-first with half-open time bounds and a limit.

mod common;
use common::*;
use stickydb::{Error, Event, EventKind, PropValue};

#[test]
fn newest_first_with_bounds_and_limit() {
    let (_dir, db) = open_temp();
    // shuffled arrival order, including ties in time
    let ts = [5, 1, 9, 3, 9, 7, 0, 2];
    let events: Vec<Event> = ts
        .iter()
        .enumerate()
        .map(|(i, t)| {
            Event::new("ann", "view", T0 + t * 1000).with_property("i", PropValue::Int(i as i64))
        })
        .collect();
    db.record_batch(&events).unwrap();
    db.record(&Event::new("bob", "view", T0 + 4000)).unwrap();

    let all = db.newest("ann", 100).unwrap();
    let got: Vec<i64> = all.iter().map(|e| (e.event.ts_ms - T0) / 1000).collect();
    assert_eq!(got, vec![9, 9, 7, 5, 3, 2, 1, 0]);
    // equal timestamps: the later arrival first
    assert_eq!(all[0].event.properties["i"], PropValue::Int(4));
    assert_eq!(all[1].event.properties["i"], PropValue::Int(2));

    // [from, to): from inclusive, to exclusive
    let mid = db.timeline("ann", T0 + 2000, T0 + 7000, 100).unwrap();
    let got: Vec<i64> = mid.iter().map(|e| (e.event.ts_ms - T0) / 1000).collect();
    assert_eq!(got, vec![5, 3, 2]);

    let top2 = db.timeline("ann", T0, T0 + 100_000, 2).unwrap();
    assert_eq!(top2.len(), 2);
    assert!(db
        .timeline("ann", T0 + 5000, T0 + 5000, 10)
        .unwrap()
        .is_empty());
    assert!(db.timeline("ann", T0, T0 + 1, 0).unwrap().is_empty());
    // other users never leak in
    assert!(all.iter().all(|e| e.event.user == "ann"));
    assert_eq!(db.newest("bob", 10).unwrap().len(), 1);
}

#[test]
fn fields_round_trip_including_custom_kinds() {
    let (dir, db) = open_temp();
    let e = Event::new("ann", "purchase", T0)
        .with_id("o-1")
        .with_session("s-1")
        .with_amount(12_345)
        .with_property("sku", PropValue::Str("A-1".into()))
        .with_property("gift", PropValue::Bool(true))
        .with_property("w", PropValue::Float(1.5));
    db.record(&e).unwrap();
    db.record(&Event::new("ann", "wishlist_add", T0 + 1))
        .unwrap();
    drop(db);
    let db = reopen(&dir);
    let got = db.newest("ann", 10).unwrap();
    assert_eq!(got[1].event, e);
    assert_eq!(got[0].event.kind, EventKind::Custom("wishlist_add".into()));
    assert_eq!(
        db.event_count_of(&EventKind::Custom("wishlist_add".into()))
            .unwrap(),
        1
    );
    assert_eq!(db.event_count_of(&EventKind::Purchase).unwrap(), 1);
    assert_eq!(db.event_count().unwrap(), 2);
    assert_clean(&db);
}

#[test]
fn unknown_user_and_bad_limit_are_typed_errors() {
    let (_dir, db) = open_temp();
    assert!(matches!(
        db.newest("nobody", 10),
        Err(Error::UnknownUser { .. })
    ));
    db.record(&Event::new("ann", "view", T0)).unwrap();
    assert!(matches!(db.newest("ann", 10_000_000), Err(Error::Input(_))));
}
