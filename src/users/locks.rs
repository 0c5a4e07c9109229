//! Striped per-user write locks.
//!
//! Every logical write locks the stripes of the users it names, in ascending
//! stripe order (so two writers can never wait on each other in a cycle), and
//! holds them from its first read to its commit. That serialises the
//! read-modify-write of per-user state without a global lock; writes to
//! different stripes proceed in parallel. Stripes are keyed by the external id
//! so a new user's id allocation is serialised too.

use std::hash::{Hash, Hasher};

use parking_lot::{Mutex, MutexGuard};

/// A fixed set of mutexes that users hash onto.
#[derive(Debug)]
pub struct LockStripes {
    stripes: Vec<Mutex<()>>,
}

/// The guards of one write; dropping it releases every stripe.
#[derive(Debug)]
pub struct StripeGuards<'a> {
    _guards: Vec<MutexGuard<'a, ()>>,
}

impl LockStripes {
    /// Creates `count` stripes (at least 1).
    pub fn new(count: usize) -> Self {
        Self {
            stripes: (0..count.max(1)).map(|_| Mutex::new(())).collect(),
        }
    }

    fn stripe_of(&self, user: &str) -> usize {
        // SipHash with fixed keys: deterministic, well spread.
        let mut h = std::collections::hash_map::DefaultHasher::new();
        user.hash(&mut h);
        (h.finish() % self.stripes.len() as u64) as usize
    }

    /// Locks every stripe, in ascending order: no other write can run until
    /// the guards drop (aggregate rebuilds need the store to themselves).
    pub fn lock_all(&self) -> StripeGuards<'_> {
        StripeGuards {
            _guards: self.stripes.iter().map(|m| m.lock()).collect(),
        }
    }

    /// Locks the stripes of every user in `users`, in ascending stripe order.
    pub fn lock<'a, I, S>(&'a self, users: I) -> StripeGuards<'a>
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
        let guards = idx.into_iter().map(|i| self.stripes[i].lock()).collect();
        StripeGuards { _guards: guards }
    }
}
