//! SPEC §7: four partition stores export their user sets with
//! `stickydb export clickhouse`; ClickHouse itself (chDB, in-process, from
//! PyPI) loads the files and answers DAU, MAU and a retention matrix with
//! `groupBitmapMerge` / `bitmapAndCardinality` — equal to one store holding
//! every event. A re-export after erasures, with a higher version, replaces
//! the rows it covers.
//!
//! chDB lives in a virtualenv outside the clone: `scripts/dev test` installs
//! it and sets `STICKYDB_CHDB_PYTHON`; without it this test fails (it is
//! never skipped).

mod common;

use std::path::Path;

use serde_json::json;
use stickydb::metrics::{Period, RetentionQuery};
use stickydb::{Db, Event, Options, Partition};

const PARTS: u32 = 4;

fn events() -> Vec<Event> {
    let mut out = Vec::new();
    let mut x: u64 = 12345;
    let mut next = |n: u64| {
        x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        (x >> 33) % n
    };
    for _ in 0..6_000 {
        let user = format!("user-{}", next(900));
        let day = next(40) as i64;
        let kind = ["view", "purchase", "signup"][next(3) as usize];
        out.push(Event::new(
            user,
            kind,
            common::T0 + day * common::DAY + next(86_000_000) as i64,
        ));
    }
    out
}

fn expected(db: &Db, from: i32, to: i32) -> serde_json::Value {
    let m = db.metrics();
    let active = m.active(None, from, to, None).unwrap();
    let retention = m
        .retention(&RetentionQuery::new(Period::Day, from, to), None)
        .unwrap();
    let mut small = Vec::new();
    stickydb::clickhouse::group_bitmap_state(&(0..3).collect(), &mut small).unwrap();
    json!({
        "from": from, "to": to,
        "active": active.iter().map(|r| json!({"day": r.day, "dau": r.dau, "mau": r.mau})).collect::<Vec<_>>(),
        "retention": retention.cohorts.iter().map(|c| json!({"cohort": c.cohort, "size": c.size, "counts": c.counts})).collect::<Vec<_>>(),
        "small_state_hex": small.iter().map(|b| format!("{b:02X}")).collect::<String>(),
    })
}

fn export(store: &Path, out: &Path, from: &str, to: &str, version: &str) {
    let o = common::cli::stickydb(
        store,
        &[
            "export",
            "clickhouse",
            "--from",
            from,
            "--to",
            to,
            "--out",
            out.to_str().unwrap(),
            "--version",
            version,
        ],
    );
    common::cli::ok(&o);
}

#[test]
fn chdb_answers_equal_the_single_store() {
    let py = common::python();
    let tmp = tempfile::tempdir().unwrap();
    let whole = Db::open(
        tmp.path().join("whole"),
        Options::default().create_if_missing(true),
    )
    .unwrap();
    let parts: Vec<Db> = (0..PARTS)
        .map(|i| {
            Db::open(
                tmp.path().join(format!("p{i}")),
                Options::default()
                    .create_if_missing(true)
                    .partition(Partition::new(i, PARTS).unwrap()),
            )
            .unwrap()
        })
        .collect();
    let evs = events();
    for chunk in evs.chunks(500) {
        whole.record_batch(chunk).unwrap();
        for (i, db) in parts.iter().enumerate() {
            let mine: Vec<Event> = chunk
                .iter()
                .filter(|e| Partition::of(&e.user, PARTS).index == i as u32)
                .cloned()
                .collect();
            db.record_batch(&mine).unwrap();
        }
    }
    let from = whole.local_day(common::T0);
    let to = from + 39;
    let (f, t) = (
        stickydb::time::format_day(from),
        stickydb::time::format_day(to),
    );
    let base = tmp.path().join("ch");
    for phase in ["phase1", "phase2"] {
        std::fs::create_dir_all(base.join(phase)).unwrap();
    }
    std::fs::write(
        base.join("expected1.json"),
        expected(&whole, from, to).to_string(),
    )
    .unwrap();
    drop(parts);
    for i in 0..PARTS {
        let out = base.join("phase1").join(format!("p{i}.rowbinary"));
        export(&tmp.path().join(format!("p{i}")), &out, &f, &t, "1");
    }
    // Erase some users everywhere, then re-export with a higher version.
    for n in 0..40 {
        let user = format!("user-{}", n * 7);
        whole.erase_user(&user).unwrap();
        let p = Partition::of(&user, PARTS).index;
        let db = Db::open(
            tmp.path().join(format!("p{p}")),
            Options::default().create_if_missing(true),
        )
        .unwrap();
        db.erase_user(&user).unwrap();
    }
    std::fs::write(
        base.join("expected2.json"),
        expected(&whole, from, to).to_string(),
    )
    .unwrap();
    for i in 0..PARTS {
        let out = base.join("phase2").join(format!("p{i}.rowbinary"));
        export(&tmp.path().join(format!("p{i}")), &out, &f, &t, "2");
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clickhouse/check_export.py");
    let out = std::process::Command::new(&py)
        .arg(&script)
        .arg(&base)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "chDB check failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("answers equal"), "{said}");
}
