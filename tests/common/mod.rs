//! Helpers shared by the integration tests.
#![allow(dead_code)]

use stickydb::{Db, Options};
use tempfile::TempDir;

/// 2024-03-01 00:00:00 UTC.
pub const T0: i64 = 1_709_251_200_000;
pub const DAY: i64 = 86_400_000;

pub fn open_temp() -> (TempDir, Db) {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::open(dir.path(), Options::default()).expect("open");
    (dir, db)
}

pub fn reopen(dir: &TempDir) -> Db {
    Db::open(dir.path(), Options::default()).expect("reopen")
}

pub fn assert_clean(db: &Db) {
    let report = db.verify().expect("verify runs");
    assert!(
        report.is_clean(),
        "verify found problems: {:#?}",
        report.problems
    );
}

/// Opens a store's RocksDB directly, to damage or inspect it. The merge
/// operators must be registered: replaying a WAL merge record into a column
/// family without one fails, and RocksDB drops the rest of the log.
pub fn raw_open(path: &std::path::Path) -> rocksdb::DB {
    use stickydb::store::merge;
    let names = rocksdb::DB::list_cf(&rocksdb::Options::default(), path).expect("list cfs");
    let cfs = names.into_iter().map(|n| {
        let mut o = rocksdb::Options::default();
        match n.as_str() {
            "tag_index" => o.set_merge_operator(
                "stickydb.bitmap.v1",
                merge::bitmap_full_merge,
                merge::bitmap_partial_merge,
            ),
            "metrics" => o.set_merge_operator(
                "stickydb.metrics.v1",
                merge::metrics_full_merge,
                merge::metrics_partial_merge,
            ),
            _ => {}
        }
        rocksdb::ColumnFamilyDescriptor::new(n, o)
    });
    rocksdb::DB::open_cf_descriptors(&rocksdb::Options::default(), path, cfs).expect("raw open")
}
pub mod model;
