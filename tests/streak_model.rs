//! Sign-in streak rewards (docs/ledger.md#sign-in-streaks) against a plain
//! model: random sign-ins over 40 local days (late and out of order, some
//! repeating a day, some duplicated by event id), views, identity merges
//! and erasures, under two rules — 30 points per 3 consecutive days and
//! 100 per 7. After every step each user's balance equals what its runs of
//! consecutive sign-in days give (⌊len/3⌋ × 30 + ⌊len/7⌋ × 100 per run),
//! whatever order the days arrived in; `verify` is clean at the end.

mod common;
#[path = "model/names.rs"]
mod names;

use std::collections::BTreeSet;

use names::{EventId, Names};
use proptest::prelude::*;
use stickydb::ledger::{EarnRule, RulePoints, Tiers};
use stickydb::{Db, Event, LedgerSettings};

const T0: i64 = common::T0;
const DAY: i64 = common::DAY;
const USERS: [&str; 3] = ["ann", "bob", "cat"];

fn streak(days: u32, points: i64) -> EarnRule {
    EarnRule {
        kind: format!("reward:sign_in_streak:{days}"),
        points: RulePoints::Fixed(points),
        daily_cap_points: None,
        expires_after_days: None,
    }
}

fn settings() -> LedgerSettings {
    LedgerSettings::new(vec![streak(3, 30), streak(7, 100)], Tiers::default())
}

#[derive(Debug, Clone)]
enum Step {
    Record {
        user: usize,
        sign_in: bool,
        day: i64,
        id: Option<u8>,
    },
    Merge {
        from: usize,
        into: usize,
    },
    Erase {
        user: usize,
    },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        14 => (0..USERS.len(), prop::bool::weighted(0.8), 0i64..40, prop::option::of(0u8..4))
            .prop_map(|(user, sign_in, day, id)| Step::Record { user, sign_in, day, id }),
        1 => (0..USERS.len(), 0..USERS.len()).prop_map(|(from, into)| Step::Merge { from, into }),
        1 => (0..USERS.len()).prop_map(|user| Step::Erase { user }),
    ]
}

/// A sign-in's day (`None` for a view) and its event id.
type Ev = (Option<i64>, Option<u8>);

type Model = Names<Ev>;

impl EventId for Ev {
    fn event_id(&self) -> Option<String> {
        self.1.map(|i| i.to_string())
    }
}

impl Model {
    fn balance(&self, user: &str) -> i64 {
        let days: BTreeSet<i64> = self
            .events
            .get(user)
            .into_iter()
            .flatten()
            .filter_map(|e| e.0)
            .collect();
        let (mut total, mut run, mut last) = (0, 0, i64::MIN);
        let close = |run: i64| run / 3 * 30 + run / 7 * 100;
        for d in days {
            if d == last + 1 {
                run += 1;
            } else {
                total += close(run);
                run = 1;
            }
            last = d;
        }
        total + close(run)
    }
}

fn run(db: &Db, model: &mut Model, steps: &[Step]) {
    for (i, s) in steps.iter().enumerate() {
        let context = format!("step {i} {s:?}");
        match *s {
            Step::Record {
                user,
                sign_in,
                day,
                id,
            } => {
                let kind = if sign_in { "sign_in" } else { "view" };
                // a few hours into the day, so a day's events differ in time
                let mut e = Event::new(
                    USERS[user],
                    kind,
                    T0 + day * DAY + 3_600_000 * (i as i64 % 20),
                );
                if let Some(id) = id {
                    e = e.with_id(format!("e{id}"));
                }
                db.record(&e).expect(&context);
                model.record(USERS[user], (sign_in.then_some(day), id));
            }
            Step::Merge { from, into } => {
                model.merge(db, USERS[from], USERS[into]);
            }
            Step::Erase { user } => {
                model.erase(db, USERS[user]);
            }
        }
        for name in USERS {
            let user = model.resolve(name);
            if !model.events.contains_key(&user) {
                continue;
            }
            let balance = db.account(&user).expect("account").map_or(0, |a| a.balance);
            assert_eq!(
                balance,
                model.balance(&user),
                "{context}: balance of {user}"
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn streaks_equal_the_runs_of_sign_in_days(steps in prop::collection::vec(step(), 1..80)) {
        let (_dir, db) = common::open_temp();
        db.set_ledger_settings(settings()).expect("rules");
        let mut model = Model::default();
        run(&db, &mut model, &steps);
        common::assert_clean(&db);
    }
}

/// Days 1, 2, 4, 5 give no 3-day block; day 3 arriving late joins them
/// into a run of five: one block, paid at the midnight starting day 3.
#[test]
fn a_late_sign_in_that_fills_a_gap_completes_a_streak() {
    let (_dir, db) = common::open_temp();
    db.set_ledger_settings(settings()).expect("rules");
    for d in [1, 2, 4, 5] {
        db.record(&Event::new("ann", "sign_in", T0 + d * DAY + 1_000))
            .expect("sign-in");
    }
    assert_eq!(
        db.account("ann").expect("account").map_or(0, |a| a.balance),
        0
    );
    db.record(&Event::new("ann", "sign_in", T0 + 3 * DAY + 1_000))
        .expect("late sign-in");
    assert_eq!(
        db.account("ann").expect("account").map(|a| a.balance),
        Some(30)
    );
    let earns: Vec<i64> = db
        .ledger("ann", 0, i64::MAX, 10)
        .expect("history")
        .iter()
        .filter(|e| e.kind == stickydb::ledger::EntryKind::Earn)
        .map(|e| e.at_ms)
        .collect();
    assert_eq!(earns, [T0 + 3 * DAY]);
    // day 0 arriving late shifts the block: days 0..=5 hold two blocks
    db.record(&Event::new("ann", "sign_in", T0 + 1_000))
        .expect("earlier sign-in");
    assert_eq!(
        db.account("ann").expect("account").map(|a| a.balance),
        Some(60)
    );
    common::assert_clean(&db);
}

/// A rule that names no length, or pays by amount, is refused.
#[test]
fn a_bad_streak_rule_is_refused() {
    let (_dir, db) = common::open_temp();
    for kind in [
        "reward:sign_in_streak:",
        "reward:sign_in_streak:0",
        "reward:sign_in_streak:x",
    ] {
        let mut r = streak(3, 10);
        r.kind = kind.into();
        assert!(db
            .set_ledger_settings(LedgerSettings::new(vec![r], Tiers::default()))
            .is_err());
    }
    let mut r = streak(3, 10);
    r.points = RulePoints::PerAmount {
        points: 1,
        per_minor: 100,
    };
    assert!(db
        .set_ledger_settings(LedgerSettings::new(vec![r], Tiers::default()))
        .is_err());
    // and no event may carry a streak rule's kind
    assert!(db
        .record(&Event::new("ann", "reward:sign_in_streak:3", T0))
        .is_err());
}
