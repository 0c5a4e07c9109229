//! Why a coupon operation was refused.

/// Why a coupon operation or template was refused (docs/coupons.md).
/// Nothing was written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CouponError {
    /// No template has this id.
    #[error("unknown coupon template {template:?}")]
    UnknownTemplate {
        /// The id asked for.
        template: String,
    },
    /// A template with this id exists with other terms (templates never
    /// change: a changed offer is a new template).
    #[error("coupon template {template:?} exists with other terms")]
    TemplateConflict {
        /// The id.
        template: String,
    },
    /// Every coupon the template's stock allows was issued.
    #[error("stock: template {template:?} has issued all {stock} of its coupons")]
    OutOfStock {
        /// The template.
        template: String,
        /// Its stock.
        stock: u64,
    },
    /// The user was issued as many of the template's coupons as it allows.
    #[error(
        "per-user limit: {user:?} holds {per_user} coupon(s) of template {template:?} already"
    )]
    PerUserLimit {
        /// The template.
        template: String,
        /// The user.
        user: String,
        /// The template's limit.
        per_user: u32,
    },
    /// The template's validity ended: no more of its coupons are issued.
    #[error("template {template:?} ended at {valid_until_ms} ms")]
    TemplateEnded {
        /// The template.
        template: String,
        /// Its end.
        valid_until_ms: i64,
    },
    /// The user holds no coupon with this id.
    #[error("unknown coupon {coupon:?} for this user")]
    UnknownCoupon {
        /// The id asked for.
        coupon: String,
    },
    /// The coupon expired.
    #[error("expired: coupon {coupon:?} expired at {expired_at_ms} ms")]
    Expired {
        /// The coupon.
        coupon: String,
        /// When it expired.
        expired_at_ms: i64,
    },
    /// The order is below the coupon's threshold.
    #[error("threshold: coupon {coupon:?} needs an order of at least {min_spend_minor}, got {order_minor}")]
    BelowThreshold {
        /// The coupon.
        coupon: String,
        /// Its threshold.
        min_spend_minor: i64,
        /// The order.
        order_minor: i64,
    },
    /// The operation does not apply to the coupon's state (redeeming a
    /// redeemed coupon, releasing one not held, reversing one not
    /// redeemed).
    #[error("coupon {coupon:?} is {state}: cannot {op} it")]
    WrongState {
        /// The coupon.
        coupon: String,
        /// Its state.
        state: &'static str,
        /// The operation refused.
        op: &'static str,
    },
    /// A coupon that does not stack was redeemed with another coupon in
    /// one transaction.
    #[error("coupon {coupon:?} does not stack with the other coupon(s) of this transaction")]
    NotStackable {
        /// The coupon.
        coupon: String,
    },
    /// The order may not use the coupon: its template names the kinds or
    /// properties of the orders it applies to (docs/coupons.md#eligibility),
    /// and this order is not one of them or was not described.
    #[error("eligibility: coupon {coupon:?}: {reason}")]
    NotEligible {
        /// The coupon.
        coupon: String,
        /// Which condition the order failed.
        reason: String,
    },
    /// The transaction id was used before with a different payload.
    #[error("conflict: transaction {txn_id:?} was already used with a different payload")]
    TxnConflict {
        /// The reused id.
        txn_id: String,
    },
}
