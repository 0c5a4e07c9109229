//! First-order and campaign rewards (docs/ledger.md#first-order-and-campaign-rewards)
//! against a plain model: random purchases (late and out of order, some
//! duplicated by event id), views naming one of three campaigns, identity
//! merges and erasures. The rules: 500 points for a first order, one point
//! per currency unit of the first order's amount (so the reward must sit
//! on exactly the oldest purchase), 100 points per campaign. After every
//! step each user's balance equals what its events give — once per user,
//! however late its first purchase arrived and whoever it was merged
//! with — and `verify` (which re-derives every reward's holder from the
//! events) is clean.

mod common;
#[path = "model/names.rs"]
mod names;

use std::collections::BTreeSet;

use names::{EventId, Names};
use proptest::prelude::*;
use stickydb::ledger::{EarnRule, RulePoints, Tiers, CAMPAIGN_KIND, FIRST_ORDER_KIND};
use stickydb::{Db, Event, LedgerSettings, MergeOptions, PropValue};

const T0: i64 = common::T0;
const DAY: i64 = common::DAY;
const USERS: [&str; 4] = ["ann", "bob", "cat", "dan"];
const CAMPAIGNS: [&str; 3] = ["spring", "summer", "autumn"];

fn rule(kind: &str, points: RulePoints) -> EarnRule {
    EarnRule {
        kind: kind.into(),
        points,
        daily_cap_points: None,
        expires_after_days: None,
    }
}

fn settings() -> LedgerSettings {
    LedgerSettings::new(
        vec![
            rule(FIRST_ORDER_KIND, RulePoints::Fixed(500)),
            rule(
                FIRST_ORDER_KIND,
                RulePoints::PerAmount {
                    points: 1,
                    per_minor: 100,
                },
            ),
            rule(CAMPAIGN_KIND, RulePoints::Fixed(100)),
        ],
        Tiers::default(),
    )
}

#[derive(Debug, Clone)]
struct Ev {
    purchase: bool,
    ts_ms: i64,
    amount_minor: i64,
    campaign: Option<usize>,
    id: Option<String>,
}

#[derive(Debug, Clone)]
enum Step {
    Record { user: usize, ev: Ev },
    Merge { from: usize, into: usize },
    Erase { user: usize },
}

fn step() -> impl Strategy<Value = Step> {
    let ev = (
        any::<bool>(),
        0i64..30,
        0i64..DAY,
        1i64..50_000,
        prop::option::of(0..CAMPAIGNS.len()),
        prop::option::of(0u8..5),
    )
        .prop_map(|(purchase, day, ms, amount_minor, campaign, id)| Ev {
            purchase,
            // (distinct instants: a merge re-numbers the moved events newest
            // first, so equal times of moved events change order)
            ts_ms: T0 + day * DAY + ms,
            amount_minor,
            campaign,
            id: id.map(|i| format!("e{i}")),
        });
    prop_oneof![
        12 => (0..USERS.len(), ev).prop_map(|(user, ev)| Step::Record { user, ev }),
        1 => (0..USERS.len(), 0..USERS.len()).prop_map(|(from, into)| Step::Merge { from, into }),
        1 => (0..USERS.len()).prop_map(|user| Step::Erase { user }),
    ]
}

type Model = Names<Ev>;

impl EventId for Ev {
    fn event_id(&self) -> Option<String> {
        self.id.clone()
    }
}

impl Model {
    fn balance(&self, user: &str) -> i64 {
        let evs = self.events.get(user).map(Vec::as_slice).unwrap_or_default();
        // the oldest purchase: earliest time, then earliest arrival
        let first = evs
            .iter()
            .enumerate()
            .filter(|(_, e)| e.purchase)
            .min_by_key(|(i, e)| (e.ts_ms, *i));
        let campaigns: BTreeSet<usize> = evs.iter().filter_map(|e| e.campaign).collect();
        first.map_or(0, |(_, e)| 500 + e.amount_minor / 100) + 100 * campaigns.len() as i64
    }
}

fn event(name: &str, ev: &Ev) -> Event {
    let kind = if ev.purchase { "purchase" } else { "view" };
    let mut e = Event::new(name, kind, ev.ts_ms);
    if ev.purchase {
        e = e.with_amount(ev.amount_minor);
    }
    if let Some(c) = ev.campaign {
        e = e.with_property("campaign", PropValue::Str(CAMPAIGNS[c].into()));
    }
    if let Some(id) = &ev.id {
        e = e.with_id(id.clone());
    }
    e
}

fn check(db: &Db, model: &Model, context: &str) {
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

fn run(db: &Db, model: &mut Model, steps: &[Step]) {
    for (i, s) in steps.iter().enumerate() {
        let context = format!("step {i} {s:?}");
        match s {
            Step::Record { user, ev } => {
                db.record(&event(USERS[*user], ev)).expect(&context);
                model.record(USERS[*user], ev.clone());
            }
            Step::Merge { from, into } => {
                model.merge(db, USERS[*from], USERS[*into]);
            }
            Step::Erase { user } => {
                model.erase(db, USERS[*user]);
            }
        }
        check(db, model, &context);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn rewards_are_paid_once_on_the_oldest_event(steps in prop::collection::vec(step(), 1..50)) {
        let (_dir, db) = common::open_temp();
        db.set_ledger_settings(settings()).expect("rules");
        let mut model = Model::default();
        run(&db, &mut model, &steps);
        common::assert_clean(&db);
    }
}

/// A late earlier purchase takes the reward over: the first credit is
/// reversed, the new one paid at the earlier purchase's time.
#[test]
fn a_late_earlier_purchase_moves_the_reward() {
    let (_dir, db) = common::open_temp();
    db.set_ledger_settings(settings()).expect("rules");
    db.record(&Event::new("ann", "purchase", T0 + 5 * DAY).with_amount(20_000))
        .expect("purchase");
    assert_eq!(
        db.account("ann").expect("account").map(|a| a.balance),
        Some(700)
    );
    db.record(&Event::new("ann", "purchase", T0 + DAY).with_amount(3_000))
        .expect("late purchase");
    assert_eq!(
        db.account("ann").expect("account").map(|a| a.balance),
        Some(530)
    );
    let entries = db.ledger("ann", 0, i64::MAX, 100).expect("history");
    let reversals = entries
        .iter()
        .filter(|e| e.kind == stickydb::ledger::EntryKind::Reverse)
        .count();
    assert_eq!(reversals, 2, "{entries:#?}");
    common::assert_clean(&db);
}

/// Purchases recorded before the rule existed hold the reward unpaid.
#[test]
fn a_first_order_before_the_rule_is_not_rewarded() {
    let (_dir, db) = common::open_temp();
    db.record(&Event::new("ann", "purchase", T0).with_amount(1_000))
        .expect("purchase");
    db.set_ledger_settings(settings()).expect("rules");
    db.record(&Event::new("ann", "purchase", T0 + DAY).with_amount(1_000))
        .expect("second purchase");
    assert_eq!(
        db.account("ann").expect("account").map_or(0, |a| a.balance),
        0
    );
    // an even earlier one, arriving late, takes it over — and is paid
    db.record(&Event::new("ann", "purchase", T0 - DAY).with_amount(2_000))
        .expect("late purchase");
    assert_eq!(
        db.account("ann").expect("account").map(|a| a.balance),
        Some(520)
    );
    common::assert_clean(&db);
}

/// Editing the earning rules (a rule inserted before the reward's) does
/// not let a later take-over pay twice: the holder names its credits.
#[test]
fn a_rule_edit_does_not_pay_twice() {
    let (_dir, db) = common::open_temp();
    let first = rule(FIRST_ORDER_KIND, RulePoints::Fixed(500));
    db.set_ledger_settings(LedgerSettings::new(vec![first.clone()], Tiers::default()))
        .expect("rules");
    db.record(&Event::new("ann", "purchase", T0 + 5 * DAY).with_amount(1_000))
        .expect("purchase");
    let sign_in = rule("sign_in", RulePoints::Fixed(1));
    db.set_ledger_settings(LedgerSettings::new(vec![sign_in, first], Tiers::default()))
        .expect("rules edited");
    db.record(&Event::new("ann", "purchase", T0).with_amount(1_000))
        .expect("late purchase");
    assert_eq!(
        db.account("ann").expect("account").map(|a| a.balance),
        Some(500)
    );
    common::assert_clean(&db);
}

/// A merge pays the merged user's oldest purchase once, not each moved
/// purchase in turn.
#[test]
fn a_merge_pays_the_oldest_moved_purchase_once() {
    let (_dir, db) = common::open_temp();
    db.set_ledger_settings(settings()).expect("rules");
    for d in 0..3 {
        db.record(&Event::new("anon", "purchase", T0 + d * DAY).with_amount(10_000))
            .expect("purchase");
    }
    db.record(&Event::new("ann", "view", T0)).expect("view");
    db.merge("anon", "ann", "m1", MergeOptions::forced())
        .expect("merge");
    assert_eq!(
        db.account("ann").expect("account").map(|a| a.balance),
        Some(600)
    );
    let entries = db.ledger("ann", 0, i64::MAX, 100).expect("history");
    let kinds: Vec<_> = entries.iter().map(|e| e.kind).collect();
    assert!(
        !kinds.contains(&stickydb::ledger::EntryKind::Reverse),
        "{entries:#?}"
    );
    common::assert_clean(&db);
}
