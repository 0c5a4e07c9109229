//! Jobs from the embedder's side (SPEC §5, "Jobs"; docs/architecture.md):
//! the aggregate rebuild, what job a store has recorded, and finishing it.

use super::Db;
use crate::error::Result;

/// A maintenance job recorded in a store (SPEC §5, "Jobs"; see
/// [`Db::pending_job`]).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct JobInfo {
    /// The job: `migration`, `rebuild-aggregates`, `retier`,
    /// `social-window`, `stage-model`, `erase-user` or `touchers`.
    pub name: String,
    /// The step it is at: "i/n: what it does".
    pub step: String,
    /// Whether this handle is running it now (otherwise it was left
    /// unfinished and writes are refused until it finishes).
    pub running: bool,
    /// The library call that finishes it.
    pub finish_call: &'static str,
    /// The CLI command that finishes it.
    pub finish_command: &'static str,
}

impl Db {
    /// Rebuilds every aggregate from the raw events, with all writers held
    /// off: the repair for a store whose `verify` reports aggregate damage.
    /// Returns the number of events replayed. Profiles, tags and events are
    /// untouched.
    ///
    /// A job (docs/architecture.md, "Jobs"): killed at any instant, it is
    /// left recorded, writes are refused ([`crate::Error::JobUnfinished`]) and
    /// aggregate queries say it is unfinished until [`Db::finish_jobs`] (or
    /// this call again) resumes it where it stopped.
    pub fn rebuild_aggregates(&self) -> Result<u64> {
        self.writer().rebuild_aggregates()
    }

    /// The maintenance job recorded in the store, if any: one a crash or a
    /// failed step left unfinished (writes are refused until
    /// [`Db::finish_jobs`]), or one this handle is running.
    ///
    /// ```
    /// # fn main() -> Result<(), stickydb::Error> {
    /// let dir = tempfile::tempdir()?;
    /// let db = stickydb::Db::create(dir.path(), stickydb::Options::default())?;
    /// assert!(db.pending_job().is_none());
    /// db.rebuild_aggregates()?; // a job: recorded, run, removed
    /// assert!(db.pending_job().is_none());
    /// assert_eq!(db.finish_jobs()?, None); // nothing to finish
    /// # Ok(()) }
    /// ```
    pub fn pending_job(&self) -> Option<JobInfo> {
        self.store.job().map(|(job, running)| JobInfo {
            name: job.kind.name().to_owned(),
            step: job.describe_step(),
            running,
            finish_call: "Db::finish_jobs",
            finish_command: "stickydb jobs finish",
        })
    }

    /// Finishes the job an earlier run left unfinished (a crash, a kill, a
    /// failed step), from where its record says, with every writer held
    /// off. Returns its name, or `None` when no job was recorded.
    pub fn finish_jobs(&self) -> Result<Option<String>> {
        Ok(self.writer().finish_jobs()?.map(str::to_owned))
    }
}
