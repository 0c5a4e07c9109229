//! Ledger writes: one points operation is one atomic write; an expiry run
//! settles each account with something due in its own write; a change of
//! tiers re-evaluates every account in bounded batches.

use std::sync::Arc;

use crate::store::{Batch, Job, JobKind};

use super::Writer;
use crate::error::{InputError, Result};
use crate::ledger::{
    self, session::Session, ExpireReport, LedgerSettings, PointsOp, PointsOutcome,
};
use crate::users;

impl Writer<'_> {
    /// Applies one points operation to `user`'s account as one atomic write.
    pub fn points(
        &self,
        user: &str,
        txn_id: &str,
        at_ms: i64,
        op: &PointsOp,
    ) -> Result<PointsOutcome> {
        let mut plan = super::tx::Plan::with_names([user]);
        plan.single_call = true;
        self.transact(plan, &mut |tx| tx.points(user, txn_id, at_ms, op))
    }

    /// Settles everything due at or before `now_ms`, one account per write
    /// (see [`crate::ledger::due_accounts`]).
    pub fn expire_points(&self, now_ms: i64) -> Result<ExpireReport> {
        self.check_not_nested()?;
        self.store.check_writes_allowed()?;
        crate::time::check_ts(now_ms).map_err(|p| InputError::new("now_ms", p))?;
        let mut report = ExpireReport::default();
        // A page of the due index at a time (memory stays bounded after a
        // long pause); settling an account deletes its due entries in its
        // own write, so a re-run after a kill finds the rest.
        let mut cursor = ledger::DueCursor::default();
        loop {
            let page = ledger::due_accounts_page(
                self.store,
                now_ms,
                &mut cursor,
                super::advance::DUE_PAGE,
            )?;
            if page.is_empty() {
                break;
            }
            for user_id in &page {
                self.expire_account(user_id, now_ms, &mut report)?;
            }
        }
        Ok(report)
    }

    /// Settles what is due in one account in its own write.
    fn expire_account(&self, user_id: u32, now_ms: i64, report: &mut ExpireReport) -> Result<()> {
        // An erased user's due entries went with it; nothing to lock.
        let Some(record) = users::record_of(self.store, user_id)? else {
            return Ok(());
        };
        let _guard = self.stripes.lock([record.name.as_str()]);
        let _coupons = self.coupon_lock.lock();
        // Read under the lock: a settings change holds every stripe.
        let settings = self.ledger_settings.read().clone();
        let mut session = Session::new(self.store, &settings);
        let mut one = ExpireReport::default();
        session.expire_account(user_id, now_ms, &mut one)?;
        // (a hold timing out inside the notice period makes its coupon
        // available again: noticed in this write)
        let clock = *self.clock.read();
        let mut coupons =
            crate::ledger::coupons::work::CouponWork::new(self.store).with_notices(clock);
        let settled = coupons.settle(user_id, now_ms)?;
        one.coupons_expired += settled.expired;
        one.coupon_holds_timed_out += settled.holds_timed_out;
        let mut batch = Batch::new();
        session.finish(&mut batch)?;
        coupons.finish(&mut batch)?;
        if !batch.is_empty() {
            self.store.write(batch)?;
            report.accounts += 1;
        }
        report.lots_expired += one.lots_expired;
        report.points_expired += one.points_expired;
        report.holds_timed_out += one.holds_timed_out;
        report.tier_changes += one.tier_changes;
        report.coupons_expired += one.coupons_expired;
        report.coupon_holds_timed_out += one.coupon_holds_timed_out;
        Ok(())
    }

    /// Replaces the earning rules and tiers (persisted); when the tiers
    /// change, re-evaluates every account's tier at its own clock, with all
    /// writers held off: a job (docs/architecture.md, "Jobs") whose first
    /// batch saves the settings. A kill anywhere leaves it recorded,
    /// finished by `finish_jobs` (or this call again).
    pub fn set_ledger_settings(&self, mut settings: LedgerSettings) -> Result<()> {
        self.check_not_nested()?;
        self.store.check_writable()?;
        settings.validate()?;
        let _advance = self.advance_lock.lock();
        let mut all = self.stripes.lock_all();
        self.finish_pending(&mut all)?;
        let running = {
            let mut guard = self.ledger_settings.write();
            // (the growth settings change only through the settings document)
            settings.growth = guard.growth.clone();
            let tiers_changed = guard.tiers != settings.tiers;
            let mut first = Batch::new();
            ledger::rules::save(&mut first, &settings)?;
            let running = if tiers_changed {
                Some(super::jobs::record(
                    self.store,
                    &Job::new(JobKind::Retier),
                    first,
                )?)
            } else {
                self.store.write(first)?;
                None
            };
            // (in memory only once the new settings are stored)
            *guard = Arc::new(settings);
            running
        };
        if running.is_some() {
            self.resume_recorded(&mut all)?;
        }
        Ok(())
    }
}
