//! `advance` after a long pause reads what is due a page at a time (1 000
//! entries: stage dues, ledger dues, expiring lots) instead of holding every
//! due user at once (issue 27, "bounded write paths"): with more than a
//! page due of each, one advance settles all of it, exactly.

mod common;
use common::*;
use stickydb::{Db, Event, Options, PointsOp};

const USERS: i64 = 2_500;

#[test]
fn a_long_paused_advance_settles_more_than_a_page_of_each() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), Options::default().create_if_missing(true)).unwrap();
    let events: Vec<Event> = (0..USERS)
        .map(|u| Event::new(format!("u{u}"), "view", T0 + u))
        .collect();
    db.record_batch(&events).unwrap();
    for u in 0..USERS {
        let earn = PointsOp::Earn {
            points: 10,
            expires_at_ms: Some(T0 + 20 * DAY + u),
            reason: "welcome".into(),
        };
        db.points(&format!("u{u}"), "w", T0, &earn).unwrap();
    }
    // 15 days on: every lot's notice is due (7 days before its expiry) and
    // every user has moved on from `new`
    let first = db.advance(T0 + 15 * DAY).unwrap();
    assert_eq!(first.stage_users, USERS as u64);
    assert_eq!(first.notices, USERS as u64);
    assert_eq!(first.ledger.accounts, 0);
    // 25 days more: every lot expired, everyone churned
    let second = db.advance(T0 + 40 * DAY).unwrap();
    assert_eq!(second.stage_users, USERS as u64);
    assert_eq!(first.stage_changes + second.stage_changes, 3 * USERS as u64);
    assert_eq!(second.notices, 0);
    assert_eq!(second.ledger.lots_expired, USERS as u64);
    assert_eq!(second.ledger.points_expired, 10 * USERS);
    assert_eq!(second.ledger.accounts, USERS as u64);
    // nothing left due: a re-run writes nothing
    let again = db.advance(T0 + 40 * DAY).unwrap();
    assert_eq!(
        (again.stage_changes, again.notices, again.ledger.accounts),
        (0, 0, 0)
    );
    assert_clean(&db);
}
