//! A bounded soak: writers (event batches with duplicate deliveries across
//! threads, profile changes, points, erasures) and readers race on
//! overlapping users; afterwards `verify` is clean and every answer equals
//! that of a store where the acknowledged writes were replayed serially.
//!
//! Shared users receive only writes whose result does not depend on their
//! order (events, deduplicated by id; earns, each with its own transaction);
//! order-dependent writes (tags, erasure, redeems) go to users one writer
//! owns, so each writer's program order is the only order that matters and a
//! serial replay, writer by writer, is a valid linearisation.

mod common;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Barrier, Mutex};
use std::time::{Duration, Instant};

use common::*;
use stickydb::{Db, Event, PointsOp, ProfileUpdate, Sensitive, TagSource};

const WRITERS: usize = 3;
const READERS: usize = 2;
const SHARED_USERS: usize = 8;
/// Wall-clock bound of the soak, and a cap on each writer's operations.
const SOAK: Duration = Duration::from_secs(3);
const MAX_OPS_PER_WRITER: usize = 4_000;

/// One acknowledged write, replayable.
#[derive(Debug, Clone)]
enum Write {
    Events(Vec<Event>),
    Profile(String, ProfileUpdate),
    Points(String, String, i64, PointsOp),
    Erase(String),
}

fn apply(db: &Db, w: &Write) {
    match w {
        Write::Events(b) => {
            db.record_batch(b).unwrap();
        }
        Write::Profile(u, p) => db.update_profile(u, p).unwrap(),
        Write::Points(u, txn, at, op) => {
            // a refused redeem is acknowledged as refused: replay must refuse too
            let _ = db.points(u, txn, *at, op);
        }
        Write::Erase(u) => {
            db.erase_user(u).unwrap();
        }
    }
}

/// A small deterministic generator (xorshift), one per writer.
struct Rng(u64);
impl Rng {
    fn next(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

fn writer(db: &Db, w: usize, stop: &AtomicBool) -> Vec<Write> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (w as u64 + 1));
    let mut log = Vec::new();
    let own = |k: usize| format!("own-{w}-{}", k % 3);
    for i in 0..MAX_OPS_PER_WRITER {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let day = rng.next(40) as i64;
        let write = match rng.next(10) {
            0..=4 => {
                // shared users, late and duplicate deliveries: the id is
                // shared across writers so two may deliver the same event
                let batch: Vec<Event> = (0..1 + rng.next(20))
                    .map(|j| {
                        let u = rng.next(SHARED_USERS);
                        let n = rng.next(600);
                        let kind = ["view", "purchase", "sign_in", "add_to_cart"][n % 4];
                        let mut e = Event::new(
                            format!("s{u}"),
                            kind,
                            T0 + (n as i64 % 40) * DAY + n as i64,
                        )
                        .with_id(format!("e{n}"));
                        if kind == "purchase" {
                            e = e.with_amount(100 + n as i64);
                        }
                        if j % 5 == 0 {
                            e = Event::new(own(j), "view", T0 + day * DAY + j as i64)
                                .with_id(format!("w{w}-{i}-{j}"));
                        }
                        e
                    })
                    .collect();
                Write::Events(batch)
            }
            5 => Write::Profile(
                own(i),
                ProfileUpdate::new()
                    .tag(
                        format!("t{}", rng.next(3)),
                        TagSource::Rule,
                        T0 + day * DAY,
                        None,
                    )
                    .set("n", i as i64),
            ),
            6 => Write::Points(
                format!("s{}", rng.next(SHARED_USERS)),
                format!("earn-{w}-{i}"),
                T0 + day * DAY,
                PointsOp::earn(1 + rng.next(50) as i64, "soak"),
            ),
            7 => Write::Points(
                own(i),
                format!("redeem-{w}-{i}"),
                T0 + 40 * DAY + i as i64,
                PointsOp::redeem(1 + rng.next(30) as i64, "soak"),
            ),
            8 => Write::Points(
                own(i),
                format!("own-earn-{w}-{i}"),
                T0 + 40 * DAY + i as i64,
                PointsOp::earn(1 + rng.next(40) as i64, "soak"),
            ),
            _ => Write::Erase(own(rng.next(3))),
        };
        apply(db, &write);
        log.push(write);
    }
    log
}

/// `None` for a user no writer has created (yet); any other error fails.
fn known<T>(r: stickydb::Result<T>) -> Option<T> {
    match r {
        Ok(v) => Some(v),
        Err(stickydb::Error::UnknownUser { .. }) => None,
        Err(e) => panic!("{e}"),
    }
}

fn reader(db: &Db, stop: &AtomicBool) -> usize {
    let mut reads = 0;
    let day = db.local_day(T0);
    while !stop.load(Ordering::Relaxed) {
        let m = db.metrics();
        for row in m.active(None, day, day + 39, None).unwrap() {
            assert!(row.dau <= row.wau && row.wau <= row.mau, "{row:?}");
        }
        if let Some(events) = known(db.newest("s1", 50)) {
            assert!(events
                .windows(2)
                .all(|w| w[0].event.ts_ms >= w[1].event.ts_ms));
        }
        if let Some(a) = known(db.account("s2")).flatten() {
            assert!(a.balance >= 0 && a.held <= a.balance);
        }
        reads += 1;
    }
    reads
}

#[test]
fn a_bounded_soak_equals_a_serial_replay() {
    let (_dir, db) = open_temp();
    let stop = AtomicBool::new(false);
    let logs = Mutex::new(vec![Vec::new(); WRITERS]);
    let barrier = Barrier::new(WRITERS + READERS + 1);
    let reads = std::thread::scope(|s| {
        for w in 0..WRITERS {
            let (db, stop, logs, barrier) = (&db, &stop, &logs, &barrier);
            s.spawn(move || {
                barrier.wait();
                let log = writer(db, w, stop);
                logs.lock().unwrap()[w] = log;
            });
        }
        let readers: Vec<_> = (0..READERS)
            .map(|_| {
                let (db, stop, barrier) = (&db, &stop, &barrier);
                s.spawn(move || {
                    barrier.wait();
                    reader(db, stop)
                })
            })
            .collect();
        barrier.wait();
        let started = Instant::now();
        while started.elapsed() < SOAK {
            std::thread::sleep(Duration::from_millis(20));
        }
        stop.store(true, Ordering::Relaxed);
        readers
            .into_iter()
            .map(|r| r.join().unwrap())
            .sum::<usize>()
    });
    let logs = logs.into_inner().unwrap();
    let writes: usize = logs.iter().map(Vec::len).sum();
    assert!(
        writes > 50 && reads > 5,
        "the soak barely ran: {writes} writes, {reads} reads"
    );
    assert_clean(&db);

    let (_dir2, serial) = open_temp();
    for log in &logs {
        for w in log {
            apply(&serial, w);
        }
    }
    assert_clean(&serial);
    let day = db.local_day(T0);
    assert_eq!(
        metric_snapshot(&db, day, day + 45),
        metric_snapshot(&serial, day, day + 45)
    );
    let mut users: Vec<String> = (0..SHARED_USERS).map(|u| format!("s{u}")).collect();
    users.extend((0..WRITERS).flat_map(|w| (0..3).map(move |k| format!("own-{w}-{k}"))));
    for u in &users {
        let ev = |d: &Db| -> Vec<(i64, String, Option<String>)> {
            let mut v: Vec<_> = known(d.newest(u, 100_000))
                .unwrap_or_default()
                .into_iter()
                .map(|e| (e.event.ts_ms, e.event.kind.to_string(), e.event.event_id))
                .collect();
            v.sort();
            v
        };
        assert_eq!(ev(&db), ev(&serial), "{u}: timeline");
        let acct = |d: &Db| known(d.account(u)).flatten().map(|a| (a.balance, a.held));
        assert_eq!(acct(&db), acct(&serial), "{u}: points");
        let tags = |d: &Db| {
            known(d.profile(u, Sensitive::Exclude))
                .flatten()
                .map(|p| (p.tags.keys().cloned().collect::<Vec<_>>(), p.attributes))
        };
        assert_eq!(tags(&db), tags(&serial), "{u}: profile");
    }
}
