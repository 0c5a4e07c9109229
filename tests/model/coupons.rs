//! A plain in-memory model of coupons (docs/coupons.md), shared by
//! tests/coupons_model.rs and the `engine_model` fuzz target: templates
//! with their counts, each user's coupons in the order they came, operation
//! records for replays and conflicts, the expiry run, erasure and identity
//! merge. The same rules as the store, written without its code.
#![allow(dead_code)]

use std::collections::BTreeMap;

use stickydb::{
    Coupon, CouponError, CouponOp, CouponOutcome, CouponState, CouponTemplate, Db, Error,
};

const DAY: i64 = 86_400_000;

/// A model coupon.
#[derive(Debug, Clone, PartialEq)]
pub struct MCoupon {
    pub id: String,
    pub template: String,
    pub issued_at_ms: i64,
    pub expires_at_ms: Option<i64>,
    pub state: CouponState,
}

/// What a model outcome holds (the store's is compared field by field).
#[derive(Debug, Clone, PartialEq)]
pub struct Out {
    pub coupon: String,
    pub template: String,
    pub at_ms: i64,
    pub expires_at_ms: Option<i64>,
    pub state: String,
    pub off_minor: i64,
    pub replayed: bool,
}

impl From<&CouponOutcome> for Out {
    fn from(o: &CouponOutcome) -> Self {
        Out {
            coupon: o.coupon.clone(),
            template: o.template.clone(),
            at_ms: o.at_ms,
            expires_at_ms: o.expires_at_ms,
            state: o.state.clone(),
            off_minor: o.off_minor,
            replayed: o.replayed,
        }
    }
}

pub type Res = Result<Out, String>;

#[derive(Default, Clone)]
pub struct MUser {
    pub coupons: Vec<MCoupon>,
    pub txns: BTreeMap<String, (CouponOp, Out)>,
}

#[derive(Default, Clone, Copy, PartialEq, Debug)]
pub struct MCounts {
    pub issued: u64,
    pub redeemed: u64,
    pub expired: u64,
    pub erased: u64,
}

#[derive(Clone)]
pub struct Model {
    pub templates: BTreeMap<String, (CouponTemplate, MCounts)>,
    /// Existing users by canonical name.
    pub users: BTreeMap<String, MUser>,
    /// Merged name → the name it resolves to.
    pub aliases: BTreeMap<String, String>,
    /// Coupons redeemed in the open transaction, with whether each stacks.
    pub here: Vec<bool>,
}

pub fn err(e: &Error) -> String {
    match e {
        Error::Coupon(c) => match c {
            CouponError::UnknownTemplate { .. } => "unknown_template",
            CouponError::OutOfStock { .. } => "stock",
            CouponError::PerUserLimit { .. } => "per_user",
            CouponError::TemplateEnded { .. } => "ended",
            CouponError::UnknownCoupon { .. } => "unknown_coupon",
            CouponError::Expired { .. } => "expired",
            CouponError::BelowThreshold { .. } => "threshold",
            CouponError::WrongState { .. } => "wrong_state",
            CouponError::NotStackable { .. } => "not_stackable",
            CouponError::NotEligible { .. } => "not_eligible",
            CouponError::TxnConflict { .. } => "conflict",
            other => panic!("unexpected coupon error {other}"),
        }
        .into(),
        Error::UnknownUser { .. } => "unknown_user".into(),
        other => panic!("unexpected error {other}"),
    }
}

impl Model {
    pub fn new(templates: Vec<CouponTemplate>) -> Self {
        Model {
            templates: templates
                .into_iter()
                .map(|t| (t.id.clone(), (t, MCounts::default())))
                .collect(),
            users: BTreeMap::new(),
            aliases: BTreeMap::new(),
            here: Vec::new(),
        }
    }

    pub fn resolve(&self, name: &str) -> String {
        self.aliases
            .get(name)
            .cloned()
            .unwrap_or_else(|| name.to_owned())
    }

    fn counts(&mut self, template: &str) -> &mut MCounts {
        &mut self.templates.get_mut(template).expect("template").1
    }

    fn tally(&mut self, template: &str, state: &CouponState, sign: i64) {
        let c = self.counts(template);
        match state {
            CouponState::Redeemed { .. } => c.redeemed = c.redeemed.saturating_add_signed(sign),
            CouponState::Expired { .. } => c.expired = c.expired.saturating_add_signed(sign),
            _ => {}
        }
    }

    pub fn apply(&mut self, name: &str, txn: &str, at: i64, op: &CouponOp) -> Res {
        let user = self.resolve(name);
        let fresh = !self.users.contains_key(&user);
        if fresh {
            if !matches!(op, CouponOp::Issue { .. }) {
                return Err("unknown_user".into());
            }
            self.users.insert(user.clone(), MUser::default());
        }
        let out = self.apply_existing(&user, txn, at, op);
        if fresh && out.is_err() {
            // (a refused write creates no user)
            self.users.remove(&user);
        }
        out
    }

    fn apply_existing(&mut self, user: &str, txn: &str, at: i64, op: &CouponOp) -> Res {
        if let Some((recorded, out)) = self.users[user].txns.get(txn) {
            if recorded != op {
                return Err("conflict".into());
            }
            return Ok(Out {
                replayed: true,
                ..out.clone()
            });
        }
        let (coupon, off) = self.run(user, txn, at, op)?;
        let out = Out {
            coupon: coupon.id.clone(),
            template: coupon.template.clone(),
            at_ms: at,
            expires_at_ms: coupon.expires_at_ms,
            state: coupon.state.name().into(),
            off_minor: off,
            replayed: false,
        };
        let u = self.users.get_mut(user).expect("user");
        u.txns.insert(txn.into(), (op.clone(), out.clone()));
        Ok(out)
    }

    fn find(&self, user: &str, id: &str) -> Result<usize, String> {
        self.users[user]
            .coupons
            .iter()
            .position(|c| c.id == id)
            .ok_or_else(|| "unknown_coupon".to_owned())
    }

    fn run(
        &mut self,
        user: &str,
        txn: &str,
        at: i64,
        op: &CouponOp,
    ) -> Result<(MCoupon, i64), String> {
        let expired = |c: &MCoupon| c.expires_at_ms.is_some_and(|e| e <= at);
        match op {
            CouponOp::Issue { template } => {
                let (t, counts) = self.templates[template].clone();
                if t.valid_until_ms.is_some_and(|e| e <= at) {
                    return Err("ended".into());
                }
                if t.stock.is_some_and(|s| counts.issued >= s) {
                    return Err("stock".into());
                }
                let held = self.users[user]
                    .coupons
                    .iter()
                    .filter(|c| c.template == t.id)
                    .count();
                if t.per_user.is_some_and(|n| held >= n as usize) {
                    return Err("per_user".into());
                }
                let relative = t.valid_days.map(|d| at + i64::from(d) * DAY);
                let expires_at_ms = match (relative, t.valid_until_ms) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
                let c = MCoupon {
                    id: format!("{}-{}", t.id, counts.issued + 1),
                    template: t.id.clone(),
                    issued_at_ms: at,
                    expires_at_ms,
                    state: CouponState::Available,
                };
                self.counts(template).issued += 1;
                self.users
                    .get_mut(user)
                    .expect("user")
                    .coupons
                    .push(c.clone());
                Ok((c, 0))
            }
            CouponOp::Hold { coupon, timeout_ms } => {
                let i = self.find(user, coupon)?;
                let c = &mut self.users.get_mut(user).expect("user").coupons[i];
                if c.state != CouponState::Available {
                    return Err("wrong_state".into());
                }
                if expired(c) {
                    return Err("expired".into());
                }
                c.state = CouponState::Held {
                    txn_id: txn.into(),
                    deadline_ms: at + timeout_ms,
                };
                Ok((c.clone(), 0))
            }
            CouponOp::Redeem {
                coupon,
                order_minor,
            } => self.redeem(user, txn, at, (coupon, *order_minor), None),
            CouponOp::RedeemOrder {
                coupon,
                order_minor,
                kind,
                properties,
            } => self.redeem(
                user,
                txn,
                at,
                (coupon, *order_minor),
                Some((kind, properties)),
            ),
            CouponOp::Release { coupon } => {
                let i = self.find(user, coupon)?;
                let c = &mut self.users.get_mut(user).expect("user").coupons[i];
                if !matches!(c.state, CouponState::Held { .. }) {
                    return Err("wrong_state".into());
                }
                c.state = CouponState::Available;
                Ok((c.clone(), 0))
            }
            CouponOp::Reverse { coupon } => {
                let i = self.find(user, coupon)?;
                let c = self.users[user].coupons[i].clone();
                if !matches!(c.state, CouponState::Redeemed { .. }) {
                    return Err("wrong_state".into());
                }
                self.tally(&c.template, &c.state, -1);
                let state = match c.expires_at_ms {
                    Some(e) if e <= at => CouponState::Expired { at_ms: e },
                    _ => CouponState::Available,
                };
                self.tally(&c.template, &state, 1);
                let c = &mut self.users.get_mut(user).expect("user").coupons[i];
                c.state = state;
                Ok((c.clone(), 0))
            }
            _ => unreachable!("no other operation"),
        }
    }

    pub fn advance(&mut self, now: i64) {
        let mut expired: Vec<String> = Vec::new();
        for u in self.users.values_mut() {
            for c in &mut u.coupons {
                let due = match &c.state {
                    CouponState::Available => c.expires_at_ms,
                    CouponState::Held { deadline_ms, .. } => Some(
                        c.expires_at_ms
                            .map_or(*deadline_ms, |e| e.min(*deadline_ms)),
                    ),
                    _ => None,
                };
                if due.is_none_or(|d| d > now) {
                    continue;
                }
                match c.expires_at_ms {
                    Some(e) if e <= now => {
                        c.state = CouponState::Expired { at_ms: e };
                        expired.push(c.template.clone());
                    }
                    _ => c.state = CouponState::Available,
                }
            }
        }
        for t in expired {
            self.counts(&t).expired += 1;
        }
    }

    pub fn erase(&mut self, name: &str) {
        let user = self.resolve(name);
        let Some(u) = self.users.remove(&user) else {
            return;
        };
        for c in u.coupons {
            self.tally(&c.template, &c.state, -1);
            self.counts(&c.template).erased += 1;
        }
        self.aliases.retain(|_, to| *to != user);
    }

    /// A redeem, of an order described by `order` (kind, string
    /// properties) when the caller did (docs/coupons.md#eligibility).
    fn redeem(
        &mut self,
        user: &str,
        txn: &str,
        at: i64,
        (coupon, order_minor): (&str, i64),
        order: Option<(&str, &BTreeMap<String, String>)>,
    ) -> Result<(MCoupon, i64), String> {
        let expired = |c: &MCoupon| c.expires_at_ms.is_some_and(|e| e <= at);
        let i = self.find(user, coupon)?;
        let c = self.users[user].coupons[i].clone();
        if !matches!(c.state, CouponState::Available | CouponState::Held { .. }) {
            return Err("wrong_state".into());
        }
        if expired(&c) {
            return Err("expired".into());
        }
        let t = self.templates[&c.template].0.clone();
        if !eligible(&t, order) {
            return Err("not_eligible".into());
        }
        if order_minor < t.min_spend_minor {
            return Err("threshold".into());
        }
        let off = match t.percent {
            0 => t.off_minor.min(order_minor),
            p => (order_minor * i64::from(p) / 100).min(t.max_off_minor.unwrap_or(i64::MAX)),
        };
        let stacks = t.stackable && self.here.iter().all(|s| *s);
        if !(self.here.is_empty() || stacks) {
            return Err("not_stackable".into());
        }
        self.here.push(t.stackable);
        let state = CouponState::Redeemed {
            txn_id: txn.into(),
            at_ms: at,
            order_minor,
            off_minor: off,
        };
        self.tally(&c.template, &state, 1);
        let c = &mut self.users.get_mut(user).expect("user").coupons[i];
        c.state = state;
        Ok((c.clone(), off))
    }

    /// `from` became an alias of `into` (a merge the caller checked): its
    /// coupons and records, if any, move.
    pub fn alias(&mut self, from: &str, into: &str) {
        if let Some(moved) = self.users.remove(from) {
            let target = self.users.entry(into.to_owned()).or_default();
            target.coupons.extend(moved.coupons);
            target.txns.extend(moved.txns);
        }
        for to in self.aliases.values_mut() {
            if to == from {
                *to = into.to_owned();
            }
        }
        self.aliases.insert(from.to_owned(), into.to_owned());
    }

    /// Whether a coupon transaction id both users (as the names resolve)
    /// used: the store refuses their merge (`MergeError::TxnClash`).
    pub fn clashes(&self, from: &str, into: &str) -> bool {
        let (f, i) = (self.resolve(from), self.resolve(into));
        match (self.users.get(&f), self.users.get(&i)) {
            (Some(f), Some(i)) => f.txns.keys().any(|t| i.txns.contains_key(t)),
            _ => false,
        }
    }

    /// A merge of `from` into `into`; `Err` when the store must refuse it.
    pub fn merge(&mut self, from: &str, into: &str) -> Result<(), ()> {
        let (f, i) = (self.resolve(from), self.resolve(into));
        if f == i || !self.users.contains_key(&f) || !self.users.contains_key(&i) || f != from {
            return Err(());
        }
        if self.clashes(&f, &i) {
            return Err(());
        }
        let moved = self.users.remove(&f).expect("from");
        let target = self.users.get_mut(&i).expect("into");
        target.coupons.extend(moved.coupons);
        target.txns.extend(moved.txns);
        for to in self.aliases.values_mut() {
            if *to == f {
                *to = i.clone();
            }
        }
        self.aliases.insert(f, i);
        Ok(())
    }
}

pub fn same(db: &Db, m: &Model, names: &[&str]) {
    for &name in names {
        let user = m.resolve(name);
        let stored: Vec<Coupon> = db.coupons(name).unwrap();
        let expected: Vec<MCoupon> = m
            .users
            .get(&user)
            .map(|u| u.coupons.clone())
            .unwrap_or_default();
        let got: Vec<MCoupon> = stored
            .iter()
            .map(|c| MCoupon {
                id: c.id.clone(),
                template: c.template.clone(),
                issued_at_ms: c.issued_at_ms,
                expires_at_ms: c.expires_at_ms,
                state: c.state.clone(),
            })
            .collect();
        assert_eq!(got, expected, "coupons of {name}");
    }
    for (id, (t, c)) in &m.templates {
        let s = db.coupon_stats(id).unwrap();
        let outstanding = c.issued - c.redeemed - c.expired - c.erased;
        assert_eq!(
            (s.issued, s.redeemed, s.expired, s.erased, s.outstanding),
            (c.issued, c.redeemed, c.expired, c.erased, outstanding),
            "counts of {id}"
        );
        assert_eq!(s.stock_left, t.stock.map(|st| st - c.issued));
    }
}

/// Whether an order may use a coupon of `t`: a template naming kinds or
/// properties needs the order described, of one of its kinds, with each
/// property equal.
fn eligible(t: &CouponTemplate, order: Option<(&str, &BTreeMap<String, String>)>) -> bool {
    if t.kinds.is_empty() && t.where_props.is_empty() {
        return true;
    }
    let Some((kind, properties)) = order else {
        return false;
    };
    (t.kinds.is_empty() || t.kinds.iter().any(|k| k == kind))
        && t.where_props
            .iter()
            .all(|(name, want)| properties.get(name) == Some(want))
}

pub fn pick_coupon(m: &Model, user: &str, pick: usize) -> String {
    let u = m.resolve(user);
    match m.users.get(&u).map(|u| &u.coupons) {
        Some(cs) if !cs.is_empty() => cs[pick % cs.len()].id.clone(),
        // (an id no user holds: refused)
        _ => format!("F5-{}", 900 + pick),
    }
}
