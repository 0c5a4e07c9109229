//! Identity merge (SPEC §2, docs/identity.md) as one call: a transaction
//! holding one merge (`tx_merge.rs` composes it), and the answer to a merge
//! id seen before.

use super::tx::Plan;
use super::Writer;
use crate::error::{MergeError, Result};
use crate::users::{self, MergeOptions, MergeOutcome};

impl Writer<'_> {
    /// Merges `from` into `into` as one atomic write; idempotent by
    /// `merge_id`.
    pub fn merge(
        &self,
        from: &str,
        into: &str,
        merge_id: &str,
        options: MergeOptions,
    ) -> Result<MergeOutcome> {
        let mut plan = Plan::with_names([from, into]);
        plan.merge = true;
        plan.single_call = true;
        self.transact(plan, &mut |tx| tx.merge(from, into, merge_id, options))
    }

    /// A merge id seen before: the same pair is answered with what was done,
    /// another pair is refused.
    pub(super) fn merge_replay(
        &self,
        done: MergeOutcome,
        from: &str,
        into: &str,
    ) -> Result<MergeOutcome> {
        // `into` may have been named by an alias of the target the record names
        let same_target = done.into == into || {
            let asked = users::id_of(self.store, into)?;
            asked.is_some() && asked == users::id_of(self.store, &done.into)?
        };
        if done.from == from && same_target {
            return Ok(MergeOutcome {
                replayed: true,
                ..done
            });
        }
        Err(MergeError::IdConflict {
            merge_id: done.merge_id,
            from: done.from,
            into: done.into,
        }
        .into())
    }
}
