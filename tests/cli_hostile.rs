//! The committed corpus of hostile inputs (`tests/data/hostile/`) through the
//! real binary's `import`, strict and with `--skip-bad`: truncated lines,
//! wrong types, NUL and control characters, over-long ids, huge numbers,
//! deep nesting, invalid UTF-8, keys named twice, a hostile CSV. Every bad line is named by
//! file and line, a strict import that fails leaves the store as it was,
//! and the good lines around the bad ones are imported.

mod common;
use std::path::{Path, PathBuf};

use common::cli::stickydb;
use stickydb::{Db, Event, Options};

const T0: i64 = 1_709_251_200_000;

fn corpus(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/hostile")
        .join(name)
}

/// A store holding one event, and its raw contents.
fn seeded(dir: &Path) -> (PathBuf, Vec<stickydb::RawEntry>) {
    let path = dir.join("s");
    let db = Db::open(&path, Options::default().create_if_missing(true)).unwrap();
    db.record(&Event::new("seed", "view", T0)).unwrap();
    let dump = db.raw_dump().unwrap();
    db.close().unwrap();
    (path, dump)
}

/// (file, lines that must be rejected, events that must be imported).
const CASES: &[(&str, &[u64], u64)] = &[
    ("truncated.jsonl", &[2, 4], 2),
    (
        "wrong_types.jsonl",
        &[2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12],
        2,
    ),
    ("control_chars.jsonl", &[2, 3, 4, 5, 6], 2),
    ("overlong_ids.jsonl", &[2, 3, 4, 5, 6], 2),
    ("huge_numbers.jsonl", &[2, 3, 4, 5, 6, 7, 8, 9, 10], 2),
    ("nested.jsonl", &[2, 3, 4], 2),
    ("invalid_utf8.jsonl", &[2, 3, 4], 2),
    // a key named twice: refused, never read as the last one
    ("duplicate_keys.jsonl", &[2, 3, 4, 5], 2),
    ("hostile.csv", &[3, 4, 5, 6, 7, 8], 2),
];

#[test]
fn every_hostile_line_is_named_and_nothing_of_a_failed_strict_import_is_written() {
    for (name, bad, imported) in CASES {
        let dir = tempfile::tempdir().unwrap();
        let (db, before) = seeded(dir.path());
        let file = corpus(name);
        let file_s = file.to_str().unwrap();

        let out = stickydb(&db, &["import", file_s]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{name}: strict import succeeded");
        // parse errors surface as lines are read, the library's refusals
        // when the batch is written: the first reported is one of the bad
        assert!(
            bad.iter().any(|n| err.contains(&format!("{file_s}:{n}:"))),
            "{name}: strict error names none of lines {bad:?}: {err}"
        );
        let after = Db::open(&db, Options::default().create_if_missing(true)).unwrap();
        assert_eq!(
            after.raw_dump().unwrap(),
            before,
            "{name}: strict failure wrote"
        );
        after.close().unwrap();

        let out = stickydb(&db, &["--json", "import", "--skip-bad", "100", file_s]);
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let s: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let mut lines: Vec<u64> = s["problems"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                let p = p.as_str().unwrap();
                let rest = p
                    .strip_prefix(&format!("{file_s}:"))
                    .unwrap_or_else(|| panic!("{name}: unnamed problem {p}"));
                rest.split(':').next().unwrap().parse().unwrap()
            })
            .collect();
        lines.sort_unstable();
        assert_eq!(&lines, bad, "{name}: rejected lines {s}");
        assert_eq!(s["rejected"].as_u64(), Some(bad.len() as u64), "{name}");
        assert_eq!(s["imported"].as_u64(), Some(*imported), "{name}");
        let db = Db::open(&db, Options::default().create_if_missing(true)).unwrap();
        assert_eq!(db.event_count().unwrap(), 1 + imported, "{name}");
        common::assert_clean(&db);
    }
}

#[test]
fn a_key_named_twice_is_refused_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let (db, before) = seeded(dir.path());
    let file = corpus("duplicate_keys.jsonl");
    let file_s = file.to_str().unwrap();
    let out = stickydb(&db, &["import", file_s]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a duplicate key was imported");
    assert!(err.contains(&format!("{file_s}:2:")), "{err}");
    assert!(err.contains(r#"duplicate key "user""#), "{err}");
    let after = Db::open(&db, Options::default().create_if_missing(true)).unwrap();
    assert_eq!(
        after.raw_dump().unwrap(),
        before,
        "the strict failure wrote"
    );
    // (the first line alone, with --skip-bad, is imported as `a`; `f` never appears)
    drop(after);
    let out = stickydb(&db, &["import", "--skip-bad", "10", file_s]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let after = Db::open(&db, Options::default().create_if_missing(true)).unwrap();
    for gone in ["e", "f", "g", "h", "i"] {
        assert_eq!(after.user_id(gone).unwrap(), None, "{gone} was imported");
    }
}
