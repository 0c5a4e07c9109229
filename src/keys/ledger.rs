//! Key layouts of the `ledger` and `ledger_due` column families (see
//! docs/architecture.md). Every `ledger` key starts with the user, then a
//! one-byte tag naming the record family, so one prefix scan reads a user's
//! whole ledger and a tag range reads one family in order. The tier sets
//! live in the `metrics` column family ([`super::metrics::tier_users`]).

use super::{day_asc, day_from_asc, ts_asc, ts_desc, ts_from_asc, ts_from_desc, user, USER_BYTES};

/// `user | 1` → the account.
pub const ACCOUNT: u8 = 1;
/// `user | 2 | ts_desc(at) | !seq` → an entry: history newest first.
pub const ENTRY: u8 = 2;
/// `user | 3 | seq` → a lot.
pub const LOT: u8 = 3;
/// `user | 4 | ts_asc(expires or MAX) | seq` → empty: open lots in drawing order.
pub const OPEN_LOT: u8 = 4;
/// `user | 5 | seq` → an open hold.
pub const HOLD: u8 = 5;
/// `user | 6 | txn_id` → transaction record.
pub const TXN: u8 = 6;
/// `user | 7 | day_asc` → points earned that local day (growth).
pub const GROWTH: u8 = 7;
/// `user | 8 | ts_desc(at) | !seq` → a tier change.
pub const TIER: u8 = 8;
/// `user | 9 | seq` → id of the transaction that reversed entry `seq`.
pub const REVERSED: u8 = 9;
/// `user | 10 | day_asc | rule u16` → points the rule credited that day.
pub const CAP: u8 = 10;
/// `user | 11 | slot` → a coupon the user holds (slots count up per user).
pub const COUPON: u8 = 11;
/// `user | 12 | txn_id` → a coupon operation's record (its own id space).
pub const COUPON_TXN: u8 = 12;
/// `user | 13 | coupon id` → the coupon's slot (an operation naming a
/// coupon reads one key, not the user's every coupon).
pub const COUPON_ID: u8 = 13;
/// `user | 14` → the user's coupon head: its next slot and how many
/// coupons of each template it holds (an issue reads one key).
pub const COUPON_HEAD: u8 = 14;
/// `user | 15 | day_asc` → growth value that local day, per growth rule
/// (`ledger::growth`; derived from the user's events).
pub const GROWTH_VALUE: u8 = 15;
/// `user | 16 | reward u16 | campaign` → which event holds a first-order
/// (reward 1) or campaign (reward 2) reward, and the credits paid for it.
pub const FIRST_REWARD: u8 = 16;
/// `user | 17` → the user's sign-in days and the streak credits paid.
pub const STREAK: u8 = 17;

/// `ledger_due`: `1 | ts_asc(expires) | user | lot` for open lots with an expiry.
pub const DUE_LOT: u8 = 1;
/// `ledger_due`: `2 | ts_asc(deadline) | user | hold seq` for open holds.
pub const DUE_HOLD: u8 = 2;
/// `ledger_due`: `3 | ts_asc(review_at) | user | 0` for scheduled tier reviews.
pub const DUE_REVIEW: u8 = 3;
/// `ledger_due`: `4 | ts_asc(due) | user | coupon slot` for coupons that
/// expire or whose hold times out (the earlier of the two).
pub const DUE_COUPON: u8 = 4;

/// Width of a `ledger_due` key.
pub const DUE_KEY_BYTES: usize = 1 + 8 + USER_BYTES + 4;

/// Every key layout of the `ledger` column family, decoded.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum LedgerKey {
    /// The account.
    Account {
        /// Internal user id.
        user_id: u32,
    },
    /// An entry.
    Entry {
        /// Internal user id.
        user_id: u32,
        /// The entry's time.
        at_ms: i64,
        /// Its sequence number.
        seq: u32,
    },
    /// A lot, by its earning entry's sequence number.
    Lot {
        /// Internal user id.
        user_id: u32,
        /// Lot id.
        lot: u32,
    },
    /// An open-lot index entry.
    OpenLot {
        /// Internal user id.
        user_id: u32,
        /// Expiry (`None`: never; sorts after every dated lot).
        expires_at_ms: Option<i64>,
        /// Lot id.
        lot: u32,
    },
    /// An open hold.
    Hold {
        /// Internal user id.
        user_id: u32,
        /// The hold's entry sequence number.
        seq: u32,
    },
    /// A transaction record.
    Txn {
        /// Internal user id.
        user_id: u32,
        /// The transaction id.
        txn_id: String,
    },
    /// Points earned on a local day.
    Growth {
        /// Internal user id.
        user_id: u32,
        /// Local day.
        day: i32,
    },
    /// A tier change.
    Tier {
        /// Internal user id.
        user_id: u32,
        /// When.
        at_ms: i64,
        /// Its sequence number.
        seq: u32,
    },
    /// The reversal mark of an entry.
    Reversed {
        /// Internal user id.
        user_id: u32,
        /// The reversed entry.
        seq: u32,
    },
    /// A coupon.
    Coupon {
        /// Internal user id.
        user_id: u32,
        /// Its slot in the user's coupons.
        slot: u32,
    },
    /// The slot of a coupon, by its id.
    CouponId {
        /// Internal user id.
        user_id: u32,
        /// The coupon's id.
        coupon: String,
    },
    /// The user's coupon head.
    CouponHead {
        /// Internal user id.
        user_id: u32,
    },
    /// A coupon operation's record.
    CouponTxn {
        /// Internal user id.
        user_id: u32,
        /// The transaction id.
        txn_id: String,
    },
    /// Growth value (from the growth rules) of a local day.
    GrowthValue {
        /// Internal user id.
        user_id: u32,
        /// Local day.
        day: i32,
    },
    /// The user's sign-in streak state.
    Streak {
        /// Internal user id.
        user_id: u32,
    },
    /// Which event holds a once-per-user reward.
    FirstReward {
        /// Internal user id.
        user_id: u32,
        /// The reward: 1 first order, 2 campaign.
        reward: u16,
        /// The campaign (empty for a first order).
        campaign: String,
    },
    /// A rule's credited points on a local day.
    Cap {
        /// Internal user id.
        user_id: u32,
        /// Local day.
        day: i32,
        /// The rule's index.
        rule: u16,
    },
}

/// Expiry as ordered in keys: a lot without expiry sorts after every dated one.
pub fn expiry_order(expires_at_ms: Option<i64>) -> [u8; 8] {
    ts_asc(expires_at_ms.unwrap_or(i64::MAX))
}

impl LedgerKey {
    /// The key's bytes.
    pub fn encode(&self) -> Vec<u8> {
        match self {
            LedgerKey::Account { user_id } => family(*user_id, ACCOUNT),
            LedgerKey::CouponHead { user_id } => family(*user_id, COUPON_HEAD),
            LedgerKey::Streak { user_id } => family(*user_id, STREAK),
            LedgerKey::CouponId { user_id, coupon } => {
                let mut k = family(*user_id, COUPON_ID);
                k.extend_from_slice(coupon.as_bytes());
                k
            }
            LedgerKey::Entry {
                user_id,
                at_ms,
                seq,
            } => timed(*user_id, ENTRY, *at_ms, *seq),
            LedgerKey::Tier {
                user_id,
                at_ms,
                seq,
            } => timed(*user_id, TIER, *at_ms, *seq),
            LedgerKey::Lot { user_id, lot } => numbered(*user_id, LOT, *lot),
            LedgerKey::Hold { user_id, seq } => numbered(*user_id, HOLD, *seq),
            LedgerKey::Reversed { user_id, seq } => numbered(*user_id, REVERSED, *seq),
            LedgerKey::Coupon { user_id, slot } => numbered(*user_id, COUPON, *slot),
            LedgerKey::OpenLot {
                user_id,
                expires_at_ms,
                lot,
            } => {
                let mut k = family(*user_id, OPEN_LOT);
                k.extend_from_slice(&expiry_order(*expires_at_ms));
                k.extend_from_slice(&lot.to_be_bytes());
                k
            }
            LedgerKey::Txn { user_id, txn_id } => {
                let mut k = family(*user_id, TXN);
                k.extend_from_slice(txn_id.as_bytes());
                k
            }
            LedgerKey::CouponTxn { user_id, txn_id } => {
                let mut k = family(*user_id, COUPON_TXN);
                k.extend_from_slice(txn_id.as_bytes());
                k
            }
            LedgerKey::Growth { user_id, day } => {
                let mut k = family(*user_id, GROWTH);
                k.extend_from_slice(&day_asc(*day));
                k
            }
            LedgerKey::GrowthValue { user_id, day } => {
                let mut k = family(*user_id, GROWTH_VALUE);
                k.extend_from_slice(&day_asc(*day));
                k
            }
            LedgerKey::FirstReward {
                user_id,
                reward,
                campaign,
            } => {
                let mut k = family(*user_id, FIRST_REWARD);
                k.extend_from_slice(&reward.to_be_bytes());
                k.extend_from_slice(campaign.as_bytes());
                k
            }
            LedgerKey::Cap { user_id, day, rule } => {
                let mut k = family(*user_id, CAP);
                k.extend_from_slice(&day_asc(*day));
                k.extend_from_slice(&rule.to_be_bytes());
                k
            }
        }
    }

    /// Decodes any key of the `ledger` column family; `None` for bytes no
    /// layout produces.
    pub fn parse(key: &[u8]) -> Option<Self> {
        let user_id = u32::from_be_bytes(key.get(..USER_BYTES)?.try_into().ok()?);
        let tag = *key.get(USER_BYTES)?;
        let body = &key[USER_BYTES + 1..];
        let b4 = |at: usize| -> Option<[u8; 4]> { body.get(at..at + 4)?.try_into().ok() };
        let b8 = |at: usize| -> Option<[u8; 8]> { body.get(at..at + 8)?.try_into().ok() };
        let len = |n: usize| (body.len() == n).then_some(());
        Some(match tag {
            ACCOUNT => {
                len(0)?;
                LedgerKey::Account { user_id }
            }
            COUPON_HEAD => {
                len(0)?;
                LedgerKey::CouponHead { user_id }
            }
            STREAK => {
                len(0)?;
                LedgerKey::Streak { user_id }
            }
            COUPON_ID => LedgerKey::CouponId {
                user_id,
                coupon: std::str::from_utf8(body).ok()?.to_owned(),
            },
            ENTRY | TIER => {
                len(12)?;
                let at_ms = ts_from_desc(b8(0)?);
                let seq = !u32::from_be_bytes(b4(8)?);
                if tag == ENTRY {
                    LedgerKey::Entry {
                        user_id,
                        at_ms,
                        seq,
                    }
                } else {
                    LedgerKey::Tier {
                        user_id,
                        at_ms,
                        seq,
                    }
                }
            }
            LOT | HOLD | REVERSED | COUPON => {
                len(4)?;
                let n = u32::from_be_bytes(b4(0)?);
                match tag {
                    LOT => LedgerKey::Lot { user_id, lot: n },
                    HOLD => LedgerKey::Hold { user_id, seq: n },
                    COUPON => LedgerKey::Coupon { user_id, slot: n },
                    _ => LedgerKey::Reversed { user_id, seq: n },
                }
            }
            OPEN_LOT => {
                len(12)?;
                let exp = ts_from_asc(b8(0)?);
                LedgerKey::OpenLot {
                    user_id,
                    expires_at_ms: (exp != i64::MAX).then_some(exp),
                    lot: u32::from_be_bytes(b4(8)?),
                }
            }
            TXN => LedgerKey::Txn {
                user_id,
                txn_id: std::str::from_utf8(body).ok()?.to_owned(),
            },
            COUPON_TXN => LedgerKey::CouponTxn {
                user_id,
                txn_id: std::str::from_utf8(body).ok()?.to_owned(),
            },
            GROWTH => {
                len(4)?;
                LedgerKey::Growth {
                    user_id,
                    day: day_from_asc(b4(0)?),
                }
            }
            FIRST_REWARD => LedgerKey::FirstReward {
                user_id,
                reward: u16::from_be_bytes(body.get(..2)?.try_into().ok()?),
                campaign: std::str::from_utf8(body.get(2..)?).ok()?.to_owned(),
            },
            GROWTH_VALUE => {
                len(4)?;
                LedgerKey::GrowthValue {
                    user_id,
                    day: day_from_asc(b4(0)?),
                }
            }
            CAP => {
                len(6)?;
                LedgerKey::Cap {
                    user_id,
                    day: day_from_asc(b4(0)?),
                    rule: u16::from_be_bytes(body.get(4..6)?.try_into().ok()?),
                }
            }
            _ => return None,
        })
    }
}

/// `user | tag`: the start of one record family of one user.
pub fn family(user_id: u32, tag: u8) -> Vec<u8> {
    let mut k = Vec::with_capacity(USER_BYTES + 1 + 16);
    k.extend_from_slice(&user(user_id));
    k.push(tag);
    k
}

/// Key of a user's account.
pub fn account(user_id: u32) -> Vec<u8> {
    family(user_id, ACCOUNT)
}

/// Key of an entry (or, with [`TIER`], a tier change).
pub fn timed(user_id: u32, tag: u8, at_ms: i64, seq: u32) -> Vec<u8> {
    let mut k = family(user_id, tag);
    k.extend_from_slice(&ts_desc(at_ms));
    k.extend_from_slice(&(!seq).to_be_bytes());
    k
}

/// Key of a record numbered by sequence ([`LOT`], [`HOLD`], [`REVERSED`],
/// [`COUPON`]).
pub fn numbered(user_id: u32, tag: u8, seq: u32) -> Vec<u8> {
    let mut k = family(user_id, tag);
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

/// Key of an open-lot index entry.
pub fn open_lot(user_id: u32, expires_at_ms: Option<i64>, lot: u32) -> Vec<u8> {
    LedgerKey::OpenLot {
        user_id,
        expires_at_ms,
        lot,
    }
    .encode()
}

/// `(expiry order, lot id)` at the end of an open-lot key.
pub fn open_lot_id(key: &[u8]) -> Option<(i64, u32)> {
    let rest = key.get(USER_BYTES + 1..)?;
    let exp: [u8; 8] = rest.get(..8)?.try_into().ok()?;
    let id: [u8; 4] = rest.get(8..12)?.try_into().ok()?;
    if rest.len() != 12 {
        return None;
    }
    Some((ts_from_asc(exp), u32::from_be_bytes(id)))
}

/// Key of a transaction record.
pub fn txn(user_id: u32, txn_id: &str) -> Vec<u8> {
    LedgerKey::Txn {
        user_id,
        txn_id: txn_id.to_owned(),
    }
    .encode()
}

/// Key of the slot of `user_id`'s coupon `coupon`.
pub fn coupon_id(user_id: u32, coupon: &str) -> Vec<u8> {
    LedgerKey::CouponId {
        user_id,
        coupon: coupon.to_owned(),
    }
    .encode()
}

/// Key of a coupon operation's record.
pub fn coupon_txn(user_id: u32, txn_id: &str) -> Vec<u8> {
    LedgerKey::CouponTxn {
        user_id,
        txn_id: txn_id.to_owned(),
    }
    .encode()
}

/// Key of a growth day.
pub fn growth(user_id: u32, day: i32) -> Vec<u8> {
    LedgerKey::Growth { user_id, day }.encode()
}

/// Key of a growth-value day.
pub fn growth_value(user_id: u32, day: i32) -> Vec<u8> {
    LedgerKey::GrowthValue { user_id, day }.encode()
}

/// Key of a once-per-user reward's holder.
pub fn first_reward(user_id: u32, reward: u16, campaign: &str) -> Vec<u8> {
    LedgerKey::FirstReward {
        user_id,
        reward,
        campaign: campaign.to_owned(),
    }
    .encode()
}

/// Key of a rule's daily credit counter.
pub fn cap(user_id: u32, day: i32, rule: u16) -> Vec<u8> {
    LedgerKey::Cap { user_id, day, rule }.encode()
}

/// Key of a `ledger_due` entry.
pub fn due(tag: u8, at_ms: i64, user_id: u32, seq: u32) -> [u8; DUE_KEY_BYTES] {
    let mut k = [0u8; DUE_KEY_BYTES];
    k[0] = tag;
    k[1..9].copy_from_slice(&ts_asc(at_ms));
    k[9..13].copy_from_slice(&user(user_id));
    k[13..].copy_from_slice(&seq.to_be_bytes());
    k
}

/// Decodes a `ledger_due` key into `(tag, due time, user, seq)`.
pub fn parse_due(key: &[u8]) -> Option<(u8, i64, u32, u32)> {
    let k: &[u8; DUE_KEY_BYTES] = key.try_into().ok()?;
    if !matches!(k[0], DUE_LOT | DUE_HOLD | DUE_REVIEW | DUE_COUPON) {
        return None;
    }
    Some((
        k[0],
        ts_from_asc(k[1..9].try_into().ok()?),
        u32::from_be_bytes(k[9..13].try_into().ok()?),
        u32::from_be_bytes(k[13..].try_into().ok()?),
    ))
}

/// The user of a `ledger_due` key.
pub fn due_user(key: &[u8]) -> Option<u32> {
    parse_due(key).map(|(_, _, u, _)| u)
}
