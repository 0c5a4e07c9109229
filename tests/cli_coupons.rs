//! `stickydb coupons …` through the real binary: the documented JSON
//! shapes, `--json` equal to the library's answer on the same store, each
//! refusal exiting non-zero with an `error:` line naming its rule and
//! changing nothing, and a retry answering from its record.

mod common;

use std::path::Path;

use common::cli::{ok, stickydb};
use common::{assert_clean, DAY, T0};
use serde_json::{json, Value};
use stickydb::{Db, Options};

fn json_of(db: &Path, args: &[&str]) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    serde_json::from_str(&ok(&stickydb(db, &all))).expect("JSON")
}

/// Runs a command that must be refused: returns its error line.
fn refused(db: &Path, args: &[&str]) -> String {
    let out = stickydb(db, args);
    assert_eq!(out.status.code(), Some(1), "{args:?} must exit 1");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn at(ms: i64) -> String {
    ms.to_string()
}

#[test]
fn coupon_commands_answer_as_documented_and_refuse_by_rule() {
    let dir = tempfile::tempdir().unwrap();
    let db_path = dir.path().join("store");
    drop(Db::create(&db_path, Options::default()).unwrap());
    let p = db_path.as_path();
    let templates = dir.path().join("t.jsonl");
    std::fs::write(
        &templates,
        concat!(
            r#"{"id":"T15","kind":"threshold","min_spend_minor":10000,"off_minor":1500,"valid_days":7,"stock":2,"per_user":1}"#,
            "\n",
            r#"{"id":"P10","kind":"percent","percent":10,"max_off_minor":500,"stackable":true}"#,
            "\n"
        ),
    )
    .unwrap();
    let t = templates.to_str().unwrap();
    assert_eq!(
        json_of(p, &["coupons", "template", "add", t]),
        json!({"added": ["T15", "P10"], "unchanged": []})
    );
    assert_eq!(
        json_of(p, &["coupons", "template", "add", t]),
        json!({"added": [], "unchanged": ["T15", "P10"]})
    );
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, r#"{"id":"T15","kind":"fixed","off_minor":1}"#).unwrap();
    assert!(
        refused(p, &["coupons", "template", "add", bad.to_str().unwrap()]).contains("other terms")
    );

    let t0 = at(T0);
    let issued = json_of(
        p,
        &[
            "coupons",
            "issue",
            "ann",
            "--template",
            "T15",
            "--txn",
            "i1",
            "--at",
            &t0,
        ],
    );
    assert_eq!(
        issued,
        json!({"coupon": "T15-1", "template": "T15", "user": "ann",
               "expires_ms": T0 + 7 * DAY, "replayed": false})
    );
    // a retry, stamped later, answers from the record
    let later = at(T0 + 5);
    let again = json_of(
        p,
        &[
            "coupons",
            "issue",
            "ann",
            "--template",
            "T15",
            "--txn",
            "i1",
            "--at",
            &later,
        ],
    );
    assert_eq!(again["replayed"], json!(true));
    assert_eq!(again["coupon"], json!("T15-1"));

    // ann holds her one T15 (the stock has one left: the limit refuses)
    let line = refused(
        p,
        &[
            "coupons",
            "issue",
            "ann",
            "--template",
            "T15",
            "--txn",
            "i2",
        ],
    );
    assert!(line.contains("per-user limit"), "{line}");
    json_of(
        p,
        &[
            "coupons",
            "issue",
            "bob",
            "--template",
            "T15",
            "--txn",
            "i1",
            "--at",
            &t0,
        ],
    );
    let before = Db::open(p, Options::default()).unwrap().raw_dump().unwrap();
    let rules: [(&[&str], &str); 4] = [
        (
            &[
                "coupons",
                "redeem",
                "ann",
                "--coupon",
                "T15-1",
                "--order-minor",
                "9000",
                "--txn",
                "r0",
                "--at",
                &t0,
            ],
            "threshold",
        ),
        (
            &[
                "coupons",
                "issue",
                "ann",
                "--template",
                "P10",
                "--txn",
                "i1",
            ],
            "conflict",
        ),
        (
            &[
                "coupons",
                "issue",
                "ann",
                "--template",
                "NOPE",
                "--txn",
                "i3",
            ],
            "unknown coupon template",
        ),
        (
            &[
                "coupons",
                "issue",
                "cat",
                "--template",
                "T15",
                "--txn",
                "i1",
            ],
            "stock",
        ),
    ];
    for (args, rule) in rules {
        let line = refused(p, args);
        assert!(
            line.starts_with("error: ") && line.contains(rule),
            "{args:?}: {line}"
        );
    }
    let after = Db::open(p, Options::default()).unwrap().raw_dump().unwrap();
    assert!(before == after, "a refusal changed the store");

    let t1 = at(T0 + DAY);
    let redeem = json_of(
        p,
        &[
            "coupons",
            "redeem",
            "ann",
            "--coupon",
            "T15-1",
            "--order-minor",
            "12000",
            "--txn",
            "r1",
            "--at",
            &t1,
        ],
    );
    assert_eq!(
        redeem,
        json!({"coupon": "T15-1", "state": "redeemed", "replayed": false, "off_minor": 1500})
    );
    let held = json_of(
        p,
        &[
            "coupons", "hold", "bob", "--coupon", "T15-2", "--txn", "h1", "--at", &t1,
        ],
    );
    assert_eq!(
        held,
        json!({"coupon": "T15-2", "state": "held", "replayed": false})
    );
    let released = json_of(
        p,
        &[
            "coupons", "release", "bob", "--coupon", "T15-2", "--txn", "l1", "--at", &t1,
        ],
    );
    assert_eq!(released["state"], json!("available"));
    let reversed = json_of(
        p,
        &[
            "coupons", "reverse", "ann", "--coupon", "T15-1", "--txn", "v1", "--at", &t1,
        ],
    );
    assert_eq!(reversed["state"], json!("available"));
    let t9 = at(T0 + 9 * DAY);
    assert!(refused(
        p,
        &[
            "coupons",
            "redeem",
            "bob",
            "--coupon",
            "T15-2",
            "--order-minor",
            "20000",
            "--txn",
            "r2",
            "--at",
            &t9
        ]
    )
    .contains("expired"));

    // --json equals the library on the same store
    let stats = json_of(p, &["coupons", "stats", "--template", "T15"]);
    let list = json_of(p, &["coupons", "list", "ann"]);
    let templates = json_of(p, &["coupons", "template", "list"]);
    let db = Db::open(p, Options::default()).unwrap();
    assert_eq!(
        stats,
        serde_json::to_value(db.coupon_stats("T15").unwrap()).unwrap()
    );
    assert_eq!(
        stats,
        json!({"template": "T15", "issued": 2, "redeemed": 0, "expired": 0,
               "outstanding": 2, "erased": 0, "stock_left": 0})
    );
    assert_eq!(
        list["coupons"],
        serde_json::to_value(db.coupons("ann").unwrap()).unwrap()
    );
    assert_eq!(list["coupons"][0]["state"], json!("available"));
    assert_eq!(
        templates["templates"],
        serde_json::to_value(db.coupon_templates().unwrap()).unwrap()
    );
    assert_clean(&db);
    drop(db);
    // the expiry run counts them
    json_of(p, &["advance", "--now", &t9]);
    let stats = json_of(p, &["coupons", "stats", "--template", "T15"]);
    assert_eq!(
        (stats["expired"].clone(), stats["outstanding"].clone()),
        (json!(2), json!(0))
    );
}

#[test]
fn the_gift_pack_is_set_shown_and_cleared() {
    let dir = tempfile::tempdir().unwrap();
    let db_path = dir.path().join("store");
    {
        let db = Db::create(&db_path, Options::default()).unwrap();
        db.add_coupon_template(&stickydb::CouponTemplate::fixed("W", 500))
            .unwrap();
    }
    let p = db_path.as_path();
    assert_eq!(
        json_of(p, &["coupons", "gift-pack", "show"]),
        json!({"gift_pack": null})
    );
    assert_eq!(
        json_of(p, &["coupons", "gift-pack", "set", "W", "--kind", "signup"]),
        json!({"gift_pack": {"kind": "signup", "templates": ["W"]}})
    );
    assert!(
        refused(p, &["coupons", "gift-pack", "set", "NOPE"]).contains("unknown coupon template")
    );
    {
        let db = Db::open(p, Options::default()).unwrap();
        db.record(&stickydb::Event::new("ann", "signup", T0))
            .unwrap();
    }
    assert_eq!(
        json_of(p, &["coupons", "list", "ann"])["coupons"][0]["id"],
        json!("W-1")
    );
    assert_eq!(
        json_of(p, &["coupons", "gift-pack", "clear"]),
        json!({"gift_pack": null})
    );
}
