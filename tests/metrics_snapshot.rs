//! A metrics handle reads one consistent snapshot: its answers agree with each
//! other while writers run, and it does not see later writes.

mod common;
use std::sync::atomic::{AtomicBool, Ordering};

use common::*;
use stickydb::metrics::{Period, RetentionQuery};
use stickydb::Event;

#[test]
fn a_handle_is_a_consistent_snapshot() {
    let (_dir, db) = open_temp();
    let day = db.local_day(T0);
    db.record(&Event::new("first", "view", T0)).unwrap();
    let before = db.metrics();
    db.record(&Event::new("second", "view", T0)).unwrap();
    assert_eq!(before.active(None, day, day, None).unwrap()[0].dau, 1);
    assert_eq!(db.metrics().active(None, day, day, None).unwrap()[0].dau, 2);

    // readers race a writer that keeps adding users with late events
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            for i in 0..400i64 {
                let u = format!("w{i}");
                db.record_batch(&[
                    Event::new(u.as_str(), "view", T0 + (i % 20) * DAY),
                    Event::new(u.as_str(), "view", T0 + (i % 7) * DAY),
                ])
                .unwrap();
            }
            stop.store(true, Ordering::SeqCst);
        });
        for _ in 0..2 {
            s.spawn(|| {
                let mut checks = 0;
                while !stop.load(Ordering::SeqCst) || checks == 0 {
                    let m = db.metrics();
                    let q = RetentionQuery::new(Period::Day, day, day + 20);
                    let cohorts: u64 = m
                        .retention(&q, None)
                        .unwrap()
                        .cohorts
                        .iter()
                        .map(|c| c.size)
                        .sum();
                    let active = m.active_users(None, day, day + 20, None).unwrap().len();
                    let new_users: u64 = m
                        .daily(day, day + 20)
                        .unwrap()
                        .iter()
                        .map(|r| r.new_users)
                        .sum();
                    // every active user is in exactly one first-activity cohort
                    assert_eq!(cohorts, active);
                    assert_eq!(new_users, active);
                    checks += 1;
                }
            });
        }
    });
    assert_clean(&db);
}
