//! Referral rewards (SPEC §4b's ledger hook, docs/social.md): when a
//! user's first purchase is attributed to a sharer, the store's referral
//! earning rules credit the sharer — in the write that made the
//! attribution, and reversed in the write that moves it.
//!
//! Each referred user keeps one record (`13 ‖ user`): the sharer its
//! current credit went to and the credit's **generation**. A change of the
//! attribution reverses the current generation's credit and pays the next
//! generation to the new sharer, so a credit id is never used twice (the
//! ledger answers a re-used id as a replay) and an attribution that moves
//! A → B → A pays A again. This module decides the operations; the write
//! path applies them through the ledger session of the same batch, under
//! the sharers' stripe locks.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::engine::Engine;
use super::Attr;
use crate::codec;
use crate::error::Result;
use crate::keys::social as k;
use crate::store::{decode_value, Cf};

/// The referral credit state of one referred user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct RefState {
    /// The generation of the latest credit (paid or not).
    pub generation: u32,
    /// Whom it went to; `None` once reversed with nothing paid since.
    pub sharer: Option<u32>,
    /// The first purchase's instant it was paid for.
    pub ts_ms: i64,
}

/// What a write changed of first-purchase attributions.
#[derive(Debug, Default)]
pub(crate) struct Referrals {
    /// Referred user → (attribution before the write, after it).
    changes: BTreeMap<u32, (Option<Attr>, Option<Attr>)>,
    /// `(from, into)` when the write is an identity merge.
    merge: Option<(u32, u32)>,
}

/// One ledger operation of a referral change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ReferralOp {
    /// Reverse `sharer`'s credit for `referred`, generation `generation`.
    Reverse {
        sharer: u32,
        referred: u32,
        generation: u32,
        at_ms: i64,
    },
    /// Credit `sharer` for `referred`'s first purchase.
    Credit {
        sharer: u32,
        referred: u32,
        generation: u32,
        ts_ms: i64,
        amount_minor: i64,
    },
}

impl ReferralOp {
    /// The account it changes.
    pub fn sharer(&self) -> u32 {
        match self {
            ReferralOp::Reverse { sharer, .. } | ReferralOp::Credit { sharer, .. } => *sharer,
        }
    }
}

impl Engine<'_> {
    /// Turns on referral bookkeeping (the store has referral rules); with
    /// `merge`, the write is the identity merge `(from, into)`.
    pub fn with_referrals(mut self, merge: Option<(u32, u32)>) -> Self {
        self.referrals = Some(Referrals {
            changes: BTreeMap::new(),
            merge,
        });
        self
    }

    /// Notes that `user_id`'s first-purchase attribution went from `old` to
    /// `new` (the first old and the last new count).
    pub(crate) fn first_purchase_moved(
        &mut self,
        user_id: u32,
        old: Option<Attr>,
        new: Option<Attr>,
    ) {
        if let Some(r) = self.referrals.as_mut() {
            r.changes
                .entry(user_id)
                .and_modify(|c| c.1 = new)
                .or_insert((old, new));
        }
    }

    /// The ledger operations of this write's attribution changes; updates
    /// each referred user's credit state. Call after every change is in.
    pub fn referral_ops(&mut self) -> Result<Vec<ReferralOp>> {
        self.settle()?;
        let Some(r) = self.referrals.take() else {
            return Ok(Vec::new());
        };
        let mut ops = Vec::new();
        for (user, (old, new)) in r.changes {
            if old == new {
                continue;
            }
            let key = k::referral(user);
            let state: Option<RefState> = self
                .txn
                .get(&key)?
                .map(|v| decode_value(Cf::Social, &key, &v))
                .transpose()?;
            let generation = state.map_or(0, |s| s.generation + 1);
            let paid = state.and_then(|s| s.sharer.map(|sharer| (sharer, s)));
            // A credit that moved with its sharer's merge into `into` is
            // `into`'s now, and final: when the attribution moves from
            // `from` to `into` with the merge, nothing is paid again.
            if let (Some((sharer, s)), Some(n), Some((from, into))) = (paid, new, r.merge) {
                if sharer == from && n.sharer == into {
                    let kept = RefState {
                        sharer: Some(into),
                        ..s
                    };
                    self.txn.put(key, codec::encode(&kept)?);
                    continue;
                }
            }
            if let Some((sharer, s)) = paid {
                if !self.is_erased(sharer) {
                    ops.push(ReferralOp::Reverse {
                        sharer,
                        referred: user,
                        generation: s.generation,
                        at_ms: s.ts_ms,
                    });
                }
            }
            if self.is_erased(user) {
                self.txn.delete(key);
                continue;
            }
            let next = match new {
                Some(n) => {
                    ops.push(ReferralOp::Credit {
                        sharer: n.sharer,
                        referred: user,
                        generation,
                        ts_ms: n.ts_ms,
                        amount_minor: n.amount_minor,
                    });
                    RefState {
                        generation,
                        sharer: Some(n.sharer),
                        ts_ms: n.ts_ms,
                    }
                }
                None => RefState {
                    generation: state.map_or(0, |s| s.generation),
                    sharer: None,
                    ts_ms: 0,
                },
            };
            self.txn.put(key, codec::encode(&next)?);
        }
        Ok(ops)
    }
}
