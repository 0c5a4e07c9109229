//! Ingest and timeline benchmarks (SPEC §6), measured side by side in one run.
//!
//! `ingest/stickydb` records batches through the full write path (validation,
//! per-user locks, id allocation, dedup index, counters); `ingest/rocksdb_raw`
//! writes the same records, bincode-encoded under the same keys, straight into
//! one RocksDB column family with the same batch size and WAL settings. Their
//! ratio is the cost of everything stickydb maintains. `ingest/stickydb_rules`
//! is the full write path on a store with earning rules (one point per
//! currency unit on purchases, 5 points per search capped at 20 a day): its
//! ratio to `ingest/stickydb` is the cost of crediting points in the events'
//! own batches.
//!
//! Run: `cargo bench --bench ingest`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use stickydb::{Db, Event, Options};

const BATCH: usize = 1_000;
const USERS: usize = 10_000;
const T0: i64 = 1_709_251_200_000;

fn events(round: usize) -> Vec<Event> {
    (0..BATCH)
        .map(|i| {
            let n = round * BATCH + i;
            let kind = ["view", "view", "search", "add_to_cart", "purchase"][n % 5];
            let mut e = Event::new(
                format!("user-{}", (n * 7919) % USERS),
                kind,
                T0 + (n as i64) * 1_000,
            )
            .with_id(format!("e{n}"))
            .with_session(format!("s{}", n / 20));
            if kind == "purchase" {
                e.amount_minor = Some(1_000 + (n as i64 % 9_000));
            }
            e
        })
        .collect()
}

fn raw_rocksdb(path: &std::path::Path) -> rocksdb::DB {
    let mut o = rocksdb::Options::default();
    o.create_if_missing(true);
    o.set_compression_type(rocksdb::DBCompressionType::Lz4);
    o.set_write_buffer_size(32 << 20);
    rocksdb::DB::open(&o, path).expect("open raw rocksdb")
}

fn bench_ingest(c: &mut Criterion) {
    let mut g = c.benchmark_group("ingest");
    g.throughput(Throughput::Elements(BATCH as u64));
    g.sample_size(20);

    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::open(dir.path().join("s"), Options::default()).expect("open");
    let mut round = 0usize;
    g.bench_function("stickydb", |b| {
        b.iter_batched(
            || {
                round += 1;
                events(round)
            },
            |evs| black_box(db.record_batch(&evs).expect("record")),
            BatchSize::LargeInput,
        )
    });

    let ruled = Db::open(dir.path().join("r"), Options::default()).expect("open");
    ruled
        .set_ledger_settings(stickydb::LedgerSettings {
            rules: vec![
                stickydb::ledger::EarnRule {
                    kind: "purchase".into(),
                    points: stickydb::ledger::RulePoints::PerAmount {
                        points: 1,
                        per_minor: 100,
                    },
                    daily_cap_points: None,
                    expires_after_days: Some(365),
                },
                stickydb::ledger::EarnRule {
                    kind: "search".into(),
                    points: stickydb::ledger::RulePoints::Fixed(5),
                    daily_cap_points: Some(20),
                    expires_after_days: None,
                },
            ],
            ..Default::default()
        })
        .expect("rules");
    let mut round = 0usize;
    g.bench_function("stickydb_rules", |b| {
        b.iter_batched(
            || {
                round += 1;
                events(round)
            },
            |evs| black_box(ruled.record_batch(&evs).expect("record")),
            BatchSize::LargeInput,
        )
    });

    let raw = raw_rocksdb(&dir.path().join("raw"));
    let mut round = 0usize;
    g.bench_function("rocksdb_raw", |b| {
        b.iter_batched(
            || {
                round += 1;
                events(round)
            },
            |evs| {
                let mut batch = rocksdb::WriteBatch::default();
                for (i, e) in evs.iter().enumerate() {
                    // the same information per event: a 16-byte key and the record
                    let mut key = Vec::with_capacity(16);
                    key.extend_from_slice(&((i % USERS) as u32).to_be_bytes());
                    key.extend_from_slice(&stickydb::keys::ts_desc(e.ts_ms));
                    key.extend_from_slice(&(i as u32).to_be_bytes());
                    let value = stickydb::codec::encode(&(
                        e.kind.as_str(),
                        &e.event_id,
                        &e.session_id,
                        e.amount_minor,
                        &e.user,
                    ));
                    batch.put(key, value);
                }
                raw.write(batch).expect("raw write")
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

fn bench_timeline(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::open(dir.path(), Options::default()).expect("open");
    // one user with 5 000 events among 200 000 of other users
    for round in 0..200 {
        let mut evs = events(round);
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
