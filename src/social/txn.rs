//! A write's view of the `social` column family: its own puts and deletes
//! over the store's records, so that the steps of one write (an erasure,
//! then the same events recorded under another user, then the cascades of
//! both) each read what the steps before them wrote, and everything lands
//! in the write's one batch.
//!
//! Every social writer holds the store's social lock from its first read
//! to its commit (docs/social.md): no other writer changes these records
//! underneath.

use std::collections::BTreeMap;

use crate::error::Result;
use crate::store::{Batch, Cf, Store};

/// Buffered puts (`Some`) and deletes (`None`) over the store.
pub(crate) struct Txn<'s> {
    store: &'s Store,
    /// Read nothing from the store: derive from scratch (rebuild, verify).
    blank: bool,
    over: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
}

impl<'s> Txn<'s> {
    pub fn new(store: &'s Store, blank: bool) -> Self {
        Self {
            store,
            blank,
            over: BTreeMap::new(),
        }
    }

    pub fn store(&self) -> &'s Store {
        self.store
    }

    /// The value under `key`: this write's own, else the store's.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.get_in(key, true)
    }

    /// [`Txn::get`], reading the store only when `stored` (the caller knows
    /// nothing is stored under `key`: a user this write created).
    pub fn get_in(&self, key: &[u8], stored: bool) -> Result<Option<Vec<u8>>> {
        match self.over.get(key) {
            Some(v) => Ok(v.clone()),
            None if self.blank || !stored => Ok(None),
            None => self.store.get_raw(Cf::Social, key),
        }
    }

    pub fn put(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.over.insert(key, Some(value));
    }

    pub fn delete(&mut self, key: Vec<u8>) {
        self.over.insert(key, None);
    }

    /// Every record with `from <= key < until` (to the end of the family's
    /// keys for `None`), in key order, this write's changes applied.
    /// The store's records are read only when `stored` (the caller knows
    /// none is stored in the range: a user this write created).
    pub fn scan_in(
        &self,
        from: &[u8],
        until: Option<&[u8]>,
        stored: bool,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let mut merged: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
        if !self.blank && stored {
            for item in self
                .store
                .range(Cf::Social, from, until.map(<[u8]>::to_vec))?
            {
                let (k, v) = item?;
                merged.insert(k.into_vec(), v.into_vec());
            }
        }
        let upper = match until {
            Some(u) => std::ops::Bound::Excluded(u.to_vec()),
            None => std::ops::Bound::Unbounded,
        };
        for (k, v) in self
            .over
            .range((std::ops::Bound::Included(from.to_vec()), upper))
        {
            match v {
                Some(v) => merged.insert(k.clone(), v.clone()),
                None => merged.remove(k),
            };
        }
        Ok(merged.into_iter().collect())
    }

    /// Every record under `prefix`.
    pub fn scan_prefix(&self, prefix: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        self.scan_prefix_in(prefix, true)
    }

    /// [`Txn::scan_prefix`], reading the store only when `stored`.
    pub fn scan_prefix_in(&self, prefix: &[u8], stored: bool) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let until = crate::keys::prefix_successor(prefix);
        self.scan_in(prefix, until.as_deref(), stored)
    }

    /// The buffered puts (a blank derivation's whole result).
    pub fn into_puts(self) -> BTreeMap<Vec<u8>, Vec<u8>> {
        self.over
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k, v)))
            .collect()
    }

    /// Puts every buffered change into `batch`.
    pub(crate) fn finish(self, batch: &mut Batch) {
        for (k, v) in self.over {
            match v {
                Some(v) => batch.put(Cf::Social, k, v),
                None => batch.delete(Cf::Social, k),
            }
        }
    }
}
