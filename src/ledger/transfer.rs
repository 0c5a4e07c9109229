//! Moving a merged user's points into the user it was merged into (identity
//! merge, docs/identity.md).
//!
//! What moves: the open lots of an account whose history is rule credits
//! (and their expiries) alone, each as a `Transfer` entry on the target at
//! the lot's earn time, with its points and expiry: balances, draw order by
//! expiry and expiry itself then behave as if the points had always been the
//! target's. An account with any caller transaction (an earn, redeem, hold,
//! adjustment or reversal by txn id) is not moved: a retry of one of those
//! ids naming the merged id would reach the target's transaction space, and
//! carrying them over is not built yet.

use std::collections::{BTreeMap, BTreeSet};

use super::{CreditRecord, Lot, RULE_TXN_PREFIX};
use crate::error::Result;
use crate::keys::ledger::LedgerKey;
use crate::keys::user;
use crate::store::{decode_value, Cf, Store};

/// What one account hands over in a merge.
#[derive(Debug, Default)]
pub(crate) struct Outgoing {
    /// Its open lots, by id.
    pub lots: Vec<Lot>,
    /// Lot id → (sequence number of the event whose rule credit made it,
    /// the rule's index).
    pub credited_by: BTreeMap<u32, (u32, u16)>,
    /// The latest time it had seen.
    pub clock_ms: i64,
    /// (local day, rule) its rule credits used.
    pub cap_days: BTreeSet<(i32, u16)>,
}

/// What a merge does with one account's ledger.
#[derive(Debug)]
pub(crate) enum TransferPlan {
    /// No ledger records: nothing to do.
    Nothing,
    /// Rule credits only: move these.
    Move(Outgoing),
    /// A caller transaction (this id): the merge is refused.
    Refuse(String),
}

/// What a transfer did on the target.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct TransferReport {
    /// Points moved.
    pub points: i64,
    /// Lots moved.
    pub lots: u64,
    /// Points not moved: credited for events the target had already (a
    /// duplicate delivery counts once, and so does its credit).
    pub dropped: i64,
    /// (local day, rule) both accounts' rule credits used: each side kept
    /// its own credits (nothing re-credited, nothing taken back).
    pub cap_conflicts: Vec<(i32, u16)>,
}

/// Reads `user_id`'s ledger and decides what a merge of it does. Reads one
/// prefix: proportional to that account's history.
pub(crate) fn plan_transfer(store: &Store, user_id: u32) -> Result<TransferPlan> {
    let mut out = Outgoing::default();
    let mut any = false;
    for item in store.prefix(Cf::Ledger, &user(user_id))? {
        let (k, v) = item?;
        any = true;
        match LedgerKey::parse(&k) {
            Some(LedgerKey::Account { .. }) => {
                let a: super::Account = decode_value(Cf::Ledger, &k, &v)?;
                out.clock_ms = a.clock_ms;
            }
            Some(LedgerKey::Lot { .. }) => {
                let lot: Lot = decode_value(Cf::Ledger, &k, &v)?;
                if lot.is_open() {
                    out.lots.push(lot);
                }
            }
            Some(LedgerKey::Txn { txn_id, .. }) => {
                // `event:<seq>:<rule>`: rule `rule`'s credit for event `seq`
                let credit = txn_id
                    .strip_prefix(RULE_TXN_PREFIX)
                    .and_then(|rest| rest.split_once(':'))
                    .and_then(|(seq, rule)| {
                        Some((seq.parse::<u32>().ok()?, rule.parse::<u16>().ok()?))
                    });
                let Some(event_seq) = credit else {
                    return Ok(TransferPlan::Refuse(txn_id));
                };
                match crate::codec::decode::<CreditRecord>(&v) {
                    Ok(c) => {
                        out.credited_by.insert(c.entry_seq, event_seq);
                    }
                    // (stores before format 4 kept rule credits in full)
                    Err(_) => {
                        let r: super::TxnRecord = decode_value(Cf::Ledger, &k, &v)?;
                        out.credited_by.insert(r.outcome.entry_seq, event_seq);
                    }
                }
            }
            Some(LedgerKey::Cap { day, rule, .. }) => {
                out.cap_days.insert((day, rule));
            }
            _ => {}
        }
    }
    if !any {
        return Ok(TransferPlan::Nothing);
    }
    out.lots.sort_by_key(|l| l.id);
    Ok(TransferPlan::Move(out))
}
