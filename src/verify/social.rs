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

pub(super) fn check(store: &Store, r: &mut VerifyReport) -> Result<()> {
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
