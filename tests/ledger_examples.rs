//! The worked examples of docs/ledger.md, run as written.

mod common;
use common::*;
use stickydb::ledger::{EntryKind, LotDraw};
use stickydb::{Error, LedgerError, PointsOp};

#[test]
fn drawing_order_example() {
    let (_d, db) = open_temp();
    db.points("ann", "a", T0, &PointsOp::earn(100, "")).unwrap();
    let b = PointsOp::Earn {
        points: 50,
        expires_at_ms: Some(T0 + 10 * DAY),
        reason: String::new(),
    };
    db.points("ann", "b", T0, &b).unwrap();
    let out = db
        .points("ann", "r", T0 + DAY, &PointsOp::redeem(70, ""))
        .unwrap();
    assert_eq!(
        out.lots,
        [
            LotDraw { lot: 1, points: 50 },
            LotDraw { lot: 0, points: 20 }
        ]
    );
    let err = db
        .points("ann", "r2", T0 + 10 * DAY, &PointsOp::redeem(81, ""))
        .unwrap_err();
    assert!(matches!(
        err,
        Error::Ledger(LedgerError::InsufficientPoints {
            requested: 81,
            available: 80
        })
    ));
}

#[test]
fn expiry_example() {
    let (_d, db) = open_temp();
    let a = PointsOp::Earn {
        points: 100,
        expires_at_ms: Some(T0 + 5),
        reason: String::new(),
    };
    db.points("ann", "a", T0, &a).unwrap();
    let hold = PointsOp::Hold {
        points: 30,
        timeout_ms: 8,
    };
    db.points("ann", "h", T0 + 2, &hold).unwrap();
    db.expire_points(T0 + 20).unwrap();
    assert_eq!(db.account("ann").unwrap().unwrap().balance, 0);
    let tail: Vec<(EntryKind, i64, i64)> = db
        .ledger("ann", T0 + 3, i64::MAX, 10)
        .unwrap()
        .iter()
        .rev()
        .map(|e| (e.kind, e.at_ms - T0, e.amount))
        .collect();
    assert_eq!(
        tail,
        [
            (EntryKind::Expire, 5, -70),
            (EntryKind::HoldTimeout, 10, 0),
            (EntryKind::Expire, 10, -30),
        ]
    );
    assert_clean(&db);
}

/// docs/ledger.md, "held points do not expire": a release into a lot past
/// its expiry expires the lot's whole unheld remainder at the release — the
/// returned points and those the expiry run had not reached yet.
#[test]
fn release_into_an_expired_lot_example() {
    let (_d, db) = open_temp();
    let a = PointsOp::Earn {
        points: 29,
        expires_at_ms: Some(T0 + 10 * DAY),
        reason: String::new(),
    };
    db.points("ann", "a", T0, &a).unwrap();
    let hold = PointsOp::Hold {
        points: 25,
        timeout_ms: 30 * DAY,
    };
    db.points("ann", "h", T0 + DAY, &hold).unwrap();
    // no expiry run between the lot's expiry and the release
    let release = PointsOp::Release {
        hold_txn: "h".into(),
    };
    let out = db.points("ann", "r", T0 + 20 * DAY, &release).unwrap();
    assert_eq!(out.expired, 29, "25 returned + 4 never held");
    assert_eq!(db.account("ann").unwrap().unwrap().balance, 0);
    let last = &db.ledger("ann", T0, i64::MAX, 1).unwrap()[0];
    assert_eq!(
        (last.kind, last.at_ms - T0, last.amount),
        (EntryKind::Expire, 20 * DAY, -29)
    );
    // the expiry run that comes later finds nothing left to do
    let rep = db.expire_points(T0 + 21 * DAY).unwrap();
    assert_eq!(rep.points_expired, 0);
    assert_clean(&db);
}

#[test]
fn reversal_example() {
    let (_d, db) = open_temp();
    db.points("ann", "e", T0, &PointsOp::earn(100, "")).unwrap();
    db.points("ann", "r", T0, &PointsOp::redeem(60, ""))
        .unwrap();
    let out = db
        .points("ann", "x", T0, &PointsOp::Reverse { txn: "e".into() })
        .unwrap();
    assert_eq!((out.amount, out.shortfall, out.balance), (-40, 60, 0));
    assert_clean(&db);
}
