//! `settings show|apply` through the real binary: the document round-trips
//! (JSON and TOML), `--json` equals the library call, a refused document
//! changes nothing, and a `settings apply` killed at random instants is
//! finished by running it again, ending as an uninterrupted apply did.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::cli::{ok, stickydb};
use common::{assert_clean, DAY, T0};
use serde_json::{json, Value};
use stickydb::ledger::{EarnRule, Tiers};
use stickydb::metrics::StageModel;
use stickydb::{Db, Event, Options, Segment, SettingsDocument};

const USERS: usize = 4_000;
const EVENTS: usize = 40_000;

/// Sessions, purchases, sign-ins, shares and visits through them: every
/// re-derivation a settings change runs has work.
fn event(i: usize) -> Event {
    let user = format!("u{}", (i * 7) % USERS);
    let minute = ((i * 7919) % (90 * 24)) as i64;
    let kind = ["view", "purchase", "sign_in", "share", "signup"][i % 5];
    let mut e = Event::new(user.as_str(), kind, T0 + minute * 3_600_000 / 24)
        .with_session(format!("s{}", i % 97));
    match kind {
        "purchase" => e = e.with_amount(100 + (i % 900) as i64),
        "share" => e = e.with_share_id(format!("sh-{user}")),
        _ => {}
    }
    if kind != "share" && i % 4 == 0 {
        e = e.with_via(format!("sh-u{}", (i * 13) % USERS));
    }
    e
}

fn tiers(gold_growth: i64) -> Tiers {
    common::referral_ledger(gold_growth).tiers
}

fn rules() -> Vec<EarnRule> {
    common::referral_ledger(0).rules
}

fn build(path: &Path, events: usize) {
    let db = Db::create(path, Options::default()).expect("create");
    let mut first = SettingsDocument::default();
    first.earning_rules = Some(rules());
    first.tiers = Some(tiers(400));
    db.apply_settings(&first).expect("settings");
    let all: Vec<Event> = (0..events).map(event).collect();
    for chunk in all.chunks(5_000) {
        db.record_batch(chunk).expect("events");
    }
    db.close().expect("close");
}

/// A document changing every section: new tiers, stage model, window and
/// growth rules (each a re-derivation), rules, prefixes and notice days.
fn changed_document() -> Value {
    let mut rules = serde_json::to_value(rules()).expect("json");
    rules[0]["daily_cap_points"] = json!(77);
    json!({
        "earning_rules": rules,
        "tiers": serde_json::to_value(tiers(150)).expect("json"),
        "stage_model": serde_json::to_value(StageModel::with_thresholds(3, 5, 10)).expect("json"),
        "attribution_window_days": 1,
        "anonymous_prefixes": ["anon:", "dev:"],
        "expiry_notice_days": 3,
        "growth_rules": [
            {"kind": "purchase", "value": {"per_amount": {"growth": 1, "per_minor": 10}},
             "daily_cap": null},
            {"kind": "*", "value": {"fixed": 5}, "daily_cap": 5},
        ],
        "tier_basis": "growth_value",
    })
}

fn json_of(path: &Path, args: &[&str]) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    serde_json::from_str(&ok(&stickydb(path, &all))).expect("json")
}

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let file = dir.join(name);
    std::fs::write(&file, text).expect("write");
    file
}

#[test]
fn apply_then_show_round_trips_and_answers_as_the_library() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (cli, lib) = (tmp.path().join("cli"), tmp.path().join("lib"));
    build(&cli, 2_000);
    build(&lib, 2_000);
    let doc = changed_document();
    let file = write(tmp.path(), "settings.json", &doc.to_string());
    let applied = json_of(&cli, &["settings", "apply", file.to_str().expect("utf-8")]);
    let parsed: SettingsDocument = serde_json::from_value(doc.clone()).expect("document");
    let db = Db::open(&lib, Options::default()).expect("open");
    let want = db.apply_settings(&parsed).expect("apply");
    assert_eq!(applied, serde_json::to_value(&want).expect("json"));
    assert_eq!(
        applied,
        json!({
            "changed": ["earning_rules", "tiers", "stage_model", "attribution_window_days",
                        "anonymous_prefixes", "expiry_notice_days", "growth_rules",
                        "tier_basis"],
            "rederived": ["attribution", "growth", "tiers", "stages"],
        })
    );
    // shown back in the shape it was applied in, equal to the library's
    let shown = json_of(&cli, &["settings", "show"]);
    assert_eq!(shown, doc);
    assert_eq!(
        shown,
        serde_json::to_value(db.settings_document()).expect("json")
    );
    assert_eq!(fingerprint(&db), {
        let other = Db::open(&cli, Options::default()).expect("open");
        let f = fingerprint(&other);
        assert_clean(&other);
        f
    });
    assert_clean(&db);
    // show's output applied again changes nothing
    let again = write(tmp.path(), "again.json", &shown.to_string());
    let none = json_of(&cli, &["settings", "apply", again.to_str().expect("utf-8")]);
    assert_eq!(none, json!({"changed": [], "rederived": []}));
}

#[test]
fn toml_round_trips_and_a_section_left_out_stays() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let path = tmp.path().join("store");
    build(&path, 500);
    let toml = ok(&stickydb(&path, &["settings", "show", "--toml"]));
    assert!(
        toml.contains("[tiers]") && toml.contains("min_growth = 400"),
        "{toml}"
    );
    let same = write(tmp.path(), "same.toml", &toml);
    let out = ok(&stickydb(
        &path,
        &["settings", "apply", same.to_str().expect("utf-8")],
    ));
    assert_eq!(out.trim(), "nothing changed");
    // only the window, in TOML read from standard input
    let mut child = Command::new(env!("CARGO_BIN_EXE_stickydb"))
        .arg("--db")
        .arg(&path)
        .args(["--json", "settings", "apply", "--toml", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    use std::io::Write;
    let mut stdin = child.stdin.take().expect("stdin");
    stdin
        .write_all(b"attribution_window_days = 30\n")
        .expect("write");
    drop(stdin);
    let out = child.wait_with_output().expect("wait");
    let applied: Value = serde_json::from_str(&ok(&out)).expect("json");
    assert_eq!(
        applied,
        json!({"changed": ["attribution_window_days"], "rederived": ["attribution"]})
    );
    let shown = json_of(&path, &["settings", "show"]);
    assert_eq!(shown["attribution_window_days"], json!(30));
    assert_eq!(
        shown["tiers"],
        serde_json::to_value(tiers(400)).expect("json")
    );
}

#[test]
fn a_refused_document_changes_nothing() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let path = tmp.path().join("store");
    build(&path, 500);
    let before = json_of(&path, &["settings", "show"]);
    let bad = [
        // a typo is refused, not ignored
        (
            json!({"tiers": {"window_days": 30, "levels": [], "windw": 1}}),
            "windw",
        ),
        (json!({"attribution_window": 3}), "attribution_window"),
        // every section is checked before anything is stored
        (
            json!({"attribution_window_days": 1, "expiry_notice_days": 100000}),
            "notice_days",
        ),
        (
            json!({"earning_rules": [], "tiers": {"window_days": 0, "levels": []}}),
            "window",
        ),
    ];
    // a file far larger than any document is refused before it is read whole
    let huge = tmp.path().join("huge.json");
    std::fs::write(&huge, vec![b' '; (1 << 20) + 1]).expect("write");
    let out = stickydb(&path, &["settings", "apply", huge.to_str().expect("utf-8")]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("1048576"),
        "{stderr}"
    );
    for (doc, names) in bad {
        let file = write(tmp.path(), "bad.json", &doc.to_string());
        let out = stickydb(&path, &["settings", "apply", file.to_str().expect("utf-8")]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{doc} was accepted");
        assert!(stderr.contains(names), "{doc}: {stderr}");
        assert_eq!(json_of(&path, &["settings", "show"]), before, "{doc}");
    }
}

/// What the re-derivations decide: every user's tier and balance, and the
/// users of the stages, referrals and tiers.
fn fingerprint(db: &Db) -> String {
    let mut out = String::new();
    for u in 0..USERS {
        let user = format!("u{u}");
        if db.user_id(&user).expect("id").is_none() {
            continue;
        }
        if let Some(a) = db.account(&user).expect("account") {
            out += &format!("{user}:{:?}:{}\n", a.tier, a.balance);
        }
        let g = db.growth_value(&user, T0 + 91 * DAY).expect("growth");
        out += &format!("{user}: growth {} {}\n", g.balance, g.in_window);
    }
    let now = T0 + 91 * DAY;
    let stages = db.settings_document().stage_model.expect("model");
    let mut segments: Vec<String> = ["referred", "tier:gold", "tier:silver"]
        .map(str::to_owned)
        .to_vec();
    segments.extend(stages.rules.iter().map(|r| format!("stage:{}", r.stage)));
    for s in segments {
        let seg = Segment::parse(&s).expect("segment");
        let users = db.segment(&seg, now).expect("segment");
        out += &format!("{s}: {:?}\n", users.iter().collect::<Vec<_>>());
    }
    out
}

/// Runs `settings apply FILE` on `dir`, killing it after `kill_after`.
/// Returns how long it ran.
fn run_apply(dir: &Path, file: &Path, kill_after: Option<Duration>) -> Duration {
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_stickydb"))
        .arg("--db")
        .arg(dir)
        .args(["settings", "apply"])
        .arg(file)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn");
    let after = kill_after.unwrap_or(Duration::MAX);
    while started.elapsed() < after {
        if let Some(status) = child.try_wait().expect("wait") {
            assert!(status.success(), "settings apply failed");
            return started.elapsed();
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().expect("kill"); // SIGKILL: no destructor, no flush
    child.wait().expect("wait");
    started.elapsed()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read_dir") {
        let entry = entry.expect("entry");
        std::fs::copy(entry.path(), to.join(entry.file_name())).expect("copy");
    }
}

#[test]
fn a_killed_apply_is_finished_by_running_it_again() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let base = tmp.path().join("base");
    build(&base, EVENTS);
    let file = write(tmp.path(), "settings.json", &changed_document().to_string());
    let reference = tmp.path().join("reference");
    copy_dir(&base, &reference);
    let whole = run_apply(&reference, &file, None);
    let want = {
        let db = Db::open(&reference, Options::default()).expect("open");
        assert!(db.pending_job().is_none());
        fingerprint(&db)
    };
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_nanos() as u64;
    eprintln!("seed {seed}; an uninterrupted apply takes {whole:?}");
    let mut rng = seed | 1;
    let mut interrupted = 0;
    for round in 0..12 {
        if interrupted >= 3 {
            break;
        }
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let fraction = 0.2 + 0.75 * ((rng >> 11) as f64 / (1u64 << 53) as f64);
        let dir = tmp.path().join(format!("round-{round}"));
        copy_dir(&base, &dir);
        run_apply(&dir, &file, Some(whole.mul_f64(fraction)));
        let left = {
            let db = Db::open(&dir, Options::default()).expect("open");
            let pending = db.pending_job();
            if let Some(p) = &pending {
                assert_eq!(p.name, "settings");
                // its settings are stored whole with its record
                let shown = serde_json::to_value(db.settings_document()).expect("json");
                assert_eq!(shown, changed_document(), "round {round}");
            }
            pending.is_some()
        };
        interrupted += usize::from(left);
        // running it again finishes it (or applies it, when the kill came
        // before its first batch)
        run_apply(&dir, &file, None);
        let db = Db::open(&dir, Options::default()).expect("open");
        assert!(db.pending_job().is_none(), "round {round}");
        assert_eq!(fingerprint(&db), want, "round {round}: killed, then re-run");
        assert_clean(&db);
        eprintln!("round {round}: killed at {fraction:.2}, job left: {left}");
    }
    assert!(interrupted > 0, "no kill interrupted the job ({whole:?})");
}
