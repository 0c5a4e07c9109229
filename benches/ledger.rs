//! Ledger benchmarks: one points operation end to end (validation, lock,
//! replay lookup, lot draw, one synced-off WriteBatch), a replay, and an
//! expiry run over many accounts; the matching coupon operations (issue
//! beside earn, redeem beside redeem, replay beside replay) and a coupon
//! expiry run over as many accounts (docs/performance.md, "Coupons"); a
//! purchase write with and without a first-order reward rule.
//!
//! Run: `cargo bench --bench ledger`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use stickydb::{CouponOp, CouponTemplate, Db, Event, Options, PointsOp};

const T0: i64 = 1_709_251_200_000;
const DAY: i64 = 86_400_000;
const ACCOUNTS: usize = 10_000;
/// Open lots on the account redeems draw from.
const LOTS: usize = 100;

fn earn(points: i64, expires_at_ms: Option<i64>) -> PointsOp {
    PointsOp::Earn {
        points,
        expires_at_ms,
        reason: "bench".into(),
    }
}

fn bench_ops(c: &mut Criterion) {
    let mut g = c.benchmark_group("ledger");
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::open(dir.path(), Options::default().create_if_missing(true)).expect("open");
    for i in 0..LOTS {
        let exp = Some(T0 + (1 + i as i64) * DAY);
        db.points("rich", &format!("seed{i}"), T0, &earn(1_000_000, exp))
            .expect("seed");
    }
    let mut n = 0usize;
    g.bench_function("earn", |b| {
        b.iter(|| {
            n += 1;
            let user = format!("u{}", n % ACCOUNTS);
            black_box(
                db.points(&user, &format!("e{n}"), T0, &earn(10, Some(T0 + 30 * DAY)))
                    .expect("earn"),
            )
        })
    });
    // 100 open lots, but 3 points fit in the first: one lot drawn
    g.bench_function("redeem_first_of_100_open_lots", |b| {
        b.iter(|| {
            n += 1;
            black_box(
                db.points("rich", &format!("r{n}"), T0, &PointsOp::redeem(3, ""))
                    .expect("redeem"),
            )
        })
    });
    // 100 lots of 10 points, and a redeem that takes them all: every lot
    // drawn, in expiry order (each iteration on a freshly seeded account)
    g.bench_function("redeem_across_100_lots", |b| {
        b.iter_batched(
            || {
                n += 1;
                let user = format!("d{n}");
                for i in 0..LOTS {
                    let exp = Some(T0 + (1 + i as i64) * DAY);
                    db.points(&user, &format!("s{i}"), T0, &earn(10, exp))
                        .expect("seed");
                }
                user
            },
            |user| {
                let out = db
                    .points(&user, "r", T0, &PointsOp::redeem(10 * LOTS as i64, ""))
                    .expect("redeem");
                assert_eq!(out.lots.len(), LOTS);
                black_box(out)
            },
            BatchSize::SmallInput,
        )
    });
    g.bench_function("hold_then_capture", |b| {
        b.iter(|| {
            n += 1;
            let hold = PointsOp::Hold {
                points: 5,
                timeout_ms: 60_000,
            };
            db.points("rich", &format!("h{n}"), T0, &hold)
                .expect("hold");
            let capture = PointsOp::Capture {
                hold_txn: format!("h{n}"),
            };
            black_box(
                db.points("rich", &format!("c{n}"), T0 + 1, &capture)
                    .expect("capture"),
            )
        })
    });
    g.bench_function("replay", |b| {
        b.iter(|| {
            let out = db
                .points("rich", "seed0", T0, &earn(1_000_000, Some(T0 + DAY)))
                .expect("replay");
            assert!(out.replayed);
            black_box(out)
        })
    });
    g.finish();
    // every account the benchmark wrote replays to what is stored
    assert!(db.verify().expect("verify").is_clean());
}

fn bench_expire(c: &mut Criterion) {
    let mut g = c.benchmark_group("ledger");
    g.sample_size(10);
    g.bench_function("expire_10k_accounts", |b| {
        b.iter_batched(
            || {
                let dir = tempfile::tempdir().expect("tempdir");
                let db =
                    Db::open(dir.path(), Options::default().create_if_missing(true)).expect("open");
                for i in 0..ACCOUNTS {
                    let user = format!("u{i}");
                    db.points(&user, "a", T0, &earn(100, Some(T0 + DAY)))
                        .expect("earn");
                    db.points(&user, "b", T0, &earn(50, None)).expect("earn");
                }
                (dir, db)
            },
            |(dir, db)| {
                let r = db.expire_points(T0 + 2 * DAY).expect("expire");
                assert_eq!(r.lots_expired, ACCOUNTS as u64);
                (dir, db)
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

fn bench_coupons(c: &mut Criterion) {
    let mut g = c.benchmark_group("coupons");
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::open(dir.path(), Options::default().create_if_missing(true)).expect("open");
    db.add_coupon_template(&CouponTemplate::fixed("B", 500).valid_days(30))
        .expect("template");
    let issue = CouponOp::Issue {
        template: "B".into(),
    };
    let mut n = 0usize;
    g.bench_function("issue", |b| {
        b.iter(|| {
            n += 1;
            let user = format!("u{}", n % ACCOUNTS);
            black_box(
                db.coupon(&user, &format!("i{n}"), T0, &issue)
                    .expect("issue"),
            )
        })
    });
    g.bench_function("redeem", |b| {
        b.iter_batched(
            || {
                n += 1;
                let user = format!("u{}", n % ACCOUNTS);
                let o = db
                    .coupon(&user, &format!("i{n}"), T0, &issue)
                    .expect("issue");
                (user, o.coupon)
            },
            |(user, coupon)| {
                let txn = format!("r-{coupon}");
                let redeem = CouponOp::Redeem {
                    coupon,
                    order_minor: 2_000,
                };
                black_box(db.coupon(&user, &txn, T0 + 1, &redeem).expect("redeem"))
            },
            BatchSize::SmallInput,
        )
    });
    db.coupon("rich", "seed", T0, &issue).expect("seed");
    g.bench_function("replay", |b| {
        b.iter(|| {
            let out = db.coupon("rich", "seed", T0, &issue).expect("replay");
            assert!(out.replayed);
            black_box(out)
        })
    });
    g.finish();
    assert!(db.verify().expect("verify").is_clean());
    let mut g = c.benchmark_group("coupons");
    g.sample_size(10);
    g.bench_function("expire_10k_coupons_of_10k_accounts", |b| {
        b.iter_batched(
            || {
                let dir = tempfile::tempdir().expect("tempdir");
                let db =
                    Db::open(dir.path(), Options::default().create_if_missing(true)).expect("open");
                db.add_coupon_template(&CouponTemplate::fixed("E", 100).valid_days(1))
                    .expect("template");
                let issue = CouponOp::Issue {
                    template: "E".into(),
                };
                for i in 0..ACCOUNTS {
                    db.coupon(&format!("u{i}"), "i", T0, &issue).expect("issue");
                }
                (dir, db)
            },
            |(dir, db)| {
                let r = db.expire_points(T0 + 2 * DAY).expect("expire");
                assert_eq!(r.coupons_expired, ACCOUNTS as u64);
                (dir, db)
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

/// A store with a purchase earning rule, with or without a first-order
/// reward, each of `ACCOUNTS` users holding one purchase already.
fn purchase_store(first_order: bool) -> (tempfile::TempDir, Db) {
    use stickydb::ledger::{EarnRule, RulePoints, Tiers, FIRST_ORDER_KIND};
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::open(dir.path(), Options::default().create_if_missing(true)).expect("open");
    let rule = |kind: &str, points| EarnRule {
        kind: kind.into(),
        points,
        daily_cap_points: None,
        expires_after_days: Some(365),
    };
    let mut rules = vec![rule(
        "purchase",
        RulePoints::PerAmount {
            points: 1,
            per_minor: 100,
        },
    )];
    if first_order {
        rules.push(rule(FIRST_ORDER_KIND, RulePoints::Fixed(500)));
    }
    db.set_ledger_settings(stickydb::LedgerSettings::new(rules, Tiers::default()))
        .expect("rules");
    let seed: Vec<Event> = (0..ACCOUNTS)
        .map(|i| Event::new(format!("u{i}"), "purchase", T0).with_amount(1_000))
        .collect();
    db.record_batch(&seed).expect("seed");
    // (measured after the seed's compactions: otherwise the rewarded
    // store's extra seed keys — each user's paid reward — sit in a larger
    // memtable that every later lookup and insert walks)
    db.compact().expect("compact");
    db.wait_for_compact().expect("compactions");
    (dir, db)
}

/// A purchase write (event + rule credit) beside the same write on a store
/// whose first-order reward rule reads the user's reward holder
/// (docs/performance.md, "Rewards").
fn bench_rewards(c: &mut Criterion) {
    let mut g = c.benchmark_group("rewards");
    for (name, first_order) in [
        ("purchase", false),
        ("purchase_with_first_order_rule", true),
    ] {
        let (_dir, db) = purchase_store(first_order);
        let mut n = 0i64;
        g.bench_function(name, |b| {
            b.iter(|| {
                n += 1;
                let user = format!("u{}", n % ACCOUNTS as i64);
                let e = Event::new(user, "purchase", T0 + n).with_amount(2_500);
                black_box(db.record(&e).expect("purchase"))
            })
        });
    }
    g.finish();
}

criterion_group!(
    benches,
    bench_ops,
    bench_expire,
    bench_coupons,
    bench_rewards
);
criterion_main!(benches);
