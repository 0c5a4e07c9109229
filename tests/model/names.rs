//! Users as a model sees them through identity merges and erasures, shared
//! by the loyalty property tests: each user's events in arrival order (a
//! repeated event id is a duplicate, as in the store), every name resolving
//! to the user it was merged into, and the merge and erase steps applied to
//! the store and the model together.
#![allow(dead_code)]

use std::collections::BTreeMap;

use stickydb::{Db, MergeOptions};

/// The event id a model event carries, if any.
pub trait EventId {
    /// The id (duplicates share it).
    fn event_id(&self) -> Option<String>;
}

/// Each user's events and where merged names go.
pub struct Names<E> {
    pub events: BTreeMap<String, Vec<E>>,
    pub alias: BTreeMap<String, String>,
    merges: u32,
}

impl<E> Default for Names<E> {
    fn default() -> Self {
        Self {
            events: BTreeMap::new(),
            alias: BTreeMap::new(),
            merges: 0,
        }
    }
}

impl<E: EventId> Names<E> {
    /// The user `name` resolves to.
    pub fn resolve(&self, name: &str) -> String {
        self.alias
            .get(name)
            .cloned()
            .unwrap_or_else(|| name.to_owned())
    }

    /// Records `ev` for `name`'s user unless its id was seen there.
    pub fn record(&mut self, name: &str, ev: E) {
        let evs = self.events.entry(self.resolve(name)).or_default();
        let id = ev.event_id();
        if id.is_none() || !evs.iter().any(|e| e.event_id() == id) {
            evs.push(ev);
        }
    }

    /// Merges the user `from` resolves to into the one `into` resolves
    /// to, in the store and the model; `None` when there is nothing to
    /// merge, else the two users.
    pub fn merge(&mut self, db: &Db, from: &str, into: &str) -> Option<(String, String)> {
        let (from, into) = (self.resolve(from), self.resolve(into));
        if from == into || !self.events.contains_key(&from) {
            return None;
        }
        self.merges += 1;
        db.merge(
            &from,
            &into,
            &format!("m{}", self.merges),
            MergeOptions::forced(),
        )
        .expect("merge");
        for ev in self.events.remove(&from).unwrap_or_default() {
            self.record(&into, ev);
        }
        for target in self.alias.values_mut() {
            if *target == from {
                *target = into.clone();
            }
        }
        self.alias.insert(from.clone(), into.clone());
        Some((from, into))
    }

    /// Erases the user `name` resolves to, in the store and the model;
    /// `None` when it has no events.
    pub fn erase(&mut self, db: &Db, name: &str) -> Option<String> {
        let user = self.resolve(name);
        self.events.remove(&user)?;
        db.erase_user(&user).expect("erase");
        self.alias.retain(|_, target| *target != user);
        Some(user)
    }
}
