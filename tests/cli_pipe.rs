//! A CLI that behaves in a pipe (issue 31): when the reader of standard
//! output goes away (`stickydb … | head -1`), every command ends quietly —
//! success, no error or panic on standard error — instead of panicking with "failed
//! printing to stdout: Broken pipe" or ending with an error line.

mod common;

use std::io::Read as _;
use std::process::{Command, Stdio};

/// Runs `args` against `db` with a reader that takes `keep` bytes and then
/// goes away; returns the exit status and standard error.
fn with_reader_gone(
    db: &std::path::Path,
    args: &[&str],
    keep: usize,
) -> (std::process::ExitStatus, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_stickydb"))
        .arg("--db")
        .arg(db)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut got = vec![0u8; keep];
    stdout.read_exact(&mut got).unwrap();
    drop(stdout);
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    (child.wait().unwrap(), stderr)
}

#[test]
fn every_command_ends_quietly_when_its_reader_goes_away() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("demo");
    common::cli::ok(&common::cli::stickydb(
        &db,
        &["demo", "--users", "150", "--days", "45"],
    ));
    // Each answer is far more than a pipe's buffer (64 KiB), so the
    // writer meets the closed pipe whenever the reader leaves.
    let (from, to) = ("2015-01-01", "2024-12-31");
    let cases: Vec<Vec<&str>> = vec![
        vec!["metrics", "active", "--from", from, "--to", to],
        vec!["--json", "metrics", "active", "--from", from, "--to", to],
        vec![
            "--format", "csv", "metrics", "active", "--from", from, "--to", to,
        ],
        vec!["--json", "sessions", "--from", from, "--to", to],
        vec!["feed", "--limit", "100000"],
        vec!["users", "export", "--format", "jsonl"],
    ];
    for args in &cases {
        for keep in [0, 1] {
            let (status, stderr) = with_reader_gone(&db, args, keep);
            // (notes such as `users export`'s as-of day may stay)
            let noisy = ["panicked", "error", "Broken pipe"]
                .iter()
                .any(|w| stderr.contains(w));
            assert!(
                status.success() && !noisy,
                "{args:?} (reader took {keep} bytes): {status:?} {stderr}"
            );
        }
    }
    // Unaffected: a real error still says what went wrong.
    let (ok, stderr) = with_reader_gone(&db, &["metrics", "active", "--from", "x", "--to", to], 0);
    assert!(!ok.success() && stderr.contains("error"), "{stderr}");
}
