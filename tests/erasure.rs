//! Erasing a user (SPEC §5) leaves every metric as if the user never existed.

mod common;
use common::*;
use stickydb::{Error, Event, ProfileUpdate, Sensitive, TagSource};

fn events_of(user: &str, salt: i64) -> Vec<Event> {
    let kinds = [
        "signup",
        "view",
        "add_to_cart",
        "purchase",
        "sign_in",
        "refund",
        "view",
    ];
    (0..40)
        .map(|i| {
            let kind = kinds[(i as usize + salt as usize) % kinds.len()];
            let mut e = Event::new(user, kind, T0 + (i * 17 + salt) % 50 * DAY + i * 3_600_000)
                .with_session(format!("s{}", i % 5))
                .with_id(format!("{user}-{i}"));
            if kind == "purchase" || kind == "refund" {
                e = e.with_amount(100 + i * 7);
            }
            e
        })
        .collect()
}

#[test]
fn erased_user_leaves_no_trace_in_metrics() {
    let (dir, with) = open_temp();
    let (_dir2, without) = open_temp();
    let day = with.local_day(T0);
    for (i, u) in ["keep-1", "gone", "keep-2"].iter().enumerate() {
        let evs = events_of(u, i as i64 * 5);
        let profile = ProfileUpdate::new().set("region", "EU").tag(
            "vip",
            TagSource::Manual,
            T0,
            Some(T0 + 5 * DAY),
        );
        let stores: &[&stickydb::Db] = if *u == "gone" {
            &[&with]
        } else {
            &[&with, &without]
        };
        for db in stores {
            db.record_batch(&evs).unwrap();
            db.update_profile(u, &profile).unwrap();
        }
    }
    let gone_id = with.user_id("gone").unwrap().unwrap();
    assert!(with.erase_user("gone").unwrap());
    assert!(
        !with.erase_user("gone").unwrap(),
        "second erasure finds nobody"
    );
    assert_eq!(with.profile("gone", Sensitive::Include).unwrap(), None);
    assert!(
        matches!(with.newest("gone", 10), Err(Error::UnknownUser { ref user }) if user == "gone"),
        "timeline of an erased user is unknown"
    );
    assert!(!with.users_with_tag("vip", None).unwrap().contains(gone_id));
    assert_eq!(
        metric_snapshot(&with, day - 1, day + 60),
        metric_snapshot(&without, day - 1, day + 60)
    );
    assert_clean(&with);

    // the erased (newest-but-one) id is never handed out again, even after reopen
    assert!(with.erase_user("keep-2").unwrap());
    let top = gone_id + 1;
    drop(with);
    let with = reopen(&dir);
    with.record(&Event::new("newcomer", "view", T0)).unwrap();
    assert!(with.user_id("newcomer").unwrap().unwrap() > top);
    assert_clean(&with);

    // re-recording an erased user's id starts from nothing
    with.record_batch(&events_of("gone", 5)).unwrap();
    assert_clean(&with);
}

#[test]
fn erasure_removes_the_ledger_and_its_due_entries() {
    use stickydb::ledger::{EarnRule, LedgerSettings, RulePoints, TierLevel, Tiers};
    use stickydb::PointsOp;
    let (_d, db) = open_temp();
    db.set_ledger_settings(LedgerSettings::new(
        vec![EarnRule {
            kind: "purchase".into(),
            points: RulePoints::Fixed(5),
            daily_cap_points: None,
            expires_after_days: Some(30),
        }],
        Tiers {
            window_days: 30,
            levels: vec![TierLevel {
                name: "gold".into(),
                min_growth: 10,
            }],
        },
    ))
    .unwrap();
    for u in ["keep", "gone"] {
        db.record_batch(&events_of(u, 3)).unwrap();
        let exp = PointsOp::Earn {
            points: 100,
            expires_at_ms: Some(T0 + 5 * DAY),
            reason: String::new(),
        };
        db.points(u, "e", T0, &exp).unwrap();
        let hold = PointsOp::Hold {
            points: 20,
            timeout_ms: DAY,
        };
        db.points(u, "h", T0, &hold).unwrap();
    }
    let gone = db.user_id("gone").unwrap().unwrap();
    assert!(db.users_in_tier("gold").unwrap().contains(gone));
    assert!(db.erase_user("gone").unwrap());

    let dump = db.raw_dump().unwrap();
    let of_gone = |(cf, k, _): &&(&str, Vec<u8>, Vec<u8>)| match *cf {
        "ledger" => k.starts_with(&gone.to_be_bytes()),
        "ledger_due" => k.len() == 17 && k[9..13] == gone.to_be_bytes(),
        _ => false,
    };
    assert_eq!(
        dump.iter().filter(of_gone).count(),
        0,
        "ledger records left"
    );
    assert!(!db.users_in_tier("gold").unwrap().contains(gone));
    assert_clean(&db);
    // the expiry run settles only the kept account
    let r = db.expire_points(T0 + 40 * DAY).unwrap();
    assert_eq!((r.accounts, r.holds_timed_out), (1, 1));
    assert_clean(&db);
}

/// A user with more events than one write should carry (over 100 000) is
/// erased as a job of bounded batches (docs/architecture.md, "Jobs"): every
/// metric ends as if it never existed, as for any erasure.
#[test]
fn a_user_with_more_events_than_one_write_carries_is_erased_in_steps() {
    let (_dir, with) = open_temp();
    let (_dir2, without) = open_temp();
    with.set_ledger_settings(stickydb::LedgerSettings::default().rules(sample_earn_rules()))
        .unwrap();
    without.set_ledger_settings(with.ledger_settings()).unwrap();
    let day = with.local_day(T0);
    let whale: Vec<Event> = (0..100_001i64)
        .map(|i| {
            let kind = ["view", "purchase", "sign_in", "add_to_cart"][i as usize % 4];
            let mut e = Event::new("whale", kind, T0 + (i % 60) * DAY + i)
                .with_session(format!("w{}", i / 9));
            if kind == "purchase" {
                e = e.with_amount(120);
            }
            e
        })
        .collect();
    for chunk in whale.chunks(50_000) {
        with.record_batch(chunk).unwrap();
    }
    with.update_profile("whale", &ProfileUpdate::new().set("region", "EU"))
        .unwrap();
    for (i, u) in ["keep-1", "keep-2"].iter().enumerate() {
        for db in [&with, &without] {
            db.record_batch(&events_of(u, i as i64 * 5)).unwrap();
        }
    }
    assert!(with.erase_user("whale").unwrap());
    assert!(with.pending_job().is_none());
    assert_eq!(with.user_id("whale").unwrap(), None);
    assert_eq!(with.event_count().unwrap(), without.event_count().unwrap());
    assert_eq!(
        metric_snapshot(&with, day - 1, day + 61),
        metric_snapshot(&without, day - 1, day + 61)
    );
    assert_clean(&with);
}
