//! Time passing (SPEC §4a): `advance(now)` moves the feed's clock and
//! settles everything due up to it — stage changes found through the due
//! index (never by scanning users), the ledger's expiries, hold timeouts
//! and tier reviews, and points-expiry notices — each user in its own
//! atomic write under its stripe lock. And a stage-model change, which
//! re-derives every user's stage in bounded batches.

use serde::Serialize;

use super::Writer;
use crate::error::{InputError, Result};
use crate::feed::{Clock, StageCause};
use crate::keys::feed as fk;
use crate::keys::ledger as lk;
use crate::ledger::ExpireReport;
use crate::metrics::state::StateWrites;
use crate::metrics::{self, MetricSettings, StageModel};
use crate::store::{Batch, Cf, Job, JobKind};
use crate::{ledger, users};

/// Due-index entries (stage dues, ledger dues, expiring lots) read per
/// page by `advance` and `expire_points`: memory stays bounded however
/// long the clock stood still.
pub(super) const DUE_PAGE: usize = 1_000;

/// What one `advance` did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
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
    /// Users whose rule tags were due.
    pub tag_users: u64,
    /// Rule-tag changes written to the feed.
    pub tag_changes: u64,
}

impl Writer<'_> {
    /// Moves the clock to `now_ms` (never back) and settles everything due
    /// up to it. The caller runs one advance at a time.
    pub fn advance(&self, now_ms: i64) -> Result<AdvanceReport> {
        self.check_not_nested()?;
        self.store.check_writes_allowed()?;
        crate::time::check_ts(now_ms).map_err(|p| InputError::new("now_ms", p))?;
        let offset = self.store.settings().utc_offset_minutes;
        // The clock moves first, with every write held off: a write is then
        // wholly before the move or sees the new clock.
        let before = {
            let mut clock = self.clock.write();
            let before = *clock;
            if clock.now_ms.is_none_or(|c| c < now_ms) {
                let next = Clock {
                    now_ms: Some(now_ms),
                    ..before
                };
                let mut batch = Batch::new();
                next.save(&mut batch)?;
                self.store.write(batch)?;
                *clock = next;
            }
            before
        };
        let now_day = crate::time::local_day(now_ms, offset);
        let mut report = AdvanceReport {
            now_ms,
            ..AdvanceReport::default()
        };
        // A page of the due index at a time: memory stays bounded after a
        // long pause. Each user's settlement moves (or deletes) its key in
        // its own write, so the index itself is the progress a re-run after
        // a kill resumes from.
        let mut after = None;
        loop {
            let page = crate::feed::due_users_page(self.store, now_day, after, DUE_PAGE)?;
            let Some(&last) = page.last() else {
                break;
            };
            after = Some(last);
            for (_, user_id) in page {
                self.settle_due(user_id, now_day, &mut report)?;
            }
        }
        self.settle_tag_dues(now_ms, &mut report)?;
        report.ledger = self.expire_points(now_ms)?;
        report.notices = self.write_notices(&before, now_ms)?;
        Ok(report)
    }

    /// Settles one user's stage up to `now_day` in its own write.
    fn settle_due(&self, user_id: u32, now_day: i32, report: &mut AdvanceReport) -> Result<()> {
        // An erased user's due day went with it: nothing to lock.
        let Some(record) = users::record_of(self.store, user_id)? else {
            return Ok(());
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
        // (a user met through a stale index key only has its key moved)
        if batch.logs() > 0 {
            report.stage_users += 1;
            report.stage_changes += batch.logs() as u64;
        }
        if !batch.is_empty() {
            self.store.write(batch)?;
        }
        Ok(())
    }

    /// Writes the expiry notice of every open lot whose notice instant
    /// passed since the last finished scan, each account in its own write,
    /// then records how far the scan got. A lot's mark makes its notice
    /// once-only across re-runs and crashes; lots opened with their notice
    /// already due got it in their own write (`Session::with_notices`).
    fn write_notices(&self, before: &Clock, now_ms: i64) -> Result<u64> {
        let notice_ms = before.notice_ms();
        let done = before.noticed_through_ms;
        if done.is_some_and(|d| d >= now_ms) {
            return Ok(0);
        }
        let after = done.map(|d| d.saturating_add(notice_ms));
        let until = now_ms.saturating_add(notice_ms);
        let mut written = 0u64;
        for tag in [lk::DUE_LOT, lk::DUE_COUPON] {
            let mut resume = None;
            loop {
                // a page of lots (coupons) at a time (a user's may span two
                // pages: two writes, each one's mark makes its notice
                // once-only)
                let due = ledger::lots_expiring_page(
                    self.store,
                    tag,
                    after,
                    until,
                    &mut resume,
                    DUE_PAGE,
                )?;
                if due.is_empty() {
                    break;
                }
                let mut by_user: std::collections::BTreeMap<u32, Vec<(u32, i64)>> =
                    Default::default();
                for (user, id, at) in due {
                    by_user.entry(user).or_default().push((id, at));
                }
                for (user_id, ids) in by_user {
                    written += match tag {
                        lk::DUE_LOT => self.notices_of(user_id, &ids, notice_ms)?,
                        _ => self.coupon_notices_of(user_id, &ids, notice_ms)?,
                    };
                }
            }
        }
        let mut clock = self.clock.write();
        if clock.noticed_through_ms.is_none_or(|d| d < now_ms) {
            let next = Clock {
                noticed_through_ms: Some(now_ms),
                ..*clock
            };
            let mut batch = Batch::new();
            next.save(&mut batch)?;
            self.store.write(batch)?;
            *clock = next;
        }
        Ok(written)
    }

    /// Writes the notices of `lots` (`(lot, expiry)`) of one user not
    /// noticed yet, in one write; returns how many.
    fn notices_of(&self, user_id: u32, lots: &[(u32, i64)], notice_ms: i64) -> Result<u64> {
        let Some(record) = users::record_of(self.store, user_id)? else {
            return Ok(0);
        };
        let _guard = self.stripes.lock([record.name.as_str()]);
        let mut batch = Batch::new();
        let mut written = 0u64;
        for &(lot_id, expires_at_ms) in lots {
            if self
                .store
                .contains(Cf::Feed, &fk::noticed(user_id, lot_id))?
            {
                continue;
            }
            let Some(lot) = ledger::read::lot(self.store, user_id, lot_id)? else {
                continue;
            };
            if lot.is_open() && lot.expires_at_ms == Some(expires_at_ms) {
                let points = lot.remaining + lot.held;
                crate::feed::notice(
                    &mut batch,
                    user_id,
                    lot_id,
                    points,
                    expires_at_ms,
                    notice_ms,
                )?;
                written += 1;
            }
        }
        if !batch.is_empty() {
            self.store.write(batch)?;
        }
        Ok(written)
    }

    /// Writes the notices of `coupons` (`(slot, due)`) of one user still
    /// available, expiring at their due instant and not noticed yet, in one
    /// write; returns how many. (A held coupon's due instant may be its
    /// hold's timeout: it is not noticed while held.)
    fn coupon_notices_of(
        &self,
        user_id: u32,
        coupons: &[(u32, i64)],
        notice_ms: i64,
    ) -> Result<u64> {
        let Some(record) = users::record_of(self.store, user_id)? else {
            return Ok(0);
        };
        let _guard = self.stripes.lock([record.name.as_str()]);
        let mut batch = Batch::new();
        let mut written = 0u64;
        for &(slot, due_ms) in coupons {
            if self
                .store
                .contains(Cf::Feed, &fk::coupon_noticed(user_id, slot))?
            {
                continue;
            }
            let Some(c) = ledger::coupons::read::coupon(self.store, user_id, slot)? else {
                continue;
            };
            if c.state == ledger::CouponState::Available && c.expires_at_ms == Some(due_ms) {
                let id = (c.id.as_str(), c.template.as_str());
                crate::feed::coupon_notice(&mut batch, user_id, slot, id, due_ms, notice_ms)?;
                written += 1;
            }
        }
        if !batch.is_empty() {
            self.store.write(batch)?;
        }
        Ok(written)
    }

    /// Sets the expiry-notice period (persisted). Lots whose notice instant
    /// already passed under the old period and had none get it at the next
    /// `advance`; notices already written stay.
    pub fn set_notice_days(&self, days: u32) -> Result<()> {
        self.store.check_writes_allowed()?;
        check_notice_days(days)?;
        let mut clock = self.clock.write();
        let next = with_notice_days(&clock, days);
        let mut batch = Batch::new();
        next.save(&mut batch)?;
        self.store.write(batch)?;
        *clock = next;
        Ok(())
    }

    /// Replaces the stage model and re-derives every user's published
    /// stage under it: a user whose stage changes gets a `model` entry, and
    /// every due day is recomputed. A job (docs/architecture.md, "Jobs")
    /// whose first batch saves the model; a kill anywhere leaves it
    /// recorded, finished by `finish_jobs` (or this call again).
    pub fn set_stage_model(&self, model: StageModel) -> Result<()> {
        self.check_not_nested()?;
        self.store.check_writable()?;
        model.validate()?;
        let _advance = self.advance_lock.lock();
        let mut all = self.stripes.lock_all();
        self.finish_pending(&mut all)?;
        let _running = {
            // (the model in force again still re-settles: every mark moves
            // to the clock, as docs/feed.md describes a model change)
            let mut guard = self.metric_settings.write();
            let mut next: MetricSettings = MetricSettings::clone(&guard);
            next.stage_model = model;
            let mut first = Batch::new();
            metrics::put_settings(&mut first, &next)?;
            let running = super::jobs::record(self.store, &Job::new(JobKind::StageModel), first)?;
            // (in memory only once the new model is stored)
            *guard = std::sync::Arc::new(next);
            running
        };
        self.resume_recorded(&mut all).map(|_| ())
    }
}

/// Checks an expiry-notice period.
pub(super) fn check_notice_days(days: u32) -> Result<()> {
    if days > crate::feed::MAX_NOTICE_DAYS {
        return Err(InputError::new(
            "notice_days",
            crate::error::Problem::OutOfRange {
                value: i64::from(days),
                min: 0,
                max: i64::from(crate::feed::MAX_NOTICE_DAYS),
            },
        )
        .into());
    }
    Ok(())
}

/// `clock` with a notice period of `days`.
pub(super) fn with_notice_days(clock: &Clock, days: u32) -> Clock {
    // A longer period reaches lots the last scan passed over: rescan them.
    Clock {
        notice_days: days,
        noticed_through_ms: if days > clock.notice_days {
            None
        } else {
            clock.noticed_through_ms
        },
        ..*clock
    }
}
