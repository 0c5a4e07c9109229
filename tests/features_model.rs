//! Per-user features and rule tags (SPEC §3b) against a brute-force model:
//! random definitions (every operator and window kind, keyed and not,
//! filtered and not) and rules, a random stream of late, out-of-order and
//! duplicate events of a few users, identity merges, erasures, reopens and
//! definition edits; after every step, every user's features and tags at
//! random instants — around its events, at `ts + W − 1`, `ts + W`,
//! `ts + W + 1`, before its newest event — equal a recomputation from the
//! model's list of accepted events.

mod common;
use std::collections::BTreeMap;

use common::*;
use proptest::prelude::*;
use stickydb::features::{Definition, FeatureValue, Op, TagRule, Window};
use stickydb::{Db, Event, MergeOptions, Options, PropValue};

const BASE: i64 = 1_700_000_000_000;
const KINDS: [&str; 3] = ["view", "purchase", "add_to_cart"];
const CATEGORIES: [&str; 3] = ["shoes", "bags", "hats"];
const USERS: usize = 4;
const OFFSET_MIN: i32 = 480;

#[derive(Debug, Clone)]
struct Ev {
    kind: usize,
    ts: i64,
    category: Option<usize>,
    item: u8,
    price: Option<i64>,
    amount: Option<i64>,
    id: Option<u8>,
}

#[derive(Debug, Clone)]
enum Step {
    Record(usize, Ev),
    Merge(usize, usize),
    Erase(usize),
    Reopen,
    Redefine(usize, Definition),
    Read(usize, i64),
}

#[derive(Debug, Clone)]
enum Cond {
    Ge(usize, i64),
    Lt(usize, i64),
    And(Box<Cond>, Box<Cond>),
    Not(Box<Cond>),
}

fn window() -> impl Strategy<Value = Window> {
    prop_oneof![
        (1i64..4).prop_map(|h| Window::Sliding { ms: h * 3_600_000 }),
        (1i64..3).prop_map(|d| Window::Sliding { ms: d * 86_400_000 }),
        Just(Window::Lifetime),
        Just(Window::Day),
        Just(Window::Week),
        Just(Window::Month),
        (1u32..4).prop_map(|n| Window::LastEvents { n }),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        Just(Op::Count),
        Just(Op::Sum),
        Just(Op::Min),
        Just(Op::Max),
        Just(Op::Avg),
        Just(Op::Distinct),
        Just(Op::FirstAt),
        Just(Op::LastAt),
        Just(Op::LastValue),
        Just(Op::LastK),
        Just(Op::TopK),
    ]
}

fn definition(i: usize) -> impl Strategy<Value = Definition> {
    (
        op(),
        window(),
        proptest::sample::subsequence(KINDS.to_vec(), 1..=3),
        proptest::option::of(0..CATEGORIES.len()),
        any::<bool>(),
        any::<bool>(),
        1u32..4,
    )
        .prop_map(move |(op, window, kinds, filter, keyed, amount, k)| {
            let mut d = Definition::new(format!("f{i}"), kinds, op, window);
            // a filtered feature is not keyed by what it filters on
            if let Some(c) = filter.filter(|_| !keyed) {
                d = d.with_filter("category", PropValue::Str(CATEGORIES[c].into()));
            }
            d = match op {
                Op::Sum | Op::Min | Op::Max | Op::Avg => {
                    d.with_field(if amount { "amount" } else { "price" })
                }
                Op::Distinct | Op::LastValue => d.with_field("item"),
                Op::LastK => d.with_field("item").with_k(k),
                Op::TopK => d.with_key("category").with_k(k),
                _ => d,
            };
            if keyed && !matches!(op, Op::TopK | Op::LastK) {
                d = d.with_key("category");
            }
            d
        })
}

fn cond(numeric: Vec<usize>) -> impl Strategy<Value = Cond> {
    let leaf = (proptest::sample::select(numeric), 0i64..4, any::<bool>())
        .prop_map(|(f, k, ge)| if ge { Cond::Ge(f, k) } else { Cond::Lt(f, k) });
    leaf.prop_recursive(2, 6, 2, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| Cond::And(Box::new(a), Box::new(b))),
            inner.prop_map(|a| Cond::Not(Box::new(a))),
        ]
    })
}

fn render(c: &Cond, keyed: bool) -> String {
    let name = |f: &usize| {
        if keyed {
            format!("f{f}[key]")
        } else {
            format!("f{f}")
        }
    };
    match c {
        Cond::Ge(f, k) => format!("{} >= {k}", name(f)),
        Cond::Lt(f, k) => format!("{} < {k}", name(f)),
        Cond::And(a, b) => format!("({}) and ({})", render(a, keyed), render(b, keyed)),
        Cond::Not(a) => format!("not ({})", render(a, keyed)),
    }
}

fn event() -> impl Strategy<Value = Ev> {
    (
        0..KINDS.len(),
        0i64..240,
        proptest::option::of(0..CATEGORIES.len()),
        0u8..4,
        proptest::option::of(-5i64..50),
        proptest::option::of(0i64..1_000),
        proptest::option::of(0u8..6),
    )
        .prop_map(|(kind, slot, category, item, price, amount, id)| Ev {
            kind,
            // 20-minute slots over 80 hours; the step's index makes each
            // instant unique (see `unique`)
            ts: BASE + slot * 1_200_000,
            category,
            item,
            price,
            amount,
            id,
        })
}

fn step(ndefs: usize) -> impl Strategy<Value = Step> {
    prop_oneof![
        12 => (0..USERS, event()).prop_map(|(u, e)| Step::Record(u, e)),
        1 => (0..USERS, 0..USERS).prop_map(|(a, b)| Step::Merge(a, b)),
        1 => (0..USERS).prop_map(Step::Erase),
        1 => Just(Step::Reopen),
        1 => (0..ndefs).prop_flat_map(|i| definition(i).prop_map(move |d| Step::Redefine(i, d))),
        3 => (0..USERS, 0i64..300).prop_map(|(u, h)| Step::Read(u, BASE + h * 1_000_000)),
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

fn qualifying<'a>(d: &Definition, evs: &'a [Ev]) -> Vec<&'a Ev> {
    evs.iter()
        .filter(|e| d.kinds.iter().any(|k| k == KINDS[e.kind]))
        .filter(|e| {
            d.filter.iter().all(|(_, v)| match (v, e.category) {
                (PropValue::Str(s), Some(c)) => s == CATEGORIES[c],
                _ => false,
            })
        })
        .filter(|e| d.key.is_none() || e.category.is_some())
        .filter(|e| match d.field.as_deref() {
            Some("amount") => e.amount.is_some(),
            Some("price") => e.price.is_some(),
            _ => true,
        })
        .collect()
}

fn period_start_day(w: Window, t: i64) -> Option<i64> {
    let day = (t + i64::from(OFFSET_MIN) * 60_000).div_euclid(86_400_000);
    let date = chrono::NaiveDate::from_ymd_opt(1970, 1, 1)? + chrono::Duration::days(day);
    use chrono::Datelike;
    Some(match w {
        Window::Day => day,
        Window::Week => day - i64::from(date.weekday().num_days_from_monday()),
        Window::Month => day - i64::from(date.day0()),
        _ => return None,
    })
}

fn in_window(w: Window, e: &Ev, t: i64) -> bool {
    if e.ts > t {
        return false;
    }
    match w {
        Window::Sliding { ms } => e.ts > t - ms,
        Window::Day | Window::Week | Window::Month => {
            let day = (e.ts + i64::from(OFFSET_MIN) * 60_000).div_euclid(86_400_000);
            period_start_day(w, t).is_some_and(|s| day >= s)
        }
        _ => true,
    }
}

fn num(d: &Definition, e: &Ev) -> i64 {
    match d.field.as_deref() {
        Some("amount") => e.amount.unwrap_or(0),
        _ => e.price.unwrap_or(0),
    }
}

fn item(e: &Ev) -> PropValue {
    PropValue::Str(format!("i{}", e.item))
}

/// One feature over the events it covers (oldest first).
fn compute(d: &Definition, covered: &[&Ev]) -> FeatureValue {
    let n = covered.len() as i64;
    match d.op {
        Op::Count => FeatureValue::Int(n),
        Op::Sum => FeatureValue::Int(covered.iter().map(|e| num(d, e)).sum()),
        Op::Avg if n == 0 => FeatureValue::Null,
        Op::Avg => {
            FeatureValue::Float(covered.iter().map(|e| num(d, e)).sum::<i64>() as f64 / n as f64)
        }
        Op::Min => covered
            .iter()
            .map(|e| num(d, e))
            .min()
            .map_or(FeatureValue::Null, FeatureValue::Int),
        Op::Max => covered
            .iter()
            .map(|e| num(d, e))
            .max()
            .map_or(FeatureValue::Null, FeatureValue::Int),
        Op::Distinct => {
            let set: std::collections::BTreeSet<u8> = covered.iter().map(|e| e.item).collect();
            FeatureValue::Int(set.len() as i64)
        }
        Op::FirstAt => covered
            .first()
            .map_or(FeatureValue::Null, |e| FeatureValue::Int(e.ts)),
        Op::LastAt => covered
            .last()
            .map_or(FeatureValue::Null, |e| FeatureValue::Int(e.ts)),
        Op::LastValue => covered
            .last()
            .map_or(FeatureValue::Null, |e| FeatureValue::Value(item(e))),
        Op::LastK => FeatureValue::List(
            covered
                .iter()
                .rev()
                .take(d.k as usize)
                .map(|e| item(e))
                .collect(),
        ),
        Op::TopK => {
            let mut counts: BTreeMap<String, u64> = BTreeMap::new();
            for e in covered {
                *counts
                    .entry(CATEGORIES[e.category.unwrap_or(0)].to_owned())
                    .or_default() += 1;
            }
            let mut ranked: Vec<(String, u64)> = counts.into_iter().collect();
            ranked.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            ranked.truncate(d.k as usize);
            FeatureValue::Ranked(ranked)
        }
        _ => unreachable!("every operator is generated"),
    }
}

fn feature(d: &Definition, evs: &[Ev], t: i64) -> FeatureValue {
    let mut q = qualifying(d, evs);
    q.sort_by_key(|e| e.ts);
    let mut covered: Vec<&Ev> = q
        .into_iter()
        .filter(|e| in_window(d.window, e, t))
        .collect();
    if let Window::LastEvents { n } = d.window {
        covered.drain(..covered.len().saturating_sub(n as usize));
    }
    if d.key.is_none() || d.op == Op::TopK {
        return compute(d, &covered);
    }
    let mut by_key: BTreeMap<String, Vec<&Ev>> = BTreeMap::new();
    for e in covered {
        by_key
            .entry(CATEGORIES[e.category.unwrap_or(0)].to_owned())
            .or_default()
            .push(e);
    }
    FeatureValue::Keyed(
        by_key
            .into_iter()
            .map(|(k, v)| (k, compute(d, &v)))
            .collect(),
    )
}

fn holds(c: &Cond, values: &[FeatureValue], key: Option<&str>) -> bool {
    let get = |f: &usize| -> Option<f64> {
        match (&values[*f], key) {
            (FeatureValue::Keyed(m), Some(k)) => m.get(k)?.as_f64(),
            (v, None) => v.as_f64(),
            _ => None,
        }
    };
    match c {
        Cond::Ge(f, k) => get(f).is_some_and(|v| v >= *k as f64),
        Cond::Lt(f, k) => get(f).is_some_and(|v| v < *k as f64),
        Cond::And(a, b) => holds(a, values, key) && holds(b, values, key),
        Cond::Not(a) => !holds(a, values, key),
    }
}

struct Rules {
    plain: Vec<(String, Cond)>,
    keyed: Vec<(String, Cond)>,
}

fn tags(rules: &Rules, values: &[FeatureValue]) -> Vec<String> {
    let mut out: Vec<String> = rules
        .plain
        .iter()
        .filter(|(_, c)| holds(c, values, None))
        .map(|(t, _)| t.clone())
        .collect();
    for (tag, c) in &rules.keyed {
        let mut keys: Vec<&String> = Vec::new();
        let mut fs = Vec::new();
        leaves(c, &mut fs);
        for f in fs {
            if let FeatureValue::Keyed(m) = &values[f] {
                keys.extend(m.keys());
            }
        }
        keys.sort();
        keys.dedup();
        for k in keys {
            if holds(c, values, Some(k)) {
                out.push(tag.replace("{key}", k));
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

fn leaves(c: &Cond, out: &mut Vec<usize>) {
    match c {
        Cond::Ge(f, _) | Cond::Lt(f, _) => out.push(*f),
        Cond::And(a, b) => {
            leaves(a, out);
            leaves(b, out);
        }
        Cond::Not(a) => leaves(a, out),
    }
}

fn name(u: usize) -> String {
    format!("u{u}")
}

fn to_event(user: &str, e: &Ev) -> Event {
    let mut ev = Event::new(user, KINDS[e.kind], e.ts).with_property("item", item(e));
    if let Some(c) = e.category {
        ev = ev.with_property("category", PropValue::Str(CATEGORIES[c].into()));
    }
    if let Some(p) = e.price {
        ev = ev.with_property("price", PropValue::Int(p));
    }
    if let Some(a) = e.amount {
        ev = ev.with_amount(a);
    }
    if let Some(id) = e.id {
        ev = ev.with_id(format!("e{id}"));
    }
    ev
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
            assert_eq!(got.tags, tags(rules, &want), "{user} tags at {t}");
        }
    }
}

fn setup() -> impl Strategy<Value = (Vec<Definition>, Vec<(String, Cond, bool)>, Vec<Step>)> {
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
    let tag_rules: Vec<TagRule> = rules
        .iter()
        .map(|(t, c, k)| TagRule::new(t.clone(), render(c, *k)))
        .collect();
    let mut defs = defs;
    db.define_features(&defs, &tag_rules).expect("define");
    let model_rules = Rules {
        plain: rules
            .iter()
            .filter(|r| !r.2)
            .map(|(t, c, _)| (t.clone(), c.clone()))
            .collect(),
        keyed: rules
            .iter()
            .filter(|r| r.2)
            .map(|(t, c, _)| (t.clone(), c.clone()))
            .collect(),
    };
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
                db.define_features(&[d.clone()], &[]).expect("redefine");
                defs[i] = d;
            }
            Step::Read(_, t) => last_read = t,
        }
        check(&db, &m, &defs, &model_rules, last_read);
    }
    db.backfill_features().expect("backfill");
    check(&db, &m, &defs, &model_rules, BASE);
    assert_clean(&db);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn features_and_rule_tags_equal_the_model((defs, rules, steps) in setup()) {
        run(defs, rules, steps);
    }
}
