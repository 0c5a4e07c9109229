//! The change feed (SPEC §4a) against a model that recomputes each user's
//! stage on every day from the list of accepted events: random streams of
//! late, out-of-order and duplicate events, erasures, `advance` at random
//! instants (also backwards), a non-zero UTC offset and a switch to a custom
//! stage model. Every feed entry (stage, day, cause, retroactive flag),
//! `stage_history`, the per-day transition counts and the `entered:` atom
//! must equal the model's; verify must be clean.

mod common;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use common::model::{Ev, Model, DAY_MS};
use proptest::prelude::*;
use stickydb::metrics::{Condition, StageInput, StageModel, StageRule};
use stickydb::{Change, Db, Event, Options, Segment, StageCause};

/// 2024-03-01 00:00 UTC.
const T0: i64 = 1_709_251_200_000;
const KINDS: [&str; 4] = ["view", "purchase", "refund", "sign_in"];
const USERS: u8 = 3;

#[derive(Debug, Clone)]
enum Op {
    /// (user, day, minute, kind, amount, event id)
    Record(Vec<(u8, i64, i64, usize, i64, Option<u8>)>),
    /// day, minute
    Advance(i64, i64),
    Erase(u8),
    CustomModel,
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    let ev = (
        0..USERS,
        0i64..120,
        0i64..1440,
        0..KINDS.len(),
        1i64..4_000,
        prop::option::weighted(0.3, 0u8..6),
    );
    let op = prop_oneof![
        6 => prop::collection::vec(ev, 1..5).prop_map(Op::Record),
        3 => (0i64..160, 0i64..1440).prop_map(|(d, m)| Op::Advance(d, m)),
        1 => (0..USERS).prop_map(Op::Erase),
        1 => Just(Op::CustomModel),
    ];
    prop::collection::vec(op, 1..40)
}

/// A model that reads net spend and recency: not the standard one.
fn custom_model() -> StageModel {
    use Condition::*;
    use StageInput::*;
    let rule = |stage: &str, any_of| StageRule {
        stage: stage.into(),
        any_of,
    };
    StageModel {
        rules: vec![
            rule(
                "big",
                vec![vec![
                    AtLeast(NetSpendMinor, 5_000),
                    AtMost(DaysSinceLastActivity, 20),
                ]],
            ),
            rule("lapsed", vec![vec![AtLeast(DaysSinceLastActivity, 10)]]),
            rule("fresh", vec![vec![AtMost(DaysSinceFirstActivity, 2)]]),
        ],
        fallback: "regular".into(),
    }
}

/// The custom model, recomputed from the event list.
fn custom_stage(m: &Model, user: &str, d: i32) -> Option<&'static str> {
    let days: BTreeSet<i32> = m
        .events
        .iter()
        .filter(|e| e.user == user)
        .map(|e| m.day(e.ts_ms))
        .filter(|x| *x <= d)
        .collect();
    let first = *days.iter().next()?;
    let last = *days.iter().next_back()?;
    let (_, _, spend, refunds) = m.purchases(user, d);
    Some(if spend - refunds >= 5_000 && d - last <= 20 {
        "big"
    } else if d - last >= 10 {
        "lapsed"
    } else if d - first <= 2 {
        "fresh"
    } else {
        "regular"
    })
}

/// A stage entry as compared: (user, incarnation, from, to, day, cause, retroactive).
type Entry = (
    String,
    u32,
    Option<String>,
    Option<String>,
    i32,
    StageCause,
    bool,
);

#[derive(Default, Clone)]
struct Mark {
    day: i32,
    stage: Option<&'static str>,
}

struct Feed {
    events: Model,
    custom: bool,
    clock_ms: Option<i64>,
    marks: HashMap<String, Mark>,
    incarnation: HashMap<String, u32>,
    ids: HashMap<String, BTreeSet<String>>,
}

impl Feed {
    fn stage(&self, user: &str, d: i32) -> Option<&'static str> {
        if self.custom {
            custom_stage(&self.events, user, d)
        } else {
            self.events.stage(user, d)
        }
    }

    fn clock_day(&self) -> Option<i32> {
        self.clock_ms.map(|t| self.events.day(t))
    }

    fn due(&self, user: &str, day: i32) -> Option<i32> {
        let now = self.stage(user, day);
        (day + 1..=day + 400).find(|d| self.stage(user, *d) != now)
    }

    /// Moves `user`'s mark: the correction at the base, then every change
    /// up to the target (docs/feed.md).
    fn walk(
        &mut self,
        user: &str,
        triggers: &[i32],
        settle_to: Option<i32>,
        cause: StageCause,
        out: &mut Vec<Entry>,
    ) {
        let old = self.marks.get(user).cloned();
        // The mark's stage holds until its due day; an advance moves the
        // clock before it settles, so the clock may be past it then. (After
        // an advance no due day is at or before the clock, so writes start
        // at the clock; their events are in the list already.)
        let held_to = |m: &Mark| match cause {
            StageCause::Time => self.due(user, m.day).map_or(i32::MAX, |d| d - 1),
            _ => i32::MAX,
        };
        let effective = match (&old, self.clock_day()) {
            (Some(m), Some(c)) => Some(m.day.max(c.min(held_to(m)))),
            (Some(m), None) => Some(m.day),
            (None, c) => c,
        };
        let trig_min = triggers.iter().min().copied();
        let trig_max = triggers.iter().max().copied();
        let Some(target) = effective.max(trig_max).max(settle_to) else {
            return;
        };
        let base = effective.or(trig_min.map(|d| d - 1)).unwrap_or(target);
        let target = target.max(base);
        let inc = self.incarnation.get(user).copied().unwrap_or(0);
        let mut emit = |from: Option<&str>, to: Option<&str>, day: i32| {
            out.push((
                user.to_owned(),
                inc,
                from.map(str::to_owned),
                to.map(str::to_owned),
                day,
                cause,
                cause != StageCause::Time && day < target,
            ));
        };
        let mut prev = old.as_ref().and_then(|m| m.stage);
        let at_base = self.stage(user, base);
        if at_base != prev {
            let day = trig_min.filter(|d| *d <= base).unwrap_or(base);
            emit(prev, at_base, day);
            prev = at_base;
        }
        for d in base + 1..=target {
            let s = self.stage(user, d);
            if s != prev {
                emit(prev, s, d);
                prev = s;
            }
        }
        self.marks.insert(
            user.to_owned(),
            Mark {
                day: target,
                stage: prev,
            },
        );
    }
}

fn check_history(db: &Db, f: &Feed, first: i32, last: i32) -> Result<(), TestCaseError> {
    for u in 0..USERS {
        let name = format!("u{u}");
        let Some(id) = db.user_id(&name).unwrap() else {
            continue;
        };
        let runs = db.metrics().stage_history(id, first, last).unwrap();
        for d in first..=last {
            let got = runs
                .iter()
                .find(|r| r.from_day <= d && d <= r.to_day)
                .map(|r| r.stage.as_str());
            prop_assert_eq!(got, f.stage(&name, d), "{} on day {}", name, d);
        }
    }
    // transition counts and the entered: atom
    let rows = db.metrics().stage_transitions(first, last, None).unwrap();
    for row in &rows {
        let d = row.day;
        let mut entered: BTreeMap<String, u64> = BTreeMap::new();
        let mut left: BTreeMap<String, u64> = BTreeMap::new();
        for name in f.events.users() {
            let (a, b) = (f.stage(&name, d - 1), f.stage(&name, d));
            if a != b {
                if let Some(b) = b {
                    *entered.entry(b.to_owned()).or_default() += 1;
                }
                if let (Some(a), Some(_)) = (a, b) {
                    *left.entry(a.to_owned()).or_default() += 1;
                }
            }
        }
        let nonzero = |m: &BTreeMap<String, u64>| -> BTreeMap<String, u64> {
            m.iter()
                .filter(|(_, v)| **v > 0)
                .map(|(k, v)| (k.clone(), *v))
                .collect()
        };
        prop_assert_eq!(nonzero(&row.entered), entered, "entered on day {}", d);
        prop_assert_eq!(nonzero(&row.left), left, "left on day {}", d);
    }
    let stage = if f.custom { "lapsed" } else { "declining" };
    let (a, b) = (first + 10, first + 70);
    let seg = Segment::parse(&format!(
        "entered:{stage}@{}..{}",
        stickydb::time::format_day(a),
        stickydb::time::format_day(b)
    ))
    .unwrap();
    let got: BTreeSet<String> = db
        .segment(&seg, T0)
        .unwrap()
        .iter()
        .map(|id| db.user_name(id).unwrap().unwrap())
        .collect();
    let want: BTreeSet<String> = f
        .events
        .users()
        .into_iter()
        .filter(|n| {
            (a..=b).any(|d| f.stage(n, d) == Some(stage) && f.stage(n, d - 1) != Some(stage))
        })
        .collect();
    prop_assert_eq!(got, want);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn feed_entries_follow_the_recomputed_stages(
        ops in ops(),
        offset_min in prop::sample::select(vec![0i32, 480, -300]),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path(), Options::default().create_if_missing(true).utc_offset_minutes(offset_min)).unwrap();
        let mut f = Feed {
            events: Model { offset_min, non_activity: vec![], events: Vec::new() },
            custom: false,
            clock_ms: None,
            marks: HashMap::new(),
            incarnation: HashMap::new(),
            ids: HashMap::new(),
        };
        // db user id → (name, incarnation), learned as users appear
        let mut who: HashMap<u32, (String, u32)> = HashMap::new();
        let mut cursor = 0u64;
        for op in &ops {
            let mut want: Vec<Entry> = Vec::new();
            match op {
                Op::Record(evs) => {
                    let mut batch = Vec::new();
                    let mut triggers: BTreeMap<String, Vec<i32>> = BTreeMap::new();
                    let mut seen_in_batch: BTreeSet<(String, String)> = BTreeSet::new();
                    for &(u, day, minute, k, amount, id) in evs {
                        let user = format!("u{u}");
                        let kind = KINDS[k];
                        let ts = T0 + day * DAY_MS + minute * 60_000;
                        let money = kind == "purchase" || kind == "refund";
                        let mut e = Event::new(user.clone(), kind, ts);
                        if money {
                            e = e.with_amount(amount);
                        }
                        if let Some(id) = id {
                            let id = format!("e{id}");
                            e = e.with_id(id.clone());
                            let known = f.ids.get(&user).is_some_and(|s| s.contains(&id));
                            if known || !seen_in_batch.insert((user.clone(), id.clone())) {
                                batch.push(e);
                                continue;
                            }
                            f.ids.entry(user.clone()).or_default().insert(id);
                        }
                        batch.push(e);
                        let d = f.events.day(ts);
                        let active_before = f.events.events.iter().any(|x| x.user == user && f.events.day(x.ts_ms) == d);
                        let bought_before = f.events.events.iter().any(|x| x.user == user && x.kind == "purchase" && f.events.day(x.ts_ms) == d);
                        f.events.events.push(Ev {
                            user: user.clone(),
                            kind,
                            ts_ms: ts,
                            amount: if money { amount } else { 0 },
                            session: None,
                        });
                        let new_purchase_day = kind == "purchase" && !bought_before;
                        if !active_before || new_purchase_day || money {
                            triggers.entry(user).or_default().push(d);
                        }
                    }
                    db.record_batch(&batch).unwrap();
                    for (user, t) in &triggers {
                        f.walk(user, t, None, StageCause::Event, &mut want);
                    }
                }
                Op::Advance(day, minute) => {
                    let now = T0 + day * DAY_MS + minute * 60_000;
                    db.advance(now).unwrap();
                    f.clock_ms = f.clock_ms.max(Some(now));
                    let now_day = f.events.day(now);
                    let users: Vec<String> = f.marks.keys().cloned().collect();
                    for user in users {
                        let m = &f.marks[&user];
                        if f.due(&user, m.day).is_some_and(|d| d <= now_day) {
                            f.walk(&user, &[], Some(now_day), StageCause::Time, &mut want);
                        }
                    }
                }
                Op::Erase(u) => {
                    let user = format!("u{u}");
                    db.erase_user(&user).unwrap();
                    if let Some(m) = f.marks.remove(&user) {
                        if m.stage.is_some() {
                            let inc = f.incarnation.get(&user).copied().unwrap_or(0);
                            want.push((user.clone(), inc, m.stage.map(str::to_owned), None, m.day, StageCause::Erase, false));
                        }
                    }
                    f.events.events.retain(|e| e.user != user);
                    f.ids.remove(&user);
                    *f.incarnation.entry(user).or_default() += 1;
                }
                Op::CustomModel => {
                    db.set_stage_model(custom_model()).unwrap();
                    f.custom = true;
                    let users: Vec<String> = f.marks.keys().cloned().collect();
                    for user in users {
                        f.walk(&user, &[], None, StageCause::Model, &mut want);
                    }
                }
            }
            for u in 0..USERS {
                let name = format!("u{u}");
                if let Some(id) = db.user_id(&name).unwrap() {
                    who.insert(id, (name.clone(), f.incarnation.get(&name).copied().unwrap_or(0)));
                }
            }
            let entries = db.feed(cursor, 10_000).unwrap();
            if let Some(last) = entries.last() {
                prop_assert!(last.cursor > cursor);
                cursor = last.cursor;
            }
            let mut got: Vec<Entry> = entries
                .iter()
                .map(|e| {
                    let (name, inc) = who[&e.record.user_id].clone();
                    match &e.record.change {
                        Change::Stage { from, to, day, cause, .. } => (
                            name, inc, from.clone(), to.clone(), *day, *cause, e.record.retroactive,
                        ),
                        other => panic!("unexpected entry {other:?}"),
                    }
                })
                .collect();
            // entries of one write are grouped by user; users in any order
            got.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
            want.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
            prop_assert_eq!(got, want, "after {:?}", op);
        }
        let first = db.local_day(T0) - 2;
        check_history(&db, &f, first, first + 180)?;
        let report = db.verify().unwrap();
        prop_assert!(report.is_clean(), "{:?}", report.problems);
        // a re-run of the last advance writes nothing
        if let Some(now) = f.clock_ms {
            prop_assert_eq!(db.advance(now).unwrap().stage_changes, 0);
        }
    }
}

/// A merge publishes for both sides in its own write: `from` leaves its
/// stage for `null`, `into` gets the changes the moved events make (a late
/// visit is retroactive); an erasure takes the user's stage to `null`.
#[test]
fn merges_and_erasures_publish_their_changes() {
    let (_dir, db) = common::open_temp();
    db.set_identity_settings(stickydb::IdentitySettings::anonymous(["anon:"]))
        .unwrap();
    let day0 = db.local_day(T0);
    db.record(&Event::new("ann", "view", T0 + 20 * DAY_MS))
        .unwrap();
    // the visitor was active two weeks earlier: once merged, ann's first
    // activity moves back and her stage as of day 20 is no longer `new`
    db.record(&Event::new("anon:7", "view", T0 + 5 * DAY_MS))
        .unwrap();
    let head = db.feed_head().unwrap();
    db.merge("anon:7", "ann", "m1", stickydb::MergeOptions::default())
        .unwrap();
    let got: Vec<(String, Change, bool)> = db
        .feed(head, 10)
        .unwrap()
        .into_iter()
        .map(|e| {
            (
                e.user.unwrap_or_default(),
                e.record.change,
                e.record.retroactive,
            )
        })
        .collect();
    let stage = |from: Option<&str>, to: Option<&str>, day: i32| Change::Stage {
        from: from.map(str::to_owned),
        to: to.map(str::to_owned),
        day,
        at_ms: T0 + i64::from(day - day0) * DAY_MS,
        cause: StageCause::Merge,
    };
    assert_eq!(
        got,
        vec![
            // `from`'s internal id is retired: its entry names no one (the
            // merge record says who it was)
            (String::new(), stage(Some("new"), None, day0 + 5), false),
            (
                "ann".into(),
                stage(Some("new"), Some("growing"), day0 + 5),
                true
            ),
        ]
    );
    let head = db.feed_head().unwrap();
    db.erase_user("ann").unwrap();
    let erased = db.feed(head, 10).unwrap();
    assert_eq!(erased.len(), 1);
    assert_eq!(erased[0].user, None);
    assert!(matches!(
        &erased[0].record.change,
        Change::Stage { from: Some(f), to: None, cause: StageCause::Erase, .. } if f == "growing"
    ));
    common::assert_clean(&db);
}
