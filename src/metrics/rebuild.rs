//! Rebuilding every aggregate from the events: the migration from format 1
//! (stores written before the engine) and an operator's repair when `verify`
//! reports damage. The only code path here that reads every event.

use rocksdb::WriteBatch;

use super::state::{self, Contribution};
use crate::error::Result;
use crate::store::{Cf, Store};
use crate::timeline::{self, EventFacts, KindRegistry};
use crate::users::ALL_USERS_KEY;

/// Events replayed per write batch: bounds the memory a rebuild holds.
const REPLAY_BATCH_EVENTS: usize = 10_000;
/// Deletes per write batch while clearing.
const CLEAR_BATCH_KEYS: usize = 10_000;

/// Deletes every aggregate (keeping the all-users set and the tier sets,
/// which the users and ledger modules own) and replays every event through the write path's own aggregate code.
/// The caller holds every stripe lock. Not atomic as a whole: a crash midway
/// leaves partial aggregates, and the next rebuild (a migration re-runs until
/// it stamps the new version) starts from scratch. Returns events replayed.
pub(crate) fn rebuild(
    store: &Store,
    kinds: &KindRegistry,
    non_activity_kinds: &[String],
) -> Result<u64> {
    for cf in [Cf::Metrics, Cf::Activity] {
        let handle = store.cf(cf)?;
        let mut batch = WriteBatch::default();
        for item in store.range(cf, &[], None)? {
            let (k, _) = item?;
            // The all-users set belongs to the users module and the tier
            // sets to the ledger: neither is derived from events.
            if cf == Cf::Metrics
                && (&k[..] == ALL_USERS_KEY
                    || k.starts_with(&crate::ledger::keys::tier_set_prefix()))
            {
                continue;
            }
            batch.delete_cf(handle, k);
            if batch.len() >= CLEAR_BATCH_KEYS {
                store.write(std::mem::take(&mut batch))?;
            }
        }
        store.write(batch)?;
    }
    let offset = store.settings().utc_offset_minutes;
    let is_activity = |kind_id: u32| {
        kinds
            .kind(kind_id)
            .is_none_or(|k| super::counts_as_activity(non_activity_kinds, k.as_str()))
    };
    let mut chunk: Vec<EventFacts> = Vec::with_capacity(REPLAY_BATCH_EVENTS);
    let mut replayed = 0u64;
    let flush = |chunk: &mut Vec<EventFacts>| -> Result<()> {
        let contributions: Vec<Contribution<'_>> = chunk
            .iter()
            .map(|e| Contribution {
                user_id: e.user_id,
                kind_id: e.kind_id,
                is_activity: is_activity(e.kind_id),
                ts_ms: e.ts_ms,
                amount_minor: e.amount_minor,
                session_id: e.session_id.as_deref(),
            })
            .collect();
        let mut batch = WriteBatch::default();
        state::apply(store, &mut batch, offset, &contributions)?;
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
    Ok(replayed)
}
