//! Concurrent writers on the same users lose no update.

mod common;
use std::collections::BTreeSet;
use std::sync::Barrier;

use common::*;
use stickydb::{Event, ProfileUpdate, RecordOutcome, TagSource};

const THREADS: usize = 6;
const PER_THREAD: usize = 300;
const USERS: usize = 5;

#[test]
fn racing_writers_keep_every_event_and_tag() {
    let (dir, db) = open_temp();
    let barrier = Barrier::new(THREADS);
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let (db, barrier) = (&db, &barrier);
            s.spawn(move || {
                barrier.wait();
                for i in 0..PER_THREAD {
                    // every thread writes the same users at the same instants:
                    // without per-user serialisation the per-user sequence
                    // would repeat and events would overwrite each other.
                    let user = format!("shared-{}", i % USERS);
                    let e = Event::new(user.as_str(), "view", T0 + (i / USERS) as i64)
                        .with_id(format!("t{t}-{i}"));
                    if i % 7 == 0 {
                        // a batch naming several users, to race multi-stripe locking
                        let batch: Vec<Event> = (0..USERS)
                            .map(|u| {
                                Event::new(format!("shared-{u}"), "view", T0)
                                    .with_id(format!("t{t}-{i}-b{u}"))
                            })
                            .collect();
                        db.record_batch(&batch).unwrap();
                    }
                    assert!(matches!(
                        db.record(&e).unwrap(),
                        RecordOutcome::Recorded { .. }
                    ));
                    // everyone also races to record the same shared event id
                    let _ = db.record(
                        &Event::new(user.as_str(), "sign_in", T0).with_id(format!("shared-{i}")),
                    );
                    let tag = format!("t{t}");
                    db.update_profile(
                        &user,
                        &ProfileUpdate::new().tag(tag, TagSource::Rule, T0, None),
                    )
                    .unwrap();
                    db.update_profile(
                        &format!("fresh-{t}-{i}"),
                        &ProfileUpdate::new().set("n", i as i64),
                    )
                    .unwrap();
                }
            });
        }
    });

    let batches_per_thread = PER_THREAD.div_ceil(7);
    let expected_views = THREADS * (PER_THREAD + batches_per_thread * USERS);
    let expected_shared = PER_THREAD; // each shared id recorded exactly once
    assert_eq!(
        db.event_count().unwrap() as usize,
        expected_views + expected_shared
    );
    let mut seqs_seen = 0;
    for u in 0..USERS {
        let events = db.newest(&format!("shared-{u}"), 100_000).unwrap();
        let seqs: BTreeSet<u32> = events.iter().map(|e| e.seq).collect();
        assert_eq!(
            seqs.len(),
            events.len(),
            "sequence numbers repeat for shared-{u}"
        );
        seqs_seen += events.len();
    }
    assert_eq!(seqs_seen, expected_views + expected_shared);
    for t in 0..THREADS {
        assert_eq!(
            db.users_with_tag(&format!("t{t}"), None).unwrap().len() as usize,
            USERS
        );
    }
    // new users allocated concurrently got distinct ids
    assert_eq!(
        db.user_count().unwrap() as usize,
        USERS + THREADS * PER_THREAD
    );
    assert_clean(&db);
    drop(db);
    assert_clean(&reopen(&dir));
}

#[test]
fn db_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<stickydb::Db>();
}
