//! A share claimed after more users came through it than one write should
//! re-derive (over 1 000) — and the erasure of a user who owns such a share —
//! re-derives those users as a job, a page at a time (issue 27, "bounded
//! write paths"): the claiming write returns once they are all re-derived,
//! and every figure and referral credit equals a store where the share was
//! claimed before the visits (or never existed).

use stickydb::ledger::{EarnRule, LedgerSettings, RulePoints, REFERRAL_KIND};
use stickydb::{Db, Event, Options, SharerRank};

const DAY: i64 = 86_400_000;
/// 2024-03-01 00:00 UTC.
const T0: i64 = 1_709_251_200_000;
const VISITORS: i64 = 2_500;

fn open() -> (tempfile::TempDir, Db) {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), Options::default().create_if_missing(true)).unwrap();
    db.set_ledger_settings(LedgerSettings::default().rules(vec![EarnRule {
        kind: REFERRAL_KIND.into(),
        points: RulePoints::Fixed(10),
        daily_cap_points: None,
        expires_after_days: None,
    }]))
    .unwrap();
    (dir, db)
}

/// Visits through `big`, signups and, for a third, first purchases; some
/// visitors came through another share first (`small`, claimed by `eve`).
fn visits() -> Vec<Event> {
    let mut out = vec![Event::new("eve", "share", T0).with_share_id("small")];
    for v in 0..VISITORS {
        let user = format!("v{v}");
        if v % 10 == 0 {
            out.push(Event::new(user.as_str(), "view", T0 + 5 + v).with_via("small"));
        }
        out.push(Event::new(user.as_str(), "view", T0 + 10 + v).with_via("big"));
        out.push(Event::new(user.as_str(), "signup", T0 + DAY + v));
        if v % 3 == 0 {
            out.push(Event::new(user.as_str(), "purchase", T0 + 2 * DAY + v).with_amount(500));
        }
    }
    out
}

fn balance(db: &Db, user: &str) -> Option<i64> {
    match db.account(user) {
        Ok(a) => a.map(|a| a.balance),
        Err(stickydb::Error::UnknownUser { .. }) => None,
        Err(e) => panic!("{e}"),
    }
}

fn claim() -> Event {
    Event::new("ann", "share", T0).with_share_id("big")
}

fn figures(db: &Db) -> String {
    let day = db.local_day(T0);
    // (by name: the two stores number their users differently)
    let top: Vec<_> = db
        .top_sharers(day - 1, day + 5, SharerRank::Reached, 10, None)
        .unwrap()
        .into_iter()
        .map(|row| (db.user_name(row.user_id).unwrap(), row.figures))
        .collect();
    format!(
        "{:?}\n{:?}\nann {:?} eve {:?}",
        top,
        db.social_by_day(day - 1, day + 5, None).unwrap(),
        balance(db, "ann"),
        balance(db, "eve"),
    )
}

#[test]
fn a_late_claim_of_a_share_with_many_touchers_is_exact() {
    let (_d1, late) = open();
    let (_d2, early) = open();
    early.record(&claim()).unwrap();
    for chunk in visits().chunks(2_000) {
        late.record_batch(chunk).unwrap();
        early.record_batch(chunk).unwrap();
    }
    // 2 500 users came through `big` before anyone owned it
    late.record(&claim()).unwrap();
    assert!(late.pending_job().is_none());
    assert_eq!(figures(&late), figures(&early));
    let ann = late
        .sharer_figures("ann", late.local_day(T0) - 1, late.local_day(T0) + 5)
        .unwrap()
        .unwrap();
    assert_eq!(ann.reached, VISITORS);
    stickydb_assert_clean(&late);
    stickydb_assert_clean(&early);
}

#[test]
fn erasing_the_owner_of_a_share_with_many_touchers_is_exact() {
    let (_d1, with) = open();
    let (_d2, without) = open();
    with.record(&claim()).unwrap();
    for chunk in visits().chunks(2_000) {
        with.record_batch(chunk).unwrap();
        without.record_batch(chunk).unwrap();
    }
    assert!(with.erase_user("ann").unwrap());
    assert!(with.pending_job().is_none());
    assert_eq!(with.user_id("ann").unwrap(), None);
    assert_eq!(figures(&with), figures(&without));
    stickydb_assert_clean(&with);
}

fn stickydb_assert_clean(db: &Db) {
    let r = db.verify().unwrap();
    assert!(r.is_clean(), "{:?}", r.problems);
}
