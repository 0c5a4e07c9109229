//! The ledger's side of the change feed (SPEC §4a): tier changes in the
//! write that makes them, and expiry notices written once, a notice period
//! before a lot expires — by `advance`, or in the write that opens a lot
//! whose notice is already due.

mod common;
use common::*;
use stickydb::ledger::{LedgerSettings, TierLevel, Tiers};
use stickydb::{Change, Error, FeedEntry, PointsOp, Problem};

fn notices(entries: &[FeedEntry]) -> Vec<(u32, i64, i64, i64)> {
    entries
        .iter()
        .filter_map(|e| match e.record.change {
            Change::ExpiryNotice {
                lot,
                points,
                expires_at_ms,
                at_ms,
            } => Some((lot, points, expires_at_ms, at_ms)),
            _ => None,
        })
        .collect()
}

fn earn(points: i64, expires_at_ms: i64) -> PointsOp {
    PointsOp::Earn {
        points,
        expires_at_ms: Some(expires_at_ms),
        reason: "promo".into(),
    }
}

#[test]
fn expiry_notices_come_once_a_notice_period_ahead() {
    let (_dir, db) = open_temp();
    assert_eq!(db.expiry_notice_days(), 7);
    // a lot's id is its earning entry's sequence number
    let lot = db
        .points("ann", "t1", T0, &earn(500, T0 + 30 * DAY))
        .unwrap()
        .entry_seq;
    db.points("ann", "t2", T0 + DAY, &PointsOp::redeem(100, "coupon"))
        .unwrap();
    // a lot that is spent before its notice gets none
    db.points("bob", "t1", T0, &earn(50, T0 + 30 * DAY))
        .unwrap();
    db.points("bob", "t2", T0 + DAY, &PointsOp::redeem(50, "coupon"))
        .unwrap();

    assert_eq!(db.advance(T0 + 23 * DAY - 1).unwrap().notices, 0);
    let report = db.advance(T0 + 23 * DAY).unwrap();
    assert_eq!(report.notices, 1);
    let feed = db.feed(0, 100).unwrap();
    assert_eq!(
        notices(&feed),
        vec![(lot, 400, T0 + 30 * DAY, T0 + 23 * DAY)]
    );
    assert_eq!(feed.last().unwrap().user.as_deref(), Some("ann"));
    // re-runs and later runs do not repeat it
    assert_eq!(db.advance(T0 + 23 * DAY).unwrap().notices, 0);
    assert_eq!(db.advance(T0 + 29 * DAY).unwrap().notices, 0);

    // a lot opened with its notice instant already past: noticed at once
    let head = db.feed_head().unwrap();
    db.points("ann", "t3", T0 + 29 * DAY, &earn(70, T0 + 31 * DAY))
        .unwrap();
    let late = db.feed(head, 100).unwrap();
    assert_eq!(notices(&late).len(), 1);
    assert_eq!(notices(&late)[0].1, 70);
    assert_eq!(db.advance(T0 + 29 * DAY + 1).unwrap().notices, 0);

    // a longer period reaches lots further out, once
    db.points("cy", "t1", T0 + 29 * DAY, &earn(9, T0 + 40 * DAY))
        .unwrap();
    assert_eq!(db.advance(T0 + 30 * DAY).unwrap().notices, 0);
    db.set_expiry_notice_days(14).unwrap();
    // (the clock need not move: the longer period is due at once)
    assert_eq!(db.advance(T0 + 30 * DAY).unwrap().notices, 1);
    assert_eq!(db.advance(T0 + 30 * DAY + 1).unwrap().notices, 0);
    assert_eq!(db.advance(T0 + 31 * DAY).unwrap().notices, 0);
    assert_clean(&db);

    // erasure takes the user's notice marks with it
    db.erase_user("ann").unwrap();
    assert_clean(&db);
    assert!(matches!(
        db.set_expiry_notice_days(400),
        Err(Error::Input(ref e)) if e.field == "notice_days"
            && e.problem == Problem::OutOfRange { value: 400, min: 0, max: 366 }
    ));
}

#[test]
fn tier_changes_are_fed_in_their_own_write() {
    let (_dir, db) = open_temp();
    db.set_ledger_settings(LedgerSettings::new(
        vec![],
        Tiers {
            window_days: 365,
            levels: vec![TierLevel {
                name: "silver".into(),
                min_growth: 100,
            }],
        },
    ))
    .unwrap();
    db.points("ann", "t1", T0, &PointsOp::earn(60, "a"))
        .unwrap();
    assert!(db.feed(0, 10).unwrap().is_empty());
    db.points("ann", "t2", T0 + DAY, &PointsOp::earn(60, "b"))
        .unwrap();
    let feed = db.feed(0, 10).unwrap();
    assert_eq!(feed.len(), 1);
    assert_eq!(
        feed[0].record.change,
        Change::Tier {
            from: None,
            to: Some("silver".into()),
            at_ms: T0 + DAY
        }
    );
    assert!(!feed[0].record.retroactive);
    // retention by age reads the wall-clock write time
    assert_eq!(db.trim_feed_older(0).unwrap(), 0);
    assert_eq!(db.trim_feed_older(feed[0].written_ms + 1).unwrap(), 1);
    assert!(db.feed(0, 10).unwrap().is_empty());
    // a year on, the growth leaves the window: the review is an advance's
    let report = db.advance(T0 + 400 * DAY).unwrap();
    assert_eq!(report.ledger.tier_changes, 1);
    let feed = db.feed(0, 10).unwrap();
    assert!(matches!(
        &feed[0].record.change,
        Change::Tier { from: Some(f), to: None, .. } if f == "silver"
    ));
    assert_clean(&db);
}
