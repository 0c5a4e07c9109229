//! The write path: the composition of one logical write — events with their
//! dedup entries and aggregate deltas and rule credits, a profile change, a
//! points operation, an erasure — into one atomic `WriteBatch`.
//!
//! Owns the order every write follows (validate everything, lock the users'
//! stripes, read under the locks, build the batch from the subsystems' batch
//! builders, commit, publish what became visible) and nothing else. Key
//! layouts belong to `keys`, value formats and rules to the subsystems it
//! calls: `users` (ids, records), `timeline` (events and their dedup index),
//! `metrics` (aggregate deltas), `ledger` (points), `profiles` (attributes and
//! tags). Must not be imported by those subsystems: dependencies point down.

mod advance;
mod coupons;
mod dims;
mod erase;
mod erase_job;
mod features;
mod jobs;
mod merge;
mod migrate;
mod points;
mod profile;
mod rebuild;
mod record;
mod settings;
mod social;
mod touchers;
mod tx;
mod tx_calls;
mod tx_merge;

use std::sync::Arc;

use crate::order::{Mutex, RwLock};

use crate::error::Result;
use crate::feed::{Clock, StageCause};
use crate::kinds::KindRegistry;
use crate::ledger::LedgerSettings;
use crate::metrics::state::StageCtx;
use crate::metrics::transitions::Publish;
use crate::metrics::MetricSettings;
use crate::store::{Batch, Job, JobKind, Store};
use crate::users::{Allocator, LockStripes, StripeGuards};

pub use advance::AdvanceReport;
pub(crate) use migrate::migrate;
pub use settings::{SettingsApplied, SettingsDocument};
pub(crate) use tx::Plan;
pub use tx::Transaction;

/// Everything a write needs from an open store.
pub(crate) struct Writer<'a> {
    pub store: &'a Store,
    pub allocator: &'a Allocator,
    pub stripes: &'a LockStripes,
    pub kinds: &'a KindRegistry,
    /// Kinds that do not count as activity, by name (fixed at creation).
    pub non_activity_kinds: &'a [String],
    /// Earning rules and tiers. A transaction reads them when it starts
    /// and checks at its commit that they did not change, so a settings
    /// change (which holds every stripe) is wholly before or after a write.
    pub ledger_settings: &'a RwLock<Arc<LedgerSettings>>,
    /// Erasures update one shared meta key; they are rare, so one at a time.
    pub erase_lock: &'a Mutex<()>,
    /// The stage model. A transaction reads it when it starts and again
    /// at its commit (starting over if it changed), and holds it from
    /// there to the commit.
    pub metric_settings: &'a RwLock<Arc<MetricSettings>>,
    /// The feed's clock. A transaction reads it when it starts, and at its
    /// commit takes it shared (starting over if it moved) and holds it
    /// through the commit; `advance` takes it exclusively to move it, so a
    /// write is wholly before or after a clock move.
    pub clock: &'a RwLock<Clock>,
    /// Attribution's lock, settings and whether it has records yet.
    pub social: &'a crate::social::SocialState,
    /// The kind of exposure events (fixed at creation).
    pub exposure_kind: &'a str,
    /// One `advance` at a time; a job takes it first, so no advance runs
    /// while a job re-derives what advance settles.
    pub advance_lock: &'a Mutex<()>,
    /// Writes that change coupon counts take it after their stripes: the
    /// stock check and the counts stay exact across users.
    pub coupon_lock: &'a Mutex<()>,
    /// The new-member gift pack. A transaction reads it when it starts and
    /// checks at its commit that it did not change (a change holds every
    /// stripe).
    pub gift_pack: &'a RwLock<Arc<Option<crate::GiftPack>>>,
    /// Which ids are anonymous (a merge reads it under its locks).
    pub identity_settings: &'a RwLock<crate::users::IdentitySettings>,
    /// Feature definitions and tag rules. A transaction reads them when it
    /// starts and checks at its commit that they did not change (a change
    /// holds every stripe).
    pub features: &'a RwLock<Arc<crate::features::FeatureSet>>,
    /// The declared dimensions (read and checked like the features) and
    /// their value registry.
    pub dims: &'a crate::dims::DimState,
}

impl Writer<'_> {
    /// Runs `f` over the job context of the settings in force, taking
    /// their locks in the hierarchy's order (docs/architecture.md, "Lock
    /// hierarchy"). The caller holds the advance lock and every stripe.
    fn with_job_ctx<T>(&self, f: impl FnOnce(&jobs::JobCtx<'_>) -> Result<T>) -> Result<T> {
        let metric = self.metric_settings.read();
        let clock = self.clock.read();
        let _social = self.social.lock.lock();
        let social = *self.social.settings.read();
        let ledger = self.ledger_settings.read().clone();
        let ctx = jobs::JobCtx {
            store: self.store,
            kinds: self.kinds,
            non_activity_kinds: self.non_activity_kinds,
            model: &metric.stage_model,
            exposure_kind: self.exposure_kind,
            ledger: &ledger,
            social: &social,
            clock: &clock,
            dims: self.dims,
        };
        f(&ctx)
    }

    /// Runs the recorded job, if any, to its end. The caller holds the
    /// advance lock and every stripe (`all`, whose cache shards an
    /// erasure's user leaves).
    fn resume_recorded(
        &self,
        all: &mut StripeGuards<'_>,
    ) -> Result<Option<(JobKind, jobs::JobRunReport)>> {
        let Some((job, _)) = self.store.job() else {
            return Ok(None);
        };
        let kind = job.kind;
        let erased = match kind {
            JobKind::Erase { user_id } => crate::users::record_of(self.store, user_id)?,
            _ => None,
        };
        let report = self.with_job_ctx(|ctx| jobs::resume(ctx, job))?;
        if let Some(record) = erased {
            if let Some(shard) = all.shard(&record.name) {
                shard.remove(&record.name);
            }
        }
        Ok(Some((kind, report)))
    }

    /// Finishes a job an earlier run left recorded before another starts
    /// (one job at a time). The caller holds the advance lock and every
    /// stripe.
    fn finish_pending(&self, all: &mut StripeGuards<'_>) -> Result<()> {
        self.resume_recorded(all).map(|_| ())
    }

    /// Finishes the recorded job, if any: what `Db::finish_jobs` does.
    /// Returns its name.
    pub(crate) fn finish_jobs(&self) -> Result<Option<&'static str>> {
        self.check_not_nested()?;
        self.store.check_writable()?;
        let _advance = self.advance_lock.lock();
        let mut all = self.stripes.lock_all();
        Ok(self.resume_recorded(&mut all)?.map(|(kind, _)| kind.name()))
    }

    /// Rebuilds every aggregate from the events as a job (a rebuild left
    /// unfinished is resumed, not started over). Returns the events
    /// replayed by this call.
    pub(crate) fn rebuild_aggregates(&self) -> Result<u64> {
        self.check_not_nested()?;
        self.store.check_writable()?;
        let _advance = self.advance_lock.lock();
        let mut all = self.stripes.lock_all();
        if let Some((JobKind::Rebuild, report)) = self.resume_recorded(&mut all)? {
            return Ok(report.events_replayed);
        }
        let _running = jobs::record(self.store, &Job::new(JobKind::Rebuild), Batch::new())?;
        let report = self.resume_recorded(&mut all)?;
        Ok(report.map_or(0, |(_, r)| r.events_replayed))
    }

    /// The stage context of a live write with `cause`.
    fn stage_ctx<'m>(
        &self,
        settings: &'m MetricSettings,
        clock: &Clock,
        cause: StageCause,
    ) -> StageCtx<'m> {
        StageCtx {
            model: &settings.stage_model,
            clock_day: clock.day(self.store.settings().utc_offset_minutes),
            publish: Publish::Live(cause),
        }
    }
}
