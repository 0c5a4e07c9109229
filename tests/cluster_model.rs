//! SPEC §7: a `Cluster` over partition stores answers exactly as one store
//! holding every event — random streams (late, duplicate, out of order,
//! erasures) split by the partition function into 1–4 stores, every
//! cluster answer against the single store's.

mod common;

use proptest::prelude::*;
use stickydb::cluster::Cluster;
use stickydb::{Db, Event, Options, Partition, Segment};

const DAY_MS: i64 = 86_400_000;
const BASE_DAY: i64 = 19_700;

#[derive(Debug, Clone)]
enum Op {
    Event {
        user: u8,
        kind: u8,
        day: u8,
        minute: u16,
        amount: u16,
        id: Option<u8>,
    },
    Erase(u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        12 => (0u8..40, 0u8..4, 0u8..75, 0u16..1440, 1u16..500, proptest::option::of(0u8..6))
            .prop_map(|(user, kind, day, minute, amount, id)| Op::Event {
                user, kind, day, minute, amount, id,
            }),
        1 => (0u8..40).prop_map(Op::Erase),
    ]
}

fn event(user: u8, kind: u8, day: u8, minute: u16, amount: u16, id: Option<u8>) -> Event {
    let ts = (BASE_DAY + i64::from(day)) * DAY_MS + i64::from(minute) * 60_000;
    let name = format!("user-{user}");
    let mut e = match kind {
        0 => Event::new(name, "view", ts),
        1 => Event::new(name, "purchase", ts).with_amount(i64::from(amount) * 100),
        2 => Event::new(name, "signup", ts),
        _ => Event::new(name, "refund", ts).with_amount(i64::from(amount) * 10),
    };
    if let Some(id) = id {
        e = e.with_id(format!("e{id}-{kind}"));
    }
    e
}

fn open(dir: &tempfile::TempDir, offset: i32, partition: Partition) -> Db {
    Db::open(
        dir.path(),
        Options::default()
            .create_if_missing(true)
            .utc_offset_minutes(offset)
            .partition(partition),
    )
    .expect("open")
}

fn run(ops: &[Op], count: u32, offset: i32) {
    let whole_dir = tempfile::tempdir().unwrap();
    let whole = open(&whole_dir, offset, Partition::WHOLE);
    let dirs: Vec<_> = (0..count).map(|_| tempfile::tempdir().unwrap()).collect();
    let parts: Vec<Db> = (0..count)
        .map(|i| open(&dirs[i as usize], offset, Partition::new(i, count).unwrap()))
        .collect();
    // Batches of up to 7 events, each user's part to its partition.
    let mut pending: Vec<Event> = Vec::new();
    let flush = |pending: &mut Vec<Event>| {
        if pending.is_empty() {
            return;
        }
        whole.record_batch(pending).unwrap();
        for (i, db) in parts.iter().enumerate() {
            let mine: Vec<Event> = pending
                .iter()
                .filter(|e| Partition::of(&e.user, count).index == i as u32)
                .cloned()
                .collect();
            db.record_batch(&mine).unwrap();
            // Another partition's user is refused, naming the owner.
            if let Some(other) = pending
                .iter()
                .find(|e| Partition::of(&e.user, count).index != i as u32)
            {
                if db.user_id(&other.user).unwrap().is_none() {
                    let err = db.record(other).unwrap_err().to_string();
                    assert!(err.contains("belongs to partition"), "{err}");
                }
            }
        }
        pending.clear();
    };
    for o in ops {
        match *o {
            Op::Event {
                user,
                kind,
                day,
                minute,
                amount,
                id,
            } => {
                pending.push(event(user, kind, day, minute, amount, id));
                if pending.len() >= 7 {
                    flush(&mut pending);
                }
            }
            Op::Erase(user) => {
                flush(&mut pending);
                let name = format!("user-{user}");
                let p = Partition::of(&name, count).index as usize;
                assert_eq!(
                    whole.erase_user(&name).unwrap(),
                    parts[p].erase_user(&name).unwrap()
                );
            }
        }
    }
    flush(&mut pending);
    for (i, db) in parts.iter().enumerate() {
        let p = db.partition();
        assert_eq!((p.index, p.count), (i as u32, count));
        for id in db.all_users().unwrap() {
            assert!(p.holds_id(id), "id {id} outside partition {p}");
        }
        assert!(db.verify().unwrap().is_clean());
    }
    let from = (BASE_DAY as i32) - 1;
    let to = from + 80;
    let now = (i64::from(to) + 1) * DAY_MS - 1;
    let segs = [
        Segment::parse("active_within:14d").unwrap(),
        Segment::parse("did:purchase and not stage:churned").unwrap(),
    ];
    // Given in a shuffled order: the cluster sorts them by partition.
    let mut refs: Vec<&Db> = parts.iter().collect();
    refs.reverse();
    let cluster = Cluster::new(refs).unwrap();
    common::assert_same_answers(
        &common::cluster::answers(&whole, from, to, now, &segs),
        &common::cluster::answers(&cluster, from, to, now, &segs),
        &format!("{count} partitions, offset {offset}"),
    );
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(24),
        ..ProptestConfig::default()
    })]

    #[test]
    fn cluster_equals_one_store(
        ops in proptest::collection::vec(op(), 1..160),
        count in 1u32..=4,
        offset in prop_oneof![Just(0i32), Just(480), Just(-300)],
    ) {
        run(&ops, count, offset);
    }
}

#[test]
fn a_cluster_refuses_what_would_not_add_up() {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let a = open(&dirs[0], 0, Partition::new(0, 2).unwrap());
    let b = open(&dirs[1], 0, Partition::new(1, 2).unwrap());
    let c = open(&dirs[2], 60, Partition::new(1, 2).unwrap());
    let err = |v: Vec<&Db>| Cluster::new(v).unwrap_err().to_string();
    assert!(err(vec![&a]).contains("partition 1/2 missing"));
    assert!(err(vec![&a, &a]).contains("given twice"));
    assert!(err(vec![&a, &c]).contains("UTC offset"));
    let ok = Cluster::new(vec![&b, &a]).unwrap();
    let rfm_atom = Segment::parse("rfm:champions").unwrap();
    assert!(ok
        .segment_count(&rfm_atom, 0)
        .unwrap_err()
        .to_string()
        .contains("rfm"));
    // A partition is fixed at creation: reopening as another is refused.
    drop(b);
    let again = Db::open(
        dirs[1].path(),
        Options::default()
            .create_if_missing(true)
            .partition(Partition::new(0, 2).unwrap()),
    );
    assert!(again.unwrap_err().to_string().contains("partition"));
}
