//! Coupons (docs/coupons.md): templates as data, coupons held per user in
//! the ledger, every operation idempotent by transaction id like points.
//!
//! Owns the coupon records of the `ledger` column family (`user | 11 |
//! slot` → coupon, `user | 12 | txn` → an operation's record), their
//! `ledger_due` entries (tag 4: a coupon's expiry or its hold's timeout,
//! the earlier) and the templates with their counts in `meta`
//! (`coupon:ID`). Must not touch points accounts, events or aggregates.
//!
//! Every write that changes a template's counts — issuing, redeeming,
//! reversing, expiring, erasing — holds the store's one coupon lock (after
//! the stripes, docs/architecture.md "Lock hierarchy"), so the counts and
//! the stock check are exact under any concurrency.

pub(crate) mod eligible;
pub(crate) mod gift;
mod op;
pub(crate) mod read;
mod user;
pub(crate) mod work;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use crate::error::CouponError;
pub use eligible::{MAX_ELIGIBLE_KINDS, MAX_ELIGIBLE_PROPS, MAX_ELIGIBLE_TEXT_BYTES};
pub use gift::{GiftPack, GIFT_TXN_PREFIX, MAX_GIFT_TEMPLATES};
pub use op::CouponOp;

use crate::error::{InputError, Problem};
use crate::time::DAY_MS;

/// Most templates a store holds.
pub const MAX_TEMPLATES: usize = 1_024;

/// Longest template id, in bytes (`[A-Za-z0-9_.]`, and `-` not last).
pub const MAX_TEMPLATE_ID_BYTES: usize = 64;

/// Most coupons one user may hold (of every state, over its lifetime).
pub const MAX_COUPONS_PER_USER: usize = 4_096;

/// Longest relative validity: ten years.
pub const MAX_VALID_DAYS: u32 = 3_660;

/// Largest stock of one template.
pub const MAX_STOCK: u64 = 1 << 40;

/// Largest amount (order, discount, threshold), in minor units.
pub const MAX_AMOUNT_MINOR: i64 = 1_000_000_000_000;

/// What a coupon takes off (more kinds may come: match with a wildcard).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum CouponKind {
    /// `off_minor` off the order (at most the order).
    Fixed,
    /// `percent` % of the order off, at most `max_off_minor` when set.
    Percent,
    /// `off_minor` off an order of at least `min_spend_minor` (满减).
    Threshold,
    /// Free shipping: nothing off the order itself (`off_minor` 0); the
    /// caller waives the shipping fee.
    FreeShipping,
}

impl CouponKind {
    /// The kind's name, as in templates.
    pub fn name(self) -> &'static str {
        match self {
            CouponKind::Fixed => "fixed",
            CouponKind::Percent => "percent",
            CouponKind::Threshold => "threshold",
            CouponKind::FreeShipping => "free_shipping",
        }
    }
}

/// A coupon template: what its coupons take off, how long they are valid,
/// how many may be issued. Immutable once added (a changed offer is a new
/// template), so a coupon's terms never change under its holder.
///
/// ```
/// use stickydb::CouponTemplate;
/// let t: CouponTemplate = serde_json::from_str(
///     r#"{"id":"T15","kind":"threshold","min_spend_minor":10000,"off_minor":1500,
///         "valid_days":7,"stock":1000,"per_user":1}"#,
/// ).unwrap();
/// assert_eq!(t, CouponTemplate::threshold("T15", 10_000, 1_500)
///     .valid_days(7).stock(1_000).per_user(1));
/// assert!(t.validate().is_ok());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct CouponTemplate {
    /// The template's id; a coupon's id is `ID-N`, N counting its issues.
    pub id: String,
    /// What its coupons take off.
    pub kind: CouponKind,
    /// Amount off (`fixed`, `threshold`).
    #[serde(default)]
    pub off_minor: i64,
    /// Percent off, 1..=100 (`percent`).
    #[serde(default)]
    pub percent: u32,
    /// Most a `percent` coupon takes off (`None`: no cap).
    #[serde(default)]
    pub max_off_minor: Option<i64>,
    /// Least order a coupon applies to (`threshold`: required; others: 0
    /// or a minimum of their own).
    #[serde(default)]
    pub min_spend_minor: i64,
    /// A coupon expires this many days after it is issued.
    #[serde(default)]
    pub valid_days: Option<u32>,
    /// Every coupon expires at this instant at the latest, and none is
    /// issued from it on.
    #[serde(default)]
    pub valid_until_ms: Option<i64>,
    /// Most coupons ever issued (`None`: unlimited).
    #[serde(default)]
    pub stock: Option<u64>,
    /// Most coupons one user may ever be issued (`None`: unlimited).
    #[serde(default)]
    pub per_user: Option<u32>,
    /// Whether it may be redeemed with another coupon in one transaction.
    #[serde(default)]
    pub stackable: bool,
    /// Event kinds an order must be of to use its coupons (empty: any). A
    /// template with eligibility is redeemed with [`CouponOp::RedeemOrder`].
    /// (Stored through `eligible`'s own layouts, so JSON may skip empties.)
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kinds: Vec<String>,
    /// String properties an order must carry with these values
    /// (`{"category":"shoes"}`; JSON `where`).
    #[serde(default, rename = "where", skip_serializing_if = "BTreeMap::is_empty")]
    pub where_props: BTreeMap<String, String>,
}

impl CouponTemplate {
    fn new(id: &str, kind: CouponKind) -> Self {
        Self {
            id: id.to_owned(),
            kind,
            off_minor: 0,
            percent: 0,
            max_off_minor: None,
            min_spend_minor: 0,
            valid_days: None,
            valid_until_ms: None,
            stock: None,
            per_user: None,
            stackable: false,
            kinds: Vec::new(),
            where_props: BTreeMap::new(),
        }
    }

    /// `off_minor` off any order.
    pub fn fixed(id: &str, off_minor: i64) -> Self {
        Self {
            off_minor,
            ..Self::new(id, CouponKind::Fixed)
        }
    }

    /// `percent` % off, at most `max_off_minor`.
    pub fn percent(id: &str, percent: u32, max_off_minor: Option<i64>) -> Self {
        Self {
            percent,
            max_off_minor,
            ..Self::new(id, CouponKind::Percent)
        }
    }

    /// `off_minor` off an order of at least `min_spend_minor`.
    pub fn threshold(id: &str, min_spend_minor: i64, off_minor: i64) -> Self {
        Self {
            min_spend_minor,
            off_minor,
            ..Self::new(id, CouponKind::Threshold)
        }
    }

    /// Free shipping.
    pub fn free_shipping(id: &str) -> Self {
        Self::new(id, CouponKind::FreeShipping)
    }

    /// Valid for `days` days from issue.
    pub fn valid_days(mut self, days: u32) -> Self {
        self.valid_days = Some(days);
        self
    }

    /// Valid until `at_ms` at the latest.
    pub fn valid_until_ms(mut self, at_ms: i64) -> Self {
        self.valid_until_ms = Some(at_ms);
        self
    }

    /// At most `stock` coupons issued.
    pub fn stock(mut self, stock: u64) -> Self {
        self.stock = Some(stock);
        self
    }

    /// At most `n` coupons per user.
    pub fn per_user(mut self, n: u32) -> Self {
        self.per_user = Some(n);
        self
    }

    /// Redeemable with other coupons in one transaction.
    pub fn stackable(mut self, stackable: bool) -> Self {
        self.stackable = stackable;
        self
    }

    /// Only orders of these event kinds may use its coupons.
    pub fn for_kinds<'k>(mut self, kinds: impl IntoIterator<Item = &'k str>) -> Self {
        self.kinds = kinds.into_iter().map(str::to_owned).collect();
        self
    }

    /// Only orders whose string property `name` is `value` may use its
    /// coupons (each call adds a condition).
    pub fn where_prop(mut self, name: &str, value: &str) -> Self {
        self.where_props.insert(name.to_owned(), value.to_owned());
        self
    }

    /// Checks the id, the amounts and the limits; names the field.
    pub fn validate(&self) -> Result<(), InputError> {
        eligible::validate(self)?;
        check_template_id(&self.id)?;
        let amount =
            |field: &'static str, v: i64, min: i64| in_range(field, v, min, MAX_AMOUNT_MINOR);
        let unused = |field: &'static str, used: bool| {
            if used {
                Err(InputError::new(
                    field,
                    Problem::Invalid {
                        reason: format!("a {} coupon has no {field}", self.kind.name()),
                    },
                ))
            } else {
                Ok(())
            }
        };
        amount("min_spend_minor", self.min_spend_minor, 0)?;
        match self.kind {
            CouponKind::Fixed => amount("off_minor", self.off_minor, 1)?,
            CouponKind::Threshold => {
                amount("off_minor", self.off_minor, 1)?;
                // (a threshold coupon never takes off more than the order)
                amount("min_spend_minor", self.min_spend_minor, self.off_minor)?;
            }
            CouponKind::Percent => {
                in_range("percent", i64::from(self.percent), 1, 100)?;
                unused("off_minor", self.off_minor != 0)?;
                if let Some(m) = self.max_off_minor {
                    amount("max_off_minor", m, 1)?;
                }
            }
            CouponKind::FreeShipping => unused("off_minor", self.off_minor != 0)?,
        }
        if self.kind != CouponKind::Percent {
            unused("percent", self.percent != 0)?;
            unused("max_off_minor", self.max_off_minor.is_some())?;
        }
        if let Some(d) = self.valid_days {
            in_range("valid_days", i64::from(d), 1, i64::from(MAX_VALID_DAYS))?;
        }
        if let Some(t) = self.valid_until_ms {
            crate::time::check_ts(t).map_err(|p| InputError::new("valid_until_ms", p))?;
        }
        if let Some(s) = self.stock {
            in_range("stock", s.min(i64::MAX as u64) as i64, 0, MAX_STOCK as i64)?;
        }
        if let Some(n) = self.per_user {
            in_range("per_user", i64::from(n), 1, MAX_COUPONS_PER_USER as i64)?;
        }
        Ok(())
    }

    /// When a coupon issued at `at_ms` expires.
    pub fn expiry_for(&self, at_ms: i64) -> Option<i64> {
        let relative = self
            .valid_days
            .map(|d| at_ms.saturating_add(i64::from(d) * DAY_MS));
        match (relative, self.valid_until_ms) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// What a coupon of this template takes off an order of `order_minor`,
    /// or the threshold it misses.
    pub fn off_for(&self, order_minor: i64) -> Result<i64, i64> {
        if order_minor < self.min_spend_minor {
            return Err(self.min_spend_minor);
        }
        Ok(match self.kind {
            CouponKind::Fixed | CouponKind::Threshold => self.off_minor.min(order_minor),
            CouponKind::Percent => {
                // (rounded down: never more than the percentage)
                let off = (i128::from(order_minor) * i128::from(self.percent) / 100) as i64;
                self.max_off_minor.map_or(off, |m| off.min(m))
            }
            CouponKind::FreeShipping => 0,
        })
    }
}

fn in_range(field: &'static str, value: i64, min: i64, max: i64) -> Result<(), InputError> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(InputError::new(
            field,
            Problem::OutOfRange { value, min, max },
        ))
    }
}

/// Checks a template id: 1..=64 bytes of `[A-Za-z0-9_.-]` (a coupon id
/// `ID-N` is split at its last `-`, so a `-` inside the id is fine).
pub fn check_template_id(id: &str) -> Result<(), InputError> {
    let ok = !id.is_empty()
        && id.len() <= MAX_TEMPLATE_ID_BYTES
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if ok {
        Ok(())
    } else {
        Err(InputError::new(
            "template",
            Problem::Unparsable {
                reason: format!(
                    "a template id is 1..={MAX_TEMPLATE_ID_BYTES} bytes of letters, digits, '_', '.', '-'"
                ),
            },
        ))
    }
}

/// Where a coupon stands (JSON: `"available"`, `{"held":{…}}`, …).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum CouponState {
    /// Issued, usable until it expires.
    Available,
    /// Reserved at a checkout until redeemed, released or timed out.
    Held {
        /// The hold's transaction id.
        txn_id: String,
        /// When the hold times out.
        deadline_ms: i64,
    },
    /// Used.
    Redeemed {
        /// The redeeming transaction.
        txn_id: String,
        /// When.
        at_ms: i64,
        /// The order it was used on.
        order_minor: i64,
        /// What it took off.
        off_minor: i64,
    },
    /// Expired unused.
    Expired {
        /// When (its expiry instant).
        at_ms: i64,
    },
}

impl CouponState {
    /// The state's name, as in errors and the CLI.
    pub fn name(&self) -> &'static str {
        match self {
            CouponState::Available => "available",
            CouponState::Held { .. } => "held",
            CouponState::Redeemed { .. } => "redeemed",
            CouponState::Expired { .. } => "expired",
        }
    }
}

/// One issued coupon.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Coupon {
    /// `TEMPLATE-N`: unique in the store, kept when an identity merge
    /// moves the coupon.
    pub id: String,
    /// Its template.
    pub template: String,
    /// When it was issued.
    pub issued_at_ms: i64,
    /// When it expires (`None`: never).
    pub expires_at_ms: Option<i64>,
    /// Where it stands.
    pub state: CouponState,
    /// The transaction that issued it.
    pub issue_txn: String,
}

impl Coupon {
    /// When the expiry run must next look at it: its expiry, or its hold's
    /// timeout when earlier; `None` once redeemed or expired.
    pub(crate) fn due_ms(&self) -> Option<i64> {
        match &self.state {
            CouponState::Available => self.expires_at_ms,
            CouponState::Held { deadline_ms, .. } => Some(
                self.expires_at_ms
                    .map_or(*deadline_ms, |e| e.min(*deadline_ms)),
            ),
            _ => None,
        }
    }

    /// Whether it has expired at `at_ms` (a coupon is not usable at its
    /// expiry instant, as a lot is not).
    pub fn expired_at(&self, at_ms: i64) -> bool {
        self.expires_at_ms.is_some_and(|e| e <= at_ms)
    }
}

/// What a coupon operation did. A replay returns the stored outcome of the
/// first call with `replayed` set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CouponOutcome {
    /// The operation's transaction id.
    pub txn_id: String,
    /// The coupon.
    pub coupon: String,
    /// Its template.
    pub template: String,
    /// The operation's time.
    pub at_ms: i64,
    /// When the coupon expires.
    pub expires_at_ms: Option<i64>,
    /// Its state after the operation (`available`, `held`, …).
    pub state: String,
    /// What a redeem took off (0 for other operations).
    pub off_minor: i64,
    /// Whether this is the stored outcome of an earlier call.
    pub replayed: bool,
}

/// A template's counts as of the store's clock (an expiry is counted when
/// `advance` reaches it).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CouponStats {
    /// The template.
    pub template: String,
    /// Coupons ever issued.
    pub issued: u64,
    /// Coupons redeemed (a reversed redemption no longer counts).
    pub redeemed: u64,
    /// Coupons expired unused.
    pub expired: u64,
    /// Coupons available or held.
    pub outstanding: u64,
    /// Coupons gone with their erased users.
    pub erased: u64,
    /// Coupons the stock still allows (`None`: unlimited).
    pub stock_left: Option<u64>,
}

/// A template's stored counts (`meta`, `coupon:ID 0 c`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Counts {
    pub issued: u64,
    pub redeemed: u64,
    pub expired: u64,
    pub erased: u64,
}

impl Counts {
    /// What one coupon in `state` adds to the counts besides `issued`.
    pub(crate) fn add_state(&mut self, state: &CouponState, sign: i64) {
        let add = |v: &mut u64| *v = v.saturating_add_signed(sign);
        match state {
            CouponState::Redeemed { .. } => add(&mut self.redeemed),
            CouponState::Expired { .. } => add(&mut self.expired),
            _ => {}
        }
    }

    pub(crate) fn stats(&self, template: &CouponTemplate) -> CouponStats {
        CouponStats {
            template: template.id.clone(),
            issued: self.issued,
            redeemed: self.redeemed,
            expired: self.expired,
            erased: self.erased,
            outstanding: self
                .issued
                .saturating_sub(self.redeemed + self.expired + self.erased),
            stock_left: template.stock.map(|s| s.saturating_sub(self.issued)),
        }
    }
}

/// A user's coupon head (`ledger`, `user | 14`): the slot its next coupon
/// takes, and how many coupons of each template it holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Head {
    pub next_slot: u32,
    pub by_template: std::collections::BTreeMap<String, u32>,
}

/// The record a coupon operation's replay answers from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct CouponTxn {
    pub op: CouponOp,
    pub outcome: CouponOutcome,
}
