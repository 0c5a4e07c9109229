//! Metric query latencies (SPEC §6) on a synthetic store.
//!
//! `STICKYDB_BENCH_USERS` users (default 100 000; 5 000 when `cargo test`
//! runs the benchmarks once as a smoke test) are each active on 2–7 of
//! 60 days, one event per active day, a quarter of them buying. Queries run
//! against that store; criterion reports each latency.
//!
//! Last, the cost of an identity merge: a visitor with 1 000 events merged
//! into one of the store's users.
//!
//! Run: `cargo bench --bench queries` (or with `STICKYDB_BENCH_USERS=1000000`).

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use stickydb::metrics::{Period, RetentionQuery};
use stickydb::{Db, Event, EventKind, Options};

const DAYS: i64 = 60;
/// 2024-03-01 00:00 UTC.
const T0: i64 = 1_709_251_200_000;
const DAY_MS: i64 = 86_400_000;

fn users() -> u64 {
    // `cargo test --all-targets` runs each benchmark once as a smoke test
    // (no `--bench` argument): a small store keeps that quick.
    let measuring = std::env::args().any(|a| a == "--bench");
    std::env::var("STICKYDB_BENCH_USERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if measuring { 100_000 } else { 5_000 })
}

/// A cheap deterministic mix (splitmix64).
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn build(db: &Db, n_users: u64) -> u64 {
    let mut batch = Vec::with_capacity(10_000);
    let mut total = 0u64;
    for u in 0..n_users {
        let r = mix(u);
        let active_days = 2 + r % 6;
        let first = (r >> 8) % (DAYS as u64 - 10);
        let buyer = (r >> 20) % 4 == 0;
        for k in 0..active_days {
            let day = (first + (mix(r ^ k) % 10) * k / 2).min(DAYS as u64 - 1) as i64;
            let ts = T0 + day * DAY_MS + ((r >> 32) % 86_400) as i64 * 1_000;
            let kind = if buyer && k % 2 == 1 {
                "purchase"
            } else {
                "view"
            };
            let mut e = Event::new(format!("user-{u}"), kind, ts);
            if kind == "purchase" {
                e = e.with_amount(1_000 + (r % 9_000) as i64);
            }
            batch.push(e);
            if batch.len() == 10_000 {
                total += batch.len() as u64;
                db.record_batch(&batch).expect("record");
                batch.clear();
            }
        }
    }
    total += batch.len() as u64;
    db.record_batch(&batch).expect("record");
    db.flush().expect("flush");
    db.compact().expect("compact");
    total
}

fn bench_queries(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::open(dir.path(), Options::default().create_if_missing(true)).expect("open");
    let n = users();
    let started = std::time::Instant::now();
    let events = build(&db, n);
    eprintln!(
        "store: {n} users, {events} events, built in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let day0 = db.local_day(T0);
    let last = day0 + DAYS as i32 - 1;
    let mid = day0 + 40;

    let mut g = c.benchmark_group("queries");
    g.sample_size(20);
    g.bench_function("dau_wau_mau_one_day", |b| {
        b.iter(|| black_box(db.metrics().active(None, mid, mid, None).expect("active")))
    });
    g.bench_function("dau_wau_mau_30_days", |b| {
        b.iter(|| {
            black_box(
                db.metrics()
                    .active(None, last - 29, last, None)
                    .expect("active"),
            )
        })
    });
    g.bench_function("retention_30x30_days", |b| {
        let q = RetentionQuery::new(Period::Day, last - 29, last);
        b.iter(|| black_box(db.metrics().retention(&q, None).expect("retention")))
    });
    g.bench_function("lifecycle_weeks", |b| {
        b.iter(|| {
            black_box(
                db.metrics()
                    .lifecycle(Period::Week, day0, last, None)
                    .expect("lifecycle"),
            )
        })
    });
    g.bench_function("daily_counters_60_days", |b| {
        b.iter(|| black_box(db.metrics().daily(day0, last).expect("daily")))
    });
    g.bench_function("funnel_view_purchase_30_days", |b| {
        let steps = [EventKind::View, EventKind::Purchase];
        b.iter(|| {
            black_box(
                db.metrics()
                    .funnel(&steps, 7 * DAY_MS, last - 29, last, None)
                    .expect("funnel"),
            )
        })
    });
    g.sample_size(10);
    g.bench_function("stage_counts", |b| {
        b.iter(|| black_box(db.metrics().stages(last, None).expect("stages")))
    });
    g.bench_function("rfm_segments", |b| {
        b.iter(|| black_box(db.metrics().rfm(last, None).expect("rfm")))
    });
    // per-day stage transitions (SPEC §4a), recomputed from each user's state
    g.bench_function("stage_transitions_30_days", |b| {
        b.iter(|| {
            black_box(
                db.metrics()
                    .stage_transitions(last - 29, last, None)
                    .expect("transitions"),
            )
        })
    });
    g.finish();

    // identity merge (SPEC §2): a visitor with 1 000 events over 60 days
    // merged into an existing user; its cost follows the visitor's history,
    // not the store's size
    db.set_identity_settings(stickydb::IdentitySettings::anonymous(["anon:"]))
        .expect("identity settings");
    let mut g = c.benchmark_group("merge");
    g.sample_size(20);
    let mut i = 0u64;
    g.bench_function("visitor_with_1000_events", |b| {
        b.iter_batched(
            || {
                i += 1;
                let visitor = format!("anon:{i}");
                let events: Vec<Event> = (0..1_000i64)
                    .map(|k| {
                        let ts = T0 + (k % DAYS) * DAY_MS + k * 1_000;
                        Event::new(
                            visitor.as_str(),
                            if k % 7 == 0 { "add_to_cart" } else { "view" },
                            ts,
                        )
                        .with_id(format!("v{i}-{k}"))
                        .with_session(format!("s{}", k / 20))
                    })
                    .collect();
                db.record_batch(&events).expect("visitor");
                (visitor, format!("user-{}", mix(i) % n))
            },
            |(visitor, member)| {
                let out = db
                    .merge(
                        &visitor,
                        &member,
                        &visitor,
                        stickydb::MergeOptions::default(),
                    )
                    .expect("merge");
                assert_eq!(out.events_moved, 1_000);
            },
            criterion::BatchSize::PerIteration,
        )
    });
    g.finish();
    let started = std::time::Instant::now();
    let report = db.verify().expect("verify");
    eprintln!(
        "verify: {} problem(s) in {:.1} s",
        report.problem_count,
        started.elapsed().as_secs_f64()
    );
    assert!(report.is_clean());
}

criterion_group!(benches, bench_queries);
criterion_main!(benches);
