//! The jobs from the command line (docs/cli.md): `rebuild-aggregates`
//! killed midway leaves a job that `stickydb jobs` lists, that makes every
//! writing command fail naming it (with a hint), and that `stickydb jobs
//! finish` finishes — after which verify is clean and writes work again.

mod common;
use std::time::{Duration, Instant};

use common::cli::{ok, stickydb};
use common::*;
use stickydb::{Db, Event, Options};

fn build(path: &std::path::Path) {
    let db = Db::open(path, Options::default().create_if_missing(true)).unwrap();
    let events: Vec<Event> = (0..60_000i64)
        .map(|i| Event::new(format!("u{}", i % 3_000), "view", T0 + (i % 90) * DAY + i))
        .collect();
    for chunk in events.chunks(20_000) {
        db.record_batch(chunk).unwrap();
    }
    db.close().unwrap();
}

/// Kills `stickydb rebuild-aggregates` after `after`; whether it ran out.
fn killed_rebuild(path: &std::path::Path, after: Duration) -> bool {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_stickydb"))
        .arg("--db")
        .arg(path)
        .arg("rebuild-aggregates")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while started.elapsed() < after {
        if child.try_wait().unwrap().is_some() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    false
}

#[test]
fn a_killed_rebuild_is_listed_refuses_writes_and_is_finished() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s");
    build(&db);
    let none = ok(&stickydb(&db, &["jobs"]));
    assert_eq!(none.trim(), "no job recorded");
    // kill at growing depths until a kill lands inside the job
    let started = Instant::now();
    let whole = {
        let t = Instant::now();
        assert!(killed_rebuild(&db, Duration::from_secs(600)));
        t.elapsed()
    };
    let mut found = None;
    for i in 1..=20 {
        killed_rebuild(&db, whole.mul_f64(i as f64 / 21.0));
        let listed = ok(&stickydb(&db, &["--json", "jobs"]));
        let v: serde_json::Value = serde_json::from_str(&listed).unwrap();
        if !v["job"].is_null() {
            found = Some(v);
            break;
        }
    }
    let v = found.unwrap_or_else(|| panic!("no kill left the job ({:?})", started.elapsed()));
    assert_eq!(v["job"]["name"], "rebuild-aggregates");
    assert_eq!(v["job"]["finish_command"], "stickydb jobs finish");
    let human = ok(&stickydb(&db, &["jobs"]));
    assert!(
        human.starts_with("job rebuild-aggregates unfinished at step "),
        "{human}"
    );

    // a writing command fails naming the job, with the fix
    let file = dir.path().join("e.jsonl");
    std::fs::write(
        &file,
        "{\"user\":\"late\",\"kind\":\"view\",\"ts\":1709251200000}\n",
    )
    .unwrap();
    let out = stickydb(&db, &["import", file.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("job rebuild-aggregates is unfinished"),
        "{err}"
    );
    assert!(err.contains("hint: `stickydb --db"), "{err}");
    assert!(err.contains("jobs finish"), "{err}");
    // and so do queries of the aggregates it re-derives
    let out = stickydb(
        &db,
        &[
            "metrics",
            "active",
            "--from",
            "2024-03-01",
            "--to",
            "2024-03-02",
        ],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("job rebuild-aggregates is unfinished"));

    let finished = ok(&stickydb(&db, &["--json", "jobs", "finish"]));
    let v: serde_json::Value = serde_json::from_str(&finished).unwrap();
    assert_eq!(v["finished"], "rebuild-aggregates");
    assert_eq!(ok(&stickydb(&db, &["jobs"])).trim(), "no job recorded");
    ok(&stickydb(&db, &["verify"]));
    ok(&stickydb(&db, &["import", file.to_str().unwrap()]));
    let db = Db::open(&db, Options::default().create_if_missing(true)).unwrap();
    assert_eq!(db.event_count().unwrap(), 60_001);
    assert_clean(&db);
}
