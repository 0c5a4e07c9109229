//! Earning rules (SPEC §4): a rule credit is written in the same atomic
//! batch as the event that earns it, follows the event's dedup, respects
//! daily caps per local day, expires as configured and can be reversed.

mod common;
use common::*;
use stickydb::ledger::{EarnRule, EntryKind, LedgerSettings, RulePoints};
use stickydb::{Db, Error, Event, InputError, PointsOp, RecordOutcome};

fn settings() -> LedgerSettings {
    LedgerSettings::default().rules(vec![
        EarnRule {
            kind: "purchase".into(),
            points: RulePoints::PerAmount {
                points: 1,
                per_minor: 100,
            },
            daily_cap_points: None,
            expires_after_days: Some(365),
        },
        EarnRule {
            kind: "sign_in".into(),
            points: RulePoints::Fixed(10),
            daily_cap_points: Some(25),
            expires_after_days: None,
        },
    ])
}

fn store() -> (tempfile::TempDir, Db) {
    let (dir, db) = open_temp();
    db.set_ledger_settings(settings()).unwrap();
    (dir, db)
}

fn balance(db: &Db, user: &str) -> i64 {
    db.account(user).unwrap().map_or(0, |a| a.balance)
}

#[test]
fn purchase_earns_per_currency_unit_in_the_events_batch() {
    let (_d, db) = store();
    let out = db
        .record(
            &Event::new("ann", "purchase", T0)
                .with_amount(12_345)
                .with_id("o1"),
        )
        .unwrap();
    assert!(matches!(out, RecordOutcome::Recorded { .. }));
    assert_eq!(balance(&db, "ann"), 123, "floor(12345 / 100)");
    let lots = db.lots("ann").unwrap();
    assert_eq!(lots[0].expires_at_ms, Some(T0 + 365 * DAY));
    let e = &db.ledger("ann", i64::MIN, i64::MAX, 10).unwrap()[0];
    assert_eq!((e.kind, e.at_ms, e.rule), (EntryKind::Earn, T0, Some(0)));
    // the same event again is a duplicate and earns nothing
    db.record(
        &Event::new("ann", "purchase", T0)
            .with_amount(12_345)
            .with_id("o1"),
    )
    .unwrap();
    assert_eq!(balance(&db, "ann"), 123);
    // a purchase without an amount earns nothing; kinds without a rule neither
    db.record(&Event::new("ann", "purchase", T0 + 1)).unwrap();
    db.record(&Event::new("ann", "view", T0 + 2)).unwrap();
    assert_eq!(balance(&db, "ann"), 123);
    assert_clean(&db);
}

#[test]
fn a_rejected_batch_earns_nothing() {
    let (_d, db) = store();
    let bad = [
        Event::new("ann", "purchase", T0).with_amount(10_000),
        Event::new("", "sign_in", T0),
    ];
    let before = db.raw_dump().unwrap();
    assert!(matches!(db.record_batch(&bad), Err(Error::Input(_))));
    assert_eq!(before, db.raw_dump().unwrap());
    assert_eq!(db.user_id("ann").unwrap(), None);
}

#[test]
fn daily_cap_counts_per_local_day_and_rule() {
    let (_d, db) = store();
    let sign_ins: Vec<Event> = [0, 1, 2, 3]
        .iter()
        .map(|h| Event::new("bob", "sign_in", T0 + h * 3_600_000))
        .collect();
    db.record_batch(&sign_ins[..2]).unwrap();
    db.record_batch(&sign_ins[2..]).unwrap();
    assert_eq!(balance(&db, "bob"), 25, "10 + 10 + 5 (cap), then nothing");
    // a late sign-in on an earlier day has its own cap
    db.record(&Event::new("bob", "sign_in", T0 - DAY)).unwrap();
    db.record(&Event::new("bob", "sign_in", T0 + DAY)).unwrap();
    assert_eq!(balance(&db, "bob"), 45);
    assert_clean(&db);
}

#[test]
fn rule_credits_are_reversible_and_their_ids_reserved() {
    let (_d, db) = store();
    let out = db
        .record(&Event::new("cid", "purchase", T0).with_amount(5_000))
        .unwrap();
    let RecordOutcome::Recorded { seq, .. } = out else {
        panic!("{out:?}")
    };
    let rule_txn = format!("event:{seq}:0");
    let rev = db
        .points("cid", "undo", T0 + 1, &PointsOp::Reverse { txn: rule_txn })
        .unwrap();
    assert_eq!((rev.amount, rev.balance, rev.shortfall), (-50, 0, 0));
    // callers cannot mint ids in the rule space
    let err = db
        .points("cid", "event:99:0", T0, &PointsOp::earn(1, ""))
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Input(InputError {
                field: "txn_id",
                ..
            })
        ),
        "{err}"
    );
    assert_clean(&db);
}

#[test]
fn settings_are_validated_and_persisted() {
    let (dir, db) = store();
    let mut bad = settings();
    bad.rules[1].points = RulePoints::Fixed(0);
    let err = db.set_ledger_settings(bad).unwrap_err();
    match err {
        Error::Input(InputError {
            index: Some(1),
            field: "rule.points",
            ..
        }) => {}
        other => panic!("{other:?}"),
    }
    drop(db);
    assert_eq!(reopen(&dir).ledger_settings(), settings());
}
