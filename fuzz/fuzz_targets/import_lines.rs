//! Arbitrary bytes as an import file, through the CLI's import path
//! (`stickydb::cli::import::run`), as JSON lines or CSV, events or profiles.
//!
//! Holds: no panic on any input; a strict import that fails names the
//! `file:line` of the bad record and leaves the store byte-identical; with
//! `--skip-bad` every rejected line is named, and what was imported plus
//! what was rejected never exceeds the file's lines; only an unreadable
//! file (a CSV header that is not UTF-8) ends it, named, writing nothing.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stickydb::cli::import::{run, Format, Records, IMPORT_BATCH};
use stickydb::{Db, Event, Options};

const T0: i64 = 1_709_251_200_000;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, body)) = data.split_first() else {
        return;
    };
    // A strict import writes whole batches before a later bad line: keep
    // the file inside one batch, so "nothing written" is the whole claim.
    let lines = body.split(|&b| b == b'\n').count();
    if lines >= IMPORT_BATCH {
        return;
    }
    let format = if mode & 1 == 0 {
        Format::Jsonl
    } else {
        Format::Csv
    };
    let records = if mode & 2 == 0 {
        Records::Events
    } else {
        Records::Profiles
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir
        .path()
        .join(if mode & 1 == 0 { "in.jsonl" } else { "in.csv" });
    std::fs::write(&file, body).expect("write input");
    let db = Db::open(
        dir.path().join("store"),
        Options::default().create_if_missing(true),
    )
    .expect("open");
    db.record(&Event::new("seed", "view", T0)).expect("seed");
    let before = db.raw_dump().expect("dump");

    match run(&db, &[file.clone()], Some(format), records, 0, T0) {
        Ok(s) => {
            assert_eq!(s.rejected, 0);
            assert!(s.imported + s.duplicates <= lines as u64);
        }
        Err(e) => {
            let text = e.to_string();
            let name = file.display().to_string();
            // a bad record is named by file and line; an unreadable file by name
            assert!(text.contains(&name), "error does not name the file: {text}");
            assert_eq!(db.raw_dump().expect("dump"), before, "strict failure wrote");
        }
    }

    let before = db.raw_dump().expect("dump");
    match run(&db, &[file.clone()], Some(format), records, u64::MAX, T0) {
        Ok(s) => {
            assert!(s.imported + s.duplicates + s.rejected <= lines as u64 + 1);
            assert_eq!(s.problems.len() as u64, s.rejected);
            let name = file.display().to_string();
            for p in &s.problems {
                assert!(p.starts_with(&format!("{name}:")), "unnamed rejection: {p}");
            }
        }
        // Only a file that cannot be read as a whole (a CSV header that is
        // not UTF-8) ends a --skip-bad import: named, and nothing written.
        Err(e) => {
            let text = e.to_string();
            assert!(
                text.contains(&file.display().to_string()),
                "unnamed failure: {text}"
            );
            assert_eq!(
                db.raw_dump().expect("dump"),
                before,
                "a failed import wrote"
            );
        }
    }
    let report = db.verify().expect("verify");
    assert_eq!(report.problem_count, 0, "{report:?}");
});
