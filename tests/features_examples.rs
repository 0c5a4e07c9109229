//! Per-user features by example (docs/features.md): the window edge to the
//! millisecond, late events, bad definitions refused with a typed error
//! that changes nothing, a state damaged on disk found by verify, `advance`
//! meeting a tag change it looked ahead to, and the CLI's `features define|list|get|drop` shapes.

mod common;
use common::*;
use stickydb::features::{Definition, FeatureValue, Op, TagRule, Window};
use stickydb::{Db, Error, Event, Problem, PropValue, Segment};

const T: i64 = 1_709_251_200_000; // 2024-03-01 00:00 UTC
const DAY: i64 = 86_400_000;

fn shoes(user: &str, ts: i64) -> Event {
    Event::new(user, "view", ts).with_property("category", PropValue::Str("shoes".into()))
}

fn count(db: &Db, user: &str, name: &str, at: i64) -> Option<f64> {
    db.features(user, at)
        .unwrap()
        .get(name)
        .and_then(FeatureValue::as_f64)
}

fn define(db: &Db) {
    let d = Definition::new(
        "views_shoes_14d",
        ["view"],
        Op::Count,
        Window::parse("14d").unwrap(),
    )
    .with_filter("category", PropValue::Str("shoes".into()));
    let rule = TagRule::new("interest:shoes", "views_shoes_14d >= 3");
    db.define_features(&[d], &[rule]).unwrap();
}

#[test]
fn a_count_over_14_days_ends_at_the_third_newest_view_plus_14_days() {
    let (_dir, db) = open_temp();
    define(&db);
    for (i, day) in [0, 3, 5].iter().enumerate() {
        db.record(&shoes("ann", T + day * DAY + i as i64)).unwrap();
    }
    let entered = T + 5 * DAY + 2;
    let left = T + 14 * DAY; // the first view (at T) slides out here
    assert_eq!(count(&db, "ann", "views_shoes_14d", entered), Some(3.0));
    assert_eq!(count(&db, "ann", "views_shoes_14d", left - 1), Some(3.0));
    assert_eq!(count(&db, "ann", "views_shoes_14d", left), Some(2.0));
    assert_eq!(count(&db, "ann", "views_shoes_14d", left + 1), Some(2.0));
    let holders = |at| {
        db.segment(&Segment::tag("interest:shoes"), at)
            .unwrap()
            .len()
    };
    assert_eq!(
        (
            holders(entered - 1),
            holders(entered),
            holders(left - 1),
            holders(left)
        ),
        (0, 1, 1, 0)
    );
    // a late view inside the window keeps the tag three more days
    db.record(&shoes("ann", T + 3 * DAY - 5)).unwrap();
    assert_eq!(count(&db, "ann", "views_shoes_14d", left), Some(3.0));
    assert_eq!(holders(left), 1);
    assert_eq!(holders(T + 17 * DAY - 5), 0);
    // the feed: entered, then left once advance passes the edge
    db.advance(T + 30 * DAY).unwrap();
    let tags: Vec<(String, i64)> = db
        .feed(0, 100)
        .unwrap()
        .into_iter()
        .filter_map(|e| match e.record.change {
            stickydb::Change::Tag { state, at_ms, .. } => Some((format!("{state:?}"), at_ms)),
            _ => None,
        })
        .collect();
    assert_eq!(
        tags,
        [
            ("Entered".to_owned(), entered),
            ("Left".to_owned(), T + 17 * DAY - 5)
        ]
    );
    assert_clean(&db);
}

#[test]
fn advance_comes_back_at_the_next_tag_change_not_the_next_feature_change() {
    let (_dir, db) = open_temp();
    define(&db);
    for day in 0..4 {
        db.record(&shoes("ann", T + day * DAY)).unwrap();
    }
    let entered = T + 2 * DAY;
    // the count slides 4 -> 3 at T + 14 days (no tag change), 3 -> 2 at
    // T + 15 days: advance, having looked ahead from its first visit, must
    // still come back exactly there
    db.advance(T + 4 * DAY).unwrap();
    let report = db.advance(T + 14 * DAY).unwrap();
    assert_eq!(report.tag_changes, 0);
    db.advance(T + 15 * DAY - 1).unwrap();
    let entered_shoes = ("interest:shoes".to_owned(), "Entered".to_owned(), entered);
    assert_eq!(tag_entries(&db), std::slice::from_ref(&entered_shoes));
    let report = db.advance(T + 15 * DAY).unwrap();
    assert_eq!((report.tag_users, report.tag_changes), (1, 1));
    assert_eq!(
        tag_entries(&db),
        [
            entered_shoes,
            ("interest:shoes".to_owned(), "Left".to_owned(), T + 15 * DAY)
        ]
    );
    assert_clean(&db);
}

#[test]
fn bad_definitions_are_refused_and_change_nothing() {
    let (_dir, db) = open_temp();
    define(&db);
    let version = db.feature_set().version();
    let refused = |r: stickydb::Result<u64>| match r {
        Err(Error::Input(e)) => (e.field, e.problem),
        other => panic!("not refused: {other:?}"),
    };
    let sum = Definition::new("spend", ["purchase"], Op::Sum, Window::Lifetime);
    let (field, _) = refused(db.define_features(&[sum], &[]));
    assert_eq!(field, "definition.field");
    let bad_name = Definition::new("Spend!", ["purchase"], Op::Count, Window::Lifetime);
    assert_eq!(
        refused(db.define_features(&[bad_name], &[])).0,
        "definition.name"
    );
    let unknown = TagRule::new("x", "nothing_like_it >= 1");
    assert!(matches!(
        refused(db.define_features(&[], &[unknown])),
        ("rule.when", Problem::Invalid { .. })
    ));
    let keyed = TagRule::new("k:{key}", "views_shoes_14d >= 1");
    assert_eq!(refused(db.define_features(&[], &[keyed])).0, "rule.when");
    assert!(matches!(
        Window::parse("14 days"),
        Err(Problem::Unparsable { .. })
    ));
    // a definition a rule reads cannot go
    assert_eq!(refused(db.drop_feature("views_shoes_14d")).0, "rule.when");
    assert_eq!(db.feature_set().version(), version);
    // the rule first, then the definition
    db.drop_feature("interest:shoes").unwrap();
    db.drop_feature("views_shoes_14d").unwrap();
    assert!(db.feature_set().is_empty());
}

#[test]
fn verify_finds_a_state_damaged_on_disk() {
    let (dir, db) = open_temp();
    define(&db);
    db.record(&shoes("ann", T)).unwrap();
    for i in 0..3 {
        db.record(&shoes("bob", T + i)).unwrap();
    }
    assert_clean(&db);
    let (ann, bob) = (
        db.user_id("ann").unwrap().unwrap(),
        db.user_id("bob").unwrap().unwrap(),
    );
    drop(db);
    {
        // bob's state written over ann's: three views she never made
        let raw = raw_open(dir.path());
        let cf = raw.cf_handle("features").unwrap();
        let bobs = raw.get_cf(cf, bob.to_be_bytes()).unwrap().unwrap();
        raw.put_cf(cf, ann.to_be_bytes(), bobs).unwrap();
    }
    let db = reopen(&dir);
    let report = db.verify().unwrap();
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.contains("features of user id")),
        "{:?}",
        report.problems
    );
}

#[cfg(feature = "cli")]
#[test]
fn the_cli_defines_lists_gets_and_drops() {
    use common::cli::{ok, stickydb};
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store");
    ok(&stickydb(&db, &["init"]));
    let events = dir.path().join("events.jsonl");
    std::fs::write(
        &events,
        "{\"user\":\"ann\",\"kind\":\"view\",\"ts\":\"2024-03-01T10:00:00Z\",\"properties\":{\"category\":\"shoes\",\"item\":\"s1\"}}\n\
         {\"user\":\"ann\",\"kind\":\"view\",\"ts\":\"2024-03-02T10:00:00Z\",\"properties\":{\"category\":\"bags\",\"item\":\"b1\"}}\n",
    )
    .unwrap();
    ok(&stickydb(&db, &["import", events.to_str().unwrap()]));
    let defs = dir.path().join("defs.jsonl");
    std::fs::write(
        &defs,
        "{\"name\":\"views_by_category_30d\",\"kinds\":[\"view\"],\"op\":\"count\",\"key\":\"category\",\"window\":\"30d\"}\n\
         {\"name\":\"last_items\",\"kinds\":[\"view\"],\"op\":\"last_k\",\"field\":\"item\",\"k\":10}\n\
         {\"tag\":\"interest:{key}\",\"when\":\"views_by_category_30d[key] >= 1\"}\n",
    )
    .unwrap();
    let out: serde_json::Value = serde_json::from_str(&ok(&stickydb(
        &db,
        &["features", "define", defs.to_str().unwrap(), "--json"],
    )))
    .unwrap();
    assert_eq!(
        (
            out["definitions"].as_u64(),
            out["rules"].as_u64(),
            out["users_computed"].as_u64()
        ),
        (Some(2), Some(1), Some(1))
    );
    let list: serde_json::Value =
        serde_json::from_str(&ok(&stickydb(&db, &["features", "list", "--json"]))).unwrap();
    assert_eq!(list["definitions"][0]["window"], "30d");
    let got: serde_json::Value = serde_json::from_str(&ok(&stickydb(
        &db,
        &[
            "features",
            "get",
            "ann",
            "--at",
            "2024-03-02T10:00:00Z",
            "--json",
        ],
    )))
    .unwrap();
    assert_eq!(
        got["features"]["views_by_category_30d"],
        serde_json::json!({"bags": 1, "shoes": 1})
    );
    assert_eq!(
        got["features"]["last_items"],
        serde_json::json!(["b1", "s1"])
    );
    assert_eq!(
        got["tags"],
        serde_json::json!(["interest:bags", "interest:shoes"])
    );
    // a second before the bag view: it is not there yet
    let before: serde_json::Value = serde_json::from_str(&ok(&stickydb(
        &db,
        &[
            "features",
            "get",
            "ann",
            "--at",
            "2024-03-02T09:59:59Z",
            "--json",
        ],
    )))
    .unwrap();
    assert_eq!(before["tags"], serde_json::json!(["interest:shoes"]));
    let seg = ok(&stickydb(
        &db,
        &[
            "segment",
            "tag:interest:bags",
            "--as-of",
            "2024-03-02T10:00:00Z",
            "--json",
        ],
    ));
    assert!(seg.contains("\"count\": 1"), "{seg}");
    ok(&stickydb(&db, &["features", "drop", "interest:{key}"]));
    let after: serde_json::Value =
        serde_json::from_str(&ok(&stickydb(&db, &["features", "list", "--json"]))).unwrap();
    assert_eq!(after["rules"], serde_json::json!([]));
}

fn tag_entries(db: &Db) -> Vec<(String, String, i64)> {
    db.feed(0, 10_000)
        .unwrap()
        .into_iter()
        .filter_map(|e| match e.record.change {
            stickydb::Change::Tag {
                tag, state, at_ms, ..
            } => Some((tag, format!("{state:?}"), at_ms)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_rule_that_holds_on_nothing_begins_with_the_first_event_and_ends_with_the_rules() {
    let (_dir, db) = open_temp();
    let views = Definition::new(
        "views_14d",
        ["view"],
        Op::Count,
        Window::parse("14d").unwrap(),
    );
    db.define_features(&[views], &[TagRule::new("cold", "views_14d < 3")])
        .unwrap();
    // (no advance ever ran: no clock) the first event is a purchase, a kind
    // no definition reads
    db.record(&Event::new("ann", "purchase", T).with_amount(100))
        .unwrap();
    assert_eq!(
        tag_entries(&db),
        [("cold".to_owned(), "Entered".to_owned(), T)]
    );
    assert!(db.features("ann", T - 1).unwrap().tags.is_empty());
    assert_eq!(db.features("ann", T).unwrap().tags, ["cold"]);
    // dropping the rule and the definition ends what was held
    db.drop_feature("cold").unwrap();
    db.drop_feature("views_14d").unwrap();
    db.backfill_features().unwrap();
    let entries = tag_entries(&db);
    assert_eq!(
        entries.last().map(|e| e.1.as_str()),
        Some("Left"),
        "{entries:?}"
    );
    assert_clean(&db);
}

#[test]
fn odd_offsets_bounds_and_a_heavy_user_neither_panic_nor_fail_writes() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::create(
        dir.path(),
        stickydb::Options::default().utc_offset_minutes(-300),
    )
    .unwrap();
    let urls = Definition::new("urls", ["view"], Op::Count, Window::Lifetime)
        .with_key("url")
        .with_cap(4_096);
    let today = Definition::new("views_today", ["view"], Op::Count, Window::Day);
    db.define_features(&[urls, today], &[TagRule::new("busy", "views_today >= 1")])
        .unwrap();
    // a state with no event a definition reads, under a negative offset
    db.record(&Event::new("ann", "purchase", T).with_amount(5))
        .unwrap();
    assert_eq!(count(&db, "ann", "views_today", T), Some(0.0));
    // 2 000 distinct 100-byte keys: past 64 KiB, the map is cut, not the write
    let long = "x".repeat(90);
    let events: Vec<Event> = (0..2_000)
        .map(|i| {
            Event::new("bob", "view", T + i)
                .with_property("url", PropValue::Str(format!("{long}{i:08}")))
        })
        .collect();
    db.record_batch(&events).unwrap();
    db.record(
        &Event::new("bob", "view", T + 5_000).with_property("url", PropValue::Str("y".into())),
    )
    .unwrap();
    let f = db.features("bob", T + 5_000).unwrap();
    assert!(
        f.truncated.contains(&"urls".to_owned()),
        "{:?}",
        f.truncated
    );
    assert!(matches!(
        db.rule_tags_by_day(i32::MAX, i32::MAX),
        Err(Error::Input(_))
    ));
    assert_clean(&db);
}
