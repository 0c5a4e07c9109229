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
use crate::social::engine::{Engine, SocialEvent};
use crate::store::Batch;
use crate::timeline::{Event, RecordOutcome};

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
            let kind_id = social_kind(&e.kind);
            SocialEvent::matters(kind_id, e.share_id.as_deref(), e.via.as_deref()).then(|| {
                SocialEvent {
                    user_id,
                    ts_ms: e.ts_ms,
                    seq,
                    kind_id,
                    amount_minor: e.amount_minor.unwrap_or(0),
                    share_id: e.share_id.clone(),
                    via: e.via.clone(),
                    index,
                }
            })
        })
        .collect()
}

/// A user leaving attribution: its id and the instants of its share events.
pub(super) struct Leaving {
    pub user_id: u32,
    pub share_instants: Vec<i64>,
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
    ) -> Result<Option<MutexGuard<'_, ()>>> {
        let opens = events
            .iter()
            .any(|e| SocialEvent::opens_social(e.kind_id, e.share_id.as_deref(), e.via.as_deref()));
        let leaves = leaving
            .as_ref()
            .is_some_and(|l| !l.share_instants.is_empty());
        let live = self.social.is_live();
        if !opens && !leaves && (!live || (events.is_empty() && leaving.is_none())) {
            return Ok(None);
        }
        let guard = self.social.lock.lock();
        let settings = *self.social.settings.read();
        let mut engine = Engine::new(self.store, &settings, false);
        if let Some(l) = leaving {
            engine.erase(l.user_id, &l.share_instants)?;
        }
        engine.add(events)?;
        engine.finish(batch)?;
        if opens {
            self.social.set_live();
        }
        Ok(Some(guard))
    }
}
