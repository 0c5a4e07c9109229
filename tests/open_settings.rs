//! Opening checks the persisted format version and settings.

mod common;
use common::*;
use stickydb::{Db, Error, Event, OpenError, Options};

fn with_offset(m: Option<i32>) -> Options {
    let mut o = Options::default().create_if_missing(true);
    o.utc_offset_minutes = m;
    o
}

#[test]
fn utc_offset_is_fixed_at_creation() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), with_offset(Some(480))).unwrap();
    // 2024-03-01 20:00 UTC is 2024-03-02 04:00 at +08:00
    let ts = T0 + 20 * 3_600_000;
    assert_eq!(db.local_day(ts), db.local_day(T0) + 1);
    drop(db);
    // None adopts the stored offset
    let db = Db::open(dir.path(), with_offset(None)).unwrap();
    assert_eq!(db.settings().utc_offset_minutes, 480);
    drop(db);
    assert!(Db::open(dir.path(), with_offset(Some(480))).is_ok());
    match Db::open(dir.path(), with_offset(Some(0))) {
        Err(Error::Open(OpenError::OffsetMismatch {
            stored_minutes: 480,
            requested_minutes: 0,
        })) => {}
        other => panic!("expected offset mismatch, got {other:?}"),
    }
}

#[test]
fn out_of_range_offsets_and_missing_stores() {
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(
        Db::open(dir.path(), with_offset(Some(15 * 60))),
        Err(Error::Open(OpenError::OffsetOutOfRange { minutes: 900 }))
    ));
    let missing = dir.path().join("nope");
    let opts = Options::default().create_if_missing(false);
    assert!(matches!(
        Db::open(&missing, opts),
        Err(Error::Open(OpenError::Missing { .. }))
    ));
    let ro = Options::default().create_if_missing(true).read_only(true);
    assert!(matches!(
        Db::open(&missing, ro),
        Err(Error::Open(OpenError::Missing { .. }))
    ));
}

#[test]
fn read_only_opens_read_merged_state_and_refuse_writes() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), Options::default().create_if_missing(true)).unwrap();
    db.record(&Event::new("ann", "view", T0)).unwrap();
    db.update_profile(
        "ann",
        &stickydb::ProfileUpdate::new().tag("vip", stickydb::TagSource::Manual, T0, None),
    )
    .unwrap();
    drop(db);
    let ro = Db::open(
        dir.path(),
        Options::default().create_if_missing(true).read_only(true),
    )
    .unwrap();
    // merge operands (tag index, counters) are resolved in a read-only open too
    assert_eq!(ro.users_with_tag("vip", None).unwrap().len(), 1);
    assert_eq!(ro.event_count().unwrap(), 1);
    assert!(matches!(
        ro.record(&Event::new("bob", "view", T0)),
        Err(Error::ReadOnly)
    ));
    assert_clean(&ro);
}

#[test]
fn unknown_format_version_and_foreign_databases_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(Db::open(dir.path(), Options::default().create_if_missing(true)).unwrap());
    {
        let raw = raw_open(dir.path());
        let meta = raw.cf_handle("meta").unwrap();
        // format byte 1, then bincode varint 99
        raw.put_cf(meta, b"format_version", [1u8, 99]).unwrap();
    }
    assert!(matches!(
        Db::open(dir.path(), Options::default().create_if_missing(true)),
        Err(Error::Open(OpenError::UnsupportedFormat {
            found: 99,
            supported: stickydb::store::FORMAT_VERSION
        }))
    ));

    let foreign = tempfile::tempdir().unwrap();
    {
        let mut o = rocksdb::Options::default();
        o.create_if_missing(true);
        let raw = rocksdb::DB::open(&o, foreign.path()).unwrap();
        raw.put(b"hello", b"world").unwrap();
    }
    // read-only first: a read-only open must say the same (the directory
    // has no `meta` family at all)
    assert!(matches!(
        Db::open(
            foreign.path(),
            Options::default()
                .create_if_missing(true)
                .read_only(true)
                .create_if_missing(false)
        ),
        Err(Error::Open(OpenError::NotAStore { .. }))
    ));
    assert!(matches!(
        Db::open(foreign.path(), Options::default().create_if_missing(true)),
        Err(Error::Open(OpenError::NotAStore { .. }))
    ));
}

/// A store is created in one synced batch (SPEC §5): an open that fails
/// after its first checks — here on the exposure kind, read after the
/// format, settings and partition — leaves no store, where it used to leave
/// one with its settings and partition written and the rest defaulted.
#[test]
fn a_creation_that_fails_midway_leaves_no_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s");
    let third = stickydb::Partition::new(1, 3).unwrap();
    let failed = Db::open(
        &path,
        Options::default()
            .create_if_missing(true)
            .partition(third)
            .exposure_kind(String::new()),
    );
    assert!(matches!(
        failed,
        Err(Error::Open(OpenError::InvalidOption {
            option: "exposure_kind",
            ..
        }))
    ));
    // nothing was created: without creating, there is no store
    assert!(matches!(
        Db::open(&path, Options::default().create_if_missing(false)),
        Err(Error::Open(OpenError::Missing { .. }))
    ));
    // and creating it again makes it whole
    let db = Db::open(
        &path,
        Options::default().create_if_missing(true).partition(third),
    )
    .unwrap();
    assert_eq!(db.partition(), third);
    assert_eq!(db.experiment_settings().exposure_kind, "exposure");
}
