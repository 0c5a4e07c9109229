//! Per-user features and rule tags (SPEC §3b, docs/features.md): counts,
//! sums, last values and top keys over exact sliding windows, and the tags
//! a user holds while a condition over them holds.
//!
//! Owns the definitions (one versioned value in `meta`), each user's
//! feature state (one value per user in the `features` column family: an
//! event adds at most one key insert), and how a value at an instant is
//! answered: from the state at or after the user's newest event, from the
//! timeline before it or when the state was computed under other
//! definitions. The state is derived data: any of it may be deleted and is
//! recomputed from the events. The write path (`write`) feeds it the
//! events of a write; must not touch events, aggregates or profiles.

mod acc;
mod cond;
mod defs;
#[cfg(feature = "json")]
pub mod json;
mod publish;
mod state;

use std::sync::Arc;

use rustc_hash::FxHashMap;

pub use acc::FeatureValue;
pub use defs::{
    Definition, Op, TagRule, Window, DEFAULT_CAP, MAX_CAP, MAX_CONDITION_BYTES, MAX_DEFINITIONS,
    MAX_K, MAX_LAST_EVENTS, MAX_NAME_BYTES, MAX_RULES, MAX_TAG_BYTES, MAX_WINDOW_MS,
};
pub(crate) use state::Input;

use cond::Cond;
use defs::Stored;
use state::UserState;

use crate::codec;
use crate::error::{Error, InputError, Problem, Result};
use crate::keys::{self, meta};
use crate::kinds::KindRegistry;
use crate::store::{decode_value, Batch, Cf, Reader, Store};
use crate::timeline::{self, Event, StoredProp};

/// A store's definitions and tag rules, checked and ready to evaluate.
#[derive(Debug, Clone, Default)]
pub struct FeatureSet {
    stored: Stored,
    conds: Vec<Cond>,
    filters: Vec<Vec<(String, StoredProp)>>,
}

impl FeatureSet {
    fn build(stored: Stored) -> Result<FeatureSet> {
        let conds = defs::validate(&stored.defs, &stored.rules)?;
        let filters = stored
            .defs
            .iter()
            .map(|d| {
                d.filter
                    .iter()
                    .map(|(k, v)| (k.clone(), v.into()))
                    .collect()
            })
            .collect();
        Ok(FeatureSet {
            stored,
            conds,
            filters,
        })
    }

    /// The store's set (empty when none was defined).
    pub(crate) fn load(store: &Store) -> Result<FeatureSet> {
        match store.get::<Stored>(Cf::Meta, meta::FEATURE_SET)? {
            None => Ok(FeatureSet::default()),
            Some(stored) => FeatureSet::build(stored),
        }
    }

    /// This set with `defs` and `rules` added, each replacing the one of
    /// its name (tag), under the next version.
    pub(crate) fn with(&self, defs: &[Definition], rules: &[TagRule]) -> Result<FeatureSet> {
        let mut next = self.stored.clone();
        for d in defs {
            match next.defs.iter_mut().find(|x| x.name == d.name) {
                Some(old) => *old = d.clone(),
                None => next.defs.push(d.clone()),
            }
        }
        for r in rules {
            match next.rules.iter_mut().find(|x| x.tag == r.tag) {
                Some(old) => *old = r.clone(),
                None => next.rules.push(r.clone()),
            }
        }
        next.version += 1;
        FeatureSet::build(next)
    }

    /// This set without the definition or rule (by tag) named `name`; a
    /// definition a rule reads is refused.
    pub(crate) fn without(&self, name: &str) -> Result<FeatureSet> {
        let mut next = self.stored.clone();
        let before = next.defs.len() + next.rules.len();
        next.defs.retain(|d| d.name != name);
        next.rules.retain(|r| r.tag != name);
        if next.defs.len() + next.rules.len() == before {
            let reason = format!("no feature or rule named {name:?}");
            return Err(InputError::new("name", Problem::Invalid { reason }).into());
        }
        next.version += 1;
        FeatureSet::build(next)
    }

    /// Stores the set.
    pub(crate) fn save(&self, batch: &mut Batch) -> Result<()> {
        batch.put(Cf::Meta, meta::FEATURE_SET, codec::encode(&self.stored)?);
        Ok(())
    }

    /// The definitions, in the order they were first defined.
    pub fn defs(&self) -> &[Definition] {
        &self.stored.defs
    }

    /// The tag rules.
    pub fn rules(&self) -> &[TagRule] {
        &self.stored.rules
    }

    /// The set's version: every change makes the next one.
    pub fn version(&self) -> u64 {
        self.stored.version
    }

    /// Whether the set defines nothing.
    pub fn is_empty(&self) -> bool {
        self.stored.defs.is_empty()
    }

    fn filter(&self, i: usize) -> &[(String, StoredProp)] {
        self.filters.get(i).map_or(&[], Vec::as_slice)
    }

    /// Whether any definition reads events of `kind`.
    pub(crate) fn reads_kind(&self, kind: &str) -> bool {
        self.stored
            .defs
            .iter()
            .any(|d| d.kinds.iter().any(|k| k == kind))
    }

    /// The earliest event a state as of `t` needs: `None` for all of them.
    fn needs_from(&self, t: i64, offset: i32) -> Option<i64> {
        let mut from = t;
        for d in &self.stored.defs {
            let lower = match d.window {
                Window::Lifetime | Window::LastEvents { .. } => return None,
                Window::Sliding { ms } => t.saturating_sub(ms),
                Window::Day | Window::Week | Window::Month => {
                    let month = crate::time::month_start(crate::time::local_day(t, offset));
                    // a week may start in the month before
                    crate::time::local_midnight_ms(month - 7, offset)
                }
            };
            from = from.min(lower);
        }
        Some(from)
    }

    /// The tags the rules give a user whose features are `values`, sorted.
    pub(crate) fn tags(&self, values: &[(FeatureValue, bool)]) -> Vec<String> {
        let number = |def: usize, key: Option<&str>| -> Option<f64> {
            match (&values.get(def)?.0, key) {
                (FeatureValue::Keyed(map), Some(k)) => map.get(k)?.as_f64(),
                (v, None) => v.as_f64(),
                _ => None,
            }
        };
        let mut out = Vec::new();
        for (rule, cond) in self.stored.rules.iter().zip(&self.conds) {
            if !rule.is_keyed() {
                if cond.holds(&number, None) {
                    out.push(rule.tag.clone());
                }
                continue;
            }
            let mut keyed = Vec::new();
            cond.keyed_defs(&mut keyed);
            let mut keys: Vec<&str> = Vec::new();
            for def in keyed {
                if let Some((FeatureValue::Keyed(map), _)) = values.get(def) {
                    keys.extend(map.keys().map(String::as_str));
                }
            }
            keys.sort_unstable();
            keys.dedup();
            for key in keys {
                let tag = rule.tag.replace("{key}", key);
                if cond.holds(&number, Some(key))
                    && crate::users::check_name(&tag, MAX_TAG_BYTES).is_ok()
                {
                    out.push(tag);
                }
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    }
}

/// A user's features at one instant.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Features {
    /// The user, by its current external id.
    pub user: String,
    /// The instant they hold at, UTC milliseconds.
    pub at_ms: i64,
    /// The definitions' version they were computed under.
    pub version: u64,
    /// Every feature, in definition order.
    pub values: Vec<(String, FeatureValue)>,
    /// Features a cap (keys, distinct values) or the per-user value limit
    /// cut: their value counts only what was kept.
    pub truncated: Vec<String>,
    /// The rule tags the user holds at `at_ms`, sorted.
    pub tags: Vec<String>,
}

impl Features {
    /// The value of feature `name`.
    pub fn get(&self, name: &str) -> Option<&FeatureValue> {
        self.values.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }
}

/// Reads the state of `user_id` (`None`: none kept).
fn load_state(reader: &impl Reader, user_id: u32) -> Result<Option<UserState>> {
    let key = keys::user(user_id);
    match reader.read_raw(Cf::Features, &key)? {
        None => Ok(None),
        Some(bytes) => decode_value(Cf::Features, &key, &bytes).map(Some),
    }
}

/// The state of `user_id` recomputed from its events up to `t`, reading
/// only those a state as of `needs_at` or later still needs (`None`: as
/// of its newest event a definition reads, found on the way).
fn recompute(
    reader: &impl Reader,
    kinds: &KindRegistry,
    set: &FeatureSet,
    offset: i32,
    user_id: u32,
    (t, needs_at): (i64, Option<i64>),
) -> Result<UserState> {
    let bound = |at: i64| {
        set.needs_from(at, offset)
            .map_or(i64::MIN, |f| f.saturating_add(1))
    };
    let mut from = needs_at.map(bound);
    let mut events = Vec::new();
    timeline::for_user_events(reader, user_id, i64::MIN, t, |k, v| {
        if from.is_some_and(|f| k.ts_ms < f) {
            return Ok(false);
        }
        let kind = kinds
            .kind(v.kind_id)
            .ok_or_else(|| Error::internal("an event of an unknown kind"))?;
        if from.is_none() && set.reads_kind(kind.as_str()) {
            from = Some(bound(k.ts_ms));
        }
        events.push((k.ts_ms, k.seq, kind, v.amount_minor, v.properties));
        Ok(true)
    })?;
    let mut state = UserState::new(set);
    for (ts_ms, seq, kind, amount_minor, properties) in events.iter().rev() {
        let input = Input {
            ts_ms: *ts_ms,
            seq: *seq,
            kind: kind.as_str(),
            amount_minor: *amount_minor,
            properties,
        };
        state.apply(set, &input);
    }
    Ok(state)
}

/// `user_id`'s feature values and rule tags at `t`: from its state when it
/// is current and `t` is at or after its newest event, else recomputed.
pub(crate) fn read(
    reader: &impl Reader,
    kinds: &KindRegistry,
    set: &FeatureSet,
    offset: i32,
    user_id: u32,
    t: i64,
) -> Result<(Vec<(FeatureValue, bool)>, Vec<String>)> {
    let state = match load_state(reader, user_id)? {
        Some(s) if s.version == set.version() && t >= s.anchor_ms => s,
        _ => recompute(reader, kinds, set, offset, user_id, (t, Some(t)))?,
    };
    let values = state.values(set, t, offset);
    let tags = set.tags(&values);
    Ok((values, tags))
}

/// [`read`] as the public answer.
pub(crate) fn features(
    reader: &impl Reader,
    kinds: &KindRegistry,
    set: &FeatureSet,
    offset: i32,
    (user_id, user): (u32, String),
    at_ms: i64,
) -> Result<Features> {
    crate::time::check_ts(at_ms).map_err(|p| InputError::new("at_ms", p))?;
    let (values, tags) = read(reader, kinds, set, offset, user_id, at_ms)?;
    let mut out = Features {
        user,
        at_ms,
        version: set.version(),
        values: Vec::with_capacity(values.len()),
        truncated: Vec::new(),
        tags,
    };
    for (d, (v, cut)) in set.defs().iter().zip(values) {
        if cut {
            out.truncated.push(d.name.clone());
        }
        out.values.push((d.name.clone(), v));
    }
    Ok(out)
}

/// A step of the backfill: of the users after `after` (ids, ascending), at
/// most `step`, those whose state is missing or of another version, with
/// their names; and the last id looked at (`None`: none was left).
pub(crate) fn stale_users(
    store: &Store,
    set: &FeatureSet,
    after: Option<u32>,
    step: usize,
) -> Result<(Vec<(u32, String)>, Option<u32>)> {
    let all = crate::users::all_users(store)?;
    let from = after.map_or(0, |a| a.saturating_add(1));
    if after == Some(u32::MAX) {
        return Ok((Vec::new(), None));
    }
    let ids: std::collections::BTreeSet<u32> = all.range(from..).take(step).collect();
    let last = ids.last().copied();
    let mut stale = std::collections::BTreeSet::new();
    for id in &ids {
        if load_state(store, *id)?.is_none_or(|s| s.version != set.version()) {
            stale.insert(*id);
        }
    }
    let names = crate::users::names_of(store, &stale)?;
    let mut out: Vec<(u32, String)> = names.into_iter().collect();
    out.sort_unstable();
    Ok((out, last))
}

/// Recomputes the state of each of `users` still missing or of another
/// version into `batch` (the caller holds their stripes); returns how many.
pub(crate) fn recompute_into(
    store: &Store,
    kinds: &KindRegistry,
    set: &FeatureSet,
    offset: i32,
    users: &[(u32, String)],
    clock_ms: Option<i64>,
    batch: &mut Batch,
) -> Result<u64> {
    let mut n = 0;
    for (user_id, _) in users {
        let old = load_state(store, *user_id)?;
        if old.as_ref().is_some_and(|s| s.version == set.version()) {
            continue;
        }
        let window = (crate::time::MAX_TS_MS, None);
        let mut state = recompute(store, kinds, set, offset, *user_id, window)?;
        // what was published under the older definitions changes at the base
        state.tags = old.and_then(|o| o.tags);
        let walk = publish::Walk {
            set,
            offset,
            user_id: *user_id,
            cause: crate::feed::StageCause::Definitions,
        };
        settle(&walk, &mut state, &[], (clock_ms, i64::MAX), batch)?;
        state.trim(set, offset);
        batch.put(
            Cf::Features,
            keys::user(*user_id),
            encode_state(&mut state)?,
        );
        n += 1;
    }
    Ok(n)
}

/// The users holding rule tag `tag` at `t`, each evaluated at `t` (from
/// its state, or its events): exact at any instant, a read per user. Empty
/// when no rule can give the tag.
pub(crate) fn holders(
    reader: &impl Reader,
    kinds: &KindRegistry,
    set: &FeatureSet,
    offset: i32,
    tag: &str,
    t: i64,
) -> Result<roaring::RoaringBitmap> {
    let mut out = roaring::RoaringBitmap::new();
    if !set.rules().iter().any(|r| r.could_give(tag)) {
        return Ok(out);
    }
    for user_id in &crate::users::all_users(reader)? {
        let (_, tags) = read(reader, kinds, set, offset, user_id, t)?;
        if tags.binary_search_by(|x| x.as_str().cmp(tag)).is_ok() {
            out.insert(user_id);
        }
    }
    Ok(out)
}

/// A page of the rule-tag due index up to `now_ms`: `(due_ms, user)`
/// after the key `after`, at most `limit`.
pub(crate) fn due_page(
    store: &Store,
    now_ms: i64,
    after: Option<&[u8]>,
    limit: usize,
) -> Result<Vec<(Vec<u8>, i64, u32)>> {
    let from = keys::resume_at(&[crate::keys::feed::TAG_DUE], after);
    let until = crate::keys::feed::tag_due_until(now_ms);
    let mut out = Vec::new();
    for item in store.range(Cf::Feed, &from, Some(until))? {
        let (k, _) = item?;
        let (due, user) =
            crate::keys::feed::parse_tag_due(&k).ok_or_else(|| crate::error::CorruptionError {
                cf: Cf::Feed.name(),
                what: "key",
                key: k.to_vec(),
                reason: "rule-tag due key does not decode".into(),
            })?;
        out.push((k.to_vec(), due, user));
        if out.len() >= limit {
            break;
        }
    }
    Ok(out)
}

/// Walks the rule tags of `user_id` (met in the due index at `due_ms`) to
/// `now_ms` into `batch`, cause `time` (the caller holds its stripe).
pub(crate) fn settle_due(
    store: &Store,
    kinds: &KindRegistry,
    set: &FeatureSet,
    (user_id, due_ms): (u32, i64),
    now_ms: i64,
    batch: &mut Batch,
) -> Result<()> {
    let offset = store.settings().utc_offset_minutes;
    let mut state = match load_state(store, user_id)? {
        Some(s) if s.tags.as_ref().is_some_and(|t| t.due_ms == Some(due_ms)) => s,
        // a key the user's state does not own (left by a crash of
        // nothing: keys and states change in one write) is dropped
        _ => {
            batch.delete(Cf::Feed, crate::keys::feed::tag_due(due_ms, user_id));
            return Ok(());
        }
    };
    if state.version != set.version() {
        let tags = state.tags.take();
        state = recompute(
            store,
            kinds,
            set,
            offset,
            user_id,
            (crate::time::MAX_TS_MS, None),
        )?;
        state.tags = tags;
    }
    let walk = publish::Walk {
        set,
        offset,
        user_id,
        cause: crate::feed::StageCause::Time,
    };
    if set.rules().is_empty() {
        walk.end(&mut state, batch)?;
    } else {
        walk.advance(&mut state, now_ms, batch)?;
    }
    state.trim(set, offset);
    batch.put(Cf::Features, keys::user(user_id), encode_state(&mut state)?);
    Ok(())
}

/// Marks every user's state stale (a rebuild): each is recomputed from the
/// events when next read or written, or by a backfill, keeping what the
/// feed was told of its rule tags. A state that does not decode goes.
pub(crate) fn clear(store: &Store) -> Result<()> {
    /// States rewritten per write batch.
    const CLEAR_BATCH_KEYS: usize = 10_000;
    let mut batch = Batch::new();
    for item in store.range(Cf::Features, &[], None)? {
        let (k, v) = item?;
        match decode_value::<UserState>(Cf::Features, &k, &v) {
            // (no set has version 0 once a definition was made)
            Ok(mut s) => {
                s.version = 0;
                s.slots.clear();
                batch.put(Cf::Features, k.to_vec(), codec::encode(&s)?);
            }
            Err(_) => batch.delete(Cf::Features, k.to_vec()),
        }
        if batch.len() >= CLEAR_BATCH_KEYS {
            store.write(std::mem::take(&mut batch))?;
        }
    }
    store.write(batch)
}

/// Checks every stored state against a recomputation from the events:
/// a state of the definitions in force must answer, at its anchor, what
/// the events answer (states of older definitions are recomputed when
/// read, and only counted). Returns the problems found and the states read.
pub(crate) fn check(
    store: &Store,
    kinds: &KindRegistry,
    set: &FeatureSet,
    users: &dyn Fn(u32) -> bool,
) -> Result<(Vec<String>, u64)> {
    let offset = store.settings().utc_offset_minutes;
    let mut problems = Vec::new();
    let mut read = 0;
    for item in store.range(Cf::Features, &[], None)? {
        let (k, v) = item?;
        read += 1;
        let user_id = match keys::user_of(Cf::Features.name(), &k) {
            Ok(id) if k.len() == keys::USER_BYTES => id,
            _ => {
                problems.push(format!("features: malformed key {k:?}"));
                continue;
            }
        };
        if !users(user_id) {
            problems.push(format!(
                "features: a state of user id {user_id}, which does not exist"
            ));
            continue;
        }
        let stored: UserState = match decode_value(Cf::Features, &k, &v) {
            Ok(s) => s,
            Err(e) => {
                problems.push(e.to_string());
                continue;
            }
        };
        if stored.version != set.version() {
            continue;
        }
        let at = stored.anchor_ms;
        let fresh = recompute(
            store,
            kinds,
            set,
            offset,
            user_id,
            (crate::time::MAX_TS_MS, None),
        )?;
        if fresh.anchor_ms != at {
            problems.push(format!(
                "features of user id {user_id}: state as of {at}, newest event at {}",
                fresh.anchor_ms
            ));
            continue;
        }
        let (got, want) = (
            stored.values(set, at, offset),
            fresh.values(set, at, offset),
        );
        for (d, (g, w)) in set.defs().iter().zip(got.iter().zip(&want)) {
            // (a cut value counts what was kept; another order of arrival
            // keeps other keys)
            if g != w && !g.1 && !w.1 {
                problems.push(format!(
                    "feature {} of user id {user_id} at {at}: stored {:?}, the events give {:?}",
                    d.name, g.0, w.0
                ));
            }
        }
    }
    Ok((problems, read))
}

/// Deletes `user_id`'s state (erasure, or merged away: `cause`), ending
/// its published rule tags.
pub(crate) fn erase(
    store: &Store,
    batch: &mut Batch,
    user_id: u32,
    cause: crate::feed::StageCause,
) -> Result<()> {
    if let Some(mut state) = load_state(store, user_id)? {
        publish::end(&mut state, user_id, cause, batch)?;
    }
    batch.delete(Cf::Features, keys::user(user_id));
    Ok(())
}

/// One event as kept until the write's end.
struct Pending {
    ts_ms: i64,
    seq: u32,
    kind: String,
    amount_minor: Option<i64>,
    properties: Vec<(String, StoredProp)>,
}

/// The feature side of one write: the events of each user, applied to its
/// state at the write's end (one read and one put per user).
pub(crate) struct FeatureWrites {
    set: Arc<FeatureSet>,
    offset: i32,
    /// The feed's clock, and why this write changes tags.
    clock_ms: Option<i64>,
    cause: crate::feed::StageCause,
    users: FxHashMap<u32, PendingUser>,
}

/// One user's part of a write.
struct PendingUser {
    /// The user is new in this write.
    new: bool,
    /// The write's earliest event of the user, of any kind.
    first_ms: i64,
    events: Vec<Pending>,
}

impl FeatureWrites {
    /// The feature side of a write under `set`.
    pub fn new(
        set: Arc<FeatureSet>,
        offset: i32,
        clock_ms: Option<i64>,
        cause: crate::feed::StageCause,
    ) -> Self {
        FeatureWrites {
            set,
            offset,
            clock_ms,
            cause,
            users: FxHashMap::default(),
        }
    }

    /// The set this write computes under.
    pub fn set(&self) -> &Arc<FeatureSet> {
        &self.set
    }

    /// Keeps `e` (recorded as `seq` of `user_id`; `new`: the user is new
    /// in this write) if a definition reads its kind.
    pub fn add(&mut self, user_id: u32, new: bool, seq: u32, e: &Event) {
        let reads = self.set.reads_kind(e.kind.as_str());
        // (a new user gets its state, and the rule tags of no events, from
        // its first event of any kind)
        if !reads && !(new || self.users.contains_key(&user_id)) {
            return;
        }
        let entry = self.users.entry(user_id).or_insert(PendingUser {
            new,
            first_ms: e.ts_ms,
            events: Vec::new(),
        });
        entry.first_ms = entry.first_ms.min(e.ts_ms);
        if !reads {
            return;
        }
        entry.events.push(Pending {
            ts_ms: e.ts_ms,
            seq,
            kind: e.kind.as_str().to_owned(),
            amount_minor: e.amount_minor,
            properties: e
                .properties
                .iter()
                .map(|(k, v)| (k.clone(), v.into()))
                .collect(),
        });
    }

    /// Puts each user's new state, and the rule-tag changes it makes,
    /// into `batch`.
    pub fn finish(self, store: &Store, kinds: &KindRegistry, batch: &mut Batch) -> Result<()> {
        let mut users: Vec<_> = self.users.into_iter().collect();
        users.sort_unstable_by_key(|(u, _)| *u);
        for (user_id, pending) in users {
            let PendingUser {
                new,
                first_ms,
                mut events,
            } = pending;
            events.sort_by_key(|e| (e.ts_ms, e.seq));
            let newest = events.last().map_or(i64::MIN, |e| e.ts_ms);
            let mut state = match load_state(store, user_id)? {
                Some(s) if s.version == self.set.version() => s,
                _ if new => UserState::new(&self.set),
                // under other definitions, or deleted: from the events,
                // keeping what was published
                old => {
                    let window = (
                        crate::time::MAX_TS_MS,
                        Some(newest).filter(|n| *n > i64::MIN),
                    );
                    let mut s = recompute(store, kinds, &self.set, self.offset, user_id, window)?;
                    s.tags = old.and_then(|o| o.tags);
                    s
                }
            };
            let inputs: Vec<Input<'_>> = events
                .iter()
                .map(|e| Input {
                    ts_ms: e.ts_ms,
                    seq: e.seq,
                    kind: &e.kind,
                    amount_minor: e.amount_minor,
                    properties: &e.properties,
                })
                .collect();
            let walk = publish::Walk {
                set: &self.set,
                offset: self.offset,
                user_id,
                cause: self.cause,
            };
            settle(&walk, &mut state, &inputs, (self.clock_ms, first_ms), batch)?;
            state.trim(&self.set, self.offset);
            batch.put(Cf::Features, keys::user(user_id), encode_state(&mut state)?);
        }
        Ok(())
    }
}

/// Applies `inputs` to `state`, publishing the rule-tag changes (no rule:
/// ends what was published under earlier rules).
fn settle(
    walk: &publish::Walk<'_>,
    state: &mut UserState,
    inputs: &[Input<'_>],
    (clock_ms, first_ms): (Option<i64>, i64),
    batch: &mut Batch,
) -> Result<()> {
    if walk.set.rules().is_empty() {
        if state.tags.is_some() {
            let ending = publish::Walk {
                cause: crate::feed::StageCause::Definitions,
                ..*walk
            };
            ending.end(state, batch)?;
        }
        inputs.iter().for_each(|e| state.apply(walk.set, e));
        return Ok(());
    }
    walk.write(state, inputs, (clock_ms, first_ms), batch)
}

/// Encodes a state, shedding its oldest window contributions until it fits
/// the value limit.
fn encode_state(state: &mut UserState) -> Result<Vec<u8>> {
    loop {
        match codec::encode(&*state) {
            Err(Error::ValueTooLarge { .. }) if state.shed() => continue,
            other => return other,
        }
    }
}
