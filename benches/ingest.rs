//! Ingest (SPEC §6): stickydb with every aggregate maintained against the
//! physical limit — the same event records written alone to RocksDB — for
//! the three shapes of SPEC §6, plus one event per call for a new user and
//! for a user with 700 active days.
//!
//! Both sides write batches of the same size with the WAL on and no fsync;
//! the raw side is one RocksDB column family with the options of stickydb's
//! `events` column family (`stickydb::store::raw_event_store`). Each side
//! writes its own store, and before a side is measured the other side's
//! store is flushed and its compactions have finished
//! (`wait_for_compact`), so neither pays for the other's background work.
//!
//! Shapes:
//! - `realistic`: sessions of 10 events (views, a search, a cart, a
//!   purchase), 100 users per 1 000-event batch, time moving forward.
//! - `worst`: every event a different user and a new session.
//! - `long_history`: the realistic shape over users who already have 730
//!   days of daily activity over 8 kinds.
//! - `one_per_call/{new_user,history_700,history_30}`: one `record` per
//!   event, for a new user and for users with 700 and 30 active days in the
//!   same store.
//!
//! After each stickydb side the bench prints the bytes its write batches
//! carried per event (what went to the WAL and memtables).
//!
//! Run: `cargo bench --bench ingest` (criterion); `STICKYDB_BENCH_HISTORY_USERS`
//! sets the long-history users (default 1 000).

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use stickydb::{Db, Event, Options};

#[path = "common/shapes.rs"]
mod shapes;
use shapes::{realistic, BATCH, DAY_MS, SESSION, T0};

fn measuring() -> bool {
    std::env::args().any(|a| a == "--bench")
}

fn history_users() -> usize {
    std::env::var("STICKYDB_BENCH_HISTORY_USERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if measuring() { 1_000 } else { 20 })
}

/// Worst batch `round`: every event a different user and a new session.
fn worst(round: usize) -> Vec<Event> {
    (0..BATCH)
        .map(|i| {
            let n = (round * BATCH + i) as u64;
            let kind = SESSION[(n % 10) as usize];
            let mut e = Event::new(
                format!("w{}", n.wrapping_mul(2_654_435_761) % 10_000_000),
                kind,
                T0 + (n / 20_000) as i64 * DAY_MS + (n % 80_000) as i64 * 1_000,
            )
            .with_id(format!("e{n}"))
            .with_session(format!("s{n}"));
            if kind == "purchase" {
                e.amount_minor = Some(1_000 + (n % 9_000) as i64);
            }
            e
        })
        .collect()
}

/// The raw side's records: the same events, keyed as stickydb keys them
/// (user id, newest first, arrival), value = the same fields bincode-encoded.
fn raw_batch(evs: &[Event], seq: &mut u32) -> rocksdb::WriteBatch {
    let mut batch = rocksdb::WriteBatch::default();
    for e in evs {
        *seq = seq.wrapping_add(1);
        // a u32 per user, as stickydb allocates one (FNV-1a of the name)
        let user = e.user.bytes().fold(0x811c_9dc5u32, |h, b| {
            (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
        });
        let mut key = Vec::with_capacity(16);
        key.extend_from_slice(&user.to_be_bytes());
        key.extend_from_slice(&stickydb::keys::ts_desc(e.ts_ms));
        key.extend_from_slice(&(!*seq).to_be_bytes());
        let value = stickydb::codec::encode(&(
            e.kind.as_str(),
            &e.event_id,
            &e.session_id,
            e.amount_minor,
            &e.user,
        ))
        .expect("encode");
        batch.put(key, value);
    }
    batch
}

fn settle(db: &Db) {
    db.wait_for_compact().expect("wait for compactions");
}

fn settle_raw(raw: &rocksdb::DB) {
    raw.flush().expect("flush raw");
    raw.wait_for_compact(&rocksdb::WaitForCompactOptions::default())
        .expect("wait raw");
}

/// Builds `users` users with 730 days of daily activity over 8 kinds.
/// `users` users named `{prefix}{u}`, each active on each of the `days`
/// days before day 730, over 8 kinds.
fn with_history(db: &Db, users: usize, prefix: &str, days: i64) {
    let kinds = [
        "view",
        "search",
        "favorite",
        "add_to_cart",
        "purchase",
        "sign_in",
        "share",
        "review",
    ];
    let mut batch = Vec::with_capacity(10_000);
    for d in 730 - days..730i64 {
        for u in 0..users {
            let kind = kinds[(d as usize + u) % kinds.len()];
            let mut e = Event::new(format!("{prefix}{u}"), kind, T0 + d * DAY_MS + 3_600_000);
            if kind == "purchase" {
                e.amount_minor = Some(2_500);
            }
            batch.push(e);
            if batch.len() == 10_000 {
                db.record_batch(&batch).expect("history");
                batch.clear();
            }
        }
    }
    db.record_batch(&batch).expect("history");
}

fn stickydb_side(
    c: &mut Criterion,
    group: &str,
    db: &Db,
    mut make: impl FnMut(usize) -> Vec<Event>,
) {
    let mut g = c.benchmark_group(group);
    g.throughput(Throughput::Elements(BATCH as u64));
    g.sample_size(20);
    let before = (db.bytes_written(), db.event_count().unwrap_or(0));
    let mut round = 0usize;
    g.bench_function("stickydb", |b| {
        b.iter_batched(
            || {
                round += 1;
                make(round)
            },
            |evs| black_box(db.record_batch(&evs).expect("record")),
            BatchSize::LargeInput,
        )
    });
    g.finish();
    let events = db.event_count().unwrap_or(0) - before.1;
    if events > 0 {
        eprintln!(
            "{group}/stickydb: {:.0} bytes written per event",
            (db.bytes_written() - before.0) as f64 / events as f64
        );
    }
    settle(db);
}

fn raw_side(
    c: &mut Criterion,
    group: &str,
    raw: &rocksdb::DB,
    mut make: impl FnMut(usize) -> Vec<Event>,
) {
    let mut g = c.benchmark_group(group);
    g.throughput(Throughput::Elements(BATCH as u64));
    g.sample_size(20);
    let mut round = 0usize;
    let mut seq = 0u32;
    g.bench_function("rocksdb_raw", |b| {
        b.iter_batched(
            || {
                round += 1;
                make(round)
            },
            |evs| raw.write(raw_batch(&evs, &mut seq)).expect("raw write"),
            BatchSize::LargeInput,
        )
    });
    g.finish();
    settle_raw(raw);
}

fn bench_ingest(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let open = |name: &str| {
        Db::open(
            dir.path().join(name),
            Options::default().create_if_missing(true),
        )
        .expect("open")
    };
    let raw_open = |name: &str| {
        stickydb::store::raw_event_store(
            &dir.path().join(name),
            &Options::default().create_if_missing(true),
        )
        .expect("raw open")
    };

    // realistic
    let db = open("realistic");
    stickydb_side(c, "ingest/realistic", &db, |r| realistic(r, 50_000, "u", 0));
    assert!(db.verify().expect("verify").is_clean());
    drop(db);
    let raw = raw_open("realistic-raw");
    raw_side(c, "ingest/realistic", &raw, |r| {
        realistic(r, 50_000, "u", 0)
    });
    drop(raw);

    // worst
    let db = open("worst");
    stickydb_side(c, "ingest/worst", &db, worst);
    assert!(db.verify().expect("verify").is_clean());
    drop(db);
    let raw = raw_open("worst-raw");
    raw_side(c, "ingest/worst", &raw, worst);
    drop(raw);

    // long history: the same realistic sessions, for users with two years
    let hist = history_users();
    let db = open("history");
    with_history(&db, hist, "h", 730);
    // short-history users in the same store, for one_per_call/history_30
    with_history(&db, hist, "r", 30);
    settle(&db);
    stickydb_side(c, "ingest/long_history", &db, |r| {
        realistic(r, hist as u64, "h", 731)
    });
    let raw = raw_open("history-raw");
    raw_side(c, "ingest/long_history", &raw, |r| {
        realistic(r, hist as u64, "h", 731)
    });
    drop(raw);

    // one event per call: a new user each time vs a 700-day user
    let fresh = open("fresh");
    let mut g = c.benchmark_group("ingest/one_per_call");
    g.throughput(Throughput::Elements(1));
    let mut n = 0u64;
    let mut bytes = (fresh.bytes_written(), 0u64);
    g.bench_function("new_user", |b| {
        b.iter(|| {
            n += 1;
            bytes.1 += 1;
            let e = Event::new(format!("n{n}"), "view", T0 + 731 * DAY_MS + n as i64)
                .with_id(format!("e{n}"))
                .with_session(format!("s{n}"));
            black_box(fresh.record(&e).expect("record"))
        })
    });
    let new_user_bytes = (fresh.bytes_written() - bytes.0) as f64 / bytes.1 as f64;
    // a new day for a returning user, one call per event; the bytes its
    // writes carried per event
    let mut returning = |g: &mut criterion::BenchmarkGroup<'_, _>, name: &str, prefix: &str| {
        let before = (db.bytes_written(), n);
        g.bench_function(name, |b| {
            b.iter(|| {
                n += 1;
                let u = n % hist as u64;
                let day = 800 + (n / hist as u64) as i64;
                let e = Event::new(format!("{prefix}{u}"), "view", T0 + day * DAY_MS + 7)
                    .with_id(format!("p{n}"))
                    .with_session(format!("ps{n}"));
                black_box(db.record(&e).expect("record"))
            })
        });
        (db.bytes_written() - before.0) as f64 / (n - before.1).max(1) as f64
    };
    let history_bytes = returning(&mut g, "history_700", "h");
    // the same store, users with 30 days: whether the cost depends on how
    // long the history is, apart from there being one to read
    let short_bytes = returning(&mut g, "history_30", "r");
    g.finish();
    eprintln!(
        "ingest/one_per_call: bytes written per event: new user {new_user_bytes:.0}, \
         700-day user {history_bytes:.0}, 30-day user {short_bytes:.0}"
    );
    // every store a benchmark wrote verifies clean afterwards
    for d in [&db, &fresh] {
        assert!(d.verify().expect("verify").is_clean());
    }
}

fn bench_timeline(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::open(dir.path(), Options::default().create_if_missing(true)).expect("open");
    // one user with 5 000 events among 200 000 of other users
    let rounds = if measuring() { 200 } else { 10 };
    for round in 0..rounds {
        let mut evs = worst(round);
        for (i, e) in evs.iter_mut().enumerate().take(25) {
            e.user = "hot".into();
            e.event_id = Some(format!("hot-{round}-{i}"));
        }
        db.record_batch(&evs).expect("record");
    }
    db.flush().expect("flush");
    c.bench_function("timeline/newest_100", |b| {
        b.iter(|| black_box(db.newest("hot", 100).expect("timeline")))
    });
}

criterion_group!(benches, bench_ingest, bench_timeline);
criterion_main!(benches);
