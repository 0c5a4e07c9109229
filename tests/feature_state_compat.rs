//! Backward compatibility of feature states: a store written by the first
//! build of features (commit `ec9000a`, tests/data/formats/features-v1:
//! states of format byte 1, whose recent events each carried their own
//! property list) answers every feature and tag it answered then, keeps
//! the tags it published when new events arrive, and verifies clean.

mod common;
use common::*;
use stickydb::features::json;
use stickydb::{Db, Event, Options, PropValue};

const T0: i64 = 1_709_251_200_000;
const DAY: i64 = 86_400_000;

fn fixture() -> (tempfile::TempDir, Vec<String>) {
    let (dir, src) = copy_fixture("features-v1");
    let text = std::fs::read_to_string(src.join("expected.jsonl")).unwrap();
    (dir, text.lines().map(str::to_owned).collect())
}

#[test]
fn states_of_the_first_layout_answer_as_they_did() {
    let (dir, expected) = fixture();
    let db = Db::open(dir.path(), Options::default()).unwrap();
    for (u, want) in expected.iter().enumerate() {
        let f = db.features(&format!("u{u}"), T0 + 22 * DAY).unwrap();
        assert_eq!(&json::features_json(&f).to_string(), want, "u{u}");
    }
    assert_clean(&db);
}

#[test]
fn states_of_the_first_layout_keep_their_tags_through_new_writes() {
    let (dir, _) = fixture();
    let db = Db::open(dir.path(), Options::default()).unwrap();
    let before = db.feed(0, 100_000).unwrap().len();
    for u in 0..8 {
        let id = format!("u{u}");
        let held = db.features(&id, T0 + 21 * DAY).unwrap().tags;
        // a view the rules already count changes no tag at its instant
        let mut e = Event::new(&id, "view", T0 + 21 * DAY);
        e.properties
            .insert("category".into(), PropValue::Str("home".into()));
        db.record(&e).unwrap();
        assert_eq!(db.features(&id, T0 + 21 * DAY).unwrap().tags, held, "{id}");
    }
    // each user's tags entered once and are still held: no second entry
    let mut held = std::collections::BTreeMap::new();
    for e in db.feed(0, 100_000).unwrap() {
        if let stickydb::Change::Tag { tag, state, .. } = &e.record.change {
            let entered = *state == stickydb::feed::TagState::Entered;
            let was = held.insert((e.record.user_id, tag.clone()), entered);
            assert_ne!(was, Some(entered), "{tag} {state:?} twice");
        }
    }
    assert!(db.feed(0, 100_000).unwrap().len() >= before);
    assert_clean(&db);
}
