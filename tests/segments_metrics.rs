//! Segment atoms over maintained metrics, and segments as metric filters.

mod common;
use common::*;
use stickydb::{Event, ProfileUpdate, Segment};

#[test]
fn metric_atoms_select_the_right_users() {
    let (_dir, db) = open_temp();
    let day = db.local_day(T0);
    let now = T0 + 40 * DAY; // as of day + 40
                             // old: active on day 0 only (churned by day 40)
    db.record(&Event::new("old", "view", T0)).unwrap();
    // fresh: first activity on day 38 (new)
    db.record(&Event::new("fresh", "view", T0 + 38 * DAY))
        .unwrap();
    // buyer: purchases on days 10, 20, 35 (mature)
    for d in [10, 20, 35] {
        db.record(&Event::new("buyer", "purchase", T0 + d * DAY).with_amount(1_000))
            .unwrap();
    }
    db.update_profile(
        "buyer",
        &ProfileUpdate::new()
            .set("region", "EU")
            .set_sensitive("phone", "123"),
    )
    .unwrap();
    db.update_profile("old", &ProfileUpdate::new().set("region", "US"))
        .unwrap();

    let names = |expr: &str| -> Vec<String> {
        let set = db.segment(&Segment::parse(expr).unwrap(), now).unwrap();
        let mut v: Vec<String> = set
            .iter()
            .map(|id| db.user_name(id).unwrap().unwrap())
            .collect();
        v.sort();
        v
    };
    assert_eq!(names("stage:churned"), ["old"]);
    assert_eq!(names("stage:new"), ["fresh"]);
    assert_eq!(names("stage:mature"), ["buyer"]);
    assert_eq!(names("active_within:7d"), ["buyer", "fresh"]);
    assert_eq!(names("inactive_for:30d"), ["old"]);
    assert_eq!(names("did:purchase"), ["buyer"]);
    assert_eq!(names("did:purchase@2024-03-01..2024-03-15"), ["buyer"]);
    assert_eq!(
        names("did:purchase@2024-03-01..2024-03-05"),
        Vec::<String>::new()
    );
    assert_eq!(names("attr:region=EU or attr:region=US"), ["buyer", "old"]);
    assert_eq!(
        names("attr:phone=123"),
        Vec::<String>::new(),
        "sensitive never matches"
    );
    // alone, a purchaser outranks no one: every score is 1 (docs/metrics.md)
    assert_eq!(names("rfm:lost"), ["buyer"]);
    assert_eq!(names("not stage:churned and not stage:new"), ["buyer"]);

    // a segment as a filter for a metric
    let active = Segment::parse("active_within:7d").unwrap();
    let f = db.segment(&active, now).unwrap();
    let rows = db
        .metrics()
        .active(None, day + 35, day + 38, Some(&f))
        .unwrap();
    assert_eq!(
        rows.iter().map(|r| r.dau).collect::<Vec<_>>(),
        vec![1, 0, 0, 1]
    );
}
