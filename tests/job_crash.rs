//! Every multi-batch maintenance job survives a SIGKILL at any instant
//! (SPEC §5, "Jobs"): a child runs the job on a store of 50 000 events and
//! is killed at random instants; after each kill the store reopens, a job
//! left recorded refuses writes naming itself until `finish_jobs` finishes
//! it, verify is clean, and the events column family is byte-identical to
//! the store's before the job. The jobs: an aggregate rebuild, a re-tier,
//! an attribution-window change (with referral credits to move), a
//! stage-model change, a settings document changing all three at once, the migration of the oldest fixture, and the
//! creation of a partitioned store (which leaves no store or a whole one).
//!
//! Before the fix this file came with (the per-user event sequence kept in
//! the aggregates only, no job record), a write after a killed rebuild
//! overwrote stored events: the rebuild check failed on the first kill.

mod common;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use stickydb::metrics::StageModel;
use stickydb::social::SocialSettings;
use stickydb::{Db, Error, Event, OpenError, Options, Partition, PropValue};

const CHILD_DIR: &str = "STICKYDB_JOB_CHILD_DIR";
const CHILD_JOB: &str = "STICKYDB_JOB_CHILD_JOB";
const USERS: usize = 5_000;
const EVENTS: usize = 50_000;
const KILLS: usize = 6;

fn ledger_settings(gold_growth: i64) -> stickydb::LedgerSettings {
    referral_ledger(gold_growth)
}

/// Event `i` of the base store: sessions, purchases, sign-ins, shares and
/// visits through them, exposures; many users with several events at one
/// instant (so a reused sequence number would overwrite one).
fn event(i: usize) -> Event {
    let user = format!("u{}", (i * 7) % USERS);
    let minute = ((i * 7919) % (90 * 24)) as i64;
    let kinds = [
        "view", "view", "purchase", "sign_in", "share", "signup", "exposure",
    ];
    let kind = kinds[i % kinds.len()];
    let mut e = Event::new(user.as_str(), kind, T0 + minute * 3_600_000 / 24)
        .with_session(format!("s{}", i % 97));
    match kind {
        "purchase" => e = e.with_amount(100 + (i % 900) as i64),
        "share" => e = e.with_share_id(format!("sh-{user}")),
        "exposure" => {
            e = e
                .with_property("experiment", PropValue::Str("checkout".into()))
                .with_property("variant", PropValue::Str(["a", "b"][i % 2].into()))
        }
        _ => {}
    }
    if (kind == "view" || kind == "signup" || kind == "purchase") && i % 5 == 0 {
        e = e.with_via(format!("sh-u{}", (i * 13) % USERS));
    }
    if i % 3 == 0 {
        e = e.with_id(format!("e{i}"));
    }
    if i % 4 != 0 {
        let channels = ["ads", "seo", "mail", "referral", "social"];
        e = e.with_property("channel", PropValue::Str(channels[i % 5].into()));
    }
    e
}

fn build_base(path: &Path) {
    let db = Db::open(path, Options::default().create_if_missing(true)).unwrap();
    db.set_ledger_settings(ledger_settings(400)).unwrap();
    let events: Vec<Event> = (0..EVENTS).map(event).collect();
    for chunk in events.chunks(5_000) {
        db.record_batch(chunk).unwrap();
    }
    assert_eq!(db.event_count().unwrap(), EVENTS as u64);
    db.close().unwrap();
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// One raw key and value.
type Raw = (Box<[u8]>, Box<[u8]>);

/// Every key and value of the `events` column family, read with RocksDB
/// itself (an older format's store included).
fn events_cf(path: &Path) -> Vec<Raw> {
    let names = rocksdb::DB::list_cf(&rocksdb::Options::default(), path).unwrap();
    let db = rocksdb::DB::open_cf_for_read_only(&rocksdb::Options::default(), path, &names, false)
        .unwrap();
    let cf = db.cf_handle("events").unwrap();
    db.iterator_cf(cf, rocksdb::IteratorMode::Start)
        .map(Result::unwrap)
        .collect()
}

/// A small deterministic generator (seeded from the clock, printed, so a
/// failing run can be replayed with STICKYDB_JOB_SEED).
struct Rng(u64);

impl Rng {
    fn new(job: &str) -> Self {
        let seed = std::env::var("STICKYDB_JOB_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
            });
        eprintln!("{job}: seed {seed}");
        Self(seed | 1)
    }

    /// A fraction in [0, 1).
    fn fraction(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Runs the child on `dir`, killing it after `kill_after` (`None`: let it
/// finish). Returns how long it ran and whether it finished on its own.
fn run_child(job: &str, dir: &Path, kill_after: Option<Duration>) -> (Duration, bool) {
    let exe = std::env::current_exe().unwrap();
    let started = Instant::now();
    let mut child = Command::new(exe)
        .args(["job_child", "--exact", "--ignored", "--test-threads=1"])
        .env(CHILD_DIR, dir)
        .env(CHILD_JOB, job)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let Some(after) = kill_after else {
        let status = child.wait().unwrap();
        assert!(status.success(), "{job}: the uninterrupted child failed");
        return (started.elapsed(), true);
    };
    while started.elapsed() < after {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "{job}: the child failed");
            return (started.elapsed(), true);
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap(); // SIGKILL: no destructor, no flush
    let status = child.wait().unwrap();
    (started.elapsed(), status.success())
}

/// Not a test on its own: the body of the child process that gets killed.
#[test]
#[ignore]
fn job_child() {
    let (Ok(dir), Ok(job)) = (std::env::var(CHILD_DIR), std::env::var(CHILD_JOB)) else {
        return;
    };
    if job == "create" {
        let db = Db::open(
            &dir,
            Options::default()
                .create_if_missing(true)
                .partition(Partition::new(1, 3).unwrap()),
        )
        .unwrap();
        db.close().unwrap();
        return;
    }
    // (a migration is what this open runs)
    let db = Db::open(&dir, Options::default().create_if_missing(true)).unwrap();
    match job.as_str() {
        "rebuild" => {
            db.rebuild_aggregates().unwrap();
        }
        "retier" => {
            let gold = db.ledger_settings().tiers.levels[1].min_growth;
            db.set_ledger_settings(ledger_settings(if gold == 400 { 150 } else { 400 }))
                .unwrap();
        }
        "social" => {
            let window = db.social_settings().window_days;
            db.set_social_settings(SocialSettings::window(if window == 7 { 1 } else { 7 }))
                .unwrap();
        }
        "stage" => {
            let mut model = StageModel::standard();
            if db.metric_settings().stage_model == model {
                model = stage_model_b();
            }
            db.set_stage_model(model).unwrap();
        }
        // every section at once, toggled: re-tier, resettle and attribution
        // in one job
        "settings" => {
            let gold = db.ledger_settings().tiers.levels[1].min_growth;
            let next = if gold == 400 { 150 } else { 400 };
            let mut doc = stickydb::SettingsDocument::default();
            doc.tiers = Some(ledger_settings(next).tiers);
            doc.attribution_window_days = Some(if next == 150 { 1 } else { 7 });
            doc.stage_model = Some(match next {
                150 => stage_model_b(),
                _ => StageModel::standard(),
            });
            doc.expiry_notice_days = Some(if next == 150 { 3 } else { 7 });
            let applied = db.apply_settings(&doc).unwrap();
            assert_eq!(applied.rederived, ["attribution", "tiers", "stages"]);
        }
        "migration" => {}
        "erase" => {
            assert!(db.erase_user(WHALE).unwrap());
        }
        "claim" => {
            db.record(&late_claim()).unwrap();
        }
        // declared and dropped in turn: a backfill, then a drop
        "dims" => match db.dimensions().is_empty() {
            true => db
                .declare_dimension(&stickydb::dims::Dimension::new("channel").max_values(3))
                .unwrap(),
            false => db.drop_dimension("channel").unwrap(),
        },
        other => panic!("unknown job {other}"),
    }
    db.close().unwrap();
}

/// Another stage model: shorter thresholds, so the stages of many users
/// move.
fn stage_model_b() -> StageModel {
    StageModel::with_thresholds(3, 5, 10)
}

/// After a kill: a job left recorded refuses writes naming itself, the
/// documented call finishes it, verify is clean and the events are as
/// they were. Returns whether a job was left recorded.
fn check_after_kill(job: &str, dir: &Path, before: &[Raw]) -> bool {
    let db = Db::open(dir, Options::default().create_if_missing(true)).unwrap();
    let pending = db.pending_job();
    if let Some(p) = &pending {
        assert!(!p.running, "{job}: {p:?}");
        // a write colliding with a stored (user, instant) is refused
        let collide = Event::new("u0", "view", T0).with_id("after-kill");
        match db.record(&collide) {
            Err(Error::JobUnfinished { job: name, .. }) => assert_eq!(name, p.name),
            other => panic!("{job}: a write during an unfinished job: {other:?}"),
        }
        // a snapshot taken while the job's half-done work is there...
        let stale = db.snapshot();
        assert_eq!(db.finish_jobs().unwrap().as_deref(), Some(p.name.as_str()));
        // ...still holds it after the job finished: its reads of what the
        // job re-derives are refused; a new snapshot's are not
        let day = db.local_day(T0);
        let read = stale.metrics().active(None, day, day, None);
        if job == "dims" {
            let q = stickydb::dims::BreakdownQuery::new("channel", day, day);
            let read = stale.breakdown(&q, None, T0);
            assert!(
                matches!(read, Err(Error::JobUnfinished { .. })),
                "{job}: a stale snapshot read half a job's work: {read:?}"
            );
        } else if job == "settings" {
            // (its areas: tiers, stages, attribution; not the aggregates)
            let read = stale.users_in_tier("gold");
            assert!(
                matches!(read, Err(Error::JobUnfinished { .. })),
                "{job}: a stale snapshot read half a job's work: {read:?}"
            );
        } else if job != "social" {
            assert!(
                matches!(read, Err(Error::JobUnfinished { .. })),
                "{job}: a stale snapshot read half a job's work: {read:?}"
            );
        }
        drop(stale);
        db.snapshot()
            .metrics()
            .active(None, day, day, None)
            .unwrap();
    }
    assert!(db.pending_job().is_none(), "{job}: still recorded");
    assert_clean(&db);
    db.close().unwrap();
    assert!(
        events_cf(dir) == before,
        "{job}: the events column family changed"
    );
    pending.is_some()
}

/// Kills `job` at random instants over a copy of the base store.
fn kill_job_repeatedly(job: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    build_base(&dir);
    let before = events_cf(&dir);
    // an uninterrupted run measures how long the job takes
    let (whole, _) = run_child(job, &dir, None);
    assert!(!check_after_kill(job, &dir, &before), "{job}: left a job");
    let mut rng = Rng::new(job);
    let mut interrupted = 0;
    for round in 0..KILLS {
        let at = whole.mul_f64(0.1 + 0.85 * rng.fraction());
        let (ran, finished) = run_child(job, &dir, Some(at));
        let pending = check_after_kill(job, &dir, &before);
        eprintln!("{job} round {round}: killed at {at:?} (ran {ran:?}, finished {finished}), job left: {pending}");
        interrupted += usize::from(pending);
    }
    assert!(
        interrupted > 0,
        "{job}: no kill interrupted the job (it takes {whole:?})"
    );
    if job == "rebuild" {
        // a write at a stored (user, instant) adds an event, never replaces one
        let db = Db::open(&dir, Options::default().create_if_missing(true)).unwrap();
        let stored = db.newest("u0", 100_000).unwrap();
        let at = stored[0].event.ts_ms;
        db.record(&Event::new("u0", "view", at)).unwrap();
        let after = db.newest("u0", 100_000).unwrap();
        assert_eq!(after.len(), stored.len() + 1);
        for s in &stored {
            assert!(after.iter().any(|a| a.seq == s.seq && a.event == s.event));
        }
        assert_clean(&db);
    }
}

#[test]
fn a_killed_rebuild_is_finished_and_loses_no_event() {
    kill_job_repeatedly("rebuild");
}

#[test]
fn a_killed_retier_is_finished() {
    kill_job_repeatedly("retier");
}

#[test]
fn a_killed_attribution_window_change_is_finished_with_its_credits() {
    kill_job_repeatedly("social");
}

#[test]
fn a_killed_stage_model_change_is_finished() {
    kill_job_repeatedly("stage");
}

#[test]
fn a_killed_settings_document_is_finished() {
    kill_job_repeatedly("settings");
}

/// A base store of 50 000 events plus what `extra` writes, under `tmp`.
fn base_with(tmp: &Path, extra: impl FnOnce(&Db)) -> PathBuf {
    let base = tmp.join("base");
    build_base(&base);
    let db = Db::open(&base, Options::default().create_if_missing(true)).unwrap();
    extra(&db);
    db.close().unwrap();
    base
}

/// Runs `job` once uninterrupted on a copy of `base` (the reference every
/// resumed run must end as), then on fresh copies killed at random
/// instants, calling `check` on each killed copy; `check` says whether the
/// kill left the job recorded. Asserts at least one did.
fn kill_on_copies(
    job: &str,
    tmp: &Path,
    base: &Path,
    mut check: impl FnMut(usize, &Path, &Path) -> bool,
) {
    let reference = tmp.join("reference");
    copy_dir(base, &reference);
    let (whole, _) = run_child(job, &reference, None);
    let mut rng = Rng::new(job);
    let mut interrupted = 0;
    for round in 0..KILLS {
        let dir = tmp.join(format!("round-{round}"));
        copy_dir(base, &dir);
        let at = whole.mul_f64(0.1 + 0.85 * rng.fraction());
        run_child(job, &dir, Some(at));
        interrupted += usize::from(check(round, &dir, &reference));
    }
    eprintln!("{job}: {interrupted} of {KILLS} kills left the job recorded");
    assert!(
        interrupted > 0,
        "no kill interrupted {job} (it takes {whole:?})"
    );
}

/// A user with more events than one erasure write carries (an erasure job).
const WHALE: &str = "whale";
const WHALE_EVENTS: usize = 100_500;

fn whale_events() -> Vec<Event> {
    (0..WHALE_EVENTS)
        .map(|i| {
            let kind = ["view", "view", "purchase", "sign_in", "share"][i % 5];
            let mut e = Event::new(WHALE, kind, T0 + (i as i64 % 400) * DAY + i as i64)
                .with_session(format!("w{}", i / 7));
            if kind == "purchase" {
                e = e.with_amount(250);
            }
            if kind == "share" && i % 1_000 == 4 {
                e = e.with_share_id(format!("whale-{}", i / 1_000));
            }
            e
        })
        .collect()
}

#[test]
fn a_killed_erasure_of_a_large_user_is_finished() {
    let tmp = tempfile::tempdir().unwrap();
    let base = base_with(tmp.path(), |db| {
        for chunk in whale_events().chunks(25_000) {
            db.record_batch(chunk).unwrap();
        }
        // visitors through the whale's shares: attribution moves with it
        let visits: Vec<Event> = (0..200)
            .map(|i| {
                Event::new(format!("u{i}"), "signup", T0 + 3 * DAY + i)
                    .with_via(format!("whale-{}", i % 50))
            })
            .collect();
        db.record_batch(&visits).unwrap();
    });
    let whale_less = events_cf(&base).len() - WHALE_EVENTS;
    kill_on_copies("erase", tmp.path(), &base, |round, dir, reference| {
        let after = events_cf(reference);
        assert_eq!(after.len(), whale_less);
        let left = Db::open(dir, Options::default().create_if_missing(true))
            .unwrap()
            .pending_job();
        if left.is_none() {
            // killed before the job started, or after it ended
            let db = Db::open(dir, Options::default().create_if_missing(true)).unwrap();
            db.erase_user(WHALE).unwrap();
            db.close().unwrap();
        }
        let interrupted = check_after_kill("erase", dir, &after);
        let db = Db::open(dir, Options::default().create_if_missing(true)).unwrap();
        assert_eq!(db.user_id(WHALE).unwrap(), None, "round {round}");
        let other = Db::open(reference, Options::default().create_if_missing(true)).unwrap();
        let day = db.local_day(T0);
        assert_eq!(
            db.metrics().active(None, day - 1, day + 400, None).unwrap(),
            other
                .metrics()
                .active(None, day - 1, day + 400, None)
                .unwrap(),
            "round {round}"
        );
        interrupted
    });
}

/// The share event that claims `big` after thousands came through it.
fn late_claim() -> Event {
    Event::new("claimer", "share", T0).with_share_id("big")
}

/// The sharers' figures, by name.
fn sharers(db: &Db) -> Vec<(Option<String>, stickydb::Figures)> {
    let day = db.local_day(T0);
    db.top_sharers(day - 1, day + 100, stickydb::SharerRank::Reached, 20, None)
        .unwrap()
        .into_iter()
        .map(|r| (db.user_name(r.user_id).unwrap(), r.figures))
        .collect()
}

#[test]
fn a_killed_late_claim_of_a_share_with_many_touchers_is_finished() {
    let tmp = tempfile::tempdir().unwrap();
    let base = base_with(tmp.path(), |db| {
        // 3 000 users come through `big` before anyone owns it: its claim
        // re-derives them as a job, a page at a time
        let visits: Vec<Event> = (0..3_000)
            .flat_map(|i| {
                let user = format!("u{i}");
                [
                    Event::new(user.as_str(), "view", T0 + i).with_via("big"),
                    Event::new(user.as_str(), "purchase", T0 + DAY + i).with_amount(300),
                ]
            })
            .collect();
        db.record_batch(&visits).unwrap();
    });
    kill_on_copies("claim", tmp.path(), &base, |round, dir, reference| {
        let (after, want) = {
            let db = Db::open(reference, Options::default().create_if_missing(true)).unwrap();
            assert_clean(&db);
            let want = sharers(&db);
            assert!(want
                .iter()
                .any(|(n, f)| n.as_deref() == Some("claimer") && f.reached >= 3_000));
            db.close().unwrap();
            (events_cf(reference), want)
        };
        let db = Db::open(dir, Options::default().create_if_missing(true)).unwrap();
        let pending = db.pending_job();
        if let Some(p) = &pending {
            match db.record(&Event::new("u1", "view", T0)) {
                Err(Error::JobUnfinished { job, .. }) => assert_eq!(job, p.name),
                other => panic!("round {round}: a write during an unfinished job: {other:?}"),
            }
            assert_eq!(db.finish_jobs().unwrap().as_deref(), Some("touchers"));
        }
        if db.user_id("claimer").unwrap().is_none() {
            // killed before the claim committed: it was never written
            db.record(&late_claim()).unwrap();
        }
        assert_clean(&db);
        assert_eq!(sharers(&db), want, "round {round}");
        db.close().unwrap();
        assert!(events_cf(dir) == after, "round {round}: events differ");
        pending.is_some()
    });
}

fn oldest_fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/formats/v1/store")
}

#[test]
fn a_killed_migration_of_the_oldest_format_resumes_on_open() {
    let tmp = tempfile::tempdir().unwrap();
    let before = events_cf(&oldest_fixture());
    let reference = tmp.path().join("reference");
    copy_dir(&oldest_fixture(), &reference);
    let (whole, _) = run_child("migration", &reference, None);
    assert!(!check_after_kill("migration", &reference, &before));
    let mut rng = Rng::new("migration");
    for round in 0..KILLS {
        let dir = tmp.path().join(format!("round-{round}"));
        copy_dir(&oldest_fixture(), &dir);
        let at = whole.mul_f64(0.1 + 0.85 * rng.fraction());
        run_child("migration", &dir, Some(at));
        // the open resumes the migration: nothing is left recorded
        check_after_kill("migration", &dir, &before);
        let (a, b) = (
            Db::open(&dir, Options::default().create_if_missing(true)).unwrap(),
            Db::open(&reference, Options::default().create_if_missing(true)).unwrap(),
        );
        let day = a.local_day(T0);
        let (ma, mb) = (a.metrics(), b.metrics());
        assert_eq!(
            ma.active(None, day - 400, day + 400, None).unwrap(),
            mb.active(None, day - 400, day + 400, None).unwrap(),
            "round {round}: the resumed migration answers differently"
        );
    }
}

#[test]
fn a_killed_creation_leaves_no_store_or_a_whole_one() {
    let tmp = tempfile::tempdir().unwrap();
    let probe = tmp.path().join("probe");
    let (whole, _) = run_child("create", &probe, None);
    let mut rng = Rng::new("create");
    let (mut absent, mut whole_stores) = (0, 0);
    for round in 0..KILLS * 2 {
        let dir = tmp.path().join(format!("round-{round}"));
        let at = whole.mul_f64(rng.fraction());
        run_child("create", &dir, Some(at));
        let reopened = Db::open(&dir, Options::default().create_if_missing(false));
        match reopened {
            Ok(db) => {
                assert_eq!(
                    db.partition(),
                    Partition::new(1, 3).unwrap(),
                    "round {round}"
                );
                whole_stores += 1;
            }
            Err(Error::Open(OpenError::Missing { .. })) => absent += 1,
            Err(e) => panic!("round {round}: {e}"),
        }
        // and creating it again works either way
        let db = Db::open(
            &dir,
            Options::default()
                .create_if_missing(true)
                .partition(Partition::new(1, 3).unwrap()),
        )
        .unwrap();
        assert_eq!(db.partition(), Partition::new(1, 3).unwrap());
    }
    eprintln!("creation: {absent} absent, {whole_stores} whole");
}

#[test]
fn a_killed_dimension_backfill_or_drop_is_finished() {
    kill_job_repeatedly("dims");
}
