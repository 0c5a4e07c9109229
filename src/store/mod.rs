//! Store: RocksDB, its column families, their options and merge operators,
//! and the persisted store metadata (format version, settings).
//!
//! Owns the RocksDB handle and every column family's tuning. Subsystems read
//! and write through [`Store`] and build their own `WriteBatch`es; this module
//! must not know what an event, a tag or a profile is.

mod batch;
mod cf;
mod commit;
mod job;
pub mod merge;
mod open;
mod options;
mod snapshot;

pub use batch::Batch;
pub(crate) use commit::JobRun;
pub(crate) use job::{Area, Job, JobKind, JobState, Step};
#[cfg(feature = "internals")]
pub use options::raw_event_store;
use options::{apply_db_options, cf_options};
pub use options::{Durability, KindPolicy, Options, Settings};
pub use snapshot::{Reader, Seeker, Snapshot};

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
pub const FORMAT_VERSION: u32 = 13;

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
/// exposure events (docs/metrics.md, "Experiments"). Version 8 kept a
/// user's next event sequence number only in its derived state (the head's
/// event count), so a rebuild killed midway let a later write reuse one and
/// overwrite a stored event: its migration writes each user's sequence
/// record, a primary record, from its events. Version 9 kept a session as
/// its first day alone: its migration re-derives each session's first and
/// last instants and events from the events, and the day counters of
/// bounces, durations and events that sum them (docs/metrics.md,
/// "Sessions"). Version 10 had no attribute index (`attr_index`): its
/// migration derives it from the profiles. Version 11 had no coupons: a
/// build before them would not know the coupon records (`ledger` tags 11
/// and 12, `ledger_due` tag 4, `meta` `coupon:`) a newer store holds, so
/// the version moved; its migration has nothing to derive and only stamps
/// the new version. Version 12 had no growth value (`ledger` tag 15,
/// `meta` `growth_settings`) and no `SettingsGrowth` job: a store of it
/// has no growth rules, so its migration too only stamps the version.
pub const MIGRATABLE_FORMATS: [u32; 12] = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];

/// Largest allowed UTC offset magnitude, in minutes (±14 h, SPEC §2).
pub const MAX_UTC_OFFSET_MINUTES: i32 = 14 * 60;

pub use cf::Cf;
use cf::PointReads;

/// Whether `path` holds a RocksDB database (a store, or a foreign one).
pub(crate) fn holds_store(path: &Path) -> bool {
    path.join("CURRENT").exists()
}

/// A raw key and value read from a column family.
pub type KeyValue = (Box<[u8]>, Box<[u8]>);

/// An open RocksDB database with stickydb's column families.
pub struct Store {
    db: DB,
    path: PathBuf,
    read_only: bool,
    /// The durability of writes that do not choose one ([`Options::sync_writes`]).
    sync_writes: bool,
    write_synced: WriteOptions,
    write_unsynced: WriteOptions,
    settings: Settings,
    /// Which partition of a deployment this store is (SPEC §7).
    partition: Partition,
    format_found: u32,
    /// Sum of committed batch sizes (see [`Store::bytes_written`]).
    bytes_written: std::sync::atomic::AtomicU64,
    /// The cursors of feed entries and the group commit of the batches
    /// that carry them (`commit.rs`).
    feed: commit::FeedCommits,
    /// The job record and whether this handle runs it (see [`job`]).
    job: parking_lot::Mutex<JobState>,
    /// A job is recorded and nobody runs it: writes are refused.
    job_blocked: std::sync::atomic::AtomicBool,
    /// A job is recorded (run or not): the fast path of [`Store::check_area`].
    job_recorded: std::sync::atomic::AtomicBool,
    /// Why a commit failed, once one has: every later write is refused.
    poison: parking_lot::Mutex<Option<String>>,
    poisoned: std::sync::atomic::AtomicBool,
    /// A new store's metadata and initial settings, committed as one synced
    /// batch by [`Store::finish_creation`].
    creation: parking_lot::Mutex<Option<Batch>>,
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
        let exists = holds_store(path);
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

        let mut write_synced = WriteOptions::default();
        write_synced.set_sync(true);

        let mut store = Self {
            db,
            path: path.to_path_buf(),
            read_only: options.read_only,
            sync_writes: options.sync_writes,
            write_synced,
            write_unsynced: WriteOptions::default(),
            settings: Settings {
                utc_offset_minutes: 0,
            },
            partition: Partition::WHOLE,
            format_found: FORMAT_VERSION,
            bytes_written: std::sync::atomic::AtomicU64::new(0),
            feed: commit::FeedCommits::new(1),
            job: parking_lot::Mutex::new(JobState::default()),
            job_blocked: std::sync::atomic::AtomicBool::new(false),
            job_recorded: std::sync::atomic::AtomicBool::new(false),
            poison: parking_lot::Mutex::new(None),
            poisoned: std::sync::atomic::AtomicBool::new(false),
            creation: parking_lot::Mutex::new(None),
        };
        let (settings, found, exists) = store.load_or_init_meta(exists, options)?;
        store.settings = settings;
        store.partition = store.load_or_init_partition(exists, options)?;
        store.format_found = found;
        store.feed = commit::FeedCommits::new(store.feed_high_water()? + 1);
        let recorded: Option<Job> = store.get(Cf::Meta, meta::JOB)?;
        store
            .job_blocked
            .store(recorded.is_some(), std::sync::atomic::Ordering::Release);
        store.set_recorded(recorded);
        Ok(store)
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

    /// Calls `f` with at most `limit` records under `prefix` after the key
    /// `after` (from the start of the prefix: `None`), in key order;
    /// returns the last key met (`None`: none was left). One page of a job
    /// step that resumes from the key it returned.
    pub(crate) fn prefix_page(
        &self,
        cf: Cf,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
        mut f: impl FnMut(&[u8], &[u8]) -> Result<()>,
    ) -> Result<Option<Vec<u8>>> {
        let from = crate::keys::resume_at(prefix, after);
        let mut last = None;
        for item in self
            .range(cf, &from, crate::keys::prefix_successor(prefix))?
            .take(limit)
        {
            let (k, v) = item?;
            f(&k, &v)?;
            last = Some(k.to_vec());
        }
        Ok(last)
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
