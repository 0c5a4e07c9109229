//! The single write calls as a user's process meets them, for comparing
//! two builds side by side (docs/performance.md, "What the transaction core
//! costs the single calls"): `cargo bench --bench single_calls -- N MODE`
//! with MODE `batch` (N realistic batches of 1 000 events, the shape of
//! `benches/ingest.rs`), `new` (N calls, a new user each) or `repeat` (N
//! calls with event ids over 1 000 returning users). Prints the mean time
//! per call; run each build in its own process, alternated.

use stickydb::{Db, Event, Options};

#[path = "common/shapes.rs"]
mod shapes;
use shapes::{realistic, T0};

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
