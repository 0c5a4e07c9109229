//! The write side of coupons: a working copy of the coupons, operation
//! records and template counts one logical write touches, put into the
//! write's batch only when every operation succeeded (a refused operation
//! changes nothing: the caller drops the work). Callers hold the stripes
//! of every user named and the coupon lock.

use std::collections::BTreeMap;

use super::user::UserWork;
use super::{
    Counts, Coupon, CouponError, CouponOp, CouponOutcome, CouponState, CouponTemplate, CouponTxn,
    MAX_COUPONS_PER_USER,
};
use crate::codec;
use crate::error::{Error, MergeError, Result};
use crate::keys::{feed as fk, ledger as lk, meta};
use crate::store::{decode_value, Batch, Cf, Store};

struct TemplateWork {
    template: CouponTemplate,
    stored: Counts,
    counts: Counts,
}

/// The limit a user's coupons reach (`Error::LimitReached::what`).
pub(crate) const USER_COUPONS: &str = "coupons of one user";

/// What settling one user's due coupons did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Settled {
    pub expired: u64,
    pub holds_timed_out: u64,
}

/// The coupon side of one logical write.
pub(crate) struct CouponWork<'a> {
    store: &'a Store,
    users: BTreeMap<u32, UserWork>,
    templates: BTreeMap<String, TemplateWork>,
    /// The feed's clock, when the write holds it: a coupon issued with its
    /// notice instant at or before the clock gets its expiry notice in this
    /// write (a later `advance` scans only coupons beyond it).
    notices: Option<crate::feed::Clock>,
}

impl<'a> CouponWork<'a> {
    /// Starts a working copy.
    pub fn new(store: &'a Store) -> Self {
        Self {
            store,
            users: BTreeMap::new(),
            templates: BTreeMap::new(),
            notices: None,
        }
    }

    /// Writes the expiry notices of coupons this write issues that are due
    /// at `clock`.
    pub fn with_notices(mut self, clock: crate::feed::Clock) -> Self {
        self.notices = Some(clock);
        self
    }

    fn user(&mut self, user_id: u32) -> Result<&mut UserWork> {
        if !self.users.contains_key(&user_id) {
            let work = UserWork::load(self.store, user_id)?;
            self.users.insert(user_id, work);
        }
        self.users
            .get_mut(&user_id)
            .ok_or_else(|| Error::internal("a loaded user's coupons are gone"))
    }

    fn template(&mut self, id: &str) -> Result<&mut TemplateWork> {
        if !self.templates.contains_key(id) {
            let template: CouponTemplate =
                super::read::template(self.store, id)?.ok_or_else(|| {
                    CouponError::UnknownTemplate {
                        template: id.to_owned(),
                    }
                })?;
            let counts: Counts = self
                .store
                .get(Cf::Meta, &meta::coupon(id, meta::COUPON_COUNTS))?
                .unwrap_or_default();
            self.templates.insert(
                id.to_owned(),
                TemplateWork {
                    template,
                    stored: counts,
                    counts,
                },
            );
        }
        self.templates
            .get_mut(id)
            .ok_or_else(|| Error::internal("a loaded template is gone"))
    }

    fn txn(&mut self, user_id: u32, txn_id: &str) -> Result<Option<CouponTxn>> {
        let store = self.store;
        let work = self.user(user_id)?;
        if let Some(t) = work.txns.get(txn_id) {
            return Ok(Some(t.clone()));
        }
        store.get(Cf::Ledger, &lk::coupon_txn(user_id, txn_id))
    }

    /// Applies `op` for `user_id` (named `user`, for errors) at `at_ms`
    /// under `txn_id`: a replay of an equal operation answers from its
    /// record; another operation under the id conflicts.
    pub fn apply(
        &mut self,
        user_id: u32,
        user: &str,
        txn_id: &str,
        at_ms: i64,
        op: &CouponOp,
    ) -> Result<CouponOutcome> {
        if let Some(record) = self.txn(user_id, txn_id)? {
            if record.op != *op {
                return Err(CouponError::TxnConflict {
                    txn_id: txn_id.to_owned(),
                }
                .into());
            }
            return Ok(CouponOutcome {
                replayed: true,
                ..record.outcome
            });
        }
        let (coupon, off_minor) = match op {
            CouponOp::Issue { template } => {
                (self.issue(user_id, user, txn_id, at_ms, template)?, 0)
            }
            CouponOp::Redeem {
                coupon,
                order_minor,
            } => self.redeem(user_id, txn_id, at_ms, op, (coupon, *order_minor), None)?,
            CouponOp::RedeemOrder {
                coupon,
                order_minor,
                kind,
                properties,
            } => {
                let order = Some((kind.as_str(), properties));
                self.redeem(user_id, txn_id, at_ms, op, (coupon, *order_minor), order)?
            }
            CouponOp::Hold { coupon, timeout_ms } => {
                let deadline_ms = at_ms.saturating_add(*timeout_ms);
                let state = CouponState::Held {
                    txn_id: txn_id.to_owned(),
                    deadline_ms,
                };
                (self.change(user_id, at_ms, coupon, op, state)?, 0)
            }
            CouponOp::Release { coupon } => (
                self.change(user_id, at_ms, coupon, op, CouponState::Available)?,
                0,
            ),
            CouponOp::Reverse { coupon } => (self.reverse(user_id, at_ms, coupon)?, 0),
        };
        let outcome = CouponOutcome {
            txn_id: txn_id.to_owned(),
            coupon: coupon.id.clone(),
            template: coupon.template.clone(),
            at_ms,
            expires_at_ms: coupon.expires_at_ms,
            state: coupon.state.name().to_owned(),
            off_minor,
            replayed: false,
        };
        self.user(user_id)?.txns.insert(
            txn_id.to_owned(),
            CouponTxn {
                op: op.clone(),
                outcome: outcome.clone(),
            },
        );
        Ok(outcome)
    }

    fn issue(
        &mut self,
        user_id: u32,
        user: &str,
        txn_id: &str,
        at_ms: i64,
        template_id: &str,
    ) -> Result<Coupon> {
        let t = self.template(template_id)?;
        let (template, issued) = (t.template.clone(), t.counts.issued);
        if let Some(end) = template.valid_until_ms.filter(|e| *e <= at_ms) {
            return Err(CouponError::TemplateEnded {
                template: template.id,
                valid_until_ms: end,
            }
            .into());
        }
        if let Some(stock) = template.stock.filter(|s| issued >= *s) {
            return Err(CouponError::OutOfStock {
                template: template.id,
                stock,
            }
            .into());
        }
        let work = self.user(user_id)?;
        if work.head.next_slot as usize >= MAX_COUPONS_PER_USER {
            return Err(Error::LimitReached {
                what: USER_COUPONS,
                max: MAX_COUPONS_PER_USER as u64,
            });
        }
        let held = work.held_of(&template.id);
        if let Some(per_user) = template.per_user.filter(|n| held >= *n) {
            return Err(CouponError::PerUserLimit {
                template: template.id,
                user: user.to_owned(),
                per_user,
            }
            .into());
        }
        let coupon = Coupon {
            id: format!("{}-{}", template.id, issued + 1),
            template: template.id.clone(),
            issued_at_ms: at_ms,
            expires_at_ms: template.expiry_for(at_ms),
            state: CouponState::Available,
            issue_txn: txn_id.to_owned(),
        };
        work.add(coupon.clone());
        self.template(template_id)?.counts.issued += 1;
        Ok(coupon)
    }

    /// The slot of `user_id`'s coupon `id`, refused when unknown.
    fn slot_of(&mut self, user_id: u32, id: &str) -> Result<(u32, Coupon)> {
        let store = self.store;
        let work = self.user(user_id)?;
        let slot = work
            .find(store, id)?
            .ok_or_else(|| CouponError::UnknownCoupon {
                coupon: id.to_owned(),
            })?;
        let coupon = work
            .slots
            .get(&slot)
            .map(|s| s.current.clone())
            .ok_or_else(|| Error::internal("a found coupon slot is gone"))?;
        Ok((slot, coupon))
    }

    /// Puts `coupon` (changed) into its slot and the counts.
    fn set(&mut self, user_id: u32, slot: u32, coupon: Coupon) -> Result<Coupon> {
        let (before, template) = {
            let work = self.user(user_id)?;
            let s = work
                .slots
                .get_mut(&slot)
                .ok_or_else(|| Error::internal("a coupon slot is gone"))?;
            let before = std::mem::replace(&mut s.current, coupon.clone());
            (before.state, coupon.template.clone())
        };
        let t = self.template(&template)?;
        t.counts.add_state(&before, -1);
        t.counts.add_state(&coupon.state, 1);
        Ok(coupon)
    }

    /// Refuses an operation on a coupon past its expiry.
    fn unexpired(coupon: &Coupon, at_ms: i64) -> Result<()> {
        match coupon.expires_at_ms {
            Some(e) if e <= at_ms => Err(CouponError::Expired {
                coupon: coupon.id.clone(),
                expired_at_ms: e,
            }
            .into()),
            _ => Ok(()),
        }
    }

    /// Refuses an operation the coupon's state does not allow.
    fn fits(coupon: &Coupon, op: &CouponOp) -> Result<()> {
        let fits = match op {
            CouponOp::Hold { .. } => matches!(coupon.state, CouponState::Available),
            CouponOp::Redeem { .. } | CouponOp::RedeemOrder { .. } => matches!(
                coupon.state,
                CouponState::Available | CouponState::Held { .. }
            ),
            CouponOp::Release { .. } => matches!(coupon.state, CouponState::Held { .. }),
            CouponOp::Reverse { .. } => matches!(coupon.state, CouponState::Redeemed { .. }),
            CouponOp::Issue { .. } => false,
        };
        if fits {
            Ok(())
        } else {
            Err(CouponError::WrongState {
                coupon: coupon.id.clone(),
                state: coupon.state.name(),
                op: op.name(),
            }
            .into())
        }
    }

    /// A hold or a release: checks, then moves the coupon to `state`. A
    /// release after the expiry still frees the coupon (the expiry run
    /// then expires it); a hold needs an unexpired one.
    fn change(
        &mut self,
        user_id: u32,
        at_ms: i64,
        id: &str,
        op: &CouponOp,
        state: CouponState,
    ) -> Result<Coupon> {
        let (slot, mut coupon) = self.slot_of(user_id, id)?;
        Self::fits(&coupon, op)?;
        if matches!(op, CouponOp::Hold { .. }) {
            Self::unexpired(&coupon, at_ms)?;
        }
        coupon.state = state;
        self.set(user_id, slot, coupon)
    }

    /// A redeem of coupon `id` on an order of `order_minor`, described by
    /// `order` (kind, string properties) when the caller did.
    fn redeem(
        &mut self,
        user_id: u32,
        txn_id: &str,
        at_ms: i64,
        op: &CouponOp,
        (id, order_minor): (&str, i64),
        order: Option<(&str, &std::collections::BTreeMap<String, String>)>,
    ) -> Result<(Coupon, i64)> {
        let (slot, mut coupon) = self.slot_of(user_id, id)?;
        Self::fits(&coupon, op)?;
        Self::unexpired(&coupon, at_ms)?;
        let template = self.template(&coupon.template)?.template.clone();
        super::eligible::check(&template, id, order)?;
        let off_minor = template.off_for(order_minor).map_err(|min_spend_minor| {
            CouponError::BelowThreshold {
                coupon: id.to_owned(),
                min_spend_minor,
                order_minor,
            }
        })?;
        let work = self.user(user_id)?;
        // (alone, or every coupon of the transaction stacks)
        let stacks = template.stackable && work.redeemed_here.iter().all(|(_, s)| *s);
        if !(work.redeemed_here.is_empty() || stacks) {
            return Err(CouponError::NotStackable {
                coupon: id.to_owned(),
            }
            .into());
        }
        work.redeemed_here.push((id.to_owned(), template.stackable));
        coupon.state = CouponState::Redeemed {
            txn_id: txn_id.to_owned(),
            at_ms,
            order_minor,
            off_minor,
        };
        Ok((self.set(user_id, slot, coupon)?, off_minor))
    }

    fn reverse(&mut self, user_id: u32, at_ms: i64, id: &str) -> Result<Coupon> {
        let (slot, mut coupon) = self.slot_of(user_id, id)?;
        let op = CouponOp::Reverse {
            coupon: id.to_owned(),
        };
        Self::fits(&coupon, &op)?;
        coupon.state = match coupon.expires_at_ms {
            Some(e) if e <= at_ms => CouponState::Expired { at_ms: e },
            _ => CouponState::Available,
        };
        self.set(user_id, slot, coupon)
    }

    /// Settles `user_id`'s coupons due at or before `now_ms`: holds past
    /// their timeout become available, coupons past their expiry expire
    /// (at their expiry instant: deterministic for any run time).
    pub fn settle(&mut self, user_id: u32, now_ms: i64) -> Result<Settled> {
        let mut out = Settled::default();
        let store = self.store;
        let work = self.user(user_id)?;
        work.load_all(store)?;
        let due: Vec<(u32, Coupon)> = work
            .slots
            .iter()
            .filter(|(_, s)| s.current.due_ms().is_some_and(|d| d <= now_ms))
            .map(|(slot, s)| (*slot, s.current.clone()))
            .collect();
        for (slot, mut coupon) in due {
            coupon.state = match (coupon.expires_at_ms, &coupon.state) {
                (Some(e), _) if e <= now_ms => {
                    out.expired += 1;
                    CouponState::Expired { at_ms: e }
                }
                (_, CouponState::Held { .. }) => {
                    out.holds_timed_out += 1;
                    CouponState::Available
                }
                _ => continue,
            };
            self.set(user_id, slot, coupon)?;
        }
        Ok(out)
    }

    /// Moves `from_id`'s coupons and coupon records into `into_id` (an
    /// identity merge): each coupon keeps its id, state and expiry in a new
    /// slot; a coupon transaction id both used refuses the merge. The
    /// caller deletes `from_id`'s records.
    pub fn transfer_in(&mut self, into_id: u32, from_id: u32) -> Result<u64> {
        let store = self.store;
        let mut coupons: Vec<(Coupon, bool)> = Vec::new();
        let from = self.user(from_id)?;
        from.load_all(store)?;
        for (slot, s) in &from.slots {
            let noticed = store.contains(Cf::Feed, &fk::coupon_noticed(from_id, *slot))?;
            coupons.push((s.current.clone(), noticed));
        }
        let mut txns = Vec::new();
        for item in self
            .store
            .prefix(Cf::Ledger, &lk::family(from_id, lk::COUPON_TXN))?
        {
            let (k, v) = item?;
            let Some(lk::LedgerKey::CouponTxn { txn_id, .. }) = lk::LedgerKey::parse(&k) else {
                return Err(Error::internal("a coupon record key does not parse"));
            };
            txns.push((txn_id, decode_value::<CouponTxn>(Cf::Ledger, &k, &v)?));
        }
        // (the merged user's records go with its ledger; nothing of it is
        // written from here)
        self.users.remove(&from_id);
        for (txn_id, _) in &txns {
            if self.txn(into_id, txn_id)?.is_some() {
                return Err(MergeError::TxnClash {
                    txn_id: txn_id.clone(),
                }
                .into());
            }
        }
        let work = self.user(into_id)?;
        if work.head.next_slot as usize + coupons.len() > MAX_COUPONS_PER_USER {
            return Err(Error::LimitReached {
                what: USER_COUPONS,
                max: MAX_COUPONS_PER_USER as u64,
            });
        }
        let moved = coupons.len() as u64;
        for (coupon, noticed) in coupons {
            let slot = work.add(coupon);
            if noticed {
                work.noticed_before.push(slot);
            }
        }
        work.txns.extend(txns);
        Ok(moved)
    }

    /// Puts every change into `batch`: coupons, their due entries, the
    /// operation records and the counts.
    pub fn finish(self, batch: &mut Batch) -> Result<()> {
        for work in self.users.into_values() {
            work.finish(self.store, self.notices, batch)?;
        }
        for (id, t) in self.templates {
            if t.counts != t.stored {
                batch.put(
                    Cf::Meta,
                    meta::coupon(&id, meta::COUPON_COUNTS),
                    codec::encode(&t.counts)?,
                );
            }
        }
        Ok(())
    }
}
