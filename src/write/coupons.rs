//! Coupon writes: one operation is one atomic write (a transaction of one
//! call); a template is added under the coupon lock.

use super::Writer;
use crate::error::Result;
use crate::ledger::coupons::{read, CouponTemplate};
use crate::ledger::{CouponOp, CouponOutcome};
use crate::store::Batch;

impl Writer<'_> {
    /// Applies one coupon operation to `user`'s coupons as one atomic write.
    pub fn coupon(
        &self,
        user: &str,
        txn_id: &str,
        at_ms: i64,
        op: &CouponOp,
    ) -> Result<CouponOutcome> {
        let mut plan = super::tx::Plan::with_names([user]);
        plan.single_call = true;
        plan.coupons = true;
        self.transact(plan, &mut |tx| tx.coupon(user, txn_id, at_ms, op))
    }

    /// Sets (or with `None` removes) the new-member gift pack, with every
    /// writer held off: a write is wholly before or after the change.
    pub fn set_gift_pack(&self, pack: Option<&crate::GiftPack>) -> Result<()> {
        self.check_not_nested()?;
        self.store.check_writes_allowed()?;
        if let Some(p) = pack {
            p.validate(self.store)?;
        }
        let _all = self.stripes.lock_all();
        let mut current = self.gift_pack.write();
        let mut batch = Batch::new();
        crate::ledger::coupons::gift::save(&mut batch, pack)?;
        self.store.write(batch)?;
        // (in memory only once stored)
        *current = std::sync::Arc::new(pack.cloned());
        Ok(())
    }

    /// Adds `template` (an equal one again is a no-op, returning `false`;
    /// other terms under its id are refused).
    pub fn add_coupon_template(&self, template: &CouponTemplate) -> Result<bool> {
        self.check_not_nested()?;
        self.store.check_writes_allowed()?;
        template.validate()?;
        let _coupons = self.coupon_lock.lock();
        let mut batch = Batch::new();
        let added = read::add_template(self.store, &mut batch, template)?;
        if added {
            self.store.write(batch)?;
        }
        Ok(added)
    }
}
