//! The real binary's `import` (SPEC §5 input rules): JSON lines and CSV,
//! events and profiles, duplicates counted, bad records named by file and
//! line; strict mode writes nothing of the batch holding a bad record;
//! `--skip-bad N` leaves out and reports up to N.

mod common;
use std::path::{Path, PathBuf};
use std::process::Output;

use stickydb::{Db, Options, Sensitive};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

use common::cli::stickydb;

fn json(out: &Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON on stdout")
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn imports_jsonl_csv_and_profiles() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s");
    let events = fixture("events.jsonl");
    let out = stickydb(
        &db,
        &["--json", "import", path(&events), "--utc-offset", "+00:00"],
    );
    let s = json(&out);
    assert_eq!(s["imported"], 536);
    assert_eq!(
        (s["duplicates"].as_u64(), s["rejected"].as_u64()),
        (Some(0), Some(0))
    );
    // the CSV repeats 30 of those events and adds 25
    let s = json(&stickydb(
        &db,
        &["--json", "import", path(&fixture("events.csv"))],
    ));
    assert_eq!(
        (s["imported"].as_u64(), s["duplicates"].as_u64()),
        (Some(25), Some(30))
    );
    let s = json(&stickydb(
        &db,
        &[
            "--json",
            "import",
            "--records",
            "profiles",
            path(&fixture("profiles.jsonl")),
        ],
    ));
    assert_eq!(s["imported"], 10);
    // an operator settles a bulk import: table files only, nothing lost
    let s = json(&stickydb(&db, &["--json", "compact"]));
    let after = s["sst_bytes_after"].as_u64().unwrap();
    assert!(after > 0 && s["sst_bytes_before"].as_u64().is_some(), "{s}");

    let db = Db::open(&db, Options::default().create_if_missing(true)).unwrap();
    assert_eq!(db.event_count().unwrap(), 561);
    let e = db.newest("u00", 1000).unwrap();
    let first = e
        .iter()
        .find(|e| e.event.event_id.as_deref() == Some("e0"))
        .unwrap();
    assert_eq!(first.event.ts_ms, 1_710_099_940_745, "RFC 3339 with millis");
    assert_eq!(first.event.session_id.as_deref(), Some("s0-9"));
    assert_eq!(first.event.properties.len(), 3);
    let p = db.profile("u03", Sensitive::Exclude).unwrap().unwrap();
    assert_eq!(p.attributes["region"].to_string(), "US");
    assert!(p.tags.contains_key("vip"));
    common::assert_clean(&db);
}

#[test]
fn strict_mode_names_the_line_and_writes_nothing_of_the_batch() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s");
    assert!(stickydb(&db, &["init"]).status.success());
    let bad = fixture("bad.jsonl");
    let before = Db::open(&db, Options::default().create_if_missing(true))
        .unwrap()
        .raw_dump()
        .unwrap();
    let out = stickydb(&db, &["import", path(&bad)]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.jsonl:3"), "{err}");
    let after = Db::open(&db, Options::default().create_if_missing(true))
        .unwrap()
        .raw_dump()
        .unwrap();
    assert_eq!(before, after, "strict import wrote something");
    // --strict is the default, and says so
    let out = stickydb(&db, &["import", "--strict", path(&bad)]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.jsonl:3: invalid record"), "{err}");
}

#[test]
fn skip_bad_reports_each_and_counts() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s");
    assert!(stickydb(&db, &["init"]).status.success());
    let bad = fixture("bad.jsonl");
    // three bad records: two allowed is not enough
    let out = stickydb(&db, &["import", "--skip-bad", "2", path(&bad)]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.jsonl:8"),
        "the third bad line stops it: {err}"
    );

    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s");
    assert!(stickydb(&db, &["init"]).status.success());
    let out = stickydb(&db, &["--json", "import", "--skip-bad", "3", path(&bad)]);
    let s = json(&out);
    assert_eq!(
        (s["imported"].as_u64(), s["rejected"].as_u64()),
        (Some(6), Some(3))
    );
    let problems: Vec<String> = s["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().to_owned())
        .collect();
    assert!(
        problems[0].starts_with(&format!("{}:3:", path(&bad))),
        "{problems:?}"
    );
    assert!(
        problems[1].contains(":5:") && problems[1].contains("colour"),
        "{problems:?}"
    );
    assert!(
        problems[2].contains(":8:") && problems[2].contains("amount"),
        "{problems:?}"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.matches("skipped").count(), 3, "{err}");
    let db = Db::open(&db, Options::default().create_if_missing(true)).unwrap();
    assert_eq!(db.event_count().unwrap(), 6);
}
