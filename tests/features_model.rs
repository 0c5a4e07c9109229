//! Per-user features and rule tags (SPEC §3b) against a brute-force model:
//! random definitions (every operator and window kind, keyed and not,
//! filtered and not) and rules, a random stream of late, out-of-order and
//! duplicate events of a few users, identity merges, erasures, reopens and
//! definition edits; after every step, every user's features and tags at
//! random instants — around its events, at `ts + W − 1`, `ts + W`,
//! `ts + W + 1`, before its newest event — equal a recomputation from the
//! model's list of accepted events.

mod common;
#[path = "model/features.rs"]
mod fmodel;
use std::collections::BTreeMap;

use common::*;
use fmodel::*;
use proptest::prelude::*;
use stickydb::features::{Definition, FeatureValue, Window};
use stickydb::{Db, MergeOptions, Options};

const USERS: usize = 4;

#[derive(Debug, Clone)]
enum Step {
    Record(usize, Ev),
    Merge(usize, usize),
    Erase(usize),
    Reopen,
    Rebuild,
    Advance(i64),
    Redefine(usize, Definition),
    Read(i64),
}

fn step(ndefs: usize) -> impl Strategy<Value = Step> {
    prop_oneof![
        12 => (0..USERS, event()).prop_map(|(u, e)| Step::Record(u, e)),
        1 => (0..USERS, 0..USERS).prop_map(|(a, b)| Step::Merge(a, b)),
        1 => (0..USERS).prop_map(Step::Erase),
        1 => Just(Step::Reopen),
        1 => Just(Step::Rebuild),
        2 => (0i64..300).prop_map(|h| Step::Advance(BASE + h * 1_000_000)),
        1 => (0..ndefs).prop_flat_map(|i| definition(i).prop_map(move |d| Step::Redefine(i, d))),
        3 => (0i64..300).prop_map(|h| Step::Read(BASE + h * 1_000_000)),
    ]
}

/// The model: every accepted event of each canonical user; names that were
/// merged point at their target.
#[derive(Default)]
struct Model {
    events: BTreeMap<String, Vec<Ev>>,
    alias: BTreeMap<String, String>,
    ids: BTreeMap<String, Vec<u8>>,
}

impl Model {
    fn canonical(&self, name: &str) -> String {
        let mut n = name.to_owned();
        while let Some(t) = self.alias.get(&n) {
            n = t.clone();
        }
        n
    }
}

/// Instants worth reading `evs` at under `defs`: around each event and at
/// each sliding window's edges.
fn instants(defs: &[Definition], evs: &[Ev], extra: i64) -> Vec<i64> {
    let mut out = vec![extra];
    for e in evs.iter().take(6) {
        out.extend([e.ts - 1, e.ts, e.ts + 1]);
        for d in defs {
            if let Window::Sliding { ms } = d.window {
                out.extend([e.ts + ms - 1, e.ts + ms, e.ts + ms + 1]);
            }
        }
    }
    out
}

fn check(db: &Db, m: &Model, defs: &[Definition], rules: &Rules, extra: i64) {
    // segments: `tag:T` at the instant holds exactly the model's holders
    let mut holders: BTreeMap<String, Vec<u32>> = BTreeMap::new();
    for (user, evs) in &m.events {
        let values: Vec<FeatureValue> = defs.iter().map(|d| feature(d, evs, extra)).collect();
        let id = db.user_id(user).expect("id").expect("exists");
        // (a user holds rule tags from its first event on)
        let seen = evs.iter().any(|e| e.ts <= extra);
        for t in tags(rules, &values).into_iter().filter(|_| seen) {
            holders.entry(t).or_default().push(id);
        }
    }
    for (name, _) in rules.plain.iter().chain(&rules.keyed) {
        holders
            .entry(name.replace("{key}", CATEGORIES[0]))
            .or_default();
    }
    for (tag, mut want) in holders {
        want.sort_unstable();
        let got: Vec<u32> = db
            .segment(&stickydb::Segment::tag(&tag), extra)
            .expect("segment")
            .iter()
            .collect();
        assert_eq!(got, want, "segment tag:{tag} at {extra}");
    }
    check_feature_atoms(db, m, defs, extra);
    for (user, evs) in &m.events {
        for t in instants(defs, evs, extra) {
            let got = db.features(user, t).expect("features");
            let want: Vec<FeatureValue> = defs.iter().map(|d| feature(d, evs, t)).collect();
            for (d, w) in defs.iter().zip(&want) {
                assert_eq!(
                    got.get(&d.name),
                    Some(w),
                    "{user} {} ({d:?}) at {t}",
                    d.name
                );
            }
            assert!(
                got.truncated.is_empty(),
                "{user} at {t}: {:?}",
                got.truncated
            );
            let held = match evs.iter().any(|e| e.ts <= t) {
                true => tags(rules, &want),
                false => Vec::new(),
            };
            assert_eq!(got.tags, held, "{user} tags at {t}");
        }
    }
}

/// A feature's number as `feature:NAME[KEY]>=x` reads it.
fn number(v: &FeatureValue, key: Option<&str>) -> Option<f64> {
    match (v, key) {
        (FeatureValue::Keyed(map), Some(k)) => map.get(k).and_then(FeatureValue::as_f64),
        (FeatureValue::Ranked(r), Some(k)) => {
            r.iter().find(|(x, _)| x == k).map(|(_, n)| *n as f64)
        }
        (v, None) => v.as_f64(),
        _ => None,
    }
}

/// `feature:NAME>=x` / `<x` (with `[key]` for keyed and `top_k`
/// features) at `extra`: exactly the model's users whose number passes.
fn check_feature_atoms(db: &Db, m: &Model, defs: &[Definition], extra: i64) {
    for d in defs {
        let values: Vec<(u32, FeatureValue)> = m
            .events
            .iter()
            .map(|(user, evs)| {
                let id = db.user_id(user).expect("id").expect("exists");
                (id, feature(d, evs, extra))
            })
            .collect();
        let keyed = values
            .iter()
            .any(|(_, v)| matches!(v, FeatureValue::Keyed(_) | FeatureValue::Ranked(_)));
        let key = keyed.then_some(CATEGORIES[0]);
        let mut bounds: Vec<f64> = values.iter().filter_map(|(_, v)| number(v, key)).collect();
        bounds.push(0.5);
        bounds.truncate(3);
        for bound in bounds {
            for (op, pass) in [
                (">=", (|a: f64, b: f64| a >= b) as fn(f64, f64) -> bool),
                ("<", |a, b| a < b),
            ] {
                let target = match key {
                    Some(k) => format!("{}[{k}]", d.name),
                    None => d.name.clone(),
                };
                let text = format!("feature:{target}{op}{bound}");
                let seg = stickydb::Segment::parse(&text).expect("parses");
                let got: Vec<u32> = db.segment(&seg, extra).expect("segment").iter().collect();
                let mut want: Vec<u32> = values
                    .iter()
                    .filter(|(_, v)| number(v, key).is_some_and(|n| pass(n, bound)))
                    .map(|(id, _)| *id)
                    .collect();
                want.sort_unstable();
                assert_eq!(got, want, "{text} at {extra} ({d:?})");
            }
        }
    }
}

/// Definitions, rules `(tag, condition, keyed)` and steps.
type Case = (Vec<Definition>, Vec<(String, Cond, bool)>, Vec<Step>);

fn setup() -> impl Strategy<Value = Case> {
    (1usize..6)
        .prop_flat_map(|n| (0..n).map(definition).collect::<Vec<_>>())
        .prop_flat_map(|defs| {
            let numeric: Vec<usize> = (0..defs.len())
                .filter(|&i| defs[i].op.is_numeric() && !defs[i].is_keyed())
                .collect();
            let keyed: Vec<usize> = (0..defs.len())
                .filter(|&i| defs[i].op.is_numeric() && defs[i].is_keyed())
                .collect();
            let plain = if numeric.is_empty() {
                Just(Vec::new()).boxed()
            } else {
                proptest::collection::vec(cond(numeric), 0..3).boxed()
            };
            let keyed_rules = if keyed.is_empty() {
                Just(Vec::new()).boxed()
            } else {
                proptest::collection::vec(cond(keyed), 0..2).boxed()
            };
            let n = defs.len();
            (
                Just(defs),
                plain,
                keyed_rules,
                proptest::collection::vec(step(n), 1..40),
            )
        })
        .prop_map(|(defs, plain, keyed, steps)| {
            let mut rules: Vec<(String, Cond, bool)> = plain
                .into_iter()
                .enumerate()
                .map(|(i, c)| (format!("rule{i}"), c, false))
                .collect();
            rules.extend(
                keyed
                    .into_iter()
                    .enumerate()
                    .map(|(i, c)| (format!("krule{i}:{{key}}"), c, true)),
            );
            (defs, rules, steps)
        })
}

fn run(defs: Vec<Definition>, rules: Vec<(String, Cond, bool)>, steps: Vec<Step>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = Options::default().utc_offset_minutes(OFFSET_MIN);
    let mut db = Db::create(dir.path(), options.clone()).expect("create");
    let (tag_rules, model_rules) = rule_sets(&rules);
    let mut defs = defs;
    db.define_features(&defs, &tag_rules).expect("define");
    let mut m = Model::default();
    for (i, s) in steps.into_iter().enumerate() {
        let mut last_read = BASE;
        match s {
            Step::Record(u, mut e) => {
                e.ts += i as i64; // unique instants: no ties to break
                let user = m.canonical(&name(u));
                let dup =
                    e.id.is_some_and(|id| m.ids.get(&user).is_some_and(|ids| ids.contains(&id)));
                let e = if dup {
                    // a repeat of the recorded event with that id
                    let id = e.id;
                    m.events[&user]
                        .iter()
                        .find(|x| x.id == id)
                        .cloned()
                        .expect("recorded")
                } else {
                    e
                };
                db.record(&to_event(&name(u), &e)).expect("record");
                if !dup {
                    if let Some(id) = e.id {
                        m.ids.entry(user.clone()).or_default().push(id);
                    }
                    m.events.entry(user).or_default().push(e);
                }
            }
            Step::Merge(a, b) => {
                let (from, into) = (m.canonical(&name(a)), m.canonical(&name(b)));
                if from == into || !m.events.contains_key(&from) || !m.events.contains_key(&into) {
                    continue;
                }
                db.merge(&from, &into, &format!("m{i}"), MergeOptions::forced())
                    .expect("merge");
                let moved = m.events.remove(&from).unwrap_or_default();
                // event ids are per user: a moved event whose id `into`
                // already has is a duplicate
                let ids = m.ids.remove(&from).unwrap_or_default();
                let into_ids = m.ids.entry(into.clone()).or_default();
                for e in moved {
                    if e.id.is_some_and(|id| into_ids.contains(&id)) {
                        continue;
                    }
                    m.events.entry(into.clone()).or_default().push(e);
                }
                into_ids.extend(ids);
                m.alias.insert(from, into);
            }
            Step::Erase(u) => {
                let user = m.canonical(&name(u));
                if m.alias.values().any(|t| *t == user) || !m.events.contains_key(&user) {
                    continue; // names merged into it stay aliases; keep it simple
                }
                db.erase_user(&user).expect("erase");
                m.events.remove(&user);
                m.ids.remove(&user);
            }
            Step::Reopen => {
                drop(db);
                db = Db::open(dir.path(), options.clone()).expect("reopen");
            }
            Step::Redefine(i, d) => {
                let referenced = rules.iter().any(|(_, c, _)| {
                    let mut l = Vec::new();
                    leaves(c, &mut l);
                    l.contains(&i)
                });
                if referenced
                    && (d.op.is_numeric() != defs[i].op.is_numeric()
                        || d.is_keyed() != defs[i].is_keyed())
                {
                    continue; // the rules reading it would no longer parse
                }
                db.define_features(std::slice::from_ref(&d), &[])
                    .expect("redefine");
                defs[i] = d;
            }
            Step::Read(t) => last_read = t,
            Step::Rebuild => {
                db.rebuild_aggregates().expect("rebuild");
            }
            Step::Advance(t) => {
                db.advance(t).expect("advance");
            }
        }
        check(&db, &m, &defs, &model_rules, last_read);
    }
    db.backfill_features().expect("backfill");
    check(&db, &m, &defs, &model_rules, BASE);
    assert_clean(&db);
    // the feed: per user and tag, entries alternate, and after an advance
    // past everything they fold to the tags the model gives then
    let end = BASE + 400 * 86_400_000;
    db.advance(end).expect("final advance");
    let mut held: BTreeMap<(u32, String), bool> = BTreeMap::new();
    for e in db.feed(0, 100_000).expect("feed") {
        if let stickydb::Change::Tag {
            tag, state, at_ms, ..
        } = &e.record.change
        {
            let entered = *state == stickydb::feed::TagState::Entered;
            let was = held
                .insert((e.record.user_id, tag.clone()), entered)
                .unwrap_or(false);
            assert_ne!(
                was, entered,
                "user {} {tag}: {state:?} twice in a row at {at_ms}",
                e.record.user_id
            );
        }
    }
    for (user, evs) in &m.events {
        let id = db.user_id(user).expect("id").expect("exists");
        let values: Vec<FeatureValue> = defs.iter().map(|d| feature(d, evs, end)).collect();
        let got: Vec<String> = held
            .iter()
            .filter(|((u, _), h)| *u == id && **h)
            .map(|((_, t), _)| t.clone())
            .collect();
        assert_eq!(
            got,
            tags(&model_rules, &values),
            "{user}: the feed's tags after the last advance"
        );
    }
    // users merged away or erased hold nothing
    let live: Vec<u32> = m
        .events
        .keys()
        .map(|u| db.user_id(u).expect("id").expect("exists"))
        .collect();
    for ((u, tag), h) in &held {
        assert!(
            !*h || live.contains(u),
            "user id {u} (gone) still holds {tag}"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn features_and_rule_tags_equal_the_model((defs, rules, steps) in setup()) {
        run(defs, rules, steps);
    }
}
