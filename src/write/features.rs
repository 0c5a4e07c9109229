//! Changing the feature definitions and tag rules: stored and swapped in
//! with every writer held off, so a write computes under one set. No state
//! is rewritten here: each user's state carries the version it was
//! computed under, and a state of another version is recomputed from the
//! events when the user is next written or read, or by the backfill.

use std::sync::Arc;

use super::Writer;
use crate::error::Result;
use crate::features::{self, FeatureSet};
use crate::store::Batch;

/// Users one backfill step recomputes (each step is one write).
const BACKFILL_STEP_USERS: usize = 256;

impl Writer<'_> {
    /// Replaces the set by `next` (made from the set in force by `change`).
    pub fn set_features(
        &self,
        change: impl FnOnce(&FeatureSet) -> Result<FeatureSet>,
    ) -> Result<Arc<FeatureSet>> {
        self.check_not_nested()?;
        self.store.check_writable()?;
        let _advance = self.advance_lock.lock();
        let mut all = self.stripes.lock_all();
        self.finish_pending(&mut all)?;
        let mut guard = self.features.write();
        let next = Arc::new(change(&guard)?);
        let mut batch = Batch::new();
        next.save(&mut batch)?;
        self.store.write(batch)?;
        // (in memory only once stored)
        *guard = next.clone();
        Ok(next)
    }

    /// Recomputes the state of every user whose state is missing or of
    /// another version, a step of users at a time, each step one write
    /// under the users' stripes; returns how many. A kill loses at most
    /// the step in flight, and a re-run goes on where it stopped.
    pub fn backfill_features(&self) -> Result<u64> {
        self.check_not_nested()?;
        self.store.check_writes_allowed()?;
        let mut done = 0u64;
        let mut after: Option<u32> = None;
        loop {
            let set = self.features.read().clone();
            if set.is_empty() {
                return Ok(done);
            }
            let (users, last) =
                features::stale_users(self.store, &set, after, BACKFILL_STEP_USERS)?;
            let Some(last) = last else { return Ok(done) };
            after = Some(last);
            if users.is_empty() {
                continue;
            }
            let _stripes = self.stripes.lock(users.iter().map(|(_, name)| name));
            // (the set may have moved while the step waited: the states are
            // then of an older version, recomputed by the next run)
            let set = self.features.read().clone();
            let mut batch = Batch::new();
            let offset = self.store.settings().utc_offset_minutes;
            done +=
                features::recompute_into(self.store, self.kinds, &set, offset, &users, &mut batch)?;
            self.store.write(batch)?;
        }
    }
}
