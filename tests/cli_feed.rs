//! The real binary's change-feed commands: `advance`, `feed` (JSON lines
//! with cursors, `--after`, `--follow` picking up a later write,
//! `--trim-through`) and `stages --transitions`.

mod common;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Stdio;

use common::cli::{ok, stickydb};

fn lines(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).expect("one JSON entry per line"))
        .collect()
}

fn import(db: &Path, dir: &Path, text: &str) {
    let file = dir.join("events.jsonl");
    std::fs::write(&file, text).unwrap();
    ok(&stickydb(db, &["import", file.to_str().unwrap()]));
}

#[test]
fn advance_feed_and_transitions_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store");
    ok(&stickydb(&db, &["init", "--utc-offset", "+08:00"]));
    import(
        &db,
        dir.path(),
        "{\"user\":\"ann\",\"kind\":\"view\",\"ts\":\"2024-03-01T10:00:00+08:00\"}\n",
    );
    let first = lines(&ok(&stickydb(&db, &["feed"])));
    assert_eq!(first.len(), 1);
    assert_eq!(first[0]["cursor"], 1);
    assert_eq!(first[0]["user"], "ann");
    assert_eq!(first[0]["change"]["stage"]["to"], "new");
    assert_eq!(first[0]["change"]["stage"]["day"], 19_783);

    // 40 days later ann is churned: three changes time brought, once
    let out = ok(&stickydb(
        &db,
        &["--json", "advance", "--now", "2024-04-10T00:00:00+08:00"],
    ));
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["stage_changes"], 3);
    let again = ok(&stickydb(
        &db,
        &["--json", "advance", "--now", "2024-04-10T00:00:00+08:00"],
    ));
    let again: serde_json::Value = serde_json::from_str(&again).unwrap();
    assert_eq!(again["stage_changes"], 0);
    let rest = lines(&ok(&stickydb(&db, &["feed", "--after", "1"])));
    let stages: Vec<&str> = rest
        .iter()
        .map(|e| e["change"]["stage"]["to"].as_str().unwrap())
        .collect();
    assert_eq!(stages, ["growing", "declining", "churned"]);
    assert!(rest.iter().all(|e| e["retroactive"] == false));
    let cursors: Vec<u64> = rest.iter().map(|e| e["cursor"].as_u64().unwrap()).collect();
    assert_eq!(cursors, [2, 3, 4]);

    // per-day transition counts
    let rows: serde_json::Value = serde_json::from_str(&ok(&stickydb(
        &db,
        &[
            "--json",
            "stages",
            "--transitions",
            "--from",
            "2024-03-14",
            "--to",
            "2024-03-16",
        ],
    )))
    .unwrap();
    // ann's last activity 2024-03-01: declining from the 15th (14 days)
    assert_eq!(rows[1]["day"], "2024-03-15");
    assert_eq!(rows[1]["entered:declining"], 1);
    assert_eq!(rows[0]["entered:declining"], 0);

    // --follow picks up an entry a later write makes
    let mut follower = std::process::Command::new(env!("CARGO_BIN_EXE_stickydb"))
        .args([
            "--db",
            db.to_str().unwrap(),
            "feed",
            "--follow",
            "--after",
            "4",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    import(
        &db,
        dir.path(),
        "{\"user\":\"ann\",\"kind\":\"view\",\"ts\":\"2024-04-10T09:00:00+08:00\"}\n",
    );
    let mut reader = BufReader::new(follower.stdout.take().unwrap());
    let mut text = String::new();
    reader.read_line(&mut text).unwrap();
    follower.kill().unwrap();
    follower.wait().unwrap();
    let back: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(back["cursor"], 5);
    assert_eq!(back["change"]["stage"]["from"], "churned");
    assert_eq!(back["change"]["stage"]["to"], "growing");
    assert_eq!(back["retroactive"], false);

    // retention by cursor
    let trimmed: serde_json::Value = serde_json::from_str(&ok(&stickydb(
        &db,
        &["--json", "feed", "--trim-through", "3"],
    )))
    .unwrap();
    assert_eq!(trimmed["deleted"], 3);
    let left = lines(&ok(&stickydb(&db, &["feed"])));
    assert_eq!(left.len(), 2);
    // retention by age: everything here was written just now
    let kept: serde_json::Value = serde_json::from_str(&ok(&stickydb(
        &db,
        &["--json", "feed", "--trim-older-than", "1d"],
    )))
    .unwrap();
    assert_eq!(kept["deleted"], 0);
    let written = left[1]["written_ms"].as_i64().unwrap();
    assert!(
        written > 1_700_000_000_000,
        "wall-clock write time: {written}"
    );
    assert_eq!(left[0]["cursor"], 4);
    ok(&stickydb(&db, &["verify"]));
}
