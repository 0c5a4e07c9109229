//! The worked examples of docs/metrics.md ("Social commerce"), number for
//! number.

mod common;
use stickydb::{Db, Event, Figures, GroupState, Options, Segment, SharerRank};

const DAY: i64 = 86_400_000;
const HOUR: i64 = 3_600_000;
const MIN: i64 = 60_000;
/// d1 = 2024-03-01 00:00 UTC.
const D1: i64 = 1_709_251_200_000;

fn at(day: i64, hour: i64, minute: i64) -> i64 {
    D1 + (day - 1) * DAY + hour * HOUR + minute * MIN
}

fn open() -> (tempfile::TempDir, Db) {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), Options::default().create_if_missing(true)).unwrap();
    (dir, db)
}

fn day(db: &Db, d: i64) -> i32 {
    db.local_day(at(d, 0, 0))
}

fn figures(db: &Db, user: &str) -> Figures {
    db.sharer_figures(user, day(db, 1), day(db, 30))
        .unwrap()
        .unwrap()
}

#[test]
fn the_attribution_example() {
    let (_dir, db) = open();
    let rec = |e: Event| {
        db.record(&e).unwrap();
    };
    rec(Event::new("ann", "share", at(1, 10, 0)).with_share_id("s1"));
    rec(Event::new("bob", "view", at(2, 9, 0)).with_via("s1"));
    rec(Event::new("bob", "signup", at(2, 9, 5)));
    rec(Event::new("bob", "share", at(3, 12, 0)).with_share_id("s2"));
    rec(Event::new("cy", "view", at(4, 8, 0)).with_via("s2"));
    rec(Event::new("cy", "purchase", at(4, 8, 30)).with_amount(5000));
    rec(Event::new("bob", "purchase", at(8, 9, 0)).with_amount(2000));
    rec(Event::new("bob", "purchase", at(10, 9, 0)).with_amount(1000));
    // before the late event: cy's purchase is bob's
    let bob = figures(&db, "bob");
    assert_eq!(
        (bob.first_purchases, bob.orders, bob.gmv_minor),
        (1, 1, 5000)
    );
    assert_eq!(db.referrer("bob").unwrap().as_deref(), Some("ann"));
    // #9, late: cy's first touch becomes ann's
    rec(Event::new("cy", "view", at(1, 20, 0)).with_via("s1"));
    let ann = figures(&db, "ann");
    assert_eq!(
        ann,
        Figures {
            shares: 1,
            reached: 2,
            signups: 1,
            first_purchases: 2,
            orders: 2,
            gmv_minor: 7000,
        }
    );
    assert_eq!(
        figures(&db, "bob"),
        Figures {
            shares: 1,
            reached: 1,
            ..Figures::default()
        }
    );
    // per day: ann reached cy on d1 and bob on d2, signed bob up on d2
    let d = |n| day(&db, n);
    let on = |user: &str, n| db.sharer_figures(user, d(n), d(n)).unwrap().unwrap();
    assert_eq!((on("ann", 1).reached, on("ann", 2).reached), (1, 1));
    assert_eq!(on("ann", 2).signups, 1);
    assert_eq!(
        (on("ann", 4).gmv_minor, on("ann", 8).gmv_minor),
        (5000, 2000)
    );
    assert_eq!(on("bob", 4).reached, 1);
    assert_eq!(
        on("ann", 10),
        Figures::default(),
        "#8 is outside the window"
    );
    // the viral coefficient of d1–d7
    let viral = db.viral_coefficient(d(1), d(7), 7, None).unwrap();
    assert_eq!(viral.len(), 1);
    assert_eq!(
        (viral[0].attributed_signups, viral[0].sharing_users),
        (1, 2)
    );
    assert_eq!(viral[0].coefficient, Some(0.5));
    // rankings and atoms
    let top = db
        .top_sharers(d(1), d(30), SharerRank::Reached, 10, None)
        .unwrap();
    let names: Vec<String> = top
        .iter()
        .map(|r| db.user_name(r.user_id).unwrap().unwrap())
        .collect();
    assert_eq!(names, ["ann", "bob"]);
    let seg = |s: &str| {
        db.segment(&Segment::parse(s).unwrap(), at(30, 0, 0))
            .unwrap()
            .len()
    };
    assert_eq!(seg("referred_by:ann"), 1);
    assert_eq!(seg("referred"), 1);
    assert_eq!(seg("shared"), 2);
    assert!(db.verify().unwrap().is_clean());
}

#[test]
fn the_group_buy_example() {
    let (_dir, db) = open();
    let rec = |e: Event| {
        db.record(&e).unwrap();
    };
    rec(Event::new("ann", "group_open", at(1, 10, 0)).with_group_open("g1", 3, at(2, 10, 0)));
    rec(Event::new("bob", "group_join", at(1, 11, 0)).with_group("g1"));
    // cy's join arrives after dan's: order does not matter
    rec(Event::new("dan", "group_join", at(1, 13, 0)).with_group("g1"));
    rec(Event::new("cy", "group_join", at(1, 12, 30)).with_group("g1"));
    rec(Event::new("dan", "group_open", at(1, 9, 0)).with_group_open("g2", 2, at(1, 21, 0)));
    rec(Event::new("eve", "group_join", at(1, 22, 0)).with_group("g2"));
    rec(Event::new("bob", "group_open", at(1, 15, 0)).with_group_open("g3", 2, at(5, 0, 0)));
    let as_of = at(3, 0, 0);
    let g1 = db.group("g1", as_of).unwrap().unwrap();
    assert_eq!(g1.state, GroupState::Completed);
    assert_eq!(g1.head.completed_ms, Some(at(1, 12, 30)));
    let members: Vec<String> = g1
        .members
        .iter()
        .map(|(u, _)| db.user_name(*u).unwrap().unwrap())
        .collect();
    assert_eq!(members, ["ann", "bob", "cy", "dan"]);
    let g2 = db.group("g2", as_of).unwrap().unwrap();
    assert_eq!(
        (g2.state, g2.members.len(), g2.other_joins),
        (GroupState::Expired, 1, 1)
    );
    assert_eq!(
        db.group("g3", as_of).unwrap().unwrap().state,
        GroupState::Open
    );
    let days = db
        .group_days(day(&db, 1), day(&db, 3), as_of, None)
        .unwrap();
    assert_eq!(days.len(), 1);
    let d1 = &days[0];
    assert_eq!((d1.opened, d1.completed, d1.expired, d1.open), (3, 1, 1, 1));
    assert_eq!(d1.completion_rate, Some(0.5));
    assert_eq!(d1.mean_time_to_complete_ms, Some(9_000_000.0));
    // another user opening g1 is refused, nothing written
    let err = db
        .record(
            &Event::new("eve", "group_open", at(1, 10, 0)).with_group_open("g1", 3, at(2, 10, 0)),
        )
        .unwrap_err();
    assert!(err.to_string().contains("group_id"), "{err}");
    // erasing a member who made g1 complete moves the completion to dan
    db.erase_user("cy").unwrap();
    let g1 = db.group("g1", as_of).unwrap().unwrap();
    assert_eq!(g1.head.completed_ms, Some(at(1, 13, 0)));
    assert!(db.verify().unwrap().is_clean());
}

/// verify derives the social family from the events on its own: a figure
/// deleted and a touch forged behind the store's back are both reported,
/// and `rebuild_aggregates` puts them right.
#[test]
fn verify_finds_damaged_social_records_and_rebuild_repairs_them() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = Db::open(dir.path(), Options::default().create_if_missing(true)).unwrap();
        db.record(&Event::new("ann", "share", at(1, 10, 0)).with_share_id("s1"))
            .unwrap();
        db.record(&Event::new("bob", "view", at(2, 9, 0)).with_via("s1"))
            .unwrap();
        db.record(&Event::new("bob", "signup", at(2, 9, 5)))
            .unwrap();
        assert!(db.verify().unwrap().is_clean());
    }
    {
        let raw = common::raw_open(dir.path());
        let cf = raw.cf_handle("social").unwrap();
        let figures: Vec<Box<[u8]>> = raw
            .iterator_cf(cf, rocksdb::IteratorMode::Start)
            .map(|kv| kv.unwrap().0)
            .filter(|k| k[0] == stickydb::keys::social::SHARER_DAY)
            .collect();
        assert!(!figures.is_empty());
        raw.delete_cf(cf, &figures[0]).unwrap();
        let forged = stickydb::keys::social::Touch {
            user_id: 1,
            ts_ms: at(3, 0, 0),
            share_id: "s1".into(),
            seq: 99,
        };
        raw.put_cf(cf, stickydb::keys::social::touch(&forged), [])
            .unwrap();
        raw.flush_cf(cf).unwrap();
    }
    let db = Db::open(dir.path(), Options::default().create_if_missing(true)).unwrap();
    let report = db.verify().unwrap();
    let social: Vec<&String> = report
        .problems
        .iter()
        .filter(|p| p.starts_with("social:"))
        .collect();
    assert!(social.len() >= 2, "{:?}", report.problems);
    assert!(social
        .iter()
        .any(|p| p.contains("sharer figures") && p.contains("missing")));
    assert!(social
        .iter()
        .any(|p| p.contains("touch") && p.contains("not derived")));
    db.rebuild_aggregates().unwrap();
    assert!(db.verify().unwrap().is_clean());
}
