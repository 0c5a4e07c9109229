//! Aggregates kept exact on write.
//!
//! Owns the `metrics` column family's counters (user sets are shared with the
//! users module through [`crate::users::ALL_USERS_KEY`]). Today it keeps the
//! store-wide event totals, per kind; the SPEC §3 engine grows here. Every
//! update is a merge operand in the same batch as the write that causes it,
//! so no global key is ever read-modified-written. Must not read events.

use rocksdb::WriteBatch;

use crate::error::Result;
use crate::store::merge::{self, metric_space};
use crate::store::{Cf, Store};

fn events_total_key() -> Vec<u8> {
    vec![metric_space::COUNTER, b'e', b'v']
}

fn events_kind_key(kind_id: u32) -> Vec<u8> {
    let mut k = vec![metric_space::COUNTER, b'e', b'k'];
    k.extend_from_slice(&kind_id.to_be_bytes());
    k
}

/// Adds `delta` events of kind `kind_id` to the store totals, in `batch`.
/// Callers sum per batch first: one operand per kind, not per event.
pub fn count_events(store: &Store, batch: &mut WriteBatch, kind_id: u32, delta: i64) -> Result<()> {
    let cf = store.cf(Cf::Metrics)?;
    batch.merge_cf(cf, events_total_key(), merge::encode_counter(delta));
    batch.merge_cf(cf, events_kind_key(kind_id), merge::encode_counter(delta));
    Ok(())
}

fn read_counter(store: &Store, key: &[u8]) -> Result<i64> {
    store.get_counter(Cf::Metrics, key)
}

/// Events recorded in the store (duplicates excluded).
pub fn events_total(store: &Store) -> Result<i64> {
    read_counter(store, &events_total_key())
}

/// Events of kind `kind_id` recorded in the store.
pub fn events_of_kind(store: &Store, kind_id: u32) -> Result<i64> {
    read_counter(store, &events_kind_key(kind_id))
}
