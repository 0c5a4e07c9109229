//! Event shapes shared by the benchmarks that compare ingest: one
//! realistic session, batches of them, a deterministic mix.
#![allow(dead_code)] // (each bench uses its own subset)

use stickydb::Event;

/// 2024-03-01 00:00 UTC.
pub const T0: i64 = 1_709_251_200_000;
pub const DAY_MS: i64 = 86_400_000;
pub const BATCH: usize = 1_000;

/// A cheap deterministic mix (splitmix64).
pub fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

pub const SESSION: [&str; 10] = [
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

/// One session of 10 events of `user` starting at `ts`.
pub fn session(user: &str, ts: i64, tag: u64, out: &mut Vec<Event>) {
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

/// Realistic batch `round`: 100 users from a pool of `pool`, one session
/// each; 50 batches per simulated day. `first_day` offsets the days.
pub fn realistic(round: usize, pool: u64, prefix: &str, first_day: i64) -> Vec<Event> {
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
