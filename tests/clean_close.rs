//! SPEC §6: a store closed cleanly leaves no write-ahead log to replay, so
//! the next open (read-only included) costs milliseconds.

mod common;
use common::*;
use stickydb::{Db, Event, Options};

fn wal_bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.path().extension().is_some_and(|x| x == "log"))
        .map(|e| e.metadata().unwrap().len())
        .sum()
}

fn fill(db: &Db) {
    let events: Vec<Event> = (0..2_000i64)
        .map(|i| {
            Event::new(format!("u{}", i % 97), "view", T0 + i * 60_000).with_id(format!("e{i}"))
        })
        .collect();
    db.record_batch(&events).unwrap();
}

#[test]
fn dropping_a_store_leaves_no_log_to_replay() {
    let (dir, db) = open_temp();
    fill(&db);
    assert!(
        wal_bytes(dir.path()) > 0,
        "the writes went to the WAL first"
    );
    drop(db);
    assert_eq!(wal_bytes(dir.path()), 0);
    let ro = Db::open(
        dir.path(),
        Options::default()
            .create_if_missing(true)
            .read_only(true)
            .create_if_missing(false),
    )
    .unwrap();
    assert_eq!(ro.event_count().unwrap(), 2_000);
}

#[test]
fn close_reports_and_leaves_no_log() {
    let (dir, db) = open_temp();
    fill(&db);
    db.close().unwrap();
    assert_eq!(wal_bytes(dir.path()), 0);
    let db = reopen(&dir);
    assert_eq!(db.event_count().unwrap(), 2_000);
    assert_clean(&db);
}
