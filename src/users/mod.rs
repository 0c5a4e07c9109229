//! User identities (SPEC §2): external UTF-8 ids mapped once to dense `u32`s,
//! per-user write serialisation, and the per-user record every writer shares.
//!
//! Owns the `user_by_name` and `user_by_id` column families and the
//! "all users" set. Allocation is durable and atomic with the first write that
//! names a user, because the mapping rides in that write's batch. Must not
//! touch profiles, tags or events.

mod alias;
mod identity;
mod locks;

use crate::store::Reader;
use rustc_hash::{FxHashMap, FxHashSet};
use std::sync::atomic::{AtomicU32, Ordering};

use crate::store::Batch;
use roaring::RoaringBitmap;
use serde::{Deserialize, Serialize};

pub(crate) use alias::decode_entry;
pub use alias::NameEntry;
pub(crate) use alias::{aliases, lock_resolving, lookup, Resolved};
pub(crate) use alias::{delete_alias, put_alias};
pub use identity::{
    check_merge_id, IdentitySettings, MergeOptions, MergeOutcome, MAX_ANONYMOUS_PREFIXES,
    MAX_MERGE_ID_BYTES, MAX_PREFIX_BYTES,
};
pub(crate) use identity::{
    load_settings as load_identity_settings, put_settings as put_identity_settings,
    save_settings as save_identity_settings,
};
use locks::CachedUser;
pub(crate) use locks::{LockStripes, StripeGuards};

use crate::error::{Error, Problem, Result};
use crate::keys;
use crate::keys::meta;
use crate::keys::metrics::{all_users as all_users_key, ALL_USERS_PREFIX};
use crate::partition::Partition;
use crate::store::merge::BitmapDelta;
use crate::store::{Cf, Store};

/// Longest accepted external user id, in bytes.
pub const MAX_USER_BYTES: usize = 128;

/// Highest internal id ever handed out; keeps `next + 1` from overflowing.
pub const MAX_USER_ID: u32 = crate::partition::LAST_ID;

/// Checks an external user id: 1..=128 bytes of UTF-8 without control characters.
pub fn check_user(user: &str) -> Result<(), Problem> {
    check_name(user, MAX_USER_BYTES)
}

/// Checks a bounded, non-empty name without control characters.
pub fn check_name(name: &str, max_bytes: usize) -> Result<(), Problem> {
    if name.is_empty() {
        return Err(Problem::Empty);
    }
    if name.len() > max_bytes {
        return Err(Problem::TooLong {
            len_bytes: name.len(),
            max_bytes,
        });
    }
    if let Some((offset, _)) = name.char_indices().find(|(_, c)| c.is_control()) {
        return Err(Problem::ControlCharacter { offset });
    }
    Ok(())
}

/// What is stored per internal id (format 4): the external id. Written
/// once, when the id is allocated; a user's event count (its next event's
/// sequence number) lives with its activity state, which every write of
/// events rewrites anyway.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct UserRecord {
    /// The external user id.
    pub name: String,
}

/// The record as formats 1–3 stored it (with the next event sequence
/// number), read while a migration rewrites it.
#[derive(Deserialize)]
struct LegacyUserRecord {
    name: String,
    #[allow(dead_code)] // part of the old layout; the event count now lives in the head
    next_event_seq: u32,
}

/// Decodes a `user_by_id` value of the current or an older format.
pub(crate) fn decode_record(key: &[u8], bytes: &[u8]) -> Result<UserRecord> {
    match crate::store::decode_value::<UserRecord>(Cf::UserById, key, bytes) {
        Ok(r) => Ok(r),
        Err(e) => match crate::codec::decode::<LegacyUserRecord>(bytes) {
            Ok(old) => Ok(UserRecord { name: old.name }),
            Err(_) => Err(e),
        },
    }
}

/// Allocates internal ids. The next id is recovered on open from the largest
/// id on disk, so an id is never reused even after a crash; an allocation whose
/// batch failed leaves a gap, which costs nothing in a bitmap.
///
/// A partitioned store (SPEC §7) hands out ids from its partition's range
/// only, and only to users its partition owns, so the user sets of all
/// partitions are disjoint and sum (or OR) to the global ones.
#[derive(Debug)]
pub(crate) struct Allocator {
    next: AtomicU32,
    pub(crate) partition: Partition,
}

impl Allocator {
    /// Recovers the allocator from the store.
    pub(crate) fn recover(store: &Store) -> Result<Self> {
        let partition = store.partition();
        let after_last = match store.last_key(Cf::UserById)? {
            None => partition.first_id(),
            Some(k) => keys::user_of(Cf::UserById.name(), &k)?.saturating_add(1),
        };
        // Erasing the newest user removes its record; the mark keeps its id
        // from being handed out again.
        let erased_mark: u32 = store.get(Cf::Meta, meta::NEXT_USER_ID_FLOOR)?.unwrap_or(0);
        let next = after_last.max(erased_mark);
        let next = next.max(partition.first_id());
        Ok(Self {
            next: AtomicU32::new(next),
            partition,
        })
    }

    /// A new id for `user`, refused when another partition owns the user.
    fn allocate(&self, user: &str) -> Result<u32> {
        self.partition.check_owns(user)?;
        let last = self.partition.last_id();
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        if id > last {
            // Undo so the counter cannot wrap on repeated attempts.
            self.next.store(last.saturating_add(1), Ordering::Relaxed);
            return Err(Error::LimitReached {
                what: "internal user ids of this partition",
                max: u64::from(last - self.partition.first_id()) + 1,
            });
        }
        debug_assert!(self.partition.holds_id(id));
        Ok(id)
    }
}

/// Deletes the user's id mappings and record and removes it from the
/// all-users set (erasure, SPEC §5), in `batch`. The id is never reused.
pub(crate) fn erase(store: &Store, batch: &mut Batch, user_id: u32, name: &str) -> Result<()> {
    // (the caller drops the cached record once the erasure committed)
    batch.delete(Cf::UserByName, name.as_bytes());
    retire(store, batch, user_id)
}

/// Retires `from_id` (merged into another user, SPEC §2): deletes its id
/// record and takes it out of the all-users set, in `batch`; the caller
/// re-points its name as an alias. The id is never reused.
pub(crate) fn retire(store: &Store, batch: &mut Batch, from_id: u32) -> Result<()> {
    batch.delete(Cf::UserById, keys::user(from_id));
    batch.merge(
        Cf::Metrics,
        all_users_key(from_id),
        BitmapDelta::remove(from_id).encode(),
    );
    raise_id_floor(store, batch, from_id)
}

/// Keeps `user_id` from being handed out again once its record is gone.
fn raise_id_floor(store: &Store, batch: &mut Batch, user_id: u32) -> Result<()> {
    let floor: u32 = store.get(Cf::Meta, meta::NEXT_USER_ID_FLOOR)?.unwrap_or(0);
    let wanted = user_id.saturating_add(1).max(floor);
    batch.put(
        Cf::Meta,
        meta::NEXT_USER_ID_FLOOR,
        crate::codec::encode(&wanted)?,
    );
    Ok(())
}

/// Re-derives the all-users set from the user records: deletes every chunk
/// and writes each chunk anew (migration). Not atomic; re-running starts
/// over.
/// Also rewrites every user record in the current format (formats 1–3
/// kept the event count there).
pub(crate) fn rebuild_all_users(store: &Store) -> Result<()> {
    store.delete_prefix(Cf::Metrics, &ALL_USERS_PREFIX, REBUILD_BATCH_KEYS)?;
    let mut chunks: std::collections::BTreeMap<Vec<u8>, RoaringBitmap> =
        std::collections::BTreeMap::new();
    let mut batch = Batch::new();
    for item in store.range(Cf::UserById, &[], None)? {
        let (k, v) = item?;
        let id = keys::user_of(Cf::UserById.name(), &k)?;
        chunks.entry(all_users_key(id)).or_default().insert(id);
        let record = decode_record(&k, &v)?;
        batch.put(Cf::UserById, &k, crate::codec::encode(&record)?);
        if batch.len() >= REBUILD_BATCH_KEYS {
            store.write(std::mem::take(&mut batch))?;
        }
    }
    store.write(batch)?;
    write_chunks(store, Cf::Metrics, chunks)
}

/// Keys per batch when a migration clears or rewrites a structure.
pub(crate) const REBUILD_BATCH_KEYS: usize = 10_000;

/// Puts whole user-set chunks (a put on a merge column family replaces the
/// value; later operands merge onto it), in bounded batches.
pub(crate) fn write_chunks(
    store: &Store,
    cf: Cf,
    chunks: std::collections::BTreeMap<Vec<u8>, RoaringBitmap>,
) -> Result<()> {
    let mut batch = Batch::new();
    for (key, set) in chunks {
        batch.put(cf, key, crate::store::merge::encode_bitmap(&set));
        if batch.len() >= REBUILD_BATCH_KEYS / 10 {
            store.write(std::mem::take(&mut batch))?;
        }
    }
    store.write(batch)
}

/// Looks up the internal id of an external user id (an alias resolves to
/// the user it was merged into).
pub(crate) fn id_of(store: &impl Reader, user: &str) -> Result<Option<u32>> {
    Ok(lookup(store, user)?.map(|e| e.user_id()))
}

/// Looks up the record of an internal id.
pub(crate) fn record_of(store: &impl Reader, user_id: u32) -> Result<Option<UserRecord>> {
    let key = keys::user(user_id);
    match store.read_raw(Cf::UserById, &key)? {
        None => Ok(None),
        Some(bytes) => decode_record(&key, &bytes).map(Some),
    }
}

/// The names of `ids` (existing users only), looked up together.
pub(crate) fn names_of(
    store: &Store,
    ids: &std::collections::BTreeSet<u32>,
) -> Result<std::collections::HashMap<u32, String>> {
    let keys: Vec<Vec<u8>> = ids.iter().map(|u| keys::user(*u).to_vec()).collect();
    let mut out = std::collections::HashMap::with_capacity(ids.len());
    for ((id, key), value) in ids
        .iter()
        .zip(&keys)
        .zip(store.get_raw_sorted(Cf::UserById, &keys)?)
    {
        if let Some(bytes) = value {
            out.insert(*id, decode_record(key, &bytes)?.name);
        }
    }
    Ok(out)
}

/// The set of every existing user.
pub(crate) fn all_users(store: &impl Reader) -> Result<RoaringBitmap> {
    store.read_set(Cf::Metrics, &ALL_USERS_PREFIX)
}

struct Slot {
    user_id: u32,
    created: bool,
    /// The name is an alias of `user_id`: never cached, never written.
    alias: bool,
}

/// The user side of one logical write: resolves names to ids (allocating new
/// ones), hands out event sequence numbers, and writes changed user records
/// into the write's batch. Callers hold the stripe locks of every user named
/// and of every alias's target ([`lock_resolving`]; the guards also give the
/// cache shards those users' records live in).
pub(crate) struct UserWrites<'a, 'g> {
    store: &'a Store,
    allocator: &'a Allocator,
    guards: &'a mut StripeGuards<'g>,
    /// The names [`lock_resolving`] looked up under the locks.
    resolved: Resolved,
    slots: FxHashMap<String, Slot>,
    /// Names looked up and not found: asked again, they are new.
    absent: FxHashSet<String>,
    created: Vec<u32>,
}

impl<'a, 'g> UserWrites<'a, 'g> {
    /// Starts the user side of one write.
    pub(crate) fn new(
        store: &'a Store,
        allocator: &'a Allocator,
        guards: &'a mut StripeGuards<'g>,
        resolved: Resolved,
    ) -> Self {
        Self {
            store,
            allocator,
            guards,
            resolved,
            slots: FxHashMap::default(),
            absent: FxHashSet::default(),
            created: Vec::new(),
        }
    }

    /// Loads `user`'s slot if the user exists (in the store or earlier in
    /// this write); never allocates.
    fn load(&mut self, user: &str) -> Result<Option<&mut Slot>> {
        if !self.slots.contains_key(user) {
            if self.absent.contains(user) {
                return Ok(None);
            }
            // (the name's own string moves from the resolved map to its slot)
            let (name, entry) = match self.resolved.remove_entry(user) {
                Some(found) => found,
                None => (
                    user.to_owned(),
                    alias::lookup_locked(self.guards, self.store, user)?,
                ),
            };
            let Some(entry) = entry else {
                self.absent.insert(name);
                return Ok(None);
            };
            if let NameEntry::Alias { into, .. } = &entry {
                // Writing through an alias needs its target's lock too, which
                // `lock_resolving` takes; a caller that skipped it is a bug,
                // refused rather than racing another writer of the user.
                let held = self.guards.shard(into).is_some();
                debug_assert!(held, "alias {user} written without its target's lock");
                if !held {
                    return Err(Error::internal(
                        "writes through an alias without its target's lock",
                    ));
                }
            }
            self.slots.insert(
                name,
                Slot {
                    user_id: entry.user_id(),
                    created: false,
                    alias: matches!(entry, NameEntry::Alias { .. }),
                },
            );
        }
        Ok(self.slots.get_mut(user))
    }

    fn slot(&mut self, user: &str) -> Result<&mut Slot> {
        if self.load(user)?.is_none() {
            // A name handed over to another partition (SPEC §7) is not new:
            // its events belong to the user it was merged into. Only
            // partitioned stores hand names over, so only they pay the read.
            if self.allocator.partition.count > 1 {
                if let Some(into) = self.store.get::<String>(Cf::Meta, &meta::moved(user))? {
                    return Err(
                        crate::error::InputError::new("user", Problem::Moved { into }).into(),
                    );
                }
            }
            let user_id = self.allocator.allocate(user)?;
            self.created.push(user_id);
            self.absent.remove(user);
            self.slots.insert(
                user.to_owned(),
                Slot {
                    user_id,
                    created: true,
                    alias: false,
                },
            );
        }
        self.slots.get_mut(user).ok_or_else(|| Error::UnknownUser {
            user: user.to_owned(),
        })
    }

    /// The internal id of `user` if the user exists already (in the store or
    /// earlier in this write).
    pub fn existing_id(&mut self, user: &str) -> Result<Option<u32>> {
        Ok(self.load(user)?.map(|s| s.user_id))
    }

    /// The internal id of `user`, allocating one when the user is new.
    pub fn id(&mut self, user: &str) -> Result<u32> {
        Ok(self.slot(user)?.user_id)
    }

    /// The internal id of `user` (allocating one when the user is new) and
    /// whether this write creates it.
    pub fn id_created(&mut self, user: &str) -> Result<(u32, bool)> {
        let slot = self.slot(user)?;
        Ok((slot.user_id, slot.created))
    }

    /// What `name` maps to in the store (or the stripe cache), read under
    /// its lock; the write's own changes are not seen ([`UserWrites::in_write`]).
    pub(crate) fn entry(&mut self, name: &str) -> Result<Option<alias::NameEntry>> {
        match self.resolved.get(name) {
            Some(entry) => Ok(entry.clone()),
            None => alias::lookup_locked(self.guards, self.store, name),
        }
    }

    /// Takes `name`'s stripe (and its alias target's) if they are free now,
    /// without waiting, and looks it up under them; returns whether this
    /// write holds them now (see [`StripeGuards::try_add`]).
    pub(crate) fn try_hold(&mut self, name: &str) -> Result<bool> {
        if !self.guards.try_add(name) {
            return Ok(false);
        }
        let entry = alias::lookup_locked(self.guards, self.store, name)?;
        if let Some(alias::NameEntry::Alias { into, .. }) = &entry {
            if !self.guards.try_add(into) {
                return Ok(false);
            }
            // (a merge moves an alias only holding its target's stripe:
            // looked up again under it, the answer is settled)
            if alias::lookup_locked(self.guards, self.store, name)? != entry {
                return Ok(false);
            }
        }
        self.resolved.insert(name.to_owned(), entry);
        Ok(true)
    }

    /// Whether this write has used a name of `user_id` already.
    pub(crate) fn uses(&self, user_id: u32) -> bool {
        self.slots.values().any(|s| s.user_id == user_id)
    }

    /// Whether this write has used (read or created) `name` already.
    pub(crate) fn in_write(&self, name: &str) -> bool {
        self.slots.contains_key(name)
    }

    /// Makes `name` an alias of `user_id` for the rest of this write (a
    /// merge in it made it one).
    pub(crate) fn redirect(&mut self, name: &str, user_id: u32) {
        self.absent.remove(name);
        self.resolved.remove(name);
        self.slots.insert(
            name.to_owned(),
            Slot {
                user_id,
                created: false,
                alias: true,
            },
        );
    }

    /// Whether this write holds `user`'s stripe lock.
    pub fn holds(&self, user: &str) -> bool {
        self.guards.holds(user)
    }

    /// Ids allocated by this write.
    pub fn created(&self) -> &[u32] {
        &self.created
    }

    /// Puts every changed user record (and every new mapping) into `batch`.
    /// Call [`UserWrites::remember`] once the batch committed.
    pub(crate) fn finish(&self, batch: &mut Batch) -> Result<()> {
        for (name, slot) in &self.slots {
            if slot.created {
                let record = UserRecord { name: name.clone() };
                batch.put(
                    Cf::UserById,
                    keys::user(slot.user_id),
                    crate::codec::encode(&record)?,
                );
                batch.put(
                    Cf::UserByName,
                    name.as_bytes(),
                    crate::codec::encode(&slot.user_id)?,
                );
            }
        }
        // One operand per chunk of the all-users set.
        let mut by_chunk: std::collections::BTreeMap<Vec<u8>, BitmapDelta> =
            std::collections::BTreeMap::new();
        for &id in &self.created {
            by_chunk
                .entry(all_users_key(id))
                .or_default()
                .adds
                .insert(id);
        }
        for (key, delta) in by_chunk {
            batch.merge(Cf::Metrics, key, delta.encode());
        }
        Ok(())
    }

    /// Caches the records this write read or changed; call only after its
    /// batch committed (a failed write must leave the cache as the store is).
    pub fn remember(self) {
        let capacity = self.guards.shard_capacity();
        for (name, slot) in self.slots {
            if slot.alias {
                continue;
            }
            if let Some(shard) = self.guards.shard(&name) {
                shard.put(
                    &name,
                    CachedUser {
                        user_id: slot.user_id,
                    },
                    capacity,
                );
            }
        }
    }
}
