//! `expire(now)`: finds the accounts with something due at or before `now`
//! through the `ledger_due` index (never by scanning accounts), then settles
//! each account in its own atomic write under its stripe lock. Deterministic
//! for a given `now`: what is due is re-read under the lock from the account
//! itself, and every entry carries the time it fell due, not the time the
//! run happened. A crash between accounts leaves the rest due; re-running
//! settles them and finds the settled ones clean.

use roaring::RoaringBitmap;
use rocksdb::WriteBatch;

use super::keys as lk;
use super::session::Session;
use std::sync::Arc;

use parking_lot::RwLock;

use super::{ExpireReport, LedgerSettings};
use crate::error::{CorruptionError, Result};
use crate::keys::ts_asc;
use crate::store::{Cf, Store};
use crate::users::{self, LockStripes};

/// The accounts with an entry in `ledger_due` at or before `now_ms`.
fn due_accounts(store: &Store, now_ms: i64) -> Result<RoaringBitmap> {
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

/// Settles everything due at or before `now_ms`.
pub(crate) fn run(
    store: &Store,
    settings: &RwLock<Arc<LedgerSettings>>,
    stripes: &LockStripes,
    now_ms: i64,
) -> Result<ExpireReport> {
    let mut report = ExpireReport::default();
    for user_id in &due_accounts(store, now_ms)? {
        // An erased user's due entries went with it; nothing to lock.
        let Some(record) = users::record_of(store, user_id)? else {
            continue;
        };
        let _guard = stripes.lock([record.name.as_str()]);
        // Read under the lock: a settings change holds every stripe.
        let settings = settings.read().clone();
        let mut session = Session::new(store, &settings);
        let mut one = ExpireReport::default();
        session.expire_account(user_id, now_ms, &mut one)?;
        let mut batch = WriteBatch::default();
        session.finish(&mut batch)?;
        if !batch.is_empty() {
            store.write(batch)?;
            report.accounts += 1;
        }
        report.lots_expired += one.lots_expired;
        report.points_expired += one.points_expired;
        report.holds_timed_out += one.holds_timed_out;
        report.tier_changes += one.tier_changes;
    }
    Ok(report)
}
