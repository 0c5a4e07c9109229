//! Experiments (docs/metrics.md, "Experiments") at the scale the issue
//! names: `STICKYDB_BENCH_USERS` exposed users (default 1 000 000; 5 000
//! when `cargo test` runs the benchmarks once as a smoke test), split
//! between `control` and `b` over 30 days, each active on the day after
//! its exposure with some probability and buying within 0–14 days with a
//! probability its variant lifts. The store is compacted and reopened
//! before anything is measured, as a user meets it after an import.
//!
//! Measured: the proportion metrics (conversion to purchase within 7 days
//! — buckets below the window's edge as bitmaps, the edge bucket's users
//! read one by one —, day-7 retention) and a mean metric (revenue per user
//! within 7 days, which reads each user's events in its window), with and
//! without a segment; the list of experiments; and the write path's cost
//! of experiments: the same 1 000 users' views recorded in this store and
//! in one built from the same stream without exposures.
//!
//! Run: `cargo bench --bench experiments`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use stickydb::experiments::{ExperimentQuery, MetricSpec};
use stickydb::{Db, Event, Options, PropValue, Segment};

/// 2024-03-01 00:00 UTC.
const T0: i64 = 1_709_251_200_000;
const DAY_MS: i64 = 86_400_000;
const DAYS: u64 = 30;

fn users() -> u64 {
    let measuring = std::env::args().any(|a| a == "--bench");
    std::env::var("STICKYDB_BENCH_USERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if measuring { 1_000_000 } else { 5_000 })
}

/// A cheap deterministic mix (splitmix64).
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn build(db: &Db, n: u64, exposures: bool) -> u64 {
    let mut batch = Vec::with_capacity(20_000);
    let mut total = 0u64;
    for u in 0..n {
        let r = mix(u);
        let b = r & 1 == 1;
        let day = (r >> 8) % DAYS;
        let at = T0 + day as i64 * DAY_MS + ((r >> 16) % 86_400_000) as i64;
        let name = format!("user-{u}");
        batch.push(if exposures {
            Event::new(name.as_str(), "exposure", at)
                .with_property("experiment", PropValue::Str("checkout".into()))
                .with_property(
                    "variant",
                    PropValue::Str(if b { "b" } else { "control" }.into()),
                )
        } else {
            // the same stream without experiments: a non-activity kind too
            Event::new(name.as_str(), "landing", at)
        });
        if (r >> 40) % 100 < 35 {
            batch.push(Event::new(name.as_str(), "view", at + DAY_MS));
        }
        let buy_pct = if b { 30 } else { 25 };
        if (r >> 48) % 100 < buy_pct {
            let delay = ((r >> 24) % (14 * DAY_MS as u64)) as i64;
            batch.push(
                Event::new(name.as_str(), "purchase", at + delay)
                    .with_amount(1_000 + (r % 9_000) as i64),
            );
        }
        if batch.len() >= 10_000 {
            total += batch.len() as u64;
            db.record_batch(&batch).unwrap();
            batch.clear();
        }
    }
    total += batch.len() as u64;
    db.record_batch(&batch).unwrap();
    total
}

/// A compacted store of `n` users, with or without their exposures.
fn store(n: u64, exposures: bool) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let opts = Options::default()
        .create_if_missing(true)
        .non_activity_kinds(["exposure", "landing"]);
    let db = Db::open(dir.path(), opts).unwrap();
    let started = std::time::Instant::now();
    let events = build(&db, n, exposures);
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "built {n} users (exposures: {exposures}), {events} events in {secs:.1} s ({:.0} events/s)",
        events as f64 / secs
    );
    db.compact().unwrap();
    dir
}

fn bench(c: &mut Criterion) {
    let n = users();
    let dir = store(n, true);
    let db = Db::open(dir.path(), Options::default().create_if_missing(true)).unwrap();
    let as_of = T0 + (DAYS as i64 + 20) * DAY_MS;
    let q = |m: &str| ExperimentQuery::new("checkout", MetricSpec::parse(m).unwrap());
    let conversion = q("conversion:purchase:7d");
    let retention = q("retention:7");
    let revenue = q("revenue:7d");
    let buyers = Segment::parse("did:view").unwrap();
    let r = db.experiment(&conversion, None, as_of).unwrap();
    eprintln!("conversion: {:?}", r.variants);

    let mut g = c.benchmark_group("experiments");
    g.sample_size(20);
    g.bench_function("conversion_7d", |b| {
        b.iter(|| black_box(db.experiment(&conversion, None, as_of).unwrap()))
    });
    g.bench_function("conversion_7d_segment", |b| {
        b.iter(|| black_box(db.experiment(&conversion, Some(&buyers), as_of).unwrap()))
    });
    g.bench_function("retention_day7", |b| {
        b.iter(|| black_box(db.experiment(&retention, None, as_of).unwrap()))
    });
    g.bench_function("list", |b| {
        b.iter(|| black_box(db.experiments().list().unwrap()))
    });
    g.sample_size(10);
    g.bench_function("revenue_7d_mean", |b| {
        b.iter(|| black_box(db.experiment(&revenue, None, as_of).unwrap()))
    });
    g.finish();

    // The write path's cost of experiments: the same 1 000 users' views,
    // round after round, in this store and in one built from the same
    // stream with every exposure replaced by a plain non-activity event.
    let plain_dir = store(n, false);
    let plain = Db::open(plain_dir.path(), Options::default().create_if_missing(true)).unwrap();
    // each side measured after its compactions finished
    db.wait_for_compact().unwrap();
    plain.wait_for_compact().unwrap();
    let mut w = c.benchmark_group("experiments_write");
    for (name, target) in [
        ("1000_views_no_experiments", &plain),
        ("1000_views_exposed_users", &db),
    ] {
        let mut round = 0i64;
        w.bench_function(name, |b| {
            b.iter_batched(
                || {
                    round += 1;
                    (0..1_000u64)
                        .map(|i| {
                            let user = format!("user-{}", i * (n / 1_000).max(1));
                            Event::new(user, "view", T0 + 40 * DAY_MS + round * 1_000 + i as i64)
                        })
                        .collect::<Vec<_>>()
                },
                |batch| target.record_batch(&batch).unwrap(),
                criterion::BatchSize::SmallInput,
            )
        });
    }
    w.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
