//! SPEC §7 inputs that must be refused with a typed error naming what and
//! where, writing nothing: another partition's user in a batch, a bad log
//! position, a position that does not move forward, a partition that does
//! not match the stored one, a bad partition.

mod common;

use stickydb::partition::LogPosition;
use stickydb::{Db, Error, Event, Options, Partition, Problem};

fn partitioned(dir: &tempfile::TempDir, index: u32, count: u32) -> Db {
    Db::open(
        dir.path(),
        Options::default()
            .create_if_missing(true)
            .partition(Partition::new(index, count).unwrap()),
    )
    .unwrap()
}

fn names_in(p: Partition, n: usize) -> Vec<String> {
    (0..)
        .map(|i| format!("user-{i}"))
        .filter(|u| Partition::of(u, p.count).index == p.index)
        .take(n)
        .collect()
}

#[test]
fn another_partitions_user_is_refused_by_position_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let db = partitioned(&dir, 1, 3);
    let mine = names_in(db.partition(), 2);
    let theirs = names_in(Partition::new(2, 3).unwrap(), 1);
    let batch = [
        Event::new(mine[0].as_str(), "view", common::T0),
        Event::new(mine[1].as_str(), "view", common::T0),
        Event::new(theirs[0].as_str(), "view", common::T0),
    ];
    let before = db.raw_dump().unwrap();
    match db.record_batch(&batch).unwrap_err() {
        Error::Input(e) => {
            assert_eq!(e.index, Some(2));
            assert_eq!(e.field, "user");
            assert_eq!(
                e.problem,
                Problem::OtherPartition {
                    owner: 2,
                    count: 3,
                    this: 1
                }
            );
            assert!(e.to_string().contains("belongs to partition 2 of 3"), "{e}");
        }
        other => panic!("{other}"),
    }
    assert_eq!(db.raw_dump().unwrap(), before, "nothing written");
    // Profiles and points name users too.
    match db
        .update_profile(&theirs[0], &stickydb::ProfileUpdate::new().set("age", 3))
        .unwrap_err()
    {
        Error::Input(e) => {
            assert_eq!((e.index, e.field), (None, "user"));
            assert_eq!(
                e.problem,
                Problem::OtherPartition {
                    owner: 2,
                    count: 3,
                    this: 1
                }
            );
        }
        other => panic!("{other}"),
    }
    assert_eq!(db.raw_dump().unwrap(), before);
    db.record_batch(&batch[..2]).unwrap();
    for id in db.all_users().unwrap() {
        assert!(db.partition().holds_id(id));
    }
    common::assert_clean(&db);
}

#[test]
fn log_positions_are_checked_and_only_move_forward() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), Options::default().create_if_missing(true)).unwrap();
    let e = [Event::new("a", "view", common::T0)];
    let at = |topic: &str, partition: i32, next_offset: i64| LogPosition {
        topic: topic.into(),
        partition,
        next_offset,
    };
    for (bad, field) in [
        (at("", 0, 1), "topic"),
        (at("has space", 0, 1), "topic"),
        (at(&"t".repeat(250), 0, 1), "topic"),
        (at("t", -1, 1), "log_partition"),
        (at("t", 0, -1), "next_offset"),
    ] {
        match db.record_batch_at(&e, &bad).unwrap_err() {
            Error::Input(i) => assert_eq!(i.field, field, "{bad:?}"),
            other => panic!("{other}"),
        }
    }
    assert_eq!(db.event_count().unwrap(), 0);
    assert!(db.record_batch_at(&e, &at("t", 0, 10)).unwrap().is_some());
    // Backwards and equal positions are replays: nothing written.
    for next in [3, 10] {
        assert!(db.record_batch_at(&e, &at("t", 0, next)).unwrap().is_none());
    }
    assert_eq!(db.event_count().unwrap(), 1);
    assert_eq!(db.log_position("t", 0).unwrap(), Some(10));
    // Partitions and topics are independent positions.
    assert_eq!(db.log_position("t", 1).unwrap(), None);
    assert_eq!(db.log_position("t2", 0).unwrap(), None);
    // Survives a reopen.
    drop(db);
    let db = common::reopen(&dir);
    assert_eq!(db.log_position("t", 0).unwrap(), Some(10));
}

#[test]
fn a_partition_is_fixed_at_creation() {
    let dir = tempfile::tempdir().unwrap();
    drop(partitioned(&dir, 2, 4));
    let reopen = |p: Option<Partition>| {
        Db::open(dir.path(), {
            let mut o = Options::default().create_if_missing(true);
            o.partition = p;
            o
        })
    };
    assert_eq!(
        reopen(None).unwrap().partition(),
        Partition::new(2, 4).unwrap()
    );
    let err = reopen(Some(Partition::new(1, 4).unwrap())).unwrap_err();
    assert!(
        err.to_string()
            .contains("partition = 2/4; reopened with 1/4"),
        "{err}"
    );
    let err = reopen(Some(Partition::WHOLE)).unwrap_err();
    assert!(err.to_string().contains("partition"), "{err}");
    // An unpartitioned store stays one.
    let other = tempfile::tempdir().unwrap();
    drop(Db::open(other.path(), Options::default().create_if_missing(true)).unwrap());
    let err = Db::open(
        other.path(),
        Options::default()
            .create_if_missing(true)
            .partition(Partition::new(0, 2).unwrap()),
    )
    .unwrap_err();
    assert!(err.to_string().contains("partition = 0/1"), "{err}");
    for (text, field) in [
        ("4/4", "partition"),
        ("0/0", "partition_count"),
        ("x", "partition"),
    ] {
        assert_eq!(Partition::parse(text).unwrap_err().field, field, "{text}");
    }
}
