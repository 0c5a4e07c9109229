//! Growth value (docs/ledger.md#growth-value) against a plain model: random
//! sequences over four users of purchases and refunds (a spend rule: one
//! per currency unit of net spend), views, reviews and sign-ins (ten per
//! active day, five per review capped at fifteen a day), a non-activity
//! kind, late and out-of-order events, duplicate deliveries (event ids),
//! identity merges and erasures — with tiers growing from growth value. After
//! every step each user's growth balance, window growth and tier equal the
//! model's, computed from the events alone; at the end `verify` is clean
//! and re-deriving everything under the same rules (a settings job) changes
//! no byte of the growth records. A second test sets the rules on a store
//! that already has events: the job derives the same values.

mod common;
#[path = "model/names.rs"]
mod names;

use std::collections::{BTreeMap, BTreeSet};

use names::{EventId, Names};
use proptest::prelude::*;
use stickydb::ledger::{GrowthRule, GrowthValue, TierBasis, TierLevel, Tiers};
use stickydb::{Db, Event, LedgerSettings, Options, SettingsDocument};

const T0: i64 = common::T0;
const DAY: i64 = common::DAY;
const USERS: [&str; 4] = ["ann", "bob", "cat", "dan"];
const KINDS: [&str; 6] = [
    "purchase",
    "refund",
    "view",
    "review",
    "sign_in",
    "contacted",
];
const WINDOW_DAYS: i64 = 30;

fn rules() -> Vec<GrowthRule> {
    vec![
        GrowthRule::new(
            "purchase",
            GrowthValue::PerAmount {
                growth: 1,
                per_minor: 100,
            },
        ),
        GrowthRule::new("*", GrowthValue::Fixed(10)).daily_cap(10),
        GrowthRule::new("review", GrowthValue::Fixed(5)).daily_cap(15),
    ]
}

fn tiers() -> Tiers {
    Tiers {
        window_days: WINDOW_DAYS as u32,
        levels: vec![
            TierLevel {
                name: "silver".into(),
                min_growth: 100,
            },
            TierLevel {
                name: "gold".into(),
                min_growth: 300,
            },
        ],
    }
}

fn open(dir: &tempfile::TempDir, with_rules: bool) -> Db {
    let options = Options::default().non_activity_kinds(["refund", "contacted"]);
    let db = Db::create(dir.path(), options).expect("create");
    db.set_ledger_settings(LedgerSettings::new(Vec::new(), tiers()))
        .expect("tiers");
    if with_rules {
        apply_rules(&db);
    }
    db
}

fn apply_rules(db: &Db) {
    let mut doc = SettingsDocument::default();
    doc.growth_rules = Some(rules());
    doc.tier_basis = Some(TierBasis::GrowthValue);
    db.apply_settings(&doc).expect("growth rules");
}

#[derive(Debug, Clone)]
struct Ev {
    kind: usize,
    ts_ms: i64,
    amount_minor: Option<i64>,
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
        0..KINDS.len(),
        0i64..60,
        0i64..DAY,
        prop::option::of(1i64..40_000),
        prop::option::of(0u8..6),
    )
        .prop_map(|(kind, day, ms, amount_minor, id)| Ev {
            kind,
            ts_ms: T0 + day * DAY + ms,
            amount_minor,
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
    /// The day values of `user`'s events under [`rules`].
    fn days(&self, user: &str) -> BTreeMap<i64, i64> {
        let mut raw: BTreeMap<(i64, usize), i64> = BTreeMap::new();
        for e in self.events.get(user).into_iter().flatten() {
            let day = e.ts_ms.div_euclid(DAY);
            let amount = e.amount_minor.unwrap_or(0) / 100;
            match KINDS[e.kind] {
                "purchase" => *raw.entry((day, 0)).or_default() += amount,
                "refund" => *raw.entry((day, 0)).or_default() -= amount,
                _ => {}
            }
            if !matches!(KINDS[e.kind], "refund" | "contacted") {
                *raw.entry((day, 1)).or_default() += 10;
            }
            if KINDS[e.kind] == "review" {
                *raw.entry((day, 2)).or_default() += 5;
            }
        }
        let mut days: BTreeMap<i64, i64> = BTreeMap::new();
        for ((day, rule), v) in raw {
            let capped = match rule {
                1 => v.min(10),
                2 => v.min(15),
                _ => v,
            };
            *days.entry(day).or_default() += capped;
        }
        days
    }

    fn window(&self, user: &str, day: i64) -> i64 {
        let days = self.days(user);
        days.range(day - WINDOW_DAYS + 1..=day)
            .map(|(_, v)| v)
            .sum::<i64>()
            .max(0)
    }

    fn tier(&self, user: &str) -> Option<&'static str> {
        // the account's clock: the latest event a growth rule reads
        let clock = self
            .events
            .get(user)?
            .iter()
            .filter(|e| KINDS[e.kind] != "contacted")
            .map(|e| e.ts_ms)
            .max()?;
        let g = self.window(user, clock.div_euclid(DAY));
        match g {
            g if g >= 300 => Some("gold"),
            g if g >= 100 => Some("silver"),
            _ => None,
        }
    }
}

fn event(name: &str, ev: &Ev) -> Event {
    let mut e = Event::new(name, KINDS[ev.kind], ev.ts_ms);
    if let Some(a) = ev.amount_minor {
        e = e.with_amount(a);
    }
    if let Some(id) = &ev.id {
        e = e.with_id(id.clone());
    }
    e
}

fn check_users(db: &Db, model: &Model, context: &str) {
    let at_ms = T0 + 45 * DAY;
    for name in USERS {
        let user = model.resolve(name);
        if model.events.get(&user).is_none_or(|e| e.is_empty()) {
            continue;
        }
        let g = db.growth_value(&user, at_ms).expect("growth value");
        let day = at_ms.div_euclid(DAY);
        let balance = model
            .days(&user)
            .range(..=day)
            .map(|(_, v)| v)
            .sum::<i64>()
            .max(0);
        assert_eq!(g.balance, balance, "{context}: balance of {user}");
        assert_eq!(
            g.in_window,
            model.window(&user, day),
            "{context}: window of {user}"
        );
        assert_eq!(
            db.tier(&user).expect("tier").as_deref(),
            model.tier(&user),
            "{context}: tier of {user}"
        );
    }
}

fn run(db: &Db, model: &mut Model, steps: &[Step]) {
    for (i, s) in steps.iter().enumerate() {
        let context = format!("step {i} {s:?}");
        match s {
            Step::Record { user, ev } => {
                let name = USERS[*user];
                db.record(&event(name, ev)).expect(&context);
                model.record(name, ev.clone());
            }
            Step::Merge { from, into } => {
                model.merge(db, USERS[*from], USERS[*into]);
            }
            Step::Erase { user } => {
                model.erase(db, USERS[*user]);
            }
        }
        check_users(db, model, &context);
    }
}

fn growth_records(dir: &tempfile::TempDir) -> BTreeSet<(Vec<u8>, Vec<u8>)> {
    let raw = common::raw_open(dir.path());
    let cf = raw.cf_handle("ledger").expect("ledger cf");
    raw.iterator_cf(cf, rocksdb::IteratorMode::Start)
        .map(|kv| kv.expect("read"))
        .filter(|(k, _)| k.get(4) == Some(&15))
        .map(|(k, v)| (k.to_vec(), v.to_vec()))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn growth_value_equals_the_model(steps in prop::collection::vec(step(), 1..60)) {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut model = Model::default();
        {
            let db = open(&dir, true);
            run(&db, &mut model, &steps);
            common::assert_clean(&db);
        }
        let before = growth_records(&dir);
        {
            // the same rules derived again from the events: the same bytes
            let db = Db::open(dir.path(), Options::default()).expect("reopen");
            let mut doc = SettingsDocument::default();
            doc.growth_rules = Some(Vec::new());
            db.apply_settings(&doc).expect("no rules");
            prop_assert!(db.verify().expect("verify").is_clean());
            apply_rules(&db);
            check_users(&db, &model, "re-derived");
            common::assert_clean(&db);
        }
        prop_assert_eq!(growth_records(&dir), before);
    }

    #[test]
    fn rules_set_after_the_events_derive_the_same(
        steps in prop::collection::vec(step(), 1..40),
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = open(&dir, false);
        let mut model = Model::default();
        for s in &steps {
            if let Step::Record { user, ev } = s {
                db.record(&event(USERS[*user], ev)).expect("record");
                model.record(USERS[*user], ev.clone());
            }
        }
        apply_rules(&db);
        check_users(&db, &model, "after the job");
        common::assert_clean(&db);
    }
}

/// The doc's example: a refund takes its growth off; caps hold per day.
#[test]
fn refunds_and_caps_example() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = open(&dir, true);
    let day = |d: i64| T0 + d * DAY;
    // 120 for the purchase + 10 for the active day; the refund (not
    // activity) takes 20 off on its own day
    db.record(&Event::new("ann", "purchase", day(0)).with_amount(12_000))
        .expect("purchase");
    db.record(&Event::new("ann", "refund", day(3)).with_amount(2_000))
        .expect("refund");
    // four reviews on one day: 15 (cap) + 10 (active day)
    for i in 0..4 {
        db.record(&Event::new("ann", "review", day(5) + i))
            .expect("review");
    }
    let g = db.growth_value("ann", day(5)).expect("growth");
    assert_eq!((g.balance, g.in_window), (130 - 20 + 25, 135));
    assert_eq!(g.tier.as_deref(), Some("silver"));
    // the purchase's day leaves the 30-day window: -20 + 25
    let g = db.growth_value("ann", day(30)).expect("growth");
    assert_eq!(g.in_window, 5);
    // …and the tier follows at the review (an expiry run at that day)
    db.expire_points(day(31)).expect("expire");
    assert_eq!(db.tier("ann").expect("tier"), None);
    common::assert_clean(&db);
}
