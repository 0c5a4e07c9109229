//! Coupons against a plain in-memory model (docs/coupons.md): random
//! sequences over three users and four templates (fixed with stock and a
//! per-user limit, percent with a cap and an absolute end, threshold that
//! does not stack, a stackable one without expiry) — issues, holds that
//! are redeemed, released or time out, redeems above and below thresholds,
//! reversals before and after the expiry, retries of the same transaction,
//! conflicting replays, back-dated operations, checkouts redeeming two
//! coupons in one transaction (stacking), the clock advancing (expiries,
//! hold timeouts) or time passing without it (coupons past their expiry
//! refused before the expiry run reaches them), erasures and identity merges (coupons move with their
//! ids). After every step the outcome (or the exact refusal), every user's
//! coupons and every template's counts equal the model's; a refused
//! operation leaves the store byte-identical; `verify` stays clean.

mod common;

use std::collections::BTreeMap;

use proptest::prelude::*;
use stickydb::{
    Coupon, CouponError, CouponOp, CouponOutcome, CouponState, CouponTemplate, Db, Error,
    MergeOptions,
};

const T0: i64 = common::T0;
const DAY: i64 = common::DAY;
const USERS: [&str; 3] = ["ann", "bob", "cat"];

fn templates() -> Vec<CouponTemplate> {
    vec![
        CouponTemplate::fixed("F5", 500)
            .valid_days(2)
            .stock(6)
            .per_user(2),
        CouponTemplate::percent("P10", 10, Some(300))
            .valid_until_ms(T0 + 2 * DAY)
            .stackable(true),
        CouponTemplate::threshold("T15", 10_000, 1_500)
            .valid_days(1)
            .per_user(1),
        CouponTemplate::fixed("S", 100).stackable(true).stock(3),
    ]
}

#[derive(Debug, Clone)]
enum Step {
    Issue {
        user: usize,
        template: usize,
        late: i64,
    },
    Hold {
        user: usize,
        pick: usize,
        timeout: i64,
    },
    Redeem {
        user: usize,
        pick: usize,
        order: i64,
        late: i64,
    },
    Release {
        user: usize,
        pick: usize,
    },
    Reverse {
        user: usize,
        pick: usize,
    },
    Retry {
        pick: usize,
    },
    Conflict {
        pick: usize,
    },
    Checkout {
        user: usize,
        a: usize,
        b: usize,
        order: i64,
    },
    Advance(i64),
    /// Time passes without an `advance`: coupons past their expiry are
    /// still available in the store, and refused as expired.
    Wait(i64),
    Erase {
        user: usize,
    },
    Merge {
        from: usize,
        into: usize,
    },
}

fn step() -> impl Strategy<Value = Step> {
    let u = 0..USERS.len();
    let pick = 0..8usize;
    prop_oneof![
        5 => (u.clone(), 0..4usize, 0..DAY).prop_map(|(user, template, late)| Step::Issue { user, template, late }),
        2 => (u.clone(), pick.clone(), 1..DAY / 2).prop_map(|(user, pick, timeout)| Step::Hold { user, pick, timeout }),
        4 => (u.clone(), pick.clone(), 0..20_000i64, 0..DAY / 4).prop_map(|(user, pick, order, late)| Step::Redeem { user, pick, order, late }),
        1 => (u.clone(), pick.clone()).prop_map(|(user, pick)| Step::Release { user, pick }),
        2 => (u.clone(), pick.clone()).prop_map(|(user, pick)| Step::Reverse { user, pick }),
        2 => pick.clone().prop_map(|pick| Step::Retry { pick }),
        1 => pick.clone().prop_map(|pick| Step::Conflict { pick }),
        2 => (u.clone(), pick.clone(), pick, 0..20_000i64).prop_map(|(user, a, b, order)| Step::Checkout { user, a, b, order }),
        3 => (1..DAY).prop_map(Step::Advance),
        2 => (1..DAY).prop_map(Step::Wait),
        1 => u.clone().prop_map(|user| Step::Erase { user }),
        1 => (u.clone(), u).prop_map(|(from, into)| Step::Merge { from, into }),
    ]
}

/// A model coupon.
#[derive(Debug, Clone, PartialEq)]
struct MCoupon {
    id: String,
    template: String,
    issued_at_ms: i64,
    expires_at_ms: Option<i64>,
    state: CouponState,
}

/// What a model outcome holds (the store's is compared field by field).
#[derive(Debug, Clone, PartialEq)]
struct Out {
    coupon: String,
    template: String,
    at_ms: i64,
    expires_at_ms: Option<i64>,
    state: String,
    off_minor: i64,
    replayed: bool,
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

type Res = Result<Out, String>;

#[derive(Default, Clone)]
struct MUser {
    coupons: Vec<MCoupon>,
    txns: BTreeMap<String, (CouponOp, Out)>,
}

#[derive(Default, Clone, Copy, PartialEq, Debug)]
struct MCounts {
    issued: u64,
    redeemed: u64,
    expired: u64,
    erased: u64,
}

#[derive(Clone)]
struct Model {
    templates: BTreeMap<String, (CouponTemplate, MCounts)>,
    /// Existing users by canonical name.
    users: BTreeMap<String, MUser>,
    /// Merged name → the name it resolves to.
    aliases: BTreeMap<String, String>,
    /// Coupons redeemed in the open transaction, with whether each stacks.
    here: Vec<bool>,
}

fn err(e: &Error) -> String {
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
            CouponError::TxnConflict { .. } => "conflict",
            other => panic!("unexpected coupon error {other}"),
        }
        .into(),
        Error::UnknownUser { .. } => "unknown_user".into(),
        other => panic!("unexpected error {other}"),
    }
}

impl Model {
    fn new() -> Self {
        Model {
            templates: templates()
                .into_iter()
                .map(|t| (t.id.clone(), (t, MCounts::default())))
                .collect(),
            users: BTreeMap::new(),
            aliases: BTreeMap::new(),
            here: Vec::new(),
        }
    }

    fn resolve(&self, name: &str) -> String {
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

    fn apply(&mut self, name: &str, txn: &str, at: i64, op: &CouponOp) -> Res {
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
            } => {
                let i = self.find(user, coupon)?;
                let c = self.users[user].coupons[i].clone();
                if !matches!(c.state, CouponState::Available | CouponState::Held { .. }) {
                    return Err("wrong_state".into());
                }
                if expired(&c) {
                    return Err("expired".into());
                }
                let t = self.templates[&c.template].0.clone();
                if *order_minor < t.min_spend_minor {
                    return Err("threshold".into());
                }
                let off = match t.percent {
                    0 => t.off_minor.min(*order_minor),
                    p => {
                        (order_minor * i64::from(p) / 100).min(t.max_off_minor.unwrap_or(i64::MAX))
                    }
                };
                let stacks = t.stackable && self.here.iter().all(|s| *s);
                if !(self.here.is_empty() || stacks) {
                    return Err("not_stackable".into());
                }
                self.here.push(t.stackable);
                let state = CouponState::Redeemed {
                    txn_id: txn.into(),
                    at_ms: at,
                    order_minor: *order_minor,
                    off_minor: off,
                };
                self.tally(&c.template, &state, 1);
                let c = &mut self.users.get_mut(user).expect("user").coupons[i];
                c.state = state;
                Ok((c.clone(), off))
            }
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

    fn advance(&mut self, now: i64) {
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

    fn erase(&mut self, name: &str) {
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

    /// A merge of `from` into `into`; `Err` when the store must refuse it.
    fn merge(&mut self, from: &str, into: &str) -> Result<(), ()> {
        let (f, i) = (self.resolve(from), self.resolve(into));
        if f == i || !self.users.contains_key(&f) || !self.users.contains_key(&i) || f != from {
            return Err(());
        }
        if self.users[&f]
            .txns
            .keys()
            .any(|t| self.users[&i].txns.contains_key(t))
        {
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

fn same(db: &Db, m: &Model) {
    for name in USERS {
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

fn pick_coupon(m: &Model, user: &str, pick: usize) -> String {
    let u = m.resolve(user);
    match m.users.get(&u).map(|u| &u.coupons) {
        Some(cs) if !cs.is_empty() => cs[pick % cs.len()].id.clone(),
        // (an id no user holds: refused)
        _ => format!("F5-{}", 900 + pick),
    }
}

fn run(steps: Vec<Step>) {
    let (_dir, db) = common::open_temp();
    for t in templates() {
        assert!(db.add_coupon_template(&t).unwrap());
        // (an equal template again is a no-op)
        assert!(!db.add_coupon_template(&t).unwrap());
    }
    let mut m = Model::new();
    let mut now = T0;
    let mut done: Vec<(String, String, i64, CouponOp)> = Vec::new();
    let mut merges = 0usize;
    for (n, s) in steps.into_iter().enumerate() {
        now += 60_000;
        let mut calls: Vec<(String, String, i64, CouponOp)> = Vec::new();
        match &s {
            Step::Issue {
                user,
                template,
                late,
            } => {
                let t = ["F5", "P10", "T15", "S"][*template];
                calls.push((
                    USERS[*user].into(),
                    format!("i{n}"),
                    now - late,
                    CouponOp::Issue { template: t.into() },
                ));
            }
            Step::Hold {
                user,
                pick,
                timeout,
            } => {
                let c = pick_coupon(&m, USERS[*user], *pick);
                calls.push((
                    USERS[*user].into(),
                    format!("h{n}"),
                    now,
                    CouponOp::Hold {
                        coupon: c,
                        timeout_ms: *timeout,
                    },
                ));
            }
            Step::Redeem {
                user,
                pick,
                order,
                late,
            } => {
                let c = pick_coupon(&m, USERS[*user], *pick);
                calls.push((
                    USERS[*user].into(),
                    format!("r{n}"),
                    now - late,
                    CouponOp::Redeem {
                        coupon: c,
                        order_minor: *order,
                    },
                ));
            }
            Step::Release { user, pick } => {
                let c = pick_coupon(&m, USERS[*user], *pick);
                calls.push((
                    USERS[*user].into(),
                    format!("l{n}"),
                    now,
                    CouponOp::Release { coupon: c },
                ));
            }
            Step::Reverse { user, pick } => {
                let c = pick_coupon(&m, USERS[*user], *pick);
                calls.push((
                    USERS[*user].into(),
                    format!("v{n}"),
                    now,
                    CouponOp::Reverse { coupon: c },
                ));
            }
            Step::Retry { pick } if !done.is_empty() => {
                let (u, t, _, op) = done[pick % done.len()].clone();
                // (stamped later: still a replay)
                calls.push((u, t, now, op));
            }
            Step::Conflict { pick } if !done.is_empty() => {
                let (u, t, at, _) = done[pick % done.len()].clone();
                calls.push((
                    u,
                    t,
                    at,
                    CouponOp::Issue {
                        template: "S".into(),
                    },
                ));
            }
            Step::Checkout { user, a, b, order } => {
                let name = USERS[*user];
                let (ca, cb) = (pick_coupon(&m, name, *a), pick_coupon(&m, name, *b));
                let ops = [
                    (
                        format!("ca{n}"),
                        CouponOp::Redeem {
                            coupon: ca,
                            order_minor: *order,
                        },
                    ),
                    (
                        format!("cb{n}"),
                        CouponOp::Redeem {
                            coupon: cb,
                            order_minor: *order,
                        },
                    ),
                ];
                let before = db.raw_dump().unwrap();
                let got = db.write(|tx| {
                    let mut outs = Vec::new();
                    for (txn, op) in &ops {
                        outs.push(Out::from(&tx.coupon(name, txn, now, op)?));
                    }
                    Ok(outs)
                });
                let mut trial = m.clone();
                trial.here.clear();
                let expected: Result<Vec<Out>, String> = ops
                    .iter()
                    .map(|(txn, op)| trial.apply(name, txn, now, op))
                    .collect();
                trial.here.clear();
                match (&got, &expected) {
                    (Ok(g), Ok(e)) => {
                        assert_eq!(g, e, "checkout {n}");
                        m = trial;
                        for (txn, op) in &ops {
                            done.push((name.into(), txn.clone(), now, op.clone()));
                        }
                    }
                    (Err(g), Err(e)) => {
                        assert_eq!(&err(g), e, "checkout {n}");
                        assert_eq!(before, db.raw_dump().unwrap(), "refused checkout {n} wrote");
                    }
                    _ => panic!("checkout {n}: store {got:?}, model {expected:?}"),
                }
            }
            Step::Advance(by) => {
                now += by;
                let report = db.advance(now).unwrap();
                m.advance(now);
                let _ = report;
            }
            Step::Wait(by) => now += by,
            Step::Erase { user } => {
                db.erase_user(USERS[*user]).unwrap();
                m.erase(USERS[*user]);
            }
            Step::Merge { from, into } => {
                let (f, i) = (USERS[*from], USERS[*into]);
                let mut trial = m.clone();
                if trial.merge(f, i).is_ok() {
                    merges += 1;
                    db.merge(f, i, &format!("m{merges}"), MergeOptions::forced())
                        .unwrap();
                    m = trial;
                }
            }
            Step::Retry { .. } | Step::Conflict { .. } => {}
        }
        for (user, txn, at, op) in calls {
            let before = db.raw_dump().unwrap();
            let got = db.coupon(&user, &txn, at, &op);
            m.here.clear();
            let expected = m.apply(&user, &txn, at, &op);
            m.here.clear();
            match (&got, &expected) {
                (Ok(g), Ok(e)) => {
                    assert_eq!(&Out::from(g), e, "step {n} {s:?}");
                    if !e.replayed {
                        done.push((user, txn, at, op));
                    }
                }
                (Err(g), Err(e)) => {
                    assert_eq!(&err(g), e, "step {n} {s:?}: {g}");
                    assert_eq!(before, db.raw_dump().unwrap(), "refused step {n} wrote");
                }
                _ => panic!("step {n} {s:?}: store {got:?}, model {expected:?}"),
            }
        }
        same(&db, &m);
    }
    common::assert_clean(&db);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn coupons_equal_the_model(steps in proptest::collection::vec(step(), 1..60)) {
        run(steps);
    }
}

/// A coupon redeemed, refunded after its expiry: it comes back expired,
/// and the counts say so.
#[test]
fn a_refund_after_the_expiry_returns_an_expired_coupon() {
    let (_dir, db) = common::open_temp();
    db.add_coupon_template(&CouponTemplate::fixed("F", 300).valid_days(1))
        .unwrap();
    db.coupon(
        "ann",
        "i",
        T0,
        &CouponOp::Issue {
            template: "F".into(),
        },
    )
    .unwrap();
    let redeem = CouponOp::Redeem {
        coupon: "F-1".into(),
        order_minor: 200,
    };
    assert_eq!(
        db.coupon("ann", "r", T0 + 1, &redeem).unwrap().off_minor,
        200
    );
    let back = db
        .coupon(
            "ann",
            "v",
            T0 + 2 * DAY,
            &CouponOp::Reverse {
                coupon: "F-1".into(),
            },
        )
        .unwrap();
    assert_eq!(back.state, "expired");
    let s = db.coupon_stats("F").unwrap();
    assert_eq!(
        (s.issued, s.redeemed, s.expired, s.outstanding),
        (1, 0, 1, 0)
    );
    common::assert_clean(&db);
}

/// The coupon notices of the change feed: once per available coupon whose
/// expiry falls within the notice period (7 days), at `advance`; in the
/// issuing write when already due; none for a redeemed coupon.
#[test]
fn expiring_coupons_are_noticed_once() {
    use stickydb::Change;
    let (_dir, db) = common::open_temp();
    db.add_coupon_template(&CouponTemplate::fixed("F", 300).valid_days(10))
        .unwrap();
    let issue = CouponOp::Issue {
        template: "F".into(),
    };
    db.coupon("ann", "i", T0, &issue).unwrap(); // F-1, expires T0 + 10 d
    db.coupon("bob", "i", T0, &issue).unwrap(); // F-2, redeemed below
    let redeem = CouponOp::Redeem {
        coupon: "F-2".into(),
        order_minor: 500,
    };
    db.coupon("bob", "r", T0 + 1, &redeem).unwrap();
    let notices = |db: &Db| -> Vec<(String, String, i64, i64)> {
        db.feed(0, 100)
            .unwrap()
            .into_iter()
            .filter_map(|e| match e.record.change {
                Change::CouponExpiryNotice {
                    coupon,
                    expires_at_ms,
                    at_ms,
                    ..
                } => Some((e.user.unwrap_or_default(), coupon, expires_at_ms, at_ms)),
                _ => None,
            })
            .collect()
    };
    db.advance(T0 + 2 * DAY).unwrap();
    assert!(notices(&db).is_empty(), "not due before T0 + 3 d");
    let report = db.advance(T0 + 4 * DAY).unwrap();
    let expected = vec![(
        "ann".to_owned(),
        "F-1".to_owned(),
        T0 + 10 * DAY,
        T0 + 3 * DAY,
    )];
    assert_eq!(notices(&db), expected);
    assert_eq!(report.notices, 1);
    db.advance(T0 + 5 * DAY).unwrap();
    assert_eq!(notices(&db), expected, "once");
    // issued with its notice due already (clock at T0 + 5 d, expiry T0 + 15 d
    // is not; a 2-day template is)
    db.add_coupon_template(&CouponTemplate::fixed("G", 100).valid_days(2))
        .unwrap();
    let g = CouponOp::Issue {
        template: "G".into(),
    };
    db.coupon("cat", "i", T0 + 5 * DAY, &g).unwrap();
    let got = notices(&db);
    assert_eq!(got.len(), 2);
    assert_eq!(got[1].1, "G-1");
    db.advance(T0 + 6 * DAY).unwrap();
    assert_eq!(notices(&db).len(), 2, "not again at advance");
    common::assert_clean(&db);
}
