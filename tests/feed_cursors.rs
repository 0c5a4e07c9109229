//! Feed cursors are never handed out twice (SPEC §5): not after a trim of
//! every entry and a reopen, when no entry is left to say how far the
//! cursors went; and entries of concurrent writers become visible in cursor
//! order, each cursor once (the group commit of `store/commit.rs`).

mod common;
use common::*;
use stickydb::{Db, Event, Options};

fn new_user(db: &Db, i: usize) {
    // a new user's first event publishes its `new` stage: one entry
    db.record(&Event::new(format!("u{i}"), "view", T0 + i as i64))
        .unwrap();
}

#[test]
fn a_whole_trim_and_a_reopen_do_not_reuse_cursors() {
    let dir = tempfile::tempdir().unwrap();
    let last = {
        let db = Db::open(dir.path(), Options::default().create_if_missing(true)).unwrap();
        for i in 0..50 {
            new_user(&db, i);
        }
        let last = db.feed_head().unwrap();
        assert_eq!(last, 50);
        assert_eq!(db.trim_feed(last).unwrap(), 50);
        assert!(db.feed(0, 10).unwrap().is_empty());
        db.close().unwrap();
        last
    };
    // twice: the high-water mark outlives a second reopen with nothing new
    for _ in 0..2 {
        let db = Db::open(dir.path(), Options::default().create_if_missing(true)).unwrap();
        db.close().unwrap();
    }
    let db = Db::open(dir.path(), Options::default().create_if_missing(true)).unwrap();
    new_user(&db, 99);
    let entries = db.feed(0, 10).unwrap();
    assert_eq!(entries.len(), 1);
    assert!(
        entries[0].cursor > last,
        "cursor {} handed out again (the consumer stored {last})",
        entries[0].cursor
    );
    // a trim of part of the feed keeps the mark too
    new_user(&db, 100);
    let head = db.feed_head().unwrap();
    db.trim_feed(head - 1).unwrap();
    drop(db);
    let db = Db::open(dir.path(), Options::default().create_if_missing(true)).unwrap();
    db.trim_feed(head).unwrap();
    drop(db);
    let db = Db::open(dir.path(), Options::default().create_if_missing(true)).unwrap();
    new_user(&db, 101);
    assert!(db.feed(0, 10).unwrap()[0].cursor > head);
    assert_clean(&db);
}

#[test]
fn concurrent_writers_get_each_cursor_once_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), Options::default().create_if_missing(true)).unwrap();
    std::thread::scope(|s| {
        for t in 0..4 {
            let db = &db;
            s.spawn(move || {
                for i in 0..200 {
                    new_user(db, t * 1_000 + i);
                }
            });
        }
        // a reader polling meanwhile never finds a new entry below the
        // highest cursor it has seen
        let db = &db;
        s.spawn(move || {
            let mut known = std::collections::BTreeSet::new();
            let mut highest = 0u64;
            for _ in 0..300 {
                let entries = db.feed(0, 10_000).unwrap();
                for e in &entries {
                    assert!(
                        e.cursor > highest || known.contains(&e.cursor),
                        "entry {} appeared below {highest}",
                        e.cursor
                    );
                }
                known.extend(entries.iter().map(|e| e.cursor));
                highest = known.last().copied().unwrap_or(0);
            }
        });
    });
    let all = db.feed(0, 10_000).unwrap();
    let cursors: Vec<u64> = all.iter().map(|e| e.cursor).collect();
    assert_eq!(cursors, (1..=800).collect::<Vec<u64>>());
    assert_clean(&db);
}
