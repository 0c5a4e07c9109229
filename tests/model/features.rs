//! The brute-force model of per-user features and rule tags shared by the
//! feature tests: generators of definitions, conditions and events, and
//! each feature and tag recomputed from a list of events.

#![allow(dead_code)]

use std::collections::BTreeMap;

use proptest::prelude::*;
use stickydb::features::{Definition, FeatureValue, Op, Window};
use stickydb::{Event, PropValue};

pub const BASE: i64 = 1_700_000_000_000;
pub const KINDS: [&str; 3] = ["view", "purchase", "add_to_cart"];
pub const CATEGORIES: [&str; 3] = ["shoes", "bags", "hats"];
pub const OFFSET_MIN: i32 = 480;

#[derive(Debug, Clone)]
pub struct Ev {
    pub kind: usize,
    pub ts: i64,
    pub category: Option<usize>,
    pub item: u8,
    pub price: Option<i64>,
    pub amount: Option<i64>,
    pub id: Option<u8>,
}

#[derive(Debug, Clone)]
pub enum Cond {
    Ge(usize, i64),
    Lt(usize, i64),
    And(Box<Cond>, Box<Cond>),
    Not(Box<Cond>),
}

pub fn window() -> impl Strategy<Value = Window> {
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

pub fn op() -> impl Strategy<Value = Op> {
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

pub fn definition(i: usize) -> impl Strategy<Value = Definition> {
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

pub fn cond(numeric: Vec<usize>) -> impl Strategy<Value = Cond> {
    let leaf = (proptest::sample::select(numeric), 0i64..4, any::<bool>())
        .prop_map(|(f, k, ge)| if ge { Cond::Ge(f, k) } else { Cond::Lt(f, k) });
    leaf.prop_recursive(2, 6, 2, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| Cond::And(Box::new(a), Box::new(b))),
            inner.prop_map(|a| Cond::Not(Box::new(a))),
        ]
    })
}

pub fn render(c: &Cond, keyed: bool) -> String {
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

pub fn event() -> impl Strategy<Value = Ev> {
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

pub fn qualifying<'a>(d: &Definition, evs: &'a [Ev]) -> Vec<&'a Ev> {
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

pub fn period_start_day(w: Window, t: i64) -> Option<i64> {
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

pub fn in_window(w: Window, e: &Ev, t: i64) -> bool {
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

pub fn num(d: &Definition, e: &Ev) -> i64 {
    match d.field.as_deref() {
        Some("amount") => e.amount.unwrap_or(0),
        _ => e.price.unwrap_or(0),
    }
}

pub fn item(e: &Ev) -> PropValue {
    PropValue::Str(format!("i{}", e.item))
}

/// One feature over the events it covers (oldest first).
pub fn compute(d: &Definition, covered: &[&Ev]) -> FeatureValue {
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

pub fn feature(d: &Definition, evs: &[Ev], t: i64) -> FeatureValue {
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

pub fn holds(c: &Cond, values: &[FeatureValue], key: Option<&str>) -> bool {
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

pub struct Rules {
    pub plain: Vec<(String, Cond)>,
    pub keyed: Vec<(String, Cond)>,
}

pub fn tags(rules: &Rules, values: &[FeatureValue]) -> Vec<String> {
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

pub fn leaves(c: &Cond, out: &mut Vec<usize>) {
    match c {
        Cond::Ge(f, _) | Cond::Lt(f, _) => out.push(*f),
        Cond::And(a, b) => {
            leaves(a, out);
            leaves(b, out);
        }
        Cond::Not(a) => leaves(a, out),
    }
}

pub fn name(u: usize) -> String {
    format!("u{u}")
}

pub fn to_event(user: &str, e: &Ev) -> Event {
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

/// Rules `(tag, condition, keyed)` as the store takes them, and as the
/// model evaluates them.
pub fn rule_sets(rules: &[(String, Cond, bool)]) -> (Vec<stickydb::features::TagRule>, Rules) {
    let store = rules
        .iter()
        .map(|(t, c, k)| stickydb::features::TagRule::new(t.clone(), render(c, *k)))
        .collect();
    let pick = |keyed: bool| {
        rules
            .iter()
            .filter(|r| r.2 == keyed)
            .map(|(t, c, _)| (t.clone(), c.clone()))
            .collect()
    };
    (
        store,
        Rules {
            plain: pick(false),
            keyed: pick(true),
        },
    )
}
