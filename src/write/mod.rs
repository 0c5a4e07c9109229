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
mod erase;
mod merge;
mod migrate;
mod points;
mod profile;
mod rebuild;
mod record;
mod social;

use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

use crate::feed::{Clock, StageCause};
use crate::kinds::KindRegistry;
use crate::ledger::LedgerSettings;
use crate::metrics::state::StageCtx;
use crate::metrics::transitions::Publish;
use crate::metrics::MetricSettings;
use crate::store::Store;
use crate::users::{Allocator, LockStripes};

pub use advance::AdvanceReport;
pub(crate) use migrate::migrate;
pub(crate) use rebuild::rebuild;

/// Everything a write needs from an open store.
pub(crate) struct Writer<'a> {
    pub store: &'a Store,
    pub allocator: &'a Allocator,
    pub stripes: &'a LockStripes,
    pub kinds: &'a KindRegistry,
    /// Kinds that do not count as activity, by name (fixed at creation).
    pub non_activity_kinds: &'a [String],
    /// Earning rules and tiers. Read once the stripes are held, so a settings
    /// change (which holds them all) is wholly before or after a write.
    pub ledger_settings: &'a RwLock<Arc<LedgerSettings>>,
    /// Erasures update one shared meta key; they are rare, so one at a time.
    pub erase_lock: &'a Mutex<()>,
    /// The stage model. Read once the stripes are held (a model change
    /// holds them all), and held to the commit.
    pub metric_settings: &'a RwLock<MetricSettings>,
    /// The feed's clock. Writes hold it shared to their commit; `advance`
    /// takes it exclusively to move it, so a write is wholly before or
    /// after a clock move.
    pub clock: &'a RwLock<Clock>,
    /// Attribution's lock, settings and whether it has records yet.
    pub social: &'a crate::social::SocialState,
    /// The kind of exposure events (fixed at creation).
    pub exposure_kind: &'a str,
}

impl Writer<'_> {
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
