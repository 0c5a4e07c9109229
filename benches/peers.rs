//! stickydb against what an embedding developer would pick instead: SQLite
//! (rusqlite with its bundled SQLite), set up the way such a developer
//! would — WAL, `synchronous=NORMAL`, a unique index on (user, event_id)
//! for idempotency (`INSERT OR IGNORE`), indexes on (user, ts) and (ts),
//! one transaction per 1 000 rows — holding the same events and answering
//! the same questions by SQL (SPEC §6).
//!
//! The events are the realistic shape of `benches/ingest.rs`: sessions of
//! 10 events, 100 users per 1 000-event batch, over `events / 20 000` days.
//! Each side is built once, in this process, one after the other (the
//! stickydb side after `wait_for_compact`), and the build times are printed
//! as events/s with their ratio; then criterion measures the queries on
//! both stores:
//!
//! - `peers/dau_wau_mau/{stickydb,sqlite}`: the three counts of one day;
//! - `peers/retention_30x30/{stickydb,sqlite}`: first-activity daily
//!   cohorts of 30 days, returns on each of the next 29 days.
//!
//! Run: `cargo bench --bench peers` (200 000 events); the SPEC's 10 M-event
//! comparison: `STICKYDB_PEER_EVENTS=10000000 cargo bench --bench peers`.

use std::hint::black_box;
use std::time::Instant;

use criterion::{criterion_group, criterion_main, Criterion};
use rusqlite::{params, Connection};
use stickydb::metrics::{Period, RetentionQuery};
use stickydb::{Db, Event, Options};

#[path = "common/shapes.rs"]
mod shapes;
use shapes::{mix, BATCH, DAY_MS, SESSION, T0};

const EVENTS_PER_DAY: usize = 20_000;

fn measuring() -> bool {
    std::env::args().any(|a| a == "--bench")
}

fn events_wanted() -> usize {
    std::env::var("STICKYDB_PEER_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if measuring() { 200_000 } else { 10_000 })
}

/// Batch `round` of the realistic shape over a pool of `pool` users.
fn batch(round: usize, pool: u64) -> Vec<Event> {
    let mut out = Vec::with_capacity(BATCH);
    let day = (round * BATCH / EVENTS_PER_DAY) as i64;
    for i in 0..(BATCH / SESSION.len()) {
        let tag = (round * 100 + i) as u64;
        let user = format!("u{}", mix(tag) % pool);
        let ts = T0 + day * DAY_MS + (mix(tag ^ 7) % 80_000_000) as i64;
        for (j, kind) in SESSION.iter().enumerate() {
            let mut e = Event::new(user.as_str(), *kind, ts + j as i64 * 30_000)
                .with_id(format!("e{tag}-{j}"))
                .with_session(format!("s{tag}"));
            if *kind == "purchase" {
                e.amount_minor = Some(1_000 + (mix(tag) % 9_000) as i64);
            }
            out.push(e);
        }
    }
    out
}

fn sqlite_open(path: &std::path::Path) -> Connection {
    let c = Connection::open(path).expect("sqlite open");
    c.execute_batch(
        "PRAGMA journal_mode=WAL;
         PRAGMA synchronous=NORMAL;
         CREATE TABLE events(user TEXT NOT NULL, kind TEXT NOT NULL, ts INTEGER NOT NULL,
                             event_id TEXT, session_id TEXT, amount INTEGER);
         CREATE UNIQUE INDEX events_user_event ON events(user, event_id);
         CREATE INDEX events_user_ts ON events(user, ts);
         CREATE INDEX events_ts ON events(ts);",
    )
    .expect("sqlite schema");
    c
}

fn sqlite_insert(c: &mut Connection, evs: &[Event]) {
    let tx = c.transaction().expect("tx");
    {
        let mut st = tx
            .prepare_cached("INSERT OR IGNORE INTO events VALUES (?1, ?2, ?3, ?4, ?5, ?6)")
            .expect("prepare");
        for e in evs {
            st.execute(params![
                e.user,
                e.kind.as_str(),
                e.ts_ms,
                e.event_id,
                e.session_id,
                e.amount_minor
            ])
            .expect("insert");
        }
    }
    tx.commit().expect("commit");
}

/// DAU, WAU, MAU of local day `day` (UTC) by SQL.
fn sqlite_active(c: &Connection, day: i64) -> (i64, i64, i64) {
    let end = (day + 1) * DAY_MS;
    let q = "SELECT (SELECT COUNT(DISTINCT user) FROM events WHERE ts >= ?1 AND ts < ?4),
                    (SELECT COUNT(DISTINCT user) FROM events WHERE ts >= ?2 AND ts < ?4),
                    (SELECT COUNT(DISTINCT user) FROM events WHERE ts >= ?3 AND ts < ?4)";
    c.query_row(
        q,
        params![day * DAY_MS, (day - 6) * DAY_MS, (day - 29) * DAY_MS, end],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )
    .expect("active")
}

/// The 30 × 30 retention matrix by SQL: (cohort day, offset, users).
fn sqlite_retention(c: &Connection, from: i64, to: i64) -> Vec<(i64, i64, i64)> {
    let q = "WITH d AS (SELECT DISTINCT user, ts / 86400000 AS day FROM events),
                  f AS (SELECT user, MIN(day) AS c FROM d GROUP BY user)
             SELECT f.c, d.day - f.c AS n, COUNT(*) FROM f JOIN d USING (user)
             WHERE f.c BETWEEN ?1 AND ?2 AND d.day BETWEEN f.c AND ?2
             GROUP BY 1, 2 ORDER BY 1, 2";
    let mut st = c.prepare(q).expect("prepare");
    let rows = st
        .query_map(params![from, to], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .expect("query");
    rows.map(|r| r.expect("row")).collect()
}

fn bench_peers(c: &mut Criterion) {
    let n = events_wanted();
    let rounds = n / BATCH;
    let pool = (n as u64 / 50).max(100);
    let dir = tempfile::tempdir().expect("tempdir");

    let db = Db::open(
        dir.path().join("stickydb"),
        Options::default().create_if_missing(true),
    )
    .expect("open");
    let started = Instant::now();
    for r in 0..rounds {
        db.record_batch(&batch(r, pool)).expect("record");
    }
    let sticky_s = started.elapsed().as_secs_f64();
    db.wait_for_compact().expect("settle");

    let mut sql = sqlite_open(&dir.path().join("peer.sqlite"));
    let started = Instant::now();
    for r in 0..rounds {
        sqlite_insert(&mut sql, &batch(r, pool));
    }
    let sqlite_s = started.elapsed().as_secs_f64();
    let events = (rounds * BATCH) as f64;
    eprintln!(
        "peers: {} events ingested: stickydb {:.0} events/s, SQLite {:.0} events/s, ratio {:.2}",
        rounds * BATCH,
        events / sticky_s,
        events / sqlite_s,
        sqlite_s / sticky_s
    );

    let last = (rounds * BATCH / EVENTS_PER_DAY) as i64 + T0 / DAY_MS - 1;
    let last_day = last as i32;
    // both sides answer the same
    let m = db.metrics();
    let row = m.active(None, last_day, last_day, None).expect("active")[0];
    let (dau, wau, mau) = sqlite_active(&sql, last);
    assert_eq!(
        (row.dau, row.wau, row.mau),
        (dau as u64, wau as u64, mau as u64)
    );
    let q = RetentionQuery::new(Period::Day, last_day - 29, last_day);
    let ours = m.retention(&q, None).expect("retention");
    let theirs = sqlite_retention(&sql, last - 29, last);
    let ours_cells: u64 = ours.cohorts.iter().flat_map(|c| c.counts.iter()).sum();
    let theirs_cells: i64 = theirs.iter().map(|(_, _, n)| n).sum();
    assert_eq!(ours_cells as i64, theirs_cells, "retention cells agree");
    drop(m);

    let mut g = c.benchmark_group("peers/dau_wau_mau");
    g.sample_size(10);
    g.bench_function("stickydb", |b| {
        b.iter(|| black_box(db.metrics().active(None, last_day, last_day, None)))
    });
    g.bench_function("sqlite", |b| {
        b.iter(|| black_box(sqlite_active(&sql, last)))
    });
    g.finish();
    let mut g = c.benchmark_group("peers/retention_30x30");
    g.sample_size(10);
    g.bench_function("stickydb", |b| {
        b.iter(|| black_box(db.metrics().retention(&q, None)))
    });
    g.bench_function("sqlite", |b| {
        b.iter(|| black_box(sqlite_retention(&sql, last - 29, last)))
    });
    g.finish();
    assert!(db.verify().expect("verify").is_clean());
}

criterion_group!(benches, bench_peers);
criterion_main!(benches);
