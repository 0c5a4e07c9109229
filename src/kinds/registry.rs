//! The custom event-kind registry: names ↔ dense ids, persisted in `meta`
//! (key layouts: [`crate::keys::meta`]).
//!
//! A custom kind is registered atomically with the first write that uses it:
//! the writer holds the allocation mutex until that write commits, then
//! publishes the name. Known kinds never touch the registry.

use std::collections::HashMap;

use crate::order::{Held, Level, Mutex, RwLock};
use crate::store::Batch;
use parking_lot::MutexGuard;

use super::{EventKind, FIRST_CUSTOM_KIND_ID};
use crate::codec;
use crate::error::{CorruptionError, Error, OpenError, Problem, Result};
use crate::keys::meta;
use crate::store::KindPolicy;
use crate::store::{decode_value, Cf, Store};

/// Most custom kinds a store may register.
pub const MAX_CUSTOM_KINDS: u32 = 4096;

#[derive(Debug, Default)]
struct Maps {
    by_name: HashMap<String, u32>,
    by_id: HashMap<u32, String>,
}

/// Custom kinds known to the store.
#[derive(Debug)]
pub(crate) struct KindRegistry {
    maps: RwLock<Maps>,
    alloc: Mutex<()>,
    /// Which kinds are accepted (fixed at creation).
    policy: KindPolicy,
}

/// Kinds reserved by an in-flight write; published once the write commits.
pub(crate) struct Reservation<'a> {
    registry: &'a KindRegistry,
    _alloc: Option<Held<MutexGuard<'a, ()>>>,
    fresh: Vec<(String, u32)>,
}

impl Reservation<'_> {
    /// The id of `kind`, including kinds reserved by this write.
    pub fn id(&self, kind: &EventKind) -> Result<u32> {
        if let Some(id) = kind.known_id() {
            return Ok(id);
        }
        let name = kind.as_str();
        if let Some((_, id)) = self.fresh.iter().find(|(n, _)| n == name) {
            return Ok(*id);
        }
        self.registry
            .maps
            .read()
            .by_name
            .get(name)
            .copied()
            .ok_or_else(|| Error::internal("custom kind reserved outside its write"))
    }

    /// Makes this write's new kinds visible; call after the write committed.
    pub fn publish(self) {
        if self.fresh.is_empty() {
            return;
        }
        let mut maps = self.registry.maps.write();
        for (name, id) in self.fresh {
            maps.by_id.insert(id, name.clone());
            maps.by_name.insert(name, id);
        }
    }
}

impl KindRegistry {
    /// Loads every registered custom kind and the kind policy, writing
    /// the policy on a store's first open (`requested`, or open); a
    /// `requested` policy must match the stored one.
    pub(crate) fn load(store: &Store, requested: Option<&KindPolicy>) -> Result<Self> {
        let policy = load_policy(store, requested)?;
        let mut maps = Maps::default();
        for item in store.prefix(Cf::Meta, meta::KIND_NAME_PREFIX)? {
            let (k, v) = item?;
            let name =
                std::str::from_utf8(meta::kind_name_of(&k).unwrap_or_default()).map_err(|_| {
                    CorruptionError {
                        cf: Cf::Meta.name(),
                        what: "key",
                        key: k.to_vec(),
                        reason: "kind name is not UTF-8".into(),
                    }
                })?;
            let id: u32 = decode_value(Cf::Meta, &k, &v)?;
            maps.by_id.insert(id, name.to_owned());
            maps.by_name.insert(name.to_owned(), id);
        }
        Ok(Self {
            maps: RwLock::new(Level::KindsMaps, maps),
            alloc: Mutex::new(Level::KindsAlloc, ()),
            policy,
        })
    }

    /// Which kinds the store accepts.
    pub fn policy(&self) -> &KindPolicy {
        &self.policy
    }

    /// Refuses a kind the policy does not accept, naming the accepted ones.
    pub fn check(&self, kind: &EventKind) -> std::result::Result<(), Problem> {
        match &self.policy {
            KindPolicy::Strict(list) if !self.policy.allows(kind.as_str()) => {
                Err(Problem::KindNotAllowed {
                    kind: kind.as_str().to_owned(),
                    allowed: list.clone(),
                })
            }
            _ => Ok(()),
        }
    }

    /// The kind with id `id`.
    pub fn kind(&self, id: u32) -> Option<EventKind> {
        EventKind::from_known_id(id).or_else(|| {
            self.maps
                .read()
                .by_id
                .get(&id)
                .map(|n| EventKind::Custom(n.clone()))
        })
    }

    /// The id of `kind`, if it is known or registered.
    pub fn id(&self, kind: &EventKind) -> Option<u32> {
        kind.known_id()
            .or_else(|| self.maps.read().by_name.get(kind.as_str()).copied())
    }

    /// Every registered custom kind with its id.
    pub fn custom(&self) -> Vec<(u32, String)> {
        let mut v: Vec<(u32, String)> = self
            .maps
            .read()
            .by_id
            .iter()
            .map(|(id, n)| (*id, n.clone()))
            .collect();
        v.sort();
        v
    }

    /// Reserves ids for every unregistered kind in `kinds`, putting their
    /// registry entries into `batch`. Holds the allocation lock (only when
    /// something is new) until the returned reservation is dropped.
    pub(crate) fn reserve<'a, 'k>(
        &'a self,
        kinds: impl IntoIterator<Item = &'k EventKind>,
        batch: &mut Batch,
    ) -> Result<Reservation<'a>> {
        let unknown: Vec<&EventKind> = {
            let maps = self.maps.read();
            kinds
                .into_iter()
                .filter(|k| k.known_id().is_none() && !maps.by_name.contains_key(k.as_str()))
                .collect()
        };
        if unknown.is_empty() {
            return Ok(Reservation {
                registry: self,
                _alloc: None,
                fresh: Vec::new(),
            });
        }
        let guard = self.alloc.lock();
        let maps = self.maps.read();
        let mut next = FIRST_CUSTOM_KIND_ID + maps.by_id.len() as u32;
        let mut fresh: Vec<(String, u32)> = Vec::new();
        for k in unknown {
            let name = k.as_str();
            if maps.by_name.contains_key(name) || fresh.iter().any(|(n, _)| n == name) {
                continue;
            }
            if next >= FIRST_CUSTOM_KIND_ID + MAX_CUSTOM_KINDS {
                return Err(Error::LimitReached {
                    what: "custom event kinds",
                    max: u64::from(MAX_CUSTOM_KINDS),
                });
            }
            batch.put(Cf::Meta, meta::kind_name(name), codec::encode(&next)?);
            batch.put(
                Cf::Meta,
                meta::kind_id(next),
                codec::encode(&name.to_owned())?,
            );
            fresh.push((name.to_owned(), next));
            next += 1;
        }
        drop(maps);
        Ok(Reservation {
            registry: self,
            _alloc: Some(guard),
            fresh,
        })
    }
}

/// Most kinds a strict policy lists.
pub const MAX_STRICT_KINDS: usize = 1024;

/// The stored kind policy; on a store's first open, `requested` (or open)
/// is checked and written with its creation.
fn load_policy(store: &Store, requested: Option<&KindPolicy>) -> Result<KindPolicy> {
    let stored: Option<KindPolicy> = store.get(Cf::Meta, meta::KIND_POLICY)?;
    match (stored, requested) {
        (Some(s), Some(r)) if &s != r => Err(OpenError::SettingMismatch {
            setting: "kinds",
            stored: format!("{s:?}"),
            requested: format!("{r:?}"),
        }
        .into()),
        (Some(s), _) => Ok(s),
        (None, requested) => {
            let policy = requested.cloned().unwrap_or(KindPolicy::Open);
            if let KindPolicy::Strict(list) = &policy {
                check_strict(list)?;
            }
            // (an older store has none: open, as it always was; written
            // with a new store's creation batch, or by a writable open)
            if store.check_writable().is_ok() {
                store.put_setting(meta::KIND_POLICY, codec::encode(&policy)?)?;
            }
            Ok(policy)
        }
    }
}

fn check_strict(list: &[String]) -> Result<()> {
    let bad = |reason: String| OpenError::InvalidOption {
        option: "kinds",
        reason,
    };
    if list.is_empty() || list.len() > MAX_STRICT_KINDS {
        return Err(bad(format!(
            "a strict policy lists 1..={MAX_STRICT_KINDS} kinds"
        ))
        .into());
    }
    for k in list {
        crate::users::check_name(k, super::MAX_KIND_BYTES)
            .map_err(|p| bad(format!("{k:?}: {p}")))?;
    }
    Ok(())
}
