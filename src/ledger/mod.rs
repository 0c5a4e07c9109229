//! Loyalty-point ledger (SPEC §4): one points account per user, append-only
//! entries, lots with expiry, two-phase holds, idempotent transactions,
//! rule-earned credits and tiers; and the user's coupons (`coupons`,
//! docs/coupons.md).
//!
//! Owns the `ledger` column family (per-user account, entries, lots, holds,
//! transaction records, growth per day, tier changes), the `ledger_due`
//! column family (what falls due by time: lot expiries, hold timeouts, tier
//! reviews) and the tier user sets in the `metrics` cf. Every operation is
//! one WriteBatch built in a session (a working copy) and written only when the
//! whole operation succeeded, so a refused operation changes nothing. Must
//! not touch events, profiles or metric aggregates other than the tier sets.
//!
//! The rules, with examples, are in `docs/ledger.md`.

pub(crate) mod account_value;
pub(crate) mod coupons;
mod expire;
pub(crate) mod growth;
pub(crate) mod read;
pub(crate) mod rules;
pub(crate) mod session;
mod transfer;

use serde::{Deserialize, Serialize};

pub use coupons::{
    Coupon, CouponError, CouponKind, CouponOp, CouponOutcome, CouponState, CouponStats,
    CouponTemplate, GiftPack, GIFT_TXN_PREFIX, MAX_AMOUNT_MINOR, MAX_COUPONS_PER_USER,
    MAX_ELIGIBLE_KINDS, MAX_ELIGIBLE_PROPS, MAX_ELIGIBLE_TEXT_BYTES, MAX_GIFT_TEMPLATES, MAX_STOCK,
    MAX_TEMPLATES, MAX_TEMPLATE_ID_BYTES, MAX_VALID_DAYS,
};
pub(crate) use expire::{due_accounts_page, lots_expiring_page, DueCursor};
pub use growth::{
    GrowthBalance, GrowthRule, GrowthSettings, GrowthValue, TierBasis, ANY_ACTIVITY,
    MAX_GROWTH_RULES,
};
pub use read::MAX_HISTORY_LIMIT;
pub(crate) use read::{erase, rebuild_tier_sets};
pub use rules::{
    EarnRule, LedgerSettings, RulePoints, TierLevel, Tiers, MAX_RULES, MAX_RULE_EXPIRY_DAYS,
    MAX_TIERS, MAX_TIER_NAME_BYTES, MAX_TIER_WINDOW_DAYS,
};
pub use session::MAX_LOTS_PER_DRAW;
pub(crate) use transfer::{plan_transfer, Outgoing, TransferPlan, TransferReport};

use crate::error::{InputError, Problem};

/// Largest amount of points one operation may move.
pub const MAX_POINTS: i64 = 1_000_000_000_000;

/// Largest balance an account may reach.
pub const MAX_BALANCE: i64 = 1_000_000_000_000_000;

/// Longest transaction id, in bytes.
pub const MAX_TXN_ID_BYTES: usize = 128;

/// Longest reason text, in bytes.
pub const MAX_REASON_BYTES: usize = 256;

/// Longest hold timeout: 30 days.
pub const MAX_HOLD_TIMEOUT_MS: i64 = 30 * crate::time::DAY_MS;

/// Transaction ids of rule-earned credits start with this; callers may not
/// use it. A rule credit's id is `event:<seq>`, `seq` being the per-user
/// sequence number of the event that earned it.
pub const RULE_TXN_PREFIX: &str = "event:";

pub use crate::kinds::{
    BIRTHDAY_KIND_PREFIX, CAMPAIGN_KIND, CAMPAIGN_PROPERTY, FIRST_ORDER_KIND, REFERRAL_KIND,
    SIGN_IN_STREAK_KIND_PREFIX,
};
pub use session::birthday::MAX_BIRTHDAY_WINDOW_DAYS;
pub use session::rewards::MAX_CAMPAIGN_BYTES;
pub use session::streak::MAX_STREAK_DAYS;

/// One points operation. The payload a transaction id is bound to: a replay
/// must carry an equal `PointsOp` (the operation's time is not part of it, so
/// a retry stamped later is still a replay).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PointsOp {
    /// Credits `points` as a new lot, expiring at `expires_at_ms` (never
    /// when `None`).
    Earn {
        /// Points credited, 1..=[`MAX_POINTS`].
        points: i64,
        /// When the lot expires; must be after the operation's time (checked
        /// after the replay lookup).
        expires_at_ms: Option<i64>,
        /// Why, for the history.
        reason: String,
    },
    /// Debits `points` from unexpired, unheld lots, soonest-expiring first.
    Redeem {
        /// Points debited, 1..=[`MAX_POINTS`].
        points: i64,
        /// Why, for the history.
        reason: String,
    },
    /// Reserves `points` (drawn like a redeem) until captured, released or
    /// timed out `timeout_ms` after the operation's time.
    Hold {
        /// Points reserved, 1..=[`MAX_POINTS`].
        points: i64,
        /// 1..=[`MAX_HOLD_TIMEOUT_MS`].
        timeout_ms: i64,
    },
    /// Debits the points of an open hold, before its deadline.
    Capture {
        /// The hold's transaction id.
        hold_txn: String,
    },
    /// Returns the points of an open hold to the lots they came from.
    Release {
        /// The hold's transaction id.
        hold_txn: String,
    },
    /// Corrects the balance: a credit (a lot that never expires) or a debit
    /// (drawn like a redeem).
    Adjust {
        /// Non-zero, |points| ≤ [`MAX_POINTS`].
        points: i64,
        /// Why, for the history (required).
        reason: String,
    },
    /// Undoes an earn, a redeem or a capture by a correcting entry.
    Reverse {
        /// The transaction to undo.
        txn: String,
    },
}

impl PointsOp {
    /// An earn without expiry.
    pub fn earn(points: i64, reason: impl Into<String>) -> Self {
        PointsOp::Earn {
            points,
            expires_at_ms: None,
            reason: reason.into(),
        }
    }

    /// A redeem.
    pub fn redeem(points: i64, reason: impl Into<String>) -> Self {
        PointsOp::Redeem {
            points,
            reason: reason.into(),
        }
    }

    /// The operation's name, as in errors and the CLI.
    pub fn name(&self) -> &'static str {
        match self {
            PointsOp::Earn { .. } => "earn",
            PointsOp::Redeem { .. } => "redeem",
            PointsOp::Hold { .. } => "hold",
            PointsOp::Capture { .. } => "capture",
            PointsOp::Release { .. } => "release",
            PointsOp::Adjust { .. } => "adjust",
            PointsOp::Reverse { .. } => "reverse",
        }
    }

    /// Checks amounts and texts. What depends on the operation's time (an
    /// earn's expiry must follow it) is checked after the replay lookup, so
    /// that a retry stamped later still answers from its record.
    pub(crate) fn validate(&self) -> Result<(), InputError> {
        let points_in = |field: &'static str, p: i64, min: i64| {
            if (min..=MAX_POINTS).contains(&p) {
                Ok(())
            } else {
                Err(InputError::new(
                    field,
                    Problem::OutOfRange {
                        value: p,
                        min,
                        max: MAX_POINTS,
                    },
                ))
            }
        };
        let text = |field: &'static str, t: &str, required: bool| {
            if t.is_empty() && !required {
                return Ok(());
            }
            crate::users::check_name(t, MAX_REASON_BYTES).map_err(|p| InputError::new(field, p))
        };
        match self {
            PointsOp::Earn {
                points,
                expires_at_ms,
                reason,
            } => {
                points_in("points", *points, 1)?;
                text("reason", reason, false)?;
                if let Some(e) = expires_at_ms {
                    crate::time::check_ts(*e).map_err(|p| InputError::new("expires_at_ms", p))?;
                }
                Ok(())
            }
            PointsOp::Redeem { points, reason } => {
                points_in("points", *points, 1)?;
                text("reason", reason, false)
            }
            PointsOp::Hold { points, timeout_ms } => {
                points_in("points", *points, 1)?;
                if !(1..=MAX_HOLD_TIMEOUT_MS).contains(timeout_ms) {
                    return Err(InputError::new(
                        "timeout_ms",
                        Problem::OutOfRange {
                            value: *timeout_ms,
                            min: 1,
                            max: MAX_HOLD_TIMEOUT_MS,
                        },
                    ));
                }
                Ok(())
            }
            PointsOp::Capture { hold_txn } | PointsOp::Release { hold_txn } => {
                check_txn_ref("hold_txn", hold_txn)
            }
            PointsOp::Adjust { points, reason } => {
                if *points == 0 || points.unsigned_abs() > MAX_POINTS as u64 {
                    return Err(InputError::new(
                        "points",
                        Problem::OutOfRange {
                            value: *points,
                            min: -MAX_POINTS,
                            max: MAX_POINTS,
                        },
                    ));
                }
                text("reason", reason, true)
            }
            PointsOp::Reverse { txn } => check_txn_ref("txn", txn),
        }
    }
}

/// An earn's expiry must follow the operation's time.
pub(crate) fn check_expiry_follows(op: &PointsOp, at_ms: i64) -> Result<(), InputError> {
    match op {
        PointsOp::Earn {
            expires_at_ms: Some(e),
            ..
        } if *e <= at_ms => Err(InputError::new(
            "expires_at_ms",
            Problem::OutOfRange {
                value: *e,
                min: at_ms.saturating_add(1),
                max: crate::time::MAX_TS_MS,
            },
        )),
        _ => Ok(()),
    }
}

/// Checks a caller-chosen transaction id: 1..=128 bytes, no control
/// characters, not in the reserved rule-credit space.
pub fn check_txn_id(txn_id: &str) -> Result<(), InputError> {
    crate::users::check_name(txn_id, MAX_TXN_ID_BYTES).map_err(|p| InputError::new("txn_id", p))?;
    if txn_id.starts_with(RULE_TXN_PREFIX) {
        return Err(InputError::new(
            "txn_id",
            Problem::Unparsable {
                reason: format!(
                    "ids starting with {RULE_TXN_PREFIX:?} are reserved for rule credits"
                ),
            },
        ));
    }
    Ok(())
}

/// A reference to an earlier transaction may name a rule credit.
fn check_txn_ref(field: &'static str, txn: &str) -> Result<(), InputError> {
    crate::users::check_name(txn, MAX_TXN_ID_BYTES).map_err(|p| InputError::new(field, p))
}

/// What an operation did. A replay returns the stored outcome of the first
/// call with `replayed` set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct PointsOutcome {
    /// The operation's transaction id.
    pub txn_id: String,
    /// Sequence number of the operation's entry.
    pub entry_seq: u32,
    /// The entry's time.
    pub at_ms: i64,
    /// Net change of the balance by this operation (immediate expiries included).
    pub amount: i64,
    /// Balance after the operation.
    pub balance: i64,
    /// Balance minus held points after the operation.
    pub available: i64,
    /// The lots the operation moved points of, with the signed amount per lot
    /// (for a hold, capture or release: the points reserved or let go).
    pub lots: Vec<LotDraw>,
    /// Points a reversal could not take back or restore (docs/ledger.md).
    pub shortfall: i64,
    /// Points that expired at once because they were returned to a lot past
    /// its expiry.
    pub expired: i64,
    /// Whether this is the stored outcome of an earlier call.
    pub replayed: bool,
}

/// Points moved from or to one lot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LotDraw {
    /// The lot (its earning entry's sequence number).
    pub lot: u32,
    /// Points moved.
    pub points: i64,
}

/// What one entry did to one lot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LotMove {
    /// The lot.
    pub lot: u32,
    /// Change of its spendable (unheld) points.
    pub remaining_delta: i64,
    /// Change of its held points.
    pub held_delta: i64,
}

/// What kind of entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EntryKind {
    /// Points credited as a new lot.
    Earn,
    /// Points debited.
    Redeem,
    /// Points reserved.
    Hold,
    /// Held points debited.
    Capture,
    /// Held points returned by the caller.
    Release,
    /// Held points returned because the hold timed out.
    HoldTimeout,
    /// A lot's points expired.
    Expire,
    /// A correction.
    Adjust,
    /// An earn, redeem or capture undone.
    Reverse,
    /// Points moved in from a merged user's lot (identity merge): a new lot
    /// with the old lot's earn time (the entry's time) and expiry.
    Transfer,
}

impl EntryKind {
    /// The kind's name.
    pub fn name(self) -> &'static str {
        match self {
            EntryKind::Earn => "earn",
            EntryKind::Redeem => "redeem",
            EntryKind::Hold => "hold",
            EntryKind::Capture => "capture",
            EntryKind::Release => "release",
            EntryKind::HoldTimeout => "hold_timeout",
            EntryKind::Expire => "expire",
            EntryKind::Adjust => "adjust",
            EntryKind::Reverse => "reverse",
            EntryKind::Transfer => "transfer",
        }
    }
}

/// One immutable ledger entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerEntry {
    /// Per-account sequence number (order of posting).
    pub seq: u32,
    /// The entry's time.
    pub at_ms: i64,
    /// What it was.
    pub kind: EntryKind,
    /// The transaction that wrote it (`None` for expiries and timeouts).
    pub txn_id: Option<String>,
    /// Change of the balance.
    pub amount: i64,
    /// Change of the held points.
    pub held_delta: i64,
    /// Every lot it moved points of.
    pub lots: Vec<LotMove>,
    /// Points of the lot it created (its id is `seq`), if any.
    pub new_lot: Option<NewLot>,
    /// Why (earn, redeem, adjust).
    pub reason: Option<String>,
    /// The hold a capture/release/timeout resolved, the entry a reversal
    /// undid, or the lot an expiry emptied.
    pub related: Option<u32>,
    /// The earning rule (index in the settings) of a rule credit.
    pub rule: Option<u16>,
    /// A hold's deadline.
    pub deadline_ms: Option<i64>,
    /// Balance after the entry.
    pub balance_after: i64,
}

/// A lot created by an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewLot {
    /// Points credited.
    pub points: i64,
    /// When they expire.
    pub expires_at_ms: Option<i64>,
}

/// One lot of earned points.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lot {
    /// The lot's id: its earning entry's sequence number.
    pub id: u32,
    /// When it was earned.
    pub earned_at_ms: i64,
    /// Points credited.
    pub earned: i64,
    /// Points still spendable (unheld).
    pub remaining: i64,
    /// Points reserved by open holds.
    pub held: i64,
    /// When it expires (`None`: never).
    pub expires_at_ms: Option<i64>,
}

impl Lot {
    /// Whether the lot still holds points.
    pub fn is_open(&self) -> bool {
        self.remaining + self.held > 0
    }
}

/// An open hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hold {
    /// The hold's entry sequence number.
    pub seq: u32,
    /// Its transaction id.
    pub txn_id: String,
    /// Points reserved.
    pub points: i64,
    /// Which lots they were drawn from.
    pub draws: Vec<LotDraw>,
    /// When it times out.
    pub deadline_ms: i64,
}

/// A user's points account.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Account {
    /// Sum of every entry's amount.
    pub balance: i64,
    /// Points reserved by open holds.
    pub held: i64,
    /// The latest time the account has seen (operations, expiry runs).
    pub clock_ms: i64,
    /// Sequence number of the next entry.
    pub next_seq: u32,
    /// The current tier, if tiers are configured and one is reached.
    pub tier: Option<String>,
    /// When the tier must next be re-evaluated (growth leaving the window).
    pub review_at_ms: Option<i64>,
}

impl Account {
    /// Balance minus held points: what redeems and holds may draw from
    /// (before expiries).
    pub fn available(&self) -> i64 {
        self.balance - self.held
    }
}

/// A recorded tier change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TierChange {
    /// When it happened.
    pub at_ms: i64,
    /// The tier before.
    pub from: Option<String>,
    /// The tier after.
    pub to: Option<String>,
    /// The growth value that decided it.
    pub growth: i64,
}

/// What one `expire_points` run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ExpireReport {
    /// Accounts with something due.
    pub accounts: u64,
    /// Lots that expired (fully or in part).
    pub lots_expired: u64,
    /// Points that expired.
    pub points_expired: i64,
    /// Holds released because they timed out.
    pub holds_timed_out: u64,
    /// Tier changes recorded.
    pub tier_changes: u64,
    /// Coupons that expired unused.
    pub coupons_expired: u64,
    /// Coupon holds released because they timed out.
    pub coupon_holds_timed_out: u64,
}

/// The transaction record a replay answers from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct TxnRecord {
    pub op: PointsOp,
    pub outcome: PointsOutcome,
}

/// The stored record of a rule credit: where its entry is. A rule credit is
/// never replayed (its id `event:<seq>:<rule>` is reserved, and the event
/// it came from is deduplicated), so only a reversal looks it up, and the
/// entry holds everything a reversal needs; keeping the whole operation and
/// outcome cost ~60 bytes per credit on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct CreditRecord {
    pub entry_seq: u32,
    pub at_ms: i64,
}

/// The stored shape of a transaction record moved in by an identity merge
/// (docs/identity.md): the merged user's operation and outcome, kept so a
/// retry naming the merged id replays instead of running again. Its entry
/// numbers are the merged account's, not this one's: nothing but a replay
/// reads it. The leading marker can never start a [`TxnRecord`] (no
/// operation has that variant index), so the two shapes never decode as
/// each other.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct MovedTxn {
    pub marker: u32,
    pub record: TxnRecord,
}

/// [`MovedTxn::marker`].
pub(crate) const MOVED_TXN_MARKER: u32 = u32::MAX;

/// A transaction record as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StoredTxn {
    /// A caller's operation: replays answer from it.
    Full(TxnRecord),
    /// A rule credit (stores before format 4 kept these in full too).
    Credit(CreditRecord),
    /// A caller's operation on a merged account: replays only.
    Moved(TxnRecord),
}

impl StoredTxn {
    /// The sequence number of the transaction's entry (`None`: a moved
    /// record, whose entry stayed with the merged account).
    pub fn entry_seq(&self) -> Option<u32> {
        match self {
            StoredTxn::Full(r) => Some(r.outcome.entry_seq),
            StoredTxn::Credit(c) => Some(c.entry_seq),
            StoredTxn::Moved(_) => None,
        }
    }
}

/// Decodes the record of transaction `txn_id` stored under `key`.
pub(crate) fn decode_txn(
    txn_id: &str,
    key: &[u8],
    bytes: &[u8],
) -> crate::error::Result<StoredTxn> {
    if txn_id.starts_with(RULE_TXN_PREFIX) {
        if let Ok(c) = crate::codec::decode::<CreditRecord>(bytes) {
            return Ok(StoredTxn::Credit(c));
        }
    }
    match crate::store::decode_value(crate::store::Cf::Ledger, key, bytes) {
        Ok(r) => Ok(StoredTxn::Full(r)),
        Err(e) => match crate::codec::decode::<MovedTxn>(bytes) {
            Ok(m) if m.marker == MOVED_TXN_MARKER => Ok(StoredTxn::Moved(m.record)),
            _ => Err(e),
        },
    }
}
