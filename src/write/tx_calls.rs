//! The calls of a write transaction: each validates its input, makes sure
//! the attempt holds what it needs (or marks it to start over), and puts
//! its change into the transaction's shared writers (see `tx.rs`).

use super::tx::{Core, Ops, MAX_TX_PARTS};
use super::Writer;
use crate::error::{Error, InputError, Problem, Result, TxError};
use crate::ledger::{self, CouponOp, CouponOutcome, PointsOp, PointsOutcome};
use crate::profiles::ProfileUpdate;
use crate::store::Durability;
use crate::timeline::{Event, RecordOutcome, MAX_BATCH_EVENTS};
use crate::users::{self, MergeOptions, MergeOutcome};

impl Writer<'_> {
    /// Checks `events` before anything is locked or read: a bad item
    /// refuses the whole write, naming its position.
    pub(super) fn validate_events(&self, events: &[Event]) -> Result<()> {
        InputError::check_count("events", events.len(), MAX_BATCH_EVENTS)?;
        for (i, e) in events.iter().enumerate() {
            e.validate().map_err(|err| err.at(i))?;
            self.kinds
                .check(&e.kind)
                .map_err(|p| InputError::new("kind", p).at(i))?;
            crate::experiments::check_exposure(e, self.exposure_kind).map_err(|err| err.at(i))?;
        }
        Ok(())
    }
}

impl Core<'_, '_> {
    /// Enters one call: refused once the attempt is over or failed.
    fn enter(&mut self) -> Result<usize> {
        if self.again {
            return Err(Error::Busy {
                what: "the transaction starts over holding more locks",
                rounds: 0,
            });
        }
        if let Some((part, op)) = self.failed {
            return Err(TxError::PartFailed { part, op }.into());
        }
        if let Err(e) = InputError::check_count("transaction calls", self.parts + 1, MAX_TX_PARTS) {
            self.failed = Some((self.parts, "a call past the limit"));
            return Err(e.into());
        }
        self.parts += 1;
        Ok(self.parts - 1)
    }

    /// Leaves one call: a failure fails the transaction.
    fn leave<T>(&mut self, part: usize, op: &'static str, out: Result<T>) -> Result<T> {
        if out.is_err() && !self.again && self.failed.is_none() {
            self.failed = Some((part, op));
        }
        out
    }

    /// Marks the attempt short: the caller grew the plan.
    pub(super) fn start_over<T>(&mut self) -> Result<T> {
        self.again = true;
        Err(Error::Busy {
            what: "the transaction starts over holding more locks",
            rounds: 0,
        })
    }

    /// Whether this attempt holds `name`'s stripe (and its alias's target's).
    pub(super) fn holds(&self, name: &str) -> bool {
        self.plan.all || self.plan.names.contains(name)
    }

    /// Makes sure this attempt holds `name`'s lock: taken now when free
    /// (without waiting), else asked for in the next round. Returns
    /// whether it is missing (the attempt must start over).
    fn need(&mut self, name: &str) -> Result<bool> {
        if self.holds(name) {
            return Ok(false);
        }
        let held = self.users.try_hold(name)?;
        self.plan.names.insert(name.to_owned());
        Ok(!held)
    }

    fn record_inner(&mut self, events: &[Event]) -> Result<Vec<RecordOutcome>> {
        InputError::check_count(
            "events of one transaction",
            self.events_total + events.len(),
            MAX_BATCH_EVENTS,
        )?;
        if !self.plan.events_validated {
            self.w.validate_events(events)?;
        }
        let mut short = false;
        // (a gift pack issues coupons in this write: the coupon lock)
        let gift_kind = self.gifts.as_ref().as_ref().map(|g| g.kind.clone());
        if let Some(kind) = &gift_kind {
            if !self.plan.coupons && events.iter().any(|e| e.kind.as_str() == kind) {
                self.plan.coupons = true;
                short = true;
            }
        }
        for e in events {
            short |= self.need(&e.user)?;
            if !self
                .recording
                .can_record(self.w, &self.reservation, &e.kind)
            {
                self.plan.kinds.push(e.kind.clone());
                short = true;
            }
        }
        if short {
            return self.start_over();
        }
        let ledger = (self.rules || self.growth).then_some(&mut self.session);
        let outcomes = self.recording.add(
            self.w,
            &mut self.batch,
            &mut self.users,
            &self.reservation,
            events,
            ledger.map(|s| (s, self.rules)),
        )?;
        if gift_kind.is_some() {
            self.give_gifts(events, &outcomes)?;
        }
        let offset = self.events_total;
        self.social.extend(
            super::social::social_events(events, &outcomes)
                .into_iter()
                .map(|mut s| {
                    s.index += offset;
                    s
                }),
        );
        self.events_total += events.len();
        Ok(outcomes)
    }

    fn points_inner(
        &mut self,
        user: &str,
        txn_id: &str,
        at_ms: i64,
        op: &PointsOp,
    ) -> Result<PointsOutcome> {
        users::check_user(user).map_err(|p| InputError::new("user", p))?;
        ledger::check_txn_id(txn_id)?;
        crate::time::check_ts(at_ms).map_err(|p| InputError::new("at_ms", p))?;
        op.validate()?;
        if self.need(user)? {
            return self.start_over();
        }
        let credits = match op {
            PointsOp::Earn { .. } => true,
            PointsOp::Adjust { points, .. } => *points > 0,
            _ => false,
        };
        let user_id = if credits {
            self.users.id(user)?
        } else {
            self.users
                .existing_id(user)?
                .ok_or_else(|| Error::UnknownUser {
                    user: user.to_owned(),
                })?
        };
        self.session.apply(user_id, txn_id, at_ms, op)
    }

    /// Issues the gift pack to the users of `events` whose recorded event
    /// is of its kind (a replay when a user had it already); a template out
    /// of stock, ended or at its per-user limit gives nothing, and the
    /// events are recorded all the same.
    fn give_gifts(&mut self, events: &[Event], outcomes: &[RecordOutcome]) -> Result<()> {
        let gifts = self.gifts.clone();
        let Some(pack) = gifts.as_ref() else {
            return Ok(());
        };
        for (e, o) in events.iter().zip(outcomes) {
            let RecordOutcome::Recorded { user_id, .. } = o else {
                continue;
            };
            if e.kind.as_str() != pack.kind {
                continue;
            }
            for template in &pack.templates {
                let txn = ledger::coupons::gift::gift_txn(*user_id, template);
                let issue = CouponOp::Issue {
                    template: template.clone(),
                };
                match self.coupons.apply(*user_id, &e.user, &txn, e.ts_ms, &issue) {
                    Ok(_) => {}
                    Err(err) if ledger::coupons::gift::skipped(&err) => {}
                    Err(err) => return Err(err),
                }
            }
        }
        Ok(())
    }

    fn coupon_inner(
        &mut self,
        user: &str,
        txn_id: &str,
        at_ms: i64,
        op: &CouponOp,
    ) -> Result<CouponOutcome> {
        users::check_user(user).map_err(|p| InputError::new("user", p))?;
        ledger::check_txn_id(txn_id)?;
        if txn_id.starts_with(ledger::GIFT_TXN_PREFIX) {
            let reason = format!(
                "ids starting with {:?} are reserved for gift packs",
                ledger::GIFT_TXN_PREFIX
            );
            return Err(InputError::new("txn_id", Problem::Unparsable { reason }).into());
        }
        crate::time::check_ts(at_ms).map_err(|p| InputError::new("at_ms", p))?;
        op.validate()?;
        let short = self.need(user)?;
        if short || !self.plan.coupons {
            self.plan.coupons = true;
            return self.start_over();
        }
        let user_id = if matches!(op, CouponOp::Issue { .. }) {
            self.users.id(user)?
        } else {
            self.users
                .existing_id(user)?
                .ok_or_else(|| Error::UnknownUser {
                    user: user.to_owned(),
                })?
        };
        self.coupons.apply(user_id, user, txn_id, at_ms, op)
    }

    fn update_profile_inner(&mut self, user: &str, update: &ProfileUpdate) -> Result<()> {
        users::check_user(user).map_err(|p| InputError::new("user", p))?;
        update.validate()?;
        if self.need(user)? {
            return self.start_over();
        }
        let user_id = if update.creates() {
            self.users.id(user)?
        } else {
            match self.users.existing_id(user)? {
                Some(id) => id,
                // Removing from a user that does not exist is a no-op, and
                // must not create the user.
                None => return Ok(()),
            }
        };
        self.add_profile_update(user_id, update.clone())
    }

    /// Adds `update` for `user_id` after the transaction's earlier ones
    /// (applied together at the commit: each reads the stored profile).
    /// A birthday it sets or removes is what the transaction's later
    /// events read (birthday rewards).
    pub(super) fn add_profile_update(&mut self, user_id: u32, update: ProfileUpdate) -> Result<()> {
        if let Some(birthday) = update.date_change(crate::profiles::BIRTHDAY_ATTRIBUTE) {
            self.session.set_birthday(user_id, birthday)?;
        }
        match self.profiles.iter_mut().find(|(id, _)| *id == user_id) {
            Some((_, earlier)) => earlier.then(update),
            None => self.profiles.push((user_id, update)),
        }
        Ok(())
    }
}

impl Ops for Core<'_, '_> {
    fn record_batch(&mut self, events: &[Event]) -> Result<Vec<RecordOutcome>> {
        let part = self.enter()?;
        let out = self.record_inner(events);
        self.leave(part, "record", out)
    }

    fn points(
        &mut self,
        user: &str,
        txn_id: &str,
        at_ms: i64,
        op: &PointsOp,
    ) -> Result<PointsOutcome> {
        let part = self.enter()?;
        let out = self.points_inner(user, txn_id, at_ms, op);
        self.leave(part, "points", out)
    }

    fn coupon(
        &mut self,
        user: &str,
        txn_id: &str,
        at_ms: i64,
        op: &CouponOp,
    ) -> Result<CouponOutcome> {
        let part = self.enter()?;
        let out = self.coupon_inner(user, txn_id, at_ms, op);
        self.leave(part, "coupon", out)
    }

    fn update_profile(&mut self, user: &str, update: &ProfileUpdate) -> Result<()> {
        let part = self.enter()?;
        let out = self.update_profile_inner(user, update);
        self.leave(part, "update_profile", out)
    }

    fn merge(
        &mut self,
        from: &str,
        into: &str,
        merge_id: &str,
        options: MergeOptions,
    ) -> Result<MergeOutcome> {
        let part = self.enter()?;
        let out = self.merge_inner(from, into, merge_id, options);
        self.leave(part, "merge", out)
    }

    fn set_durability(&mut self, durability: Durability) {
        self.plan.durability = Some(durability);
    }
}
