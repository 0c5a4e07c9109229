//! The value registry: each dimension's values ↔ dense ids (from 1; 0 is
//! `(other)`), first come first registered up to the dimension's cap,
//! persisted in `meta` (`keys::dims::value`).
//!
//! Ids are handed out in memory under a short lock, and a write puts the
//! record of every id it uses that is not yet known to be stored (and,
//! when it folds a value because the cap is reached, of every such id of
//! that dimension): whatever commits never names an id, or leans on a
//! full registry, that the store does not hold. A write that fails leaves
//! its ids unstored; the next write that uses them stores them, and a
//! reopen forgets them — no committed data named them.

use std::collections::BTreeSet;

use rustc_hash::FxHashMap as HashMap;

use super::{DimSet, StoredDim, MAX_VALUE_BYTES, OTHER_ID};
use crate::codec;
use crate::error::Result;
use crate::keys::dims as dk;
use crate::store::{Batch, Cf, Store};

/// One dimension's registered values.
#[derive(Debug, Default, Clone)]
struct Values {
    ids: HashMap<String, u32>,
    /// Text of id `i` at `i - 1`.
    texts: Vec<String>,
    /// Ids handed out whose record no commit is known to have stored.
    unstored: BTreeSet<u32>,
}

/// Every dimension's values.
#[derive(Debug, Default, Clone)]
pub(crate) struct Registry {
    dims: HashMap<u16, Values>,
}

/// The registry records one write must carry: `(dim, id, text)`.
pub(crate) type Records = Vec<(u16, u32, String)>;

impl Registry {
    /// Loads the values of every dimension of `set`.
    pub fn load(store: &Store, set: &DimSet) -> Result<Registry> {
        let mut reg = Registry::default();
        for d in set.stored() {
            let mut v = Values::default();
            for item in store.prefix(Cf::Meta, &dk::values_of(d.id))? {
                let (k, bytes) = item?;
                let (_, id) = dk::parse_value(&k).ok_or_else(|| corrupt(&k, "a value key"))?;
                let text: String = codec::decode(&bytes).map_err(|_| corrupt(&k, "a value"))?;
                if id as usize != v.texts.len() + 1 {
                    return Err(corrupt(&k, "value ids not dense from 1"));
                }
                v.ids.insert(text.clone(), id);
                v.texts.push(text);
            }
            reg.dims.insert(d.id, v);
        }
        Ok(reg)
    }

    /// The id of `text` in `d`, registering it if the cap allows (the
    /// records the write must carry go to `records`).
    pub fn resolve(&mut self, d: &StoredDim, text: &str, records: &mut Records) -> u32 {
        let v = self.dims.entry(d.id).or_default();
        if let Some(&id) = v.ids.get(text) {
            if v.unstored.contains(&id) {
                records.push((d.id, id, text.to_owned()));
            }
            return id;
        }
        let full = v.texts.len() >= d.dim.max_values as usize;
        if full || text.len() > MAX_VALUE_BYTES {
            // (folding leans on the ids that filled the cap: store them)
            for &id in &v.unstored {
                if let Some(t) = v.texts.get(id as usize - 1) {
                    records.push((d.id, id, t.clone()));
                }
            }
            return OTHER_ID;
        }
        let id = v.texts.len() as u32 + 1;
        v.ids.insert(text.to_owned(), id);
        v.texts.push(text.to_owned());
        v.unstored.insert(id);
        records.push((d.id, id, text.to_owned()));
        id
    }

    /// The id `text` has in `d` if resolving it would change nothing and
    /// put no record: registered and stored, or folded with every id of
    /// the cap stored. `None`: [`Self::resolve`] it.
    pub fn settled(&self, d: &StoredDim, text: &str) -> Option<u32> {
        let v = self.dims.get(&d.id)?;
        match v.ids.get(text) {
            Some(&id) => (!v.unstored.contains(&id)).then_some(id),
            None => {
                let full = v.texts.len() >= d.dim.max_values as usize;
                let folds = full || text.len() > MAX_VALUE_BYTES;
                (folds && v.unstored.is_empty()).then_some(OTHER_ID)
            }
        }
    }

    /// The id of `text` in `d` without registering it (an unregistered
    /// value was folded).
    pub fn lookup(&self, dim: u16, text: &str) -> u32 {
        self.dims
            .get(&dim)
            .and_then(|v| v.ids.get(text).copied())
            .unwrap_or(OTHER_ID)
    }

    /// The text of value `id` of `dim`.
    pub fn text(&self, dim: u16, id: u32) -> Option<&str> {
        if id == OTHER_ID {
            return Some(super::OTHER);
        }
        let v = self.dims.get(&dim)?;
        v.texts.get(id as usize - 1).map(String::as_str)
    }

    /// How many values `dim` tracks.
    pub fn count(&self, dim: u16) -> u32 {
        self.dims.get(&dim).map_or(0, |v| v.texts.len() as u32)
    }

    /// Marks `records` stored (their write committed).
    pub fn stored(&mut self, records: &Records) {
        for (dim, id, _) in records {
            if let Some(v) = self.dims.get_mut(dim) {
                v.unstored.remove(id);
            }
        }
    }

    /// Forgets `dim` (dropped).
    pub fn forget(&mut self, dim: u16) {
        self.dims.remove(&dim);
    }

    /// Starts `dim` empty (declared).
    pub fn declare(&mut self, dim: u16) {
        self.dims.insert(dim, Values::default());
    }
}

/// Puts `records` into `batch`.
pub(crate) fn put_records(batch: &mut Batch, records: &Records) -> Result<()> {
    for (dim, id, text) in records {
        batch.put(Cf::Meta, dk::value(*dim, *id), codec::encode(text)?);
    }
    Ok(())
}

fn corrupt(key: &[u8], reason: &str) -> crate::Error {
    crate::error::CorruptionError {
        cf: Cf::Meta.name(),
        what: "value",
        key: key.to_vec(),
        reason: format!("dimension registry: {reason}"),
    }
    .into()
}
