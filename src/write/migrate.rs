//! Migrating an older store to the current format on a writable open.
//!
//! Older formats hold the same primary records (users, profiles, tags,
//! events, the ledger's accounts and entries) in the same layouts; what
//! changed is how derived structures are kept, and — format 8 and before —
//! where a user's next event sequence number lives (see
//! [`crate::store::MIGRATABLE_FORMATS`]). So a migration is a job
//! (docs/architecture.md, "Jobs") whose steps re-derive every derived
//! structure from the primary records — the all-users set from the user
//! records, the tag index from the tags, the tier sets from the accounts,
//! every aggregate from the events — and write each user's sequence record
//! from its events; its last batch stamps the current version. A kill
//! anywhere leaves the old version stamped and the job recorded, and the
//! next writable open resumes it where it stopped.

use crate::error::{CorruptionError, Result};
use crate::kinds::KindRegistry;
use crate::store::{Batch, Cf, Job, JobKind, Store};

use super::jobs::{self, JobCtx};

/// Runs (or resumes) the migration job and stamps the current format.
/// No other handle can write yet (the store is being opened): no lock.
pub(crate) fn migrate(
    store: &mut Store,
    kinds: &KindRegistry,
    non_activity_kinds: &[String],
    model: &crate::metrics::StageModel,
    exposure_kind: &str,
) -> Result<()> {
    let found = store.format_found();
    let job = match store.job() {
        Some((job, _)) if matches!(job.kind, JobKind::Migration { .. }) => job,
        Some((job, _)) => {
            // Only a build of the current format records other jobs.
            return Err(CorruptionError {
                cf: Cf::Meta.name(),
                what: "value",
                key: crate::keys::meta::JOB.to_vec(),
                reason: format!(
                    "a {} job recorded in a store of format {found}",
                    job.kind.name()
                ),
            }
            .into());
        }
        None => {
            let job = Job::new(JobKind::Migration { from_format: found });
            // (no other handle writes while the store opens)
            drop(jobs::record(store, &job, Batch::new())?);
            job
        }
    };
    let ledger = crate::ledger::rules::load(store)?;
    let social = crate::social::load_settings(store)?;
    let clock = crate::feed::Clock::load(store)?;
    // (older formats declare no dimension)
    let dims = crate::dims::DimState::load(store)?;
    let ctx = JobCtx {
        store,
        kinds,
        non_activity_kinds,
        model,
        exposure_kind,
        ledger: &ledger,
        social: &social,
        clock: &clock,
        dims: &dims,
    };
    jobs::resume(&ctx, job)?;
    store.stamp_format_version()
}
