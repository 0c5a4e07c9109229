//! Key layouts of the `ledger` and `ledger_due` column families and the tier
//! sets (see docs/architecture.md). Every `ledger` key starts with the user,
//! then a one-byte tag naming the record family, so one prefix scan reads a
//! user's whole ledger and a tag range reads one family in order.

use crate::keys::{day_asc, ts_asc, ts_desc, user, USER_BYTES};
use crate::store::merge::metric_space;

/// `user | 1` → [`super::Account`].
pub const ACCOUNT: u8 = 1;
/// `user | 2 | ts_desc(at) | !seq` → [`super::LedgerEntry`]: history newest first.
pub const ENTRY: u8 = 2;
/// `user | 3 | seq` → [`super::Lot`].
pub const LOT: u8 = 3;
/// `user | 4 | ts_asc(expires or MAX) | seq` → empty: open lots in drawing order.
pub const OPEN_LOT: u8 = 4;
/// `user | 5 | seq` → [`super::Hold`]: open holds.
pub const HOLD: u8 = 5;
/// `user | 6 | txn_id` → transaction record.
pub const TXN: u8 = 6;
/// `user | 7 | day_asc` → points earned that local day (growth).
pub const GROWTH: u8 = 7;
/// `user | 8 | ts_desc(at) | !seq` → [`super::TierChange`].
pub const TIER: u8 = 8;
/// `user | 9 | seq` → id of the transaction that reversed entry `seq`.
pub const REVERSED: u8 = 9;
/// `user | 10 | day_asc | rule u16` → points the rule credited that day.
pub const CAP: u8 = 10;

/// `ledger_due`: `1 | ts_asc(expires) | user | lot` for open lots with an expiry.
pub const DUE_LOT: u8 = 1;
/// `ledger_due`: `2 | ts_asc(deadline) | user | hold seq` for open holds.
pub const DUE_HOLD: u8 = 2;
/// `ledger_due`: `3 | ts_asc(review_at) | user | 0` for scheduled tier reviews.
pub const DUE_REVIEW: u8 = 3;

/// Width of a `ledger_due` key.
pub const DUE_KEY_BYTES: usize = 1 + 8 + USER_BYTES + 4;

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

/// Key of a record numbered by sequence ([`LOT`], [`HOLD`], [`REVERSED`]).
pub fn numbered(user_id: u32, tag: u8, seq: u32) -> Vec<u8> {
    let mut k = family(user_id, tag);
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

/// Expiry as ordered in keys: a lot without expiry sorts after every dated one.
pub fn expiry_order(expires_at_ms: Option<i64>) -> [u8; 8] {
    ts_asc(expires_at_ms.unwrap_or(i64::MAX))
}

/// Key of an open-lot index entry.
pub fn open_lot(user_id: u32, expires_at_ms: Option<i64>, lot: u32) -> Vec<u8> {
    let mut k = family(user_id, OPEN_LOT);
    k.extend_from_slice(&expiry_order(expires_at_ms));
    k.extend_from_slice(&lot.to_be_bytes());
    k
}

/// The lot id at the end of an open-lot key.
pub fn open_lot_id(key: &[u8]) -> Option<(i64, u32)> {
    let rest = key.get(USER_BYTES + 1..)?;
    let exp: [u8; 8] = rest.get(..8)?.try_into().ok()?;
    let id: [u8; 4] = rest.get(8..12)?.try_into().ok()?;
    if rest.len() != 12 {
        return None;
    }
    Some((crate::keys::ts_from_asc(exp), u32::from_be_bytes(id)))
}

/// Key of a transaction record.
pub fn txn(user_id: u32, txn_id: &str) -> Vec<u8> {
    let mut k = family(user_id, TXN);
    k.extend_from_slice(txn_id.as_bytes());
    k
}

/// Key of a growth day.
pub fn growth(user_id: u32, day: i32) -> Vec<u8> {
    let mut k = family(user_id, GROWTH);
    k.extend_from_slice(&day_asc(day));
    k
}

/// Key of a rule's daily credit counter.
pub fn cap(user_id: u32, day: i32, rule: u16) -> Vec<u8> {
    let mut k = family(user_id, CAP);
    k.extend_from_slice(&day_asc(day));
    k.extend_from_slice(&rule.to_be_bytes());
    k
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

/// The user of a `ledger_due` key.
pub fn due_user(key: &[u8]) -> Option<u32> {
    if key.len() != DUE_KEY_BYTES {
        return None;
    }
    let u: [u8; 4] = key[9..13].try_into().ok()?;
    Some(u32::from_be_bytes(u))
}

/// `metrics` key of the set of users in tier `name`.
pub fn tier_set(name: &str) -> Vec<u8> {
    let mut k = vec![metric_space::USER_SET, b'T'];
    k.extend_from_slice(name.as_bytes());
    k
}

/// The first byte after `[USER_SET, 'T']`: every tier set starts with it.
pub fn tier_set_prefix() -> [u8; 2] {
    [metric_space::USER_SET, b'T']
}
