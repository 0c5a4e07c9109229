//! Referral rewards (SPEC §4b's ledger hook, docs/social.md): an earning
//! rule of kind `referral:first_purchase` credits the sharer a first
//! purchase is attributed to — in the purchase's own write, once, and
//! reversed when a late touch, an erasure, a merge or a window change moves
//! the attribution.

use stickydb::ledger::{EarnRule, EntryKind, LedgerSettings, RulePoints, REFERRAL_KIND};
use stickydb::{Db, Event, MergeOptions, Options, SocialSettings};

const DAY: i64 = 86_400_000;
/// 2024-03-01 00:00 UTC.
const T0: i64 = 1_709_251_200_000;

fn open() -> (tempfile::TempDir, Db) {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), Options::default().create_if_missing(true)).unwrap();
    db.set_ledger_settings(LedgerSettings::default().rules(vec![
        EarnRule {
            kind: REFERRAL_KIND.into(),
            points: RulePoints::Fixed(100),
            daily_cap_points: None,
            expires_after_days: Some(365),
        },
        // a rule paying by the amount, to the same sharer
        EarnRule {
            kind: REFERRAL_KIND.into(),
            points: RulePoints::PerAmount {
                points: 1,
                per_minor: 100,
            },
            daily_cap_points: None,
            expires_after_days: None,
        },
    ]))
    .unwrap();
    (dir, db)
}

fn balance(db: &Db, user: &str) -> i64 {
    db.account(user).unwrap().map_or(0, |a| a.balance)
}

fn rec(db: &Db, e: Event) {
    db.record(&e).unwrap();
}

#[test]
fn the_sharer_is_paid_once_in_the_purchase_write() {
    let (_dir, db) = open();
    rec(&db, Event::new("ann", "share", T0).with_share_id("s1"));
    rec(&db, Event::new("bob", "view", T0 + 1_000).with_via("s1"));
    assert_eq!(balance(&db, "ann"), 0);
    // bob's first purchase, written alone (ann is not in the batch: the
    // write takes ann's lock too)
    rec(
        &db,
        Event::new("bob", "purchase", T0 + 2_000)
            .with_amount(5_000)
            .with_id("p1"),
    );
    assert_eq!(balance(&db, "ann"), 100 + 50);
    // a second purchase is not a first purchase; a replay writes nothing
    rec(
        &db,
        Event::new("bob", "purchase", T0 + 3_000).with_amount(9_000),
    );
    rec(
        &db,
        Event::new("bob", "purchase", T0 + 2_000)
            .with_amount(5_000)
            .with_id("p1"),
    );
    assert_eq!(balance(&db, "ann"), 150);
    assert_eq!(balance(&db, "bob"), 0, "the buyer is not paid");
    let entries = db.ledger("ann", i64::MIN, i64::MAX, 10).unwrap();
    assert_eq!(entries.len(), 2);
    assert!(entries.iter().all(|e| e.kind == EntryKind::Earn));
    assert!(db.verify().unwrap().is_clean());
}

#[test]
fn a_late_touch_moves_the_credit_and_back() {
    let (_dir, db) = open();
    rec(&db, Event::new("ann", "share", T0).with_share_id("s1"));
    rec(&db, Event::new("cy", "share", T0).with_share_id("s2"));
    rec(&db, Event::new("bob", "view", T0 + 2 * DAY).with_via("s1"));
    rec(
        &db,
        Event::new("bob", "purchase", T0 + 3 * DAY).with_amount(1_000),
    );
    assert_eq!((balance(&db, "ann"), balance(&db, "cy")), (110, 0));
    // late: bob came through cy's share first
    rec(&db, Event::new("bob", "view", T0 + DAY).with_via("s2"));
    assert_eq!((balance(&db, "ann"), balance(&db, "cy")), (0, 110));
    // later still: an even earlier touch of ann's — ann is paid again
    rec(&db, Event::new("bob", "view", T0 + DAY / 2).with_via("s1"));
    assert_eq!((balance(&db, "ann"), balance(&db, "cy")), (110, 0));
    let reversals = db
        .ledger("ann", i64::MIN, i64::MAX, 10)
        .unwrap()
        .iter()
        .filter(|e| e.kind == EntryKind::Reverse)
        .count();
    assert_eq!(reversals, 2, "one per rule");
    let report = db.verify().unwrap();
    assert!(report.is_clean(), "{:?}", report.problems);
}

#[test]
fn erasures_take_credits_back_or_move_them() {
    let (_dir, db) = open();
    rec(&db, Event::new("ann", "share", T0).with_share_id("s1"));
    rec(&db, Event::new("cy", "share", T0).with_share_id("s2"));
    rec(&db, Event::new("bob", "view", T0 + DAY).with_via("s1"));
    rec(&db, Event::new("bob", "view", T0 + DAY + 1).with_via("s2"));
    rec(
        &db,
        Event::new("bob", "purchase", T0 + 2 * DAY).with_amount(1_000),
    );
    rec(&db, Event::new("dan", "view", T0 + DAY).with_via("s1"));
    rec(
        &db,
        Event::new("dan", "purchase", T0 + 2 * DAY).with_amount(2_000),
    );
    assert_eq!(balance(&db, "ann"), 110 + 120);
    // the referred user erased: ann's credit for dan goes back
    assert!(db.erase_user("dan").unwrap());
    assert_eq!(balance(&db, "ann"), 110);
    // the sharer erased: bob's first purchase is cy's now, and paid
    assert!(db.erase_user("ann").unwrap());
    assert_eq!(balance(&db, "cy"), 110);
    assert!(db.verify().unwrap().is_clean());
}

#[test]
fn a_merge_pays_once_and_a_window_change_re_pays() {
    let (_dir, db) = open();
    rec(&db, Event::new("ann", "share", T0).with_share_id("s1"));
    rec(&db, Event::new("anon-1", "view", T0 + DAY).with_via("s1"));
    rec(
        &db,
        Event::new("anon-1", "purchase", T0 + DAY + 60_000).with_amount(500),
    );
    assert_eq!(balance(&db, "ann"), 105);
    rec(&db, Event::new("member", "signup", T0 + 2 * DAY));
    db.merge("anon-1", "member", "m1", MergeOptions::forced())
        .unwrap();
    // the visitor's first purchase is the member's now: still ann's, paid once
    assert_eq!(balance(&db, "ann"), 105);
    // and the member's signup, a day after the visitor's touch, is ann's too
    assert_eq!(db.referrer("member").unwrap().as_deref(), Some("ann"));
    assert!(db.verify().unwrap().is_clean());
    // a window too short for the touch: the credit goes back
    rec(&db, Event::new("eve", "view", T0 + 5 * DAY).with_via("s1"));
    rec(
        &db,
        Event::new("eve", "purchase", T0 + 8 * DAY).with_amount(100),
    );
    assert_eq!(balance(&db, "ann"), 105 + 101);
    db.set_social_settings(SocialSettings::window(2)).unwrap();
    assert_eq!(balance(&db, "ann"), 105, "eve's touch is 3 days before");
    db.set_social_settings(SocialSettings::window(7)).unwrap();
    assert_eq!(balance(&db, "ann"), 206);
    assert!(db.verify().unwrap().is_clean());
}

#[test]
fn the_reserved_kind_is_no_event() {
    let (_dir, db) = open();
    let err = db
        .record(&Event::new("ann", REFERRAL_KIND, T0))
        .unwrap_err();
    assert!(err.to_string().contains("reserved"), "{err}");
}

/// A share claimed late pays the sharer for the touches it attributes —
/// also a sharer this very write creates.
#[test]
fn a_late_claim_pays_a_new_sharer() {
    let (_dir, db) = open();
    rec(
        &db,
        Event::new("u1", "purchase", T0 + 3 * DAY).with_amount(1_000),
    );
    rec(&db, Event::new("u1", "view", T0).with_via("s1"));
    assert_eq!(db.user_id("u2").unwrap(), None);
    rec(&db, Event::new("u2", "share", T0).with_share_id("s1"));
    assert_eq!(balance(&db, "u2"), 110);
    assert!(db.verify().unwrap().is_clean());
}
