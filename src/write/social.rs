//! The social part of a write (docs/social.md): the recorded events'
//! shares, touches, signups and purchases — and an erased or merged-away
//! user's contributions — through one attribution engine, into the write's
//! batch, under the store's social lock.
//!
//! The lock is taken after the stripes (every social writer does the same,
//! so no two wait on each other in a cycle) and held to the commit: the
//! engine re-derives users other than the write's own (the touchers of a
//! share registered late), and those records change only under this lock.

use parking_lot::MutexGuard;

use super::Writer;
use crate::error::Result;
use crate::kinds::{ids, EventKind};
use crate::social::engine::{Engine, GroupEvent, SocialEvent};
use crate::store::Batch;
use crate::timeline::{Event, EventFacts, GroupFacts, RecordOutcome};

/// The kind id attribution knows an event by (0: a kind it ignores).
fn social_kind(kind: &EventKind) -> u32 {
    match kind {
        EventKind::Share => ids::SHARE,
        EventKind::Signup => ids::SIGNUP,
        EventKind::Purchase => ids::PURCHASE,
        _ => ids::ACTIVITY,
    }
}

/// The events of `events` that attribution reads, with where they were
/// recorded (duplicates left out).
pub(super) fn social_events(events: &[Event], outcomes: &[RecordOutcome]) -> Vec<SocialEvent> {
    events
        .iter()
        .zip(outcomes)
        .enumerate()
        .filter_map(|(index, (e, o))| {
            let RecordOutcome::Recorded { user_id, seq } = *o else {
                return None;
            };
            let event = SocialEvent {
                user_id,
                ts_ms: e.ts_ms,
                seq,
                kind_id: social_kind(&e.kind),
                amount_minor: e.amount_minor.unwrap_or(0),
                share_id: e.share_id.clone(),
                via: e.via.clone(),
                group: GroupFacts::of(e.group_id.as_deref(), e.group_target, e.group_deadline_ms),
                index,
            };
            event.matters().then_some(event)
        })
        .collect()
}

/// A user leaving attribution: its id and the instants of its share events.
pub(super) struct Leaving {
    pub user_id: u32,
    pub share_instants: Vec<i64>,
    pub groups: Vec<GroupEvent>,
}

impl Leaving {
    /// What attribution must take back of `user_id`'s stored events.
    pub fn of(user_id: u32, facts: &[EventFacts]) -> Self {
        Leaving {
            user_id,
            share_instants: facts
                .iter()
                .filter(|f| f.kind_id == ids::SHARE)
                .map(|f| f.ts_ms)
                .collect(),
            groups: facts
                .iter()
                .filter_map(|f| Some((f.group.clone()?, f.ts_ms, f.seq)))
                .collect(),
        }
    }
}

impl Writer<'_> {
    /// Puts the social part of a write into `batch`; the returned guard
    /// must be held until the batch is committed. Nothing is taken (and
    /// `None` returned) when the write cannot change attribution: no social
    /// field, no share, and either no signup or purchase or no social
    /// record in the store yet.
    pub(super) fn social_write(
        &self,
        batch: &mut Batch,
        leaving: Option<Leaving>,
        events: &[SocialEvent],
        created: &[u32],
    ) -> Result<Option<MutexGuard<'_, ()>>> {
        let opens = events.iter().any(SocialEvent::opens_social);
        let leaves = leaving
            .as_ref()
            .is_some_and(|l| !l.share_instants.is_empty() || !l.groups.is_empty());
        let live = self.social.is_live();
        if !opens && !leaves && (!live || (events.is_empty() && leaving.is_none())) {
            return Ok(None);
        }
        let guard = self.social.lock.lock();
        let settings = *self.social.settings.read();
        let mut engine = Engine::new(self.store, &settings, false).created(created);
        if let Some(l) = leaving {
            engine.erase(l.user_id, &l.share_instants, &l.groups)?;
        }
        engine.add(events)?;
        engine.finish(batch)?;
        if opens {
            self.social.set_live();
        }
        Ok(Some(guard))
    }
}
