//! `Db::create` vs `Db::open`, strict kinds, and what an error says about
//! itself (refusal, retryable, storage).

mod common;
use common::*;

use stickydb::{Db, Error, Event, InputError, KindPolicy, OpenError, Options, PointsOp, Problem};

#[test]
fn create_refuses_a_store_and_open_refuses_a_missing_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    assert!(matches!(
        Db::open(&path, Options::default()),
        Err(Error::Open(OpenError::Missing { .. }))
    ));
    assert!(!path.exists(), "a refused open creates nothing");
    let db = Db::create(&path, Options::default()).unwrap();
    db.record(&Event::new("a", "view", T0)).unwrap();
    drop(db);
    assert!(matches!(
        Db::create(&path, Options::default()),
        Err(Error::Open(OpenError::Exists { .. }))
    ));
    let db = Db::open(&path, Options::default()).unwrap();
    assert_eq!(db.event_count().unwrap(), 1);
    // an empty directory is no store: create takes it
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    Db::create(&empty, Options::default()).unwrap();
}

#[test]
fn a_strict_store_refuses_unlisted_kinds_and_keeps_its_policy() {
    let dir = tempfile::tempdir().unwrap();
    let strict = KindPolicy::strict(["view", "purchase"]);
    let db = Db::create(dir.path(), Options::default().kinds(strict.clone())).unwrap();
    db.record(&Event::new("a", "view", T0)).unwrap();
    let before = db.raw_dump().unwrap();
    let out = db.record_batch(&[
        Event::new("a", "view", T0 + 1),
        Event::new("a", "Purchase", T0),
    ]);
    match out {
        Err(Error::Input(InputError {
            index: Some(1),
            problem: Problem::KindNotAllowed { kind, allowed },
            ..
        })) => {
            assert_eq!(kind, "Purchase");
            assert_eq!(allowed, vec!["purchase".to_owned(), "view".to_owned()]);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(db.raw_dump().unwrap(), before);
    assert!(db.kinds().iter().all(|(_, k)| k.as_str() != "Purchase"));
    drop(db);
    // kept: a reopen without a policy is strict; another policy is refused
    let db = Db::open(dir.path(), Options::default()).unwrap();
    assert!(db.record(&Event::new("a", "click", T0)).is_err());
    drop(db);
    assert!(matches!(
        Db::open(dir.path(), Options::default().kinds(KindPolicy::Open)),
        Err(Error::Open(OpenError::SettingMismatch {
            setting: "kinds",
            ..
        }))
    ));
    Db::open(dir.path(), Options::default().kinds(strict)).unwrap();
    // an open store registers any kind, as before
    let (_d, open) = open_temp();
    open.record(&Event::new("a", "Purchase", T0)).unwrap();
}

#[test]
fn errors_say_whether_to_refuse_retry_or_alert() {
    let (_d, db) = open_temp();
    let refusals = [
        db.record(&Event::new("", "view", T0)).unwrap_err(),
        db.points("nobody", "t", T0, &PointsOp::redeem(1, ""))
            .unwrap_err(),
        {
            db.points("a", "t1", T0, &PointsOp::earn(5, "")).unwrap();
            db.points("a", "t2", T0, &PointsOp::redeem(6, ""))
                .unwrap_err()
        },
        db.points("a", "t1", T0, &PointsOp::earn(6, ""))
            .unwrap_err(),
    ];
    for e in &refusals {
        assert!(
            e.is_refusal() && !e.is_retryable() && !e.is_storage(),
            "{e}"
        );
    }
    let busy = Error::Busy {
        what: "x",
        rounds: 8,
    };
    assert!(busy.is_retryable() && !busy.is_refusal());
    let missing = Db::open(_d.path().join("nope"), Options::default()).unwrap_err();
    assert!(!missing.is_retryable());
}
