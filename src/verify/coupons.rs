//! Coupon verification: every coupon's due entry, ids unique in the store
//! and of the form `TEMPLATE-N` with N within the template's issues, every
//! operation record naming a coupon its user holds, and each template's
//! counts equal to what its coupons say (issued − erased coupons exist;
//! redeemed and expired equal the coupons in those states).

use std::collections::{BTreeMap, BTreeSet, HashSet};

use super::VerifyReport;
use crate::error::Result;
use crate::keys::{ledger as lk, meta};
use crate::ledger::coupons::{Counts, Coupon, CouponTemplate, CouponTxn, Head};
use crate::store::{decode_value, Cf, Store};

/// One user's coupon records, as read.
#[derive(Default)]
pub(super) struct UserCoupons {
    pub coupons: Vec<(u32, Coupon)>,
    pub txns: Vec<(String, CouponTxn)>,
    pub ids: Vec<(String, u32)>,
    pub head: Option<Head>,
}

/// What the coupons of every user add up to, per template.
#[derive(Default)]
pub(super) struct Tally {
    templates: BTreeMap<String, (Counts, u64)>,
    ids: HashSet<String>,
}

impl Tally {
    /// Adds one user's coupons and records; expects their due entries.
    pub(super) fn user(
        &mut self,
        uid: u32,
        user: UserCoupons,
        due: &mut BTreeSet<Vec<u8>>,
        r: &mut VerifyReport,
    ) {
        check_index(uid, &user, r);
        let UserCoupons { coupons, txns, .. } = &user;
        let mut held: HashSet<&str> = HashSet::new();
        for (slot, c) in coupons {
            held.insert(&c.id);
            if let Some(d) = c.due_ms() {
                due.insert(lk::due(lk::DUE_COUPON, d, uid, *slot).to_vec());
            }
            if !self.ids.insert(c.id.clone()) {
                r.problem(format!("coupons: id {:?} held twice", c.id));
            }
            let serial =
                c.id.strip_prefix(c.template.as_str())
                    .and_then(|rest| rest.strip_prefix('-'))
                    .and_then(|n| n.parse::<u64>().ok());
            let Some(serial) = serial else {
                r.problem(format!(
                    "coupons: user {uid}: id {:?} is not of its template",
                    c.id
                ));
                continue;
            };
            let (counts, max_serial) = self.templates.entry(c.template.clone()).or_default();
            counts.issued += 1;
            counts.add_state(&c.state, 1);
            *max_serial = (*max_serial).max(serial);
        }
        for (txn_id, t) in txns {
            if !held.contains(t.outcome.coupon.as_str()) {
                r.problem(format!(
                    "coupons: user {uid}: record {txn_id:?} names coupon {:?} it does not hold",
                    t.outcome.coupon
                ));
            }
        }
    }

    /// Compares the tally with every template's stored counts.
    pub(super) fn check(mut self, store: &Store, r: &mut VerifyReport) -> Result<()> {
        let mut templates: BTreeMap<String, (Option<CouponTemplate>, Option<Counts>)> =
            BTreeMap::new();
        for item in store.prefix(Cf::Meta, meta::COUPON_PREFIX)? {
            let (k, v) = item?;
            let Some((id, what)) = meta::parse_coupon(&k) else {
                r.problem(format!("coupons: meta key {k:?} does not parse"));
                continue;
            };
            let id = String::from_utf8_lossy(id).into_owned();
            let slot = templates.entry(id).or_default();
            match what {
                meta::COUPON_TEMPLATE => {
                    slot.0 = Some(crate::ledger::coupons::eligible::decode(&k, &v)?)
                }
                meta::COUPON_COUNTS => slot.1 = Some(decode_value(Cf::Meta, &k, &v)?),
                _ => r.problem(format!("coupons: meta key {k:?} of no record")),
            }
        }
        for (id, (template, counts)) in templates {
            let (tally, max_serial) = self.templates.remove(&id).unwrap_or_default();
            let counts = counts.unwrap_or_default();
            if template.is_none() {
                r.problem(format!(
                    "coupons: counts of template {id:?}, which does not exist"
                ));
            }
            let held = counts.issued.saturating_sub(counts.erased);
            if (held, counts.redeemed, counts.expired)
                != (tally.issued, tally.redeemed, tally.expired)
                || max_serial > counts.issued
            {
                r.problem(format!(
                    "coupons: template {id:?} counts {counts:?}; its coupons say {} held, {} redeemed, {} expired, serials up to {max_serial}",
                    tally.issued, tally.redeemed, tally.expired
                ));
            }
            if let Some(stock) = template.and_then(|t| t.stock) {
                if counts.issued > stock {
                    r.problem(format!(
                        "coupons: template {id:?} issued {} of a stock of {stock}",
                        counts.issued
                    ));
                }
            }
        }
        for id in self.templates.keys() {
            r.problem(format!(
                "coupons: coupons of template {id:?}, which does not exist"
            ));
        }
        Ok(())
    }
}

/// A user's id index and head against its coupons: one index entry per
/// coupon, naming its slot; the head's next slot past every slot and its
/// count per template equal to the coupons of that template.
fn check_index(uid: u32, user: &UserCoupons, r: &mut VerifyReport) {
    let mut problem = |text: String| r.problem(format!("coupons: user {uid}: {text}"));
    let by_id: BTreeMap<&str, u32> = user
        .coupons
        .iter()
        .map(|(s, c)| (c.id.as_str(), *s))
        .collect();
    let indexed: BTreeMap<&str, u32> = user.ids.iter().map(|(id, s)| (id.as_str(), *s)).collect();
    if by_id != indexed {
        problem(format!("id index {indexed:?}, coupons {by_id:?}"));
    }
    let mut per_template: BTreeMap<String, u32> = BTreeMap::new();
    for (_, c) in &user.coupons {
        *per_template.entry(c.template.clone()).or_insert(0) += 1;
    }
    let last = user.coupons.iter().map(|(s, _)| *s).max();
    match (&user.head, last) {
        (None, None) => {}
        (None, Some(_)) => problem("coupons without a head".into()),
        (Some(h), last) => {
            if last.is_some_and(|l| l >= h.next_slot) || h.by_template != per_template {
                problem(format!(
                    "head {h:?}; coupons say {per_template:?}, last slot {last:?}"
                ));
            }
        }
    }
}
