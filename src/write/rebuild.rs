//! Rebuilding every aggregate from the events: the migration from format 1
//! (stores written before the engine) and an operator's repair when `verify`
//! reports damage. The only write that reads every event.

use crate::store::Batch;

use crate::error::Result;
use crate::feed::Clock;
use crate::kinds::KindRegistry;
use crate::metrics::{
    self,
    state::{Contribution, StageCtx, StateWrites},
    transitions::Publish,
    StageModel,
};
use crate::store::Store;
use crate::timeline::{self, EventFacts};

/// Events replayed per write batch: bounds the memory a rebuild holds.
const REPLAY_BATCH_EVENTS: usize = 10_000;

/// Deletes every aggregate derived from events (the metrics module's
/// `forget::clear`) and replays every event through the write path's own
/// aggregate code. The caller holds every stripe lock. Not atomic as a
/// whole: a crash midway leaves partial aggregates, and the next rebuild (a
/// migration re-runs until it stamps the new version) starts from scratch.
/// Returns events replayed.
pub(crate) fn rebuild(
    store: &Store,
    kinds: &KindRegistry,
    non_activity_kinds: &[String],
    model: &StageModel,
    exposure_kind: &str,
) -> Result<u64> {
    metrics::forget::clear(store)?;
    // Marks are re-derived at the later of each user's last activity and
    // the clock, silently: what the feed published before is not replayed.
    let clock = Clock::load(store)?;
    let stages = StageCtx {
        model,
        clock_day: clock.day(store.settings().utc_offset_minutes),
        publish: Publish::Silent,
    };
    let is_activity = |kind_id: u32| {
        kinds
            .kind(kind_id)
            .is_none_or(|k| metrics::counts_as_activity(non_activity_kinds, k.as_str()))
    };
    let mut chunk: Vec<EventFacts> = Vec::with_capacity(REPLAY_BATCH_EVENTS);
    let mut replayed = 0u64;
    let flush = |chunk: &mut Vec<EventFacts>| -> Result<()> {
        // A user may span two chunks: its state is always read (new: false).
        let mut state = StateWrites::new(store, stages);
        for e in chunk.iter() {
            state.add(
                &Contribution {
                    user_id: e.user_id,
                    kind_id: e.kind_id,
                    is_activity: is_activity(e.kind_id),
                    ts_ms: e.ts_ms,
                    amount_minor: e.amount_minor,
                    session_id: e.session_id.as_deref(),
                },
                false,
            )?;
        }
        let mut batch = Batch::new();
        state.finish(&mut batch)?;
        store.write(batch)?;
        chunk.clear();
        Ok(())
    };
    timeline::for_each_event(store, |e| {
        chunk.push(e);
        replayed += 1;
        if chunk.len() >= REPLAY_BATCH_EVENTS {
            flush(&mut chunk)?;
        }
        Ok(())
    })?;
    flush(&mut chunk)?;
    // (attributions come out as they were: the same events, the same window)
    crate::social::rebuild(store)?;
    // (the clear took the assignments with the rest of the activity family)
    crate::experiments::rebuild(store, kinds, exposure_kind)?;
    Ok(replayed)
}
