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
    assert!(report.is_clean(), "verify found problems: {:#?}", report.problems);
}
