//! The change feed's side of [`Db`] (SPEC §4a): the clock, reading and
//! trimming the feed, and stage-model changes.

use super::Db;
use crate::error::Result;
use crate::feed::{self, FeedEntry};
use crate::metrics::StageModel;
use crate::write::AdvanceReport;

impl Db {
    /// Moves the store's clock to `now_ms` and settles everything due up to
    /// it: stage changes time brought (found through the due index, not by
    /// scanning users), the ledger's expiries, hold timeouts and tier
    /// reviews ([`Db::expire_points`] is this run's ledger part alone).
    /// Deterministic for a given `now_ms`; a re-run writes nothing; each
    /// user is settled in its own atomic write, so a crash leaves the rest
    /// due for the next run. The clock never moves back: an earlier
    /// `now_ms` settles nothing new.
    ///
    /// ```
    /// # fn main() -> Result<(), stickydb::Error> {
    /// let dir = tempfile::tempdir()?;
    /// let db = stickydb::Db::create(dir.path(), stickydb::Options::default())?;
    /// let day_ms = 86_400_000;
    /// db.record(&stickydb::Event::new("ann", "view", 19_800 * day_ms))?;
    /// let report = db.advance(19_840 * day_ms)?;
    /// // new → growing → declining → churned, found through the due index
    /// assert_eq!(report.stage_changes, 3);
    /// assert_eq!(db.advance(19_840 * day_ms)?.stage_changes, 0); // re-run: nothing
    /// let feed = db.feed(0, 10)?;
    /// assert_eq!(feed.len(), 4); // the first event's `new`, then the three
    /// # Ok(()) }
    /// ```
    pub fn advance(&self, now_ms: i64) -> Result<AdvanceReport> {
        self.writer().check_not_nested()?;
        let _one = self.advance_lock.lock();
        self.writer().advance(now_ms)
    }

    /// The clock: the `now_ms` of the last [`Db::advance`], if any.
    pub fn clock_ms(&self) -> Option<i64> {
        self.clock.read().now_ms
    }

    /// Feed entries with a cursor above `after_cursor`, oldest first, at
    /// most `limit` ([`feed::MAX_READ_ENTRIES`]). A consumer stores the
    /// last cursor it handled and resumes from it (at least once).
    pub fn feed(&self, after_cursor: u64, limit: usize) -> Result<Vec<FeedEntry>> {
        feed::read(&self.store, after_cursor, limit)
    }

    /// The cursor of the newest feed entry (0 when the feed is empty).
    pub fn feed_head(&self) -> Result<u64> {
        self.store.last_feed_cursor()
    }

    /// Deletes feed entries with a cursor at or below `through_cursor`
    /// (retention: consumers past it no longer need them). Returns how
    /// many were deleted; cursors are never reused.
    pub fn trim_feed(&self, through_cursor: u64) -> Result<u64> {
        self.store.check_writes_allowed()?;
        // (two trims at once could lower the highest trimmed cursor)
        let _one = self.trim_lock.lock();
        feed::trim(&self.store, through_cursor)
    }

    /// Sets how many days before a lot's expiry its expiry notice is due
    /// (default 7, at most [`feed::MAX_NOTICE_DAYS`]; persisted).
    pub fn set_expiry_notice_days(&self, days: u32) -> Result<()> {
        self.writer().check_not_nested()?;
        // (an advance's notice scan must not straddle a change of period)
        let _one = self.advance_lock.lock();
        self.writer().set_notice_days(days)
    }

    /// The expiry-notice period in days.
    pub fn expiry_notice_days(&self) -> u32 {
        self.clock.read().notice_days
    }

    /// Deletes the feed entries written (wall clock) before
    /// `written_before_ms`: retention by age, e.g. `now − 30 days`.
    /// Returns how many were deleted.
    pub fn trim_feed_older(&self, written_before_ms: i64) -> Result<u64> {
        self.store.check_writes_allowed()?;
        let _one = self.trim_lock.lock();
        feed::trim_older(&self.store, written_before_ms)
    }

    /// Replaces the lifecycle-stage model (persisted) and re-derives every
    /// user's published stage under it: users whose stage changes get a
    /// feed entry with cause `model`, and due days are recomputed. Holds
    /// every writer off while it runs. A job (docs/architecture.md, "Jobs"):
    /// a kill midway leaves it recorded, and [`Db::finish_jobs`] (or this
    /// call again) finishes it.
    pub fn set_stage_model(&self, model: StageModel) -> Result<()> {
        self.writer().set_stage_model(model)
    }
}
