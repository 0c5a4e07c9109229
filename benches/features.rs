//! What per-user features and rule tags cost (docs/performance.md,
//! "Features"): `cargo bench --bench features -- USERS` builds two stores
//! from the same realistic stream — one with 20 definitions and 5 rules,
//! one with none — alternating batches between them, and prints side by
//! side: batch ingest, single-event writes, all features of one user read
//! (p50/p99), `advance` over one day, the backfill after a definition
//! change, and a merge of a 1 000-event visitor. Under `cargo test` (no
//! `--bench`) a small smoke run.

use std::time::{Duration, Instant};

use stickydb::features::json;
use stickydb::{Db, Event, MergeOptions, Options, PropValue};

#[path = "common/shapes.rs"]
mod shapes;
use shapes::{mix, realistic, DAY_MS, T0};

const CATEGORIES: [&str; 6] = ["shoes", "bags", "beauty", "electronics", "home", "toys"];

/// 20 definitions and 5 rules of the kinds the issue names.
const DEFINITIONS: &str = r#"[
{"name":"views_7d","kinds":["view"],"op":"count","window":"7d"},
{"name":"views_30d","kinds":["view"],"op":"count","window":"30d"},
{"name":"views_shoes_14d","kinds":["view"],"where":{"category":"shoes"},"op":"count","window":"14d"},
{"name":"views_by_category_30d","kinds":["view"],"op":"count","key":"category","window":"30d"},
{"name":"top_categories_30d","kinds":["view","purchase"],"op":"top_k","key":"category","k":3,"window":"30d"},
{"name":"spend_90d","kinds":["purchase"],"op":"sum","field":"amount","window":"90d"},
{"name":"spend_lifetime","kinds":["purchase"],"op":"sum","field":"amount"},
{"name":"orders_30d","kinds":["purchase"],"op":"count","window":"30d"},
{"name":"orders_lifetime","kinds":["purchase"],"op":"count"},
{"name":"avg_order_90d","kinds":["purchase"],"op":"avg","field":"amount","window":"90d"},
{"name":"max_order","kinds":["purchase"],"op":"max","field":"amount"},
{"name":"first_seen","kinds":["view","search","purchase"],"op":"first_at"},
{"name":"last_purchase_at","kinds":["purchase"],"op":"last_at"},
{"name":"last_category","kinds":["view"],"op":"last_value","field":"category"},
{"name":"last_items","kinds":["view"],"op":"last_k","field":"item","k":10},
{"name":"distinct_items_30d","kinds":["view"],"op":"distinct","field":"item","window":"30d"},
{"name":"searches_today","kinds":["search"],"op":"count","window":"day"},
{"name":"carts_week","kinds":["add_to_cart"],"op":"count","window":"week"},
{"name":"reviews_month","kinds":["review"],"op":"count","window":"month"},
{"name":"last_20_views_shoes","kinds":["view"],"where":{"category":"shoes"},"op":"count","window":"last:20"},
{"tag":"interest:shoes","when":"views_shoes_14d >= 3"},
{"tag":"interest:{key}","when":"views_by_category_30d[key] >= 5"},
{"tag":"big_spender","when":"spend_90d >= 20000"},
{"tag":"window_shopper","when":"views_7d >= 10 and orders_30d == 0"},
{"tag":"lapsing","when":"orders_lifetime >= 1 and not orders_30d >= 1"}
]"#;

/// Properties on the realistic stream: a category and an item.
fn dress(events: &mut [Event]) {
    for (i, e) in events.iter_mut().enumerate() {
        let h = mix(e.ts_ms as u64 ^ i as u64);
        let cat = CATEGORIES[(h % CATEGORIES.len() as u64) as usize];
        e.properties
            .insert("category".into(), PropValue::Str(cat.into()));
        e.properties
            .insert("item".into(), PropValue::Str(format!("{cat}-{}", h % 50)));
    }
}

fn pct(mut xs: Vec<Duration>, p: f64) -> f64 {
    xs.sort_unstable();
    let i = ((xs.len() as f64 * p) as usize).min(xs.len().saturating_sub(1));
    xs.get(i).map_or(0.0, |d| d.as_secs_f64() * 1e6)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let benching = args.iter().any(|a| a == "--bench");
    let users: u64 = match (benching, args.iter().find(|a| !a.starts_with("--"))) {
        (true, Some(n)) => n.parse().expect("USERS: a number"),
        (true, None) => 100_000,
        (false, _) => 200,
    };
    // ~20 events per user over 60 days
    let rounds = (users * 2 / 100).max(2) as usize;
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let dbs = [
        Db::create(dirs[0].path(), Options::default()).unwrap(),
        Db::create(dirs[1].path(), Options::default()).unwrap(),
    ];
    let (defs, rules) = json::parse(DEFINITIONS).unwrap();
    dbs[0].define_features(&defs, &rules).unwrap();
    let mut ingest = [Duration::ZERO; 2];
    let mut events = 0u64;
    for round in 0..rounds {
        let day = (round * 60 / rounds) as i64 - (round / 50) as i64;
        let mut evs = realistic(round, users, "u", day);
        dress(&mut evs);
        events += evs.len() as u64;
        for (i, db) in dbs.iter().enumerate() {
            let t = Instant::now();
            db.record_batch(&evs).unwrap();
            ingest[i] += t.elapsed();
        }
    }
    let end = T0 + 61 * DAY_MS;
    let rate = |d: Duration| events as f64 / d.as_secs_f64();
    println!("{users} users, {events} events, 20 definitions and 5 rules vs none");
    println!(
        "batch ingest: {:.0} vs {:.0} events/s ({:+.1} %)",
        rate(ingest[0]),
        rate(ingest[1]),
        (ingest[0].as_secs_f64() / ingest[1].as_secs_f64() - 1.0) * 100.0
    );
    // single events to existing users, alternated
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
    // all features of one user, warm
    let reads = if benching { 100_000 } else { 100 };
    let mut lat = Vec::with_capacity(reads);
    for k in 0..reads {
        let user = format!("u{}", mix(k as u64 ^ 7) % users);
        let t = Instant::now();
        match dbs[0].features(&user, end) {
            Ok(f) => std::hint::black_box(f),
            Err(_) => continue, // (a user the stream never named)
        };
        lat.push(t.elapsed());
    }
    println!(
        "all features of one user at the present: p50 {:.1} us, p99 {:.1} us",
        pct(lat.clone(), 0.5),
        pct(lat, 0.99)
    );
    // the same, warm: users read once before (at 1 M users the states
    // outgrow the default block cache, and a read above is mostly a miss)
    let hot: Vec<String> = (0..10_000u64.min(users))
        .map(|k| format!("u{}", mix(k ^ 11) % users))
        .filter(|u| dbs[0].features(u, end).is_ok())
        .collect();
    let mut lat = Vec::with_capacity(reads);
    for k in 0..reads as u64 {
        let Some(user) = hot.get((mix(k ^ 13) % hot.len().max(1) as u64) as usize) else {
            break;
        };
        let t = Instant::now();
        std::hint::black_box(dbs[0].features(user, end).unwrap());
        lat.push(t.elapsed());
    }
    println!(
        "the same, warm ({} users read before): p50 {:.1} us, p99 {:.1} us",
        hot.len(),
        pct(lat.clone(), 0.5),
        pct(lat, 0.99)
    );
    // advance on both stores: the features' part is the difference
    let mut took = [[0.0f64; 2]; 2];
    let mut reports = Vec::new();
    for (i, db) in dbs.iter().enumerate() {
        for (step, now) in [end, end + DAY_MS].into_iter().enumerate() {
            let t = Instant::now();
            let report = db.advance(now).unwrap();
            took[step][i] = t.elapsed().as_secs_f64();
            if i == 0 {
                reports.push(report);
            }
        }
    }
    println!(
        "advance to the end: {:.2} vs {:.2} s ({} users, {} tag changes); one more day: {:.2} vs {:.2} s ({} users, {} tag changes)",
        took[0][0],
        took[0][1],
        reports[0].tag_users,
        reports[0].tag_changes,
        took[1][0],
        took[1][1],
        reports[1].tag_users,
        reports[1].tag_changes
    );
    // a definition change, then the backfill
    let (mut edited, _) =
        json::parse(r#"{"name":"views_7d","kinds":["view"],"op":"count","window":"8d"}"#).unwrap();
    dbs[0].define_features(&edited.split_off(0), &[]).unwrap();
    let t = Instant::now();
    let done = dbs[0].backfill_features().unwrap();
    let secs = t.elapsed().as_secs_f64();
    println!(
        "backfill: {done} users in {secs:.2} s = {:.0} events/s",
        events as f64 / secs
    );
    // a 1 000-event visitor merged into a member
    let mut merge = [Duration::ZERO; 2];
    for (i, db) in dbs.iter().enumerate() {
        let mut evs: Vec<Event> = (0..1_000)
            .map(|k| {
                Event::new(
                    "visitor",
                    if k % 10 == 9 { "purchase" } else { "view" },
                    end - k * 60_000,
                )
                .with_amount(1_000)
            })
            .collect();
        dress(&mut evs);
        db.record_batch(&evs).unwrap();
        let t = Instant::now();
        db.merge("visitor", "u1", "m1", MergeOptions::forced())
            .unwrap();
        merge[i] = t.elapsed();
    }
    println!(
        "merge of a 1 000-event visitor: {:.2} vs {:.2} ms ({:+.2} ms)",
        merge[0].as_secs_f64() * 1e3,
        merge[1].as_secs_f64() * 1e3,
        (merge[0].as_secs_f64() - merge[1].as_secs_f64()) * 1e3
    );
    for (i, db) in dbs.iter().enumerate() {
        let stats = db.stats().unwrap();
        let f = stats
            .column_families
            .get("features")
            .map_or(0, |c| c.sst_bytes + c.memtable_bytes);
        println!("store {i}: features family {f} bytes");
    }
}
