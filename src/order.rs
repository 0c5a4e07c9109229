//! The lock hierarchy (docs/architecture.md, "Lock hierarchy"), written
//! down once and checked.
//!
//! Every lock an open store shares between threads has a [`Level`]; a
//! thread may take a lock only at a level above every level it already
//! holds. Taken in that order, no two threads can wait on each other in a
//! cycle. In debug builds (every test) each acquisition checks it against
//! a per-thread list of held levels and panics on an inversion — or on
//! taking a level twice, which with parking_lot's fair `RwLock` deadlocks
//! as soon as a writer queues between the two reads — so an inverted order
//! fails the first test that walks the path, not a lucky race. Release
//! builds skip the check (a thread-local access per lock). Must not know
//! what any lock protects.

use std::ops::{Deref, DerefMut};

/// The levels, lowest (taken first) to highest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Level {
    /// One log-position write at a time (held across the write, which may
    /// become a job).
    Position,
    /// One `advance` (or job) at a time.
    Advance,
    /// Erasures and merges, one at a time.
    Erase,
    /// The per-user stripe locks (several, always in ascending order, in
    /// one acquisition).
    Stripes,
    /// Coupon counts and stock (after the stripes: a coupon write holds
    /// its users' stripes first).
    Coupons,
    /// Allocation of custom kind ids.
    KindsAlloc,
    /// The metric settings (the stage model).
    MetricSettings,
    /// The feed's clock.
    Clock,
    /// Attribution's lock.
    Social,
    /// Attribution's settings.
    SocialSettings,
    /// The earning rules and tiers.
    LedgerSettings,
    /// The new-member gift pack.
    GiftPack,
    /// The feature definitions and tag rules.
    Features,
    /// The declared dimensions.
    Dims,
    /// Which ids are anonymous.
    IdentitySettings,
    /// The dimensions' value registry (only the custom-kind maps are
    /// read under it).
    DimValues,
    /// The custom-kind maps.
    KindsMaps,
    /// The change feed's commit order (inside the store's commit).
    FeedCommit,
    /// One feed trim at a time (taken with nothing held; its deletes carry
    /// no feed entry, so nothing is taken under it).
    FeedTrim,
}

#[cfg(debug_assertions)]
thread_local! {
    static HELD: std::cell::RefCell<Vec<Level>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Proof that this thread holds a lock of a level; releases it on drop.
#[derive(Debug)]
pub(crate) struct Token {
    #[cfg(debug_assertions)]
    level: Level,
}

impl Token {
    /// Notes that this thread takes a lock of `level`, panicking (debug
    /// builds) when it already holds one at that level or above.
    pub fn take(level: Level) -> Self {
        #[cfg(debug_assertions)]
        HELD.with(|held| {
            let mut held = held.borrow_mut();
            if let Some(top) = held.iter().max() {
                assert!(
                    level > *top,
                    "lock order: taking {level:?} while holding {held:?} \
                     (docs/architecture.md, \"Lock hierarchy\")"
                );
            }
            held.push(level);
        });
        #[cfg(not(debug_assertions))]
        let _ = level;
        Self {
            #[cfg(debug_assertions)]
            level,
        }
    }
}

impl Drop for Token {
    fn drop(&mut self) {
        #[cfg(debug_assertions)]
        HELD.with(|held| {
            let mut held = held.borrow_mut();
            if let Some(i) = held.iter().rposition(|l| *l == self.level) {
                held.remove(i);
            }
        });
    }
}

/// A lock guard with its level's token (released after the guard).
pub(crate) struct Held<G> {
    guard: G,
    _token: Token,
}

impl<G: Deref> Deref for Held<G> {
    type Target = G::Target;
    fn deref(&self) -> &Self::Target {
        &self.guard
    }
}

impl<G: DerefMut> DerefMut for Held<G> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.guard
    }
}

/// A `parking_lot::Mutex` at a level of the hierarchy.
#[derive(Debug)]
pub(crate) struct Mutex<T> {
    level: Level,
    inner: parking_lot::Mutex<T>,
}

impl<T> Mutex<T> {
    pub const fn new(level: Level, value: T) -> Self {
        Self {
            level,
            inner: parking_lot::Mutex::new(value),
        }
    }

    pub fn lock(&self) -> Held<parking_lot::MutexGuard<'_, T>> {
        let token = Token::take(self.level);
        Held {
            guard: self.inner.lock(),
            _token: token,
        }
    }
}

/// A `parking_lot::RwLock` at a level of the hierarchy.
#[derive(Debug)]
pub(crate) struct RwLock<T> {
    level: Level,
    inner: parking_lot::RwLock<T>,
}

impl<T> RwLock<T> {
    pub const fn new(level: Level, value: T) -> Self {
        Self {
            level,
            inner: parking_lot::RwLock::new(value),
        }
    }

    pub fn read(&self) -> Held<parking_lot::RwLockReadGuard<'_, T>> {
        let token = Token::take(self.level);
        Held {
            guard: self.inner.read(),
            _token: token,
        }
    }

    pub fn write(&self) -> Held<parking_lot::RwLockWriteGuard<'_, T>> {
        let token = Token::take(self.level);
        Held {
            guard: self.inner.write(),
            _token: token,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ascending_levels_are_taken_and_released() {
        let a = Mutex::new(Level::Stripes, 1);
        let b = RwLock::new(Level::Clock, 2);
        {
            let _a = a.lock();
            let _b = b.read();
        }
        // released: the lower level again
        let _a = a.lock();
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "lock order: taking MetricSettings while holding [Clock]")]
    fn an_inverted_order_panics() {
        let clock = RwLock::new(Level::Clock, ());
        let settings = RwLock::new(Level::MetricSettings, ());
        let _c = clock.read();
        let _s = settings.read();
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "lock order: taking Clock while holding [Clock]")]
    fn a_level_taken_twice_panics() {
        let clock = RwLock::new(Level::Clock, ());
        let _a = clock.read();
        let _b = clock.read();
    }
}
