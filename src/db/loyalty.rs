//! The loyalty ledger (SPEC §4) on the [`Db`] handle.

use roaring::RoaringBitmap;

use super::Db;
use crate::error::Result;
use crate::ledger::{
    Account, ExpireReport, Hold, LedgerEntry, LedgerSettings, Lot, PointsOp, PointsOutcome,
    TierChange,
};

impl Db {
    /// Applies one points operation to `user`'s account as one atomic write
    /// (docs/ledger.md). `txn_id` makes it idempotent: a replay with an equal
    /// `op` returns the first call's outcome and writes nothing; a different
    /// `op` under the same id is [`crate::LedgerError::TxnConflict`]. `at_ms`
    /// is the operation's time: lots expiring at or before it cannot be drawn.
    /// A refused operation changes nothing.
    ///
    /// ```
    /// use stickydb::{Db, Error, LedgerError, Options, PointsOp};
    /// # fn main() -> Result<(), stickydb::Error> {
    /// let dir = tempfile::tempdir()?;
    /// let db = Db::create(dir.path(), Options::default())?;
    /// let t = 1_700_000_000_000;
    /// db.points("alice", "t1", t, &PointsOp::earn(500, "welcome"))?;
    /// let out = db.points("alice", "t2", t + 1, &PointsOp::redeem(200, "coupon"))?;
    /// assert_eq!((out.amount, out.balance), (-200, 300));
    /// // a retry of t2 answers from the record and moves nothing
    /// let again = db.points("alice", "t2", t + 9, &PointsOp::redeem(200, "coupon"))?;
    /// assert!(again.replayed && again.balance == 300);
    /// assert!(matches!(
    ///     db.points("alice", "t3", t + 2, &PointsOp::redeem(301, "")),
    ///     Err(Error::Ledger(LedgerError::InsufficientPoints { requested: 301, available: 300 }))
    /// ));
    /// # Ok(()) }
    /// ```
    pub fn points(
        &self,
        user: &str,
        txn_id: &str,
        at_ms: i64,
        op: &PointsOp,
    ) -> Result<PointsOutcome> {
        self.writer().points(user, txn_id, at_ms, op)
    }

    /// `user`'s points account; `None` when it never had an entry.
    pub fn account(&self, user: &str) -> Result<Option<Account>> {
        self.snapshot().account(user)
    }

    /// Every lot of `user`, oldest first (spent and expired ones included).
    pub fn lots(&self, user: &str) -> Result<Vec<Lot>> {
        self.snapshot().lots(user)
    }

    /// `user`'s open holds, oldest first.
    pub fn holds(&self, user: &str) -> Result<Vec<Hold>> {
        self.snapshot().holds(user)
    }

    /// `user`'s ledger entries with `from_ms <= at_ms < to_ms`, newest first,
    /// at most `limit` ([`crate::ledger::MAX_HISTORY_LIMIT`]).
    pub fn ledger(
        &self,
        user: &str,
        from_ms: i64,
        to_ms: i64,
        limit: usize,
    ) -> Result<Vec<LedgerEntry>> {
        self.snapshot().ledger(user, from_ms, to_ms, limit)
    }

    /// `user`'s current tier, as last recorded (by a write or an expiry run).
    pub fn tier(&self, user: &str) -> Result<Option<String>> {
        Ok(self.account(user)?.and_then(|a| a.tier))
    }

    /// `user`'s tier changes, newest first.
    pub fn tier_history(&self, user: &str) -> Result<Vec<TierChange>> {
        self.snapshot().tier_history(user)
    }

    /// The growth that decides `user`'s tier (earned points or growth
    /// value over the tier window, by the tiers' basis) as of the local day
    /// of `at_ms`.
    pub fn growth(&self, user: &str, at_ms: i64) -> Result<i64> {
        self.snapshot().growth(user, at_ms)
    }

    /// `user`'s growth value, kept from its events by the growth rules
    /// (docs/ledger.md#growth-value), as of the local day of `at_ms`.
    ///
    /// ```
    /// # fn main() -> Result<(), stickydb::Error> {
    /// use stickydb::ledger::{GrowthRule, GrowthValue, TierBasis};
    /// use stickydb::{Db, Event, Options, SettingsDocument};
    /// let dir = tempfile::tempdir()?;
    /// let db = Db::create(dir.path(), Options::default())?;
    /// let mut doc = SettingsDocument::default();
    /// doc.growth_rules = Some(vec![GrowthRule::new(
    ///     "purchase",
    ///     GrowthValue::PerAmount { growth: 1, per_minor: 100 },
    /// )]);
    /// doc.tier_basis = Some(TierBasis::GrowthValue);
    /// db.apply_settings(&doc)?;
    /// db.record(&Event::new("ann", "purchase", 1_000).with_amount(12_345))?;
    /// db.record(&Event::new("ann", "refund", 2_000).with_amount(2_345))?;
    /// assert_eq!(db.growth_value("ann", 2_000)?.balance, 100);
    /// # Ok(()) }
    /// ```
    pub fn growth_value(&self, user: &str, at_ms: i64) -> Result<crate::ledger::GrowthBalance> {
        self.snapshot().growth_value(user, at_ms)
    }

    /// Users whose recorded tier is `tier`.
    pub fn users_in_tier(&self, tier: &str) -> Result<RoaringBitmap> {
        self.snapshot().users_in_tier(tier)
    }

    /// Settles everything due at or before `now_ms`: lots expire, holds past
    /// their timeout are released, tiers whose growth left the window are
    /// re-evaluated. Deterministic for a given `now_ms`, safe to re-run and to
    /// run after a crash; each account is settled in one atomic write.
    pub fn expire_points(&self, now_ms: i64) -> Result<ExpireReport> {
        self.writer().expire_points(now_ms)
    }

    /// The ledger settings in force.
    pub fn ledger_settings(&self) -> LedgerSettings {
        LedgerSettings::clone(&self.ledger_settings.read())
    }

    /// Replaces the earning rules and tiers (persisted). New rules apply to
    /// events recorded from now on. When the tiers change, every account's
    /// tier is re-evaluated at its own clock, with all writers held off: a
    /// job (docs/architecture.md, "Jobs") that a kill leaves recorded and
    /// [`Db::finish_jobs`] (or this call again) finishes. The settings in
    /// memory change only once they are stored.
    pub fn set_ledger_settings(&self, settings: LedgerSettings) -> Result<()> {
        self.writer().set_ledger_settings(settings)
    }
}
