//! Time passing (SPEC §4a): `advance(now)` moves the feed's clock and
//! settles everything due up to it — stage changes found through the due
//! index (never by scanning users), the ledger's expiries, hold timeouts
//! and tier reviews, and points-expiry notices — each user in its own
//! atomic write under its stripe lock. And a stage-model change, which
//! re-derives every user's stage in bounded batches.

use serde::Serialize;

use super::Writer;
use crate::error::{CorruptionError, InputError, Result};
use crate::feed::{Clock, StageCause};
use crate::keys::feed as fk;
use crate::ledger::ExpireReport;
use crate::metrics::state::{StageCtx, StateWrites};
use crate::metrics::transitions::Publish;
use crate::metrics::{self, MetricSettings, StageModel};
use crate::store::{Batch, Cf};
use crate::users;

/// Users re-settled per write when the stage model changes.
const RESETTLE_USERS_PER_BATCH: usize = 1_000;

/// What one `advance` did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AdvanceReport {
    /// The clock after the run, UTC milliseconds.
    pub now_ms: i64,
    /// Users whose stage was due.
    pub stage_users: u64,
    /// Stage changes written to the feed.
    pub stage_changes: u64,
    /// Points-expiry notices written to the feed.
    pub notices: u64,
    /// The ledger's part: expiries, hold timeouts, tier reviews.
    pub ledger: ExpireReport,
}

impl Writer<'_> {
    /// Moves the clock to `now_ms` (never back) and settles everything due
    /// up to it. The caller runs one advance at a time.
    pub fn advance(&self, now_ms: i64) -> Result<AdvanceReport> {
        self.store.check_writable()?;
        crate::time::check_ts(now_ms).map_err(|p| InputError::new("now_ms", p))?;
        let offset = self.store.settings().utc_offset_minutes;
        // The clock moves first, with every write held off: a write is then
        // wholly before the move or sees the new clock.
        {
            let mut clock = self.clock.write();
            if clock.now_ms.is_none_or(|c| c < now_ms) {
                let next = Clock {
                    now_ms: Some(now_ms),
                };
                let mut batch = Batch::new();
                next.save(&mut batch)?;
                self.store.write(batch)?;
                *clock = next;
            }
        }
        let now_day = crate::time::local_day(now_ms, offset);
        let mut report = AdvanceReport {
            now_ms,
            ..AdvanceReport::default()
        };
        for (_, user_id) in due_users(self.store, now_day)? {
            // An erased user's due day went with it: nothing to lock.
            let Some(record) = users::record_of(self.store, user_id)? else {
                continue;
            };
            let _guard = self.stripes.lock([record.name.as_str()]);
            let settings = self.metric_settings.read();
            let clock = self.clock.read();
            let mut state = StateWrites::new(
                self.store,
                self.stage_ctx(&settings, &clock, StageCause::Time),
            );
            state.settle(user_id, now_day)?;
            let mut batch = Batch::new();
            state.finish(&mut batch)?;
            if !batch.is_empty() {
                report.stage_users += 1;
                report.stage_changes += batch.logs() as u64;
                self.store.write(batch)?;
            }
        }
        report.ledger = self.expire_points(now_ms)?;
        Ok(report)
    }

    /// Replaces the stage model and re-derives every user's published
    /// stage under it: a user whose stage changes gets a `model` entry, and
    /// every due day is recomputed. Holds every stripe; a crash midway
    /// leaves some users under the old model's marks, and calling this
    /// again with the same model finishes the job.
    pub fn set_stage_model(&self, model: StageModel) -> Result<()> {
        self.store.check_writable()?;
        model.validate()?;
        let _all = self.stripes.lock_all();
        let mut guard = self.metric_settings.write();
        let mut next: MetricSettings = guard.clone();
        next.stage_model = model;
        metrics::save_settings(self.store, &next)?;
        *guard = next;
        let settings = &*guard;
        let clock = self.clock.read();
        let offset = self.store.settings().utc_offset_minutes;
        let ctx = StageCtx {
            model: &settings.stage_model,
            clock_day: clock.day(offset),
            publish: Publish::Live(StageCause::Model),
        };
        let all: Vec<u32> = users::all_users(self.store)?.iter().collect();
        for chunk in all.chunks(RESETTLE_USERS_PER_BATCH) {
            let mut state = StateWrites::new(self.store, ctx);
            for &user_id in chunk {
                state.resettle(user_id, ctx.clock_day.unwrap_or(i32::MIN))?;
            }
            let mut batch = Batch::new();
            state.finish(&mut batch)?;
            if !batch.is_empty() {
                self.store.write(batch)?;
            }
        }
        Ok(())
    }
}

/// The `(due day, user)` entries of the due index up to `day`.
fn due_users(store: &crate::store::Store, day: i32) -> Result<Vec<(i32, u32)>> {
    let mut out = Vec::new();
    for item in store.range(Cf::Feed, &[fk::DUE], Some(fk::due_until(day)))? {
        let (k, _) = item?;
        out.push(fk::parse_due(&k).ok_or_else(|| CorruptionError {
            cf: Cf::Feed.name(),
            what: "key",
            key: k.to_vec(),
            reason: "due key does not decode".into(),
        })?);
    }
    Ok(out)
}
