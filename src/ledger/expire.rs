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

/// Where a paged scan of the due index stopped: the tag it is in and the
/// last key it returned.
#[derive(Debug, Default, Clone)]
pub(crate) struct DueCursor {
    tag: usize,
    after: Option<Vec<u8>>,
}

const DUE_TAGS: [u8; 4] = [lk::DUE_LOT, lk::DUE_HOLD, lk::DUE_REVIEW, lk::DUE_COUPON];

/// The accounts of the next at most `limit` entries of `ledger_due` at or
/// before `now_ms` after `cursor`, which moves past them: an expiry run
/// pages through what is due instead of holding every due account at once.
/// Empty when nothing is left.
pub(crate) fn due_accounts_page(
    store: &Store,
    now_ms: i64,
    cursor: &mut DueCursor,
    limit: usize,
) -> Result<RoaringBitmap> {
    let mut users = RoaringBitmap::new();
    let mut taken = 0usize;
    while let Some(&tag) = DUE_TAGS.get(cursor.tag) {
        let mut until = vec![tag];
        match now_ms.checked_add(1) {
            Some(after) => until.extend_from_slice(&ts_asc(after)),
            None => until = vec![tag + 1],
        }
        let from = crate::keys::resume_at(&[tag], cursor.after.as_deref());
        for item in store.range(Cf::LedgerDue, &from, Some(until))? {
            let (k, _) = item?;
            users.insert(lk::due_user(&k).ok_or_else(|| bad_due_key(&k))?);
            cursor.after = Some(k.to_vec());
            taken += 1;
            if taken >= limit {
                return Ok(users);
            }
        }
        cursor.tag += 1;
        cursor.after = None;
    }
    Ok(users)
}

fn bad_due_key(k: &[u8]) -> crate::error::Error {
    CorruptionError {
        cf: Cf::LedgerDue.name(),
        what: "key",
        key: k.to_vec(),
        reason: "due key does not decode".into(),
    }
    .into()
}

/// `(user, lot, expiry)` of the next at most `limit` open lots expiring in
/// `after_ms < expiry <= until_ms`, by expiry, after the due key `resume`
/// (which moves to the last one returned): the expiry-notice scan of
/// `advance`, a page at a time. With [`lk::DUE_COUPON`] for `tag`, the
/// same of coupons: `(user, slot, due)`.
pub(crate) fn lots_expiring_page(
    store: &Store,
    tag: u8,
    after_ms: Option<i64>,
    until_ms: i64,
    resume: &mut Option<Vec<u8>>,
    limit: usize,
) -> Result<Vec<(u32, u32, i64)>> {
    let mut from = vec![tag];
    match after_ms.map(|a| a.checked_add(1)) {
        Some(Some(a)) => from.extend_from_slice(&ts_asc(a)),
        Some(None) => return Ok(Vec::new()),
        None => {}
    }
    if resume.is_some() {
        from = crate::keys::resume_at(&from, resume.as_deref());
    }
    let mut until = vec![tag];
    match until_ms.checked_add(1) {
        Some(after) => until.extend_from_slice(&ts_asc(after)),
        None => until = vec![tag + 1],
    }
    let mut out = Vec::new();
    for item in store.range(Cf::LedgerDue, &from, Some(until))? {
        let (k, _) = item?;
        let (_, at, user, lot) = lk::parse_due(&k).ok_or_else(|| bad_due_key(&k))?;
        out.push((user, lot, at));
        *resume = Some(k.to_vec());
        if out.len() >= limit {
            break;
        }
    }
    Ok(out)
}
