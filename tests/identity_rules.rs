//! Identity merge rules (SPEC §2, docs/identity.md): refusals are typed and
//! write nothing; aliases take later writes; chains resolve; profiles follow
//! the documented policy; erasing a merged user erases both histories.

mod common;
use common::*;
use stickydb::{
    AttrValue, Db, Error, Event, IdentitySettings, MergeError, MergeOptions, PointsOp,
    ProfileUpdate, Sensitive, TagSource,
};

fn store() -> (tempfile::TempDir, Db) {
    let (dir, db) = open_temp();
    db.set_identity_settings(IdentitySettings::anonymous(["anon:", "device-"]))
        .unwrap();
    for (u, day) in [
        ("anon:1", 0),
        ("anon:2", 1),
        ("m1", 2),
        ("m2", 3),
        ("m3", 4),
    ] {
        db.record(&Event::new(u, "view", T0 + day * DAY).with_id(format!("{u}-first")))
            .unwrap();
    }
    (dir, db)
}

fn merge(db: &Db, from: &str, into: &str, id: &str) -> stickydb::Result<stickydb::MergeOutcome> {
    db.merge(from, into, id, MergeOptions::default())
}

#[test]
fn every_refusal_is_typed_and_writes_nothing() {
    let (_dir, db) = store();
    merge(&db, "anon:1", "m1", "first").unwrap();
    let cases: Vec<(stickydb::Result<stickydb::MergeOutcome>, &str)> = vec![
        (merge(&db, "m2", "m2", "x"), "self"),
        // (an unknown `from` or `into` is no refusal: identify may come
        // before the events — tests/identify_first.rs)
        // m1 ← anon:1: merging m1 into its own alias closes a cycle
        (
            db.merge("m1", "anon:1", "x", MergeOptions::forced()),
            "cycle",
        ),
        (merge(&db, "anon:1", "m2", "x"), "already merged"),
        (merge(&db, "m2", "m3", "x"), "both identified"),
        (merge(&db, "anon:2", "m3", "first"), "id reused"),
        (merge(&db, "", "m3", "x"), "empty from"),
        (merge(&db, "anon:2", "m3", ""), "empty id"),
        (merge(&db, "anon:2", "m3", &"i".repeat(129)), "long id"),
    ];
    let mut seen = Vec::new();
    for (result, what) in cases {
        let e = result.expect_err(what);
        let ok = match what {
            "self" => matches!(e, Error::Merge(MergeError::SelfMerge { .. })),
            "cycle" => matches!(e, Error::Merge(MergeError::Cycle { .. })),
            "already merged" => matches!(
                &e,
                Error::Merge(MergeError::AlreadyMerged { into, .. }) if into == "m1"
            ),
            "both identified" => matches!(e, Error::Merge(MergeError::BothIdentified { .. })),
            "id reused" => matches!(
                &e,
                Error::Merge(MergeError::IdConflict { from, .. }) if from == "anon:1"
            ),
            "empty from" => matches!(&e, Error::Input(i) if i.field == "from"),
            _ => matches!(&e, Error::Input(i) if i.field == "merge_id"),
        };
        assert!(ok, "{what}: {e}");
        seen.push(what);
    }
    assert_eq!(seen.len(), 8);
    // both used one points transaction id: refused whole
    db.points("anon:2", "t1", T0, &PointsOp::earn(5, "x"))
        .unwrap();
    db.points("m3", "t1", T0, &PointsOp::earn(7, "y")).unwrap();
    let before_ledger = db.raw_dump().unwrap();
    assert!(matches!(
        merge(&db, "anon:2", "m3", "y"),
        Err(Error::Merge(MergeError::TxnClash { txn_id })) if txn_id == "t1"
    ));
    assert_eq!(db.raw_dump().unwrap(), before_ledger);
    assert_clean(&db);
}

#[test]
fn refusals_leave_the_store_byte_identical() {
    let (_dir, db) = store();
    merge(&db, "anon:1", "m1", "first").unwrap();
    let before = db.raw_dump().unwrap();
    type Expect = fn(&Error) -> bool;
    let cases: [(stickydb::Result<stickydb::MergeOutcome>, Expect); 6] = [
        (
            merge(&db, "nobody", "m2", "x"),
            |e| matches!(e, Error::Merge(MergeError::BothIdentified { from, .. }) if from == "nobody"),
        ),
        (
            merge(&db, "m2", "m2", "x"),
            |e| matches!(e, Error::Merge(MergeError::SelfMerge { user }) if user == "m2"),
        ),
        (
            db.merge("m1", "anon:1", "x", MergeOptions::forced()),
            |e| matches!(e, Error::Merge(MergeError::Cycle { from, into }) if from == "m1" && into == "anon:1"),
        ),
        (
            merge(&db, "anon:1", "m2", "x"),
            |e| matches!(e, Error::Merge(MergeError::AlreadyMerged { from, into }) if from == "anon:1" && into == "m1"),
        ),
        (
            merge(&db, "m2", "m3", "x"),
            |e| matches!(e, Error::Merge(MergeError::BothIdentified { from, into }) if from == "m2" && into == "m3"),
        ),
        (
            merge(&db, "anon:2", "m3", "first"),
            |e| matches!(e, Error::Merge(MergeError::IdConflict { merge_id, .. }) if merge_id == "first"),
        ),
    ];
    for (r, expected) in cases {
        let e = r.unwrap_err();
        assert!(expected(&e), "{e}");
        assert_eq!(db.raw_dump().unwrap(), before);
    }
}

#[test]
fn a_repeated_merge_id_is_answered_not_redone() {
    let (_dir, db) = store();
    let first = merge(&db, "anon:1", "m1", "s1").unwrap();
    assert!(!first.replayed);
    let before = db.raw_dump().unwrap();
    let again = merge(&db, "anon:1", "m1", "s1").unwrap();
    assert!(again.replayed);
    assert_eq!(again.events_moved, first.events_moved);
    assert_eq!(db.raw_dump().unwrap(), before);
    assert_eq!(db.merges("m1").unwrap(), vec![first.clone()]);
    assert_eq!(db.merges("anon:1").unwrap(), vec![first]);
}

#[test]
fn identified_ids_merge_only_when_forced() {
    let (_dir, db) = store();
    assert!(matches!(
        merge(&db, "m2", "m3", "a"),
        Err(Error::Merge(MergeError::BothIdentified { ref from, ref into })) if from == "m2" && into == "m3"
    ));
    let out = db.merge("m2", "m3", "a", MergeOptions::forced()).unwrap();
    assert_eq!(out.events_moved, 1);
    // an anonymous into is enough, either side
    merge(&db, "m1", "anon:2", "b").unwrap();
    assert_eq!(db.user_count().unwrap(), 3);
    assert_clean(&db);
}

#[test]
fn aliases_take_later_writes_and_chains_resolve() {
    let (_dir, db) = store();
    // anon:1 → anon:2, then anon:2 → m1: anon:1 resolves to m1
    merge(&db, "anon:1", "anon:2", "a").unwrap();
    let out = merge(&db, "anon:2", "m1", "b").unwrap();
    assert_eq!(out.aliases_moved, 1);
    let m1 = db.user_id("m1").unwrap();
    assert_eq!(db.user_id("anon:1").unwrap(), m1);
    assert_eq!(db.user_id("anon:2").unwrap(), m1);
    // merging into an alias resolves to its target
    db.record(&Event::new("device-9", "view", T0)).unwrap();
    let out = merge(&db, "device-9", "anon:1", "c").unwrap();
    assert_eq!(out.into, "m1");
    // later events, profile updates and points naming an alias go to m1
    db.record(&Event::new("anon:1", "purchase", T0 + 9 * DAY).with_amount(500))
        .unwrap();
    db.update_profile("anon:2", &ProfileUpdate::new().set("plan", "gold"))
        .unwrap();
    db.points("device-9", "p1", T0, &PointsOp::earn(7, "welcome"))
        .unwrap();
    assert_eq!(db.account("m1").unwrap().unwrap().balance, 7);
    assert_eq!(
        db.profile("m1", Sensitive::Exclude)
            .unwrap()
            .unwrap()
            .attributes["plan"],
        AttrValue::Str("gold".into())
    );
    let timeline = db.newest("anon:1", 100).unwrap();
    assert_eq!(
        timeline.len(),
        5,
        "m1's, both anons', device-9's and the purchase"
    );
    assert!(timeline.iter().all(|e| e.event.user == "m1"));
    // an event id anon:1 used before the merge is a duplicate under m1 now
    let repeat = Event::new("anon:1", "view", T0).with_id("anon:1-first");
    assert_eq!(
        db.record(&repeat).unwrap(),
        stickydb::RecordOutcome::Duplicate
    );
    let mut merges: Vec<String> = db
        .merges("m1")
        .unwrap()
        .into_iter()
        .map(|m| m.merge_id)
        .collect();
    merges.sort();
    assert_eq!(merges, ["a", "b", "c"]);
    assert_eq!(db.user_count().unwrap(), 3);
    assert_clean(&db);
    // and after a reopen
    let dir = _dir;
    drop(db);
    let db = reopen(&dir);
    assert_eq!(db.user_id("anon:1").unwrap(), m1);
    // the retired ids of the merged users are never handed out again
    db.record(&Event::new("newcomer", "view", T0)).unwrap();
    let newcomer = db.user_id("newcomer").unwrap().unwrap();
    assert!(newcomer >= 6, "got id {newcomer}: a retired id reused");
    assert_clean(&db);
}

#[test]
fn profiles_follow_the_merge_policy() {
    let (_dir, db) = store();
    db.update_profile(
        "anon:1",
        &ProfileUpdate::new()
            .set("region", "north")
            .set("lang", "de")
            .set_sensitive("phone", "+49 1")
            .tag("browsed-shoes", TagSource::Rule, T0 + 5, None)
            .tag("vip", TagSource::Rule, T0 + 9, None),
    )
    .unwrap();
    db.update_profile(
        "m1",
        &ProfileUpdate::new()
            .set("region", "south")
            .set("phone", "+49 2")
            .tag("vip", TagSource::Manual, T0 + 1, Some(T0 + DAY)),
    )
    .unwrap();
    merge(&db, "anon:1", "m1", "a").unwrap();
    let p = db.profile("m1", Sensitive::Include).unwrap().unwrap();
    // into's value stays; from's fills what into lacks
    assert_eq!(p.attributes["region"], AttrValue::Str("south".into()));
    assert_eq!(p.attributes["lang"], AttrValue::Str("de".into()));
    // into's phone, now sensitive because from's was
    assert_eq!(p.attributes["phone"], AttrValue::Str("+49 2".into()));
    let hidden = db.profile("m1", Sensitive::Exclude).unwrap().unwrap();
    assert_eq!(hidden.withheld, vec!["phone".to_owned()]);
    // tags united; the later-updated vip wins (rule, no expiry)
    assert_eq!(p.tags.len(), 2);
    assert_eq!(p.tags["vip"].source, TagSource::Rule);
    assert_eq!(p.tags["vip"].expires_at_ms, None);
    let m1 = db.user_id("m1").unwrap().unwrap();
    let holders = db.users_with_tag("browsed-shoes", None).unwrap();
    assert_eq!(holders.iter().collect::<Vec<_>>(), vec![m1]);
    assert_eq!(
        db.purge_expired_tags(T0 + 2 * DAY).unwrap(),
        0,
        "no stale expiry entry"
    );
    assert_clean(&db);
}

#[test]
fn erasing_a_merged_user_erases_both_histories() {
    let (_dir, db) = store();
    merge(&db, "anon:1", "anon:2", "a").unwrap();
    merge(&db, "anon:2", "m1", "b").unwrap();
    let ids = db.all_users().unwrap().len();
    // named through an alias: the user it resolves to is erased
    assert!(db.erase_user("anon:1").unwrap());
    for u in ["m1", "anon:1", "anon:2"] {
        assert_eq!(db.user_id(u).unwrap(), None, "{u}");
    }
    assert!(db.merges("m1").unwrap().is_empty());
    assert_eq!(db.all_users().unwrap().len(), ids - 1);
    assert_clean(&db);
    // the names are free again: a new visitor under an old alias is new
    db.record(&Event::new("anon:1", "view", T0)).unwrap();
    assert_eq!(db.user_count().unwrap(), 3);
    // and the merge id too
    merge(&db, "anon:1", "m2", "a").unwrap();
    assert_clean(&db);
}

#[test]
fn rule_credits_move_with_their_lots_and_cap_days_are_reported() {
    use stickydb::ledger::LedgerSettings;
    let (_dir, db) = store();
    db.set_ledger_settings(
        LedgerSettings::default().rules(purchase_and_sign_in_rules(10, Some(10))),
    )
    .unwrap();
    // the visitor buys as a guest (50 points, expiring) and signs in on day 3;
    // the member signs in on day 3 too (both used that day's cap)
    db.record_batch(&[
        Event::new("anon:1", "purchase", T0 + DAY)
            .with_amount(5_000)
            .with_id("o1"),
        Event::new("anon:1", "sign_in", T0 + 3 * DAY),
        Event::new("anon:1", "purchase", T0 + 2 * DAY)
            .with_amount(900)
            .with_id("o2"),
    ])
    .unwrap();
    db.record(&Event::new("m1", "sign_in", T0 + 3 * DAY + 5))
        .unwrap();
    // the member got order o2 delivered under its own id too: one order,
    // one credit (9 points) after the merge
    db.record(
        &Event::new("m1", "purchase", T0 + 2 * DAY)
            .with_amount(900)
            .with_id("o2"),
    )
    .unwrap();
    db.points("m1", "welcome", T0, &PointsOp::earn(100, "welcome"))
        .unwrap();
    assert_eq!(db.account("anon:1").unwrap().unwrap().balance, 69);
    let out = merge(&db, "anon:1", "m1", "s1").unwrap();
    assert_eq!((out.points_moved, out.lots_moved), (60, 2));
    assert_eq!(out.duplicate_events, 1);
    let day3 = db.local_day(T0 + 3 * DAY);
    assert_eq!(out.cap_conflicts, vec![(day3, 1)]);
    // 100 welcome + 10 sign-in + 9 for o2 of its own + 60 moved
    let account = db.account("m1").unwrap().unwrap();
    assert_eq!((account.balance, account.held), (179, 0));
    // the moved lot keeps its earn time and expiry
    let lots = db.lots("m1").unwrap();
    let bought = lots
        .iter()
        .find(|l| l.earned_at_ms == T0 + DAY)
        .expect("the guest purchase's lot");
    assert_eq!(
        (bought.remaining, bought.expires_at_ms),
        (50, Some(T0 + 31 * DAY))
    );
    // the merged id's points are the member's: a redeem through the alias
    // draws the soonest-expiring lot first (the moved purchase credit)
    let r = db
        .points(
            "anon:1",
            "pay",
            T0 + 4 * DAY,
            &PointsOp::redeem(40, "coupon"),
        )
        .unwrap();
    assert_eq!(r.lots[0].lot, bought.id);
    assert_eq!(db.account("m1").unwrap().unwrap().balance, 139);
    // expiry treats it as the member's lot
    db.expire_points(T0 + 40 * DAY).unwrap();
    assert_eq!(db.account("m1").unwrap().unwrap().balance, 139 - 10 - 9);
    // the moved sign-in credit is the credit of the moved event, under the
    // event's new number: it can be reversed like any rule credit
    let sign_in = db
        .newest("m1", 100)
        .unwrap()
        .into_iter()
        .find(|e| e.event.kind.as_str() == "sign_in" && e.event.ts_ms == T0 + 3 * DAY)
        .expect("the moved sign-in");
    let undo = PointsOp::Reverse {
        txn: format!("event:{}:1", sign_in.seq),
    };
    let r = db
        .points("m1", "undo-sign-in", T0 + 41 * DAY, &undo)
        .unwrap();
    assert_eq!(r.amount, -10);
    assert_eq!(db.account("m1").unwrap().unwrap().balance, 110);
    assert_clean(&db);
}

#[test]
fn caller_transactions_and_open_holds_move() {
    let (_dir, db) = store();
    let earn = |pts: i64, exp: Option<i64>| PointsOp::Earn {
        points: pts,
        expires_at_ms: exp,
        reason: "promo".into(),
    };
    // the visitor's own ledger: two lots, a redeem, a hold still open, a
    // hold captured
    db.points("anon:1", "a-earn", T0, &earn(100, Some(T0 + 20 * DAY)))
        .unwrap();
    db.points("anon:1", "a-earn2", T0 + 1, &earn(50, None))
        .unwrap();
    db.points("anon:1", "a-redeem", T0 + 2, &PointsOp::redeem(30, "x"))
        .unwrap();
    let hold = PointsOp::Hold {
        points: 40,
        timeout_ms: 30 * DAY,
    };
    db.points("anon:1", "a-hold", T0 + 3, &hold).unwrap();
    let small_hold = PointsOp::Hold {
        points: 5,
        timeout_ms: DAY,
    };
    db.points("anon:1", "a-hold2", T0 + 4, &small_hold).unwrap();
    let capture2 = PointsOp::Capture {
        hold_txn: "a-hold2".into(),
    };
    db.points("anon:1", "a-cap2", T0 + 5, &capture2).unwrap();
    let a = db.account("anon:1").unwrap().unwrap();
    assert_eq!((a.balance, a.held), (115, 40));
    db.points("m1", "m-earn", T0, &earn(10, Some(T0 + 5 * DAY)))
        .unwrap();

    let out = merge(&db, "anon:1", "m1", "s1").unwrap();
    assert_eq!(
        (
            out.points_moved,
            out.lots_moved,
            out.holds_moved,
            out.txns_moved
        ),
        (115, 2, 1, 5)
    );
    let m = db.account("m1").unwrap().unwrap();
    assert_eq!((m.balance, m.held), (125, 40));
    // a retry of the visitor's operations naming it (or the member) replays
    let again = db
        .points("anon:1", "a-redeem", T0 + 9, &PointsOp::redeem(30, "x"))
        .unwrap();
    assert!(again.replayed);
    assert!(
        db.points("m1", "a-earn", T0 + 9, &earn(100, Some(T0 + 20 * DAY)))
            .unwrap()
            .replayed
    );
    // another payload under one of those ids conflicts; a moved operation
    // cannot be reversed (its entries stayed with the visitor's account)
    assert!(matches!(
        db.points("m1", "a-redeem", T0 + 9, &PointsOp::redeem(31, "x")),
        Err(Error::Ledger(stickydb::LedgerError::TxnConflict { .. }))
    ));
    assert!(matches!(
        db.points(
            "m1",
            "undo",
            T0 + 9,
            &PointsOp::Reverse {
                txn: "a-earn".into()
            }
        ),
        Err(Error::Ledger(stickydb::LedgerError::NotReversible { .. }))
    ));
    assert!(matches!(
        db.points(
            "m1",
            "c9",
            T0 + 9,
            &PointsOp::Capture {
                hold_txn: "a-hold2".into()
            }
        ),
        Err(Error::Ledger(stickydb::LedgerError::HoldNotOpen { .. }))
    ));
    // the open hold works on the member, through either name
    let c = db
        .points(
            "anon:1",
            "a-cap",
            T0 + 10,
            &PointsOp::Capture {
                hold_txn: "a-hold".into(),
            },
        )
        .unwrap();
    assert_eq!(c.amount, -40);
    let m = db.account("m1").unwrap().unwrap();
    assert_eq!((m.balance, m.held), (85, 0));
    // draws and expiry follow the lots' own expiries: the member's lot
    // (expiring day 5) first, then the visitor's (day 20), then no expiry
    let r = db
        .points("m1", "m-redeem", T0 + 11, &PointsOp::redeem(20, "y"))
        .unwrap();
    let lots = db.lots("m1").unwrap();
    let expiry_of = |id: u32| lots.iter().find(|l| l.id == id).unwrap().expires_at_ms;
    assert_eq!(expiry_of(r.lots[0].lot), Some(T0 + 5 * DAY));
    assert_eq!(expiry_of(r.lots[1].lot), Some(T0 + 20 * DAY));
    db.expire_points(T0 + 25 * DAY).unwrap();
    // left: the visitor's no-expiry lot, 50 points (its 30-point redeem
    // and the 5-point capture drew the expiring lot first)
    assert_eq!(db.account("m1").unwrap().unwrap().balance, 50);
    assert_clean(&db);
}
