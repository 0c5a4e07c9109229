//! Merges racing writes on the same people (SPEC §2, §5): writers name
//! members and their anonymous ids (before, during and after those ids
//! become aliases) while a merger merges the ids, in chains. Whatever the
//! interleaving, once every merge is done every event is the member's, so
//! the store must answer exactly as a store that got every acknowledged
//! event under the member — and verify clean.

mod common;
use std::sync::{Barrier, Mutex};

use common::*;
use stickydb::{Event, IdentitySettings, MergeOptions};

const PEOPLE: usize = 3;
const ANONS_PER_PERSON: usize = 4;
const WRITERS: usize = 3;
const ROUNDS: usize = 150;

fn anon(p: usize, k: usize) -> String {
    format!("anon:{p}-{k}")
}

fn member(p: usize) -> String {
    format!("m{p}")
}

fn event(user: &str, n: u64) -> Event {
    let kinds = ["view", "add_to_cart", "purchase", "sign_in"];
    let kind = kinds[(n % 4) as usize];
    let mut e = Event::new(user, kind, T0 + ((n * 7919) % 30) as i64 * DAY + n as i64)
        .with_id(format!("e{n}"))
        .with_session(format!("s{}", n % 5));
    if kind == "purchase" {
        e = e.with_amount(100 + (n % 13) as i64);
    }
    e
}

#[test]
fn merges_racing_writes_end_as_a_serial_order() {
    for round in 0..3u64 {
        let (_dir, db) = open_temp();
        db.set_identity_settings(IdentitySettings::anonymous(["anon:"]))
            .unwrap();
        // every id exists before the race
        let mut n = 0u64;
        let mut acked: Vec<(usize, Event)> = Vec::new();
        for p in 0..PEOPLE {
            for user in (0..ANONS_PER_PERSON).map(|k| anon(p, k)).chain([member(p)]) {
                n += 1;
                let mut e = event(&user, n);
                db.record(&e).unwrap();
                e.user = member(p);
                acked.push((p, e));
            }
        }
        let acked = Mutex::new(acked);
        let barrier = Barrier::new(WRITERS + 1);
        std::thread::scope(|s| {
            for w in 0..WRITERS as u64 {
                let (db, acked, barrier) = (&db, &acked, &barrier);
                s.spawn(move || {
                    barrier.wait();
                    for i in 0..ROUNDS as u64 {
                        let seed = (w + 1) * 1_000_003 + i * 7_919 + round;
                        // a batch naming several labels of several people
                        let mut batch = Vec::new();
                        let mut owners = Vec::new();
                        for j in 0..1 + seed % 4 {
                            let p = ((seed >> 3) + j) as usize % PEOPLE;
                            let label = ((seed >> 5) + j) as usize % (ANONS_PER_PERSON + 1);
                            let user = if label == ANONS_PER_PERSON {
                                member(p)
                            } else {
                                anon(p, label)
                            };
                            let n = 1_000_000 * (w + 1) + i * 10 + j;
                            batch.push(event(&user, n));
                            owners.push(p);
                        }
                        db.record_batch(&batch).unwrap();
                        let mut a = acked.lock().unwrap();
                        for (p, mut e) in owners.into_iter().zip(batch) {
                            e.user = member(p);
                            a.push((p, e));
                        }
                    }
                });
            }
            let (db, barrier) = (&db, &barrier);
            s.spawn(move || {
                barrier.wait();
                // chains: k → k+1 → … → member, merged from the end or the start
                for p in 0..PEOPLE {
                    let order: Vec<usize> = if (p as u64 + round) % 2 == 0 {
                        (0..ANONS_PER_PERSON).collect()
                    } else {
                        (0..ANONS_PER_PERSON).rev().collect()
                    };
                    for k in order {
                        let into = if k + 1 < ANONS_PER_PERSON {
                            anon(p, k + 1)
                        } else {
                            member(p)
                        };
                        db.merge(
                            &anon(p, k),
                            &into,
                            &format!("m-{p}-{k}"),
                            MergeOptions::default(),
                        )
                        .unwrap();
                        std::thread::yield_now();
                    }
                }
            });
        });
        assert_clean(&db);
        let (_dir2, reference) = open_temp();
        let acked = acked.into_inner().unwrap();
        for chunk in acked.chunks(100) {
            let events: Vec<Event> = chunk.iter().map(|(_, e)| e.clone()).collect();
            reference.record_batch(&events).unwrap();
        }
        let day = db.local_day(T0);
        assert_same_answers(
            &metric_snapshot(&db, day - 1, day + 32),
            &metric_snapshot(&reference, day - 1, day + 32),
            &format!("round {round}"),
        );
        for p in 0..PEOPLE {
            let ids = |d: &stickydb::Db| {
                let mut v: Vec<(i64, Option<String>)> = d
                    .newest(&member(p), 100_000)
                    .unwrap()
                    .into_iter()
                    .map(|s| (s.event.ts_ms, s.event.event_id))
                    .collect();
                v.sort();
                v
            };
            assert_eq!(ids(&db), ids(&reference), "round {round}, person {p}");
            for k in 0..ANONS_PER_PERSON {
                assert_eq!(
                    db.user_id(&anon(p, k)).unwrap(),
                    db.user_id(&member(p)).unwrap()
                );
            }
        }
    }
}
