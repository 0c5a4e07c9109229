//! One logical write's changes, gathered before they reach RocksDB.
//!
//! Subsystems add puts, merges and deletes by column family; the store
//! commits them as one atomic `WriteBatch`. Gathering first buys two things:
//! every value is checked against the size cap before anything is written
//! (a write with one oversized value fails whole), and the operations are
//! handed to RocksDB sorted by column family and key, so the memtable's
//! skip list inserts each key next to the one before instead of searching
//! from the top (a stable sort: operations on one key keep their order).

use rocksdb::WriteBatch;

use super::{Cf, Store};
use crate::codec::MAX_STORED_VALUE_BYTES;
use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Put,
    Merge,
    Delete,
}

#[derive(Debug)]
struct Op {
    cf: Cf,
    kind: Kind,
    key: Vec<u8>,
    value: Vec<u8>,
}

/// The changes of one logical write; committed by [`Store::write`].
#[derive(Debug, Default)]
pub struct Batch {
    ops: Vec<Op>,
}

impl Batch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `key` to `value`.
    pub fn put(&mut self, cf: Cf, key: impl AsRef<[u8]>, value: impl Into<Vec<u8>>) {
        self.ops.push(Op {
            cf,
            kind: Kind::Put,
            key: key.as_ref().to_vec(),
            value: value.into(),
        });
    }

    /// Adds a merge operand for `key` (column families with a merge operator).
    pub fn merge(&mut self, cf: Cf, key: impl AsRef<[u8]>, operand: impl Into<Vec<u8>>) {
        self.ops.push(Op {
            cf,
            kind: Kind::Merge,
            key: key.as_ref().to_vec(),
            value: operand.into(),
        });
    }

    /// Deletes `key`.
    pub fn delete(&mut self, cf: Cf, key: impl AsRef<[u8]>) {
        self.ops.push(Op {
            cf,
            kind: Kind::Delete,
            key: key.as_ref().to_vec(),
            value: Vec::new(),
        });
    }

    /// Number of operations.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// Whether the batch holds no operation.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Checks every value against the cap and builds the RocksDB batch,
    /// sorted by column family and key.
    pub(super) fn into_write_batch(mut self, store: &Store) -> Result<WriteBatch> {
        for op in &self.ops {
            if op.value.len() as u64 > MAX_STORED_VALUE_BYTES {
                return Err(Error::ValueTooLarge {
                    what: format!("{} key {:02x?}", op.cf.name(), op.key),
                    bytes: op.value.len() as u64,
                    max: MAX_STORED_VALUE_BYTES,
                });
            }
        }
        self.ops
            .sort_by(|a, b| (a.cf as usize, &a.key).cmp(&(b.cf as usize, &b.key)));
        let mut wb = WriteBatch::default();
        for op in self.ops {
            let cf = store.cf(op.cf)?;
            match op.kind {
                Kind::Put => wb.put_cf(cf, op.key, op.value),
                Kind::Merge => wb.merge_cf(cf, op.key, op.value),
                Kind::Delete => wb.delete_cf(cf, op.key),
            }
        }
        Ok(wb)
    }
}
