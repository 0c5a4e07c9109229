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

#[test]
fn tier_and_rfm_thresholds_follow_the_tiers_order_and_the_scores() {
    use stickydb::ledger::{LedgerSettings, TierLevel, Tiers};
    let (_dir, db) = open_temp();
    let level = |name: &str, min_growth| TierLevel {
        name: name.into(),
        min_growth,
    };
    let tiers = Tiers {
        window_days: 365,
        levels: vec![
            level("silver", 10),
            level("gold", 40),
            level("platinum", 100),
        ],
    };
    db.set_ledger_settings(LedgerSettings::new(Vec::new(), tiers))
        .unwrap();
    for (user, points) in [("s", 15), ("g", 50), ("p", 150), ("none", 5)] {
        db.points(user, "t", T0, &stickydb::PointsOp::earn(points, "x"))
            .unwrap();
    }
    for (i, user) in ["b1", "b2", "b3", "b4", "b5", "g"].iter().enumerate() {
        let amount = 1_000 * (i as i64 + 1);
        db.record(&Event::new(*user, "purchase", T0 + DAY).with_amount(amount))
            .unwrap();
    }
    let now = T0 + 2 * DAY;
    let names = |expr: &str| -> Vec<String> {
        let set = db.segment(&Segment::parse(expr).unwrap(), now).unwrap();
        let mut v: Vec<String> = set
            .iter()
            .map(|id| db.user_name(id).unwrap().unwrap())
            .collect();
        v.sort();
        v
    };
    assert_eq!(names("tier>=gold"), ["g", "p"]);
    assert_eq!(names("tier>gold"), ["p"]);
    assert_eq!(names("tier<gold"), ["s"]);
    assert_eq!(
        names("tier<=silver or not tier>=silver"),
        names("not tier>=gold")
    );
    assert_eq!(names("points>=50"), ["g", "p"]);
    assert_eq!(
        names("points<10 and did:purchase"),
        ["b1", "b2", "b3", "b4", "b5"]
    );
    // RFM scores as the report gives them
    let day = db.local_day(now);
    let rfm = db.metrics().rfm(day, None).unwrap();
    let mut want: Vec<String> = rfm
        .users
        .iter()
        .filter(|r| r.m_score >= 4)
        .map(|r| db.user_name(r.user_id).unwrap().unwrap())
        .collect();
    want.sort();
    assert!(!want.is_empty() && want.len() < 6, "{want:?}");
    assert_eq!(names("rfm.m>=4"), want);
    // bad values are typed errors naming the atom
    let e = db.segment(&Segment::parse("tier>=diamond").unwrap(), now);
    assert!(
        matches!(&e, Err(stickydb::Error::Input(i)) if i.to_string().contains("silver, gold, platinum")),
        "{e:?}"
    );
    for bad in [
        "spend>=lots",
        "stickiness>=0.5",
        "points>=1@7d",
        "rfm.m>=9x",
    ] {
        assert!(Segment::parse(bad).is_err(), "{bad}");
    }
}
