//! The vocabulary of identity merges (SPEC §2): which ids are anonymous,
//! what a caller asks of a merge and what a merge did. The merge itself is
//! composed by the write path (`write::merge`).

use serde::{Deserialize, Serialize};

use crate::error::{InputError, Result};

/// Most anonymous-id prefixes a store keeps.
pub const MAX_ANONYMOUS_PREFIXES: usize = 16;

/// Longest anonymous-id prefix, in bytes.
pub const MAX_PREFIX_BYTES: usize = 64;

/// Longest merge id, in bytes.
pub const MAX_MERGE_ID_BYTES: usize = 128;

/// Which external ids are anonymous (device or cookie ids): those that start
/// with one of the prefixes. Merging two ids that are both identified needs
/// [`MergeOptions::force`]. Stored in the store; default: no prefix, so
/// every merge must be forced until the store is told its anonymous ids.
///
/// ```
/// let s = stickydb::IdentitySettings::anonymous(["anon:"]);
/// assert!(s.is_anonymous("anon:7f3a"));
/// assert!(!s.is_anonymous("member-42"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct IdentitySettings {
    /// Prefixes of anonymous external ids.
    pub anonymous_prefixes: Vec<String>,
}

impl IdentitySettings {
    /// Settings where ids starting with one of `prefixes` are anonymous.
    pub fn anonymous<S: Into<String>>(prefixes: impl IntoIterator<Item = S>) -> Self {
        Self {
            anonymous_prefixes: prefixes.into_iter().map(Into::into).collect(),
        }
    }

    /// Whether `user` is an anonymous id.
    pub fn is_anonymous(&self, user: &str) -> bool {
        self.anonymous_prefixes
            .iter()
            .any(|p| user.starts_with(p.as_str()))
    }

    /// Checks the limits: at most 16 prefixes of 1..=64 bytes each.
    pub fn validate(&self) -> Result<(), InputError> {
        InputError::check_count(
            "anonymous_prefixes",
            self.anonymous_prefixes.len(),
            MAX_ANONYMOUS_PREFIXES,
        )?;
        for (i, p) in self.anonymous_prefixes.iter().enumerate() {
            super::check_name(p, MAX_PREFIX_BYTES)
                .map_err(|e| InputError::new("anonymous_prefixes", e).at(i))?;
        }
        Ok(())
    }
}

/// How a merge may proceed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MergeOptions {
    /// Merge even when neither id is anonymous.
    pub force: bool,
}

impl MergeOptions {
    /// A merge even when neither id is anonymous.
    pub fn forced() -> Self {
        Self { force: true }
    }

    /// These options with `force` set.
    pub fn force(mut self, force: bool) -> Self {
        self.force = force;
        self
    }
}

/// What a merge did (and, for a repeated merge id, what it did the first
/// time).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct MergeOutcome {
    /// The caller's merge id.
    pub merge_id: String,
    /// The merged id, now an alias.
    pub from: String,
    /// The user it was merged into (an alias named as `into` resolves to its
    /// target, which is named here).
    pub into: String,
    /// Events moved from `from`'s history into `into`'s.
    pub events_moved: u64,
    /// Events of `from` whose event id `into` had recorded already: dropped,
    /// as a repeated delivery would have been.
    pub duplicate_events: u64,
    /// Local days `from` was active on and `into` was not: the days the
    /// merge added to `into`'s activity.
    pub days_added: u64,
    /// Earlier aliases of `from` re-pointed to `into` (chains resolve).
    pub aliases_moved: u64,
    /// Points moved from `from`'s open lots to `into`.
    pub points_moved: i64,
    /// Lots moved, each keeping its earn time and expiry.
    pub lots_moved: u64,
    /// Open holds re-created on `into` (capture or release them by their
    /// transaction ids, through either name).
    pub holds_moved: u64,
    /// `from`'s other points transactions, kept on `into` for replays.
    pub txns_moved: u64,
    /// (local day, rule index) on which both had rule credits: each kept
    /// its own (nothing re-credited, nothing taken back), so that day's
    /// total may exceed the rule's daily cap.
    pub cap_conflicts: Vec<(i32, u16)>,
    /// This call repeated an earlier merge id: nothing was done now.
    #[serde(skip)]
    pub replayed: bool,
}

impl MergeOutcome {
    /// The outcome of a merge that moved nothing yet.
    pub(crate) fn new(merge_id: &str, from: &str, into: String) -> Self {
        Self {
            merge_id: merge_id.to_owned(),
            from: from.to_owned(),
            into,
            events_moved: 0,
            duplicate_events: 0,
            days_added: 0,
            aliases_moved: 0,
            points_moved: 0,
            lots_moved: 0,
            holds_moved: 0,
            txns_moved: 0,
            cap_conflicts: Vec::new(),
            replayed: false,
        }
    }
}

/// Checks a merge id: 1..=128 bytes, no control characters.
pub fn check_merge_id(merge_id: &str) -> Result<(), InputError> {
    super::check_name(merge_id, MAX_MERGE_ID_BYTES).map_err(|p| InputError::new("merge_id", p))
}

/// The stored identity settings (the default when none were stored).
pub(crate) fn load_settings(store: &crate::store::Store) -> Result<IdentitySettings> {
    Ok(store
        .get(crate::store::Cf::Meta, crate::keys::meta::IDENTITY_SETTINGS)?
        .unwrap_or_default())
}

/// Stores `settings` (validated first).
pub(crate) fn save_settings(
    store: &crate::store::Store,
    settings: &IdentitySettings,
) -> Result<()> {
    store.check_writable()?;
    settings.validate()?;
    let mut batch = crate::store::Batch::new();
    put_settings(&mut batch, settings)?;
    store.write(batch)
}

/// Puts `settings` (validated by the caller) into `batch`.
pub(crate) fn put_settings(
    batch: &mut crate::store::Batch,
    settings: &IdentitySettings,
) -> Result<()> {
    batch.put(
        crate::store::Cf::Meta,
        crate::keys::meta::IDENTITY_SETTINGS,
        crate::codec::encode(settings)?,
    );
    Ok(())
}
