//! Dimensions, one behaviour per example (docs/metrics.md, "Dimensions"):
//! the cases a random stream reaches rarely, pinned.

use stickydb::dims::{BreakdownQuery, Dimension, FunnelStep};
use stickydb::{Db, Error, Event, Options, PropValue, Segment};

const HOUR_MS: i64 = 3_600_000;
/// 2024-03-01 00:00 UTC.
const T0: i64 = 1_709_251_200_000;

fn ev(user: &str, kind: &str, ts: i64, channel: &str) -> Event {
    Event::new(user, kind, ts).with_property("channel", PropValue::Str(channel.into()))
}

fn store() -> (tempfile::TempDir, Db) {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::create(dir.path(), Options::default()).unwrap();
    (dir, db)
}

fn users(db: &Db, expr: &str) -> Vec<String> {
    let set = db.segment(&Segment::parse(expr).unwrap(), T0).unwrap();
    set.iter()
        .map(|u| db.user_name(u).unwrap().unwrap())
        .collect()
}

#[test]
fn a_filtered_step_needs_its_value_inside_the_window() {
    let (_dir, db) = store();
    db.declare_dimension(&Dimension::new("channel")).unwrap();
    db.record_batch(&[
        ev("ann", "view", T0, "ads"),
        // a cart in the window, of another channel...
        ev("ann", "add_to_cart", T0 + HOUR_MS, "seo"),
        // ...and one of the step's channel, past the window
        ev("ann", "add_to_cart", T0 + 30 * HOUR_MS, "ads"),
        ev("bob", "view", T0, "ads"),
        ev("bob", "add_to_cart", T0 + 2 * HOUR_MS, "ads"),
    ])
    .unwrap();
    let day = db.local_day(T0);
    let steps = [
        FunnelStep::parse("view[channel=ads]").unwrap(),
        FunnelStep::parse("add_to_cart[channel=ads]").unwrap(),
    ];
    let counts = db
        .funnel_steps(&steps, 6 * HOUR_MS, (day, day), None)
        .unwrap();
    assert_eq!(counts, vec![2, 1]);
    // without the filter ann's seo cart counts
    let plain = [FunnelStep::kind("view"), FunnelStep::kind("add_to_cart")];
    let counts = db
        .funnel_steps(&plain, 6 * HOUR_MS, (day, day), None)
        .unwrap();
    assert_eq!(counts, vec![2, 2]);
    // a property that is not a dimension is refused, not ignored
    let undeclared = [FunnelStep::kind("view").with("campaign", "x")];
    assert!(matches!(
        db.funnel_steps(&undeclared, HOUR_MS, (day, day), None),
        Err(Error::Input(_))
    ));
}

#[test]
fn a_late_earlier_event_moves_the_first_touch() {
    let (_dir, db) = store();
    db.declare_dimension(&Dimension::new("channel")).unwrap();
    db.record(&ev("ann", "view", T0 + 10 * HOUR_MS, "seo"))
        .unwrap();
    assert_eq!(users(&db, "first:channel=seo"), ["ann"]);
    assert_eq!(users(&db, "last:channel=seo"), ["ann"]);
    db.record(&ev("ann", "view", T0, "ads")).unwrap();
    assert_eq!(users(&db, "first:channel=ads"), ["ann"]);
    assert!(users(&db, "first:channel=seo").is_empty());
    assert_eq!(users(&db, "last:channel=seo"), ["ann"]);
    // an event without the property touches nothing
    db.record(&Event::new("ann", "view", T0 + 20 * HOUR_MS))
        .unwrap();
    assert_eq!(users(&db, "last:channel=seo"), ["ann"]);
    db.erase_user("ann").unwrap();
    assert!(users(&db, "first:channel=ads").is_empty());
    assert!(db.verify().unwrap().is_clean());
}

#[test]
fn values_past_the_cap_fold_into_other_and_are_refused_by_name() {
    let (_dir, db) = store();
    db.declare_dimension(&Dimension::new("channel").max_values(1))
        .unwrap();
    db.record_batch(&[
        ev("ann", "view", T0, "ads"),
        ev("bob", "view", T0, "seo"),
        ev("cid", "view", T0, "mail"),
    ])
    .unwrap();
    let day = db.local_day(T0);
    let b = db
        .breakdown(&BreakdownQuery::new("channel", day, day), None, T0)
        .unwrap();
    let rows: Vec<(&str, u64)> = b.rows.iter().map(|r| (r.value.as_str(), r.users)).collect();
    assert_eq!(rows, [("ads", 1), ("(other)", 2)]);
    assert_eq!(users(&db, "did:view[channel=(other)]").len(), 2);
    assert!(db
        .segment(&Segment::parse("did:view[channel=seo]").unwrap(), T0)
        .is_err());
    let info = db.dimensions();
    assert_eq!((info[0].values, info[0].full), (1, true));
    // parentheses still group around an atom whose value is (other)
    let n = users(&db, "(did:[channel=(other)] and not first:channel=ads)").len();
    assert_eq!(n, 2);
}

#[test]
fn a_dimension_declared_late_sees_the_stored_events_and_a_drop_forgets_it() {
    let (_dir, db) = store();
    db.record_batch(&[
        ev("ann", "purchase", T0, "ads").with_amount(500),
        ev("bob", "view", T0, "seo"),
    ])
    .unwrap();
    db.declare_dimension(&Dimension::new("channel").kinds(["purchase"]))
        .unwrap();
    let day = db.local_day(T0);
    let b = db
        .breakdown(&BreakdownQuery::new("channel", day, day), None, T0)
        .unwrap();
    let rows: Vec<(&str, u64, Option<i64>)> = b
        .rows
        .iter()
        .map(|r| (r.value.as_str(), r.users, r.gmv_minor))
        .collect();
    // views do not carry this dimension
    assert_eq!(rows, [("ads", 1, Some(500))]);
    assert!(db.verify().unwrap().is_clean());
    db.drop_dimension("channel").unwrap();
    assert!(db.dimensions().is_empty());
    assert!(db
        .breakdown(&BreakdownQuery::new("channel", day, day), None, T0)
        .is_err());
    assert!(db.verify().unwrap().is_clean());
    // declared again: a new id, the stored events again
    db.declare_dimension(&Dimension::new("channel")).unwrap();
    let b = db
        .breakdown(&BreakdownQuery::new("channel", day, day), None, T0)
        .unwrap();
    assert_eq!(b.rows.len(), 2);
    assert!(db.verify().unwrap().is_clean());
}

#[test]
fn segment_revenue_is_the_same_read_by_point_or_by_scan() {
    // A segment's money is read by MultiGet of its purchase and refund days,
    // or — past one (user, day) pair per 64 users of the store, at least
    // 4 096 — by one scan of every user's money: both must give the
    // store-wide counters' answer for a segment of everybody.
    let (_dir, db) = store();
    let day = db.local_day(T0);
    for n in [100usize, 5_000] {
        let events: Vec<Event> = (0..n)
            .flat_map(|i| {
                let user = format!("n{n}-{i}");
                let t = T0 + (i as i64 % 3) * 24 * HOUR_MS;
                [
                    Event::new(user.as_str(), "purchase", t).with_amount(100 + i as i64),
                    Event::new(user.as_str(), "refund", t + HOUR_MS).with_amount(7),
                ]
            })
            .collect();
        db.record_batch(&events).unwrap();
        let everybody = db.segment(&Segment::parse("all").unwrap(), T0).unwrap();
        let m = db.metrics();
        let filtered = m.revenue(day, day + 2, Some(&everybody)).unwrap();
        let all = m.revenue(day, day + 2, None).unwrap();
        assert_eq!(filtered, all, "{n} users each");
        assert!(all.iter().all(|r| r.orders > 0 && r.refunds_minor > 0));
    }
}
