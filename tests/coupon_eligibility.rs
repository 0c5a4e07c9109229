//! Coupons for some orders only (docs/coupons.md#eligibility): a template
//! names the event kinds and string properties of the orders it applies
//! to; a redeem describes its order (`CouponOp::RedeemOrder`, or
//! `CouponOp::redeem_for` the purchase event of the same checkout) and is
//! refused, writing nothing, when the order does not match or is not
//! described. Templates stored before eligibility existed (format 1,
//! tests/data/formats/coupons-v1, written by commit `d15f2c3`) answer as
//! they did.

mod common;

use std::collections::BTreeMap;

use common::cli::{ok, stickydb};
use stickydb::{
    CouponError, CouponOp, CouponTemplate, Db, Error, Event, InputError, Options, PropValue,
};

const T0: i64 = common::T0;

fn shoes_only() -> CouponTemplate {
    CouponTemplate::fixed("SHOES", 2_000)
        .for_kinds(["purchase"])
        .where_prop("category", "shoes")
}

fn order(kind: &str, category: Option<&str>) -> CouponOp {
    CouponOp::RedeemOrder {
        coupon: "SHOES-1".into(),
        order_minor: 9_000,
        kind: kind.into(),
        properties: category
            .map(|c| ("category".to_owned(), c.to_owned()))
            .into_iter()
            .collect(),
    }
}

fn issued() -> (tempfile::TempDir, Db) {
    let (dir, db) = common::open_temp();
    db.add_coupon_template(&shoes_only()).unwrap();
    let issue = CouponOp::Issue {
        template: "SHOES".into(),
    };
    db.coupon("ann", "i1", T0, &issue).unwrap();
    (dir, db)
}

fn refusal(db: &Db, txn: &str, op: &CouponOp) -> String {
    let before = db.raw_dump().unwrap();
    let got = db.coupon("ann", txn, T0 + 1, op);
    assert_eq!(before, db.raw_dump().unwrap(), "a refused redeem wrote");
    match got {
        Err(Error::Coupon(CouponError::NotEligible { coupon, reason })) => {
            assert_eq!(coupon, "SHOES-1");
            reason
        }
        other => panic!("expected NotEligible, got {other:?}"),
    }
}

#[test]
fn orders_that_do_not_match_are_refused_and_write_nothing() {
    let (_dir, db) = issued();
    let plain = CouponOp::Redeem {
        coupon: "SHOES-1".into(),
        order_minor: 9_000,
    };
    assert!(refusal(&db, "r1", &plain).contains("redeem with the order's kind"));
    let reason = refusal(&db, "r2", &order("view", Some("shoes")));
    assert!(reason.contains("\"view\""), "{reason}");
    let reason = refusal(&db, "r3", &order("purchase", Some("bags")));
    assert!(reason.contains("category is \"bags\""), "{reason}");
    let reason = refusal(&db, "r4", &order("purchase", None));
    assert!(reason.contains("no category"), "{reason}");
    // the coupon is still there to use, on an order that matches
    let out = db.coupon("ann", "r5", T0 + 2, &order("purchase", Some("shoes")));
    assert_eq!(out.unwrap().off_minor, 2_000);
    // a retry replays; the same id describing another order conflicts
    let again = db
        .coupon("ann", "r5", T0 + 3, &order("purchase", Some("shoes")))
        .unwrap();
    assert!(again.replayed);
    let other = db.coupon("ann", "r5", T0 + 3, &order("purchase", Some("bags")));
    assert!(matches!(
        other,
        Err(Error::Coupon(CouponError::TxnConflict { .. }))
    ));
    common::assert_clean(&db);
}

#[test]
fn a_checkout_redeems_on_the_purchase_it_records() {
    let (_dir, db) = issued();
    let bags = Event::new("ann", "purchase", T0 + 5)
        .with_amount(9_000)
        .with_property("category", PropValue::Str("bags".into()));
    let before = db.raw_dump().unwrap();
    let refused = db.write(|tx| {
        tx.record(&bags)?;
        tx.coupon("ann", "c1", T0 + 5, &CouponOp::redeem_for("SHOES-1", &bags))
    });
    assert!(matches!(
        refused,
        Err(Error::Coupon(CouponError::NotEligible { .. }))
    ));
    assert_eq!(
        before,
        db.raw_dump().unwrap(),
        "the whole checkout is refused"
    );
    let shoes = Event::new("ann", "purchase", T0 + 6)
        .with_amount(9_000)
        .with_property("category", PropValue::Str("shoes".into()))
        .with_property("size", PropValue::Int(42));
    let out = db
        .write(|tx| {
            tx.record(&shoes)?;
            tx.coupon(
                "ann",
                "c2",
                T0 + 6,
                &CouponOp::redeem_for("SHOES-1", &shoes),
            )
        })
        .unwrap();
    assert_eq!((out.off_minor, out.state.as_str()), (2_000, "redeemed"));
    assert_eq!(db.newest("ann", 10).unwrap().len(), 1);
    common::assert_clean(&db);
}

#[test]
fn templates_without_eligibility_take_any_order() {
    let (_dir, db) = common::open_temp();
    db.add_coupon_template(&CouponTemplate::fixed("ANY", 100))
        .unwrap();
    let issue = CouponOp::Issue {
        template: "ANY".into(),
    };
    db.coupon("ann", "i1", T0, &issue).unwrap();
    let op = CouponOp::RedeemOrder {
        coupon: "ANY-1".into(),
        order_minor: 500,
        kind: "view".into(),
        properties: BTreeMap::new(),
    };
    assert_eq!(db.coupon("ann", "r1", T0, &op).unwrap().off_minor, 100);
}

#[test]
fn eligibility_fields_are_checked_and_kept() {
    let (_dir, db) = common::open_temp();
    let too_many = (0..17).map(|i| format!("k{i}")).collect::<Vec<_>>();
    let bad = CouponTemplate::fixed("X", 100).for_kinds(too_many.iter().map(String::as_str));
    assert!(matches!(
        db.add_coupon_template(&bad),
        Err(Error::Input(InputError { .. }))
    ));
    let bad = CouponTemplate::fixed("X", 100).where_prop("", "shoes");
    assert!(db.add_coupon_template(&bad).is_err());
    let long = "x".repeat(257);
    let bad = CouponTemplate::fixed("X", 100).where_prop("category", &long);
    assert!(db.add_coupon_template(&bad).is_err());
    assert!(
        db.coupon_templates().unwrap().is_empty(),
        "nothing was added"
    );
    // kept through a reopen, and equal terms again are a no-op while other
    // terms under the id conflict
    assert!(db.add_coupon_template(&shoes_only()).unwrap());
    assert!(!db.add_coupon_template(&shoes_only()).unwrap());
    let other = shoes_only().where_prop("category", "bags");
    assert!(matches!(
        db.add_coupon_template(&other),
        Err(Error::Coupon(CouponError::TemplateConflict { .. }))
    ));
    let path = db.path().to_owned();
    drop(db);
    let db = Db::open(&path, Options::default()).unwrap();
    assert_eq!(db.coupon_templates().unwrap(), vec![shoes_only()]);
    common::assert_clean(&db);
}

#[test]
fn the_cli_takes_eligibility_in_templates_and_orders_on_redeem() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    drop(Db::create(&store, Options::default()).unwrap());
    let file = dir.path().join("t.json");
    std::fs::write(
        &file,
        r#"{"id":"SHOES","kind":"fixed","off_minor":2000,"kinds":["purchase"],"where":{"category":"shoes"}}"#,
    )
    .unwrap();
    ok(&stickydb(
        &store,
        &["coupons", "template", "add", file.to_str().unwrap()],
    ));
    let list = ok(&stickydb(
        &store,
        &["--json", "coupons", "template", "list"],
    ));
    let v: serde_json::Value = serde_json::from_str(&list).unwrap();
    assert_eq!(v["templates"][0]["kinds"][0], "purchase");
    assert_eq!(v["templates"][0]["where"]["category"], "shoes");
    let at = ["--at", "1709251200000"];
    let issue = [
        "coupons",
        "issue",
        "ann",
        "--template",
        "SHOES",
        "--txn",
        "i1",
    ];
    ok(&stickydb(&store, &[&issue[..], &at[..]].concat()));
    let redeem = [
        "coupons",
        "redeem",
        "ann",
        "--coupon",
        "SHOES-1",
        "--order-minor",
        "9000",
    ];
    let plain = stickydb(&store, &[&redeem[..], &["--txn", "r1"], &at[..]].concat());
    assert!(!plain.status.success());
    let stderr = String::from_utf8_lossy(&plain.stderr);
    assert!(stderr.contains("eligibility"), "{stderr}");
    let bags = ["--txn", "r2", "--prop", "category=bags"];
    let refused = stickydb(&store, &[&redeem[..], &bags[..], &at[..]].concat());
    assert!(!refused.status.success());
    let bad = ["--txn", "r3", "--prop", "category"];
    let unparsable = stickydb(&store, &[&redeem[..], &bad[..], &at[..]].concat());
    assert!(!unparsable.status.success());
    let shoes = [
        "--txn",
        "r4",
        "--kind",
        "purchase",
        "--prop",
        "category=shoes",
    ];
    let shoes = [&["--json"][..], &redeem[..], &shoes[..], &at[..]].concat();
    let out = ok(&stickydb(&store, &shoes));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (v["off_minor"].as_i64(), v["replayed"].as_bool()),
        (Some(2000), Some(false))
    );
}

#[test]
fn templates_of_the_first_layout_answer_as_they_did() {
    let (dir, src) = common::copy_fixture("coupons-v1");
    let expected = std::fs::read_to_string(src.join("expected.jsonl")).unwrap();
    let mut got = Vec::new();
    let q = |args: &[&str]| -> String {
        let out = ok(&stickydb(dir.path(), &[&["--json"][..], args].concat()));
        out.split_whitespace().collect()
    };
    got.push(q(&["coupons", "template", "list"]));
    for u in ["u0", "u1"] {
        got.push(q(&["coupons", "list", u]));
    }
    for t in ["F5", "P10", "SHIP", "T15"] {
        got.push(q(&["coupons", "stats", "--template", t]));
    }
    assert_eq!(got, expected.lines().collect::<Vec<_>>());
    // the old templates still work, beside a new one with eligibility
    let db = Db::open(dir.path(), Options::default()).unwrap();
    // and this build writes a template without eligibility byte for byte
    // as the old one did (format 1)
    let (_fresh_dir, fresh) = common::open_temp();
    let file = std::fs::read_to_string(src.join("t.jsonl")).unwrap();
    for line in file.lines() {
        let t: CouponTemplate = serde_json::from_str(line).unwrap();
        fresh.add_coupon_template(&t).unwrap();
    }
    let templates_of = |db: &Db| -> Vec<(Vec<u8>, Vec<u8>)> {
        db.raw_dump()
            .unwrap()
            .into_iter()
            // (`coupon:ID 0 t`: a template's record, not its counts)
            .filter(|(cf, k, _)| *cf == "meta" && k.starts_with(b"coupon:") && k.ends_with(b"\0t"))
            .map(|(_, k, v)| (k, v))
            .collect()
    };
    let (old, new) = (templates_of(&db), templates_of(&fresh));
    assert_eq!(old.len(), 4);
    assert_eq!(old, new);
    let redeem = CouponOp::Redeem {
        coupon: "F5-1".into(),
        order_minor: 1_000,
    };
    assert_eq!(db.coupon("u0", "r9", T0, &redeem).unwrap().off_minor, 500);
    db.add_coupon_template(&shoes_only()).unwrap();
    assert_eq!(db.coupon_templates().unwrap().len(), 5);
    common::assert_clean(&db);
}
