//! Concurrent writers on overlapping users end with the same metrics as a
//! serial run of the same events.

mod common;
use std::sync::Barrier;

use common::*;
use stickydb::Event;

const THREADS: usize = 4;
const USERS: i64 = 12;

fn events_for(t: usize) -> Vec<Vec<Event>> {
    // every thread writes every user, at shuffled days, in small batches
    (0..60i64)
        .map(|i| {
            (0..5i64)
                .map(|j| {
                    let n = i * 5 + j;
                    let user = format!("u{}", (n * 7 + t as i64) % USERS);
                    let kinds = [
                        "view",
                        "purchase",
                        "sign_in",
                        "add_to_cart",
                        "refund",
                        "signup",
                    ];
                    let kind = kinds[((n + t as i64) % 6) as usize];
                    let day = (n * 31 + t as i64 * 11) % 70;
                    let mut e = Event::new(user, kind, T0 + day * DAY + (n % 24) * 3_600_000)
                        .with_session(format!("t{t}-s{}", n % 9));
                    if kind == "purchase" || kind == "refund" {
                        e = e.with_amount(n * 10);
                    }
                    e
                })
                .collect()
        })
        .collect()
}

#[test]
fn racing_writers_equal_a_serial_run() {
    let (_d1, raced) = open_temp();
    let (_d2, serial) = open_temp();
    let day = raced.local_day(T0);
    let barrier = Barrier::new(THREADS);
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let (db, barrier) = (&raced, &barrier);
            s.spawn(move || {
                barrier.wait();
                for batch in events_for(t) {
                    db.record_batch(&batch).unwrap();
                }
            });
        }
    });
    for t in 0..THREADS {
        for batch in events_for(t) {
            serial.record_batch(&batch).unwrap();
        }
    }
    assert_clean(&raced);
    assert_eq!(
        metric_snapshot(&raced, day - 2, day + 75),
        metric_snapshot(&serial, day - 2, day + 75)
    );
}
