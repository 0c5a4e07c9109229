//! An endless line is rejected in bounded memory: a 256 MiB JSON line is
//! reported (and skipped with `--skip-bad`) without being loaded, and a CSV
//! line past the limit stops the import with the file named — the importing
//! process never grows anywhere near the line's size. (Its own test binary:
//! the peak RSS read here is the largest of this process's children.)

mod common;
use std::io::Write;

use common::cli::stickydb;

const LINE_BYTES: usize = 256 << 20;
/// Peak resident memory allowed to an import child process.
const MAX_CHILD_RSS_BYTES: i64 = 160 << 20;

fn write_file(path: &std::path::Path, head: &[u8], tail: &[u8]) {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    f.write_all(head).unwrap();
    let chunk = vec![b'x'; 1 << 20];
    for _ in 0..LINE_BYTES >> 20 {
        f.write_all(&chunk).unwrap();
    }
    f.write_all(tail).unwrap();
}

fn children_peak_rss_bytes() -> i64 {
    // SAFETY: getrusage only writes the struct it is given, which is
    // zero-initialised plain data owned by this frame.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut u) };
    assert_eq!(rc, 0);
    u.ru_maxrss as i64 * 1024
}

#[test]
fn an_endless_line_is_rejected_in_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s");
    assert!(stickydb(&db, &["init"]).status.success());
    let good = br#"{"user": "a", "kind": "view", "ts": 1710091294814}"#;
    let jsonl = dir.path().join("long.jsonl");
    let mut head = good.to_vec();
    head.extend_from_slice(b"\n{\"user\": \"");
    let mut tail = b"\"}\n".to_vec();
    tail.extend_from_slice(good);
    tail.push(b'\n');
    write_file(&jsonl, &head, &tail);
    let out = stickydb(
        &db,
        &[
            "--json",
            "import",
            "--skip-bad",
            "5",
            jsonl.to_str().unwrap(),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (s["imported"].as_u64(), s["rejected"].as_u64()),
        (Some(2), Some(1))
    );
    let problem = s["problems"][0].as_str().unwrap();
    assert!(problem.contains("long.jsonl:2"), "{problem}");

    let csv = dir.path().join("long.csv");
    write_file(
        &csv,
        b"user,kind,ts\na,view,1710091294814\nb,",
        b",1710091294814\n",
    );
    let out = stickydb(&db, &["import", "--skip-bad", "5", csv.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("long.csv") && err.contains("longer than"),
        "{err}"
    );

    let peak = children_peak_rss_bytes();
    assert!(
        peak < MAX_CHILD_RSS_BYTES,
        "an import child peaked at {} MiB for a {} MiB line",
        peak >> 20,
        LINE_BYTES >> 20
    );
}
