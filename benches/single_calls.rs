//! The single write calls as a user's process meets them, for comparing
//! two builds side by side (docs/performance.md, "What the transaction core
//! costs the single calls"): `cargo bench --bench single_calls -- N MODE`
//! with MODE `batch` (N realistic batches of 1 000 events, the shape of
//! `benches/ingest.rs`), `new` (N calls, a new user each) or `repeat` (N
//! calls with event ids over 1 000 returning users). Prints the mean time
//! per call; run each build in its own process, alternated.

use stickydb::{Db, Event, Options};
const T0: i64 = 1_709_251_200_000;
const DAY_MS: i64 = 86_400_000;
const BATCH: usize = 1_000;
const SESSION: [&str; 10] = [
    "view",
    "view",
    "search",
    "view",
    "favorite",
    "view",
    "add_to_cart",
    "view",
    "purchase",
    "review",
];
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn session(user: &str, ts: i64, tag: u64, out: &mut Vec<Event>) {
    for (i, kind) in SESSION.iter().enumerate() {
        let mut e = Event::new(user, *kind, ts + i as i64 * 30_000)
            .with_id(format!("e{tag}-{i}"))
            .with_session(format!("s{tag}"));
        if *kind == "purchase" {
            e.amount_minor = Some(1_000 + (mix(tag) % 9_000) as i64);
        }
        out.push(e);
    }
}

fn realistic(round: usize, pool: u64, prefix: &str, first_day: i64) -> Vec<Event> {
    let mut out = Vec::with_capacity(BATCH);
    let day = first_day + (round / 50) as i64;
    for i in 0..(BATCH / SESSION.len()) {
        let tag = (round * 100 + i) as u64;
        let user = format!("{prefix}{}", mix(tag) % pool);
        let ts = T0 + day * DAY_MS + (mix(tag ^ 7) % 80_000_000) as i64;
        session(&user, ts, tag, &mut out);
    }
    out
}

fn main() {
    // `cargo bench --bench single_calls -- N MODE`; under `cargo test` (no
    // `--bench`) a two-call smoke run.
    let args: Vec<String> = std::env::args().skip(1).collect();
    let benching = args.iter().any(|a| a == "--bench");
    let mut plain = args.iter().filter(|a| !a.starts_with("--"));
    let n: usize = match (benching, plain.next()) {
        (true, Some(n)) => n.parse().expect("N: a number of calls"),
        (true, None) => 300,
        (false, _) => 2,
    };
    let dir = tempfile::tempdir().unwrap();
    let db = Db::create(dir.path(), Options::default()).unwrap();
    let mode = plain.next().cloned().unwrap_or_default();
    let t = std::time::Instant::now();
    for round in 0..n {
        match mode.as_str() {
            "new" => {
                db.record(&Event::new(format!("n{round}"), "view", T0 + round as i64))
                    .unwrap();
            }
            "repeat" => {
                let e = Event::new(
                    format!("r{}", round % 1_000),
                    "view",
                    T0 + round as i64 * 60_000,
                )
                .with_id(format!("x{round}"));
                db.record(&e).unwrap();
            }
            _ => {
                let evs = realistic(round, 50_000, "u", 0);
                db.record_batch(&evs).unwrap();
            }
        }
    }
    eprintln!("{:.3} us/call", t.elapsed().as_secs_f64() * 1e6 / n as f64);
}
