//! Profile attributes: typed set/unset, sensitivity, atomic updates.

mod common;
use common::*;
use stickydb::{AttrValue, Error, ProfileUpdate, Sensitive, TagSource};

#[test]
fn set_unset_and_types_round_trip() {
    let (dir, db) = open_temp();
    db.update_profile(
        "ann",
        &ProfileUpdate::new()
            .set("region", "EU")
            .set("age", 31)
            .set("score", 0.75)
            .set("newsletter", true)
            .set("birthday", AttrValue::Timestamp(T0)),
    )
    .unwrap();
    db.update_profile(
        "ann",
        &ProfileUpdate::new().unset("newsletter").set("age", 32),
    )
    .unwrap();
    drop(db);
    let db = reopen(&dir);
    let p = db.profile("ann", Sensitive::Exclude).unwrap().unwrap();
    assert_eq!(p.attributes.len(), 4);
    assert_eq!(p.attributes["age"], AttrValue::Int(32));
    assert_eq!(p.attributes["score"], AttrValue::Float(0.75));
    assert_eq!(p.attributes["birthday"], AttrValue::Timestamp(T0));
    assert!(!p.attributes.contains_key("newsletter"));
    assert!(db.profile("nobody", Sensitive::Exclude).unwrap().is_none());
    assert_clean(&db);
}

#[test]
fn sensitive_attributes_only_on_explicit_request() {
    let (_dir, db) = open_temp();
    db.update_profile(
        "ann",
        &ProfileUpdate::new()
            .set("region", "EU")
            .set_sensitive("phone", "+1 555 0100"),
    )
    .unwrap();
    let p = db.profile("ann", Sensitive::Exclude).unwrap().unwrap();
    assert!(!p.attributes.contains_key("phone"));
    assert_eq!(p.withheld, vec!["phone".to_string()]);
    let p = db.profile("ann", Sensitive::Include).unwrap().unwrap();
    assert_eq!(p.attributes["phone"], AttrValue::Str("+1 555 0100".into()));
    assert!(p.withheld.is_empty());
}

#[test]
fn one_bad_change_rejects_the_whole_update() {
    let (_dir, db) = open_temp();
    db.update_profile("ann", &ProfileUpdate::new().set("age", 31))
        .unwrap();
    let before = db.raw_dump().unwrap();
    let bad = [
        ProfileUpdate::new().set("age", 40).set("score", f64::NAN),
        ProfileUpdate::new().set("age", 40).set("", 1),
        ProfileUpdate::new().set("age", 40).unset("age"),
        ProfileUpdate::new().set("x", "y".repeat(5000)),
        ProfileUpdate::new()
            .set("age", 40)
            .tag("vip", TagSource::Manual, -5, None),
        ProfileUpdate::new().tag("v".repeat(200), TagSource::Rule, T0, None),
        ProfileUpdate::new()
            .tag("vip", TagSource::Rule, T0, None)
            .untag("vip"),
    ];
    for update in bad {
        let err = db.update_profile("ann", &update).unwrap_err();
        assert!(matches!(err, Error::Input(_)), "{err}");
    }
    assert_eq!(
        db.raw_dump().unwrap(),
        before,
        "a rejected update wrote something"
    );
    let p = db.profile("ann", Sensitive::Exclude).unwrap().unwrap();
    assert_eq!(p.attributes["age"], AttrValue::Int(31));
}
