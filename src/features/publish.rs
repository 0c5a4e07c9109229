//! What the change feed learns of rule tags (docs/features.md, "The
//! feed"): each user's state keeps a mark — the instant up to which its
//! rule tags were published, the tags held there (with the instant each
//! began) and the due key it has in the due index. A write walks the tags
//! from the mark's base through every instant its events or a window edge
//! change them; `advance` walks due users to its clock; erasure and merge
//! publish the held tags' end.

use serde::{Deserialize, Serialize};

use super::state::{Input, UserState};
use super::FeatureSet;
use crate::error::Result;
use crate::feed::{self, Change, Record, StageCause, TagState};
use crate::keys::feed as fk;
use crate::store::{Batch, Cf};

/// Most instants one walk visits; past it, the walk jumps to its end (the
/// entries in between are left out, the end state is exact).
const MAX_WALK_STEPS: usize = 10_000;

/// A user's published rule tags.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct TagMark {
    /// Published up to this instant.
    pub mark_ms: i64,
    /// The tags held at the mark and the instant each began, by tag.
    pub held: Vec<(String, i64)>,
    /// The instant of the user's key in the due index, if it has one (at
    /// or before the first instant after the mark its tags may change).
    pub due_ms: Option<i64>,
}

/// One walk over one user's rule tags.
#[derive(Clone, Copy)]
pub(crate) struct Walk<'a> {
    pub set: &'a FeatureSet,
    pub offset: i32,
    pub user_id: u32,
    pub cause: StageCause,
}

impl Walk<'_> {
    fn tags_at(&self, state: &UserState, t: i64) -> Vec<String> {
        self.set.tags(&state.values(self.set, t, self.offset))
    }

    /// Publishes the difference between `held` and `now` at `at_ms`.
    fn publish(
        &self,
        batch: &mut Batch,
        held: &mut Vec<(String, i64)>,
        now: &[String],
        at_ms: i64,
        retroactive: bool,
    ) -> Result<()> {
        let mut entries = Vec::new();
        held.retain(|(tag, _)| {
            let stays = now.binary_search(tag).is_ok();
            if !stays {
                entries.push((tag.clone(), TagState::Left));
            }
            stays
        });
        for tag in now {
            if let Err(i) = held.binary_search_by(|(t, _)| t.as_str().cmp(tag)) {
                held.insert(i, (tag.clone(), at_ms));
                entries.push((tag.clone(), TagState::Entered));
            }
        }
        for (tag, state) in entries {
            let change = Change::Tag {
                tag,
                state,
                at_ms,
                cause: self.cause,
            };
            feed::log(
                batch,
                &Record {
                    user_id: self.user_id,
                    change,
                    retroactive,
                },
            )?;
        }
        Ok(())
    }

    /// Applies `events` (sorted by instant) to `state` and publishes what
    /// they change, from the base (the later of the mark, the clock and
    /// the state's newest event) to the later of it and their newest.
    pub fn write(
        &self,
        state: &mut UserState,
        events: &[Input<'_>],
        (clock_ms, first_ms): (Option<i64>, i64),
        batch: &mut Batch,
    ) -> Result<()> {
        let old = state.tags.take().unwrap_or_default();
        let first = events.first().map_or(first_ms, |e| e.ts_ms.min(first_ms));
        let first = Some(first);
        let base = [Some(old.mark_ms), clock_ms, Some(state.anchor_ms)]
            .into_iter()
            .flatten()
            .filter(|t| *t > i64::MIN)
            .max()
            .or(first.map(|f| f.saturating_sub(1)))
            .unwrap_or(0);
        let later = events.partition_point(|e| e.ts_ms <= base);
        for e in &events[..later] {
            state.apply(self.set, e);
        }
        let end = events.last().map_or(base, |e| e.ts_ms.max(base));
        let mut held = old.held;
        let now = self.tags_at(state, base);
        let at = first.filter(|f| *f <= base).unwrap_or(base);
        self.publish(batch, &mut held, &now, at, at < end)?;
        let mut t = base;
        let mut steps = 0;
        for e in &events[later..] {
            // window edges before the event
            while let Some(c) = state
                .next_change(self.set, t, self.offset)
                .filter(|c| *c < e.ts_ms)
            {
                steps += 1;
                if steps > MAX_WALK_STEPS {
                    break;
                }
                let now = self.tags_at(state, c);
                self.publish(batch, &mut held, &now, c, true)?;
                t = c;
            }
            state.apply(self.set, e);
            t = e.ts_ms;
            let now = self.tags_at(state, t);
            self.publish(batch, &mut held, &now, t, t < end)?;
        }
        self.finish(state, held, old.due_ms, end, batch)
    }

    /// Walks `state`'s tags from its mark to `now_ms` (time passing).
    pub fn advance(&self, state: &mut UserState, now_ms: i64, batch: &mut Batch) -> Result<()> {
        let old = state.tags.take().unwrap_or_default();
        let mut held = old.held;
        let mut t = old.mark_ms.max(state.anchor_ms);
        let mut steps = 0;
        while let Some(c) = state
            .next_change(self.set, t, self.offset)
            .filter(|c| *c <= now_ms)
        {
            steps += 1;
            if steps > MAX_WALK_STEPS {
                break;
            }
            let now = self.tags_at(state, c);
            self.publish(batch, &mut held, &now, c, false)?;
            t = c;
        }
        let now = self.tags_at(state, now_ms.max(t));
        self.publish(batch, &mut held, &now, now_ms.max(t), false)?;
        // (the key that brought the user here is gone with the walk)
        if let Some(due) = old.due_ms {
            batch.delete(Cf::Feed, fk::tag_due(due, self.user_id));
        }
        self.finish(state, held, None, now_ms.max(t), batch)
    }

    /// Ends every held tag at the mark (see [`end`]).
    pub fn end(&self, state: &mut UserState, batch: &mut Batch) -> Result<()> {
        end(state, self.user_id, self.cause, batch)
    }

    /// Moves the mark to `end` and the due key earlier when the next change
    /// comes before it (a key later than it stays: `advance` meets it and
    /// finds the user not due yet — one move per stale key instead of two
    /// index writes per event).
    fn finish(
        &self,
        state: &mut UserState,
        held: Vec<(String, i64)>,
        key: Option<i64>,
        end: i64,
        batch: &mut Batch,
    ) -> Result<()> {
        let next = state.next_change(self.set, end, self.offset);
        let due_ms = match (key, next) {
            (Some(k), Some(n)) if k <= n => Some(k),
            (old, Some(n)) => {
                if let Some(k) = old {
                    batch.delete(Cf::Feed, fk::tag_due(k, self.user_id));
                }
                batch.put(Cf::Feed, fk::tag_due(n, self.user_id), []);
                Some(n)
            }
            (old, None) => old,
        };
        state.tags = Some(TagMark {
            mark_ms: end,
            held,
            due_ms,
        });
        Ok(())
    }
}

/// Ends every held tag of `user_id` at its mark (erasure, merged away, no
/// rule left) and removes its due key.
pub(crate) fn end(
    state: &mut UserState,
    user_id: u32,
    cause: StageCause,
    batch: &mut Batch,
) -> Result<()> {
    let old = state.tags.take().unwrap_or_default();
    for (tag, _) in old.held {
        let change = Change::Tag {
            tag,
            state: TagState::Left,
            at_ms: old.mark_ms,
            cause,
        };
        feed::log(
            batch,
            &Record {
                user_id,
                change,
                retroactive: false,
            },
        )?;
    }
    if let Some(due) = old.due_ms {
        batch.delete(Cf::Feed, fk::tag_due(due, user_id));
    }
    Ok(())
}
