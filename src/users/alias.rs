//! Aliases (SPEC §2, identity merge): after `merge(from, into)` the external
//! id `from` keeps naming a user — the one it was merged into.
//!
//! An alias lives where every name lives, in `user_by_name`, with a value
//! of its own shape (the target's internal id and external id), so a read
//! resolves it with the lookup it makes anyway. The alias index
//! (`meta`, `alias:` ‖ target ‖ name) lists a user's aliases, so a later
//! merge of the target can re-point them (chains resolve to the end) and
//! an erasure can remove them.
//!
//! Locking: a write that names an alias also holds the stripe of the alias's
//! target (by its external id), the stripe every other write of that user
//! holds; [`lock_resolving`] takes both before anything is read.

use crate::store::Reader;
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use super::locks::{LockStripes, StripeGuards};
use crate::codec;
use crate::error::{Error, Result};
use crate::keys::meta;
use crate::store::{decode_value, Batch, Cf, Store};

/// The `user_by_name` value of an alias: the user it resolves to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct AliasValue {
    user_id: u32,
    into: String,
}

/// What an external id maps to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NameEntry {
    /// A user of its own.
    User(u32),
    /// An alias of another user (merged into it).
    Alias {
        /// The internal id it resolves to.
        user_id: u32,
        /// That user's external id.
        into: String,
    },
}

impl NameEntry {
    /// The internal id the name resolves to.
    pub fn user_id(&self) -> u32 {
        match self {
            NameEntry::User(id) | NameEntry::Alias { user_id: id, .. } => *id,
        }
    }
}

/// Decodes a `user_by_name` value: a plain id or an alias.
pub(crate) fn decode_entry(key: &[u8], bytes: &[u8]) -> Result<NameEntry> {
    match decode_value::<u32>(Cf::UserByName, key, bytes) {
        Ok(id) => Ok(NameEntry::User(id)),
        Err(e) => match codec::decode::<AliasValue>(bytes) {
            Ok(a) => Ok(NameEntry::Alias {
                user_id: a.user_id,
                into: a.into,
            }),
            Err(_) => Err(e),
        },
    }
}

/// Looks up what `name` maps to.
pub(crate) fn lookup(store: &impl Reader, name: &str) -> Result<Option<NameEntry>> {
    match store.read_raw(Cf::UserByName, name.as_bytes())? {
        None => Ok(None),
        Some(bytes) => decode_entry(name.as_bytes(), &bytes).map(Some),
    }
}

/// What `name` maps to, read under its stripe lock: from the stripe's cache
/// (which holds only plain users, never aliases) or the store.
pub(crate) fn lookup_locked(
    guards: &mut StripeGuards<'_>,
    store: &Store,
    name: &str,
) -> Result<Option<NameEntry>> {
    match guards.shard(name).and_then(|s| s.get(name)) {
        Some(c) => Ok(Some(NameEntry::User(c.user_id))),
        None => lookup(store, name),
    }
}

/// Each name of one write, looked up under its locks.
pub(crate) type Resolved = FxHashMap<String, Option<NameEntry>>;

/// Most rounds of re-locking [`lock_resolving`] makes: each round adds the
/// targets a concurrent merge moved; two merges in a row are already rare.
const MAX_LOCK_ROUNDS: usize = 16;

/// Locks the stripes of `names` and of the users their aliases resolve to,
/// and looks every name up under those locks. A merge changes an alias only
/// while holding its target's stripe, so once the target's stripe is held
/// the answer cannot change before the write commits.
pub(crate) fn lock_resolving<'a>(
    stripes: &'a LockStripes,
    store: &Store,
    names: &[&str],
) -> Result<(StripeGuards<'a>, Resolved)> {
    let mut targets: Vec<String> = Vec::new();
    for _ in 0..MAX_LOCK_ROUNDS {
        let mut guards = stripes.lock(
            names
                .iter()
                .copied()
                .chain(targets.iter().map(String::as_str)),
        );
        let mut resolved: Resolved = FxHashMap::default();
        let mut missing = false;
        for &name in names {
            if resolved.contains_key(name) {
                continue;
            }
            let entry = lookup_locked(&mut guards, store, name)?;
            if let Some(NameEntry::Alias { into, .. }) = &entry {
                if guards.shard(into).is_none() {
                    targets.push(into.clone());
                    missing = true;
                }
            }
            resolved.insert(name.to_owned(), entry);
        }
        if !missing {
            return Ok((guards, resolved));
        }
    }
    Err(Error::Busy {
        what: "lock rounds while concurrent merges move aliases",
        rounds: MAX_LOCK_ROUNDS as u32,
    })
}

/// Every alias of `user_id`: (alias, merge id), in name order.
pub(crate) fn aliases(store: &impl Reader, user_id: u32) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    let prefix = meta::aliases_of(user_id);
    for item in store.read_prefix(Cf::Meta, &prefix)? {
        let (k, v) = item?;
        let name = meta::alias_name_of(user_id, &k).unwrap_or_default();
        let merge_id: String = decode_value(Cf::Meta, &k, &v)?;
        out.push((String::from_utf8_lossy(name).into_owned(), merge_id));
    }
    Ok(out)
}

/// Puts `name` as an alias of `user_id` (external id `into`) made by merge
/// `merge_id`: the name's mapping and its alias-index entry.
pub(crate) fn put_alias(
    batch: &mut Batch,
    name: &str,
    user_id: u32,
    into: &str,
    merge_id: &str,
) -> Result<()> {
    let value = AliasValue {
        user_id,
        into: into.to_owned(),
    };
    batch.put(Cf::UserByName, name.as_bytes(), codec::encode(&value)?);
    batch.put(
        Cf::Meta,
        meta::alias(user_id, name),
        codec::encode(&merge_id)?,
    );
    Ok(())
}

/// Deletes `name`'s alias of `user_id`: its mapping and index entry.
pub(crate) fn delete_alias(batch: &mut Batch, name: &str, user_id: u32) {
    batch.delete(Cf::UserByName, name.as_bytes());
    batch.delete(Cf::Meta, meta::alias(user_id, name));
}
