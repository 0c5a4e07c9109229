//! `Db::snapshot`: a reader's five reads all see one instant while a writer
//! changes the profile, the events and the points of the same user.

mod common;
use common::*;

use stickydb::{AttrValue, Event, PointsOp, ProfileUpdate, Segment, Sensitive, TagSource};

#[test]
fn a_snapshots_reads_all_come_from_before_the_write() {
    let (_dir, db) = open_temp();
    db.write(|tx| {
        tx.record(&Event::new("alice", "view", T0).with_id("v1"))?;
        tx.update_profile("alice", &ProfileUpdate::new().set("plan", "free"))?;
        tx.points("alice", "t1", T0, &PointsOp::earn(100, "welcome"))?;
        Ok(())
    })
    .unwrap();
    let day = db.local_day(T0);
    let snap = db.snapshot();
    // a writer changes all of it, in one transaction and in single calls
    db.write(|tx| {
        tx.record(&Event::new("alice", "purchase", T0 + 1).with_amount(900))?;
        tx.record(&Event::new("bob", "view", T0 + 2))?;
        tx.update_profile(
            "alice",
            &ProfileUpdate::new()
                .set("plan", "gold")
                .tag("vip", TagSource::Manual, T0, None),
        )?;
        tx.points("alice", "t2", T0 + 1, &PointsOp::redeem(40, "order"))?;
        Ok(())
    })
    .unwrap();
    db.record(&Event::new("carol", "view", T0 + 3)).unwrap();

    // 1 profile
    let p = snap.profile("alice", Sensitive::Exclude).unwrap().unwrap();
    assert_eq!(p.attributes["plan"], AttrValue::Str("free".into()));
    assert!(p.tags.is_empty());
    // 2 timeline
    assert_eq!(snap.newest("alice", 10).unwrap().len(), 1);
    // 3 account
    assert_eq!(snap.account("alice").unwrap().unwrap().balance, 100);
    // 4 segment
    assert!(snap
        .segment(&Segment::parse("tag:vip").unwrap(), T0)
        .unwrap()
        .is_empty());
    assert_eq!(snap.all_users().unwrap().len(), 1);
    assert_eq!(snap.user_id("bob").unwrap(), None);
    // 5 metrics
    let rows = snap.metrics().active(None, day, day, None).unwrap();
    assert_eq!(rows[0].dau, 1);
    assert_eq!(snap.metrics().daily(day, day).unwrap()[0].orders, 0);

    // the handle's own reads see the writes
    assert_eq!(db.account("alice").unwrap().unwrap().balance, 60);
    assert_eq!(db.metrics().active(None, day, day, None).unwrap()[0].dau, 3);
    assert_eq!(
        db.segment(&Segment::parse("tag:vip").unwrap(), T0)
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn a_snapshot_does_not_see_a_later_merge() {
    let (_dir, db) = open_temp();
    db.set_identity_settings(stickydb::IdentitySettings::anonymous(["dev:"]))
        .unwrap();
    db.record(&Event::new("dev:1", "view", T0)).unwrap();
    db.record(&Event::new("member", "view", T0 + 1)).unwrap();
    let snap = db.snapshot();
    db.merge("dev:1", "member", "m1", stickydb::MergeOptions::default())
        .unwrap();
    assert!(matches!(
        snap.resolve("dev:1").unwrap(),
        Some(stickydb::users::NameEntry::User(_))
    ));
    assert!(snap.merges("member").unwrap().is_empty());
    assert_eq!(snap.all_users().unwrap().len(), 2);
    assert!(matches!(
        db.resolve("dev:1").unwrap(),
        Some(stickydb::users::NameEntry::Alias { .. })
    ));
    assert_eq!(db.merges("member").unwrap().len(), 1);
}
