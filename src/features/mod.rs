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
mod compat;
mod cond;
mod defs;
#[cfg(feature = "json")]
pub mod json;
mod maintain;
mod publish;
mod recent;
mod state;
mod writes;

pub use acc::FeatureValue;
pub use defs::{
    Definition, Op, TagRule, Window, DEFAULT_CAP, MAX_CAP, MAX_CONDITION_BYTES, MAX_DEFINITIONS,
    MAX_K, MAX_LAST_EVENTS, MAX_NAME_BYTES, MAX_RULES, MAX_TAG_BYTES, MAX_WINDOW_MS,
};
pub(crate) use state::Input;

use cond::Cond;
use defs::Stored;
use state::UserState;

use std::borrow::Cow;

use crate::codec;
use crate::error::{Error, InputError, Problem, Result};
use crate::keys::{self, meta};
use crate::kinds::KindRegistry;
use crate::store::{Batch, Cf, Reader, Store};
use crate::timeline::{self, StoredProp};

/// A store's definitions and tag rules, checked and ready to evaluate.
#[derive(Debug, Clone, Default)]
pub struct FeatureSet {
    stored: Stored,
    conds: Vec<Cond>,
    filters: Vec<Vec<(String, StoredProp)>>,
    /// The definitions a rule reads (only they can change a tag).
    rule_defs: Vec<usize>,
    /// The kinds and properties sliding and calendar windows read (the
    /// recent events keep these).
    window_kinds: Vec<String>,
    window_props: Vec<String>,
    /// Every kind a definition reads, sorted (asked of every event).
    read_kinds: Vec<String>,
    /// How each definition reads kept events (used for timed windows).
    matchers: Vec<recent::Matcher>,
    /// Each keyed rule's keyed definitions (`None`: a rule without `{key}`).
    rule_keyed: Vec<Option<Vec<usize>>>,
}

impl FeatureSet {
    fn build(stored: Stored) -> Result<FeatureSet> {
        let conds = defs::validate(&stored.defs, &stored.rules)?;
        let filters: Vec<Vec<(String, StoredProp)>> = stored
            .defs
            .iter()
            .map(|d| {
                d.filter
                    .iter()
                    .map(|(k, v)| (k.clone(), v.into()))
                    .collect()
            })
            .collect();
        let mut rule_defs = Vec::new();
        conds.iter().for_each(|c| c.defs(&mut rule_defs));
        rule_defs.sort_unstable();
        rule_defs.dedup();
        let (mut window_kinds, mut window_props) = (Vec::new(), Vec::new());
        for d in stored.defs.iter().filter(|d| is_timed(d.window)) {
            window_kinds.extend(d.kinds.iter().cloned());
            window_props.extend(d.filter.iter().map(|(k, _)| k.clone()));
            window_props.extend(d.key.iter().cloned());
            window_props.extend(d.field.iter().filter(|f| *f != "amount").cloned());
        }
        let mut read_kinds: Vec<String> = stored
            .defs
            .iter()
            .flat_map(|d| d.kinds.iter().cloned())
            .collect();
        for list in [&mut window_kinds, &mut window_props, &mut read_kinds] {
            list.sort_unstable();
            list.dedup();
        }
        let matchers = stored
            .defs
            .iter()
            .zip(&filters)
            .map(|(d, f)| recent::Matcher::new(d, f, &window_kinds, &window_props))
            .collect();
        let rule_keyed = (stored.rules.iter().zip(&conds))
            .map(|(r, c)| {
                let mut keyed = Vec::new();
                c.keyed_defs(&mut keyed);
                keyed.sort_unstable();
                keyed.dedup();
                r.is_keyed().then_some(keyed)
            })
            .collect();
        Ok(FeatureSet {
            stored,
            conds,
            filters,
            rule_defs,
            window_kinds,
            window_props,
            read_kinds,
            matchers,
            rule_keyed,
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

    /// The definitions a rule reads.
    pub(crate) fn rule_defs(&self) -> &[usize] {
        &self.rule_defs
    }

    /// The kinds sliding and calendar windows read.
    pub(crate) fn window_kinds(&self) -> &[String] {
        &self.window_kinds
    }

    /// The properties sliding and calendar windows name.
    pub(crate) fn window_props(&self) -> &[String] {
        &self.window_props
    }

    fn matcher(&self, i: usize) -> &recent::Matcher {
        static NONE: std::sync::OnceLock<recent::Matcher> = std::sync::OnceLock::new();
        self.matchers
            .get(i)
            .unwrap_or_else(|| NONE.get_or_init(recent::Matcher::default))
    }

    fn filter(&self, i: usize) -> &[(String, StoredProp)] {
        self.filters.get(i).map_or(&[], Vec::as_slice)
    }

    /// Whether any definition reads events of `kind`.
    pub(crate) fn reads_kind(&self, kind: &str) -> bool {
        self.read_kinds
            .binary_search_by(|k| k.as_str().cmp(kind))
            .is_ok()
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

    /// The tags the rules give a user whose features are `values`, sorted
    /// (a keyed rule's tags are built only for the keys that hold).
    pub(crate) fn tags(&self, values: &[(FeatureValue, bool)]) -> Vec<Cow<'_, str>> {
        let number = |def: usize, key: Option<&str>| -> Option<f64> {
            match (&values.get(def)?.0, key) {
                (FeatureValue::Keyed(map), Some(k)) => map.get(k)?.as_f64(),
                (v, None) => v.as_f64(),
                _ => None,
            }
        };
        let mut out = Vec::new();
        let rules = self.stored.rules.iter().zip(&self.conds);
        for ((rule, cond), keyed) in rules.zip(&self.rule_keyed) {
            let Some(keyed) = keyed else {
                if cond.holds(&number, None) {
                    out.push(Cow::Borrowed(rule.tag.as_str()));
                }
                continue;
            };
            let mut keys: Vec<&str> = Vec::new();
            for def in keyed {
                if let Some((FeatureValue::Keyed(map), _)) = values.get(*def) {
                    keys.extend(map.keys().map(String::as_str));
                }
            }
            keys.sort_unstable();
            keys.dedup();
            for key in keys {
                if !cond.holds(&number, Some(key)) {
                    continue;
                }
                let tag = rule.tag.replace("{key}", key);
                if crate::users::check_name(&tag, MAX_TAG_BYTES).is_ok() {
                    out.push(Cow::Owned(tag));
                }
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    }
}

/// Whether a window is sliding or calendar (read from the recent events).
fn is_timed(w: Window) -> bool {
    matches!(
        w,
        Window::Sliding { .. } | Window::Day | Window::Week | Window::Month
    )
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
pub(super) fn load_state(reader: &impl Reader, user_id: u32) -> Result<Option<UserState>> {
    let key = keys::user(user_id);
    reader.read_with(Cf::Features, &key, |bytes| {
        compat::decode_state(&key, bytes)
    })
}

/// The states of `user_ids` (ascending), looked up together: RocksDB's
/// batched MultiGet makes one pass through the memtables and each file's
/// filters and index for all of them (a batch's users, not a read each).
pub(super) fn load_states(store: &Store, user_ids: &[u32]) -> Result<Vec<Option<UserState>>> {
    if let [one] = user_ids {
        return Ok(vec![load_state(store, *one)?]);
    }
    let keys: Vec<Vec<u8>> = user_ids.iter().map(|u| keys::user(*u).to_vec()).collect();
    let raws = store.get_raw_sorted(Cf::Features, &keys)?;
    keys.iter()
        .zip(raws)
        .map(|(key, raw)| raw.map(|b| compat::decode_state(key, &b)).transpose())
        .collect()
}

/// The state of `user_id` recomputed from its events up to `t`, reading
/// only those a state as of `needs_at` or later still needs (`None`: as
/// of its newest event a definition reads, found on the way).
pub(super) fn recompute(
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

/// Every feature's value (and whether a cap cut it), and the rule tags.
pub(crate) type Reading = (Vec<(FeatureValue, bool)>, Vec<String>);

/// `user_id`'s whole state recomputed from its stored events (as of its
/// newest one a definition reads), keeping `tags`: what the feed was told
/// under the state it replaces.
pub(super) fn recompute_keeping(
    store: &Store,
    kinds: &KindRegistry,
    (set, offset): (&FeatureSet, i32),
    user_id: u32,
    tags: Option<publish::TagMark>,
) -> Result<UserState> {
    let window = (crate::time::MAX_TS_MS, None);
    let mut state = recompute(store, kinds, set, offset, user_id, window)?;
    state.tags = tags;
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
) -> Result<Reading> {
    let (state, has_event) = match load_state(reader, user_id)? {
        Some(s) if s.version == set.version() && t >= s.anchor_ms => {
            let seen = s.anchor_ms > i64::MIN;
            (s, seen)
        }
        _ => (
            recompute(reader, kinds, set, offset, user_id, (t, Some(t)))?,
            false,
        ),
    };
    let values = state.values(set, t, offset);
    // (rule tags are a user's from its first event on, whatever its kind)
    let held =
        !set.rules().is_empty() && (has_event || timeline::has_event_upto(reader, user_id, t)?);
    let tags = match held {
        true => set.tags(&values).into_iter().map(Cow::into_owned).collect(),
        false => Vec::new(),
    };
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

pub(crate) use maintain::{
    check, clear, due_page, erase, holders, matching, recompute_into, settle_due, stale_users,
    tags_by_day,
};
pub(crate) use writes::FeatureWrites;
