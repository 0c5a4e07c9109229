//! The real binary's identity commands: `identity`, `merge`, `import
//! --records merges` (JSON lines and CSV, strict and `--skip-bad`, bad
//! records named by file and line) and `user` showing aliases.

mod common;
use std::path::Path;

use common::cli::{ok, stickydb};
use stickydb::{Db, Options};

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.to_str().unwrap().to_owned()
}

/// `import --records merges --skip-bad N FILE`, its JSON summary.
fn import_merges(db: &Path, skip_bad: &str, file: &str) -> serde_json::Value {
    let args = [
        "--json",
        "import",
        "--records",
        "merges",
        "--skip-bad",
        skip_bad,
        file,
    ];
    serde_json::from_str(&ok(&stickydb(db, &args))).unwrap()
}

/// A store with two visitors, two members and a late visitor.
fn store(dir: &Path) -> std::path::PathBuf {
    let db = dir.join("s");
    let events = write(
        dir,
        "e.jsonl",
        &[
            r#"{"user":"anon:a","kind":"view","ts":"2024-03-01T10:00:00Z","event_id":"a1"}"#,
            r#"{"user":"anon:b","kind":"view","ts":"2024-03-02T10:00:00Z"}"#,
            r#"{"user":"anon:c","kind":"view","ts":"2024-03-02T11:00:00Z"}"#,
            r#"{"user":"m1","kind":"purchase","ts":"2024-03-05T10:00:00Z","amount":900}"#,
            r#"{"user":"m2","kind":"view","ts":"2024-03-06T10:00:00Z"}"#,
        ]
        .join("\n"),
    );
    ok(&stickydb(&db, &["init"]));
    ok(&stickydb(&db, &["import", &events]));
    ok(&stickydb(&db, &["identity", "--anonymous-prefix", "anon:"]));
    db
}

#[test]
fn merge_and_user_show_the_alias() {
    let dir = tempfile::tempdir().unwrap();
    let db = store(dir.path());
    let out = ok(&stickydb(
        &db,
        &["merge", "anon:a", "m1", "--id", "signup-1"],
    ));
    assert!(
        out.contains("merged anon:a into m1: 1 events moved"),
        "{out}"
    );
    // again: answered, not redone
    let again = ok(&stickydb(
        &db,
        &["--json", "merge", "anon:a", "m1", "--id", "signup-1"],
    ));
    let v: serde_json::Value = serde_json::from_str(&again).unwrap();
    assert_eq!(v["replayed"], true);
    assert_eq!(v["events_moved"], 1);
    // two identified ids: refused without --force, named in the error
    let refused = stickydb(&db, &["merge", "m2", "m1", "--id", "x"]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("needs force"));
    ok(&stickydb(
        &db,
        &["merge", "m2", "m1", "--id", "x", "--force"],
    ));
    let user = ok(&stickydb(&db, &["user", "anon:a"]));
    assert!(user.contains("user anon:a (an alias of m1"), "{user}");
    let user = ok(&stickydb(&db, &["user", "m1"]));
    assert!(user.contains("alias anon:a  merge signup-1:"), "{user}");
    assert!(user.contains("alias m2      merge x:"), "{user}");
    let v: serde_json::Value =
        serde_json::from_str(&ok(&stickydb(&db, &["--json", "user", "m1"]))).unwrap();
    assert_eq!(v["merges"].as_array().unwrap().len(), 2);
    // the stage runs of the last 180 days, as the library gives them
    let runs = v["stage_history"].as_array().unwrap();
    let store = Db::open(
        &db,
        Options::default()
            .create_if_missing(true)
            .read_only(true)
            .create_if_missing(false),
    )
    .unwrap();
    let m1 = store.user_id("m1").unwrap().unwrap();
    let as_of = v["metrics"]["as_of_day"].as_i64().unwrap() as i32;
    let want = store
        .metrics()
        .stage_history(m1, as_of - 179, as_of)
        .unwrap();
    assert!(!want.is_empty());
    assert_eq!(runs.len(), want.len());
    for (got, want) in runs.iter().zip(&want) {
        assert_eq!(got["stage"], want.stage.as_str());
        assert_eq!(got["from_day"], want.from_day);
    }
    drop(store);
    ok(&stickydb(&db, &["verify"]));
}

#[test]
fn merges_import_from_jsonl_and_csv_with_bad_records_named() {
    let dir = tempfile::tempdir().unwrap();
    let db = store(dir.path());
    let jsonl = write(
        dir.path(),
        "m.jsonl",
        &[
            r#"{"from":"anon:a","into":"m1","id":"s1"}"#,
            r#"{"from":"anon:a","into":"m1","id":"s1"}"#,
            r#"{"from":"nobody","into":"m1","id":"s2"}"#,
            r#"{"from":"anon:b","into":"m1","id":"s3","colour":"red"}"#,
            r#"{"from":"anon:b","into":"anon:a","id":"s4"}"#,
        ]
        .join("\n"),
    );
    // strict: the unparsable line 4 stops the import before its batch is
    // applied, naming it: nothing merged
    let strict = stickydb(&db, &["import", "--records", "merges", &jsonl]);
    assert!(!strict.status.success());
    let err = String::from_utf8_lossy(&strict.stderr);
    assert!(err.contains("m.jsonl:4") && err.contains("colour"), "{err}");
    {
        let store = Db::open(&db, Options::default().create_if_missing(true)).unwrap();
        assert_ne!(
            store.user_id("anon:a").unwrap(),
            store.user_id("m1").unwrap()
        );
    }
    // strict without the unparsable line: stops at the refused merge of line 3
    let jsonl3 = write(
        dir.path(),
        "m3.jsonl",
        &std::fs::read_to_string(&jsonl)
            .unwrap()
            .lines()
            .take(3)
            .collect::<Vec<_>>()
            .join("\n"),
    );
    let strict = stickydb(&db, &["import", "--records", "merges", &jsonl3]);
    let err = String::from_utf8_lossy(&strict.stderr);
    assert!(
        err.contains("m3.jsonl:3") && err.contains("nobody"),
        "{err}"
    );
    // --skip-bad: lines 3 and 4 reported, the rest applied (lines 1 and 2
    // replay the merge the strict run above applied)
    let v = import_merges(&db, "2", &jsonl);
    assert_eq!(v["rejected"], 2);
    assert_eq!(v["imported"], 1, "{v}");
    assert_eq!(v["duplicates"], 2, "{v}");
    // the refused merge (strict, line 3) left the merges before it done:
    // each merge is one atomic write
    let problems = v["problems"].to_string();
    assert!(
        problems.contains("m.jsonl:3") && problems.contains("m.jsonl:4"),
        "{problems}"
    );
    // CSV, with a force column
    let csv = write(
        dir.path(),
        "m.csv",
        "from,into,id,force\nanon:c,m2,s5,\nm2,m1,s6,true\nm2,m1,s7,maybe\n",
    );
    let v = import_merges(&db, "1", &csv);
    assert_eq!(
        (v["imported"].as_u64(), v["rejected"].as_u64()),
        (Some(2), Some(1))
    );
    assert!(v["problems"].to_string().contains("m.csv:4"), "{v}");
    let store = Db::open(&db, Options::default().create_if_missing(true)).unwrap();
    let m1 = store.user_id("m1").unwrap();
    for u in ["anon:a", "anon:b", "anon:c", "m2"] {
        assert_eq!(store.user_id(u).unwrap(), m1, "{u}");
    }
    assert_eq!(store.user_count().unwrap(), 1);
    assert!(store.verify().unwrap().is_clean());
}
