//! Replaying every event into the aggregates: the `Replay` step of a
//! rebuild (an operator's repair when `verify` reports damage) and of the
//! migration from formats 1–5. The only write that reads every event.

use crate::error::Result;
use crate::metrics::{
    self,
    state::{Contribution, StageCtx, StateWrites},
    transitions::Publish,
};
use crate::store::{Batch, Job};
use crate::timeline::{self, EventFacts};

use super::jobs::JobCtx;

/// Events replayed per write batch: bounds the memory a rebuild holds.
const REPLAY_BATCH_EVENTS: usize = 10_000;

/// Replays every event after the job's cursor (the last event key
/// replayed) through the write path's own aggregate code, on aggregates
/// the `Clear` step emptied. Each batch carries the cursor moved to its
/// last event, so a resumed replay adds every event exactly once (the
/// counters are merge operands: adding one twice would count it twice).
/// The caller holds every stripe lock. Returns events replayed.
pub(super) fn replay(ctx: &JobCtx<'_>, job: &mut Job) -> Result<u64> {
    let store = ctx.store;
    // Marks are re-derived at the later of each user's last activity and
    // the clock, silently: what the feed published before is not replayed.
    let stages = StageCtx {
        model: ctx.model,
        clock_day: ctx.clock.day(store.settings().utc_offset_minutes),
        publish: Publish::Silent,
    };
    let is_activity = |kind_id: u32| {
        ctx.kinds
            .kind(kind_id)
            .is_none_or(|k| metrics::counts_as_activity(ctx.non_activity_kinds, k.as_str()))
    };
    let after = (!job.cursor.is_empty()).then(|| job.cursor.clone());
    let mut chunk: Vec<EventFacts> = Vec::with_capacity(REPLAY_BATCH_EVENTS);
    let mut last_key: Vec<u8> = Vec::new();
    let mut replayed = 0u64;
    let mut flush = |chunk: &mut Vec<EventFacts>, last_key: &[u8]| -> Result<()> {
        if chunk.is_empty() {
            return Ok(());
        }
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
        job.cursor = last_key.to_vec();
        batch.set_job(job)?;
        store.write(batch)?;
        chunk.clear();
        Ok(())
    };
    timeline::for_each_event_after(store, after.as_deref(), |key, e| {
        chunk.push(e);
        replayed += 1;
        if chunk.len() >= REPLAY_BATCH_EVENTS {
            flush(&mut chunk, key)?;
        }
        last_key.clear();
        last_key.extend_from_slice(key);
        Ok(())
    })?;
    flush(&mut chunk, &last_key)?;
    Ok(replayed)
}
