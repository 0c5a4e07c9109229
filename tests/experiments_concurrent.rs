//! Racing writers on the same users' exposures and purchases: every
//! thread exposes the same users to its own variant at its own instants
//! (each thread's instants descend, so most exposures arrive late and
//! earlier than the first seen so far) while others record purchases. The
//! outcome must not depend on the interleaving: each user's variant is the
//! one of its globally earliest exposure, everyone is contaminated, the
//! conversions equal those computed from the instants alone, and `verify`
//! (which re-derives every assignment from the events) is clean.

mod common;
use std::collections::BTreeMap;
use std::sync::Barrier;

use common::*;
use stickydb::experiments::{ExperimentQuery, MetricSpec};
use stickydb::{Event, PropValue};

const THREADS: usize = 6;
const ROUNDS: i64 = 60;
const USERS: usize = 8;
const MINUTE: i64 = 60_000;

/// The instant of thread `t`'s exposure in round `r`: descending rounds,
/// threads interleaved, all distinct.
fn exposed_at(t: usize, r: i64) -> i64 {
    T0 + DAY + (ROUNDS - r) * 10 * MINUTE + t as i64 * MINUTE
}

/// The instant of purchase `r` of user `u`.
fn bought_at(u: usize, r: i64) -> i64 {
    T0 + DAY + r * 7 * MINUTE + u as i64 * 13 * MINUTE
}

#[test]
fn racing_exposures_and_purchases_keep_assignments_exact() {
    let (_dir, db) = open_temp();
    let barrier = Barrier::new(THREADS + 1);
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let (db, barrier) = (&db, &barrier);
            s.spawn(move || {
                barrier.wait();
                for r in 0..ROUNDS {
                    let batch: Vec<Event> = (0..USERS)
                        .map(|u| {
                            Event::new(format!("u{u}"), "exposure", exposed_at(t, r))
                                .with_property("experiment", PropValue::Str("checkout".into()))
                                .with_property("variant", PropValue::Str(format!("v{t}")))
                        })
                        .collect();
                    db.record_batch(&batch).unwrap();
                }
            });
        }
        let (db, barrier) = (&db, &barrier);
        s.spawn(move || {
            barrier.wait();
            for r in 0..ROUNDS {
                let batch: Vec<Event> = (0..USERS)
                    .map(|u| {
                        Event::new(format!("u{u}"), "purchase", bought_at(u, r)).with_amount(100)
                    })
                    .collect();
                db.record_batch(&batch).unwrap();
            }
        });
    });
    // the earliest exposure of everyone: thread 0's last round
    let first = exposed_at(0, ROUNDS - 1);
    let list = db.experiments().list().unwrap();
    let variants: BTreeMap<String, u64> = list[0]
        .variants
        .iter()
        .map(|v| (v.variant.clone(), v.users))
        .collect();
    assert_eq!(variants, BTreeMap::from([("v0".to_owned(), USERS as u64)]));
    assert_eq!(list[0].contaminated_users, USERS as u64);
    for window_min in [0i64, 7, 30, 90] {
        let metric = MetricSpec::Conversion {
            kind: "purchase".into(),
            window_ms: window_min * MINUTE,
        };
        let mut q = ExperimentQuery::new("checkout", metric);
        q.control = "v0".into();
        let report = db.experiment(&q, None, T0 + 30 * DAY).unwrap();
        let want = (0..USERS)
            .filter(|u| {
                (0..ROUNDS).any(|r| {
                    let t = bought_at(*u, r);
                    t >= first && t <= first + window_min * MINUTE
                })
            })
            .count() as u64;
        assert_eq!(
            report.variants[0].converted,
            Some(want),
            "window {window_min} min"
        );
    }
    assert_clean(&db);
}
