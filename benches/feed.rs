//! The change feed's costs (SPEC §4a, issue 14): `advance` with 10 000
//! stage changes due, on stores of 1 000 000 and 200 000 users (equal times
//! show it follows what is due, not the user count), and reading 10 000
//! feed entries.
//!
//! Each user has one event on a day spread evenly over `spread` days, so
//! every later day has the same number of users changing stage (new →
//! growing after 7 days, → declining after 14, → churned after 30): users ÷
//! spread × 3 = 10 000. An iteration advances the clock one day.
//!
//! And writes that carry an entry with `sync_writes` on, from 4 threads
//! and from 1 (the group commit of entries, issue 27).
//!
//! Run: `cargo bench --bench feed` (`STICKYDB_BENCH_USERS` sets the large
//! store's users; the small one has a fifth). Under `cargo test` the stores
//! are small and each benchmark runs once.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, SamplingMode};
use stickydb::{Db, Event, Options};

/// 2024-03-01 00:00 UTC.
const T0: i64 = 1_709_251_200_000;
const DAY_MS: i64 = 86_400_000;

fn users() -> u64 {
    let measuring = std::env::args().any(|a| a == "--bench");
    std::env::var("STICKYDB_BENCH_USERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if measuring { 1_000_000 } else { 20_000 })
}

/// A store of `n` users, one event each on day `u % spread`, its clock
/// moved to the first day with a full load of changes due.
fn build(n: u64, spread: u64) -> (tempfile::TempDir, Db, i64) {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::open(dir.path(), Options::default().create_if_missing(true)).expect("open");
    let mut batch = Vec::with_capacity(10_000);
    for u in 0..n {
        let day = (u % spread) as i64;
        batch.push(Event::new(
            format!("user-{u}"),
            "view",
            T0 + day * DAY_MS + 3_600_000,
        ));
        if batch.len() == 10_000 {
            db.record_batch(&batch).expect("record");
            batch.clear();
        }
    }
    db.record_batch(&batch).expect("record");
    // From day 30 on, each day has users entering growing, declining and
    // churned (spread ≥ 30).
    let start = T0 + 29 * DAY_MS;
    db.advance(start).expect("catch up");
    db.flush().expect("flush");
    db.compact().expect("compact");
    (dir, db, start)
}

fn bench_advance(c: &mut Criterion, label: &str, n: u64) {
    let spread = n * 3 / 10_000;
    let (_dir, db, start) = build(n, spread.max(30));
    let mut clock = start;
    let (mut most, mut least) = (0u64, u64::MAX);
    let mut g = c.benchmark_group("feed");
    g.sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_millis(1))
        .measurement_time(Duration::from_secs(1));
    g.bench_function(format!("advance one day, {label} users"), |b| {
        b.iter_custom(|iters| {
            let t = Instant::now();
            for _ in 0..iters {
                clock += DAY_MS;
                let r = db.advance(clock).expect("advance");
                most = most.max(r.stage_changes);
                least = least.min(r.stage_changes);
            }
            t.elapsed()
        })
    });
    g.finish();
    eprintln!("{label} store ({n} users): {least}..={most} stage changes per advance");
    if label == "large" {
        let head = db.feed_head().expect("head");
        let mut g = c.benchmark_group("feed");
        g.sample_size(20);
        g.bench_function("read 10 000 entries", |b| {
            b.iter(|| {
                let e = db.feed(head / 2, 10_000).expect("feed");
                black_box(e.len())
            })
        });
        g.finish();
    }
}

/// Writes that carry feed entries with `sync_writes` on, from `threads`
/// writers at once: every first event of a new user publishes its `new`
/// stage, so every write carries an entry. Their cursors must become
/// visible in order; before issue 27 one lock was held across each such
/// write's commit and fsync, so the writers fsync'd one after another. An
/// iteration is one write per thread.
fn bench_sync_writes(c: &mut Criterion, threads: usize) {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::open(
        dir.path(),
        Options::default().create_if_missing(true).sync_writes(true),
    )
    .expect("open");
    let next = std::sync::atomic::AtomicU64::new(0);
    let mut g = c.benchmark_group("feed");
    g.sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_millis(200))
        .measurement_time(Duration::from_secs(3));
    g.bench_function(
        format!("sync writes with an entry, {threads} threads of new users"),
        |b| {
            b.iter_custom(|iters| {
                let t = Instant::now();
                std::thread::scope(|s| {
                    for _ in 0..threads {
                        s.spawn(|| {
                            for _ in 0..iters {
                                let u = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                                db.record(&Event::new(format!("new-{u}"), "view", T0))
                                    .expect("record");
                            }
                        });
                    }
                });
                t.elapsed()
            })
        },
    );
    g.finish();
}

fn bench_feed(c: &mut Criterion) {
    bench_sync_writes(c, 4);
    bench_sync_writes(c, 1);
    let n = users();
    bench_advance(c, "large", n);
    bench_advance(c, "small", n / 5);
}

criterion_group!(benches, bench_feed);
criterion_main!(benches);
