//! The feature side of one write: each user's events applied to its state
//! at the write's end, with the rule-tag changes they publish.

use std::sync::Arc;

use rustc_hash::FxHashMap;

use super::compat::encode_state;
use super::publish;
use super::state::{Input, UserState};
use super::{load_states, recompute_keeping, FeatureSet};
use crate::error::Result;
use crate::keys;
use crate::kinds::KindRegistry;
use crate::store::{Batch, Cf, Store};
use crate::timeline::{Event, StoredProp};

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
        if !(reads || new || self.users.contains_key(&user_id)) {
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
        let ids: Vec<u32> = users.iter().map(|(u, _)| *u).collect();
        let loaded = load_states(store, &ids)?;
        for ((user_id, pending), stored) in users.into_iter().zip(loaded) {
            let PendingUser {
                new,
                first_ms,
                mut events,
            } = pending;
            events.sort_by_key(|e| (e.ts_ms, e.seq));
            let mut state = match stored {
                Some(s) if s.version == self.set.version() => s,
                _ if new => UserState::new(&self.set),
                // under other definitions, or deleted: from the events,
                // keeping what was published
                // (read as of its stored newest event: the walk looks at the
                // tags from its mark on, before this write's events)
                old => {
                    let tags = old.and_then(|o| o.tags);
                    let set = (&*self.set, self.offset);
                    recompute_keeping(store, kinds, set, user_id, tags)?
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
pub(super) fn settle(
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
