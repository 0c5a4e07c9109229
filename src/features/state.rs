//! One user's feature state: what every definition keeps of the events it
//! read, as of the user's newest event (the anchor), and how a value at
//! any instant at or after the anchor is answered from it.
//!
//! Lifetime features keep their accumulator. Every other window keeps the
//! contributions of the events it may still cover at or after the anchor
//! (a sliding window's last `W`, a calendar window's current period, the
//! last N events), so a read slides the window over them exactly, to the
//! millisecond, with no event read. A state over the value limit drops its
//! oldest contributions and flags the reads they could change `truncated`.

use serde::{Deserialize, Serialize};

use std::borrow::Cow;

use super::acc::{Acc, Entry, EntryRef, FeatureValue, Keyed, Num};
use super::defs::{Definition, Op, Window};
use super::recent::Recent;
use super::FeatureSet;
use crate::time;
use crate::timeline::StoredProp;

/// Most contributions one windowed feature keeps per user.
pub(crate) const MAX_BUFFER_ENTRIES: usize = 4_096;

/// One event as features read it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Input<'a> {
    pub ts_ms: i64,
    pub seq: u32,
    pub kind: &'a str,
    pub amount_minor: Option<i64>,
    /// The event's properties, by name.
    pub properties: &'a [(String, StoredProp)],
}

impl<'a> Input<'a> {
    pub fn prop(&self, name: &str) -> Option<&'a StoredProp> {
        self.properties
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }
}

/// What one definition keeps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) enum Slot {
    /// A lifetime feature's accumulator.
    Acc(Acc),
    /// A lifetime keyed feature (or `top_k`).
    Keyed(Keyed),
    /// A sliding or calendar window: read from the state's recent events.
    Window,
    /// A last-N window's contributions, oldest first; those with
    /// `ts_ms <= lost_upto` may have been dropped for room.
    Buffer {
        entries: Vec<Entry>,
        lost_upto: Option<i64>,
    },
}

/// One user's state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct UserState {
    /// The definitions' version it was computed under.
    pub version: u64,
    /// The newest event instant it holds (`i64::MIN`: none).
    pub anchor_ms: i64,
    pub slots: Vec<Slot>,
    /// The recent events the sliding and calendar windows read.
    pub recent: Recent,
    /// The published rule tags (none without rules).
    pub tags: Option<super::publish::TagMark>,
}

/// The contribution of `e` to `d`, if `d` reads it.
pub(crate) fn entry_for<'a>(
    d: &Definition,
    filter: &[(String, StoredProp)],
    e: &Input<'a>,
) -> Option<EntryRef<'a>> {
    if !d.kinds.iter().any(|k| k == e.kind) {
        return None;
    }
    if !filter.iter().all(|(k, v)| e.prop(k) == Some(v)) {
        return None;
    }
    let key = match &d.key {
        None => None,
        Some(k) => Some(e.prop(k)?),
    };
    let val = match d.field.as_deref() {
        None => None,
        Some("amount") => Some(Cow::Owned(StoredProp::Int(e.amount_minor?))),
        Some(f) => Some(Cow::Borrowed(e.prop(f)?)),
    };
    contribution(d, (e.ts_ms, e.seq), key, val)
}

/// The contribution of an event `d` reads, from its key property and its
/// field's value (both present if `d` names them).
pub(crate) fn contribution<'a>(
    d: &Definition,
    (ts_ms, seq): (i64, u32),
    key: Option<&'a StoredProp>,
    val: Option<Cow<'a, StoredProp>>,
) -> Option<EntryRef<'a>> {
    let num = match (val.as_deref(), d.op) {
        (Some(StoredProp::Int(i)), _) => Some(Num::Int(*i)),
        (Some(StoredProp::Float(f)), _) => Some(Num::Float(*f)),
        (_, Op::Sum | Op::Min | Op::Max | Op::Avg) => return None,
        _ => None,
    };
    Some(EntryRef {
        ts_ms,
        seq,
        num,
        val,
        key: key.map(key_text),
    })
}

fn key_text(v: &StoredProp) -> Cow<'_, str> {
    match v {
        StoredProp::Str(s) => Cow::Borrowed(s),
        StoredProp::Int(i) => Cow::Owned(i.to_string()),
        StoredProp::Bool(b) => Cow::Owned(b.to_string()),
        StoredProp::Float(f) => Cow::Owned(f.to_string()),
    }
}

/// The lowest instant a window at `t` may not cover: it covers
/// `(lower, t]`. `None`: no bound by time (lifetime, last N events).
fn lower_bound(w: Window, t: i64, offset: i32) -> Option<i64> {
    // (instants outside the store's bounds — a state with no event — have
    // no local day: the nearest bound's)
    let day = time::local_day(t.clamp(time::MIN_TS_MS, time::MAX_TS_MS), offset);
    let start = match w {
        Window::Sliding { ms } => return Some(t.saturating_sub(ms)),
        Window::Lifetime | Window::LastEvents { .. } => return None,
        Window::Day => day,
        Window::Week => time::week_start(day),
        Window::Month => time::month_start(day),
    };
    Some(time::local_midnight_ms(start, offset) - 1)
}

/// The next instant after `t` at which a window's span moves on its own
/// (calendar windows: the next period's start).
fn next_period(w: Window, t: i64, offset: i32) -> Option<i64> {
    let day = time::local_day(t.clamp(time::MIN_TS_MS, time::MAX_TS_MS), offset);
    let next = match w {
        Window::Day => day + 1,
        Window::Week => time::week_start(day) + 7,
        Window::Month => time::month_start(time::month_start(day) + 31),
        _ => return None,
    };
    Some(time::local_midnight_ms(next, offset))
}

impl UserState {
    /// An empty state under `set`.
    pub fn new(set: &FeatureSet) -> UserState {
        let slots = set
            .defs()
            .iter()
            .map(|d| match (d.window, d.key.is_some()) {
                (Window::Lifetime, false) => Slot::Acc(Acc::new(d.op)),
                (Window::Lifetime, true) => Slot::Keyed(Keyed::default()),
                (Window::Sliding { .. } | Window::Day | Window::Week | Window::Month, _) => {
                    Slot::Window
                }
                _ => Slot::Buffer {
                    entries: Vec::new(),
                    lost_upto: None,
                },
            })
            .collect();
        UserState {
            version: set.version(),
            anchor_ms: i64::MIN,
            slots,
            recent: Recent::default(),
            tags: None,
        }
    }

    /// Adds one event (any order; call [`UserState::trim`] after a batch).
    pub fn apply(&mut self, set: &FeatureSet, e: &Input<'_>) {
        // (the anchor is the newest event any definition reads: the write
        // path keeps no other)
        if !set.reads_kind(e.kind) {
            return;
        }
        self.anchor_ms = self.anchor_ms.max(e.ts_ms);
        for (i, (d, slot)) in set.defs().iter().zip(&mut self.slots).enumerate() {
            // (a window reads the recent events, added below)
            if matches!(slot, Slot::Window) {
                continue;
            }
            let Some(entry) = entry_for(d, set.filter(i), e) else {
                continue;
            };
            match slot {
                Slot::Acc(acc) => acc.add(&entry, d),
                Slot::Keyed(k) => k.add(&entry, d, true),
                Slot::Buffer { entries, .. } => {
                    let at =
                        entries.partition_point(|x| (x.ts_ms, x.seq) < (entry.ts_ms, entry.seq));
                    entries.insert(at, entry.to_entry());
                }
                Slot::Window => {}
            }
        }
        self.recent.add(set, e);
    }

    /// Drops what no read at or after the anchor can cover.
    pub fn trim(&mut self, set: &FeatureSet, offset: i32) {
        let anchor = self.anchor_ms;
        if anchor == i64::MIN {
            return; // no event a definition reads: nothing kept
        }
        // per kind, the lowest bound of the windows reading it
        let mut bounds: Vec<Option<i64>> = vec![None; set.window_kinds().len()];
        for d in set.defs() {
            let Some(lower) = lower_bound(d.window, anchor, offset) else {
                continue;
            };
            for k in &d.kinds {
                if let Some(b) = set
                    .window_kinds()
                    .iter()
                    .position(|x| x == k)
                    .and_then(|i| bounds.get_mut(i))
                {
                    *b = Some(b.map_or(lower, |x: i64| x.min(lower)));
                }
            }
        }
        self.recent.trim(&bounds);
        for (d, slot) in set.defs().iter().zip(&mut self.slots) {
            let Slot::Buffer { entries, lost_upto } = slot else {
                continue;
            };
            let keep_from = match (d.window, lower_bound(d.window, anchor, offset)) {
                (Window::LastEvents { n }, _) => entries.len().saturating_sub(n as usize),
                (_, Some(lower)) => entries.partition_point(|x| x.ts_ms <= lower),
                (_, None) => 0,
            };
            entries.drain(..keep_from);
            if entries.len() > MAX_BUFFER_ENTRIES {
                let cut = entries.len() - MAX_BUFFER_ENTRIES;
                drop_oldest(entries, lost_upto, cut);
            }
        }
    }

    /// Drops the older half of the recent events or of the largest buffer
    /// (for room); false when there is none left to drop.
    pub fn shed(&mut self) -> bool {
        let buffers = self
            .slots
            .iter()
            .map(|s| match s {
                Slot::Buffer { entries, .. } => entries.len(),
                _ => 0,
            })
            .max()
            .unwrap_or(0);
        if !self.recent.events.is_empty() && self.recent.events.len() >= buffers {
            self.recent
                .drop_oldest(self.recent.events.len().div_ceil(2));
            return true;
        }
        let largest = self
            .slots
            .iter_mut()
            .filter_map(|s| match s {
                Slot::Buffer { entries, lost_upto } if !entries.is_empty() => {
                    Some((entries, lost_upto))
                }
                _ => None,
            })
            .max_by_key(|(e, _)| e.len());
        match largest {
            Some((entries, lost_upto)) => {
                let cut = entries.len().div_ceil(2);
                drop_oldest(entries, lost_upto, cut);
                true
            }
            None => self.shed_lifetime(),
        }
    }

    /// Halves the largest lifetime map (the keys with the fewest events go,
    /// counted as overflow) or distinct set (flagged over its cap): the
    /// feature reads `truncated` from then on, and the user's writes go on.
    fn shed_lifetime(&mut self) -> bool {
        let size = |s: &Slot| match s {
            Slot::Keyed(k) => k.map.len(),
            Slot::Acc(Acc::Distinct { values, .. }) => values.len(),
            _ => 0,
        };
        let Some(slot) = self
            .slots
            .iter_mut()
            .filter(|s| size(s) > 0)
            .max_by_key(|s| size(s))
        else {
            return false;
        };
        match slot {
            Slot::Keyed(k) => k.cap((k.map.len() / 2) as u32),
            Slot::Acc(Acc::Distinct { values, over }) => {
                let keep = values.len() / 2;
                *values = std::mem::take(values).into_iter().take(keep).collect();
                *over = true;
            }
            _ => return false,
        }
        true
    }

    /// Every feature's value at `t` (at or after the anchor), with whether
    /// a cap or a dropped contribution may have cut it.
    pub fn values(&self, set: &FeatureSet, t: i64, offset: i32) -> Vec<(FeatureValue, bool)> {
        (0..set.defs().len())
            .map(|i| self.value_of(set, i, t, offset).0)
            .collect()
    }

    /// Feature `i`'s value at `t` (see [`UserState::values`]), and the
    /// first instant after `t` at which it changes with no new event (a
    /// contribution slides out of its window, or a calendar period ends
    /// while one is in it): one pass over the window for both.
    pub fn value_of(
        &self,
        set: &FeatureSet,
        i: usize,
        t: i64,
        offset: i32,
    ) -> ((FeatureValue, bool), Option<i64>) {
        let (Some(d), Some(slot)) = (set.defs().get(i), self.slots.get(i)) else {
            return ((FeatureValue::Null, false), None);
        };
        match slot {
            Slot::Acc(acc) => (acc.value(d.op), None),
            Slot::Keyed(k) => (k.value(d), None),
            Slot::Window => {
                let lower = lower_bound(d.window, t, offset);
                let m = set.matcher(i);
                let mut oldest = None;
                let covered = self.recent.covered(lower, t).filter_map(|k| {
                    let e = self.recent.entry(k, d, m)?;
                    oldest = oldest.or(Some(e.ts_ms));
                    Some(e)
                });
                let (v, cut) = window_value(d, covered);
                let lost = lower.is_some_and(|l| self.recent.lost_upto.is_some_and(|x| x > l));
                let next = oldest.and_then(|ts| match d.window {
                    Window::Sliding { ms } => Some(ts.saturating_add(ms)),
                    w => next_period(w, t, offset),
                });
                ((v, cut || lost), next)
            }
            Slot::Buffer { entries, lost_upto } => {
                let lower = lower_bound(d.window, t, offset);
                let from = lower.map_or(0, |l| entries.partition_point(|e| e.ts_ms <= l));
                let to = entries.partition_point(|e| e.ts_ms <= t).max(from);
                let mut covered = entries.get(from..to).unwrap_or_default();
                if let Window::LastEvents { n } = d.window {
                    covered = &covered[covered.len().saturating_sub(n as usize)..];
                }
                let (v, cut) = window_value(d, covered.iter().map(Entry::as_ref));
                let lost = match lower {
                    Some(l) => lost_upto.is_some_and(|x| x > l),
                    None => lost_upto.is_some(),
                };
                ((v, cut || lost), None)
            }
        }
    }

    /// Whether feature `i` reads `e`.
    pub fn reads(set: &FeatureSet, i: usize, e: &Input<'_>) -> bool {
        set.defs()
            .get(i)
            .is_some_and(|d| entry_for(d, set.filter(i), e).is_some())
    }
}

fn drop_oldest(entries: &mut Vec<Entry>, lost_upto: &mut Option<i64>, cut: usize) {
    if let Some(last) = entries.get(cut.saturating_sub(1)) {
        *lost_upto = Some(lost_upto.map_or(last.ts_ms, |l| l.max(last.ts_ms)));
    }
    entries.drain(..cut.min(entries.len()));
}

/// A windowed feature's value over the contributions its window covers,
/// oldest first.
fn window_value<'a>(
    d: &Definition,
    covered: impl Iterator<Item = EntryRef<'a>>,
) -> (FeatureValue, bool) {
    if d.key.is_some() {
        let mut k: Keyed<Cow<'a, str>> = Keyed::default();
        for e in covered {
            k.add(&e, d, false);
        }
        k.cap(d.cap);
        return k.value(d);
    }
    let mut acc = Acc::new(d.op);
    covered.for_each(|e| acc.add(&e, d));
    acc.value(d.op)
}
