//! The coupon operations a transaction id is bound to, and their checks.
//! Owns the payload's shape only; what an operation does is `work`'s.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{check_template_id, in_range, MAX_AMOUNT_MINOR};
use crate::error::{InputError, Problem};

/// One coupon operation: the payload a transaction id is bound to (the
/// operation's time is not part of it, so a retry stamped later is still a
/// replay).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum CouponOp {
    /// Issues a coupon of `template` (stock and per-user limit checked).
    Issue {
        /// The template's id.
        template: String,
    },
    /// Reserves an available coupon for `timeout_ms`.
    Hold {
        /// The coupon's id.
        coupon: String,
        /// 1..=[`crate::ledger::MAX_HOLD_TIMEOUT_MS`].
        timeout_ms: i64,
    },
    /// Uses an available or held coupon on an order of `order_minor`.
    Redeem {
        /// The coupon's id.
        coupon: String,
        /// The order's amount, 0..=[`MAX_AMOUNT_MINOR`].
        order_minor: i64,
    },
    /// Makes a held coupon available again.
    Release {
        /// The coupon's id.
        coupon: String,
    },
    /// Gives a redeemed coupon back (a refund): available again while
    /// valid, expired when its expiry has passed.
    Reverse {
        /// The coupon's id.
        coupon: String,
    },
    /// A [`CouponOp::Redeem`] that describes the order, so that a template
    /// limited to some kinds or properties (docs/coupons.md#eligibility)
    /// can check it; for other templates the same as `Redeem`.
    RedeemOrder {
        /// The coupon's id.
        coupon: String,
        /// The order's amount, 0..=[`MAX_AMOUNT_MINOR`].
        order_minor: i64,
        /// The order's event kind (`purchase`).
        kind: String,
        /// The order's string properties (`category` → `shoes`).
        properties: BTreeMap<String, String>,
    },
}

impl CouponOp {
    /// The operation's name, as in errors and the CLI.
    pub fn name(&self) -> &'static str {
        match self {
            CouponOp::Issue { .. } => "issue",
            CouponOp::Hold { .. } => "hold",
            CouponOp::Redeem { .. } | CouponOp::RedeemOrder { .. } => "redeem",
            CouponOp::Release { .. } => "release",
            CouponOp::Reverse { .. } => "reverse",
        }
    }

    /// Checks ids and amounts.
    pub(crate) fn validate(&self) -> Result<(), InputError> {
        match self {
            CouponOp::Issue { template } => check_template_id(template),
            CouponOp::Hold { coupon, timeout_ms } => {
                check_coupon_id(coupon)?;
                in_range(
                    "timeout_ms",
                    *timeout_ms,
                    1,
                    crate::ledger::MAX_HOLD_TIMEOUT_MS,
                )
            }
            CouponOp::Redeem {
                coupon,
                order_minor,
            } => {
                check_coupon_id(coupon)?;
                in_range("order_minor", *order_minor, 0, MAX_AMOUNT_MINOR)
            }
            CouponOp::Release { coupon } | CouponOp::Reverse { coupon } => check_coupon_id(coupon),
            CouponOp::RedeemOrder {
                coupon,
                order_minor,
                kind,
                properties,
            } => {
                check_coupon_id(coupon)?;
                in_range("order_minor", *order_minor, 0, MAX_AMOUNT_MINOR)?;
                super::eligible::validate_order(kind, properties)
            }
        }
    }

    /// A redeem of `coupon` on the order `event` records (its kind, amount
    /// and string properties): what a checkout that records the purchase
    /// in the same transaction passes.
    ///
    /// ```
    /// use stickydb::{CouponOp, Event, PropValue};
    /// let order = Event::new("ann", "purchase", 0)
    ///     .with_amount(12_000)
    ///     .with_property("category", PropValue::Str("shoes".into()));
    /// let op = CouponOp::redeem_for("SHOES-1", &order);
    /// assert!(matches!(op, CouponOp::RedeemOrder { order_minor: 12_000, .. }));
    /// ```
    pub fn redeem_for(coupon: &str, event: &crate::timeline::Event) -> Self {
        let properties = event
            .properties
            .iter()
            .filter_map(|(k, v)| match v {
                crate::timeline::PropValue::Str(s) => Some((k.clone(), s.clone())),
                _ => None,
            })
            .collect();
        CouponOp::RedeemOrder {
            coupon: coupon.to_owned(),
            order_minor: event.amount_minor.unwrap_or(0),
            kind: event.kind.as_str().to_owned(),
            properties,
        }
    }
}

/// Checks a coupon id's shape: `TEMPLATE-N`.
fn check_coupon_id(id: &str) -> Result<(), InputError> {
    let ok = id.rsplit_once('-').is_some_and(|(t, n)| {
        check_template_id(t).is_ok() && !n.is_empty() && n.chars().all(|c| c.is_ascii_digit())
    });
    if ok {
        Ok(())
    } else {
        Err(InputError::new(
            "coupon",
            Problem::Unparsable {
                reason: "a coupon id is TEMPLATE-N".into(),
            },
        ))
    }
}
