//! A caller may reverse a reward's credit by hand (a correction: "that
//! first-order bonus was a mistake"). When the reward later moves — a late
//! older purchase takes the first order over, a late sign-in changes which
//! day completes a streak, a late visit makes another sharer the referrer —
//! the write that moves it must still be taken: the hand reversal stands,
//! nothing is reversed twice, and the new holder is paid. (Before, the
//! event was refused with `AlreadyReversed` and lost.)

mod common;

use stickydb::ledger::{
    EarnRule, LedgerSettings, RulePoints, Tiers, FIRST_ORDER_KIND, REFERRAL_KIND,
    SIGN_IN_STREAK_KIND_PREFIX,
};
use stickydb::{Db, Event, PointsOp, RecordOutcome};

const T0: i64 = common::T0;
const DAY: i64 = common::DAY;

fn store(kind: &str, points: i64) -> (tempfile::TempDir, Db) {
    let (dir, db) = common::open_temp();
    let rule = EarnRule {
        kind: kind.into(),
        points: RulePoints::Fixed(points),
        daily_cap_points: None,
        expires_after_days: None,
    };
    db.set_ledger_settings(LedgerSettings::new(vec![rule], Tiers::default()))
        .unwrap();
    (dir, db)
}

fn balance(db: &Db, user: &str) -> i64 {
    db.account(user).unwrap().map_or(0, |a| a.balance)
}

/// The transaction ids of `user`'s credits (positive entries), oldest first.
fn credits(db: &Db, user: &str) -> Vec<String> {
    let mut out: Vec<String> = db
        .ledger(user, i64::MIN, i64::MAX, 1_000)
        .unwrap()
        .into_iter()
        .filter(|e| e.amount > 0)
        .filter_map(|e| e.txn_id)
        .collect();
    out.reverse();
    out
}

fn reverse_by_hand(db: &Db, user: &str, txn: &str, at_ms: i64) {
    let op = PointsOp::Reverse { txn: txn.into() };
    db.points(user, "by-hand", at_ms, &op).unwrap();
}

fn recorded(db: &Db, e: &Event) {
    let out = db.record(e).unwrap();
    assert!(matches!(out, RecordOutcome::Recorded { .. }), "{out:?}");
}

#[test]
fn a_first_order_reversed_by_hand_still_moves_to_a_late_older_purchase() {
    let (_dir, db) = store(FIRST_ORDER_KIND, 500);
    recorded(&db, &Event::new("ann", "purchase", T0).with_amount(100));
    let paid = credits(&db, "ann");
    assert_eq!(paid.len(), 1);
    reverse_by_hand(&db, "ann", &paid[0], T0 + 10);
    assert_eq!(balance(&db, "ann"), 0);
    recorded(
        &db,
        &Event::new("ann", "purchase", T0 - DAY).with_amount(100),
    );
    // the new first order is paid; the hand reversal stood
    assert_eq!(balance(&db, "ann"), 500);
    common::assert_clean(&db);
}

#[test]
fn a_streak_credit_reversed_by_hand_still_moves_with_a_late_sign_in() {
    let (_dir, db) = store(&format!("{SIGN_IN_STREAK_KIND_PREFIX}3"), 30);
    for d in 0..3 {
        recorded(&db, &Event::new("ann", "sign_in", T0 + d * DAY + 60_000));
    }
    let paid = credits(&db, "ann");
    assert_eq!(paid.len(), 1);
    reverse_by_hand(&db, "ann", &paid[0], T0 + 3 * DAY);
    // a sign-in the day before: the first block now ends a day earlier
    recorded(&db, &Event::new("ann", "sign_in", T0 - DAY + 60_000));
    assert_eq!(balance(&db, "ann"), 30);
    common::assert_clean(&db);
}

#[test]
fn a_referral_credit_reversed_by_hand_still_moves_to_the_earlier_sharer() {
    let (_dir, db) = store(REFERRAL_KIND, 10);
    recorded(&db, &Event::new("eve", "share", T0).with_share_id("s-eve"));
    recorded(&db, &Event::new("bob", "share", T0).with_share_id("s-bob"));
    recorded(
        &db,
        &Event::new("vic", "view", T0 + 10 * 60_000).with_via("s-eve"),
    );
    recorded(&db, &Event::new("vic", "signup", T0 + DAY));
    recorded(
        &db,
        &Event::new("vic", "purchase", T0 + 2 * DAY).with_amount(500),
    );
    let paid = credits(&db, "eve");
    assert_eq!(paid.len(), 1, "eve referred vic");
    reverse_by_hand(&db, "eve", &paid[0], T0 + 3 * DAY);
    // a visit through bob's share, earlier: bob referred vic
    recorded(
        &db,
        &Event::new("vic", "view", T0 + 60_000).with_via("s-bob"),
    );
    assert_eq!((balance(&db, "eve"), balance(&db, "bob")), (0, 10));
    common::assert_clean(&db);
}
