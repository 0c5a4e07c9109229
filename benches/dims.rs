//! What dimensions cost and answer (docs/performance.md, "Dimensions"):
//! `cargo bench --bench dims -- USERS` builds two stores from the same
//! realistic stream — one with 3 dimensions declared (`channel`,
//! `category`, `campaign`), one with none — alternating batches between
//! them, and prints side by side: batch ingest, single-event writes; then
//! on the dimension store a breakdown of 30 days × 20 values (daily and
//! rolling 30-day users, a kind, top 5), each asked 20 times (p50, max),
//! as written and after a compaction; then revenue of 30 days for a
//! segment of a tenth of the users, LTV of 30 daily cohorts × 30 days and
//! session depth of 60 days (store-wide and for the segment).
//! Under `cargo test` (no `--bench`) a small smoke run.

use std::time::{Duration, Instant};

use stickydb::dims::{BreakdownQuery, Dimension};
use stickydb::metrics::Period;
use stickydb::{Db, Event, Options, PropValue};

#[path = "common/shapes.rs"]
mod shapes;
use shapes::{mix, realistic, DAY_MS, T0};

/// Properties on the realistic stream: 20 channels, 12 categories, 40
/// campaigns (skewed), on most events.
fn dress(events: &mut [Event]) {
    for (i, e) in events.iter_mut().enumerate() {
        let h = mix(e.ts_ms as u64 ^ (i as u64).rotate_left(17));
        let skew = |n: u64, h: u64| ((h % 1_000) * (h % 1_000) / 1_000 * n / 1_000).min(n - 1);
        e.properties.insert(
            "channel".into(),
            PropValue::Str(format!("ch{}", skew(20, h))),
        );
        e.properties.insert(
            "category".into(),
            PropValue::Str(format!("cat{}", skew(12, h >> 10))),
        );
        if h % 3 != 0 {
            e.properties.insert(
                "campaign".into(),
                PropValue::Str(format!("cp{}", skew(40, h >> 20))),
            );
        }
    }
}

fn timed(n: usize, mut f: impl FnMut() -> usize) -> (f64, f64, usize) {
    let mut took: Vec<Duration> = Vec::with_capacity(n);
    let mut rows = 0;
    for _ in 0..n {
        let t = Instant::now();
        rows = f();
        took.push(t.elapsed());
    }
    took.sort_unstable();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    (ms(took[n / 2]), ms(took[n - 1]), rows)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let benching = args.iter().any(|a| a == "--bench");
    let users: u64 = match (benching, args.iter().find(|a| !a.starts_with("--"))) {
        (true, Some(n)) => n.parse().expect("USERS: a number"),
        (true, None) => 100_000,
        (false, _) => 200,
    };
    let rounds = (users * 2 / 100).max(2) as usize;
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let dbs = [
        Db::create(dirs[0].path(), Options::default()).unwrap(),
        Db::create(dirs[1].path(), Options::default()).unwrap(),
    ];
    for name in ["channel", "category", "campaign"] {
        dbs[0].declare_dimension(&Dimension::new(name)).unwrap();
    }
    let mut ingest = [Duration::ZERO; 2];
    let mut events = 0u64;
    for round in 0..rounds {
        let day = (round * 60 / rounds) as i64 - (round / 50) as i64;
        let mut evs = realistic(round, users, "u", day);
        dress(&mut evs);
        events += evs.len() as u64;
        // (the store that goes first alternates: neither always meets the
        // other's compactions)
        for i in [round % 2, 1 - round % 2] {
            let t = Instant::now();
            dbs[i].record_batch(&evs).unwrap();
            ingest[i] += t.elapsed();
        }
    }
    let rate = |d: Duration| events as f64 / d.as_secs_f64();
    println!("{users} users, {events} events, 3 dimensions vs none");
    println!(
        "batch ingest: {:.0} vs {:.0} events/s ({:+.1} %)",
        rate(ingest[0]),
        rate(ingest[1]),
        (ingest[0].as_secs_f64() / ingest[1].as_secs_f64() - 1.0) * 100.0
    );
    let end = T0 + 61 * DAY_MS;
    let n = if benching { 20_000 } else { 50 };
    let mut single = [Duration::ZERO; 2];
    for k in 0..n {
        let user = format!("u{}", mix(k as u64 ^ 99) % users);
        let mut e = vec![Event::new(user, "view", end - DAY_MS + k as i64)];
        dress(&mut e);
        for (i, db) in dbs.iter().enumerate() {
            let t = Instant::now();
            db.record(&e[0]).unwrap();
            single[i] += t.elapsed();
        }
    }
    let per = |d: Duration| d.as_secs_f64() * 1e6 / n as f64;
    println!(
        "single-event write: {:.2} vs {:.2} us ({:+.1} %)",
        per(single[0]),
        per(single[1]),
        (single[0].as_secs_f64() / single[1].as_secs_f64() - 1.0) * 100.0
    );
    let db = &dbs[0];
    let last = db.local_day(end - 1);
    let q = || BreakdownQuery::new("channel", last - 29, last);
    let reps = if benching { 20 } else { 2 };
    // as the import left it (merge operands not yet folded), then after a
    // compaction (a store reopened after a big import)
    for when in ["as written", "compacted"] {
        if when == "compacted" {
            db.compact().unwrap();
        }
        for (what, query) in [
            ("30 days x 20 channels, any activity", q()),
            ("the same, purchases", q().kind("purchase")),
            ("the same, rolling 30-day users", q().window_days(30)),
            ("the same, top 5", q().top(5)),
        ] {
            let (p50, max, rows) =
                timed(reps, || db.breakdown(&query, None, end).unwrap().rows.len());
            println!("breakdown ({when}) {what}: p50 {p50:.2} ms, max {max:.2} ms ({rows} rows)");
        }
        money_and_sessions(db, users, last, reps, when);
    }
}

/// Revenue and LTV of the last 30 days, session depth of the last 60.
fn money_and_sessions(db: &Db, users: u64, last: i32, reps: usize, when: &str) {
    let segment: roaring::RoaringBitmap = (0..users)
        .step_by(10)
        .filter_map(|u| db.user_id(&format!("u{u}")).unwrap())
        .collect();
    let m = || db.metrics();
    let (p50, max, _) = timed(reps, || {
        m().revenue(last - 29, last, Some(&segment)).unwrap().len()
    });
    let n = segment.len();
    println!("revenue ({when}) 30 days, {n}-user segment: p50 {p50:.2} ms, max {max:.2} ms");
    let (p50, max, _) = timed(reps, || {
        let r = m().ltv(Period::Day, (last - 29, last), 30, None, None);
        r.unwrap().cohorts.len()
    });
    println!("ltv ({when}) 30 x 30 daily: p50 {p50:.2} ms, max {max:.2} ms");
    let (p50, max, rows) = timed(reps, || m().sessions(last - 59, last, None).unwrap().len());
    println!("sessions ({when}) 60 days: p50 {p50:.3} ms, max {max:.3} ms ({rows} rows)");
    let (p50, max, _) = timed(reps, || {
        m().sessions(last - 59, last, Some(&segment)).unwrap().len()
    });
    println!("sessions ({when}) 60 days, {n}-user segment: p50 {p50:.2} ms, max {max:.2} ms");
}
