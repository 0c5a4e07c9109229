//! The checks of once-per-user rewards' records (docs/ledger.md): every
//! credit a holder names is recorded, a birthday's holder is a stored
//! activity event, and the account's copy of the first-order holder's
//! position is the holder's. Reads only what `ledger` hands it.

use super::Stored;
use crate::ledger::StoredTxn;
use crate::store::{Cf, Store};
use crate::verify::VerifyReport;

/// The account's copy of the first-order holder's position, when it keeps
/// one, is the holder's (`ledger::account_value`).
pub(super) fn first_order_copy(uid: u32, s: &Stored, r: &mut VerifyReport) {
    let Some(at) = s.first_order_at else {
        return;
    };
    let holder = s
        .firsts
        .iter()
        .find(|(code, campaign, _)| {
            *code == crate::ledger::session::rewards::FIRST_ORDER && campaign.is_empty()
        })
        .map(|(_, _, h)| (h.ts_ms, h.seq));
    if holder != Some(at) {
        r.problem(format!(
            "ledger: user {uid}: the account keeps first-order holder {at:?}, the holder record {holder:?}"
        ));
    }
}

/// Each birthday reward's holder is a stored activity event of the user.
/// (Whether it is the oldest of its window is not checked: the window
/// moves with a birthday edit and the holder stays, by design.)
pub(super) fn birthday_holders(
    store: &Store,
    uid: u32,
    firsts: &[(u16, String, crate::ledger::session::rewards::Holder)],
    non_activity: &std::collections::HashSet<u32>,
    r: &mut VerifyReport,
) {
    use crate::ledger::session::birthday::BIRTHDAY;
    for (_, key, h) in firsts.iter().filter(|(code, _, _)| *code == BIRTHDAY) {
        let k = crate::keys::EventKey {
            user_id: uid,
            ts_ms: h.ts_ms,
            seq: h.seq,
        }
        .encode();
        let kind = match store.get_raw(Cf::Events, &k) {
            Ok(Some(v)) => crate::timeline::decode_event_value(&k, &v)
                .ok()
                .map(|e| e.kind_id),
            _ => None,
        };
        if kind.is_none_or(|id| non_activity.contains(&id)) {
            r.problem(format!(
                "ledger: user {uid}: birthday reward {key:?} held by ({}, {}), \
                 which is not a stored activity event",
                h.ts_ms, h.seq
            ));
        }
    }
}

/// Every credit a reward holder or a streak completion names is recorded
/// (a caller may reverse one: that is a correction, not damage).
pub(super) fn live_credits<'t>(
    uid: u32,
    s: &Stored,
    txns: impl Iterator<Item = &'t str>,
    r: &mut VerifyReport,
) {
    for txn in txns {
        if s.txns.get(txn).and_then(StoredTxn::entry_seq).is_none() {
            r.problem(format!(
                "ledger: user {uid}: reward credit {txn:?} is named but not recorded"
            ));
        }
    }
}
