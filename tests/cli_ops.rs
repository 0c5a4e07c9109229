//! `erase`, `tags set|remove`, `activation` and `repurchase` through the
//! real binary: each `--json` equals its library call, and a refused
//! command changes nothing.

mod common;

use common::cli::{ok, stickydb};
use common::{assert_clean, DAY, T0};
use serde_json::{json, Value};
use stickydb::metrics::Period;
use stickydb::{Db, Event, EventKind, Options, ProfileUpdate, TagSource};

fn fill(path: &std::path::Path) {
    let db = Db::create(path, Options::default()).expect("create");
    for u in 0..30i64 {
        let user = format!("u{u}");
        let mut events = vec![Event::new(user.as_str(), "signup", T0 + (u % 5) * DAY)];
        for k in 0..(u % 4) {
            let ts = T0 + (u % 5 + k * (u % 3 + 1)) * DAY + 3_600_000;
            events.push(Event::new(user.as_str(), "purchase", ts).with_amount(500));
        }
        db.record_batch(&events).expect("events");
        db.update_profile(&user, &ProfileUpdate::new().set("tier_hint", u % 3))
            .expect("profile");
    }
}

fn json_of(path: &std::path::Path, args: &[&str]) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    serde_json::from_str(&ok(&stickydb(path, &all))).expect("json")
}

#[test]
fn each_operation_answers_as_its_library_call() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let path = tmp.path().join("store");
    fill(&path);
    let from = stickydb::time::format_day(T0.div_euclid(DAY) as i32);
    let to = stickydb::time::format_day((T0.div_euclid(DAY) + 20) as i32);
    let (f, t) = (from.as_str(), to.as_str());
    let act = json_of(
        &path,
        &[
            "activation",
            "--start-kind",
            "signup",
            "--kind",
            "purchase",
            "--within",
            "3d",
            "--from",
            f,
            "--to",
            t,
            "--segment",
            "attr:tier_hint>=1",
        ],
    );
    let rep = json_of(&path, &["repurchase", "--from", f, "--to", t]);
    {
        let db = Db::open(&path, Options::default()).expect("open");
        let (a, b) = (
            stickydb::time::parse_day(f).expect("day"),
            stickydb::time::parse_day(t).expect("day"),
        );
        let seg = stickydb::Segment::parse("attr:tier_hint>=1").expect("segment");
        let filter = db
            .segment(&seg, stickydb::time::local_midnight_ms(b + 1, 0) - 1)
            .expect("segment");
        let m = db.metrics();
        let rows = m
            .activation(
                &EventKind::Signup,
                &EventKind::Purchase,
                3,
                Period::Day,
                a,
                b,
                Some(&filter),
            )
            .expect("activation");
        assert!(
            rows.iter().any(|r| r.activated > 0 && r.activated < r.size),
            "{rows:?}"
        );
        let want: Vec<Value> = rows
            .iter()
            .map(|r| {
                json!({ "cohort": stickydb::time::format_day(r.cohort), "size": r.size,
                             "activated": r.activated, "rate": r.rate })
            })
            .collect();
        assert_eq!(act, json!({ "rows": want }));
        let r = m.repurchase_rate(a, b, None).expect("repurchase");
        assert!(r.repeat_purchasers > 0, "{r:?}");
        assert_eq!(rep, serde_json::to_value(r).expect("json"));
    }
    // tags: set with source and expiry, then remove
    let set = json_of(
        &path,
        &[
            "tags",
            "set",
            "u1",
            "vip",
            "--source",
            "rule",
            "--expires",
            "2030-01-01T00:00:00Z",
        ],
    );
    assert_eq!(set["held"], true);
    assert_eq!(set["source"], "rule");
    assert_eq!(set["expires_at_ms"], 1_893_456_000_000i64);
    {
        let db = Db::open(&path, Options::default()).expect("open");
        let tag = db
            .profile("u1", stickydb::Sensitive::Exclude)
            .expect("read")
            .expect("user")
            .tags["vip"];
        assert_eq!(
            (tag.source, tag.expires_at_ms),
            (TagSource::Rule, Some(1_893_456_000_000))
        );
    }
    let removed = json_of(&path, &["tags", "remove", "u1", "vip"]);
    assert_eq!(removed["held"], false);
    // erase: refused without --yes (nothing changes), done with it
    let before = Db::open(&path, Options::default())
        .expect("open")
        .raw_dump()
        .expect("dump");
    let refused = stickydb(&path, &["erase", "u2"]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--yes"));
    assert_eq!(
        Db::open(&path, Options::default())
            .expect("open")
            .raw_dump()
            .expect("dump"),
        before
    );
    assert_eq!(
        json_of(&path, &["erase", "u2", "--yes"]),
        json!({ "user": "u2", "erased": true })
    );
    assert_eq!(
        json_of(&path, &["erase", "u2", "--yes"]),
        json!({ "user": "u2", "erased": false })
    );
    let db = Db::open(&path, Options::default()).expect("open");
    assert_eq!(db.user_id("u2").expect("read"), None);
    assert_clean(&db);
}
