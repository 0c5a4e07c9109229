//! Sizes and counts of a store, as RocksDB estimates them.

use std::collections::BTreeMap;

use super::{Db, RawEntry};
use crate::error::Result;
use crate::metrics;
use crate::store::Cf;

/// Sizes and counts of a store.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[non_exhaustive]
pub struct Stats {
    /// Users in the store.
    pub users: u64,
    /// Events in the store (duplicates excluded).
    pub events: u64,
    /// Events per kind name.
    pub events_by_kind: BTreeMap<String, u64>,
    /// Per column family: estimated keys, live SST bytes, memtable bytes.
    pub column_families: BTreeMap<String, CfStats>,
    /// RocksDB figures over the whole store (summed over column families
    /// where they are per family): block cache usage and capacity, table
    /// readers' memory, pending compaction bytes, running flushes and
    /// compactions.
    pub engine: BTreeMap<String, u64>,
}

/// Size figures of one column family, as RocksDB estimates them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct CfStats {
    /// Estimated number of keys.
    pub estimated_keys: u64,
    /// Bytes in the SST files of the current LSM version (files a finished
    /// compaction replaced are not counted, even before they are deleted).
    pub sst_bytes: u64,
    /// Bytes in memtables.
    pub memtable_bytes: u64,
}

impl Db {
    /// Sizes and counts.
    pub fn stats(&self) -> Result<Stats> {
        let mut events_by_kind = BTreeMap::new();
        for (id, kind) in self.kinds() {
            let n = metrics::events_of_kind(&self.store, id)?;
            if n > 0 {
                events_by_kind.insert(kind.to_string(), n as u64);
            }
        }
        let mut column_families = BTreeMap::new();
        let mut engine: BTreeMap<String, u64> = BTreeMap::new();
        // Cache and job figures are store-wide: read them once.
        for p in [
            "rocksdb.block-cache-usage",
            "rocksdb.block-cache-capacity",
            "rocksdb.num-running-flushes",
            "rocksdb.num-running-compactions",
        ] {
            let v = self.store.int_property(Cf::Meta, p)?.unwrap_or(0);
            engine.insert(p.trim_start_matches("rocksdb.").to_owned(), v);
        }
        for cf in Cf::ALL {
            for p in [
                "rocksdb.estimate-table-readers-mem",
                "rocksdb.estimate-pending-compaction-bytes",
            ] {
                let v = self.store.int_property(cf, p)?.unwrap_or(0);
                *engine
                    .entry(p.trim_start_matches("rocksdb.").to_owned())
                    .or_default() += v;
            }
            let get = |p: &str| -> Result<u64> { Ok(self.store.int_property(cf, p)?.unwrap_or(0)) };
            column_families.insert(
                cf.name().to_owned(),
                CfStats {
                    estimated_keys: get("rocksdb.estimate-num-keys")?,
                    sst_bytes: get("rocksdb.live-sst-files-size")?,
                    memtable_bytes: get("rocksdb.cur-size-all-mem-tables")?,
                },
            );
        }
        Ok(Stats {
            users: self.user_count()?,
            events: self.event_count()?,
            events_by_kind,
            column_families,
            engine,
        })
    }

    /// Every key and value of every column family, in order. For tests that
    /// assert "nothing changed"; reads the whole store.
    #[doc(hidden)]
    pub fn raw_dump(&self) -> Result<Vec<RawEntry>> {
        let mut out = Vec::new();
        for cf in Cf::ALL {
            for item in self.store.range(cf, &[], None)? {
                let (k, v) = item?;
                out.push((cf.name(), k.to_vec(), v.to_vec()));
            }
        }
        Ok(out)
    }
}
