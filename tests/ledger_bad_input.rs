//! Refused points operations (SPEC §4, §5): every one returns a typed error
//! naming what is wrong, and the store is byte-identical afterwards.

mod common;
use common::*;
use stickydb::ledger::{MAX_HOLD_TIMEOUT_MS, MAX_POINTS};
use stickydb::{Db, Error, InputError, LedgerError, Options, PointsOp, Problem};

fn filled() -> (tempfile::TempDir, Db) {
    let (dir, db) = open_temp();
    db.points("ann", "e1", T0, &PointsOp::earn(100, "welcome"))
        .unwrap();
    let exp = PointsOp::Earn {
        points: 50,
        expires_at_ms: Some(T0 + DAY),
        reason: String::new(),
    };
    db.points("ann", "e2", T0, &exp).unwrap();
    let hold = PointsOp::Hold {
        points: 30,
        timeout_ms: 60_000,
    };
    db.points("ann", "h1", T0, &hold).unwrap();
    db.points(
        "ann",
        "c1",
        T0 + 1,
        &PointsOp::Capture {
            hold_txn: "h1".into(),
        },
    )
    .unwrap();
    db.points("ann", "h2", T0, &hold).unwrap();
    db.points("ann", "x1", T0, &PointsOp::Reverse { txn: "c1".into() })
        .unwrap();
    (dir, db)
}

/// Runs `op` and checks it fails as `check` says, changing nothing.
fn refused(db: &Db, user: &str, txn: &str, at: i64, op: PointsOp, check: impl Fn(&Error) -> bool) {
    let before = db.raw_dump().unwrap();
    let err = db.points(user, txn, at, &op).unwrap_err();
    assert!(check(&err), "{txn} {op:?}: unexpected {err:?}");
    assert_eq!(before, db.raw_dump().unwrap(), "{op:?} changed the store");
}

fn input(field: &'static str) -> impl Fn(&Error) -> bool {
    move |e| matches!(e, Error::Input(InputError { field: f, .. }) if *f == field)
}

fn ledger(want: LedgerError) -> impl Fn(&Error) -> bool {
    move |e| matches!(e, Error::Ledger(l) if *l == want)
}

#[test]
fn bad_amounts_texts_and_times_are_input_errors() {
    let (_d, db) = filled();
    let adjust = |points: i64, reason: &str| PointsOp::Adjust {
        points,
        reason: reason.into(),
    };
    let hold = |timeout_ms: i64| PointsOp::Hold {
        points: 1,
        timeout_ms,
    };
    let expired_earn = PointsOp::Earn {
        points: 5,
        expires_at_ms: Some(T0),
        reason: String::new(),
    };
    let long_txn = "t".repeat(129);
    // (user, txn id, at_ms, operation, the field the error must name)
    let mut cases: Vec<(&str, &str, i64, PointsOp, &'static str)> = vec![
        ("ann", "n", T0, adjust(0, "x"), "points"),
        ("ann", "n", T0, adjust(5, ""), "reason"),
        ("ann", "n", T0, PointsOp::earn(5, "x".repeat(300)), "reason"),
        ("ann", "n", T0, hold(0), "timeout_ms"),
        ("ann", "n", T0, hold(MAX_HOLD_TIMEOUT_MS + 1), "timeout_ms"),
        ("ann", "n", T0, expired_earn, "expires_at_ms"),
        ("ann", "n", -1, PointsOp::earn(5, ""), "at_ms"),
        ("", "n", T0, PointsOp::earn(5, ""), "user"),
    ];
    for p in [0, -5, MAX_POINTS + 1] {
        cases.push(("ann", "n", T0, PointsOp::earn(p, ""), "points"));
        cases.push(("ann", "n", T0, PointsOp::redeem(p, ""), "points"));
    }
    for txn in ["", "bad\nid", long_txn.as_str(), "event:1:0"] {
        cases.push(("ann", txn, T0, PointsOp::earn(5, ""), "txn_id"));
    }
    for (user, txn, at, op, field) in cases {
        refused(&db, user, txn, at, op, input(field));
    }
    let err = db
        .points("ann", "", T0, &PointsOp::earn(5, ""))
        .unwrap_err();
    assert!(matches!(
        err,
        Error::Input(InputError {
            problem: Problem::Empty,
            ..
        })
    ));
}

#[test]
fn rule_violations_are_ledger_errors() {
    let (_d, db) = filled();
    // e2 expires first, so it is drawn first: h1 took 30 of it, c1 spent
    // them, h2 took e2's last 20 and 10 of e1, x1 gave e2 its 30 back.
    // Balance 150, held 30: 120 available now; once e2 expires, e1's 90.
    refused(
        &db,
        "ann",
        "n",
        T0 + 2,
        PointsOp::redeem(121, ""),
        ledger(LedgerError::InsufficientPoints {
            requested: 121,
            available: 120,
        }),
    );
    refused(
        &db,
        "ann",
        "n",
        T0 + DAY,
        PointsOp::redeem(91, ""),
        ledger(LedgerError::InsufficientPoints {
            requested: 91,
            available: 90,
        }),
    );
    refused(
        &db,
        "ann",
        "n",
        T0,
        PointsOp::Adjust {
            points: -121,
            reason: "x".into(),
        },
        |e| matches!(e, Error::Ledger(LedgerError::InsufficientPoints { .. })),
    );
    refused(
        &db,
        "ann",
        "e1",
        T0,
        PointsOp::earn(101, "welcome"),
        ledger(LedgerError::TxnConflict {
            txn_id: "e1".into(),
        }),
    );
    refused(
        &db,
        "ann",
        "n",
        T0,
        PointsOp::Reverse { txn: "zz".into() },
        ledger(LedgerError::UnknownTxn {
            txn_id: "zz".into(),
        }),
    );
    refused(
        &db,
        "ann",
        "n",
        T0,
        PointsOp::Reverse { txn: "h2".into() },
        ledger(LedgerError::NotReversible {
            txn_id: "h2".into(),
            op: "hold",
        }),
    );
    refused(
        &db,
        "ann",
        "n",
        T0,
        PointsOp::Reverse { txn: "c1".into() },
        ledger(LedgerError::AlreadyReversed {
            txn_id: "c1".into(),
            by: "x1".into(),
        }),
    );
    refused(
        &db,
        "ann",
        "n",
        T0,
        PointsOp::Capture {
            hold_txn: "e1".into(),
        },
        ledger(LedgerError::NotAHold {
            txn_id: "e1".into(),
        }),
    );
    refused(
        &db,
        "ann",
        "n",
        T0,
        PointsOp::Release {
            hold_txn: "h1".into(),
        },
        ledger(LedgerError::HoldNotOpen {
            txn_id: "h1".into(),
        }),
    );
    refused(
        &db,
        "ann",
        "n",
        T0 + 60_000,
        PointsOp::Capture {
            hold_txn: "h2".into(),
        },
        ledger(LedgerError::HoldTimedOut {
            txn_id: "h2".into(),
            deadline_ms: T0 + 60_000,
            at_ms: T0 + 60_000,
        }),
    );
    refused(&db, "nobody", "n", T0, PointsOp::redeem(1, ""), |e| {
        matches!(e, Error::UnknownUser { .. })
    });
    assert_clean(&db);
}

#[test]
fn a_read_only_store_refuses_every_operation() {
    let (dir, db) = filled();
    drop(db);
    let db = Db::open(
        dir.path(),
        Options::default().create_if_missing(true).read_only(true),
    )
    .unwrap();
    assert!(matches!(
        db.points("ann", "n", T0, &PointsOp::earn(1, "")),
        Err(Error::ReadOnly)
    ));
    assert!(matches!(db.expire_points(T0), Err(Error::ReadOnly)));
    assert_eq!(db.account("ann").unwrap().unwrap().balance, 150);
}
