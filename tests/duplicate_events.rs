//! Events are idempotent by (user, event_id), within and across batches and reopens.

mod common;
use common::*;
use stickydb::{Event, RecordOutcome};

#[test]
fn duplicates_change_nothing_and_are_reported() {
    let (dir, db) = open_temp();
    let first = db
        .record(
            &Event::new("ann", "purchase", T0)
                .with_id("o-1")
                .with_amount(500),
        )
        .unwrap();
    assert!(matches!(first, RecordOutcome::Recorded { .. }));
    let before = db.raw_dump().unwrap();
    // same id, even with a different payload, is a duplicate
    let again = db
        .record(
            &Event::new("ann", "purchase", T0 + 5)
                .with_id("o-1")
                .with_amount(999),
        )
        .unwrap();
    assert_eq!(again, RecordOutcome::Duplicate);
    assert_eq!(db.raw_dump().unwrap(), before);
    drop(db);

    let db = reopen(&dir);
    let out = db
        .record_batch(&[
            Event::new("ann", "purchase", T0).with_id("o-1"),
            Event::new("ann", "view", T0).with_id("v-1"),
            Event::new("ann", "view", T0).with_id("v-1"),
            Event::new("bob", "view", T0).with_id("v-1"), // other user: not a duplicate
            Event::new("ann", "view", T0),                // no id: never deduplicated
            Event::new("ann", "view", T0),
        ])
        .unwrap();
    let dups: Vec<bool> = out.iter().map(|o| *o == RecordOutcome::Duplicate).collect();
    assert_eq!(dups, vec![true, false, true, false, false, false]);
    assert_eq!(db.event_count().unwrap(), 5);
    assert_eq!(db.newest("ann", 100).unwrap().len(), 4);
    assert_clean(&db);
}
