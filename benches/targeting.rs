//! What targeting costs (docs/performance.md, "Targeting"):
//! `cargo bench --bench targeting -- USERS` writes USERS profiles with five
//! attributes (age, city, vip, score, signup instant, a birthday and on
//! most a sensitive phone), compacts and reopens the store, then prints
//! the median of 21 runs of each attribute atom as a segment (an age range,
//! a birthday window, a prefix, `has:`, an instant range, a mix, and the
//! threshold atoms over two events per user and points for one in ten), and
//! the mean cost of a profile update changing all five attributes of a
//! random existing user (20 000 updates). Under `cargo test` (no
//! `--bench`) a small smoke run.
//!
//! The update loop uses only attribute types every format has, so the same
//! loop can run against an older build for the "≤ 1.5× today's cost"
//! ratio (docs/performance.md gives the procedure).

use std::time::{Duration, Instant};

use stickydb::{AttrValue, Db, Event, Options, PointsOp, ProfileUpdate, Segment, Sensitive};

#[path = "common/shapes.rs"]
mod shapes;
use shapes::mix;

const CITIES: [&str; 8] = [
    "Shenzhen",
    "Shanghai",
    "Shenyang",
    "Beijing",
    "Guangzhou",
    "Hangzhou",
    "Chengdu",
    "Wuhan",
];
/// 2026-03-01T12:00:00Z.
const NOW_MS: i64 = 1_772_366_400_000;
const SIGNUP_BASE_MS: i64 = 1_600_000_000_000;

fn birthday(h: u64) -> AttrValue {
    let y = 1950 + (h % 60) as i32;
    let m = 1 + ((h >> 8) % 12) as u32;
    let d = 1 + ((h >> 16) % 28) as u32;
    AttrValue::date(y, m, d).expect("a date")
}

/// The five indexed attributes of user `u` in round `round`.
fn attributes(u: u64, round: u64) -> ProfileUpdate {
    let h = mix(u ^ (round << 40));
    ProfileUpdate::new()
        .set("age", 12 + (h % 70) as i64)
        .set("city", CITIES[((h >> 12) % 8) as usize])
        .set("vip", (h >> 20) % 10 == 0)
        .set("score", ((h >> 24) % 1000) as f64 / 10.0)
        .set(
            "signup",
            AttrValue::Timestamp(SIGNUP_BASE_MS + ((h >> 32) % 1_000_000) as i64 * 60_000),
        )
}

fn build(db: &Db, users: u64) {
    for u in 0..users {
        let h = mix(u);
        let mut update = attributes(u, 0).set("birthday", birthday(h));
        if h % 10 < 7 {
            update = update.set_sensitive("phone", format!("+86 1{:09}", h % 1_000_000_000));
        }
        db.update_profile(&format!("u{u}"), &update)
            .expect("profile");
    }
}

/// Two events per user over the 90 days before `NOW_MS` (a purchase on
/// every other user), and points for one user in ten: what the threshold
/// atoms read.
fn activity(db: &Db, users: u64) {
    let mut batch = Vec::with_capacity(10_000);
    for u in 0..users {
        let h = mix(u ^ 0x5eed);
        let user = format!("u{u}");
        for i in 0..2u64 {
            let ts = NOW_MS - ((h >> (8 * i)) % 90) as i64 * 86_400_000 - 3_600_000;
            let e = if i == 0 && u % 2 == 0 {
                Event::new(user.as_str(), "purchase", ts)
                    .with_amount(1 + ((h >> 20) % 20_000) as i64)
            } else {
                Event::new(user.as_str(), "view", ts)
            };
            batch.push(e);
        }
        if batch.len() >= 10_000 {
            db.record_batch(&batch).expect("events");
            batch.clear();
        }
        if u % 10 == 0 {
            let points = PointsOp::earn(1 + (h % 3_000) as i64, "welcome");
            db.points(&user, "w", NOW_MS - 86_400_000, &points)
                .expect("points");
        }
    }
    db.record_batch(&batch).expect("events");
}

fn median(mut xs: Vec<Duration>) -> Duration {
    xs.sort_unstable();
    xs[xs.len() / 2]
}

fn queries(db: &Db, runs: usize) {
    for (expr, sensitive) in [
        ("attr:age>=18 and attr:age<=25", Sensitive::Exclude),
        ("birthday_within:7d", Sensitive::Exclude),
        ("attr:city^=Shen", Sensitive::Exclude),
        ("attr:vip=true", Sensitive::Exclude),
        ("has:phone", Sensitive::Include),
        (
            "attr:signup>=2021-01-01 and attr:signup<2021-02-01",
            Sensitive::Exclude,
        ),
        (
            "attr:age>=18 and attr:age<=25 and attr:city^=Shen and birthday_within:7d",
            Sensitive::Exclude,
        ),
        ("spend>=10000@90d", Sensitive::Exclude),
        ("orders>=1@30d", Sensitive::Exclude),
        ("points>=1000", Sensitive::Exclude),
        ("stickiness>=0.05@30d", Sensitive::Exclude),
        ("rfm.m>=4", Sensitive::Exclude),
    ] {
        let seg = Segment::parse(expr).expect("segment");
        let mut times = Vec::with_capacity(runs);
        let mut count = 0;
        for _ in 0..runs {
            let t = Instant::now();
            count = db
                .segment_with(&seg, NOW_MS, sensitive)
                .expect("segment")
                .len();
            times.push(t.elapsed());
        }
        println!("{expr:<80} {count:>9} users  p50 {:>10.3?}", median(times));
    }
}

fn updates(db: &Db, users: u64, n: u64) {
    let t = Instant::now();
    for i in 0..n {
        let u = mix(i ^ 0xabcd) % users;
        db.update_profile(&format!("u{u}"), &attributes(u, 1 + i))
            .expect("update");
    }
    let per = t.elapsed() / n as u32;
    println!("profile update, five attributes changed: {per:?} each ({n} updates)");
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let benching = args.iter().any(|a| a == "--bench");
    let users: u64 = match (benching, args.iter().find(|a| !a.starts_with("--"))) {
        (true, Some(n)) => n.parse().expect("USERS: a number"),
        (true, None) => 1_000_000,
        (false, _) => 500,
    };
    // STICKYDB_BENCH_DIR keeps the store (for timing the CLI's export of
    // it as a fresh process: docs/performance.md)
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = std::env::var_os("STICKYDB_BENCH_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| tmp.path().join("store"));
    {
        let db = Db::create(&dir, Options::default()).expect("create");
        let t = Instant::now();
        build(&db, users);
        println!("{users} profiles written in {:.1?}", t.elapsed());
        activity(&db, users);
        db.compact().expect("compact");
    }
    let db = Db::open(&dir, Options::default()).expect("reopen");
    queries(&db, if benching { 21 } else { 3 });
    updates(&db, users, if benching { 20_000 } else { 200 });
}
