//! What the change feed learns of rule tags (docs/features.md, "The
//! feed"): each user's state keeps a mark — the instant up to which its
//! rule tags were published, the tags held there (with the instant each
//! began) and the due key it has in the due index. A write walks the tags
//! from the mark's base through every instant its events or a window edge
//! change them; `advance` walks due users to its clock; erasure and merge
//! publish the held tags' end.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use super::acc::FeatureValue;
use super::state::{Input, UserState};
use super::FeatureSet;
use crate::error::Result;
use crate::feed::{self, Change, Record, StageCause, TagState};
use crate::keys::feed as fk;
use crate::store::{Batch, Cf};

/// Most instants one walk visits; past it, the walk jumps to its end (the
/// entries in between are left out, the end state is exact).
const MAX_WALK_STEPS: usize = 10_000;

/// Most feature changes `advance` looks ahead for a user's next tag change.
const MAX_LOOKAHEAD_STEPS: usize = 1_024;

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

/// The values of the features the rules read, at the walk's instant, and
/// when each next changes with no new event: a step recomputes only the
/// features that change at it.
struct Tracker {
    values: Vec<(FeatureValue, bool)>,
    next: Vec<Option<i64>>,
}

impl Tracker {
    fn new(walk: &Walk<'_>, state: &UserState, t: i64) -> Tracker {
        let n = walk.set.defs().len();
        let mut tr = Tracker {
            values: vec![(FeatureValue::Null, false); n],
            next: vec![None; n],
        };
        tr.refresh(walk, state, t, walk.set.rule_defs());
        tr
    }

    /// Recomputes the features `which` at `t`; whether a value changed
    /// (if none did, no tag can have).
    fn refresh(&mut self, walk: &Walk<'_>, state: &UserState, t: i64, which: &[usize]) -> bool {
        let mut changed = false;
        for &i in which {
            if let (Some(v), Some(n)) = (self.values.get_mut(i), self.next.get_mut(i)) {
                let (value, next) = state.value_of(walk.set, i, t, walk.offset);
                changed |= value != *v;
                (*v, *n) = (value, next);
            }
        }
        changed
    }

    /// The next instant a rule's feature changes.
    fn next(&self) -> Option<i64> {
        self.next.iter().flatten().min().copied()
    }

    /// The rule features that change at or before `t`.
    fn due(&self, walk: &Walk<'_>, t: i64) -> Vec<usize> {
        walk.set
            .rule_defs()
            .iter()
            .copied()
            .filter(|&i| self.next.get(i).copied().flatten().is_some_and(|n| n <= t))
            .collect()
    }
}

impl Walk<'_> {
    /// Publishes the difference between `held` and `now` at `at_ms`.
    fn publish(
        &self,
        batch: &mut Batch,
        held: &mut Vec<(String, i64)>,
        now: &[Cow<'_, str>],
        at_ms: i64,
        retroactive: bool,
    ) -> Result<()> {
        let mut entries = Vec::new();
        held.retain(|(tag, _)| {
            let stays = now.binary_search_by(|x| x.as_ref().cmp(tag)).is_ok();
            if !stays {
                entries.push((tag.clone(), TagState::Left));
            }
            stays
        });
        for tag in now {
            if let Err(i) = held.binary_search_by(|(t, _)| t.as_str().cmp(tag)) {
                held.insert(i, (tag.to_string(), at_ms));
                entries.push((tag.to_string(), TagState::Entered));
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
        let old = state.tags.take();
        let mark = old.as_ref().map(|o| o.mark_ms);
        let (mut held, key) = old.map_or((Vec::new(), None), |o| (o.held, o.due_ms));
        let first = events.first().map_or(first_ms, |e| e.ts_ms.min(first_ms));
        let anchor = Some(state.anchor_ms).filter(|a| *a > i64::MIN);
        // (a user without a mark holds nothing before its first event: its
        // tags begin there, whatever the event's kind; `i64::MAX`: unknown)
        let first_known = (first < i64::MAX).then_some(first);
        let base = [
            mark,
            clock_ms,
            anchor,
            first_known.filter(|_| mark.is_none()),
        ]
        .into_iter()
        .flatten()
        .max()
        .unwrap_or(first);
        // Time first: what passing time changed between the mark and the
        // clock (a write that ran while `advance` had moved the clock and
        // not yet reached this user), as `advance` would have said it.
        if let Some(m) = mark.filter(|m| *m < base) {
            let timed = Walk {
                cause: StageCause::Time,
                ..*self
            };
            timed.time_walk(state, &mut held, (m.max(anchor.unwrap_or(m)), base), batch)?;
        }
        let later = events.partition_point(|e| e.ts_ms <= base);
        for e in &events[..later] {
            state.apply(self.set, e);
        }
        let end = events.last().map_or(base, |e| e.ts_ms.max(base));
        let mut tr = Tracker::new(self, state, base);
        if mark.is_some() || anchor.is_some() || first_known.is_some_and(|f| f <= base) {
            let at = if first <= base { first } else { base };
            self.publish(batch, &mut held, &self.set.tags(&tr.values), at, at < end)?;
        }
        let mut steps = 0;
        let mut rest = &events[later..];
        while let Some(e) = rest.first() {
            let ts = e.ts_ms;
            // window edges before the events of this instant
            while let Some(c) = tr.next().filter(|c| *c < ts) {
                steps += 1;
                if steps > MAX_WALK_STEPS {
                    break;
                }
                let due = tr.due(self, c);
                if tr.refresh(self, state, c, &due) {
                    self.publish(batch, &mut held, &self.set.tags(&tr.values), c, true)?;
                }
            }
            // every event of the instant, then the features they or the
            // instant changed
            let same = rest.partition_point(|x| x.ts_ms == ts);
            let mut changed = tr.due(self, ts);
            for x in &rest[..same] {
                state.apply(self.set, x);
                changed.extend(
                    self.set
                        .rule_defs()
                        .iter()
                        .filter(|&&i| UserState::reads(self.set, i, x)),
                );
            }
            changed.sort_unstable();
            changed.dedup();
            if tr.refresh(self, state, ts, &changed) {
                self.publish(batch, &mut held, &self.set.tags(&tr.values), ts, ts < end)?;
            }
            rest = &rest[same..];
        }
        self.finish(state, held, key, (end, tr.next()), batch)
    }

    /// Publishes every change of the tags in `(from, to]` with no new
    /// event (never retroactive: time is the cause); returns the tracker
    /// at `to`, every rule feature current there.
    fn time_walk(
        &self,
        state: &UserState,
        held: &mut Vec<(String, i64)>,
        (from, to): (i64, i64),
        batch: &mut Batch,
    ) -> Result<Tracker> {
        let mut tr = Tracker::new(self, state, from);
        let mut steps = 0;
        while let Some(c) = tr.next().filter(|c| *c <= to) {
            steps += 1;
            if steps > MAX_WALK_STEPS {
                // (past the bound: straight to the end, every feature anew)
                tr = Tracker::new(self, state, to);
                break;
            }
            let due = tr.due(self, c);
            if tr.refresh(self, state, c, &due) {
                self.publish(batch, held, &self.set.tags(&tr.values), c, false)?;
            }
        }
        self.publish(batch, held, &self.set.tags(&tr.values), to, false)?;
        Ok(tr)
    }

    /// Walks `state`'s tags from its mark to `now_ms` (time passing).
    pub fn advance(&self, state: &mut UserState, now_ms: i64, batch: &mut Batch) -> Result<()> {
        let old = state.tags.take().unwrap_or_default();
        let mut held = old.held;
        let from = old.mark_ms.max(state.anchor_ms);
        let end = now_ms.max(from);
        let tr = self.time_walk(state, &mut held, (from, end), batch)?;
        // (the key that brought the user here is gone with the walk)
        if let Some(due) = old.due_ms {
            batch.delete(Cf::Feed, fk::tag_due(due, self.user_id));
        }
        let next = self.next_tag_change(state, tr, end);
        self.finish(state, held, None, (end, next), batch)
    }

    /// What `verify` holds a stored mark to: the tags held are the rules'
    /// at the mark, and the due key comes no later than the first instant
    /// after it at which they change with no new event (looked ahead as
    /// `advance` looks). Returns what is wrong.
    pub fn check_mark(&self, state: &UserState) -> Option<String> {
        let mark = state.tags.as_ref()?;
        let from = mark.mark_ms.max(state.anchor_ms);
        let tr = Tracker::new(self, state, from);
        let now = self.set.tags(&tr.values);
        if !now
            .iter()
            .map(AsRef::as_ref)
            .eq(mark.held.iter().map(|(t, _)| t.as_str()))
        {
            let held: Vec<&str> = mark.held.iter().map(|(t, _)| t.as_str()).collect();
            return Some(format!("holds {held:?} at {from}, its rules give {now:?}"));
        }
        let change = self.next_tag_change(state, tr, from)?;
        match mark.due_ms {
            Some(due) if due <= change => None,
            due => Some(format!(
                "its tags change at {change} with no new event, its due key is {due:?}: advance would not publish it"
            )),
        }
    }

    /// The first instant after `end` at which the rule tags differ from
    /// those at `end` with no new event (`tr`: the rule features current
    /// at `end`), walked ahead over at most [`MAX_LOOKAHEAD_STEPS`]
    /// feature changes (past them: the instant reached — still no later
    /// than the change). `advance`'s key goes there, not at the next
    /// feature change: a count sliding from 7 to 6 under a rule `>= 3`
    /// changes no tag, and `advance` does not visit the user for it (a
    /// write moves the key earlier again, to its next feature change).
    fn next_tag_change(&self, state: &UserState, mut tr: Tracker, end: i64) -> Option<i64> {
        let at_end: Vec<String> = self
            .set
            .tags(&tr.values)
            .into_iter()
            .map(Cow::into_owned)
            .collect();
        let mut steps = 0;
        while let Some(c) = tr.next().filter(|c| *c > end) {
            steps += 1;
            if steps > MAX_LOOKAHEAD_STEPS {
                return Some(c);
            }
            let due = tr.due(self, c);
            if tr.refresh(self, state, c, &due) {
                let tags = self.set.tags(&tr.values);
                if !tags
                    .iter()
                    .map(AsRef::as_ref)
                    .eq(at_end.iter().map(String::as_str))
                {
                    return Some(c);
                }
            }
        }
        None
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
        (end, next): (i64, Option<i64>),
        batch: &mut Batch,
    ) -> Result<()> {
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
