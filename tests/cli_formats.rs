//! The real binary's conveniences (issue 17, first part): `--format csv`
//! of every query equals its JSON rows, tables state their as-of day,
//! `import -` reads standard input, `STICKYDB_DB` names the store, shell
//! completions, and an unknown kind is refused with the known ones listed.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::cli::{ok, stickydb};
use serde_json::Value;

const FROM: &str = "2024-03-01";
const TO: &str = "2024-03-20";

fn store() -> (tempfile::TempDir, std::path::PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("s");
    let file = tmp.path().join("e.jsonl");
    let mut lines = Vec::new();
    for i in 0..400i64 {
        let kind = ["view", "purchase", "signup", "share"][(i % 4) as usize];
        let mut line = format!(
            r#"{{"user":"u{}","kind":"{kind}","ts":{}"#,
            (i * 13) % 37,
            common::T0 + (i % 20) * common::DAY + i
        );
        if kind == "purchase" {
            line.push_str(&format!(r#","amount":{}"#, 100 + i));
        }
        line.push('}');
        lines.push(line);
    }
    std::fs::write(&file, lines.join("\n")).unwrap();
    ok(&stickydb(&db, &["init"]));
    ok(&stickydb(&db, &["import", file.to_str().unwrap()]));
    (tmp, db)
}

/// The JSON answer's rows (`rows`, `cohorts`, or a map as name/value).
fn json_rows(v: &Value) -> Vec<Vec<String>> {
    let cell = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    };
    if let Some(rows) = v
        .get("rows")
        .or_else(|| v.get("cohorts"))
        .and_then(Value::as_array)
        .or_else(|| v.as_array())
    {
        return rows
            .iter()
            .map(|r| r.as_object().unwrap().values().map(cell).collect())
            .collect();
    }
    let map = v
        .as_object()
        .unwrap()
        .values()
        .find_map(Value::as_object)
        .unwrap();
    map.iter().map(|(k, v)| vec![k.clone(), cell(v)]).collect()
}

#[test]
fn csv_of_every_query_is_its_json_rows() {
    let (_tmp, db) = store();
    let queries: Vec<Vec<&str>> = vec![
        vec!["metrics", "active", "--from", FROM, "--to", TO],
        vec!["metrics", "daily", "--from", FROM, "--to", TO],
        vec!["retention", "--from", FROM, "--to", TO],
        vec!["lifecycle", "--from", FROM, "--to", TO],
        vec!["stages", "--as-of", TO],
        vec!["rfm", "--as-of", TO],
        vec![
            "funnel",
            "--steps",
            "view,purchase",
            "--window",
            "7d",
            "--from",
            FROM,
            "--to",
            TO,
        ],
        vec!["stickiness-dist", "--from", FROM, "--to", TO],
        vec!["sharers", "--from", FROM, "--to", TO],
        vec!["viral", "--from", FROM, "--to", TO],
        vec!["groups", "--from", FROM, "--to", TO],
        vec!["groups", "--from", FROM, "--to", TO, "--list", "5"],
        vec!["habits"],
        vec!["sharer", "u0"],
        vec!["stages", "--transitions", "--from", FROM, "--to", TO],
        vec![
            "cluster", "--store", "STORE", "active", "--from", FROM, "--to", TO,
        ],
    ];
    let store_path = db.to_str().unwrap().to_owned();
    for q in queries {
        let q: Vec<&str> = q
            .into_iter()
            .map(|a| if a == "STORE" { store_path.as_str() } else { a })
            .collect();
        let mut j = q.clone();
        j.push("--json");
        let v: Value = serde_json::from_str(&ok(&stickydb(&db, &j))).unwrap();
        let mut c = q.clone();
        c.extend(["--format", "csv"]);
        let text = ok(&stickydb(&db, &c));
        let mut r = csv::Reader::from_reader(text.as_bytes());
        let got: Vec<Vec<String>> = r
            .records()
            .map(|rec| rec.unwrap().iter().map(str::to_owned).collect())
            .collect();
        assert_eq!(got, json_rows(&v), "{q:?}");
        assert!(
            !got.is_empty() || q[0] == "groups" || q[0] == "sharers",
            "{q:?} has rows"
        );
    }
    // A segment's users, one a line.
    let text = ok(&stickydb(
        &db,
        &["segment", "did:purchase", "--list", "5", "--format", "csv"],
    ));
    assert_eq!(text.lines().next(), Some("user"));
    assert_eq!(text.lines().count(), 6);
}

#[test]
fn tables_state_their_day_and_conveniences_work() {
    let (tmp, db) = store();
    let out = ok(&stickydb(&db, &["stages", "--as-of", TO]));
    assert_eq!(out.lines().next(), Some("as of 2024-03-20"), "{out}");
    assert!(
        out.lines().nth(1).unwrap().contains("stage") && out.contains("users"),
        "{out}"
    );
    // Without --as-of: the store's last day with data, said so.
    let out = ok(&stickydb(&db, &["stages"]));
    assert_eq!(
        out.lines().next(),
        Some("as of 2024-03-20 (the last day with data; --as-of now for today)"),
        "{out}"
    );
    let v: Value = serde_json::from_str(&ok(&stickydb(&db, &["stages", "--json"]))).unwrap();
    assert_eq!(v["as_of"], "2024-03-20");
    let now: Value =
        serde_json::from_str(&ok(&stickydb(&db, &["stages", "--as-of", "now", "--json"]))).unwrap();
    assert_ne!(now["as_of"], "2024-03-20");
    assert!(
        now["stages"]["churned"].as_u64().unwrap() > 0,
        "everyone churned by now"
    );

    // `import -` reads standard input.
    let mut child = Command::new(env!("CARGO_BIN_EXE_stickydb"))
        .args(["--db", db.to_str().unwrap(), "import", "-", "--json"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"{\"user\":\"piped\",\"kind\":\"view\",\"ts\":1709251200000}\n")
        .unwrap();
    let summary: Value = serde_json::from_str(&ok(&child.wait_with_output().unwrap())).unwrap();
    assert_eq!(summary["imported"], 1);

    // STICKYDB_DB names the store when --db is not given.
    let out = Command::new(env!("CARGO_BIN_EXE_stickydb"))
        .args(["stats", "--json"])
        .env("STICKYDB_DB", &db)
        .current_dir(tmp.path())
        .output()
        .unwrap();
    let stats: Value = serde_json::from_str(&ok(&out)).unwrap();
    assert_eq!(stats["events"], 401);

    // Completions.
    let bash = ok(&common::cli::run(&["completions", "bash"]));
    assert!(
        bash.contains("_stickydb") && bash.contains("complete"),
        "{bash}"
    );
    assert!(ok(&common::cli::run(&["completions", "zsh"])).contains("#compdef stickydb"));

    // An unknown kind lists the known ones instead of answering zeros.
    let out = stickydb(
        &db,
        &[
            "metrics", "active", "--from", FROM, "--to", TO, "--kind", "purchse",
        ],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("unknown kind \"purchse\"") && err.contains("purchase"),
        "{err}"
    );
    // A missing store: the fix is named.
    let nope = tmp.path().join("nope");
    let out = common::cli::run(&["--db", nope.to_str().unwrap(), "stages"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("hint: create it with `stickydb --db"), "{err}");
}
