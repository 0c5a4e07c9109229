//! Coupons (docs/coupons.md) on the [`Db`] handle and its snapshots.

use super::{Db, Snapshot};
use crate::error::Result;
use crate::ledger::coupons::read;
use crate::ledger::{Coupon, CouponOp, CouponOutcome, CouponStats, CouponTemplate};

impl Db {
    /// Adds a coupon template. Templates never change: adding an equal one
    /// again returns `false` and writes nothing; other terms under an
    /// existing id are [`crate::CouponError::TemplateConflict`].
    pub fn add_coupon_template(&self, template: &CouponTemplate) -> Result<bool> {
        self.writer().add_coupon_template(template)
    }

    /// Applies one coupon operation to `user`'s coupons as one atomic write
    /// (docs/coupons.md). `txn_id` makes it idempotent, like points: a
    /// replay with an equal `op` returns the first call's outcome and writes
    /// nothing; another `op` under the id is
    /// [`crate::CouponError::TxnConflict`]. Issuing checks the template's
    /// stock and per-user limit atomically, under any concurrency. A
    /// refused operation changes nothing.
    ///
    /// ```
    /// use stickydb::{CouponError, CouponOp, CouponTemplate, Db, Error, Options};
    /// # fn main() -> Result<(), stickydb::Error> {
    /// let dir = tempfile::tempdir()?;
    /// let db = Db::create(dir.path(), Options::default())?;
    /// db.add_coupon_template(&CouponTemplate::threshold("T15", 10_000, 1_500).valid_days(7))?;
    /// let t = 1_700_000_000_000;
    /// let issued = db.coupon("alice", "i1", t, &CouponOp::Issue { template: "T15".into() })?;
    /// assert_eq!(issued.coupon, "T15-1");
    /// let redeem = CouponOp::Redeem { coupon: "T15-1".into(), order_minor: 12_000 };
    /// assert_eq!(db.coupon("alice", "r1", t + 1, &redeem)?.off_minor, 1_500);
    /// // a retry answers from the record
    /// assert!(db.coupon("alice", "r1", t + 9, &redeem)?.replayed);
    /// let again = CouponOp::Redeem { coupon: "T15-1".into(), order_minor: 12_000 };
    /// assert!(matches!(
    ///     db.coupon("alice", "r2", t + 2, &again),
    ///     Err(Error::Coupon(CouponError::WrongState { state: "redeemed", .. }))
    /// ));
    /// # Ok(()) }
    /// ```
    pub fn coupon(
        &self,
        user: &str,
        txn_id: &str,
        at_ms: i64,
        op: &CouponOp,
    ) -> Result<CouponOutcome> {
        self.writer().coupon(user, txn_id, at_ms, op)
    }

    /// Every coupon template, by id.
    pub fn coupon_templates(&self) -> Result<Vec<CouponTemplate>> {
        self.snapshot().coupon_templates()
    }

    /// Sets (or with `None` removes) the new-member gift pack: the write
    /// that records a user's first event of the pack's kind issues it a
    /// coupon of each template, once per user (docs/coupons.md, "Gift
    /// pack"). Every template must exist.
    ///
    /// ```
    /// use stickydb::{CouponTemplate, Db, Event, GiftPack, Options};
    /// # fn main() -> Result<(), stickydb::Error> {
    /// let dir = tempfile::tempdir()?;
    /// let db = Db::create(dir.path(), Options::default())?;
    /// db.add_coupon_template(&CouponTemplate::fixed("WELCOME10", 1_000).valid_days(14))?;
    /// db.set_gift_pack(Some(&GiftPack::new("signup", ["WELCOME10"])))?;
    /// db.record(&Event::new("ann", "signup", 1_700_000_000_000))?;
    /// assert_eq!(db.coupons("ann")?[0].id, "WELCOME10-1");
    /// # Ok(()) }
    /// ```
    pub fn set_gift_pack(&self, pack: Option<&crate::GiftPack>) -> Result<()> {
        self.writer().set_gift_pack(pack)
    }

    /// The new-member gift pack in force.
    pub fn gift_pack(&self) -> Option<crate::GiftPack> {
        Option::clone(&self.gift_pack.read())
    }

    /// `user`'s coupons (every state), in the order they came to it.
    pub fn coupons(&self, user: &str) -> Result<Vec<Coupon>> {
        self.snapshot().coupons(user)
    }

    /// Template `template`'s counts as of the store's clock.
    pub fn coupon_stats(&self, template: &str) -> Result<CouponStats> {
        self.snapshot().coupon_stats(template)
    }
}

impl Snapshot<'_> {
    /// Every coupon template, by id.
    pub fn coupon_templates(&self) -> Result<Vec<CouponTemplate>> {
        read::templates(&self.view)
    }

    /// `user`'s coupons (every state), in the order they came to it;
    /// empty for an unknown user.
    pub fn coupons(&self, user: &str) -> Result<Vec<Coupon>> {
        match self.user_id(user)? {
            Some(id) => read::coupons_of(&self.view, id),
            None => Ok(Vec::new()),
        }
    }

    /// Template `template`'s counts.
    pub fn coupon_stats(&self, template: &str) -> Result<CouponStats> {
        read::stats(&self.view, template)
    }
}
