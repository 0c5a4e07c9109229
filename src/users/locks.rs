//! Striped per-user write locks, each guarding a shard of the user cache.
//!
//! Every logical write locks the stripes of the users it names, in ascending
//! stripe order (so two writers can never wait on each other in a cycle), and
//! holds them from its first read to its commit. That serialises the
//! read-modify-write of per-user state without a global lock; writes to
//! different stripes proceed in parallel. Stripes are keyed by the external id
//! so a new user's id allocation is serialised too.
//!
//! Each stripe also caches the internal ids of some of its users: a write
//! reads them under the lock that orders every write of those users, and
//! adds them only after its batch committed, so the cache can never
//! disagree with the store. It is never a source of truth: a miss reads the
//! store, and erasure (the only change of a mapping) drops the entry under
//! the same lock.

use std::hash::BuildHasher;

use rustc_hash::{FxBuildHasher, FxHashMap};

use parking_lot::{Mutex, MutexGuard};

/// A user's cached mapping.
#[derive(Debug, Clone)]
pub(crate) struct CachedUser {
    pub user_id: u32,
}

/// The cached users of one stripe.
#[derive(Debug, Default)]
pub(crate) struct Shard {
    users: FxHashMap<String, CachedUser>,
}

impl Shard {
    /// The cached record of `name`.
    pub fn get(&self, name: &str) -> Option<&CachedUser> {
        self.users.get(name)
    }

    /// Caches `name`'s record, evicting an arbitrary entry when full.
    pub fn put(&mut self, name: &str, user: CachedUser, capacity: usize) {
        if capacity == 0 {
            return;
        }
        if self.users.len() >= capacity && !self.users.contains_key(name) {
            let victim = self.users.keys().next().cloned();
            if let Some(v) = victim {
                self.users.remove(&v);
            }
        }
        self.users.insert(name.to_owned(), user);
    }

    /// Forgets `name` (erasure).
    pub fn remove(&mut self, name: &str) {
        self.users.remove(name);
    }
}

/// A fixed set of mutexes that users hash onto.
#[derive(Debug)]
pub(crate) struct LockStripes {
    stripes: Vec<Mutex<Shard>>,
    /// Most cached users per stripe.
    shard_capacity: usize,
}

/// The guards of one write; dropping it releases every stripe.
#[derive(Debug)]
pub(crate) struct StripeGuards<'a> {
    stripes: &'a LockStripes,
    guards: Vec<(usize, MutexGuard<'a, Shard>)>,
    /// The hierarchy's level of the stripes (docs/architecture.md).
    _order: crate::order::Token,
}

impl StripeGuards<'_> {
    /// The cache shard of `user`, if this write holds its stripe.
    pub(crate) fn shard(&mut self, user: &str) -> Option<&mut Shard> {
        let i = self.stripes.stripe_of(user);
        self.guards
            .binary_search_by_key(&i, |(j, _)| *j)
            .ok()
            .map(|at| &mut *self.guards[at].1)
    }

    /// Whether this write holds `user`'s stripe.
    pub(crate) fn holds(&self, user: &str) -> bool {
        let i = self.stripes.stripe_of(user);
        self.guards.binary_search_by_key(&i, |(j, _)| *j).is_ok()
    }

    /// Takes `user`'s stripe too if it is free now, without waiting (a
    /// write that found it needs another user while holding its stripes
    /// may not wait for one out of ascending order); returns whether this
    /// write holds it now.
    pub(crate) fn try_add(&mut self, user: &str) -> bool {
        let i = self.stripes.stripe_of(user);
        match self.guards.binary_search_by_key(&i, |(j, _)| *j) {
            Ok(_) => true,
            Err(at) => match self.stripes.stripes[i].try_lock() {
                Some(guard) => {
                    self.guards.insert(at, (i, guard));
                    true
                }
                None => false,
            },
        }
    }

    /// Most cached users per shard.
    pub(crate) fn shard_capacity(&self) -> usize {
        self.stripes.shard_capacity
    }
}

impl LockStripes {
    /// Creates `count` stripes (at least 1) caching at most `cache_users`
    /// user records in all.
    pub fn new(count: usize, cache_users: usize) -> Self {
        let count = count.max(1);
        Self {
            stripes: (0..count).map(|_| Mutex::new(Shard::default())).collect(),
            shard_capacity: cache_users / count,
        }
    }

    fn stripe_of(&self, user: &str) -> usize {
        let h = FxBuildHasher.hash_one(user);
        (h % self.stripes.len() as u64) as usize
    }

    /// Locks every stripe, in ascending order: no other write can run until
    /// the guards drop (aggregate rebuilds need the store to themselves).
    pub(crate) fn lock_all(&self) -> StripeGuards<'_> {
        let order = crate::order::Token::take(crate::order::Level::Stripes);
        StripeGuards {
            _order: order,
            stripes: self,
            guards: self.stripes.iter().map(|m| m.lock()).enumerate().collect(),
        }
    }

    /// Locks the stripes of every user in `users`, in ascending stripe order.
    pub(crate) fn lock<'a, I, S>(&'a self, users: I) -> StripeGuards<'a>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut idx: Vec<usize> = users
            .into_iter()
            .map(|u| self.stripe_of(u.as_ref()))
            .collect();
        idx.sort_unstable();
        idx.dedup();
        let order = crate::order::Token::take(crate::order::Level::Stripes);
        let guards = idx
            .into_iter()
            .map(|i| (i, self.stripes[i].lock()))
            .collect();
        StripeGuards {
            _order: order,
            stripes: self,
            guards,
        }
    }
}
