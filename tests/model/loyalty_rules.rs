//! The model of every issue-32 loyalty rule at once (shared by
//! `tests/loyalty_rules_model.rs` and the `loyalty_rules` fuzz target): an
//! earning rule (a point per currency unit of purchases), a first-order
//! reward, a campaign reward, a 3-day sign-in streak, a birthday reward
//! (the 7 days ending on the birthday; ann's and bob's fall in the
//! generated month, cat has none), and growth value (net spend, 10 per
//! active day) deciding the tiers.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};

use stickydb::ledger::{
    EarnRule, GrowthRule, GrowthValue, RulePoints, TierBasis, TierLevel, Tiers, CAMPAIGN_KIND,
    FIRST_ORDER_KIND,
};
use stickydb::{AttrValue, Db, Event, LedgerSettings, ProfileUpdate, PropValue, SettingsDocument};

#[path = "names.rs"]
mod names;
use names::{EventId, Names};

pub const T0: i64 = 1_709_251_200_000;
pub const DAY: i64 = 86_400_000;
pub const USERS: [&str; 3] = ["ann", "bob", "cat"];
pub const KINDS: [&str; 4] = ["purchase", "refund", "sign_in", "view"];
/// Birthdays (month, day) by user: ann's window is 4–10 March, bob's
/// 25–31 March (partly past the generated days).
pub const BIRTHDAYS: [(usize, (u32, u32)); 2] = [(0, (3, 10)), (1, (3, 31))];
/// The birthday rule's window, in days.
const WINDOW_DAYS: i64 = 7;

fn rule(kind: &str, points: RulePoints) -> EarnRule {
    EarnRule {
        kind: kind.into(),
        points,
        daily_cap_points: None,
        expires_after_days: None,
    }
}

pub fn setup(db: &Db) {
    let per_unit = RulePoints::PerAmount {
        points: 1,
        per_minor: 100,
    };
    let tiers = Tiers {
        window_days: 20,
        levels: vec![TierLevel {
            name: "gold".into(),
            min_growth: 150,
        }],
    };
    db.set_ledger_settings(LedgerSettings::new(
        vec![
            rule("purchase", per_unit),
            rule(FIRST_ORDER_KIND, RulePoints::Fixed(500)),
            rule(CAMPAIGN_KIND, RulePoints::Fixed(70)),
            rule("reward:sign_in_streak:3", RulePoints::Fixed(30)),
            rule("reward:birthday:7", RulePoints::Fixed(200)),
        ],
        tiers,
    ))
    .expect("rules");
    let mut doc = SettingsDocument::default();
    doc.growth_rules = Some(vec![
        GrowthRule::new(
            "purchase",
            GrowthValue::PerAmount {
                growth: 1,
                per_minor: 100,
            },
        ),
        GrowthRule::new("*", GrowthValue::Fixed(10)).daily_cap(10),
    ]);
    doc.tier_basis = Some(TierBasis::GrowthValue);
    db.apply_settings(&doc).expect("growth");
    for (user, (month, day)) in BIRTHDAYS {
        let date = AttrValue::date(1990, month, day).expect("a date");
        let update = ProfileUpdate::new().set("birthday", date);
        db.update_profile(USERS[user], &update).expect("birthday");
    }
}

#[derive(Debug, Clone)]
pub struct Ev {
    pub kind: usize,
    pub ts_ms: i64,
    pub amount_minor: i64,
    pub campaign: bool,
    pub id: Option<u8>,
    /// Whether the user had a birthday when the event was recorded (the
    /// model sets it: a birthday reward does not read older events back).
    pub known: bool,
}

impl EventId for Ev {
    fn event_id(&self) -> Option<String> {
        self.id.map(|i| format!("e{i}"))
    }
}

#[derive(Debug, Clone)]
pub enum Step {
    Record { user: usize, ev: Ev },
    Merge { from: usize, into: usize },
    Erase { user: usize },
}

pub struct Model {
    names: Names<Ev>,
    /// The latest time each account has seen, where a merge moved it past
    /// the user's own events: a merge moves the target's clock to the
    /// merged account's when that one holds points (docs/identity.md) —
    /// even the time of an event the merge dropped as a duplicate.
    clock: BTreeMap<String, i64>,
    /// Birthdays (month, day) by user.
    birthday: BTreeMap<String, (u32, u32)>,
}

impl Default for Model {
    fn default() -> Self {
        Self {
            names: Names::default(),
            clock: BTreeMap::new(),
            birthday: BIRTHDAYS
                .iter()
                .map(|(u, md)| (USERS[*u].to_owned(), *md))
                .collect(),
        }
    }
}

/// Days since 1970-01-01 of a civil date (H. Hinnant's algorithm: the
/// model keeps its own calendar, not the engine's date crate).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (i64::from(m) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The year of the birthday (month, day) whose window holds UTC day `day`:
/// the birthday falls on one of the window's days from `day` on (29
/// February on the 28th in common years).
fn window_year((month, dom): (u32, u32), day: i64) -> Option<i64> {
    // (the civil year of `day`, found by stepping from an early guess)
    let mut year = 1970 + day.div_euclid(366);
    while days_from_civil(year + 1, 1, 1) <= day {
        year += 1;
    }
    [year, year + 1].into_iter().find(|y| {
        let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
        let dom = if (month, dom) == (2, 29) && !leap {
            28
        } else {
            dom
        };
        let b = days_from_civil(*y, month, dom);
        day <= b && b < day + WINDOW_DAYS
    })
}

impl Model {
    fn resolve(&self, name: &str) -> String {
        self.names.resolve(name)
    }

    fn record(&mut self, name: &str, mut ev: Ev) {
        ev.known = self.birthday.contains_key(&self.resolve(name));
        self.names.record(name, ev);
    }

    fn evs(&self, user: &str) -> &[Ev] {
        self.names
            .events
            .get(user)
            .map(Vec::as_slice)
            .unwrap_or_default()
    }

    /// Points: every purchase's credit, the first order's 500, 70 for the
    /// campaign, 30 per 3-day block of sign-ins, 200 per birthday with an
    /// event in its window recorded while the birthday was known.
    fn balance(&self, user: &str) -> i64 {
        let evs = self.evs(user);
        let purchases = evs.iter().filter(|e| KINDS[e.kind] == "purchase");
        let credits: i64 = purchases.clone().map(|e| e.amount_minor / 100).sum();
        let first = purchases.min_by_key(|e| e.ts_ms).map_or(0, |_| 500);
        let campaign = if evs.iter().any(|e| e.campaign) {
            70
        } else {
            0
        };
        let days: BTreeSet<i64> = evs
            .iter()
            .filter(|e| KINDS[e.kind] == "sign_in")
            .map(|e| e.ts_ms.div_euclid(DAY))
            .collect();
        let (mut streaks, mut run, mut last) = (0, 0, i64::MIN);
        for d in days {
            run = if d == last + 1 { run + 1 } else { 1 };
            if run % 3 == 0 {
                streaks += 30;
            }
            last = d;
        }
        let birthdays: BTreeSet<i64> = match self.birthday.get(user) {
            Some(b) => evs
                .iter()
                .filter(|e| e.known)
                .filter_map(|e| window_year(*b, e.ts_ms.div_euclid(DAY)))
                .collect(),
            None => BTreeSet::new(),
        };
        credits + first + campaign + streaks + 200 * birthdays.len() as i64
    }

    /// Growth value per local day: net spend plus 10 per active day (every
    /// kind here is activity, refunds too: a new store's non-activity kinds
    /// are exposures and contacts).
    fn growth_days(&self, user: &str) -> BTreeMap<i64, i64> {
        let mut days: BTreeMap<i64, i64> = BTreeMap::new();
        let mut active: BTreeSet<i64> = BTreeSet::new();
        for e in self.evs(user) {
            let day = e.ts_ms.div_euclid(DAY);
            match KINDS[e.kind] {
                "purchase" => *days.entry(day).or_default() += e.amount_minor / 100,
                "refund" => *days.entry(day).or_default() -= e.amount_minor / 100,
                _ => {}
            }
            active.insert(day);
        }
        for d in active {
            *days.entry(d).or_default() += 10;
        }
        days
    }

    fn clock(&self, user: &str) -> Option<i64> {
        let own = self.evs(user).iter().map(|e| e.ts_ms).max()?;
        Some(own.max(self.clock.get(user).copied().unwrap_or(i64::MIN)))
    }

    fn tier(&self, user: &str) -> Option<&'static str> {
        let clock = self.clock(user)?;
        let day = clock.div_euclid(DAY);
        let g: i64 = self
            .growth_days(user)
            .range(day - 19..=day)
            .map(|(_, v)| v)
            .sum();
        (g.max(0) >= 150).then_some("gold")
    }
}

fn event(name: &str, ev: &Ev) -> Event {
    let mut e = Event::new(name, KINDS[ev.kind], ev.ts_ms);
    if matches!(KINDS[ev.kind], "purchase" | "refund") {
        e = e.with_amount(ev.amount_minor);
    }
    if ev.campaign {
        e = e.with_property("campaign", PropValue::Str("launch".into()));
    }
    if let Some(id) = ev.id {
        e = e.with_id(format!("e{id}"));
    }
    e
}

fn check(db: &Db, model: &Model, context: &str) {
    let at_ms = T0 + 40 * DAY;
    for name in USERS {
        let user = model.resolve(name);
        if model.evs(&user).is_empty() {
            continue;
        }
        let balance = db.account(&user).expect("account").map_or(0, |a| a.balance);
        assert_eq!(
            balance,
            model.balance(&user),
            "{context}: balance of {user}"
        );
        let g = db.growth_value(&user, at_ms).expect("growth");
        let want: i64 = model.growth_days(&user).values().sum();
        assert_eq!(g.balance, want.max(0), "{context}: growth of {user}");
        assert_eq!(
            g.tier.as_deref(),
            model.tier(&user),
            "{context}: tier of {user}"
        );
    }
}

pub fn run(db: &Db, model: &mut Model, steps: &[Step]) {
    for (i, s) in steps.iter().enumerate() {
        let context = format!("step {i} {s:?}");
        match s {
            Step::Record { user, ev } => {
                db.record(&event(USERS[*user], ev)).expect(&context);
                model.record(USERS[*user], ev.clone());
            }
            Step::Merge { from, into } => {
                let (from, into) = (model.resolve(USERS[*from]), model.resolve(USERS[*into]));
                if from == into || !model.names.events.contains_key(&from) {
                    continue;
                }
                if model.balance(&from) > 0 {
                    let moved = model.clock(&from).into_iter().chain(model.clock(&into));
                    let clock = moved.max().unwrap_or(i64::MIN);
                    model.clock.insert(into.clone(), clock);
                }
                model.clock.remove(&from);
                // (a merge fills what the target's profile lacks, and the
                // moved events are recorded again under that birthday)
                if let Some(b) = model.birthday.remove(&from) {
                    model.birthday.entry(into.clone()).or_insert(b);
                }
                let known = model.birthday.contains_key(&into);
                for ev in model.names.events.get_mut(&from).into_iter().flatten() {
                    ev.known = known;
                }
                model.names.merge(db, &from, &into);
            }
            Step::Erase { user } => {
                if let Some(user) = model.names.erase(db, USERS[*user]) {
                    model.clock.remove(&user);
                    model.birthday.remove(&user);
                }
            }
        }
        check(db, model, &context);
    }
}
