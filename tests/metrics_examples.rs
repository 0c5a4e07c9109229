//! The worked examples of docs/metrics.md, checked against the engine.

mod common;
use common::*;
use stickydb::metrics::{Period, RetentionQuery, ReturnMode};
use stickydb::{Db, Event};

/// 2024-03-01 + `day` days, at `hour`:00 UTC.
fn at(day: i64, hour: i64) -> i64 {
    T0 + day * DAY + hour * 3_600_000
}

fn d(db: &Db, day: i64) -> i32 {
    db.local_day(at(day, 0))
}

#[test]
fn activity_example() {
    let (_dir, db) = open_temp();
    for day in [0, 1, 4] {
        db.record(&Event::new("alice", "view", at(day, 10)))
            .unwrap();
    }
    db.record(&Event::new("bob", "view", at(4, 10))).unwrap();
    let m = db.metrics();
    let rows = m.active(None, d(&db, 0), d(&db, 5), None).unwrap();
    let got: Vec<(u64, u64, u64)> = rows.iter().map(|r| (r.dau, r.wau, r.mau)).collect();
    assert_eq!(
        got,
        vec![
            (1, 1, 1),
            (1, 1, 1),
            (0, 1, 1),
            (0, 1, 1),
            (2, 2, 2),
            (0, 2, 2)
        ]
    );
    let avg = m
        .average_stickiness(None, d(&db, 0), d(&db, 5), None)
        .unwrap();
    assert!((avg - 4.0 / 6.0 / 2.0).abs() < 1e-12);
    let dist = m
        .stickiness_distribution(None, d(&db, 0), d(&db, 5), None)
        .unwrap();
    let got: Vec<(u64, u64)> = dist.iter().map(|r| (r.users, r.users_at_least)).collect();
    assert_eq!(got, vec![(1, 2), (0, 1), (1, 1), (0, 0), (0, 0), (0, 0)]);
}

#[test]
fn retention_and_lifecycle_examples() {
    let (_dir, db) = open_temp();
    db.record(&Event::new("alice", "view", at(0, 9))).unwrap();
    db.record(&Event::new("alice", "view", at(2, 9))).unwrap();
    db.record(&Event::new("bob", "view", at(1, 9))).unwrap();
    db.record(&Event::new("bob", "view", at(2, 9))).unwrap();
    let m = db.metrics();
    let mut q = RetentionQuery::new(Period::Day, d(&db, 0), d(&db, 2));
    let rows: Vec<(u64, Vec<u64>)> = m
        .retention(&q, None)
        .unwrap()
        .cohorts
        .into_iter()
        .map(|c| (c.size, c.counts))
        .collect();
    assert_eq!(
        rows,
        vec![(1, vec![1, 0, 1]), (1, vec![1, 1]), (0, vec![0])]
    );
    q.mode = ReturnMode::OnOrAfter;
    assert_eq!(
        m.retention(&q, None).unwrap().cohorts[0].counts,
        vec![1, 1, 1]
    );

    // lifecycle by week: 2024-03-04 is a Monday
    let (_dir, db) = open_temp();
    for w in [0, 2] {
        db.record(&Event::new("alice", "view", at(3 + 7 * w, 9)))
            .unwrap();
    }
    for w in [0, 1, 2] {
        db.record(&Event::new("bob", "view", at(3 + 7 * w, 9)))
            .unwrap();
    }
    let rows: Vec<(u64, u64, u64, i64)> = db
        .metrics()
        .lifecycle(Period::Week, d(&db, 3), d(&db, 17), None)
        .unwrap()
        .into_iter()
        .map(|r| (r.new, r.returning, r.resurrecting, r.dormant))
        .collect();
    assert_eq!(rows, vec![(2, 0, 0, 0), (0, 1, 0, -1), (0, 1, 1, 0)]);
}

#[test]
fn clv_stage_and_rfm_examples() {
    let (_dir, db) = open_temp();
    for (day, amount) in [(0, 1_000), (0, 500), (3, 2_000), (9, 900)] {
        db.record(&Event::new("carol", "purchase", at(day, 12)).with_amount(amount))
            .unwrap();
    }
    db.record(&Event::new("carol", "refund", at(10, 12)).with_amount(300))
        .unwrap();
    let id = db.user_id("carol").unwrap().unwrap();
    let u = db.metrics().user(id, d(&db, 19)).unwrap().unwrap();
    assert_eq!(
        (
            u.purchase_count,
            u.purchase_days,
            u.total_spend_minor,
            u.net_spend_minor
        ),
        (4, 3, 4_400, 4_100)
    );
    let clv = u.clv.unwrap();
    assert_eq!((clv.frequency, clv.recency, clv.t), (2, 9, 19));
    assert!((clv.monetary_value - 1_450.0).abs() < 1e-9);

    let (_dir, db) = open_temp();
    db.record(&Event::new("dan", "view", at(0, 8))).unwrap();
    db.record(&Event::new("dan", "purchase", at(1, 8)).with_amount(10))
        .unwrap();
    let id = db.user_id("dan").unwrap().unwrap();
    let stage = |day| {
        db.metrics()
            .user(id, d(&db, day))
            .unwrap()
            .unwrap()
            .stage
            .unwrap()
    };
    assert_eq!(stage(2), "new");
    assert_eq!(stage(11), "growing");
    assert_eq!(stage(19), "declining");
    assert_eq!(stage(35), "churned"); // 2024-04-05

    // RFM: recencies 1, 3, 10, 40, 90 days; orders 6, 1, 3, 2, 1; as of day 100
    let (_dir, db) = open_temp();
    for (i, (recency, orders)) in [(1, 6), (3, 1), (10, 3), (40, 2), (90, 1)]
        .iter()
        .enumerate()
    {
        for o in 0..*orders {
            db.record(
                &Event::new(format!("p{i}"), "purchase", at(100 - recency, o)).with_amount(100),
            )
            .unwrap();
        }
    }
    let rfm = db.metrics().rfm(d(&db, 100), None).unwrap();
    let got: Vec<(u8, u8, &str)> = rfm
        .users
        .iter()
        .map(|r| (r.r_score, r.f_score, r.segment))
        .collect();
    assert_eq!(
        got,
        vec![
            (5, 5, "champions"),
            (4, 1, "new_customers"),
            (3, 4, "loyal"),
            (2, 3, "at_risk"),
            (1, 1, "lost")
        ]
    );
}
