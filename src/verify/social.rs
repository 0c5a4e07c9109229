//! The `social` family against a derivation from the events alone
//! (`social_derive`: the rules applied to every user's whole event list,
//! none of the write path's incremental code): a family built by writes in
//! any order, across late claims, erasures and merges, must equal it record
//! for record. The rules themselves are held against an independent model
//! by `tests/social_model.rs`.

use super::VerifyReport;
use crate::error::Result;
use crate::store::{Cf, Store};

/// Names the family of a social key in a problem.
fn family(key: &[u8]) -> &'static str {
    use crate::keys::social as k;
    match key.first().copied() {
        Some(k::REGISTRY) => "share registry",
        Some(k::OWNED) => "owned share",
        Some(k::BY_SHARE) => "touch by share",
        Some(k::TOUCHES) => "touch",
        Some(k::REACHED) => "first touch per sharer",
        Some(k::ATTRIBUTED) => "attributed item",
        Some(k::SHARER_DAY) => "sharer figures",
        Some(k::DAY) => "store figures",
        Some(k::REFERRED) => "referred-by index",
        Some(k::GROUP) => "group head",
        Some(k::JOIN) => "group join",
        Some(k::GROUP_DAY) => "group head by day",
        _ => "unknown record",
    }
}

/// A referred user whose credit was paid to a sharer must still have its
/// first purchase attributed to that sharer, at that instant: a credit
/// left with a sharer the attribution moved away from was lost on the way
/// (before jobs, a crash inside a window change left exactly that).
/// States of users whose attribution moved while no referral rule existed
/// are reported too: re-adding the rules does not re-pay them.
fn check_credit(store: &Store, k: &[u8], v: &[u8], r: &mut VerifyReport) -> Result<()> {
    use crate::keys::social as ks;
    let Some(user) = k
        .get(1..5)
        .and_then(|b| b.try_into().ok())
        .map(u32::from_be_bytes)
    else {
        r.problem(format!("social: referral state at key {k:?} names no user"));
        return Ok(());
    };
    let state: crate::social::referral::RefState =
        match crate::store::decode_value(Cf::Social, k, v) {
            Ok(s) => s,
            Err(e) => {
                r.problem(e.to_string());
                return Ok(());
            }
        };
    let Some(sharer) = state.sharer else {
        return Ok(());
    };
    let key = ks::first_item(user, ks::ITEM_FIRST_PURCHASE);
    let attributed: Option<crate::social::Attr> = store.get(Cf::Social, &key)?;
    if attributed.map(|a| (a.sharer, a.ts_ms)) != Some((sharer, state.ts_ms)) {
        r.problem(format!(
            "social: user {user}'s referral credit is with sharer {sharer} (first purchase at {}), \
             its first purchase is attributed to {:?}",
            state.ts_ms,
            attributed.map(|a| (a.sharer, a.ts_ms))
        ));
    }
    Ok(())
}

pub(super) fn check(store: &Store, pays_referrals: bool, r: &mut VerifyReport) -> Result<()> {
    // Events that do not decode are reported by the events check; the
    // derivation cannot run past them.
    let mut want = match super::social_derive::derive(store) {
        Ok(w) => w,
        Err(e) => {
            r.problem(format!("social: not derived, the events do not read: {e}"));
            return Ok(());
        }
    };
    for item in store.range(Cf::Social, &[], None)? {
        let (k, v) = item?;
        r.count(Cf::Social);
        // referral credit states are the ledger's bookkeeping, not derived
        // from events (the ledger's own check covers the credits)
        if k.first() == Some(&crate::keys::social::REFERRAL) {
            if pays_referrals {
                check_credit(store, &k, &v, r)?;
            }
            continue;
        }
        match want.remove(&k[..]) {
            Some(w) if w[..] == v[..] => {}
            Some(_) => r.problem(format!(
                "social: {} at key {k:?} differs from what the events derive",
                family(&k)
            )),
            None => r.problem(format!(
                "social: {} at key {k:?} is not derived from any event",
                family(&k)
            )),
        }
    }
    for k in want.keys() {
        r.problem(format!(
            "social: {} at key {k:?} is missing (the events derive it)",
            family(k)
        ));
    }
    Ok(())
}
