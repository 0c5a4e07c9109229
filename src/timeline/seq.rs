//! Each user's next event sequence number: a primary record.
//!
//! An event's key is `user ‖ ts_desc ‖ !seq`, so the sequence number is part
//! of the event's identity: two events of one user at one instant differ
//! only by it. It must therefore never come from derived state (SPEC §5,
//! "primary data never depends on derived data"): a rebuild that deleted
//! the aggregates, or damage to them, must not make a write reuse a number
//! and overwrite a stored event. It is kept in `event_ids` under the bare
//! user key (`u32be user`, 4 bytes; every dedup entry is longer, so the two
//! never meet), written in the batch of every write that records events for
//! the user and deleted with the user's other `event_ids` keys.

use rustc_hash::FxHashMap;

use crate::codec;
use crate::error::{Error, Result};
use crate::keys;
use crate::store::{Batch, Cf, Store};

/// The stored next sequence number of `user_id` (0: none recorded, so no
/// events).
pub(crate) fn stored_next(store: &Store, user_id: u32) -> Result<u32> {
    Ok(store
        .get::<u32>(Cf::EventIds, &keys::user(user_id))?
        .unwrap_or(0))
}

/// Puts `user_id`'s next sequence number into `batch`.
pub(crate) fn put_next(batch: &mut Batch, user_id: u32, next: u32) -> Result<()> {
    batch.put(Cf::EventIds, keys::user(user_id), codec::encode(&next)?);
    Ok(())
}

/// The sequence numbers one write hands out: read once per user, advanced
/// per event, written back by [`Sequences::finish`] into the write's batch.
pub(crate) struct Sequences<'s> {
    store: &'s Store,
    /// user → (stored next, next after this write's events so far).
    next: FxHashMap<u32, (u32, u32)>,
}

impl<'s> Sequences<'s> {
    pub fn new(store: &'s Store) -> Self {
        Self {
            store,
            next: FxHashMap::default(),
        }
    }

    /// The sequence number of `user_id`'s next event, handed out (the next
    /// call returns one more). `new`: the write creates the user, so
    /// nothing of it is stored and nothing is read.
    pub fn take(&mut self, user_id: u32, new: bool) -> Result<u32> {
        let slot = match self.next.get_mut(&user_id) {
            Some(slot) => slot,
            None => {
                let stored = if new {
                    0
                } else {
                    stored_next(self.store, user_id)?
                };
                self.next.entry(user_id).or_insert((stored, stored))
            }
        };
        let seq = slot.1;
        slot.1 = seq.checked_add(1).ok_or(Error::LimitReached {
            what: "events per user",
            max: u64::from(u32::MAX),
        })?;
        Ok(seq)
    }

    /// Puts every changed next sequence number into `batch`.
    pub(crate) fn finish(&self, batch: &mut Batch) -> Result<()> {
        for (&user_id, &(stored, next)) in &self.next {
            if next != stored {
                put_next(batch, user_id, next)?;
            }
        }
        Ok(())
    }
}

/// Users whose sequence records one batch of [`rebuild_sequences`] writes.
const SEQUENCES_PER_BATCH: usize = 10_000;

/// Writes every user's sequence record from its stored events (one past
/// its highest sequence number), for the users after `after`, in user
/// order: the migration to the format that keeps them. `commit` gets each
/// batch and the last user it covers, and must commit both together, so a
/// resumed run starts after the last user written.
pub(crate) fn rebuild_sequences(
    store: &Store,
    after: Option<u32>,
    mut commit: impl FnMut(Batch, u32) -> Result<()>,
) -> Result<()> {
    let from = match after {
        Some(u) if u == u32::MAX => return Ok(()),
        Some(u) => keys::user(u + 1).to_vec(),
        None => Vec::new(),
    };
    let mut batch = Batch::new();
    let mut current: Option<(u32, u32)> = None;
    let mut users = 0usize;
    for item in store.range(Cf::Events, &from, None)? {
        let (k, _) = item?;
        let key = keys::EventKey::decode(Cf::Events.name(), &k)?;
        let next = key.seq.saturating_add(1);
        match current.as_mut() {
            Some((user, max)) if *user == key.user_id => *max = (*max).max(next),
            _ => {
                if let Some((user, max)) = current.take() {
                    put_next(&mut batch, user, max)?;
                    users += 1;
                    if users % SEQUENCES_PER_BATCH == 0 {
                        commit(std::mem::take(&mut batch), user)?;
                    }
                }
                current = Some((key.user_id, next));
            }
        }
    }
    if let Some((user, max)) = current {
        put_next(&mut batch, user, max)?;
        commit(batch, user)?;
    }
    Ok(())
}
