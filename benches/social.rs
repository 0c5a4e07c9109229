//! Social commerce's costs (SPEC §4b, issue 15): the top 100 sharers of 30
//! days, one sharer's funnel and the viral coefficient on a store of
//! 1 000 000 users of whom 100 000 share; and ingest of events that come
//! through a share against the same events without `via`.
//!
//! The store: sharer `k` (users 0..sharers) shares once with share id `sk`
//! on day `k % 60`; every user then visits through a share of sharer
//! `u * 7919 % sharers` a day later, signs up five minutes after, and one in
//! three buys two hours after. Days span 61; the query asks about days
//! 20..=49.
//!
//! Run: `cargo bench --bench social` (`STICKYDB_BENCH_USERS` sets the
//! users; sharers are a tenth). Under `cargo test` the store is small and
//! each benchmark runs once.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, SamplingMode};
use stickydb::{Db, Event, Options, SharerRank};

/// 2024-03-01 00:00 UTC.
const T0: i64 = 1_709_251_200_000;
const DAY_MS: i64 = 86_400_000;
const BATCH: usize = 10_000;

fn users() -> u64 {
    let measuring = std::env::args().any(|a| a == "--bench");
    std::env::var("STICKYDB_BENCH_USERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if measuring { 1_000_000 } else { 20_000 })
}

fn record_all(db: &Db, events: impl Iterator<Item = Event>) {
    let mut batch = Vec::with_capacity(BATCH);
    for e in events {
        batch.push(e);
        if batch.len() == BATCH {
            db.record_batch(&batch).expect("record");
            batch.clear();
        }
    }
    db.record_batch(&batch).expect("record");
}

fn build(n: u64) -> (tempfile::TempDir, Db) {
    let sharers = (n / 10).max(1);
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::open(dir.path(), Options::default().create_if_missing(true)).expect("open");
    let started = std::time::Instant::now();
    record_all(
        &db,
        (0..sharers).map(|k| {
            Event::new(format!("user-{k}"), "share", T0 + (k % 60) as i64 * DAY_MS)
                .with_share_id(format!("s{k}"))
        }),
    );
    record_all(
        &db,
        (0..n).flat_map(|u| {
            let k = u * 7919 % sharers;
            let t = T0 + ((k % 60) as i64 + 1) * DAY_MS + (u % 600) as i64 * 60_000;
            let user = format!("user-{u}");
            let mut out = vec![
                Event::new(user.clone(), "view", t).with_via(format!("s{k}")),
                Event::new(user.clone(), "signup", t + 300_000),
            ];
            if u % 3 == 0 {
                out.push(
                    Event::new(user, "purchase", t + 7_200_000)
                        .with_amount(1_000 + (u % 50) as i64),
                );
            }
            out
        }),
    );
    eprintln!(
        "built {n} users, {sharers} sharers in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    db.flush().expect("flush");
    db.compact().expect("compact");
    (dir, db)
}

fn bench_queries(c: &mut Criterion) {
    let n = users();
    let (_dir, db) = build(n);
    let from = db.local_day(T0 + 20 * DAY_MS);
    let to = from + 29;
    let mut g = c.benchmark_group("social");
    g.sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    g.bench_function(format!("top 100 sharers of 30 days, {n} users"), |b| {
        b.iter(|| {
            let top = db
                .top_sharers(from, to, SharerRank::Signups, 100, None)
                .expect("top");
            assert_eq!(top.len() as u64, 100.min(n / 10));
            black_box(top)
        })
    });
    g.bench_function(
        format!("one sharer's funnel over 30 days, {n} users"),
        |b| b.iter(|| black_box(db.sharer_figures("user-25", from, to).expect("funnel"))),
    );
    g.bench_function(
        format!("viral coefficient, 30 days by week, {n} users"),
        |b| b.iter(|| black_box(db.viral_coefficient(from, to, 7, None).expect("viral"))),
    );
    g.finish();
}

/// The ingest benchmarks' group: flat sampling, 10 samples of 5 s.
fn ingest_group(
    c: &mut Criterion,
) -> criterion::BenchmarkGroup<'_, criterion::measurement::WallTime> {
    let mut g = c.benchmark_group("social ingest");
    g.sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(5));
    g
}

/// A store (with `ledger` settings, if any) where sharers `sharer-0..999`
/// claimed the share ids `s0..s999`.
fn sharers_store(ledger: Option<stickydb::ledger::LedgerSettings>) -> (tempfile::TempDir, Db) {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::open(dir.path(), Options::default().create_if_missing(true)).expect("open");
    if let Some(settings) = ledger {
        db.set_ledger_settings(settings).expect("rules");
    }
    record_all(
        &db,
        (0..1_000)
            .map(|k| Event::new(format!("sharer-{k}"), "share", T0).with_share_id(format!("s{k}"))),
    );
    (dir, db)
}

/// 10 000 new users' visit + signup, through a share or not: what
/// attribution adds to a write.
fn bench_ingest(c: &mut Criterion) {
    let mut g = ingest_group(c);
    let (_dir, db) = sharers_store(None);
    let mut next = 0u64;
    for via in [false, true] {
        let label = if via {
            "through a share"
        } else {
            "without via"
        };
        g.bench_function(format!("10 000 new users, visit + signup, {label}"), |b| {
            b.iter_batched(
                || {
                    let batch: Vec<Event> = (0..5_000)
                        .flat_map(|_| {
                            next += 1;
                            let user = format!("v{via}-{next}");
                            let t = T0 + DAY_MS + (next % 1_000) as i64 * 1_000;
                            let mut view = Event::new(user.clone(), "view", t);
                            if via {
                                view = view.with_via(format!("s{}", next % 1_000));
                            }
                            [view, Event::new(user, "signup", t + 60_000)]
                        })
                        .collect();
                    batch
                },
                |batch| db.record_batch(&batch).expect("record"),
                BatchSize::PerIteration,
            )
        });
    }
    g.finish();
}

/// 5 000 new users' visit through a share + first purchase, with a
/// referral rule: every batch pays credits to sharers it does not name.
fn bench_referrals(c: &mut Criterion) {
    use stickydb::ledger::{EarnRule, LedgerSettings, RulePoints, REFERRAL_KIND};
    let mut g = ingest_group(c);
    let (_dir, db) = sharers_store(Some(LedgerSettings::default().rules(vec![EarnRule {
        kind: REFERRAL_KIND.into(),
        points: RulePoints::Fixed(100),
        daily_cap_points: None,
        expires_after_days: None,
    }])));
    let mut next = 0u64;
    g.bench_function(
        "10 000 new users, visit + first purchase through a share, paying referral credits",
        |b| {
            b.iter_batched(
                || {
                    (0..5_000)
                        .flat_map(|_| {
                            next += 1;
                            let user = format!("r-{next}");
                            let t = T0 + DAY_MS + (next % 1_000) as i64 * 1_000;
                            [
                                Event::new(user.clone(), "view", t)
                                    .with_via(format!("s{}", next % 1_000)),
                                Event::new(user, "purchase", t + 60_000).with_amount(1_000),
                            ]
                        })
                        .collect::<Vec<Event>>()
                },
                |batch| db.record_batch(&batch).expect("record"),
                BatchSize::PerIteration,
            )
        },
    );
    g.finish();
}

criterion_group!(benches, bench_queries, bench_ingest, bench_referrals);
criterion_main!(benches);
