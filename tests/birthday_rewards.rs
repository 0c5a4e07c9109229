//! Birthday rewards (docs/ledger.md#birthday-rewards): a
//! `reward:birthday:W` rule pays a user's first activity event in the W
//! local days ending on its birthday, once per birthday — the days on which
//! `birthday_within:Wd` holds for it — and moves to a late, earlier event
//! of the same window. Each test ends with `verify` clean.

mod common;

use proptest::prelude::*;
use stickydb::ledger::{EarnRule, RulePoints, Tiers, BIRTHDAY_KIND_PREFIX};
use stickydb::profiles::{AttrValue, ProfileUpdate};
use stickydb::segments::Segment;
use stickydb::{Db, Event, LedgerSettings};

const DAY: i64 = common::DAY;

fn rule(window_days: u32, points: RulePoints) -> EarnRule {
    EarnRule {
        kind: format!("{BIRTHDAY_KIND_PREFIX}{window_days}"),
        points,
        daily_cap_points: None,
        expires_after_days: None,
    }
}

fn set_rules(db: &Db, rules: Vec<EarnRule>) -> stickydb::Result<()> {
    db.set_ledger_settings(LedgerSettings::new(rules, Tiers::default()))
}

/// Midnight UTC starting `date` (the tests' stores keep UTC days).
fn at(date: &str) -> i64 {
    let d = chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").expect("a date");
    d.and_hms_opt(0, 0, 0)
        .expect("midnight")
        .and_utc()
        .timestamp_millis()
}

fn birthday(db: &Db, user: &str, y: i32, m: u32, d: u32) {
    let date = AttrValue::date(y, m, d).expect("a date");
    db.update_profile(user, &ProfileUpdate::new().set("birthday", date))
        .expect("birthday");
}

fn balance(db: &Db, user: &str) -> i64 {
    db.account(user).expect("account").map_or(0, |a| a.balance)
}

/// The ids of `user`'s birthday credits still standing (not reversed).
fn credits(db: &Db, user: &str) -> Vec<(i64, String)> {
    let entries = db.ledger(user, i64::MIN, i64::MAX, 1000).expect("ledger");
    let txns: Vec<(i64, String)> = entries
        .iter()
        .filter_map(|e| Some((e.at_ms, e.txn_id.clone()?)))
        .collect();
    let mut out: Vec<(i64, String)> = txns
        .iter()
        .filter(|(_, t)| t.starts_with("event:first:") && !t.ends_with(":reverse"))
        .filter(|(_, t)| !txns.iter().any(|(_, r)| *r == format!("{t}:reverse")))
        .cloned()
        .collect();
    out.sort();
    out
}

#[test]
fn pays_once_per_birthday_and_moves_to_a_late_earlier_event() {
    let (_dir, db) = common::open_temp();
    set_rules(&db, vec![rule(7, RulePoints::Fixed(200))]).expect("rules");
    birthday(&db, "ann", 1990, 3, 10);
    db.record(&Event::new("ann", "view", at("2024-03-01")))
        .expect("before");
    assert_eq!(balance(&db, "ann"), 0, "before the window");
    db.record(&Event::new("ann", "view", at("2024-03-08") + 5))
        .expect("in");
    db.record(&Event::new("ann", "sign_in", at("2024-03-10") + 5))
        .expect("again");
    assert_eq!(balance(&db, "ann"), 200, "once per birthday");
    assert_eq!(
        credits(&db, "ann"),
        [(at("2024-03-08") + 5, "event:first:0:0:7:2024".into())]
    );
    // a late event on the window's first day takes the reward over
    db.record(&Event::new("ann", "view", at("2024-03-04") + 1))
        .expect("late");
    assert_eq!(balance(&db, "ann"), 200);
    assert_eq!(
        credits(&db, "ann"),
        [(at("2024-03-04") + 1, "event:first:0:1:7:2024".into())]
    );
    // the day after the birthday is not in the window; the next year is
    db.record(&Event::new("ann", "view", at("2024-03-11")))
        .expect("after");
    db.record(&Event::new("ann", "view", at("2025-03-09")))
        .expect("next");
    assert_eq!(balance(&db, "ann"), 400);
    common::assert_clean(&db);
}

#[test]
fn only_activity_pays_and_only_users_with_a_birthday() {
    let (_dir, db) = common::open_temp();
    set_rules(&db, vec![rule(1, RulePoints::Fixed(50))]).expect("rules");
    birthday(&db, "ann", 1990, 3, 10);
    db.record(&Event::new("ann", "contacted", at("2024-03-10") + 9))
        .expect("contacted");
    assert_eq!(balance(&db, "ann"), 0, "a contact is not activity");
    db.update_profile("bob", &ProfileUpdate::new().set("birthday", "1990-03-10"))
        .expect("text");
    db.record(&Event::new("bob", "view", at("2024-03-10") + 9))
        .expect("bob");
    assert_eq!(
        balance(&db, "bob"),
        0,
        "a birthday written as text is not a date"
    );
    db.record(&Event::new("ann", "view", at("2024-03-10") + 10))
        .expect("view");
    assert_eq!(balance(&db, "ann"), 50);
    common::assert_clean(&db);
}

#[test]
fn the_29th_of_february_is_celebrated_on_the_28th_in_common_years() {
    let (_dir, db) = common::open_temp();
    set_rules(&db, vec![rule(1, RulePoints::Fixed(10))]).expect("rules");
    birthday(&db, "leap", 1992, 2, 29);
    db.record(&Event::new("leap", "view", at("2025-02-28") + 1))
        .expect("common year");
    db.record(&Event::new("leap", "view", at("2024-02-28") + 1))
        .expect("not the day in a leap year");
    db.record(&Event::new("leap", "view", at("2024-02-29") + 1))
        .expect("leap year");
    assert_eq!(balance(&db, "leap"), 20);
    common::assert_clean(&db);
}

#[test]
fn a_window_starting_in_december_belongs_to_the_next_birthday() {
    let (_dir, db) = common::open_temp();
    set_rules(&db, vec![rule(7, RulePoints::Fixed(10))]).expect("rules");
    birthday(&db, "jan", 2000, 1, 2);
    db.record(&Event::new("jan", "view", at("2024-12-28")))
        .expect("dec");
    db.record(&Event::new("jan", "view", at("2025-01-02")))
        .expect("jan");
    assert_eq!(balance(&db, "jan"), 10);
    assert_eq!(credits(&db, "jan")[0].1, "event:first:0:0:7:2025");
    common::assert_clean(&db);
}

#[test]
fn a_birthday_set_in_the_same_transaction_counts_and_earlier_events_are_not_read_back() {
    let (_dir, db) = common::open_temp();
    set_rules(&db, vec![rule(1, RulePoints::Fixed(10))]).expect("rules");
    let day = at("2024-06-01");
    db.record(&Event::new("ann", "view", day + 1))
        .expect("morning");
    db.write(|tx| {
        let b = AttrValue::date(1980, 6, 1).expect("a date");
        tx.update_profile("ann", &ProfileUpdate::new().set("birthday", b))?;
        tx.record(&Event::new("ann", "purchase", day + 2).with_amount(100))
    })
    .expect("tx");
    assert_eq!(
        balance(&db, "ann"),
        10,
        "the morning visit did not know the birthday"
    );
    assert_eq!(
        credits(&db, "ann"),
        [(day + 2, "event:first:0:0:1:2024".into())]
    );
    common::assert_clean(&db);
}

#[test]
fn editing_a_birthday_never_pays_twice_for_one_year() {
    let (_dir, db) = common::open_temp();
    set_rules(&db, vec![rule(3, RulePoints::Fixed(10))]).expect("rules");
    birthday(&db, "ann", 1990, 3, 10);
    db.record(&Event::new("ann", "view", at("2024-03-10")))
        .expect("march");
    birthday(&db, "ann", 1990, 6, 10);
    db.record(&Event::new("ann", "view", at("2024-06-10")))
        .expect("june");
    assert_eq!(balance(&db, "ann"), 10, "one reward for 2024");
    db.record(&Event::new("ann", "view", at("2025-06-09")))
        .expect("2025");
    assert_eq!(balance(&db, "ann"), 20);
    let none = ProfileUpdate::new().unset("birthday");
    db.update_profile("ann", &none).expect("unset");
    db.record(&Event::new("ann", "view", at("2026-06-09")))
        .expect("2026");
    assert_eq!(balance(&db, "ann"), 20, "no birthday, no reward");
    common::assert_clean(&db);
}

#[test]
fn a_merge_pays_the_target_once_under_its_birthday() {
    let (_dir, db) = common::open_temp();
    set_rules(&db, vec![rule(7, RulePoints::Fixed(10))]).expect("rules");
    birthday(&db, "anon", 1990, 3, 10);
    db.record(&Event::new("anon", "view", at("2024-03-09")))
        .expect("anon");
    db.record(&Event::new("ann", "view", at("2024-03-08")))
        .expect("ann");
    assert_eq!((balance(&db, "anon"), balance(&db, "ann")), (10, 0));
    db.merge("anon", "ann", "m1", stickydb::MergeOptions::forced())
        .expect("merge");
    // ann had no birthday: the merge gives her anon's, and the moved
    // event — the window's only one recorded with a birthday — pays
    assert_eq!(balance(&db, "ann"), 10);
    assert_eq!(credits(&db, "ann")[0].0, at("2024-03-09"));
    common::assert_clean(&db);
}

#[test]
fn rules_that_cannot_be_kept_are_refused() {
    let (_dir, db) = common::open_temp();
    for bad in [
        rule(0, RulePoints::Fixed(1)),
        rule(32, RulePoints::Fixed(1)),
        rule(
            7,
            RulePoints::PerAmount {
                points: 1,
                per_minor: 100,
            },
        ),
        EarnRule {
            daily_cap_points: Some(5),
            ..rule(7, RulePoints::Fixed(1))
        },
    ] {
        let kind = bad.kind.clone();
        let err = set_rules(&db, vec![bad]).expect_err(&kind);
        assert!(err.to_string().contains("rule"), "{kind}: {err}");
    }
    let err = db
        .record(&Event::new("ann", "reward:birthday:7", common::T0))
        .expect_err("a reserved kind");
    assert!(err.to_string().contains("reward:birthday:7"), "{err}");
    assert_eq!(db.user_count().expect("users"), 0);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// An event pays exactly on the days `birthday_within:Wd` holds for its
    /// user: the reward and the segment mean one window.
    #[test]
    fn the_window_is_the_segment_atoms(
        (year, month, dom) in (1950i32..2010, 1u32..=12, 1u32..=31),
        window_days in 1u32..=31,
        offsets in prop::collection::vec(0i64..800, 1..12),
    ) {
        let Some(date) = AttrValue::date(year, month, dom) else {
            return Ok(());
        };
        let (_dir, db) = common::open_temp();
        set_rules(&db, vec![rule(window_days, RulePoints::Fixed(1))]).expect("rules");
        let atom = Segment::parse(&format!("birthday_within:{window_days}d")).expect("atom");
        for (i, offset) in offsets.iter().enumerate() {
            // (each event its own user: every event is a first of its window)
            let user = format!("u{i}");
            db.update_profile(&user, &ProfileUpdate::new().set("birthday", date.clone()))
                .expect("birthday");
            let ts_ms = at("2023-12-01") + offset * DAY + 3_600_000;
            db.record(&Event::new(user.as_str(), "view", ts_ms)).expect("view");
            let id = db.user_id(&user).expect("id").expect("exists");
            let in_segment = db.segment(&atom, ts_ms).expect("segment").contains(id);
            prop_assert_eq!(balance(&db, &user) == 1, in_segment, "day {}", offset);
        }
    }
}
