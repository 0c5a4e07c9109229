//! Store: RocksDB, its column families, their options and merge operators,
//! and the persisted store metadata (format version, settings).
//!
//! Owns the RocksDB handle and every column family's tuning. Subsystems read
//! and write through [`Store`] and build their own `WriteBatch`es; this module
//! must not know what an event, a tag or a profile is.

mod batch;
mod cf;
pub mod merge;
mod options;
mod snapshot;

pub use batch::Batch;
pub use options::raw_event_store;
use options::{apply_db_options, cf_options};
pub use options::{Options, Settings};
pub use snapshot::Snapshot;

use std::path::{Path, PathBuf};

use rocksdb::{
    Cache, ColumnFamily, ColumnFamilyDescriptor, IteratorMode, ReadOptions, WriteOptions, DB,
};

use crate::codec;
use crate::error::{CorruptionError, Error, OpenError, Result};
use crate::keys::meta;
use crate::partition::Partition;

/// Version of the on-disk layout this build writes and reads.
///
/// Bump it when a key layout or value format changes incompatibly, and keep a
/// reader (or a migration) for every older version still in the field.
pub const FORMAT_VERSION: u32 = 8;

/// Older versions this build can migrate on a writable open.
///
/// Every older store holds the same primary records (users, profiles, tags,
/// events, the ledger's accounts and entries) in the same layouts; what
/// changed is how the structures derived from them are kept. Version 1
/// (before the aggregation engine) has no aggregates; version 2 (before the
/// ledger) no ledger column families, which the open creates empty;
/// version 3 kept user sets unchunked, rolling counters per kind and
/// window-day, and each user's state in one value that grew with its
/// history. Migrating re-derives every derived structure from the primary
/// records (`write::migrate`), then stamps the current version. Version 4
/// (before identity merges) could not hold aliases in `user_by_name` and
/// merge records in `meta`; version 5 (before the change feed) kept no
/// stage marks or money totals in a user's head and had no `feed` column
/// family. Both are migrated like the rest: the per-user heads are
/// re-derived with the marks (at each user's last activity, emitting no
/// feed entry). Version 6 (before social commerce) had no `social` column
/// family and no social fields on events: its migration only derives the
/// share counts of the new family from the events. Version 7 (before
/// experiments) kept no assignments: its migration derives them from the
/// exposure events (docs/metrics.md, "Experiments").
pub const MIGRATABLE_FORMATS: [u32; 7] = [1, 2, 3, 4, 5, 6, 7];

/// Largest allowed UTC offset magnitude, in minutes (±14 h, SPEC §2).
pub const MAX_UTC_OFFSET_MINUTES: i32 = 14 * 60;

pub use cf::Cf;
use cf::PointReads;

/// A raw key and value read from a column family.
pub type KeyValue = (Box<[u8]>, Box<[u8]>);

/// An open RocksDB database with stickydb's column families.
pub struct Store {
    db: DB,
    path: PathBuf,
    read_only: bool,
    write_options: WriteOptions,
    settings: Settings,
    /// Which partition of a deployment this store is (SPEC §7).
    partition: Partition,
    format_found: u32,
    /// Sum of committed batch sizes (see [`Store::bytes_written`]).
    bytes_written: std::sync::atomic::AtomicU64,
    /// The cursor the next feed entry gets. Held across a commit that
    /// carries feed entries, so entries become visible in cursor order (a
    /// reader that saw cursor `c` never later meets a new entry below `c`).
    feed_next: parking_lot::Mutex<u64>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.path)
            .field("read_only", &self.read_only)
            .field("settings", &self.settings)
            .finish()
    }
}

impl Store {
    /// Opens (or creates) the store at `path`.
    pub fn open(path: &Path, options: &Options) -> Result<Self> {
        if let Some(m) = options.utc_offset_minutes {
            if !(-MAX_UTC_OFFSET_MINUTES..=MAX_UTC_OFFSET_MINUTES).contains(&m) {
                return Err(OpenError::OffsetOutOfRange { minutes: m }.into());
            }
        }
        if options.block_cache_bytes < (1 << 20) {
            return Err(OpenError::InvalidOption {
                option: "block_cache_bytes",
                reason: "must be at least 1 MiB".into(),
            }
            .into());
        }
        if options.write_buffer_bytes < (1 << 20) {
            return Err(OpenError::InvalidOption {
                option: "write_buffer_bytes",
                reason: "must be at least 1 MiB".into(),
            }
            .into());
        }
        let exists = path.join("CURRENT").exists();
        if !exists && (options.read_only || !options.create_if_missing) {
            return Err(OpenError::Missing {
                path: path.display().to_string(),
            }
            .into());
        }

        let cache = Cache::new_lru_cache(options.block_cache_bytes);
        let mut db_options = rocksdb::Options::default();
        db_options.create_if_missing(options.create_if_missing);
        db_options.create_missing_column_families(true);
        apply_db_options(&mut db_options);

        // A read-only open cannot create the column families an older format
        // lacks (format 2 had no ledger): it opens those that exist, reports
        // NeedsMigration from the format check, and never reaches the others.
        let existing: Option<Vec<String>> = if options.read_only {
            Some(DB::list_cf(&rocksdb::Options::default(), path)?)
        } else {
            None
        };
        let descriptors: Vec<ColumnFamilyDescriptor> = Cf::ALL
            .iter()
            .filter(|cf| {
                existing
                    .as_ref()
                    .is_none_or(|names| names.iter().any(|n| n == cf.name()))
            })
            .map(|&cf| ColumnFamilyDescriptor::new(cf.name(), cf_options(cf, options, &cache)))
            .collect();
        let db = if options.read_only {
            // Merge operators are registered here too: a read-only open still
            // merges operands that were not compacted yet.
            DB::open_cf_descriptors_read_only(&db_options, path, descriptors, false)?
        } else {
            DB::open_cf_descriptors(&db_options, path, descriptors)?
        };

        let mut write_options = WriteOptions::default();
        write_options.set_sync(options.sync_writes);

        let mut store = Self {
            db,
            path: path.to_path_buf(),
            read_only: options.read_only,
            write_options,
            settings: Settings {
                utc_offset_minutes: 0,
            },
            partition: Partition::WHOLE,
            format_found: FORMAT_VERSION,
            bytes_written: std::sync::atomic::AtomicU64::new(0),
            feed_next: parking_lot::Mutex::new(1),
        };
        let (settings, found) = store.load_or_init_meta(exists, options)?;
        store.settings = settings;
        store.partition = store.load_or_init_partition(exists, options)?;
        store.format_found = found;
        store.feed_next = parking_lot::Mutex::new(store.last_feed_cursor()? + 1);
        Ok(store)
    }

    /// Reads (or, for a new store, writes) the format version and settings.
    /// Returns the settings and the format version found on disk.
    fn load_or_init_meta(&self, existed: bool, options: &Options) -> Result<(Settings, u32)> {
        let version: Option<u32> = self.get(Cf::Meta, meta::FORMAT_VERSION)?;
        match version {
            None if existed => Err(OpenError::NotAStore {
                path: self.path.display().to_string(),
            }
            .into()),
            None => {
                let settings = Settings {
                    utc_offset_minutes: options.utc_offset_minutes.unwrap_or(0),
                };
                let mut batch = Batch::new();
                batch.put(
                    Cf::Meta,
                    meta::FORMAT_VERSION,
                    codec::encode(&FORMAT_VERSION)?,
                );
                batch.put(Cf::Meta, meta::SETTINGS, codec::encode(&settings)?);
                // Creation is always synced: a store must never exist without
                // its settings.
                let mut sync = WriteOptions::default();
                sync.set_sync(true);
                self.db.write_opt(batch.into_write_batch(self)?, &sync)?;
                Ok((settings, FORMAT_VERSION))
            }
            Some(found) if found == FORMAT_VERSION || MIGRATABLE_FORMATS.contains(&found) => {
                let settings: Settings =
                    self.get(Cf::Meta, meta::SETTINGS)?
                        .ok_or_else(|| CorruptionError {
                            cf: Cf::Meta.name(),
                            what: "value",
                            key: meta::SETTINGS.to_vec(),
                            reason: "format version present but settings missing".into(),
                        })?;
                if let Some(requested) = options.utc_offset_minutes {
                    if requested != settings.utc_offset_minutes {
                        return Err(OpenError::OffsetMismatch {
                            stored_minutes: settings.utc_offset_minutes,
                            requested_minutes: requested,
                        }
                        .into());
                    }
                }
                Ok((settings, found))
            }
            Some(found) => Err(OpenError::UnsupportedFormat {
                found,
                supported: FORMAT_VERSION,
            }
            .into()),
        }
    }

    /// Reads (or, for a new store, writes) the store's partition. Stores
    /// created before partitions existed, and unpartitioned ones, have no
    /// key: they are [`Partition::WHOLE`].
    fn load_or_init_partition(&self, existed: bool, options: &Options) -> Result<Partition> {
        let stored: Option<Partition> = self.get(Cf::Meta, meta::PARTITION)?;
        if existed {
            let stored = stored.unwrap_or(Partition::WHOLE);
            if let Some(requested) = options.partition {
                if requested != stored {
                    return Err(OpenError::SettingMismatch {
                        setting: "partition",
                        stored: stored.to_string(),
                        requested: requested.to_string(),
                    }
                    .into());
                }
            }
            return Ok(stored);
        }
        let partition = options.partition.unwrap_or(Partition::WHOLE);
        if partition != Partition::WHOLE {
            let mut batch = Batch::new();
            batch.put(Cf::Meta, meta::PARTITION, codec::encode(&partition)?);
            let mut sync = WriteOptions::default();
            sync.set_sync(true);
            self.db.write_opt(batch.into_write_batch(self)?, &sync)?;
        }
        Ok(partition)
    }

    /// Which partition of a deployment this store is.
    pub fn partition(&self) -> Partition {
        self.partition
    }

    /// The format version found on disk when the store was opened; lower than
    /// [`FORMAT_VERSION`] until a migration stamps the current one.
    pub fn format_found(&self) -> u32 {
        self.format_found
    }

    /// Records that the store now holds the current format (after a
    /// migration). Synced: a migration must not be redone or lost silently.
    pub fn stamp_format_version(&mut self) -> Result<()> {
        self.check_writable()?;
        let mut batch = Batch::new();
        batch.put(
            Cf::Meta,
            meta::FORMAT_VERSION,
            codec::encode(&FORMAT_VERSION)?,
        );
        let mut sync = WriteOptions::default();
        sync.set_sync(true);
        self.db.write_opt(batch.into_write_batch(self)?, &sync)?;
        self.format_found = FORMAT_VERSION;
        Ok(())
    }

    /// The persisted store settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The store's directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The raw RocksDB handle, for subsystems that iterate.
    pub fn db(&self) -> &DB {
        &self.db
    }

    /// A column family handle.
    pub fn cf(&self, cf: Cf) -> Result<&ColumnFamily> {
        self.db.cf_handle(cf.name()).ok_or_else(|| {
            CorruptionError {
                cf: cf.name(),
                what: "column family",
                key: Vec::new(),
                reason: "column family missing from an open store".into(),
            }
            .into()
        })
    }

    /// Reads and decodes one value.
    pub fn get<T: serde::de::DeserializeOwned>(&self, cf: Cf, key: &[u8]) -> Result<Option<T>> {
        match self.db.get_pinned_cf(self.cf(cf)?, key)? {
            None => Ok(None),
            Some(bytes) => decode_value(cf, key, &bytes).map(Some),
        }
    }

    /// Deletes every key of `cf` starting with `prefix`, in batches of at
    /// most `batch_keys` deletes (not atomic as a whole: a step of a
    /// migration or rebuild that starts over when interrupted).
    pub fn delete_prefix(&self, cf: Cf, prefix: &[u8], batch_keys: usize) -> Result<()> {
        let mut batch = Batch::new();
        for item in self.prefix(cf, prefix)? {
            let (k, _) = item?;
            batch.delete(cf, k);
            if batch.len() >= batch_keys {
                self.write(std::mem::take(&mut batch))?;
            }
        }
        self.write(batch)
    }

    /// Reads a user set stored in chunks under `prefix` (one key per chunk,
    /// kept by a merge operator): the union of the chunks; none = empty.
    pub fn get_set(&self, cf: Cf, prefix: &[u8]) -> Result<roaring::RoaringBitmap> {
        union_of_chunks(cf, self.prefix(cf, prefix)?)
    }

    /// Reads a counter kept by a merge operator (absent = 0).
    pub fn get_counter(&self, cf: Cf, key: &[u8]) -> Result<i64> {
        counter_value(cf, key, self.get_raw(cf, key)?)
    }

    /// Whether a key exists.
    pub fn contains(&self, cf: Cf, key: &[u8]) -> Result<bool> {
        Ok(self.db.get_pinned_cf(self.cf(cf)?, key)?.is_some())
    }

    /// Whether each of `keys` exists, looked up together (RocksDB's batched
    /// MultiGet: one pass through the memtables and each file's filters for
    /// all of them). `keys` must be sorted.
    pub fn contains_sorted(&self, cf: Cf, keys: &[Vec<u8>]) -> Result<Vec<bool>> {
        debug_assert!(keys.windows(2).all(|w| w[0] <= w[1]), "keys must be sorted");
        self.db
            .batched_multi_get_cf(self.cf(cf)?, keys.iter(), true)
            .into_iter()
            .map(|r| Ok(r?.is_some()))
            .collect()
    }

    /// The raw values of `keys` (sorted), looked up together like
    /// [`Store::contains_sorted`].
    pub fn get_raw_sorted(&self, cf: Cf, keys: &[Vec<u8>]) -> Result<Vec<Option<Vec<u8>>>> {
        debug_assert!(keys.windows(2).all(|w| w[0] <= w[1]), "keys must be sorted");
        self.db
            .batched_multi_get_cf(self.cf(cf)?, keys.iter(), true)
            .into_iter()
            .map(|r| Ok(r?.map(|v| v.to_vec())))
            .collect()
    }

    /// Reads the raw bytes of one value.
    pub fn get_raw(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.db.get_cf(self.cf(cf)?, key)?)
    }

    /// Commits a batch atomically, honouring the sync setting. A value over
    /// [`crate::codec::MAX_STORED_VALUE_BYTES`] fails the whole batch with
    /// [`Error::ValueTooLarge`] before anything is written.
    pub fn write(&self, mut batch: Batch) -> Result<()> {
        if self.read_only {
            return Err(Error::ReadOnly);
        }
        // Only writes that carry feed entries serialise on the cursor.
        let mut cursor = (batch.logs() > 0).then(|| self.feed_next.lock());
        let logged = batch.logs() as u64;
        if let Some(next) = cursor.as_deref() {
            batch.key_logs(*next);
        }
        let batch = batch.into_write_batch(self)?;
        let bytes = batch.size_in_bytes() as u64;
        self.db.write_opt(batch, &self.write_options)?;
        if let Some(next) = cursor.as_deref_mut() {
            *next += logged;
        }
        self.bytes_written
            .fetch_add(bytes, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    /// The cursor of the newest feed entry (0 when there is none, or when a
    /// read-only open of an older format has no feed).
    pub fn last_feed_cursor(&self) -> Result<u64> {
        if self.db.cf_handle(Cf::Feed.name()).is_none() {
            return Ok(0);
        }
        let until = [crate::keys::feed::ENTRY + 1];
        let mut it = self.db.iterator_cf_opt(
            self.cf(Cf::Feed)?,
            {
                let mut o = ReadOptions::default();
                o.set_total_order_seek(true);
                o.set_iterate_upper_bound(until.to_vec());
                o
            },
            IteratorMode::From(&until, rocksdb::Direction::Reverse),
        );
        match it.next() {
            Some(item) => {
                let (k, _) = item?;
                Ok(crate::keys::feed::entry_cursor(&k).unwrap_or(0))
            }
            None => Ok(0),
        }
    }

    /// Fails with [`Error::ReadOnly`] when the store cannot be written.
    pub fn check_writable(&self) -> Result<()> {
        if self.read_only {
            Err(Error::ReadOnly)
        } else {
            Ok(())
        }
    }

    /// Iterates `(key, value)` over keys in `[from, until)` (`until = None`: to
    /// the end), in key order, ignoring prefix-extractor shortcuts.
    pub fn range(
        &self,
        cf: Cf,
        from: &[u8],
        until: Option<Vec<u8>>,
    ) -> Result<impl Iterator<Item = Result<KeyValue>> + '_> {
        let it = self.db.iterator_cf_opt(
            self.cf(cf)?,
            range_options(ReadOptions::default(), until),
            IteratorMode::From(from, rocksdb::Direction::Forward),
        );
        Ok(it.map(|r| r.map_err(Error::from)))
    }

    /// Iterates every key starting with `prefix`, in key order.
    pub fn prefix(
        &self,
        cf: Cf,
        prefix: &[u8],
    ) -> Result<impl Iterator<Item = Result<KeyValue>> + '_> {
        self.range(cf, prefix, crate::keys::prefix_successor(prefix))
    }

    /// The last key of a column family, if any.
    pub fn last_key(&self, cf: Cf) -> Result<Option<Box<[u8]>>> {
        let mut ro = ReadOptions::default();
        ro.set_total_order_seek(true);
        let mut it = self.db.iterator_cf_opt(self.cf(cf)?, ro, IteratorMode::End);
        match it.next() {
            None => Ok(None),
            Some(r) => Ok(Some(r?.0)),
        }
    }

    /// A RocksDB property of one column family, as an integer.
    pub fn int_property(&self, cf: Cf, name: &str) -> Result<Option<u64>> {
        Ok(self.db.property_int_value_cf(self.cf(cf)?, name)?)
    }

    /// Flushes every memtable to disk (tests and benchmarks use it to measure
    /// on-disk size).
    pub fn flush(&self) -> Result<()> {
        self.check_writable()?;
        for cf in Cf::ALL {
            self.db.flush_cf(self.cf(cf)?)?;
        }
        Ok(())
    }

    /// Flushes every memtable and waits until no compaction is pending or
    /// running: a benchmark's other side then measures without this store's
    /// background work competing for the CPU.
    pub fn wait_for_compact(&self) -> Result<()> {
        self.flush()?;
        let mut o = rocksdb::WaitForCompactOptions::default();
        o.set_flush(true);
        self.db.wait_for_compact(&o)?;
        Ok(())
    }

    /// Bytes of write batches this handle committed (what went to the WAL
    /// and the memtables).
    pub fn bytes_written(&self) -> u64 {
        self.bytes_written
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Compacts every column family over its whole key range.
    pub fn compact(&self) -> Result<()> {
        self.check_writable()?;
        for cf in Cf::ALL {
            self.db
                .compact_range_cf(self.cf(cf)?, None::<&[u8]>, None::<&[u8]>);
        }
        Ok(())
    }

    /// Writes a consistent, openable copy of the store into `dir` (which must
    /// not exist), using hard links where the file system allows.
    pub fn checkpoint(&self, dir: &Path) -> Result<()> {
        let cp = rocksdb::checkpoint::Checkpoint::new(&self.db)?;
        cp.create_checkpoint(dir)?;
        Ok(())
    }
}

fn range_options(mut ro: ReadOptions, until: Option<Vec<u8>>) -> ReadOptions {
    ro.set_total_order_seek(true);
    if let Some(u) = until {
        ro.set_iterate_upper_bound(u);
    }
    ro
}

/// The union of the user-set chunks an iterator yields.
fn union_of_chunks(
    cf: Cf,
    chunks: impl Iterator<Item = Result<KeyValue>>,
) -> Result<roaring::RoaringBitmap> {
    let mut set = roaring::RoaringBitmap::new();
    for item in chunks {
        let (k, v) = item?;
        let chunk = merge::decode_bitmap(&v)
            .ok_or_else(|| merged_corruption(cf, &k, "user set does not decode"))?;
        set |= chunk;
    }
    Ok(set)
}

/// A merged counter's value (absent = 0).
fn counter_value(cf: Cf, key: &[u8], bytes: Option<Vec<u8>>) -> Result<i64> {
    match bytes {
        None => Ok(0),
        Some(bytes) => merge::decode_counter(&bytes)
            .ok_or_else(|| merged_corruption(cf, key, "counter does not decode")),
    }
}

fn merged_corruption(cf: Cf, key: &[u8], reason: &str) -> Error {
    CorruptionError {
        cf: cf.name(),
        what: "value",
        key: key.to_vec(),
        reason: reason.to_owned(),
    }
    .into()
}

/// Decodes a stored value, naming where it came from when it does not decode.
pub fn decode_value<T: serde::de::DeserializeOwned>(cf: Cf, key: &[u8], bytes: &[u8]) -> Result<T> {
    codec::decode(bytes).map_err(|e| {
        CorruptionError {
            cf: cf.name(),
            what: "value",
            key: key.to_vec(),
            reason: e.to_string(),
        }
        .into()
    })
}
