//! Metric settings: which kinds count as activity (fixed at creation) and the
//! stage model (replaceable), both persisted.

mod common;
use common::*;
use stickydb::metrics::{Condition, StageInput, StageModel, StageRule};
use stickydb::{Db, Error, Event, EventKind, OpenError, Options};

fn opts(non_activity: Option<&[&str]>) -> Options {
    let mut o = Options::default().create_if_missing(true);
    o.non_activity_kinds = non_activity.map(|v| v.iter().map(|s| s.to_string()).collect());
    o
}

#[test]
fn non_activity_kinds_are_fixed_at_creation() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts(Some(&["share", "refund"]))).unwrap();
    let day = db.local_day(T0);
    db.record(&Event::new("a", "share", T0)).unwrap();
    db.record(&Event::new("b", "view", T0)).unwrap();
    let m = db.metrics();
    assert_eq!(
        m.active(None, day, day, None).unwrap()[0].dau,
        1,
        "share is not activity"
    );
    assert_eq!(
        m.active(Some(&EventKind::Share), day, day, None).unwrap()[0].dau,
        1,
        "but it is a kind of its own"
    );
    assert_eq!(m.daily(day, day).unwrap()[0].new_users, 1);
    drop(m);
    drop(db);

    // same list in another order, or no list: fine
    drop(Db::open(dir.path(), opts(Some(&["refund", "share"]))).unwrap());
    let db = Db::open(dir.path(), opts(None)).unwrap();
    assert_eq!(
        db.metric_settings().non_activity_kinds,
        vec!["refund", "share"]
    );
    drop(db);
    // another list: a typed error, nothing opened
    match Db::open(dir.path(), opts(Some(&["share"]))) {
        Err(Error::Open(OpenError::SettingMismatch { setting, .. })) => {
            assert_eq!(setting, "non_activity_kinds")
        }
        other => panic!("expected a setting mismatch, got {other:?}"),
    }
    // an invalid kind name at creation
    let dir2 = tempfile::tempdir().unwrap();
    assert!(matches!(
        Db::open(dir2.path(), opts(Some(&[""]))),
        Err(Error::Open(OpenError::InvalidOption { .. }))
    ));
}

#[test]
fn stage_model_is_replaceable_and_persisted() {
    let (dir, db) = open_temp();
    let day = db.local_day(T0);
    db.record(&Event::new("a", "view", T0)).unwrap();
    db.record(&Event::new("a", "purchase", T0 + DAY).with_amount(5_000))
        .unwrap();
    let id = db.user_id("a").unwrap().unwrap();
    let stage = |db: &Db, d: i32| db.metrics().user(id, d).unwrap().unwrap().stage;
    assert_eq!(stage(&db, day + 1).as_deref(), Some("new"));
    assert_eq!(stage(&db, day + 10).as_deref(), Some("growing"));
    assert_eq!(stage(&db, day + 20).as_deref(), Some("declining"));
    assert_eq!(stage(&db, day + 40).as_deref(), Some("churned"));
    assert_eq!(stage(&db, day - 1), None, "no activity yet");

    // a store's own model: big spenders first, thresholds from data
    let model = StageModel {
        rules: vec![StageRule {
            stage: "whale".into(),
            any_of: vec![vec![Condition::AtLeast(StageInput::NetSpendMinor, 1_000)]],
        }],
        fallback: "minnow".into(),
    };
    db.set_stage_model(model.clone()).unwrap();
    assert_eq!(stage(&db, day + 10).as_deref(), Some("whale"));
    assert_eq!(stage(&db, day).as_deref(), Some("minnow"));
    let counts = db.metrics().stages(day + 10, None).unwrap();
    assert_eq!(counts.get("whale"), Some(&1));
    assert_eq!(counts.get("minnow"), Some(&0));

    // a bad model is rejected and changes nothing
    let bad = StageModel {
        rules: vec![],
        fallback: String::new(),
    };
    assert!(matches!(db.set_stage_model(bad), Err(Error::Input(_))));
    drop(db);
    let db = reopen(&dir);
    assert_eq!(db.metric_settings().stage_model, model);

    // thresholds of the standard model are parameters
    db.set_stage_model(StageModel::with_thresholds(3, 5, 8))
        .unwrap();
    assert_eq!(stage(&db, day + 4).as_deref(), Some("growing"));
    assert_eq!(stage(&db, day + 7).as_deref(), Some("declining"));
    assert_eq!(stage(&db, day + 9).as_deref(), Some("churned"));
}

#[test]
fn query_ranges_are_bounded() {
    let (_dir, db) = open_temp();
    let m = db.metrics();
    assert!(matches!(m.active(None, 10, 9, None), Err(Error::Input(_))));
    assert!(matches!(m.daily(0, 100_000), Err(Error::Input(_))));
    assert!(m.daily(0, 10).unwrap().iter().all(|r| r.events == 0));
    // days far outside any timestamp are typed errors, never overflow panics
    for d in [i32::MIN, i32::MAX, stickydb::metrics::MAX_QUERY_DAY + 1] {
        assert!(matches!(m.active(None, d, d, None), Err(Error::Input(_))));
        assert!(matches!(m.stages(d, None), Err(Error::Input(_))));
        assert!(matches!(m.rfm(d, None), Err(Error::Input(_))));
        assert!(matches!(m.user(0, d), Err(Error::Input(_))));
        assert!(matches!(m.users(d, None), Err(Error::Input(_))));
        assert!(matches!(m.active_within(7, d), Err(Error::Input(_))));
    }
    let edge = stickydb::metrics::MAX_QUERY_DAY;
    assert_eq!(m.active(None, edge, edge, None).unwrap()[0].dau, 0);
}
