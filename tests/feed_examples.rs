//! The worked example of docs/feed.md, run: every entry the document shows
//! is asserted here, in order.

mod common;
use stickydb::{Change, Db, Options, PointsOp, StageCause};

/// `2024-MM-DD HH:MM` at UTC+8, in UTC milliseconds.
fn at(month: u32, day: u32, hour: u32) -> i64 {
    use chrono::TimeZone;
    chrono::FixedOffset::east_opt(8 * 3600)
        .unwrap()
        .with_ymd_and_hms(2024, month, day, hour, 0, 0)
        .unwrap()
        .timestamp_millis()
}

fn day(month: u32, d: u32) -> i32 {
    stickydb::time::parse_day(&format!("2024-{month:02}-{d:02}")).unwrap()
}

/// (cursor, user, from, to, day, cause, retroactive)
type Line = (
    u64,
    String,
    Option<String>,
    Option<String>,
    i32,
    StageCause,
    bool,
);

fn stage_lines(db: &Db, after: u64) -> Vec<Line> {
    db.feed(after, 100)
        .unwrap()
        .into_iter()
        .filter_map(|e| match e.record.change {
            Change::Stage {
                from,
                to,
                day,
                cause,
                ..
            } => Some((
                e.cursor,
                e.user.unwrap(),
                from,
                to,
                day,
                cause,
                e.record.retroactive,
            )),
            _ => None,
        })
        .collect()
}

fn s(x: &str) -> Option<String> {
    Some(x.to_owned())
}

#[test]
fn the_documented_example_holds() {
    use StageCause::*;
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(
        dir.path(),
        Options::default()
            .create_if_missing(true)
            .utc_offset_minutes(480),
    )
    .unwrap();
    let ann = |s: &str| s.to_owned();
    // 1. Ann's first visit, and a welcome gift that expires on 20 April.
    db.record(&stickydb::Event::new("ann", "view", at(3, 1, 10)))
        .unwrap();
    db.points(
        "ann",
        "welcome",
        at(3, 1, 10),
        &PointsOp::Earn {
            points: 500,
            expires_at_ms: Some(at(4, 20, 0)),
            reason: "welcome".into(),
        },
    )
    .unwrap();
    assert_eq!(
        stage_lines(&db, 0),
        vec![(1, ann("ann"), None, s("new"), day(3, 1), Event, false)]
    );
    // 2. The clock moves to 20 March: Ann grew, then went quiet.
    let r = db.advance(at(3, 20, 0)).unwrap();
    assert_eq!(r.stage_changes, 2);
    assert_eq!(
        stage_lines(&db, 1),
        vec![
            (
                2,
                ann("ann"),
                s("new"),
                s("growing"),
                day(3, 8),
                Time,
                false
            ),
            (
                3,
                ann("ann"),
                s("growing"),
                s("declining"),
                day(3, 15),
                Time,
                false
            ),
        ]
    );
    // 3. A purchase Ann made on 12 March arrives late; Bob signs up today.
    db.record(&stickydb::Event::new("ann", "purchase", at(3, 12, 18)).with_amount(2_500))
        .unwrap();
    db.record(&stickydb::Event::new("bob", "view", at(3, 20, 9)))
        .unwrap();
    assert_eq!(
        stage_lines(&db, 3),
        vec![
            (
                4,
                ann("ann"),
                s("declining"),
                s("growing"),
                day(3, 12),
                Event,
                true
            ),
            (5, ann("bob"), None, s("new"), day(3, 20), Event, false),
        ]
    );
    // 4. The clock moves to 15 April.
    let r = db.advance(at(4, 15, 0)).unwrap();
    assert_eq!((r.stage_changes, r.notices), (4, 1));
    assert_eq!(
        stage_lines(&db, 5),
        vec![
            (
                6,
                ann("ann"),
                s("growing"),
                s("declining"),
                day(3, 26),
                Time,
                false
            ),
            (
                7,
                ann("ann"),
                s("declining"),
                s("churned"),
                day(4, 11),
                Time,
                false
            ),
            (
                8,
                ann("bob"),
                s("new"),
                s("growing"),
                day(3, 27),
                Time,
                false
            ),
            (
                9,
                ann("bob"),
                s("growing"),
                s("declining"),
                day(4, 3),
                Time,
                false
            ),
        ]
    );
    let notice = db.feed(9, 10).unwrap();
    assert_eq!(notice.len(), 1);
    assert_eq!(notice[0].cursor, 10);
    assert_eq!(
        notice[0].record.change,
        Change::ExpiryNotice {
            lot: 0,
            points: 500,
            expires_at_ms: at(4, 20, 0),
            at_ms: at(4, 13, 0),
        }
    );
    // 5. History and counts follow the events, not the feed's timing.
    let runs = db
        .metrics()
        .stage_history(db.user_id("ann").unwrap().unwrap(), day(3, 1), day(4, 15))
        .unwrap();
    let runs: Vec<(i32, &str)> = runs
        .iter()
        .map(|r| (r.from_day, r.stage.as_str()))
        .collect();
    assert_eq!(
        runs,
        vec![
            (day(3, 1), "new"),
            (day(3, 8), "growing"),
            (day(3, 26), "declining"),
            (day(4, 11), "churned"),
        ]
    );
    let rows = db
        .metrics()
        .stage_transitions(day(3, 26), day(4, 3), None)
        .unwrap();
    assert_eq!(rows[0].entered["declining"], 1); // ann, 26 March
    assert_eq!(rows[8].entered["declining"], 1); // bob, 3 April
    let winback = stickydb::Segment::parse("entered:declining@2024-03-20..2024-04-10").unwrap();
    assert_eq!(db.segment(&winback, at(4, 15, 0)).unwrap().len(), 2);
    common::assert_clean(&db);
}
