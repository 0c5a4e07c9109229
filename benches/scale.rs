//! Past one machine (SPEC §7): what one partition's store sustains, as a
//! deployment meets it.
//!
//! - `consume/kafka`: 25 000 JSON events in one partition of librdkafka's
//!   mock cluster (real sockets, the real client) recorded by
//!   `kafka::consume` into a fresh store, batches of 1 000, to the
//!   partition's end — the per-partition throughput docs/scale-out.md
//!   sizes a deployment with.
//! - `consume/kafka_steady`: the same, timed from the first batch's write
//!   to the last's (24 000 events): without the client's start and close.
//! - `consume/direct`: the same events parsed from the same JSON and
//!   recorded by `record_batch` in batches of 1 000, no log: what the
//!   consumer costs on top.
//! - `export_clickhouse/30_days`: a partition of 100 000 users with 30 days
//!   of activity exported as groupBitmap states.
//! - `cluster/active_30_days`: DAU/WAU/MAU of 30 days over 4 partition
//!   stores against one store of the same events.
//!
//! Events: users drawn from 50 000, sessions of 10 events, 6 kinds,
//! timestamps rising over 30 days.
//!
//! Run: `cargo bench --bench scale --features kafka`. Under `cargo test`
//! the data is small and each benchmark runs once.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use stickydb::cluster::Cluster;
use stickydb::{Db, Event, Options, Partition};

/// 2024-03-01 00:00 UTC.
const T0: i64 = 1_709_251_200_000;
const DAY_MS: i64 = 86_400_000;

fn measuring() -> bool {
    std::env::args().any(|a| a == "--bench")
}

/// `n` events as JSON texts.
fn json_events(n: usize, users: u64) -> Vec<String> {
    let kinds = ["view", "view", "view", "add_to_cart", "purchase", "sign_in"];
    let mut x: u64 = 42;
    let mut next = |m: u64| {
        x = x
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (x >> 33) % m
    };
    let mut out = Vec::with_capacity(n);
    let step_ms = (30 * DAY_MS) / n.max(1) as i64;
    while out.len() < n {
        let user = next(users);
        let session = next(1 << 40);
        for _ in 0..10 {
            let i = out.len() as i64;
            let kind = kinds[next(kinds.len() as u64) as usize];
            let amount = if kind == "purchase" {
                format!(r#","amount":{}"#, 100 + next(20_000))
            } else {
                String::new()
            };
            out.push(format!(
                r#"{{"user":"user-{user}","kind":"{kind}","ts":{},"session_id":"s{session}"{amount}}}"#,
                T0 + i * step_ms
            ));
        }
    }
    out.truncate(n);
    out
}

fn events(json: &[String]) -> Vec<Event> {
    json.iter()
        .map(|j| stickydb::timeline::json::event_from_slice(j.as_bytes()).expect("event"))
        .collect()
}

#[cfg(feature = "kafka")]
fn consume(c: &mut Criterion) {
    use criterion::SamplingMode;
    use std::sync::atomic::AtomicBool;
    use std::time::{Duration, Instant};
    use stickydb::kafka::rdkafka::config::ClientConfig;
    use stickydb::kafka::rdkafka::mocking::MockCluster;
    use stickydb::kafka::rdkafka::producer::{BaseProducer, BaseRecord, Producer};
    use stickydb::kafka::{self, ConsumeOptions};

    // librdkafka's mock broker keeps only the newest ~30 000 messages of a
    // partition of this size (older segments are dropped), so a run is
    // 25 000 messages.
    let n = if measuring() { 25_000 } else { 5_000 };
    let json = json_events(n, 50_000);
    let mock = MockCluster::new(1).expect("mock cluster");
    mock.create_topic("events", 1, 1).expect("topic");
    let brokers = mock.bootstrap_servers();
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("linger.ms", "20")
        .create()
        .expect("producer");
    for j in &json {
        while producer
            .send(BaseRecord::<(), _>::to("events").partition(0).payload(j))
            .is_err()
        {
            producer.poll(Duration::from_millis(5));
        }
    }
    producer.flush(Duration::from_secs(60)).expect("flush");

    let mut g = c.benchmark_group("consume");
    g.sampling_mode(SamplingMode::Flat);
    g.sample_size(10);
    g.throughput(criterion::Throughput::Elements(n as u64));
    // One consumer run into a fresh store, to the partition's end; `batch`
    // is called after every write.
    let run = |batch: &mut dyn FnMut()| {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Db::open(dir.path(), Options::default().create_if_missing(true)).expect("open");
        let mut o = ConsumeOptions::new(&brokers, "events", 0);
        o.until_end = true;
        let stop = AtomicBool::new(false);
        let r = kafka::consume(&db, &o, &stop, &mut |_| batch()).expect("consume");
        assert_eq!(r.recorded, n as u64);
    };
    g.bench_function("kafka", |b| {
        b.iter_custom(|iters| {
            let t = Instant::now();
            for _ in 0..iters {
                run(&mut || {});
            }
            // (the fresh stores' creation is a few ms of each run)
            t.elapsed()
        })
    });
    // The same run without the client's start and close (~100 ms of a
    // 25 000-message run): from the first batch's write to the last's, the
    // rate a long-running consumer sustains.
    g.throughput(criterion::Throughput::Elements((n - 1_000) as u64));
    g.bench_function("kafka_steady", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let (mut first, mut last) = (None, None);
                run(&mut || {
                    let now = Instant::now();
                    first.get_or_insert(now);
                    last = Some(now);
                });
                if let (Some(f), Some(l)) = (first, last) {
                    total += l - f;
                }
            }
            total
        })
    });
    g.throughput(criterion::Throughput::Elements(n as u64));
    g.bench_function("direct", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let dir = tempfile::tempdir().expect("tempdir");
                let db =
                    Db::open(dir.path(), Options::default().create_if_missing(true)).expect("open");
                let t = Instant::now();
                for chunk in json.chunks(1_000) {
                    db.record_batch(&events(chunk)).expect("record");
                }
                total += t.elapsed();
            }
            total
        })
    });
    g.finish();
}

#[cfg(not(feature = "kafka"))]
fn consume(_: &mut Criterion) {}

fn export_and_cluster(c: &mut Criterion) {
    let n = if measuring() { 1_000_000 } else { 10_000 };
    let evs = events(&json_events(n, 100_000));
    let whole_dir = tempfile::tempdir().expect("tempdir");
    let whole =
        Db::open(whole_dir.path(), Options::default().create_if_missing(true)).expect("open");
    let dirs: Vec<_> = (0..4)
        .map(|_| tempfile::tempdir().expect("tempdir"))
        .collect();
    let parts: Vec<Db> = (0..4u32)
        .map(|i| {
            let partition = Partition::new(i, 4).expect("partition");
            Db::open(
                dirs[i as usize].path(),
                Options::default()
                    .create_if_missing(true)
                    .partition(partition),
            )
            .expect("open")
        })
        .collect();
    for chunk in evs.chunks(10_000) {
        whole.record_batch(chunk).expect("record");
        for (i, db) in parts.iter().enumerate() {
            let mine: Vec<Event> = chunk
                .iter()
                .filter(|e| Partition::of(&e.user, 4).index == i as u32)
                .cloned()
                .collect();
            db.record_batch(&mine).expect("record");
        }
    }
    for db in parts.iter().chain([&whole]) {
        db.flush().expect("flush");
        db.compact().expect("compact");
    }
    let from = whole.local_day(T0);
    let to = from + 29;

    let mut g = c.benchmark_group("export_clickhouse");
    g.sample_size(10);
    g.bench_function("30_days", |b| {
        b.iter(|| {
            let mut out = Vec::new();
            black_box(stickydb::clickhouse::export(&whole, from, to, 1, &mut out).expect("export"));
            out.len()
        })
    });
    g.finish();

    let cluster = Cluster::new(parts.iter().collect()).expect("cluster");
    let mut g = c.benchmark_group("cluster");
    g.bench_function("active_30_days/4_partitions", |b| {
        b.iter(|| black_box(cluster.active(None, from, to, None, 0).expect("active")))
    });
    g.bench_function("active_30_days/one_store", |b| {
        b.iter(|| {
            black_box(
                whole
                    .metrics()
                    .active(None, from, to, None)
                    .expect("active"),
            )
        })
    });
    g.finish();
}

criterion_group!(benches, consume, export_and_cluster);
criterion_main!(benches);
