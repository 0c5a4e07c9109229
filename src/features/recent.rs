//! The recent events a user's windowed features read, kept once for all
//! of them (a view read by six definitions is one entry, not six): kind
//! and properties by their index in the definitions' lists, only the
//! properties some windowed definition names.
//!
//! Kept by column: the events' fixed fields, one column of value indexes
//! per property, and each distinct value once (a category viewed twenty
//! times is one string). A state decodes with a handful of allocations,
//! and its instants are stored as differences, mostly one or two bytes.

use std::borrow::Cow;

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use super::acc::EntryRef;
use super::defs::Definition;
use super::state::{contribution, Input};
use super::FeatureSet;
use crate::timeline::StoredProp;

/// Most recent events one state keeps; past it the oldest go and reads
/// their windows could cover are flagged `truncated`.
pub(crate) const MAX_RECENT_EVENTS: usize = 8_192;

/// One kept event's fixed fields.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub(crate) struct Kept {
    /// Stored as the difference from the event before (see [`deltas`]).
    pub ts_ms: i64,
    pub seq: u32,
    /// Index into [`FeatureSet::window_kinds`].
    pub kind: u16,
    pub amount_minor: Option<i64>,
}

/// Where a windowed definition's value comes from in a kept event.
#[derive(Debug, Clone, Copy, Default)]
enum Field {
    #[default]
    None,
    Amount,
    Prop(u16),
}

/// How one sliding or calendar definition reads kept events, by index:
/// a window folded at every step of a walk compares no strings.
#[derive(Debug, Clone, Default)]
pub(crate) struct Matcher {
    /// By index into [`FeatureSet::window_kinds`]: the definition reads it.
    kinds: Vec<bool>,
    filter: Vec<(u16, StoredProp)>,
    /// `Some(None)`: a key property the kept events cannot carry.
    key: Option<Option<u16>>,
    field: Option<Field>,
}

impl Matcher {
    /// The matcher of `d` (with `filter`, its filter as stored) under the
    /// window kinds and properties `kinds`, `props` (sorted).
    pub fn new(
        d: &Definition,
        filter: &[(String, StoredProp)],
        kinds: &[String],
        props: &[String],
    ) -> Matcher {
        let index = |name: &str| {
            props
                .binary_search_by(|p| p.as_str().cmp(name))
                .ok()
                .and_then(|i| u16::try_from(i).ok())
        };
        Matcher {
            kinds: kinds.iter().map(|k| d.kinds.contains(k)).collect(),
            // (a filter on a property kept events lack matches none: u16::MAX)
            filter: filter
                .iter()
                .map(|(k, v)| (index(k).unwrap_or(u16::MAX), v.clone()))
                .collect(),
            key: d.key.as_deref().map(index),
            field: d.field.as_deref().map(|f| match f {
                "amount" => Field::Amount,
                f => index(f).map_or(Field::None, Field::Prop),
            }),
        }
    }
}

/// The kept events, oldest first; those at or before `lost_upto` may have
/// been dropped for room.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Recent {
    #[serde(with = "deltas")]
    pub events: Vec<Kept>,
    /// Per property (index into [`FeatureSet::window_props`]), per event:
    /// 1 + the index of its value in `values`, 0 when it has none. A
    /// column may be shorter than `events`: the rest have none.
    cols: Vec<Vec<u32>>,
    /// The values the columns name.
    values: Vec<StoredProp>,
    pub lost_upto: Option<i64>,
}

impl Recent {
    /// Keeps `e` if a windowed definition reads its kind.
    pub fn add(&mut self, set: &FeatureSet, e: &Input<'_>) {
        let Some(kind) = set.window_kinds().iter().position(|k| k == e.kind) else {
            return;
        };
        let kept = Kept {
            ts_ms: e.ts_ms,
            seq: e.seq,
            kind: kind as u16,
            amount_minor: e.amount_minor,
        };
        let at = self
            .events
            .partition_point(|x| (x.ts_ms, x.seq) < (kept.ts_ms, kept.seq));
        self.events.insert(at, kept);
        let props = set.window_props();
        if self.cols.len() < props.len() {
            self.cols.resize(props.len(), Vec::new());
        }
        for (name, col) in props.iter().zip(&mut self.cols) {
            // (the column reaches the new event, then gets its value)
            col.resize(col.len().max(at), 0);
            let slot = match e.prop(name) {
                None => 0,
                Some(v) => {
                    self.values.push(v.clone());
                    self.values.len() as u32
                }
            };
            col.insert(at, slot);
        }
    }

    /// Appends an event newer than every kept one, with its properties by
    /// index (a state read from an older layout).
    pub fn push(&mut self, kept: Kept, props: Vec<(u16, StoredProp)>) {
        let at = self.events.len();
        self.events.push(kept);
        for (p, v) in props {
            let p = usize::from(p);
            if self.cols.len() <= p {
                self.cols.resize(p + 1, Vec::new());
            }
            if let Some(col) = self.cols.get_mut(p) {
                col.resize(at, 0);
                self.values.push(v);
                col.push(self.values.len() as u32);
            }
        }
    }

    /// The value of property `prop` of event `i`.
    fn prop(&self, i: usize, prop: u16) -> Option<&StoredProp> {
        let slot = *self.cols.get(usize::from(prop))?.get(i)?;
        self.values.get(usize::try_from(slot).ok()?.checked_sub(1)?)
    }

    /// What event `i` contributes to `d` (read through `m`), if `d` reads
    /// it: the same as `entry_for` over the event as written.
    pub fn entry<'a>(&'a self, i: usize, d: &Definition, m: &Matcher) -> Option<EntryRef<'a>> {
        let e = self.events.get(i)?;
        if !m.kinds.get(usize::from(e.kind)).copied().unwrap_or(false) {
            return None;
        }
        if !m.filter.iter().all(|(p, v)| self.prop(i, *p) == Some(v)) {
            return None;
        }
        let key = match m.key {
            None => None,
            Some(p) => Some(self.prop(i, p?)?),
        };
        let val = match m.field {
            None => None,
            Some(Field::Amount) => Some(Cow::Owned(StoredProp::Int(e.amount_minor?))),
            Some(Field::Prop(p)) => Some(Cow::Borrowed(self.prop(i, p)?)),
            Some(Field::None) => return None,
        };
        contribution(d, (e.ts_ms, e.seq), key, val)
    }

    /// The indexes of the kept events in `(lower, t]` (`lower`: `None`,
    /// no lower bound).
    pub fn covered(&self, lower: Option<i64>, t: i64) -> std::ops::Range<usize> {
        let from = lower.map_or(0, |l| self.events.partition_point(|e| e.ts_ms <= l));
        let to = self.events.partition_point(|e| e.ts_ms <= t).max(from);
        from..to
    }

    /// Drops the events no windowed read at or after `anchor` covers:
    /// `bounds[kind]` is the lowest instant one may not (`None`: keep none).
    pub fn trim(&mut self, bounds: &[Option<i64>]) {
        let keep: Vec<bool> = (self.events.iter())
            .map(|e| {
                let bound = bounds.get(usize::from(e.kind)).copied().flatten();
                bound.is_some_and(|b| e.ts_ms > b)
            })
            .collect();
        if keep.contains(&false) {
            let mut flags = keep.iter();
            self.events
                .retain(|_| flags.next().copied().unwrap_or(false));
            for col in &mut self.cols {
                let mut flags = keep.iter();
                col.retain(|_| flags.next().copied().unwrap_or(false));
            }
        }
        if self.events.len() > MAX_RECENT_EVENTS {
            let cut = self.events.len() - MAX_RECENT_EVENTS;
            self.drop_oldest(cut);
        }
        self.compact();
    }

    /// Drops the `cut` oldest events, marking their span lost.
    pub fn drop_oldest(&mut self, cut: usize) {
        if let Some(last) = self.events.get(cut.saturating_sub(1)) {
            let ts = last.ts_ms;
            self.lost_upto = Some(self.lost_upto.map_or(ts, |l| l.max(ts)));
        }
        self.events.drain(..cut.min(self.events.len()));
        for col in &mut self.cols {
            col.drain(..cut.min(col.len()));
        }
    }

    /// Keeps only the values a kept event names, each string once, and
    /// cuts the columns' trailing zeros.
    fn compact(&mut self) {
        let mut remap = vec![0u32; self.values.len()];
        let mut order: Vec<usize> = Vec::new();
        {
            let mut strings: FxHashMap<&str, u32> = FxHashMap::default();
            for &slot in self.cols.iter().flatten() {
                let Some(old) = (slot as usize).checked_sub(1) else {
                    continue;
                };
                let (Some(v), Some(0)) = (self.values.get(old), remap.get(old).copied()) else {
                    continue;
                };
                let next = order.len() as u32 + 1;
                let new = match v {
                    StoredProp::Str(s) => *strings.entry(s.as_str()).or_insert(next),
                    _ => next,
                };
                if new == next {
                    order.push(old);
                }
                if let Some(r) = remap.get_mut(old) {
                    *r = new;
                }
            }
        }
        let mut old = std::mem::take(&mut self.values);
        self.values = (order.iter())
            .filter_map(|&i| {
                old.get_mut(i)
                    .map(|v| std::mem::replace(v, StoredProp::Bool(false)))
            })
            .collect();
        for col in &mut self.cols {
            for slot in col.iter_mut().filter(|s| **s > 0) {
                *slot = remap.get(*slot as usize - 1).copied().unwrap_or(0);
            }
            let used = col.iter().rposition(|s| *s > 0).map_or(0, |i| i + 1);
            col.truncate(used);
        }
    }
}

/// The kept events' instants as differences from the one before (the
/// first from 0): sorted instants make them small, and the codec's
/// variable-length integers store them in a byte or two.
mod deltas {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::Kept;

    pub fn serialize<S: Serializer>(events: &[Kept], s: S) -> Result<S::Ok, S::Error> {
        let mut prev = 0i64;
        let wire: Vec<Kept> = (events.iter())
            .map(|e| {
                let d = Kept {
                    ts_ms: e.ts_ms.wrapping_sub(prev),
                    ..*e
                };
                prev = e.ts_ms;
                d
            })
            .collect();
        wire.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Kept>, D::Error> {
        let mut events = Vec::<Kept>::deserialize(d)?;
        let mut prev = 0i64;
        for e in &mut events {
            e.ts_ms = e.ts_ms.wrapping_add(prev);
            prev = e.ts_ms;
        }
        Ok(events)
    }
}
