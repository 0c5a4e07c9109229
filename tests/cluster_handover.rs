//! SPEC §7: an identity merge whose ids live in different partitions is
//! handed over through the log — `handover` in `from`'s partition, the
//! record through the log (here: JSON text, as a message carries it),
//! `accept_handover` in `into`'s, `finish_handover` back in `from`'s — and
//! the cluster then answers as one store that merged the two with
//! `Db::merge`. Replays at every step (a crash before the finish, a
//! re-delivered record) change nothing.

mod common;

use stickydb::cluster::Cluster;
use stickydb::{Db, Event, Handover, IdentitySettings, MergeOptions, Options, Partition, Segment};

const PARTS: u32 = 3;

fn open(dir: &tempfile::TempDir, partition: Partition) -> Db {
    let db = Db::open(
        dir.path(),
        Options::default()
            .create_if_missing(true)
            .partition(partition),
    )
    .unwrap();
    db.set_identity_settings(IdentitySettings::anonymous(["anon-"]))
        .unwrap();
    db
}

fn events() -> Vec<Event> {
    let mut out = Vec::new();
    let mut x: u64 = 5;
    let mut next = |n: u64| {
        x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        (x >> 33) % n
    };
    for i in 0..3_000 {
        let user = if next(3) == 0 {
            format!("anon-{}", next(60))
        } else {
            format!("user-{}", next(60))
        };
        let kind = ["view", "purchase", "signup", "add_to_cart"][next(4) as usize];
        let mut e = Event::new(
            user,
            kind,
            common::T0 + next(50) as i64 * common::DAY + next(80_000_000) as i64,
        );
        if kind == "purchase" {
            e = e.with_amount(100 + next(9_000) as i64);
        }
        if next(4) == 0 {
            e = e.with_id(format!("id-{}", i % 500));
        }
        if next(3) == 0 {
            e.session_id = Some(format!("s{}", next(200)));
        }
        out.push(e);
    }
    out
}

/// Through the log: a record is a JSON message.
fn through_log(h: &Handover) -> Handover {
    let text = serde_json::to_string(h).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn a_handover_equals_a_merge_in_one_store() {
    let whole_dir = tempfile::tempdir().unwrap();
    let whole = open(&whole_dir, Partition::WHOLE);
    let dirs: Vec<_> = (0..PARTS).map(|_| tempfile::tempdir().unwrap()).collect();
    let parts: Vec<Db> = (0..PARTS)
        .map(|i| open(&dirs[i as usize], Partition::new(i, PARTS).unwrap()))
        .collect();
    let owner = |u: &str| Partition::of(u, PARTS).index as usize;
    let evs = events();
    for chunk in evs.chunks(300) {
        whole.record_batch(chunk).unwrap();
        for (i, db) in parts.iter().enumerate() {
            let mine: Vec<Event> = chunk
                .iter()
                .filter(|e| owner(&e.user) == i)
                .cloned()
                .collect();
            db.record_batch(&mine).unwrap();
        }
    }
    // Every anonymous id whose target lives in another partition.
    let mut merged = 0;
    for a in 0..60 {
        let from = format!("anon-{a}");
        let into = format!("user-{}", (a * 7) % 60);
        if owner(&from) == owner(&into) || whole.user_id(&from).unwrap().is_none() {
            continue;
        }
        let id = format!("m-{a}");
        let outcome = whole
            .merge(&from, &into, &id, MergeOptions::default())
            .unwrap();
        let (src, dst) = (&parts[owner(&from)], &parts[owner(&into)]);
        let h = src
            .handover(&from, &into, &id, false)
            .unwrap()
            .expect("a first handover");
        assert!(!h.events.is_empty());
        let delivered = through_log(&h);
        // What a merge in one store moves (the rest: ids `into` holds).
        assert_eq!(
            dst.accept_handover(&delivered).unwrap(),
            outcome.events_moved
        );
        assert_eq!(
            outcome.events_moved + outcome.duplicate_events,
            h.events.len() as u64
        );
        if a % 2 == 0 {
            // Crash before the finish: the sender replays the merge and
            // sends the same record again; the receiver records nothing.
            let again = src
                .handover(&from, &into, &id, false)
                .unwrap()
                .expect("not finished");
            assert_eq!(again, h);
            assert_eq!(dst.accept_handover(&through_log(&again)).unwrap(), 0);
        }
        assert!(src.finish_handover(&h).unwrap());
        // Replays after the finish: nothing to send, nothing recorded.
        assert_eq!(src.handover(&from, &into, &id, false).unwrap(), None);
        assert!(!src.finish_handover(&h).unwrap());
        assert_eq!(dst.accept_handover(&delivered).unwrap(), 0);
        assert_eq!(src.user_id(&from).unwrap(), None);
        // Its later events are refused by position, naming where they go.
        let known = src
            .user_name(src.all_users().unwrap().min().unwrap())
            .unwrap()
            .unwrap();
        let late = [
            Event::new(known, "view", common::T0).with_id("late-known"),
            Event::new(from.as_str(), "view", common::T0),
        ];
        let err = src.record_batch(&late).unwrap_err();
        match &err {
            stickydb::Error::Input(e) => {
                assert_eq!(e.index, Some(1));
                assert_eq!(e.problem, stickydb::Problem::Moved { into: into.clone() });
            }
            other => panic!("{other}"),
        }
        merged += 1;
    }
    assert!(merged >= 10, "only {merged} cross-partition merges");
    for db in &parts {
        common::assert_clean(db);
    }
    let from = whole.local_day(common::T0) - 1;
    let to = from + 60;
    let now = (i64::from(to) + 1) * common::DAY - 1;
    let segs = [Segment::parse("active_within:14d").unwrap()];
    let cluster = Cluster::new(parts.iter().collect()).unwrap();
    common::assert_same_answers(
        &common::cluster::answers(&whole, from, to, now, &segs),
        &common::cluster::answers(&cluster, from, to, now, &segs),
        "handovers against merges",
    );
}

#[test]
fn handovers_refuse_what_cannot_travel() {
    let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let parts: Vec<Db> = (0..2)
        .map(|i| open(&dirs[i as usize], Partition::new(i, 2).unwrap()))
        .collect();
    // Two anonymous ids in different partitions, two identified ones in
    // the same partition as the first.
    let names: Vec<String> = (0..200).map(|i| format!("anon-{i}")).collect();
    let a0 = names
        .iter()
        .find(|n| Partition::of(n, 2).index == 0)
        .unwrap();
    let a1 = names
        .iter()
        .find(|n| Partition::of(n, 2).index == 1)
        .unwrap();
    let ids: Vec<String> = (0..200).map(|i| format!("user-{i}")).collect();
    let u0 = ids.iter().find(|n| Partition::of(n, 2).index == 0).unwrap();
    let u1 = ids.iter().find(|n| Partition::of(n, 2).index == 1).unwrap();
    parts[0]
        .record(&Event::new(a0.as_str(), "view", common::T0))
        .unwrap();
    parts[0]
        .record(&Event::new(u0.as_str(), "view", common::T0))
        .unwrap();
    let err = |r: stickydb::Result<Option<Handover>>| r.unwrap_err().to_string();
    assert!(err(parts[0].handover(a0, u0, "m", false)).contains("merge them here"));
    assert!(err(parts[0].handover(u0, u1, "m", false)).contains("force"));
    assert!(err(parts[0].handover("anon-nobody", u1, "m", false)).contains("unknown user"));
    let earn = stickydb::PointsOp::Earn {
        points: 5,
        expires_at_ms: None,
        reason: "welcome".into(),
    };
    parts[0].points(u0, "t1", common::T0, &earn).unwrap();
    assert!(err(parts[0].handover(u0, u1, "m", true)).contains("points account"));
    // A record naming someone else's events is refused whole.
    let mut h = parts[0].handover(a0, u1, "m2", false).unwrap().unwrap();
    h.events[0].user = a1.clone();
    assert!(matches!(
        parts[1].accept_handover(&h),
        Err(stickydb::Error::Input(ref e)) if e.field == "handover.events.user" && e.index.is_none()
    ));
    assert_eq!(parts[1].event_count().unwrap(), 0);
}

/// An event `from` records between `handover` and `finish_handover` would
/// be erased without being handed over: the finish refuses, writing
/// nothing, and a hand-over made again carries it.
#[test]
fn a_finish_after_new_events_of_from_is_refused() {
    let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let parts: Vec<Db> = (0..2)
        .map(|i| open(&dirs[i as usize], Partition::new(i, 2).unwrap()))
        .collect();
    let names: Vec<String> = (0..200).map(|i| format!("anon-{i}")).collect();
    let from = names
        .iter()
        .find(|n| Partition::of(n, 2).index == 0)
        .unwrap();
    let into = names
        .iter()
        .find(|n| Partition::of(n, 2).index == 1)
        .unwrap();
    parts[0]
        .record(&Event::new(from.as_str(), "view", common::T0))
        .unwrap();
    let h = parts[0].handover(from, into, "m1", false).unwrap().unwrap();
    assert_eq!(h.from_next_seq, Some(1));
    // the log carries the read sequence number
    assert_eq!(through_log(&h).from_next_seq, Some(1));
    parts[0]
        .record(&Event::new(from.as_str(), "purchase", common::T0 + 1).with_amount(5))
        .unwrap();
    let before = parts[0].raw_dump().unwrap();
    match parts[0].finish_handover(&h) {
        Err(stickydb::Error::Merge(stickydb::MergeError::Handover { reason, .. })) => {
            assert!(reason.contains("recorded since the handover"), "{reason}")
        }
        other => panic!("finish after a new event: {other:?}"),
    }
    assert_eq!(
        parts[0].raw_dump().unwrap(),
        before,
        "a refused finish wrote"
    );
    // made again, it carries both events and finishes
    let h = parts[0].handover(from, into, "m1", false).unwrap().unwrap();
    assert_eq!(h.events.len(), 2);
    assert_eq!(parts[1].accept_handover(&through_log(&h)).unwrap(), 2);
    assert!(parts[0].finish_handover(&h).unwrap());
    assert_eq!(parts[0].user_id(from).unwrap(), None);
    common::assert_clean(&parts[0]);
    common::assert_clean(&parts[1]);
}
