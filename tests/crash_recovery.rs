//! A writer killed with SIGKILL mid-stream leaves a store whose every
//! maintained structure matches its records, and no acknowledged write is lost.
//! The writer records events (earning rule credits, shares, visits through
//! them and referral credits in their batches), edits
//! profiles, erases users, merges visitors into members, and runs the ledger: earns, holds captured or left
//! to time out, redeems that may be refused, expiry runs.

mod common;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use common::*;
use stickydb::ledger::{LedgerSettings, TierLevel, Tiers};
use stickydb::{
    Db, Error, Event, IdentitySettings, LedgerError, MergeOptions, Options, PointsOp,
    ProfileUpdate, RecordOutcome, TagSource,
};

const CHILD_ENV: &str = "STICKYDB_CRASH_CHILD_DIR";
const USERS: usize = 40;
const EVENTS_PER_BATCH: usize = 50;

fn batch(i: usize) -> Vec<Event> {
    let kinds = [
        "view",
        "purchase",
        "sign_in",
        "refund",
        "add_to_cart",
        "share",
        "signup",
    ];
    (0..EVENTS_PER_BATCH)
        .map(|j| {
            let kind = kinds[(i + j) % kinds.len()];
            // days jump back and forth: many events arrive late, moving users
            // between first-day cohorts and rolling windows
            let day = ((i * 37 + j * 11) % 90) as i64;
            let mut e = Event::new(
                format!("u{}", (i * 7 + j) % USERS),
                kind,
                T0 + day * DAY + (i * 1000 + j) as i64,
            )
            .with_id(format!("b{i}-{j}"))
            .with_session(format!("s{}", (i + j) % 6));
            if kind == "purchase" || kind == "refund" {
                e = e.with_amount((i * 10 + j) as i64);
            }
            // social commerce: shares with ids (each id its user's), and
            // visits and signups through them — attribution, late claims
            // and referral credits in the same batches
            if kind == "share" {
                let id = format!("sh-{}", e.user);
                e = e.with_share_id(id);
            }
            if (kind == "view" || kind == "signup") && j % 3 == 0 {
                e = e.with_via(format!("sh-u{}", (i + j * 5) % USERS));
            }
            e
        })
        .collect()
}

fn ledger_settings() -> LedgerSettings {
    let mut rules = sample_earn_rules();
    rules.push(stickydb::ledger::EarnRule {
        kind: stickydb::ledger::REFERRAL_KIND.into(),
        points: stickydb::ledger::RulePoints::Fixed(25),
        daily_cap_points: None,
        expires_after_days: None,
    });
    LedgerSettings::new(
        rules,
        Tiers {
            window_days: 30,
            levels: vec![
                TierLevel {
                    name: "silver".into(),
                    min_growth: 100,
                },
                TierLevel {
                    name: "gold".into(),
                    min_growth: 400,
                },
            ],
        },
    )
}

fn at(i: usize) -> i64 {
    T0 + i as i64 * 3_600_000
}

fn earn_op(i: usize) -> PointsOp {
    PointsOp::Earn {
        points: 50 + (i % 7) as i64,
        expires_at_ms: Some(at(i) + 20 * DAY),
        reason: "crash test".into(),
    }
}

/// Not a test on its own: the body of the child process that gets killed.
#[test]
#[ignore]
fn crash_child_writer() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let db = Db::open(
        &dir,
        Options::default().create_if_missing(true).sync_writes(true),
    )
    .unwrap();
    // Continue where the previous (killed) child stopped.
    let start: usize = std::env::var("STICKYDB_CRASH_START")
        .unwrap()
        .parse()
        .unwrap();
    for i in start.. {
        db.record_batch(&batch(i)).unwrap();
        let user = format!("u{}", i % USERS);
        let tag = format!("t{}", i % 3);
        let update = if i % 4 == 0 {
            ProfileUpdate::new().untag(tag)
        } else {
            ProfileUpdate::new().set("i", i as i64).tag(
                tag,
                TagSource::Rule,
                T0,
                Some(T0 + i as i64),
            )
        };
        db.update_profile(&user, &update).unwrap();
        db.points(&user, &format!("e{i}"), at(i), &earn_op(i))
            .unwrap();
        let hold = PointsOp::Hold {
            points: 30,
            timeout_ms: DAY,
        };
        let held = match db.points(&user, &format!("h{i}"), at(i), &hold) {
            Ok(_) => true,
            Err(Error::Ledger(LedgerError::InsufficientPoints { .. })) => false,
            Err(e) => panic!("hold failed: {e}"),
        };
        if held && i % 2 == 0 {
            let capture = PointsOp::Capture {
                hold_txn: format!("h{i}"),
            };
            db.points(&user, &format!("c{i}"), at(i) + 1, &capture)
                .unwrap();
        }
        match db.points(&user, &format!("r{i}"), at(i), &PointsOp::redeem(40, "")) {
            Ok(_) | Err(Error::Ledger(LedgerError::InsufficientPoints { .. })) => {}
            Err(e) => panic!("redeem failed: {e}"),
        }
        if i % 5 == 0 {
            db.expire_points(at(i) + 10 * DAY).unwrap();
        }
        if i % 3 == 0 {
            // a user that lives briefly: erasure may be what the kill interrupts
            let gone = format!("gone-{i}");
            db.record_batch(&[
                Event::new(gone.as_str(), "view", T0 + (i % 50) as i64 * DAY).with_session("g"),
                Event::new(gone.as_str(), "purchase", T0).with_amount(5),
            ])
            .unwrap();
            db.update_profile(
                &gone,
                &ProfileUpdate::new().tag("t0", TagSource::Rule, T0, None),
            )
            .unwrap();
            db.points(&gone, "g", T0, &PointsOp::earn(500, "")).unwrap();
            db.erase_user(&gone).unwrap();
        }
        if i % 3 == 1 {
            // a visitor who signs up: the merge may be what the kill interrupts
            let visitor = format!("visitor-{i}");
            db.record_batch(&[
                Event::new(visitor.as_str(), "view", T0 + (i % 40) as i64 * DAY)
                    .with_id("v1")
                    .with_session("vs"),
                // a guest purchase: its rule credit moves with the merge
                Event::new(visitor.as_str(), "purchase", T0)
                    .with_session("vs")
                    .with_amount(300),
            ])
            .unwrap();
            db.merge(&visitor, &user, &format!("mv{i}"), MergeOptions::default())
                .unwrap();
        }
        println!("ACK {i}");
    }
}

#[test]
fn killed_writer_leaves_consistent_store() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = Db::open(dir.path(), Options::default().create_if_missing(true)).unwrap();
        db.set_ledger_settings(ledger_settings()).unwrap();
        db.set_identity_settings(IdentitySettings::anonymous(["visitor-"]))
            .unwrap();
    }
    let exe = std::env::current_exe().unwrap();
    let mut acked = 0usize;
    // Iterations whose ACK was read; the one in flight at each kill is
    // finished by the parent (its batch only) and skipped by the next child.
    let mut acknowledged: Vec<usize> = Vec::new();
    for round in 0..4 {
        let mut child = Command::new(&exe)
            .args([
                "crash_child_writer",
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, dir.path())
            .env("STICKYDB_CRASH_START", acked.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        // Kill at a different depth each round, while the child is mid-write.
        let kill_after = 5 + round * 13;
        let mut seen = 0;
        for line in BufReader::new(stdout).lines() {
            let line = line.unwrap();
            if let Some(n) = line.strip_prefix("ACK ") {
                let n = n.parse::<usize>().unwrap();
                acknowledged.push(n);
                acked = n + 1;
                seen += 1;
                if seen == kill_after {
                    child.kill().unwrap(); // SIGKILL: no destructor, no flush
                    break;
                }
            }
        }
        child.wait().unwrap();
        assert!(seen >= kill_after, "child stopped early in round {round}");

        let db = Db::open(dir.path(), Options::default().create_if_missing(true)).unwrap();
        assert_clean(&db);
        // every acknowledged erasure held
        for i in (0..acked).filter(|i| i % 3 == 0) {
            assert_eq!(
                db.user_id(&format!("gone-{i}")).unwrap(),
                None,
                "gone-{i} back"
            );
        }
        // every acknowledged merge held: the visitor is an alias of its
        // member, and the merge id answers with a replay
        for i in (0..acked).filter(|i| i % 3 == 1) {
            let (visitor, user) = (format!("visitor-{i}"), format!("u{}", i % USERS));
            assert_eq!(
                db.user_id(&visitor).unwrap(),
                db.user_id(&user).unwrap(),
                "{visitor}"
            );
            let again = db
                .merge(&visitor, &user, &format!("mv{i}"), MergeOptions::default())
                .unwrap();
            assert!(
                again.replayed && again.events_moved == 2,
                "{visitor}: {again:?}"
            );
        }
        // every acknowledged earn is there: its retry is a replay
        for &i in &acknowledged {
            let user = format!("u{}", i % USERS);
            let out = db
                .points(&user, &format!("e{i}"), at(i), &earn_op(i))
                .unwrap();
            assert!(
                out.replayed,
                "earn e{i} lost: {out:?} {:#?}",
                db.ledger(&user, i64::MIN, i64::MAX, 50).unwrap()
            );
        }
        // every acknowledged batch is there: re-sending it is all duplicates
        for i in 0..acked {
            let out = db.record_batch(&batch(i)).unwrap();
            assert!(
                out.iter().all(|o| *o == RecordOutcome::Duplicate),
                "batch {i} lost"
            );
        }
        // the batch in flight at the kill is all-or-nothing
        let in_flight = db.record_batch(&batch(acked)).unwrap();
        let dups = in_flight
            .iter()
            .filter(|o| **o == RecordOutcome::Duplicate)
            .count();
        assert!(
            dups == 0 || dups == EVENTS_PER_BATCH,
            "batch {acked} half-written: {dups}"
        );
        acked += 1;
        assert_clean(&db);
    }
}
