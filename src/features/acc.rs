//! What one feature accumulates from the events it reads, and the value it
//! answers. Every accumulator is add-only and, but for the capped ones past
//! their cap, independent of the order events arrive in: a late event is
//! added like any other.

use std::borrow::{Borrow, Cow};
use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::defs::{Definition, Op};
use crate::timeline::{PropValue, StoredProp};

/// A number read from an event.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub(crate) enum Num {
    Int(i64),
    Float(f64),
}

impl Num {
    fn f64(self) -> f64 {
        match self {
            Num::Int(i) => i as f64,
            Num::Float(f) => f,
        }
    }

    fn value(self) -> FeatureValue {
        match self {
            Num::Int(i) => FeatureValue::Int(i),
            Num::Float(f) => FeatureValue::Float(f),
        }
    }
}

/// What one event contributes to one feature.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Entry {
    pub ts_ms: i64,
    pub seq: u32,
    pub num: Option<Num>,
    pub val: Option<StoredProp>,
    pub key: Option<String>,
}

impl Entry {
    /// The entry, borrowed.
    pub fn as_ref(&self) -> EntryRef<'_> {
        EntryRef {
            ts_ms: self.ts_ms,
            seq: self.seq,
            num: self.num,
            val: self.val.as_ref().map(Cow::Borrowed),
            key: self.key.as_deref().map(Cow::Borrowed),
        }
    }
}

/// An [`Entry`] borrowing from the event it comes from: a read folds the
/// events of a window without copying their strings.
#[derive(Debug, Clone)]
pub(crate) struct EntryRef<'a> {
    pub ts_ms: i64,
    pub seq: u32,
    pub num: Option<Num>,
    pub val: Option<Cow<'a, StoredProp>>,
    pub key: Option<Cow<'a, str>>,
}

impl EntryRef<'_> {
    /// The entry, owned (to keep).
    pub fn to_entry(&self) -> Entry {
        Entry {
            ts_ms: self.ts_ms,
            seq: self.seq,
            num: self.num,
            val: self.val.as_ref().map(|v| v.as_ref().clone()),
            key: self.key.as_ref().map(|k| k.to_string()),
        }
    }
}

/// One feature's value as read.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum FeatureValue {
    /// No value: no event in the window (`min`, `max`, `avg`, `first_at`,
    /// `last_at`, `last_value`).
    Null,
    /// A whole number (counts, integer sums, instants in milliseconds).
    Int(i64),
    /// A number with a fraction (`avg`, sums of float properties).
    Float(f64),
    /// A property value (`last_value`).
    Value(PropValue),
    /// Property values, newest first (`last_k`).
    List(Vec<PropValue>),
    /// Keys with their counts, most first, ties by key (`top_k`).
    Ranked(Vec<(String, u64)>),
    /// One value per key value (a keyed feature).
    Keyed(BTreeMap<String, FeatureValue>),
}

impl FeatureValue {
    /// The value as a number, if it is one.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            FeatureValue::Int(i) => Some(*i as f64),
            FeatureValue::Float(f) => Some(*f),
            _ => None,
        }
    }
}

/// The accumulator of one (unkeyed) feature.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) enum Acc {
    Count(u64),
    Sum {
        int: i128,
        float: f64,
        floats: bool,
        n: u64,
    },
    Min(Option<Num>),
    Max(Option<Num>),
    Distinct {
        values: BTreeSet<String>,
        over: bool,
    },
    FirstAt(Option<i64>),
    LastAt(Option<i64>),
    /// `(ts, seq, value)`, newest first, at most k (1 for `last_value`).
    Last(Vec<(i64, u32, StoredProp)>),
}

impl Acc {
    pub fn new(op: Op) -> Acc {
        match op {
            Op::Count | Op::TopK => Acc::Count(0),
            Op::Sum | Op::Avg => Acc::Sum {
                int: 0,
                float: 0.0,
                floats: false,
                n: 0,
            },
            Op::Min => Acc::Min(None),
            Op::Max => Acc::Max(None),
            Op::Distinct => Acc::Distinct {
                values: BTreeSet::new(),
                over: false,
            },
            Op::FirstAt => Acc::FirstAt(None),
            Op::LastAt => Acc::LastAt(None),
            Op::LastValue | Op::LastK => Acc::Last(Vec::new()),
        }
    }

    pub fn add(&mut self, e: &EntryRef<'_>, d: &Definition) {
        match self {
            Acc::Count(n) => *n += 1,
            Acc::Sum {
                int,
                float,
                floats,
                n,
            } => {
                match e.num {
                    Some(Num::Int(i)) => *int += i128::from(i),
                    Some(Num::Float(f)) => {
                        *float += f;
                        *floats = true;
                    }
                    None => return,
                }
                *n += 1;
            }
            Acc::Min(m) => keep(m, e.num, |new, old| new < old),
            Acc::Max(m) => keep(m, e.num, |new, old| new > old),
            Acc::Distinct { values, over } => {
                let Some(v) = &e.val else { return };
                let text = canonical(v.as_ref());
                if values.len() < d.cap as usize || values.contains(&text) {
                    values.insert(text);
                } else {
                    *over = true;
                }
            }
            Acc::FirstAt(at) => *at = Some(at.map_or(e.ts_ms, |a| a.min(e.ts_ms))),
            Acc::LastAt(at) => *at = Some(at.map_or(e.ts_ms, |a| a.max(e.ts_ms))),
            Acc::Last(items) => {
                let Some(v) = &e.val else { return };
                let k = if d.op == Op::LastK { d.k as usize } else { 1 };
                let at = items.partition_point(|(ts, seq, _)| (*ts, *seq) > (e.ts_ms, e.seq));
                if at < k {
                    items.insert(at, (e.ts_ms, e.seq, v.as_ref().clone()));
                    items.truncate(k);
                }
            }
        }
    }

    /// The value, and whether a cap cut it.
    pub fn value(&self, op: Op) -> (FeatureValue, bool) {
        let v = match self {
            Acc::Count(n) => FeatureValue::Int(*n as i64),
            Acc::Sum { n: 0, .. } if op == Op::Avg => FeatureValue::Null,
            Acc::Sum { int, float, n, .. } if op == Op::Avg => {
                FeatureValue::Float((*int as f64 + float) / *n as f64)
            }
            Acc::Sum {
                int, floats: false, ..
            } => i64::try_from(*int).map_or(FeatureValue::Float(*int as f64), FeatureValue::Int),
            Acc::Sum { int, float, .. } => FeatureValue::Float(*int as f64 + float),
            Acc::Min(m) | Acc::Max(m) => m.map_or(FeatureValue::Null, Num::value),
            Acc::Distinct { values, over } => {
                return (FeatureValue::Int(values.len() as i64), *over)
            }
            Acc::FirstAt(at) | Acc::LastAt(at) => at.map_or(FeatureValue::Null, FeatureValue::Int),
            Acc::Last(items) if op == Op::LastK => {
                FeatureValue::List(items.iter().map(|(_, _, v)| v.clone().into()).collect())
            }
            Acc::Last(items) => items.first().map_or(FeatureValue::Null, |(_, _, v)| {
                FeatureValue::Value(v.clone().into())
            }),
        };
        (v, false)
    }
}

fn keep(m: &mut Option<Num>, new: Option<Num>, better: impl Fn(f64, f64) -> bool) {
    if let Some(new) = new {
        if m.is_none_or(|old| better(new.f64(), old.f64())) {
            *m = Some(new);
        }
    }
}

/// A property value as one string, its type first (`3` and `"3"` differ).
fn canonical(v: &StoredProp) -> String {
    match v {
        StoredProp::Bool(b) => format!("b:{b}"),
        StoredProp::Int(i) => format!("i:{i}"),
        StoredProp::Float(f) => format!("f:{}", f.to_bits()),
        StoredProp::Str(s) => format!("s:{s}"),
    }
}

/// A keyed feature: an accumulator and an event count per key value
/// (keys owned when kept in a state, borrowed from the events when a
/// window is folded at a read).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Keyed<K: Ord = String> {
    pub map: BTreeMap<K, (u64, Acc)>,
    /// Events whose key found no room under the cap.
    pub overflow: u64,
}

impl<K: Ord> Default for Keyed<K> {
    fn default() -> Self {
        Keyed {
            map: BTreeMap::new(),
            overflow: 0,
        }
    }
}

impl<K: Ord + Clone + Borrow<str>> Keyed<K> {
    /// Adds `e`: a key not yet held is admitted while there is room (a
    /// lifetime map: first come, first kept); `capped: false` admits all
    /// (a window's map, cut by count afterwards with [`Keyed::cap`]).
    pub fn add<'a>(&mut self, e: &EntryRef<'a>, d: &Definition, capped: bool)
    where
        K: From<Cow<'a, str>>,
    {
        let Some(key) = &e.key else { return };
        if let Some((n, acc)) = self.map.get_mut(key.as_ref()) {
            *n += 1;
            acc.add(e, d);
            return;
        }
        if capped && self.map.len() >= d.cap as usize {
            self.overflow += 1;
            return;
        }
        let mut acc = Acc::new(d.op);
        acc.add(e, d);
        self.map.insert(K::from(key.clone()), (1, acc));
    }

    /// Keeps the `cap` keys with the most events (ties: the smaller key).
    pub fn cap(&mut self, cap: u32) {
        if self.map.len() <= cap as usize {
            return;
        }
        let mut by_count: Vec<(u64, K)> =
            self.map.iter().map(|(k, (n, _))| (*n, k.clone())).collect();
        by_count.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
        for (n, key) in by_count.into_iter().skip(cap as usize) {
            self.map.remove::<K>(&key);
            self.overflow += n;
        }
    }

    /// The value, and whether a cap cut it.
    pub fn value(&self, d: &Definition) -> (FeatureValue, bool) {
        let mut cut = self.overflow > 0;
        let text = |k: &K| -> String { k.borrow().to_owned() };
        if d.op == Op::TopK {
            let mut ranked: Vec<(&K, u64)> = self.map.iter().map(|(k, (n, _))| (k, *n)).collect();
            ranked.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
            ranked.truncate(d.k as usize);
            let ranked = ranked.into_iter().map(|(k, n)| (text(k), n)).collect();
            return (FeatureValue::Ranked(ranked), cut);
        }
        let mut out = BTreeMap::new();
        for (key, (_, acc)) in &self.map {
            let (v, c) = acc.value(d.op);
            cut |= c;
            out.insert(text(key), v);
        }
        (FeatureValue::Keyed(out), cut)
    }
}
