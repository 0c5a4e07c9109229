//! Experiments by example: the worked example of docs/metrics.md
//! ("Experiments") with every figure it prints, bad exposures refused with
//! nothing written, the exposure kind fixed at creation and not counted as
//! activity, erasure, and an identity merge that brings an earlier
//! exposure.

mod common;
use common::*;
use stickydb::experiments::{ExperimentQuery, MetricSpec};
use stickydb::{Db, Error, Event, MergeOptions, OpenError, Options, PropValue, Segment};

const HOUR: i64 = 3_600_000;

fn exposure(user: &str, variant: &str, ts: i64) -> Event {
    Event::new(user, "exposure", ts)
        .with_property("experiment", PropValue::Str("checkout".into()))
        .with_property("variant", PropValue::Str(variant.into()))
}

/// The docs' example: T0 is 2024-03-01 00:00 UTC.
fn example(db: &Db) {
    let d = |day: i64, hour: i64| T0 + day * DAY + hour * HOUR;
    db.record_batch(&[
        exposure("c1", "control", d(0, 10)),
        Event::new("c1", "purchase", d(0, 12)).with_amount(500),
        Event::new("c1", "view", d(1, 9)),
        exposure("c2", "control", d(0, 11)),
        Event::new("c2", "view", d(2, 9)),
        exposure("c3", "control", d(1, 8)),
        Event::new("c3", "purchase", d(8, 8) + 1).with_amount(300),
        exposure("c4", "control", d(1, 9)),
        exposure("b1", "b", d(0, 10)),
        Event::new("b1", "purchase", d(0, 10) + HOUR / 2).with_amount(800),
        Event::new("b1", "view", d(1, 9)),
        Event::new("b1", "refund", d(2, 9)).with_amount(200),
        exposure("b2", "b", d(0, 13)),
        Event::new("b2", "purchase", d(7, 13)).with_amount(400),
        exposure("b3", "b", d(1, 10)),
        exposure("b3", "control", d(1, 11)),
        Event::new("b3", "view", d(2, 9)),
        exposure("b4", "control", d(2, 9)),
    ])
    .unwrap();
    // b4's earlier exposure arrives late: b4 is in b, and contaminated
    db.record_batch(&[
        exposure("b4", "b", d(1, 9)),
        Event::new("b4", "purchase", d(1, 10)).with_amount(200),
    ])
    .unwrap();
}

fn report(db: &Db, metric: &str) -> stickydb::experiments::ExperimentReport {
    let q = ExperimentQuery::new("checkout", MetricSpec::parse(metric).unwrap());
    db.experiment(&q, None, T0 + 20 * DAY).unwrap()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 5e-5
}

#[test]
fn the_worked_example_of_the_docs() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), Options::default().create_if_missing(true)).unwrap();
    example(&db);
    let list = db.experiments().list().unwrap();
    assert_eq!(list.len(), 1);
    let users: Vec<(String, u64)> = list[0]
        .variants
        .iter()
        .map(|v| (v.variant.clone(), v.users))
        .collect();
    assert_eq!(users, vec![("b".into(), 4), ("control".into(), 4)]);
    assert_eq!(list[0].contaminated_users, 2);

    let conv = report(&db, "conversion:purchase:7d");
    let got: Vec<(&str, u64, Option<u64>)> = conv
        .variants
        .iter()
        .map(|v| (v.variant.as_str(), v.users, v.converted))
        .collect();
    // c3 bought 7 days and 1 ms after its exposure: out; b2 exactly 7 days after: in
    assert_eq!(got, vec![("control", 4, Some(1)), ("b", 4, Some(3))]);
    let c = &conv.comparisons[0];
    println!("conversion {c:?} srm {}", conv.srm_p_value);
    assert!(close(c.diff, 0.5));
    // Newcombe's interval from the two Wilson intervals, and the pooled
    // z-test, computed independently of the crate (closed forms, Python's
    // math.erfc): (−0.1355, 0.7891), p 0.1573
    assert!(
        close(c.ci_low, -0.1355) && close(c.ci_high, 0.7891),
        "{c:?}"
    );
    assert!(close(c.p_value, 0.1573), "{c:?}");
    assert_eq!(c.lift, Some(2.0));
    assert!(close(conv.srm_p_value, 1.0));
    assert_eq!(conv.contaminated_users, 2);

    let ret = report(&db, "retention:1");
    let got: Vec<(u64, Option<u64>)> = ret
        .variants
        .iter()
        .map(|v| (v.users, v.converted))
        .collect();
    // b4's exposure on its day 1 is no activity
    assert_eq!(got, vec![(4, Some(1)), (4, Some(2))]);
    // independently as above: (−0.3196, 0.6553), p 0.4652
    let c = &ret.comparisons[0];
    assert!(
        close(c.diff, 0.25) && close(c.ci_low, -0.3196) && close(c.ci_high, 0.6553),
        "{c:?}"
    );
    assert!(close(c.p_value, 0.4652) && c.lift == Some(1.0), "{c:?}");

    let rev = report(&db, "revenue:7d");
    let got: Vec<(Option<i64>, Option<f64>)> =
        rev.variants.iter().map(|v| (v.sum, v.mean)).collect();
    assert_eq!(
        got,
        vec![(Some(500), Some(125.0)), (Some(1200), Some(300.0))]
    );
    let c = &rev.comparisons[0];
    println!("revenue {c:?}");
    assert!(close(c.diff, 175.0));
    // Welch, computed independently (Student's t density integrated by
    // Simpson's rule in Python, the quantile by bisection): df 5.9938,
    // t 0.9739, (−264.8181, 614.8181), p 0.3678
    assert!(
        close(c.ci_low, -264.8181) && close(c.ci_high, 614.8181),
        "{c:?}"
    );
    assert!((c.p_value - 0.3678).abs() < 1e-4, "{c:?}");

    let days = report(&db, "active_days:2d");
    let got: Vec<Option<i64>> = days.variants.iter().map(|v| v.sum).collect();
    // control: c1 (03-01, 03-02), c2 (03-03: 46 h after), c3, c4 none;
    // b: b1 (03-01, 03-02, 03-03), b2 none (an exposure is no activity),
    // b3 (03-03), b4 (03-02)
    assert_eq!(got, vec![Some(2 + 1), Some(3 + 1 + 1)]);
    // the variant: atom, and a segment filter
    let b = db
        .segment(
            &Segment::parse("variant:checkout=b").unwrap(),
            T0 + 20 * DAY,
        )
        .unwrap();
    assert_eq!(b.len(), 4);
    let q = ExperimentQuery::new(
        "checkout",
        MetricSpec::parse("conversion:purchase:7d").unwrap(),
    );
    let buyers = db
        .experiment(
            &q,
            Some(&Segment::parse("did:view").unwrap()),
            T0 + 20 * DAY,
        )
        .unwrap();
    let got: Vec<(u64, Option<u64>)> = buyers
        .variants
        .iter()
        .map(|v| (v.users, v.converted))
        .collect();
    assert_eq!(got, vec![(2, Some(1)), (2, Some(1))]);
    assert_eq!(buyers.contaminated_users, 1);
    assert_clean(&db);
}

#[test]
fn bad_exposures_are_refused_with_nothing_written() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), Options::default().create_if_missing(true)).unwrap();
    let before = db.raw_dump().unwrap();
    let cases = [
        (
            Event::new("u", "exposure", T0),
            "event.properties.experiment",
        ),
        (
            Event::new("u", "exposure", T0)
                .with_property("experiment", PropValue::Str("checkout".into())),
            "event.properties.variant",
        ),
        (
            exposure("u", "b", T0).with_property("variant", PropValue::Int(2)),
            "event.properties.variant",
        ),
        (
            exposure("u", "b", T0).with_property("experiment", PropValue::Str("x".repeat(65))),
            "event.properties.experiment",
        ),
    ];
    for (bad, field) in cases {
        let batch = [Event::new("ok", "view", T0), bad];
        match db.record_batch(&batch) {
            Err(Error::Input(e)) => {
                assert_eq!(e.field, field);
                assert_eq!(e.index, Some(1));
            }
            other => panic!("{field}: expected an input error, got {other:?}"),
        }
    }
    assert_eq!(db.raw_dump().unwrap(), before);
    // a user in one experiment too many: refused, nothing of the batch written
    let many: Vec<Event> = (0..stickydb::experiments::MAX_EXPERIMENTS_PER_USER)
        .map(|i| {
            Event::new("busy", "exposure", T0 + i as i64)
                .with_property("experiment", PropValue::Str(format!("x{i}")))
                .with_property("variant", PropValue::Str("a".into()))
        })
        .collect();
    db.record_batch(&many).unwrap();
    let before = db.raw_dump().unwrap();
    let one_more = [
        Event::new("busy", "view", T0),
        Event::new("busy", "exposure", T0)
            .with_property("experiment", PropValue::Str("one-more".into()))
            .with_property("variant", PropValue::Str("a".into())),
    ];
    assert!(matches!(
        db.record_batch(&one_more),
        Err(Error::LimitReached {
            what: "experiments per user",
            ..
        })
    ));
    assert_eq!(db.raw_dump().unwrap(), before);
    assert_clean(&db);
    let q = ExperimentQuery::new("nope", MetricSpec::parse("retention:1").unwrap());
    assert!(matches!(db.experiment(&q, None, T0), Err(Error::Input(_))));
}

#[test]
fn the_exposure_kind_is_fixed_at_creation_and_is_no_activity() {
    let dir = tempfile::tempdir().unwrap();
    let opts = Options::default()
        .create_if_missing(true)
        .exposure_kind("ab_seen");
    let db = Db::open(dir.path(), opts).unwrap();
    // (with contacts: a new store's other non-activity kind)
    assert_eq!(
        db.metric_settings().non_activity_kinds,
        vec!["ab_seen".to_owned(), "contacted".to_owned()]
    );
    let seen = Event::new("u", "ab_seen", T0)
        .with_property("experiment", PropValue::Str("banner".into()))
        .with_property("variant", PropValue::Str("red".into()));
    db.record(&seen).unwrap();
    // an "exposure" event is just an event of another kind here
    db.record(&Event::new("u", "exposure", T0)).unwrap();
    let day = db.local_day(T0);
    // the assignment exists, and the exposure did not make u active
    assert_eq!(db.experiments().list().unwrap()[0].variants[0].users, 1);
    assert_eq!(db.metrics().active(None, day, day, None).unwrap()[0].dau, 1);
    db.record(&Event::new("u", "view", T0 + 1)).unwrap();
    drop(db);
    match Db::open(
        dir.path(),
        Options::default()
            .create_if_missing(true)
            .exposure_kind("exposure"),
    ) {
        Err(Error::Open(OpenError::SettingMismatch { setting, .. })) => {
            assert_eq!(setting, "exposure_kind")
        }
        other => panic!("expected a mismatch, got {:?}", other.map(|_| ())),
    }
    let db = Db::open(dir.path(), Options::default().create_if_missing(true)).unwrap();
    assert_eq!(db.experiment_settings().exposure_kind, "ab_seen");
    assert_clean(&db);
}

#[test]
fn erasure_and_merges_keep_assignments_exact() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), Options::default().create_if_missing(true)).unwrap();
    example(&db);
    assert!(db.erase_user("b1").unwrap());
    let conv = report(&db, "conversion:purchase:7d");
    assert_eq!(conv.variants[1].users, 3);
    assert_eq!(conv.variants[1].converted, Some(2));
    // an anonymous visitor exposed to control a day before c4's own
    // exposure, bought 2 h later: merged into c4, c4 converts
    db.record_batch(&[
        exposure("anon", "control", T0 + 8 * HOUR),
        Event::new("anon", "purchase", T0 + 10 * HOUR).with_amount(100),
    ])
    .unwrap();
    db.merge("anon", "c4", "m1", MergeOptions::forced())
        .unwrap();
    let conv = report(&db, "conversion:purchase:7d");
    assert_eq!(conv.variants[0].users, 4);
    assert_eq!(conv.variants[0].converted, Some(2));
    assert_clean(&db);
    // and a rebuild derives the same
    db.rebuild_aggregates().unwrap();
    assert_eq!(report(&db, "conversion:purchase:7d"), conv);
    assert_clean(&db);
}

#[test]
fn a_cluster_answers_as_one_store() {
    use stickydb::cluster::Cluster;
    use stickydb::Partition;
    const PARTS: u32 = 3;
    let mix = |mut x: u64| {
        x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
        x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        x ^ (x >> 31)
    };
    let mut events = Vec::new();
    for u in 0..300u64 {
        let r = mix(u);
        let user = format!("p{u}");
        let at = T0 + (r % 10) as i64 * DAY + (r >> 8) as i64 % DAY;
        let variant = ["control", "b", "c"][(r >> 20) as usize % 3];
        events.push(exposure(&user, variant, at));
        if (r >> 24) % 9 == 0 {
            events.push(exposure(&user, "b", at + HOUR)); // contamination
        }
        if (r >> 28) % 3 == 0 {
            let delay = (r >> 32) as i64 % (9 * DAY);
            events.push(
                Event::new(user.as_str(), "purchase", at + delay)
                    .with_amount(100 + (r % 900) as i64),
            );
        }
        if (r >> 40) % 2 == 0 {
            events.push(Event::new(
                user.as_str(),
                "view",
                at + (r >> 44) as i64 % (3 * DAY),
            ));
        }
    }
    let whole_dir = tempfile::tempdir().unwrap();
    let whole = Db::open(whole_dir.path(), Options::default().create_if_missing(true)).unwrap();
    whole.record_batch(&events).unwrap();
    let dirs: Vec<tempfile::TempDir> = (0..PARTS).map(|_| tempfile::tempdir().unwrap()).collect();
    let parts: Vec<Db> = (0..PARTS)
        .map(|i| {
            let partition = Partition::new(i, PARTS).unwrap();
            Db::open(
                dirs[i as usize].path(),
                Options::default()
                    .create_if_missing(true)
                    .partition(partition),
            )
            .unwrap()
        })
        .collect();
    for p in 0..PARTS {
        let mine: Vec<Event> = events
            .iter()
            .filter(|e| Partition::of(&e.user, PARTS).index == p)
            .cloned()
            .collect();
        parts[p as usize].record_batch(&mine).unwrap();
    }
    let cluster = Cluster::new(parts.iter().collect()).unwrap();
    let now = T0 + 30 * DAY;
    for metric in [
        "conversion:purchase:3d",
        "conversion:view:1h",
        "retention:1",
        "retention:2:purchase",
        "revenue:7d",
        "events:2d",
        "active_days:3d",
    ] {
        for segment in [None, Some(Segment::parse("did:view").unwrap())] {
            let q = ExperimentQuery::new("checkout", MetricSpec::parse(metric).unwrap());
            let one = whole.experiment(&q, segment.as_ref(), now).unwrap();
            let all = cluster.experiment(&q, segment.as_ref(), now).unwrap();
            let rows = |r: &stickydb::experiments::ExperimentReport| -> Vec<(String, u64, Option<u64>, Option<i64>)> {
                r.variants.iter().map(|v| (v.variant.clone(), v.users, v.converted, v.sum)).collect()
            };
            assert_eq!(rows(&all), rows(&one), "{metric} {segment:?}");
            assert_eq!(all.contaminated_users, one.contaminated_users);
            assert!((all.srm_p_value - one.srm_p_value).abs() < 1e-12);
            for (a, b) in all.comparisons.iter().zip(&one.comparisons) {
                for (x, y) in [
                    (a.diff, b.diff),
                    (a.ci_low, b.ci_low),
                    (a.ci_high, b.ci_high),
                    (a.p_value, b.p_value),
                ] {
                    assert!(
                        (x - y).abs() < 1e-9 || (x.is_nan() && y.is_nan()),
                        "{metric}: {a:?} vs {b:?}"
                    );
                }
            }
        }
    }
}

#[test]
fn verify_finds_damaged_assignments_and_a_rebuild_repairs_them() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = Db::open(dir.path(), Options::default().create_if_missing(true)).unwrap();
        example(&db);
        db.record(&Event::new("plain", "view", T0)).unwrap();
        assert_clean(&db);
    }
    let (c1, plain) = {
        let db = Db::open(dir.path(), Options::default().create_if_missing(true)).unwrap();
        (
            db.user_id("c1").unwrap().unwrap(),
            db.user_id("plain").unwrap().unwrap(),
        )
    };
    {
        let raw = raw_open(dir.path());
        let cf = raw.cf_handle("activity").unwrap();
        // c1's assignment gone (its index still names it), and a stray
        // assignment index for a user who never saw an exposure
        raw.delete_cf(cf, stickydb::keys::activity::exposure(c1, "checkout"))
            .unwrap();
        raw.put_cf(
            cf,
            stickydb::keys::activity::exposure_index(plain),
            stickydb::codec::encode(&vec!["checkout".to_owned()]).unwrap(),
        )
        .unwrap();
        raw.flush_cf(cf).unwrap();
    }
    let db = Db::open(dir.path(), Options::default().create_if_missing(true)).unwrap();
    let report = db.verify().unwrap();
    let text = report.problems.join("\n");
    assert!(
        text.contains(&format!("user {c1} has no assignment in \"checkout\"")),
        "{text}"
    );
    assert!(
        text.contains("belongs to a user without exposures"),
        "{text}"
    );
    // a write of the damaged user reads its index and refuses the missing record
    assert!(matches!(
        db.record(&Event::new("c1", "purchase", T0 + DAY).with_amount(1)),
        Err(Error::Corruption(_))
    ));
    db.rebuild_aggregates().unwrap();
    assert_clean(&db);
    assert_eq!(report_of(&db).variants[0].converted, Some(1));
}

fn report_of(db: &Db) -> stickydb::experiments::ExperimentReport {
    report(db, "conversion:purchase:7d")
}
