//! Moving a merged user's points into the user it was merged into (identity
//! merge, docs/identity.md).
//!
//! What moves: every open lot, each as a `Transfer` entry on the target at
//! the lot's earn time, with its points and expiry — balances, draw order by
//! expiry and expiry itself then behave as if the points had always been the
//! target's; every open hold, re-created on the moved lots under its own
//! transaction id and deadline (a capture or release naming it works on the
//! target); and every other caller transaction record, carried over as a
//! replay-only record, so a retry naming the merged id replays instead of
//! running again. Rule credits stay the credits of their (moved) events.

use std::collections::{BTreeMap, BTreeSet};

use super::{Hold, Lot, StoredTxn, TxnRecord, RULE_TXN_PREFIX};
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
    /// Lots of its once-per-user rewards: they do not move (the target
    /// re-derives its rewards from the moved events).
    pub rewards: BTreeSet<u32>,
    /// Its open holds.
    pub holds: Vec<Hold>,
    /// Its caller transactions (its own and those an earlier merge moved
    /// in), by id.
    pub txns: BTreeMap<String, TxnRecord>,
}

/// What a merge does with one account's ledger.
#[derive(Debug)]
pub(crate) enum TransferPlan {
    /// No ledger records: nothing to do.
    Nothing,
    /// Move these.
    Move(Outgoing),
}

/// What a transfer did on the target.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct TransferReport {
    /// Points moved.
    pub points: i64,
    /// Lots moved.
    pub lots: u64,
    /// Points not moved: credited for events the target had already (a
    /// duplicate delivery counts once, and so does its credit), and what
    /// was left of once-per-user rewards (re-derived on the target).
    pub dropped: i64,
    /// Open holds re-created on the target.
    pub holds: u64,
    /// Caller transaction records carried over (replay only).
    pub txns: u64,
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
                let a = super::account_value::decode(&k, &v)?;
                out.clock_ms = a.clock_ms;
            }
            Some(LedgerKey::Lot { .. }) => {
                let lot: Lot = decode_value(Cf::Ledger, &k, &v)?;
                if lot.is_open() {
                    out.lots.push(lot);
                }
            }
            Some(LedgerKey::Txn { txn_id, .. })
                if super::session::rewards::is_reward_txn(&txn_id) =>
            {
                // (a reward and its reversals stay: the target's own ids
                // may repeat them)
                if let StoredTxn::Credit(c) = super::decode_txn(&txn_id, &k, &v)? {
                    out.rewards.insert(c.entry_seq);
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
                match (credit, super::decode_txn(&txn_id, &k, &v)?) {
                    (Some(event_seq), StoredTxn::Credit(c)) => {
                        out.credited_by.insert(c.entry_seq, event_seq);
                    }
                    // (stores before format 4 kept rule credits in full)
                    (Some(event_seq), StoredTxn::Full(r)) => {
                        out.credited_by.insert(r.outcome.entry_seq, event_seq);
                    }
                    (_, StoredTxn::Full(r) | StoredTxn::Moved(r)) => {
                        out.txns.insert(txn_id, r);
                    }
                    (None, StoredTxn::Credit(_)) => {}
                }
            }
            Some(LedgerKey::Cap { day, rule, .. }) => {
                out.cap_days.insert((day, rule));
            }
            Some(LedgerKey::Hold { .. }) => {
                out.holds.push(decode_value(Cf::Ledger, &k, &v)?);
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
