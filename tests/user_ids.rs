//! User ids are dense, stable across reopen, and allocated with the first write.

mod common;
use common::*;
use stickydb::{Event, ProfileUpdate};

#[test]
fn ids_are_dense_and_survive_reopen() {
    let (dir, db) = open_temp();
    for (i, name) in ["ann", "bob", "cy"].iter().enumerate() {
        db.record(&Event::new(*name, "view", T0 + i as i64))
            .unwrap();
    }
    db.record(&Event::new("ann", "view", T0 + 9)).unwrap();
    assert_eq!(db.user_id("ann").unwrap(), Some(0));
    assert_eq!(db.user_id("bob").unwrap(), Some(1));
    assert_eq!(db.user_id("cy").unwrap(), Some(2));
    drop(db);

    let db = reopen(&dir);
    assert_eq!(db.user_id("bob").unwrap(), Some(1));
    assert_eq!(db.user_name(2).unwrap().as_deref(), Some("cy"));
    // the allocator resumes after the largest id on disk
    db.record(&Event::new("dee", "view", T0)).unwrap();
    assert_eq!(db.user_id("dee").unwrap(), Some(3));
    assert_eq!(db.user_count().unwrap(), 4);
    assert_clean(&db);
}

#[test]
fn a_profile_write_allocates_but_a_pure_removal_does_not() {
    let (_dir, db) = open_temp();
    db.update_profile("ghost", &ProfileUpdate::new().unset("age").untag("vip"))
        .unwrap();
    assert_eq!(db.user_id("ghost").unwrap(), None);
    db.update_profile("real", &ProfileUpdate::new().set("age", 30))
        .unwrap();
    assert_eq!(db.user_id("real").unwrap(), Some(0));
    assert_eq!(db.user_count().unwrap(), 1);
    assert_clean(&db);
}

#[test]
fn many_users_in_one_batch_get_distinct_ids() {
    let (dir, db) = open_temp();
    let events: Vec<Event> = (0..500)
        .map(|i| Event::new(format!("u{}", i % 250), "view", T0 + i))
        .collect();
    db.record_batch(&events).unwrap();
    let mut ids: Vec<u32> = (0..250)
        .map(|i| db.user_id(&format!("u{i}")).unwrap().unwrap())
        .collect();
    ids.sort();
    assert_eq!(ids, (0..250).collect::<Vec<u32>>());
    drop(db);
    let db = reopen(&dir);
    assert_eq!(db.all_users().unwrap().len(), 250);
    assert_clean(&db);
}
