//! Write transactions (docs/embedding.md): random transactions mixing
//! events, profile updates and points operations over shared users, with
//! refusals planted at random positions, against a model that applies a
//! transaction wholly or not at all. A refused transaction leaves the store
//! byte-identical; verify stays clean.

mod common;
use common::*;

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use stickydb::{
    AttrValue, Db, Error, Event, LedgerError, PointsOp, ProfileUpdate, Sensitive, TxError,
};

const USERS: usize = 4;

#[derive(Debug, Clone)]
enum Op {
    Event {
        user: usize,
        day: i64,
        id: Option<u8>,
    },
    Earn {
        user: usize,
        points: i64,
    },
    Redeem {
        user: usize,
        points: i64,
    },
    Set {
        user: usize,
        attr: u8,
        value: i64,
    },
    /// An event with an empty kind: a bad field.
    BadEvent {
        user: usize,
    },
    /// A payload under a transaction id committed before.
    Conflict {
        user: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let user = 0..USERS;
    prop_oneof![
        4 => (user.clone(), 0..5i64, proptest::option::of(0..6u8))
            .prop_map(|(user, day, id)| Op::Event { user, day, id }),
        3 => (user.clone(), 1..50i64).prop_map(|(user, points)| Op::Earn { user, points }),
        3 => (user.clone(), 1..80i64).prop_map(|(user, points)| Op::Redeem { user, points }),
        3 => (user.clone(), 0..3u8, 0..9i64).prop_map(|(user, attr, value)| Op::Set { user, attr, value }),
        1 => user.clone().prop_map(|user| Op::BadEvent { user }),
        1 => user.prop_map(|user| Op::Conflict { user }),
    ]
}

fn name(u: usize) -> String {
    format!("u{u}")
}

/// What the store should hold.
#[derive(Debug, Clone, Default)]
struct Model {
    exists: BTreeSet<usize>,
    balance: BTreeMap<usize, i64>,
    attrs: BTreeMap<usize, BTreeMap<String, i64>>,
    /// Event ids per user; events without an id counted apart.
    ids: BTreeMap<usize, BTreeSet<u8>>,
    anonymous: BTreeMap<usize, u64>,
    /// Committed transaction ids, by account (ids are per account).
    txns: Vec<(usize, String)>,
}

impl Model {
    /// Applies `ops` to a copy; `None` when a part is refused.
    fn apply(&self, ops: &[(Op, String)]) -> Option<Model> {
        let mut m = self.clone();
        for (op, txn) in ops {
            match op {
                Op::Event { user, id, .. } => {
                    m.exists.insert(*user);
                    match id {
                        Some(id) => {
                            m.ids.entry(*user).or_default().insert(*id);
                        }
                        None => *m.anonymous.entry(*user).or_default() += 1,
                    }
                }
                Op::Earn { user, points } => {
                    m.exists.insert(*user);
                    *m.balance.entry(*user).or_default() += points;
                    m.txns.push((*user, txn.clone()));
                }
                Op::Redeem { user, points } => {
                    if !m.exists.contains(user)
                        || m.balance.get(user).copied().unwrap_or(0) < *points
                    {
                        return None;
                    }
                    *m.balance.entry(*user).or_default() -= points;
                    m.txns.push((*user, txn.clone()));
                }
                Op::Set { user, attr, value } => {
                    m.exists.insert(*user);
                    m.attrs
                        .entry(*user)
                        .or_default()
                        .insert(format!("a{attr}"), *value);
                }
                Op::BadEvent { .. } => return None,
                // (planted only when a committed id exists)
                Op::Conflict { .. } => return None,
            }
        }
        Some(m)
    }
}

/// Runs `ops` as one transaction.
fn run(db: &Db, ops: &[(Op, String)], t0: i64) -> stickydb::Result<()> {
    db.write(|tx| {
        for (i, (op, txn)) in ops.iter().enumerate() {
            let at = t0 + i as i64;
            match op {
                Op::Event { user, day, id } => {
                    let mut e = Event::new(name(*user), "view", T0 + day * DAY + i as i64);
                    if let Some(id) = id {
                        e = e.with_id(format!("e{id}"));
                    }
                    tx.record(&e)?;
                }
                Op::Earn { user, points } => {
                    tx.points(&name(*user), txn, at, &PointsOp::earn(*points, "earn"))?;
                }
                Op::Redeem { user, points } => {
                    tx.points(&name(*user), txn, at, &PointsOp::redeem(*points, "redeem"))?;
                }
                Op::Set { user, attr, value } => {
                    tx.update_profile(
                        &name(*user),
                        &ProfileUpdate::new().set(format!("a{attr}"), *value),
                    )?;
                }
                Op::BadEvent { user } => {
                    tx.record(&Event::new(name(*user), "", T0))?;
                }
                Op::Conflict { user } => {
                    // another payload under a committed id
                    tx.points(&name(*user), txn, at, &PointsOp::earn(999_999, "other"))?;
                }
            }
        }
        Ok(())
    })
}

fn check(db: &Db, m: &Model) -> Result<(), TestCaseError> {
    for u in 0..USERS {
        let n = name(u);
        let exists = db.user_id(&n).unwrap().is_some();
        prop_assert_eq!(exists, m.exists.contains(&u), "{} exists", n);
        if !exists {
            continue;
        }
        let balance = db.account(&n).unwrap().map(|a| a.balance);
        prop_assert_eq!(balance, m.balance.get(&u).copied(), "{} balance", n);
        let attrs: BTreeMap<String, i64> = db
            .profile(&n, Sensitive::Include)
            .unwrap()
            .unwrap()
            .attributes
            .into_iter()
            .map(|(k, v)| match v {
                AttrValue::Int(i) => (k, i),
                other => panic!("{other:?}"),
            })
            .collect();
        prop_assert_eq!(
            &attrs,
            &m.attrs.get(&u).cloned().unwrap_or_default(),
            "{} attrs",
            n
        );
        let events = db.newest(&n, 1_000).unwrap().len() as u64;
        let expected =
            m.ids.get(&u).map_or(0, |s| s.len() as u64) + m.anonymous.get(&u).copied().unwrap_or(0);
        prop_assert_eq!(events, expected, "{} events", n);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn a_transaction_is_applied_wholly_or_not_at_all(
        txs in proptest::collection::vec(proptest::collection::vec(op(), 1..7), 1..14)
    ) {
        let (_dir, db) = open_temp();
        let mut model = Model::default();
        let mut fresh = 0u64;
        for (k, ops) in txs.iter().enumerate() {
            // Transaction ids: fresh ones, but a planted conflict reuses a
            // committed one (or, with none yet, becomes an overdraw).
            let ops: Vec<(Op, String)> = ops
                .iter()
                .map(|op| match op {
                    Op::Conflict { user } => match model.txns.iter().find(|(u, _)| u == user) {
                        Some((_, t)) => (op.clone(), t.clone()),
                        None => (Op::Redeem { user: *user, points: 1_000_000 }, "none".into()),
                    },
                    _ => {
                        fresh += 1;
                        (op.clone(), format!("t{fresh}"))
                    }
                })
                .collect();
            let before = db.raw_dump().unwrap();
            let out = run(&db, &ops, T0 + 100 * DAY + k as i64 * 1_000);
            match model.apply(&ops) {
                Some(next) => {
                    prop_assert!(out.is_ok(), "tx {} refused: {:?} ({:?})", k, out, ops);
                    model = next;
                }
                None => {
                    let e = out.expect_err("a planted refusal commits nothing");
                    prop_assert!(e.is_refusal(), "{e}");
                    prop_assert!(db.raw_dump().unwrap() == before, "tx {} wrote after {}", k, e);
                }
            }
            check(&db, &model)?;
        }
        assert_clean(&db);
    }
}

#[test]
fn a_checkout_redeems_points_its_purchase_earned_in_the_same_transaction() {
    let (_dir, db) = open_temp();
    db.set_ledger_settings(stickydb::LedgerSettings::default().rules(sample_earn_rules()))
        .unwrap();
    let t = T0 + DAY;
    // the purchase's rule credit is visible to the redemption after it
    let out = db
        .write(|tx| {
            tx.record(
                &Event::new("alice", "purchase", t)
                    .with_id("o1")
                    .with_amount(10_000),
            )?;
            let earned = db_free_balance(tx, t)?;
            tx.points("alice", "redeem-o1", t, &PointsOp::redeem(earned, "o1"))
        })
        .unwrap();
    assert_eq!(out.balance, 0);
    assert_eq!(db.account("alice").unwrap().unwrap().balance, 0);
    assert_clean(&db);
}

/// Earns nothing and reads the balance the transaction sees so far (a
/// zero-point adjustment is refused, so an earn of 1 then a redeem of 1).
fn db_free_balance(tx: &mut stickydb::Transaction<'_>, t: i64) -> stickydb::Result<i64> {
    let probe = tx.points("alice", "probe-earn", t, &PointsOp::earn(1, "probe"))?;
    tx.points("alice", "probe-redeem", t, &PointsOp::redeem(1, "probe"))?;
    Ok(probe.balance - 1)
}

#[test]
fn a_failed_call_fails_the_transaction_even_when_the_closure_goes_on() {
    let (_dir, db) = open_temp();
    db.points("bob", "t0", T0, &PointsOp::earn(10, "seed"))
        .unwrap();
    let before = db.raw_dump().unwrap();
    let out = db.write(|tx| {
        tx.record(&Event::new("bob", "purchase", T0 + 1).with_amount(500))?;
        // the caller swallows the refusal...
        let refused = tx.points("bob", "t1", T0 + 1, &PointsOp::redeem(11, "too much"));
        assert!(matches!(
            refused,
            Err(Error::Ledger(LedgerError::InsufficientPoints {
                requested: 11,
                available: 10
            }))
        ));
        // ...and later calls are refused too
        assert!(tx
            .update_profile("bob", &ProfileUpdate::new().set("x", 1i64))
            .is_err());
        Ok(())
    });
    assert!(
        matches!(
            out,
            Err(Error::Transaction(TxError::PartFailed {
                part: 1,
                op: "points"
            }))
        ),
        "{out:?}"
    );
    assert_eq!(db.raw_dump().unwrap(), before);
}

#[test]
fn calls_of_one_transaction_see_each_other_and_later_updates_win() {
    let (_dir, db) = open_temp();
    let count = db
        .write(|tx| {
            tx.update_profile(
                "carol",
                &ProfileUpdate::new().set("tier", "a").tag(
                    "t",
                    stickydb::TagSource::Manual,
                    T0,
                    Some(T0 + DAY),
                ),
            )?;
            tx.update_profile(
                "carol",
                &ProfileUpdate::new().set("tier", "b").tag(
                    "t",
                    stickydb::TagSource::Manual,
                    T0,
                    Some(T0 + 2 * DAY),
                ),
            )?;
            tx.points("carol", "c1", T0, &PointsOp::earn(30, "a"))?;
            tx.points("carol", "c2", T0, &PointsOp::redeem(30, "b"))?;
            // one event id twice in one transaction is one event
            tx.record(&Event::new("carol", "view", T0).with_id("v"))?;
            let again = tx.record(&Event::new("carol", "view", T0).with_id("v"))?;
            assert_eq!(again, stickydb::RecordOutcome::Duplicate);
            Ok(tx
                .record_batch(&[
                    Event::new("dave", "view", T0),
                    Event::new("carol", "view", T0 + 5),
                ])?
                .len())
        })
        .unwrap();
    assert_eq!(count, 2);
    let p = db.profile("carol", Sensitive::Include).unwrap().unwrap();
    assert_eq!(p.attributes["tier"], AttrValue::Str("b".into()));
    assert_eq!(p.tags["t"].expires_at_ms, Some(T0 + 2 * DAY));
    assert_eq!(db.account("carol").unwrap().unwrap().balance, 0);
    assert_eq!(db.newest("carol", 10).unwrap().len(), 2);
    // the tag's expiry index holds the later expiry only
    assert_eq!(db.purge_expired_tags(T0 + DAY + 1).unwrap(), 0);
    assert_clean(&db);
}

#[test]
fn a_merge_composes_with_the_calls_after_it() {
    let (_dir, db) = open_temp();
    db.set_identity_settings(stickydb::IdentitySettings::anonymous(["anon:"]))
        .unwrap();
    db.record(&Event::new("anon:1", "view", T0)).unwrap();
    db.record(&Event::new("member", "view", T0 + DAY)).unwrap();
    db.write(|tx| {
        let out = tx.merge("anon:1", "member", "m1", stickydb::MergeOptions::default())?;
        assert_eq!(out.events_moved, 1);
        // the alias takes later calls within the transaction
        tx.record(&Event::new("anon:1", "purchase", T0 + 2 * DAY).with_amount(100))?;
        tx.points("anon:1", "p1", T0 + 2 * DAY, &PointsOp::earn(5, "x"))?;
        Ok(())
    })
    .unwrap();
    assert_eq!(db.newest("member", 10).unwrap().len(), 3);
    assert_eq!(db.account("member").unwrap().unwrap().balance, 5);
    // a merge after another call on its users is refused, nothing written
    let before = db.raw_dump().unwrap();
    db.record(&Event::new("anon:2", "view", T0)).unwrap();
    let before2 = db.raw_dump().unwrap();
    assert_ne!(before, before2);
    let out = db.write(|tx| {
        tx.record(&Event::new("anon:2", "view", T0 + 1))?;
        tx.merge("anon:2", "member", "m2", stickydb::MergeOptions::default())
    });
    assert!(
        matches!(out, Err(Error::Transaction(TxError::MergeNotFirst { .. }))),
        "{out:?}"
    );
    assert_eq!(db.raw_dump().unwrap(), before2);
    assert_clean(&db);
}

#[test]
fn a_transaction_over_many_users_commits_in_few_rounds() {
    let (_dir, db) = open_temp();
    let rounds = std::cell::Cell::new(0);
    db.write(|tx| {
        rounds.set(rounds.get() + 1);
        for u in 0..40 {
            tx.points(
                &format!("m{u}"),
                "bonus",
                T0,
                &PointsOp::earn(u + 1, "bonus"),
            )?;
        }
        Ok(())
    })
    .unwrap();
    // free stripes are taken as the calls name them: no round per user
    assert!(rounds.get() <= 2, "{} rounds", rounds.get());
    assert_eq!(db.account("m39").unwrap().unwrap().balance, 40);
    assert_clean(&db);
}

#[test]
fn the_closure_may_read_through_the_db_but_not_write_through_it() {
    let (_dir, db) = open_temp();
    db.record(&Event::new("ann", "view", T0)).unwrap();
    let day = db.local_day(T0);
    let dau = db
        .write(|tx| {
            tx.record(&Event::new("ben", "view", T0 + 1))?;
            // reads see the store as committed, not the transaction
            let dau = db.metrics().active(None, day, day, None)?[0].dau;
            assert_eq!(db.user_id("ben")?, None);
            // a write through the `Db` would wait for this transaction's locks
            let nested = db.record(&Event::new("cid", "view", T0));
            assert!(
                matches!(nested, Err(Error::Transaction(TxError::Nested))),
                "{nested:?}"
            );
            Ok(dau)
        })
        .unwrap();
    assert_eq!(dau, 1);
    assert!(db.user_id("ben").unwrap().is_some());
    assert_eq!(db.user_id("cid").unwrap(), None);
    assert_eq!(db.metrics().active(None, day, day, None).unwrap()[0].dau, 2);
}

#[test]
fn a_merge_in_a_transaction_follows_every_name_of_its_users() {
    let (_dir, db) = open_temp();
    db.set_identity_settings(stickydb::IdentitySettings::anonymous(["anon:"]))
        .unwrap();
    for u in ["anon:a", "anon:f", "member", "other"] {
        db.record(&Event::new(u, "view", T0)).unwrap();
    }
    // anon:a is an older alias of anon:f
    db.merge("anon:a", "anon:f", "m0", stickydb::MergeOptions::default())
        .unwrap();
    db.merge(
        "other-alias",
        "other",
        "m00",
        stickydb::MergeOptions::forced(),
    )
    .unwrap();
    let before = db.raw_dump().unwrap();
    // a call on `from` through its older alias, then the merge: refused
    let out = db.write(|tx| {
        tx.record(&Event::new("anon:a", "view", T0 + 1))?;
        tx.merge("anon:f", "member", "m1", stickydb::MergeOptions::default())
    });
    assert!(
        matches!(out, Err(Error::Transaction(TxError::MergeNotFirst { .. }))),
        "{out:?}"
    );
    // a call on `into` through its alias, then the merge: refused
    let out = db.write(|tx| {
        tx.update_profile("other-alias", &ProfileUpdate::new().set("plan", "gold"))?;
        tx.merge("anon:f", "other", "m1", stickydb::MergeOptions::default())
    });
    assert!(
        matches!(out, Err(Error::Transaction(TxError::MergeNotFirst { .. }))),
        "{out:?}"
    );
    assert_eq!(db.raw_dump().unwrap(), before);
    // after the merge, the older alias names `into` within the transaction
    db.write(|tx| {
        tx.merge("anon:f", "member", "m1", stickydb::MergeOptions::default())?;
        tx.record(&Event::new("anon:a", "purchase", T0 + 2).with_amount(10))?;
        tx.points("anon:a", "p", T0 + 2, &PointsOp::earn(3, "x"))?;
        tx.update_profile("anon:a", &ProfileUpdate::new().set("plan", "silver"))
    })
    .unwrap();
    assert_eq!(db.newest("member", 10).unwrap().len(), 4);
    assert_eq!(db.account("member").unwrap().unwrap().balance, 3);
    let p = db.profile("member", Sensitive::Include).unwrap().unwrap();
    assert_eq!(p.attributes["plan"], AttrValue::Str("silver".into()));
    assert_eq!(db.user_count().unwrap(), 2);
    assert_clean(&db);
}

#[test]
fn earning_rules_changed_while_a_closure_runs_are_the_ones_its_commit_uses() {
    let (_dir, db) = open_temp();
    let per = |per_minor: i64| {
        stickydb::LedgerSettings::default().rules(vec![stickydb::ledger::EarnRule {
            kind: "purchase".into(),
            points: stickydb::ledger::RulePoints::PerAmount {
                points: 1,
                per_minor,
            },
            daily_cap_points: None,
            expires_after_days: None,
        }])
    };
    db.set_ledger_settings(per(100)).unwrap();
    let runs = std::cell::Cell::new(0);
    db.write(|tx| {
        runs.set(runs.get() + 1);
        if runs.get() == 1 {
            // another thread changes the rules before this transaction
            // holds any stripe (the change holds them all)
            std::thread::scope(|s| {
                s.spawn(|| db.set_ledger_settings(per(10)).unwrap());
            });
        }
        tx.record(&Event::new("alice", "purchase", T0).with_amount(1_000))?;
        Ok(())
    })
    .unwrap();
    assert_eq!(
        runs.get(),
        2,
        "the commit saw the rules move and ran the closure again"
    );
    // 1 000 minor at 1 point per 10: the rules in force at the commit
    assert_eq!(db.account("alice").unwrap().unwrap().balance, 100);
    assert_clean(&db);
}

#[test]
fn a_closure_writes_only_through_its_transaction() {
    let (_a, db) = open_temp();
    let (_b, other) = open_temp();
    db.write(|tx| {
        tx.record(&Event::new("ann", "view", T0))?;
        assert!(matches!(
            db.erase_user("ann"),
            Err(Error::Transaction(TxError::Nested))
        ));
        assert!(matches!(
            db.advance(T0),
            Err(Error::Transaction(TxError::Nested))
        ));
        // another store's too: two closures writing each other's store
        // would wait on each other
        let elsewhere = other.record(&Event::new("ann", "view", T0));
        assert!(matches!(
            elsewhere,
            Err(Error::Transaction(TxError::Nested))
        ));
        Ok(())
    })
    .unwrap();
    assert_eq!(db.newest("ann", 10).unwrap().len(), 1);
    other.record(&Event::new("ann", "view", T0)).unwrap();
}
