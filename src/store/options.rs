//! How a store is opened (the caller's [`Options`]), what is fixed at
//! creation ([`Settings`]), and each column family's RocksDB tuning.

use rocksdb::{BlockBasedOptions, Cache, DBCompressionType};
use serde::{Deserialize, Serialize};

use super::{merge, Cf, PointReads};
use crate::partition::Partition;

/// Memtable size of read-only opens.
const READ_ONLY_WRITE_BUFFER_BYTES: usize = 1 << 20;

/// How a write transaction's commit waits (see
/// [`crate::Transaction::set_durability`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Durability {
    /// The write-ahead log is fsync'd before the commit returns: an
    /// acknowledged write survives a power failure.
    Immediate,
    /// The commit returns once the write is in the log's buffer: it
    /// survives a crash of the process, not of the machine.
    Eventual,
}

/// How to open a store. Built from [`Options::default`] with the setters
/// below (the type may gain fields; its fields stay readable and
/// writable):
///
/// ```
/// use stickydb::{KindPolicy, Options};
/// let options = Options::default()
///     .utc_offset_minutes(480)
///     .sync_writes(true)
///     .kinds(KindPolicy::strict(["view", "purchase"]));
/// assert_eq!(options.utc_offset_minutes, Some(480));
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Options {
    /// The store's fixed UTC offset in minutes (−840..=840). `None` means "the
    /// stored one" when reopening and 0 when creating; `Some` must match the
    /// stored one on reopen.
    pub utc_offset_minutes: Option<i32>,
    /// Create the store when the directory holds none (default off: a
    /// mistyped path is refused, not silently created; [`crate::Db::create`]
    /// is the call that creates).
    pub create_if_missing: bool,
    /// Open without write access. Writers get [`crate::Error::ReadOnly`].
    pub read_only: bool,
    /// fsync the WAL on every write: no acknowledged write is lost on power
    /// failure, at the cost of write latency.
    pub sync_writes: bool,
    /// Size of the block cache shared by all column families, in bytes.
    pub block_cache_bytes: usize,
    /// Size of each column family's memtable, in bytes.
    pub write_buffer_bytes: usize,
    /// Most user records (external id → internal id and event sequence)
    /// kept in memory for writes, so a returning user's write skips two
    /// point reads. Bounded memory: roughly 100 bytes per entry. 0 = none.
    pub user_cache_entries: usize,
    /// Event kinds that do not count as activity (SPEC §2), by name. Fixed
    /// when the store is created: `None` means "the stored list" on reopen
    /// and "every kind counts but the exposure kind" on creation (an
    /// exposure is the product assigning a variant, not the user acting:
    /// docs/metrics.md, "Experiments"); `Some` must match on reopen.
    pub non_activity_kinds: Option<Vec<String>>,
    /// The kind of experiment exposure events (default `exposure`). Fixed
    /// when the store is created: `None` means "the stored one" on reopen
    /// and the default on creation; `Some` must match on reopen.
    pub exposure_kind: Option<String>,
    /// The store's partition of a partitioned deployment (SPEC §7). Fixed
    /// when the store is created: `None` means "the stored one" on reopen
    /// and [`Partition::WHOLE`] on creation; `Some` must match on reopen.
    pub partition: Option<Partition>,
    /// Which event kinds the store accepts (see [`KindPolicy`]). Fixed
    /// when the store is created: `None` means "the stored policy" on
    /// reopen and [`KindPolicy::Open`] on creation; `Some` must match on
    /// reopen.
    pub kinds: Option<KindPolicy>,
}

/// Which event kinds a store accepts, chosen at creation and persisted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum KindPolicy {
    /// Any kind; a kind not seen before is registered by the write that
    /// first records it (and stays registered).
    Open,
    /// Only the listed kinds: an event of another kind (a typo such as
    /// `"Purchase"`) is refused, naming the listed ones.
    Strict(Vec<String>),
}

impl KindPolicy {
    /// A strict policy of `kinds`.
    pub fn strict<S: Into<String>>(kinds: impl IntoIterator<Item = S>) -> Self {
        let mut v: Vec<String> = kinds.into_iter().map(Into::into).collect();
        v.sort();
        v.dedup();
        KindPolicy::Strict(v)
    }

    /// Whether `kind` is accepted.
    pub fn allows(&self, kind: &str) -> bool {
        match self {
            KindPolicy::Open => true,
            KindPolicy::Strict(list) => list.binary_search_by(|k| k.as_str().cmp(kind)).is_ok(),
        }
    }
}

impl Options {
    /// The store's fixed UTC offset in minutes.
    pub fn utc_offset_minutes(mut self, minutes: i32) -> Self {
        self.utc_offset_minutes = Some(minutes);
        self
    }

    /// Create the store when the directory holds none.
    pub fn create_if_missing(mut self, create: bool) -> Self {
        self.create_if_missing = create;
        self
    }

    /// Open without write access.
    pub fn read_only(mut self, read_only: bool) -> Self {
        self.read_only = read_only;
        self
    }

    /// fsync the log on every write that does not choose its durability.
    pub fn sync_writes(mut self, sync: bool) -> Self {
        self.sync_writes = sync;
        self
    }

    /// The block cache's size in bytes.
    pub fn block_cache_bytes(mut self, bytes: usize) -> Self {
        self.block_cache_bytes = bytes;
        self
    }

    /// Each column family's memtable size in bytes.
    pub fn write_buffer_bytes(mut self, bytes: usize) -> Self {
        self.write_buffer_bytes = bytes;
        self
    }

    /// Most user records cached for writes.
    pub fn user_cache_entries(mut self, entries: usize) -> Self {
        self.user_cache_entries = entries;
        self
    }

    /// Event kinds that do not count as activity (fixed at creation).
    pub fn non_activity_kinds<S: Into<String>>(
        mut self,
        kinds: impl IntoIterator<Item = S>,
    ) -> Self {
        self.non_activity_kinds = Some(kinds.into_iter().map(Into::into).collect());
        self
    }

    /// The kind of experiment exposure events (fixed at creation).
    pub fn exposure_kind(mut self, kind: impl Into<String>) -> Self {
        self.exposure_kind = Some(kind.into());
        self
    }

    /// The store's partition of a partitioned deployment (fixed at creation).
    pub fn partition(mut self, partition: Partition) -> Self {
        self.partition = Some(partition);
        self
    }

    /// Which event kinds the store accepts (fixed at creation).
    pub fn kinds(mut self, policy: KindPolicy) -> Self {
        self.kinds = Some(policy);
        self
    }
}

impl Default for Options {
    fn default() -> Self {
        Self {
            utc_offset_minutes: None,
            create_if_missing: false,
            read_only: false,
            sync_writes: false,
            block_cache_bytes: 64 << 20,
            write_buffer_bytes: 32 << 20,
            user_cache_entries: 256 << 10,
            non_activity_kinds: None,
            exposure_kind: None,
            partition: None,
            kinds: None,
        }
    }
}

/// Settings fixed when a store is created and persisted in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    /// The store's local calendar offset from UTC, in minutes.
    pub utc_offset_minutes: i32,
}

pub(super) fn cf_options(cf: Cf, options: &Options, cache: &Cache) -> rocksdb::Options {
    let mut o = rocksdb::Options::default();
    // A read-only open writes nothing: its memtables only ever hold a WAL
    // left by a crash, and each one's first arena block is allocated at
    // open, so they are kept small (an open costs milliseconds, SPEC §6).
    o.set_write_buffer_size(if options.read_only {
        READ_ONLY_WRITE_BUFFER_BYTES
    } else {
        options.write_buffer_bytes
    });
    // lz4 is cheap enough for every level; zstd only where data settles.
    o.set_compression_type(DBCompressionType::Lz4);
    o.set_bottommost_compression_type(DBCompressionType::Zstd);
    let mut table = BlockBasedOptions::default();
    table.set_block_cache(cache);
    table.set_cache_index_and_filter_blocks(true);
    table.set_pin_l0_filter_and_index_blocks_in_cache(true);
    // Partitioned index and filters, top level pinned: memory stays bounded
    // by the block cache, and a cache miss reads one small partition instead
    // of a whole SST's filter or index block. Without this, once the data
    // outgrew the cache, every point read re-read (and checksummed) whole
    // filter blocks: earn 16 µs → 120 µs, redeem 0.3 → 13 ms (benches/ledger.rs).
    table.set_index_type(rocksdb::BlockBasedIndexType::TwoLevelIndexSearch);
    table.set_partition_filters(true);
    table.set_pin_top_level_index_and_filter(true);
    // Every scan is a total-order range scan (`Store::range`), so no column
    // family needs a prefix extractor. Whole-key bloom filters serve point
    // reads; column families only ever scanned carry none.
    match cf.point_reads() {
        PointReads::None => {}
        PointReads::Hits => table.set_bloom_filter(10.0, false),
        PointReads::Misses => {
            table.set_bloom_filter(10.0, false);
            // Most lookups here miss (a new event id, a new user, a day a
            // user was not active yet): a bloom filter over the memtable's
            // whole keys answers them without walking the skip list. Not
            // for read-only opens: no writes go to their memtables, and the
            // filter is allocated (and zeroed) per column family at open.
            if !options.read_only {
                o.set_memtable_whole_key_filtering(true);
                o.set_memtable_prefix_bloom_ratio(0.05);
            }
        }
    }
    o.set_block_based_table_factory(&table);
    match cf {
        Cf::TagIndex | Cf::AttrIndex => {
            o.set_merge_operator(
                "stickydb.bitmap.v1",
                merge::bitmap_full_merge,
                merge::bitmap_partial_merge,
            );
        }
        Cf::Metrics => {
            o.set_merge_operator(
                "stickydb.metrics.v1",
                merge::metrics_full_merge,
                merge::metrics_partial_merge,
            );
        }
        _ => {}
    }
    o
}

/// Database-wide settings shared by a store and the benchmark's raw side.
pub(super) fn apply_db_options(o: &mut rocksdb::Options) {
    o.set_max_background_jobs(2);
    // RocksDB opens a store's table files with up to this many threads per
    // column family (default 16): 13 column families started ~200 threads
    // and made a fresh CLI process spend 20 ms of its 28 in thread start-up.
    o.set_max_file_opening_threads(1);
    o.set_bytes_per_sync(1 << 20);
    o.set_keep_log_file_num(4);
    // A store is shared by every column family: cap the WAL so old logs go.
    o.set_max_total_wal_size(256 << 20);
}

/// A plain RocksDB database whose default column family has exactly the
/// options of a store's `events` column family (and the same database-wide
/// settings): the physical limit the ingest benchmark compares against.
#[doc(hidden)]
#[cfg(feature = "internals")]
pub fn raw_event_store(
    path: &std::path::Path,
    options: &Options,
) -> crate::error::Result<rocksdb::DB> {
    let cache = Cache::new_lru_cache(options.block_cache_bytes);
    let mut o = cf_options(Cf::Events, options, &cache);
    o.create_if_missing(true);
    apply_db_options(&mut o);
    Ok(rocksdb::DB::open(&o, path)?)
}
