//! The tag index equals a model after random tag operations (property test),
//! and segment algebra equals set algebra on the model.

mod common;
use std::collections::{BTreeMap, BTreeSet};

use common::*;
use proptest::prelude::*;
use stickydb::{ProfileUpdate, Segment, TagSource};

const USERS: u32 = 8;
const TAGS: [&str; 3] = ["vip", "vi", "exp:a"]; // "vi" is a prefix of "vip" on purpose

#[derive(Debug, Clone)]
enum Op {
    Tag {
        user: u32,
        tag: usize,
        expires: Option<i64>,
    },
    Untag {
        user: u32,
        tag: usize,
    },
    Purge {
        now: i64,
    },
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => (0..USERS, 0..TAGS.len(), proptest::option::of(0i64..20))
            .prop_map(|(user, tag, expires)| Op::Tag { user, tag, expires: expires.map(|e| T0 + e) }),
        2 => (0..USERS, 0..TAGS.len()).prop_map(|(user, tag)| Op::Untag { user, tag }),
        1 => (0i64..20).prop_map(|n| Op::Purge { now: T0 + n }),
        1 => Just(Op::Reopen),
    ]
}

fn segment() -> impl Strategy<Value = Segment> {
    let leaf = prop_oneof![
        (0..TAGS.len()).prop_map(|t| Segment::tag(TAGS[t])),
        Just(Segment::All),
    ];
    leaf.prop_recursive(3, 12, 2, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| a.and(b)),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| a.or(b)),
            inner.prop_map(Segment::not),
        ]
    })
}

/// Model: (user, tag) → expiry.
type Model = BTreeMap<(u32, &'static str), Option<i64>>;

fn model_eval(seg: &Segment, model: &Model, users: &BTreeSet<u32>, now: i64) -> BTreeSet<u32> {
    match seg {
        Segment::All => users.clone(),
        Segment::Tag(t) => model
            .iter()
            .filter(|((_, tag), exp)| tag == t && exp.is_none_or(|e| now < e))
            .map(|((u, _), _)| *u)
            .collect(),
        Segment::And(a, b) => &model_eval(a, model, users, now) & &model_eval(b, model, users, now),
        Segment::Or(a, b) => &model_eval(a, model, users, now) | &model_eval(b, model, users, now),
        Segment::Not(a) => users - &model_eval(a, model, users, now),
        other => unreachable!("the strategy generates only tag atoms, got {other}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn tag_index_matches_model(ops in proptest::collection::vec(op(), 1..60), segs in proptest::collection::vec(segment(), 1..6), now in 0i64..22) {
        let (dir, mut db) = open_temp();
        let mut model: Model = BTreeMap::new();
        let mut users: BTreeSet<u32> = BTreeSet::new();
        for op in ops {
            match op {
                Op::Tag { user, tag, expires } => {
                    db.update_profile(&format!("u{user}"), &ProfileUpdate::new().tag(TAGS[tag], TagSource::Rule, T0, expires)).unwrap();
                    users.insert(user);
                    model.insert((user, TAGS[tag]), expires);
                }
                Op::Untag { user, tag } => {
                    db.update_profile(&format!("u{user}"), &ProfileUpdate::new().untag(TAGS[tag])).unwrap();
                    model.remove(&(user, TAGS[tag]));
                }
                Op::Purge { now } => {
                    let expected = model.values().filter(|e| e.is_some_and(|e| e <= now)).count();
                    let removed = db.purge_expired_tags(now).unwrap();
                    prop_assert_eq!(removed, expected);
                    model.retain(|_, e| e.is_none_or(|e| now < e));
                    // re-running is a no-op
                    prop_assert_eq!(db.purge_expired_tags(now).unwrap(), 0);
                }
                Op::Reopen => {
                    drop(db);
                    db = reopen(&dir);
                }
            }
        }
        // users are named "u{n}" and allocated in first-touch order: map back by name
        let id_of = |u: u32| db.user_id(&format!("u{u}")).unwrap().unwrap();
        for tag in TAGS {
            let want: BTreeSet<u32> = model.keys().filter(|(_, t)| *t == tag).map(|(u, _)| id_of(*u)).collect();
            let got: BTreeSet<u32> = db.users_with_tag(tag, None).unwrap().iter().collect();
            prop_assert_eq!(got, want, "index of {}", tag);
        }
        let now = T0 + now;
        for seg in segs {
            let want: BTreeSet<u32> = model_eval(&seg, &model, &users, now).into_iter().map(id_of).collect();
            let got: BTreeSet<u32> = db.segment(&seg, now).unwrap().iter().collect();
            prop_assert_eq!(got, want, "segment {}", seg);
            // the text form parses back to the same segment
            prop_assert_eq!(Segment::parse(&seg.to_string()).unwrap(), seg);
        }
        let report = db.verify().unwrap();
        prop_assert!(report.is_clean(), "{:?}", report.problems);
    }
}
