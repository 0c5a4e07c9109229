//! Bad input gets a typed error naming what and where, and writes nothing.

mod common;
use common::*;
use stickydb::{Error, Event, InputError, Problem, PropValue, Segment};

fn input_err(r: stickydb::Result<impl std::fmt::Debug>) -> InputError {
    match r {
        Err(Error::Input(e)) => e,
        other => panic!("expected an input error, got {other:?}"),
    }
}

#[test]
fn each_bad_event_is_rejected_with_field_and_index() {
    let (_dir, db) = open_temp();
    db.record(&Event::new("ann", "view", T0)).unwrap();
    let before = db.raw_dump().unwrap();
    let good = Event::new("bob", "view", T0);
    let many_props = (0..65).fold(Event::new("u", "view", T0), |e, i| {
        e.with_property(format!("k{i}"), PropValue::Int(i))
    });
    let cases: Vec<(Event, &str)> = vec![
        (Event::new("", "view", T0), "event.user"),
        (Event::new("x".repeat(129), "view", T0), "event.user"),
        (Event::new("a\u{0}b", "view", T0), "event.user"),
        (Event::new("u", "view", -1), "event.ts_ms"),
        (Event::new("u", "view", i64::MAX), "event.ts_ms"),
        (Event::new("u", "k".repeat(65).as_str(), T0), "event.kind"),
        (Event::new("u", "", T0), "event.kind"),
        (
            Event::new("u", "purchase", T0).with_amount(-1),
            "event.amount_minor",
        ),
        (
            Event::new("u", "view", T0).with_id("i".repeat(129)),
            "event.event_id",
        ),
        (
            Event::new("u", "view", T0).with_session(""),
            "event.session_id",
        ),
        (many_props, "event.properties"),
        (
            Event::new("u", "view", T0).with_property("big", PropValue::Str("x".repeat(5000))),
            "event.properties",
        ),
        (
            Event::new("u", "view", T0).with_property("f", PropValue::Float(f64::INFINITY)),
            "event.properties.value",
        ),
    ];
    for (bad, field) in cases {
        // the bad event sits at index 1 of a batch whose other events are fine
        let err = input_err(db.record_batch(&[good.clone(), bad, good.clone()]));
        assert_eq!(err.field, field, "{err}");
        assert_eq!(err.index, Some(1), "{err}");
        assert!(err.to_string().contains("at item 1"), "{err}");
    }
    assert_eq!(
        db.raw_dump().unwrap(),
        before,
        "a rejected batch wrote something"
    );
    assert_eq!(db.user_id("bob").unwrap(), None);
    assert_eq!(db.kinds().len(), 10, "no custom kind was registered");
}

#[test]
fn problems_are_specific() {
    let (_dir, db) = open_temp();
    let e = input_err(db.record(&Event::new("x".repeat(200), "view", T0)));
    assert_eq!(
        e.problem,
        Problem::TooLong {
            len_bytes: 200,
            max_bytes: 128
        }
    );
    let e = input_err(db.record(&Event::new("u", "purchase", T0).with_amount(-5)));
    assert!(matches!(e.problem, Problem::OutOfRange { value: -5, .. }));
    let e = input_err(
        Segment::parse("tag:vip and")
            .map(|_| ())
            .map_err(Error::from),
    );
    assert_eq!(e.field, "segment");
    let e = input_err(db.segment(&Segment::All, -7));
    assert_eq!(e.field, "now_ms");
}

#[test]
fn a_tag_query_checks_its_tag_like_a_write() {
    let (_dir, db) = open_temp();
    db.record(&Event::new("ann", "view", T0)).unwrap();
    // 300 bytes: longer than a tag may be, and than the key's length byte
    for tag in ["x".repeat(300), String::new(), "a\u{0}b".to_owned()] {
        let e = input_err(db.users_with_tag(&tag, None));
        assert_eq!(e.field, "tag", "{tag:?}: {e}");
    }
    let e = input_err(db.users_with_tag("vip", Some(-5)));
    assert_eq!(e.field, "now_ms");
    assert!(db.users_with_tag("vip", Some(T0)).unwrap().is_empty());
}

/// docs/metrics.md, "one overflow rule for sums": a day's GMV and a user's
/// money saturate at `i64::MAX` on the write path, and `verify` recomputes
/// them under the same rule, so a saturated store verifies clean.
#[test]
fn saturated_sums_verify_clean() {
    let (_dir, db) = open_temp();
    let max = stickydb::timeline::MAX_AMOUNT_MINOR;
    let n = (i64::MAX / max + 1) as usize; // 9 224: one past overflow
    let events: Vec<Event> = (0..n)
        .map(|i| {
            Event::new("whale", "purchase", T0 + i as i64)
                .with_amount(max)
                .with_id(format!("o{i}"))
        })
        .collect();
    for chunk in events.chunks(1_000) {
        db.record_batch(chunk).unwrap();
    }
    let day = db.local_day(T0);
    let row = &db.metrics().daily(day, day).unwrap()[0];
    assert_eq!((row.orders, row.gmv_minor), (n as u64, i64::MAX));
    assert_clean(&db);
}

/// The social fields (SPEC §4b): each bound and each field on the wrong
/// kind is refused naming the field and the event's index, and nothing is
/// written — also a claim of another user's share or group id, which only
/// the store can tell.
#[test]
fn bad_social_fields_are_refused_with_field_and_index() {
    let (_dir, db) = open_temp();
    db.record(&Event::new("ann", "share", T0).with_share_id("s1"))
        .unwrap();
    db.record(&Event::new("ann", "group_open", T0).with_group_open("g1", 2, T0 + 1_000))
        .unwrap();
    let before = db.raw_dump().unwrap();
    let good = Event::new("bob", "view", T0);
    let long = "x".repeat(129);
    let cases: Vec<(Event, &str)> = vec![
        (
            Event::new("u", "view", T0).with_share_id("s2"),
            "event.share_id",
        ),
        (
            Event::new("u", "share", T0).with_share_id(long.as_str()),
            "event.share_id",
        ),
        (Event::new("u", "view", T0).with_via(""), "event.via"),
        (
            Event::new("u", "view", T0).with_via(long.as_str()),
            "event.via",
        ),
        (
            Event::new("u", "view", T0).with_group("g1"),
            "event.group_id",
        ),
        (
            Event::new("u", "group_join", T0).with_group(long.as_str()),
            "event.group_id",
        ),
        (
            Event::new("u", "group_open", T0).with_group_open("g2", 1, T0 + 1),
            "event.group_target",
        ),
        (
            Event::new("u", "group_open", T0).with_group_open("g2", 1001, T0 + 1),
            "event.group_target",
        ),
        (
            Event::new("u", "group_open", T0).with_group_open("g2", 2, T0),
            "event.group_deadline_ms",
        ),
        (
            {
                let mut e = Event::new("u", "group_join", T0).with_group("g1");
                e.group_target = Some(3);
                e
            },
            "event.group_target",
        ),
        (Event::new("u", "referral:first_purchase", T0), "event.kind"),
        // only the store knows these: another user's share id and group id
        (
            Event::new("bob", "share", T0).with_share_id("s1"),
            "event.share_id",
        ),
        (
            Event::new("bob", "group_open", T0).with_group_open("g1", 2, T0 + 1_000),
            "event.group_id",
        ),
        (
            Event::new("ann", "group_open", T0).with_group_open("g1", 3, T0 + 1_000),
            "event.group_id",
        ),
    ];
    for (bad, field) in cases {
        let e = input_err(db.record_batch(&[good.clone(), bad.clone()]));
        assert_eq!((e.field, e.index), (field, Some(1)), "{bad:?}");
        assert_eq!(db.raw_dump().unwrap(), before, "{bad:?} wrote something");
    }
}
