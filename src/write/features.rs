//! Changing the feature definitions and tag rules: stored and swapped in
//! with every writer held off, so a write computes under one set. No state
//! is rewritten here: each user's state carries the version it was
//! computed under, and a state of another version is recomputed from the
//! events when the user is next written or read, or by the backfill.

use std::sync::Arc;

use super::Writer;
use crate::error::{Error, Result};
use crate::features::{self, FeatureSet};
use crate::store::Batch;

/// Users one backfill step recomputes (each step is one write).
const BACKFILL_STEP_USERS: usize = 256;

/// Most threads one backfill step recomputes states on.
const MAX_BACKFILL_THREADS: usize = 4;

/// Users whose due rule tags one step of `advance` settles (one write:
/// one commit for many small states, not one each).
const TAG_STEP_USERS: usize = 64;

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

    /// Walks every user whose rule tags are due by `now_ms` to it, a step
    /// of users at a time, each step one write under the users' stripes:
    /// the due index (whose keys move in the same writes) is the progress
    /// a re-run after a kill resumes from.
    pub(super) fn settle_tag_dues(
        &self,
        now_ms: i64,
        report: &mut super::AdvanceReport,
    ) -> Result<()> {
        let mut after: Option<Vec<u8>> = None;
        loop {
            let page = features::due_page(
                self.store,
                now_ms,
                after.as_deref(),
                super::advance::DUE_PAGE,
            )?;
            let Some((last, _, _)) = page.last() else {
                return Ok(());
            };
            after = Some(last.clone());
            for step in page.chunks(TAG_STEP_USERS) {
                let due: Vec<(i64, u32)> = step.iter().map(|(_, d, u)| (*d, *u)).collect();
                self.settle_tag_step(&due, now_ms, report)?;
            }
        }
    }

    /// Settles the users met in the due index at `due` (`(due_ms, user)`)
    /// in one write.
    fn settle_tag_step(
        &self,
        due: &[(i64, u32)],
        now_ms: i64,
        report: &mut super::AdvanceReport,
    ) -> Result<()> {
        let mut batch = Batch::new();
        let mut named = Vec::with_capacity(due.len());
        for &(due_ms, user_id) in due {
            match crate::users::record_of(self.store, user_id)? {
                Some(record) => named.push((record.name, due_ms, user_id)),
                // (an erased user's key went with it, or is dropped here)
                None => batch.delete(
                    crate::store::Cf::Feed,
                    crate::keys::feed::tag_due(due_ms, user_id),
                ),
            }
        }
        let _guard = self.stripes.lock(named.iter().map(|(n, _, _)| n.as_str()));
        let set = self.features.read().clone();
        for (_, due_ms, user_id) in named {
            let before = batch.logs();
            let (store, kinds) = (self.store, self.kinds);
            features::settle_due(store, kinds, &set, (user_id, due_ms), now_ms, &mut batch)?;
            if batch.logs() > before {
                report.tag_users += 1;
                report.tag_changes += (batch.logs() - before) as u64;
            }
        }
        self.store.write(batch)
    }

    /// Recomputes the state of every user whose state is missing or of
    /// another version, a step of users at a time, each step one write
    /// under the users' stripes; returns how many. A kill loses at most
    /// the step in flight, and a re-run goes on where it stopped.
    pub fn backfill_features(&self) -> Result<u64> {
        self.check_not_nested()?;
        self.store.check_writes_allowed()?;
        // (read once: a user created after it gets its state, of the set
        // then in force, from its first write)
        let all = crate::users::all_users(self.store)?;
        let mut done = 0u64;
        let mut after: Option<u32> = None;
        loop {
            let set = self.features.read().clone();
            let (users, last) =
                features::stale_users(self.store, &all, &set, after, BACKFILL_STEP_USERS)?;
            let Some(last) = last else { return Ok(done) };
            after = Some(last);
            if users.is_empty() {
                continue;
            }
            let _stripes = self.stripes.lock(users.iter().map(|(_, name)| name));
            // (the set may have moved while the step waited: the states are
            // then of an older version, recomputed by the next run)
            let set = self.features.read().clone();
            let (n, batch) = self.recompute_step(&set, &users)?;
            done += n;
            self.store.write(batch)?;
        }
    }

    /// One backfill step's states, recomputed in parts side by side (the
    /// work is reading each user's events and folding them: the threads
    /// share nothing but the store) and gathered into one batch in user
    /// order.
    fn recompute_step(&self, set: &FeatureSet, users: &[(u32, String)]) -> Result<(u64, Batch)> {
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .clamp(1, MAX_BACKFILL_THREADS);
        let offset = self.store.settings().utc_offset_minutes;
        let clock_ms = self.clock.read().now_ms;
        let (store, kinds) = (self.store, self.kinds);
        let part = |part: &[(u32, String)]| -> Result<(u64, Batch)> {
            let mut batch = Batch::new();
            let n =
                features::recompute_into(store, kinds, set, offset, part, clock_ms, &mut batch)?;
            Ok((n, batch))
        };
        let size = users.len().div_ceil(threads).max(1);
        let parts: Vec<Result<(u64, Batch)>> = std::thread::scope(|scope| {
            let spawned: Vec<_> = users
                .chunks(size)
                .map(|chunk| scope.spawn(move || part(chunk)))
                .collect();
            spawned
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(Error::internal("a backfill thread panicked")))
                })
                .collect()
        });
        let mut out = (0, Batch::new());
        for p in parts {
            let (n, batch) = p?;
            out.0 += n;
            out.1.absorb(batch)?;
        }
        Ok(out)
    }
}
