//! `expire(now)`: finds the accounts with something due at or before `now`
//! through the `ledger_due` index (never by scanning accounts); the write
//! path then settles each account in its own atomic write under its stripe
//! lock ([`super::session::Session::expire_account`]). Deterministic for a
//! given `now`: what is due is re-read under the lock from the account
//! itself, and every entry carries the time it fell due, not the time the
//! run happened. A crash between accounts leaves the rest due; re-running
//! settles them and finds the settled ones clean.

use roaring::RoaringBitmap;

use crate::error::{CorruptionError, Result};
use crate::keys::ledger as lk;
use crate::keys::ts_asc;
use crate::store::{Cf, Store};

/// The accounts with an entry in `ledger_due` at or before `now_ms`.
pub(crate) fn due_accounts(store: &Store, now_ms: i64) -> Result<RoaringBitmap> {
    let mut users = RoaringBitmap::new();
    for tag in [lk::DUE_LOT, lk::DUE_HOLD, lk::DUE_REVIEW] {
        let mut until = vec![tag];
        match now_ms.checked_add(1) {
            Some(after) => until.extend_from_slice(&ts_asc(after)),
            None => until = vec![tag + 1],
        }
        for item in store.range(Cf::LedgerDue, &[tag], Some(until))? {
            let (k, _) = item?;
            let u = lk::due_user(&k).ok_or_else(|| CorruptionError {
                cf: Cf::LedgerDue.name(),
                what: "key",
                key: k.to_vec(),
                reason: "due key does not decode".into(),
            })?;
            users.insert(u);
        }
    }
    Ok(users)
}

/// `(user, lot, expiry)` of every open lot expiring in `after_ms <
/// expiry <= until_ms`, by expiry (the expiry-notice scan of `advance`).
pub(crate) fn lots_expiring(
    store: &Store,
    after_ms: Option<i64>,
    until_ms: i64,
) -> Result<Vec<(u32, u32, i64)>> {
    let mut from = vec![lk::DUE_LOT];
    match after_ms.map(|a| a.checked_add(1)) {
        Some(Some(a)) => from.extend_from_slice(&ts_asc(a)),
        Some(None) => return Ok(Vec::new()),
        None => {}
    }
    let mut until = vec![lk::DUE_LOT];
    match until_ms.checked_add(1) {
        Some(after) => until.extend_from_slice(&ts_asc(after)),
        None => until = vec![lk::DUE_LOT + 1],
    }
    let mut out = Vec::new();
    for item in store.range(Cf::LedgerDue, &from, Some(until))? {
        let (k, _) = item?;
        let (_, at, user, lot) = lk::parse_due(&k).ok_or_else(|| CorruptionError {
            cf: Cf::LedgerDue.name(),
            what: "key",
            key: k.to_vec(),
            reason: "due key does not decode".into(),
        })?;
        out.push((user, lot, at));
    }
    Ok(out)
}
