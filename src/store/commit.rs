//! The one commit path of a store: every batch reaches RocksDB through
//! [`Store::write`], which refuses writes after a failed commit (fail-stop)
//! and while a job is left unfinished, hands out change-feed cursors, and
//! adopts the job record a batch carries once it committed.

use rocksdb::{IteratorMode, ReadOptions};

use super::batch::MAX_BATCH_BYTES;
use super::{Area, Batch, Cf, Job, Store};
use crate::error::{Error, Result};

impl Store {
    /// Commits a batch atomically, honouring the sync setting. A value over
    /// [`crate::codec::MAX_STORED_VALUE_BYTES`] fails the whole batch with
    /// [`Error::ValueTooLarge`] before anything is written. Refused after a
    /// failed commit ([`Error::Poisoned`]) and, unless the batch is a job's,
    /// while a job is recorded that nobody runs ([`Error::JobUnfinished`]).
    pub fn write(&self, batch: Batch) -> Result<()> {
        self.commit(batch, self.sync_writes)
    }

    /// [`Store::write`], fsync'd whatever the sync setting (a migration's
    /// stamp, a job's end).
    pub(crate) fn write_synced(&self, batch: Batch) -> Result<()> {
        self.commit(batch, true)
    }

    /// [`Store::write`] with the durability of one transaction: `sync`
    /// fsyncs the log before returning whatever the store's default.
    pub(crate) fn write_durable(&self, batch: Batch, sync: bool) -> Result<()> {
        self.commit(batch, sync)
    }

    fn commit(&self, batch: Batch, sync: bool) -> Result<()> {
        self.check_writable()?;
        if batch.job_update().is_none() {
            self.check_no_job()?;
        }
        if batch.logs() > 0 {
            return self.commit_logged(batch, sync);
        }
        let job_update = batch.job_update().cloned();
        self.commit_raw(batch, sync)?;
        if let Some(update) = job_update {
            self.set_recorded(update);
        }
        Ok(())
    }

    /// Writes one batch to RocksDB; a failed write poisons the handle.
    pub(super) fn commit_raw(&self, batch: Batch, sync: bool) -> Result<()> {
        let batch = batch.into_write_batch(self)?;
        let bytes = batch.size_in_bytes() as u64;
        let options = if sync {
            &self.write_synced
        } else {
            &self.write_unsynced
        };
        if let Err(e) = self.db.write_opt(batch, options) {
            // What the write changed in memory may not match the store:
            // fail-stop until the store is reopened.
            self.poison(e.as_ref());
            return Err(e.into());
        }
        self.bytes_written
            .fetch_add(bytes, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    /// Commits a batch that carries feed entries. Cursors must become
    /// visible in order (a reader that saw cursor `c` never later meets a
    /// new entry below it), so such batches commit one group at a time: a
    /// writer queues its batch, and whoever finds no commit in flight leads
    /// — takes every queued batch, keys their entries with the next cursors
    /// in queue order, and commits them as one RocksDB batch (one fsync for
    /// the group with `sync_writes`) — while the others wait for its
    /// result. No lock is held across the commit: writers queue behind it
    /// instead of waiting for each other's fsync in turn.
    fn commit_logged(&self, batch: Batch, sync: bool) -> Result<()> {
        let _order = crate::order::Token::take(crate::order::Level::FeedCommit);
        // A member refused alone must not fail the group's commit.
        batch.check_values()?;
        let mut queue = self.feed.state.lock();
        let ticket = queue.next_ticket;
        queue.next_ticket += 1;
        queue.waiting.push(Waiting {
            ticket,
            batch,
            sync,
        });
        loop {
            if let Some(outcome) = queue.finished.remove(&ticket) {
                return outcome.map_err(|failure| failure.into_error());
            }
            if queue.leading {
                self.feed.done.wait(&mut queue);
                continue;
            }
            // Lead one group (ours is still queued: a leader that took it
            // would have left its outcome).
            queue.leading = true;
            let group = take_group(&mut queue.waiting);
            let first = queue.next_cursor;
            let mut lead = Leading {
                commits: &self.feed,
                tickets: group.iter().map(|w| w.ticket).collect(),
                next: first,
                done: false,
            };
            drop(queue);
            let (next, outcome) = self.commit_group(group, first);
            lead.next = next;
            let ours = lead.tickets.contains(&ticket);
            lead.finish(ticket, &outcome, self.poison.lock().clone());
            if ours {
                return outcome;
            }
            queue = self.feed.state.lock();
        }
    }

    /// Keys the group's feed entries from cursor `first` in queue order
    /// and commits the group as one batch. Returns the next cursor, the
    /// group's tickets and the outcome.
    fn commit_group(&self, group: Vec<Waiting>, first: u64) -> (u64, Result<()>) {
        let mut combined = Batch::new();
        let mut next = first;
        let mut sync = false;
        let mut updates = Vec::new();
        for mut member in group {
            let logged = member.batch.logs() as u64;
            member.batch.key_logs(next);
            next += logged;
            sync |= member.sync;
            updates.extend(member.batch.job_update().cloned());
            combined.append(member.batch);
        }
        // A batch queued before a failed commit poisoned the handle is not
        // written after it (fail-stop).
        if let Err(e) = self.check_writable() {
            return (next, Err(e));
        }
        let outcome = self.commit_raw(combined, sync);
        if outcome.is_ok() {
            for update in updates {
                self.set_recorded(update);
            }
        }
        (next, outcome)
    }

    pub(super) fn set_recorded(&self, job: Option<Job>) {
        let mut state = self.job.lock();
        self.job_recorded
            .store(job.is_some(), std::sync::atomic::Ordering::Release);
        // A job recorded and not (yet) run by this handle refuses writes
        // from its first commit on: a failure before its run starts must
        // not let writes meet its half-done work.
        self.job_blocked.store(
            job.is_some() && !state.running,
            std::sync::atomic::Ordering::Release,
        );
        state.recorded = job;
    }

    /// Refuses every later write of this handle with `cause`.
    pub(super) fn poison(&self, cause: &str) {
        let mut p = self.poison.lock();
        if p.is_none() {
            *p = Some(cause.to_owned());
        }
        self.poisoned
            .store(true, std::sync::atomic::Ordering::Release);
    }

    /// The refusal of writes while the recorded job is unfinished, if one is.
    fn job_error(&self) -> Option<Error> {
        let state = self.job.lock();
        state.recorded.as_ref().map(job_unfinished)
    }

    /// The job recorded in the store, if any, and whether this handle runs it.
    pub(crate) fn job(&self) -> Option<(Job, bool)> {
        let state = self.job.lock();
        state.recorded.clone().map(|j| (j, state.running))
    }

    /// Marks the recorded job (or the one about to be recorded) as run by
    /// this handle until the returned guard drops: writes then wait on the
    /// job's locks rather than being refused. When the guard drops with a
    /// record still there (a step failed), writes are refused again.
    pub(crate) fn run_job(&self) -> JobRun<'_> {
        self.job.lock().running = true;
        self.job_blocked
            .store(false, std::sync::atomic::Ordering::Release);
        JobRun { store: self }
    }

    /// Fails with [`Error::JobUnfinished`] when the recorded job (running
    /// or not) re-derives `area`: a query would see half its work.
    pub(crate) fn check_area(&self, area: Area) -> Result<()> {
        if !self.job_recorded.load(std::sync::atomic::Ordering::Acquire) {
            return Ok(());
        }
        let state = self.job.lock();
        match &state.recorded {
            Some(job) if job.kind.touches(area) => Err(job_unfinished(job)),
            _ => Ok(()),
        }
    }

    /// The highest cursor ever handed out as far as the store shows: its
    /// newest entry's, or the highest a trim deleted (0 when neither).
    pub(super) fn feed_high_water(&self) -> Result<u64> {
        let trimmed = match self.db.cf_handle(Cf::Feed.name()) {
            Some(_) => self
                .get::<u64>(Cf::Feed, &crate::keys::feed::TRIMMED)?
                .unwrap_or(0),
            None => 0,
        };
        Ok(self.last_feed_cursor()?.max(trimmed))
    }

    /// The cursor of the newest feed entry (0 when there is none, or when a
    /// read-only open of an older format has no feed).
    pub fn last_feed_cursor(&self) -> Result<u64> {
        if self.db.cf_handle(Cf::Feed.name()).is_none() {
            return Ok(0);
        }
        let until = [crate::keys::feed::ENTRY + 1];
        let mut it = self.db.iterator_cf_opt(
            self.cf(Cf::Feed)?,
            {
                let mut o = ReadOptions::default();
                o.set_total_order_seek(true);
                o.set_iterate_upper_bound(until.to_vec());
                o
            },
            IteratorMode::From(&until, rocksdb::Direction::Reverse),
        );
        match it.next() {
            Some(item) => {
                let (k, _) = item?;
                Ok(crate::keys::feed::entry_cursor(&k).unwrap_or(0))
            }
            None => Ok(0),
        }
    }

    /// Fails with [`Error::ReadOnly`] when the store cannot be written,
    /// and with [`Error::Poisoned`] after a failed commit.
    pub fn check_writable(&self) -> Result<()> {
        if self.read_only {
            return Err(Error::ReadOnly);
        }
        if self.poisoned.load(std::sync::atomic::Ordering::Acquire) {
            let cause = self.poison.lock().clone().unwrap_or_default();
            return Err(Error::Poisoned { cause });
        }
        Ok(())
    }

    /// Fails as [`Store::check_writable`] does, and with
    /// [`Error::JobUnfinished`] while a job is recorded that nobody runs:
    /// the entry check of every write that is not a job's (before it reads
    /// state a half-done job may have left; the commit checks again).
    pub(crate) fn check_writes_allowed(&self) -> Result<()> {
        self.check_writable()?;
        self.check_no_job()
    }

    /// Fails with [`Error::JobUnfinished`] while a job is recorded that
    /// nobody runs (the entry check of writes that take no stripe lock;
    /// the commit checks again).
    pub(crate) fn check_no_job(&self) -> Result<()> {
        if self.job_blocked.load(std::sync::atomic::Ordering::Acquire) {
            if let Some(err) = self.job_error() {
                return Err(err);
            }
        }
        Ok(())
    }
}

/// While alive, this handle runs the recorded job (see [`Store::run_job`]).
pub(crate) struct JobRun<'a> {
    store: &'a Store,
}

impl Drop for JobRun<'_> {
    fn drop(&mut self) {
        let mut state = self.store.job.lock();
        state.running = false;
        self.store.job_blocked.store(
            state.recorded.is_some(),
            std::sync::atomic::Ordering::Release,
        );
    }
}

/// The refusal naming an unfinished job.
pub(super) fn job_unfinished(job: &Job) -> Error {
    Error::JobUnfinished {
        job: job.kind.name(),
        step: job.describe_step(),
        call: "Db::finish_jobs",
        command: "stickydb jobs finish",
    }
}

/// Why a group commit failed, as its other members are told.
#[derive(Debug, Clone)]
enum Failure {
    /// The handle is poisoned (by this commit or an earlier one).
    Poisoned(String),
    /// The group was refused before anything was written.
    Refused(String),
}

impl Failure {
    fn of(store_poisoned: Option<String>, e: &Error) -> Self {
        match (store_poisoned, e) {
            (_, Error::Poisoned { cause }) => Failure::Poisoned(cause.clone()),
            (Some(cause), _) => Failure::Poisoned(cause),
            (None, e) => Failure::Refused(e.to_string()),
        }
    }

    fn into_error(self) -> Error {
        match self {
            Failure::Poisoned(cause) => Error::Poisoned { cause },
            Failure::Refused(reason) => Error::Io(std::io::Error::other(format!(
                "the group commit this write joined was refused: {reason}"
            ))),
        }
    }
}

/// The leader's duty to the group it took: tell every member the outcome,
/// hand out no cursor twice, and let the next leader lead — also when the
/// commit unwinds (a panic must not leave the queue led forever).
struct Leading<'a> {
    commits: &'a FeedCommits,
    tickets: Vec<u64>,
    next: u64,
    done: bool,
}

impl Leading<'_> {
    /// Tells the members other than `own` the `outcome` (the store's
    /// poison cause, if it is poisoned now) and ends the lead.
    fn finish(&mut self, own: u64, outcome: &Result<()>, poisoned: Option<String>) {
        let told = outcome
            .as_ref()
            .map(|_| ())
            .map_err(|e| Failure::of(poisoned, e));
        self.release(own, told);
    }

    fn release(&mut self, own: u64, told: std::result::Result<(), Failure>) {
        let mut queue = self.commits.state.lock();
        // (after a failure too: a cursor handed out is never handed out
        // again; the next open starts above every cursor on disk)
        queue.next_cursor = queue.next_cursor.max(self.next);
        for t in self.tickets.drain(..).filter(|t| *t != own) {
            queue.finished.insert(t, told.clone());
        }
        queue.leading = false;
        self.done = true;
        self.commits.done.notify_all();
    }
}

impl Drop for Leading<'_> {
    fn drop(&mut self) {
        if !self.done {
            let reason = Failure::Refused("its leader stopped midway".into());
            self.release(u64::MAX, Err(reason));
        }
    }
}

/// Batches that carry feed entries, committed one group at a time in
/// cursor order (see [`Store::commit_logged`]).
#[derive(Debug)]
pub(super) struct FeedCommits {
    state: parking_lot::Mutex<Queue>,
    done: parking_lot::Condvar,
}

impl FeedCommits {
    /// Cursors handed out from `next_cursor` on.
    pub fn new(next_cursor: u64) -> Self {
        Self {
            state: parking_lot::Mutex::new(Queue {
                next_cursor,
                next_ticket: 0,
                waiting: Vec::new(),
                finished: std::collections::HashMap::new(),
                leading: false,
            }),
            done: parking_lot::Condvar::new(),
        }
    }
}

#[derive(Debug)]
struct Queue {
    /// The cursor the next feed entry gets.
    next_cursor: u64,
    next_ticket: u64,
    /// Batches no leader took yet, in arrival order.
    waiting: Vec<Waiting>,
    /// Outcomes of batches a leader committed, for their writers.
    finished: std::collections::HashMap<u64, std::result::Result<(), Failure>>,
    /// A leader is committing a group.
    leading: bool,
}

#[derive(Debug)]
struct Waiting {
    ticket: u64,
    batch: Batch,
    sync: bool,
}

/// The queued batches one commit takes, oldest first: all of them, unless
/// together they would pass what one batch can address (the rest wait for
/// the next group; the first is always taken).
fn take_group(waiting: &mut Vec<Waiting>) -> Vec<Waiting> {
    let mut bytes = 0usize;
    let mut n = 0;
    for w in waiting.iter() {
        bytes = bytes.saturating_add(w.batch.byte_len());
        if n > 0 && bytes > MAX_BATCH_BYTES / 2 {
            break;
        }
        n += 1;
    }
    waiting.drain(..n).collect()
}
