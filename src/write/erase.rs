//! Erasure (SPEC §5): one atomic write deletes a user's profile, tags,
//! events, ledger and id mappings and takes every trace of the user out of
//! the shared aggregates.

use crate::store::Batch;

use super::Writer;
use crate::error::{InputError, Result};
use crate::keys::meta;
use crate::metrics::forget::ErasedEvent;
use crate::store::Cf;
use crate::users::NameEntry;
use crate::{ledger, metrics, profiles, timeline, users};

impl Writer<'_> {
    /// Erases `user` (named by its id or by an alias of it, with every
    /// history merged into it); returns whether it existed. Its internal id
    /// is never reused.
    pub fn erase_user(&self, user: &str) -> Result<bool> {
        self.store.check_writable()?;
        users::check_user(user).map_err(|p| InputError::new("user", p))?;
        let _erasing = self.erase_lock.lock();
        let (mut guard, resolved) = users::lock_resolving(self.stripes, self.store, &[user])?;
        let (user_id, user) = match resolved.get(user).cloned().flatten() {
            None => return Ok(false),
            Some(NameEntry::User(id)) => (id, user.to_owned()),
            Some(NameEntry::Alias { user_id, into }) => (user_id, into),
        };
        let user = user.as_str();
        let mut batch = Batch::new();
        // Its aliases and the records of the merges that made them go too:
        // they name the user.
        for (name, merge_id) in users::aliases(self.store, user_id)? {
            users::delete_alias(&mut batch, &name, user_id);
            batch.delete(Cf::Meta, meta::merge(&merge_id));
        }
        profiles::erase(self.store, &mut batch, user_id)?;
        let facts = timeline::erase(self.store, &mut batch, user_id)?;
        let leaving = super::social::Leaving::of(user_id, &facts);
        let events: Vec<ErasedEvent> = facts.iter().map(ErasedEvent::from).collect();
        metrics::forget::erase(
            self.store,
            &mut batch,
            self.store.settings().utc_offset_minutes,
            user_id,
            &events,
            crate::feed::StageCause::Erase,
        )?;
        ledger::erase(self.store, &mut batch, user_id)?;
        users::erase(self.store, &mut batch, user_id, user)?;
        let _social = self.social_write(&mut batch, Some(leaving), &[], &[])?;
        self.store.write(batch)?;
        if let Some(shard) = guard.shard(user) {
            shard.remove(user);
        }
        Ok(true)
    }
}
