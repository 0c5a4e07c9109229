//! The real binary's social-commerce commands on imported JSON lines and
//! CSV with `share_id`, `via` and group-buy fields: `sharers`, `sharer`,
//! `viral`, `groups` (per day and `--id`), the `referred_by:` atom, and a
//! bad social field reported with its file and line.

mod common;
use std::path::Path;

use common::cli::{ok, stickydb};

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).expect("JSON answer")
}

fn import(db: &Path, file: &Path, text: &str) -> std::process::Output {
    std::fs::write(file, text).unwrap();
    stickydb(db, &["import", file.to_str().unwrap()])
}

/// The attribution example of docs/metrics.md, as JSON lines (the late
/// touch last) and a group buy as CSV.
const EVENTS: &str = r#"{"user":"ann","kind":"share","ts":"2024-03-01T10:00:00Z","share_id":"s1"}
{"user":"bob","kind":"view","ts":"2024-03-02T09:00:00Z","via":"s1"}
{"user":"bob","kind":"signup","ts":"2024-03-02T09:05:00Z"}
{"user":"bob","kind":"share","ts":"2024-03-03T12:00:00Z","share_id":"s2"}
{"user":"cy","kind":"view","ts":"2024-03-04T08:00:00Z","via":"s2"}
{"user":"cy","kind":"purchase","ts":"2024-03-04T08:30:00Z","amount":5000}
{"user":"bob","kind":"purchase","ts":"2024-03-08T09:00:00Z","amount":2000}
{"user":"bob","kind":"purchase","ts":"2024-03-10T09:00:00Z","amount":1000}
{"user":"cy","kind":"view","ts":"2024-03-01T20:00:00Z","via":"s1"}
"#;

const GROUPS: &str = "user,kind,ts,group_id,group_target,group_deadline
ann,group_open,2024-03-01T10:00:00Z,g1,3,2024-03-02T10:00:00Z
bob,group_join,2024-03-01T11:00:00Z,g1,,
cy,group_join,2024-03-01T12:30:00Z,g1,,
dan,group_open,2024-03-01T09:00:00Z,g2,2,2024-03-01T21:00:00Z
";

#[test]
fn sharers_funnels_viral_and_groups_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store");
    ok(&stickydb(&db, &["init"]));
    ok(&import(&db, &dir.path().join("events.jsonl"), EVENTS));
    ok(&import(&db, &dir.path().join("groups.csv"), GROUPS));

    let top = json(&ok(&stickydb(
        &db,
        &[
            "--json",
            "sharers",
            "--from",
            "2024-03-01",
            "--to",
            "2024-03-31",
            "--by",
            "gmv",
        ],
    )));
    let rows = top["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{top}");
    assert_eq!(rows[0]["user"], "ann");
    assert_eq!(rows[0]["gmv_minor"], 7000);
    assert_eq!(rows[0]["reached"], 2);
    let table = ok(&stickydb(
        &db,
        &[
            "sharers",
            "--from",
            "2024-03-01",
            "--to",
            "2024-03-31",
            "--by",
            "reached",
        ],
    ));
    assert!(table.contains("ann") && table.contains("bob"), "{table}");

    let ann = json(&ok(&stickydb(&db, &["--json", "sharer", "ann"])));
    assert_eq!(ann["figures"]["signups"], 1);
    assert_eq!(ann["figures"]["first_purchases"], 2);
    assert_eq!(ann["referred_users"], 1);
    let bob = json(&ok(&stickydb(&db, &["--json", "sharer", "bob"])));
    assert_eq!(bob["referred_by"], "ann");

    let viral = json(&ok(&stickydb(
        &db,
        &[
            "--json",
            "viral",
            "--from",
            "2024-03-01",
            "--to",
            "2024-03-07",
        ],
    )));
    assert_eq!(viral["rows"][0]["coefficient"], 0.5);

    let seg = ok(&stickydb(
        &db,
        &["segment", "referred_by:ann", "--list", "10"],
    ));
    assert!(seg.contains("bob"), "{seg}");

    let groups = json(&ok(&stickydb(
        &db,
        &[
            "--json",
            "groups",
            "--from",
            "2024-03-01",
            "--to",
            "2024-03-01",
            "--as-of",
            "2024-03-03T00:00:00Z",
        ],
    )));
    let d1 = &groups["rows"][0];
    assert_eq!(
        (d1["opened"].as_u64(), d1["completed"].as_u64()),
        (Some(2), Some(1))
    );
    assert_eq!(d1["expired"], 1);
    assert_eq!(d1["mean_minutes_to_complete"], 150.0);
    // the groups still open at 15:00 on the first day: g2 (deadline 21:00)
    let open = json(&ok(&stickydb(
        &db,
        &[
            "--json",
            "groups",
            "--from",
            "2024-03-01",
            "--to",
            "2024-03-01",
            "--list",
            "10",
            "--state",
            "open",
            "--as-of",
            "2024-03-01T15:00:00Z",
        ],
    )));
    let rows = open["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{open}");
    assert_eq!(
        (rows[0]["group"].as_str(), rows[0]["opener"].as_str()),
        (Some("g2"), Some("dan"))
    );
    let g1 = json(&ok(&stickydb(&db, &["--json", "groups", "--id", "g1"])));
    assert_eq!(g1["state"], "completed");
    assert_eq!(g1["rows"].as_array().unwrap().len(), 3);

    // a share id of another user: refused with file and line, nothing written
    let bad = import(
        &db,
        &dir.path().join("bad.jsonl"),
        "{\"user\":\"eve\",\"kind\":\"view\",\"ts\":\"2024-03-05T00:00:00Z\"}\n\
         {\"user\":\"eve\",\"kind\":\"share\",\"ts\":\"2024-03-05T00:00:00Z\",\"share_id\":\"s1\"}\n",
    );
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("share_id") && err.contains("another user"),
        "{err}"
    );
    let eve = stickydb(&db, &["--json", "sharer", "eve"]);
    assert!(!eve.status.success(), "eve was written");
    let err = String::from_utf8_lossy(&eve.stderr);
    assert!(
        err.contains("invalid user: cannot be parsed: no user \"eve\""),
        "{err}"
    );
    // a group field on the wrong kind, named
    let bad = import(
        &db,
        &dir.path().join("bad2.jsonl"),
        "{\"user\":\"eve\",\"kind\":\"view\",\"ts\":1,\"group_target\":3}\n",
    );
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("group_target") && err.contains("bad2.jsonl:1"),
        "{err}"
    );
    ok(&stickydb(&db, &["verify"]));
}
