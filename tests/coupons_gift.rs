//! The new-member gift pack (docs/coupons.md, "Gift pack"): the write that
//! records a user's first event of the pack's kind issues its coupons, at
//! the event's time; a duplicate delivery or a second such event gives
//! nothing more; a template out of stock gives nothing and the event is
//! recorded all the same; the ids are reserved; the pack persists, can be
//! cleared, refuses unknown templates; a merge keeps both users' gifts; a
//! signup and the first order redeeming its gift are one transaction.

mod common;

use common::{assert_clean, open_temp, reopen, DAY, T0};
use stickydb::{
    CouponError, CouponOp, CouponTemplate, Error, Event, GiftPack, MergeOptions, RecordOutcome,
};

fn setup(db: &stickydb::Db) {
    db.add_coupon_template(&CouponTemplate::fixed("WELCOME", 1_000).valid_days(14))
        .unwrap();
    db.add_coupon_template(&CouponTemplate::free_shipping("SHIP").stock(1))
        .unwrap();
    db.set_gift_pack(Some(&GiftPack::new("signup", ["WELCOME", "SHIP"])))
        .unwrap();
}

fn ids(db: &stickydb::Db, user: &str) -> Vec<String> {
    db.coupons(user)
        .unwrap()
        .into_iter()
        .map(|c| c.id)
        .collect()
}

#[test]
fn a_signup_gets_the_pack_once() {
    let (dir, db) = open_temp();
    setup(&db);
    let signup = Event::new("ann", "signup", T0).with_id("s1");
    db.record(&Event::new("ann", "view", T0 - 5)).unwrap();
    assert!(ids(&db, "ann").is_empty(), "a view gives nothing");
    db.record(&signup).unwrap();
    assert_eq!(ids(&db, "ann"), ["WELCOME-1", "SHIP-1"]);
    let welcome = &db.coupons("ann").unwrap()[0];
    assert_eq!(
        (welcome.issued_at_ms, welcome.expires_at_ms),
        (T0, Some(T0 + 14 * DAY))
    );
    // a duplicate delivery, then another signup event: nothing more
    assert_eq!(db.record(&signup).unwrap(), RecordOutcome::Duplicate);
    db.record(&Event::new("ann", "signup", T0 + DAY).with_id("s2"))
        .unwrap();
    assert_eq!(ids(&db, "ann"), ["WELCOME-1", "SHIP-1"]);
    // SHIP's one coupon is gone: bob's signup is recorded, with WELCOME only
    let out = db.record(&Event::new("bob", "signup", T0 + 1)).unwrap();
    assert!(matches!(out, RecordOutcome::Recorded { .. }));
    assert_eq!(ids(&db, "bob"), ["WELCOME-2"]);
    assert_eq!(db.coupon_stats("SHIP").unwrap().stock_left, Some(0));
    assert_clean(&db);
    drop(db);
    let db = reopen(&dir);
    assert_eq!(
        db.gift_pack(),
        Some(GiftPack::new("signup", ["WELCOME", "SHIP"]))
    );
    db.record(&Event::new("cat", "signup", T0 + 2)).unwrap();
    assert_eq!(ids(&db, "cat"), ["WELCOME-3"]);
    db.set_gift_pack(None).unwrap();
    db.record(&Event::new("dan", "signup", T0 + 3)).unwrap();
    assert!(ids(&db, "dan").is_empty(), "no pack, no gift");
    assert_clean(&db);
}

#[test]
fn gift_ids_are_reserved_and_templates_must_exist() {
    let (_dir, db) = open_temp();
    setup(&db);
    let before = db.raw_dump().unwrap();
    let refused = db.set_gift_pack(Some(&GiftPack::new("signup", ["NOPE"])));
    assert!(matches!(
        refused,
        Err(Error::Coupon(CouponError::UnknownTemplate { .. }))
    ));
    let issue = CouponOp::Issue {
        template: "WELCOME".into(),
    };
    let refused = db.coupon("ann", "gift:1:WELCOME", T0, &issue);
    assert!(matches!(refused, Err(Error::Input(_))), "{refused:?}");
    assert_eq!(before, db.raw_dump().unwrap());
}

#[test]
fn a_merge_keeps_both_users_gifts() {
    let (_dir, db) = open_temp();
    setup(&db);
    db.record(&Event::new("anon-1", "signup", T0)).unwrap();
    db.record(&Event::new("ann", "signup", T0 + 1)).unwrap();
    db.merge("anon-1", "ann", "m1", MergeOptions::forced())
        .unwrap();
    assert_eq!(ids(&db, "ann"), ["WELCOME-2", "WELCOME-1", "SHIP-1"]);
    assert_clean(&db);
}

#[test]
fn a_signup_and_its_first_order_are_one_transaction() {
    let (_dir, db) = open_temp();
    setup(&db);
    let off = db
        .write(|tx| {
            tx.record(&Event::new("eve", "signup", T0))?;
            let redeem = CouponOp::Redeem {
                coupon: "WELCOME-1".into(),
                order_minor: 5_000,
            };
            let off = tx.coupon("eve", "order-1", T0 + 1, &redeem)?.off_minor;
            tx.record(
                &Event::new("eve", "purchase", T0 + 1)
                    .with_id("order-1")
                    .with_amount(5_000 - off),
            )?;
            Ok(off)
        })
        .unwrap();
    assert_eq!(off, 1_000);
    assert_eq!(db.coupons("eve").unwrap()[0].state.name(), "redeemed");
    assert_eq!(db.coupon_stats("WELCOME").unwrap().redeemed, 1);
    assert_clean(&db);
}
