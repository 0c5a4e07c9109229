//! Identity merges on the [`Db`] handle (SPEC §2, docs/identity.md).

use super::Db;
use crate::error::Result;
use crate::store::Store;
use crate::users::{self, IdentitySettings, MergeOptions, MergeOutcome};

pub(super) fn load(store: &Store) -> Result<IdentitySettings> {
    users::load_identity_settings(store)
}

impl Db {
    /// Merges `from` into `into` (SPEC §2): afterwards every answer equals
    /// that of a store where all of `from`'s events had always been recorded
    /// under `into`, and `from` is an alias whose later events, profile
    /// updates and points operations go to `into`. One atomic write;
    /// idempotent by `merge_id` (the same id and pair again is answered
    /// with the first outcome, `replayed: true`; the same id with another
    /// pair is refused). Merging two identified ids needs `options.force`
    /// (see [`Db::set_identity_settings`]).
    ///
    /// ```
    /// # fn main() -> Result<(), stickydb::Error> {
    /// use stickydb::{Db, Event, IdentitySettings, MergeOptions, Options};
    /// let dir = tempfile::tempdir()?;
    /// let db = Db::create(dir.path(), Options::default())?;
    /// db.set_identity_settings(IdentitySettings::anonymous(["anon:"]))?;
    /// let day = 86_400_000;
    /// db.record(&Event::new("anon:42", "view", 19_800 * day))?;
    /// db.record(&Event::new("member-7", "purchase", 19_801 * day).with_amount(1_500))?;
    /// let out = db.merge("anon:42", "member-7", "signup-7", MergeOptions::default())?;
    /// assert_eq!((out.into.as_str(), out.events_moved), ("member-7", 1));
    /// assert_eq!(db.user_count()?, 1);
    /// // the alias resolves: later events of the device id go to the member
    /// db.record(&Event::new("anon:42", "view", 19_802 * day))?;
    /// assert_eq!(db.newest("member-7", 10)?.len(), 3);
    /// // the member's first day is the visitor's
    /// assert_eq!(db.metrics().daily(19_800, 19_801)?[0].new_users, 1);
    /// # Ok(()) }
    /// ```
    pub fn merge(
        &self,
        from: &str,
        into: &str,
        merge_id: &str,
        options: MergeOptions,
    ) -> Result<MergeOutcome> {
        self.writer().merge(from, into, merge_id, options)
    }

    /// The merges that made aliases of `user` (or of the user an alias
    /// `user` resolves to), by alias name. Empty for an unknown user.
    pub fn merges(&self, user: &str) -> Result<Vec<MergeOutcome>> {
        self.snapshot().merges(user)
    }

    /// What `user` names: its own user, an alias of another (merged into
    /// it), or nothing.
    pub fn resolve(&self, user: &str) -> Result<Option<users::NameEntry>> {
        self.snapshot().resolve(user)
    }

    /// Which ids are anonymous.
    pub fn identity_settings(&self) -> IdentitySettings {
        self.identity_settings.read().clone()
    }

    /// Replaces (and persists) which ids are anonymous. Merges that named
    /// two identified ids before were forced; nothing is re-evaluated.
    pub fn set_identity_settings(&self, settings: IdentitySettings) -> Result<()> {
        let mut held = self.identity_settings.write();
        users::save_identity_settings(&self.store, &settings)?;
        *held = settings;
        Ok(())
    }
}
