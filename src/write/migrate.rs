//! Migrating an older store to the current format on a writable open.
//!
//! Older formats hold the same primary records in the same layouts; what
//! changed is how derived structures are kept (see
//! [`crate::store::MIGRATABLE_FORMATS`]). So a migration re-derives every
//! derived structure from the primary records — the all-users set from the
//! user records, the tag index from the tags, the tier sets from the
//! accounts, every aggregate from the events — and only then stamps the
//! current version. Each step clears its structure and writes it anew, so a
//! crash anywhere leaves the old version stamped and the next open starts
//! over; no step reads what a half-done earlier attempt wrote.

use crate::error::Result;
use crate::kinds::KindRegistry;
use crate::store::Store;
use crate::{ledger, profiles, users};

/// Re-derives every derived structure and stamps the current format.
/// No other handle can write yet (the store is being opened): no lock.
pub(crate) fn migrate(
    store: &mut Store,
    kinds: &KindRegistry,
    non_activity_kinds: &[String],
    model: &crate::metrics::StageModel,
    exposure_kind: &str,
) -> Result<()> {
    let found = store.format_found();
    if found == 6 || found == 7 {
        if found == 6 {
            // Format 7 added only the social family, derived from the events.
            // (no referral rule could exist before format 7: nothing to pay)
            crate::social::rebuild(store)?;
        }
        // Format 8 added only the experiment assignments, derived from the
        // exposure events (a re-run after a crash derives the same again).
        crate::experiments::rebuild(store, kinds, exposure_kind)?;
        return store.stamp_format_version();
    }
    users::rebuild_all_users(store)?;
    profiles::rebuild_tag_index(store)?;
    ledger::rebuild_tier_sets(store)?;
    super::rebuild(store, kinds, non_activity_kinds, model, exposure_kind)?;
    store.stamp_format_version()
}
