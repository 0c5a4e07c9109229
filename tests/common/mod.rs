//! Helpers shared by the integration tests.
#![allow(dead_code)]

use stickydb::{Db, Options};
use tempfile::TempDir;

/// The tests' virtualenv's Python (chDB, DuckDB and pyarrow, the
/// independent oracles and readers): `STICKYDB_CHDB_PYTHON`, else where
/// `scripts/dev` installs it.
pub fn python() -> std::path::PathBuf {
    if let Ok(p) = std::env::var("STICKYDB_CHDB_PYTHON") {
        return std::path::PathBuf::from(p);
    }
    let home = std::env::var("HOME").unwrap_or_default();
    let p = std::path::Path::new(&home).join(".cache/stickydb-venv/bin/python");
    assert!(
        p.exists(),
        "the tests' virtualenv is not installed: run `bash scripts/dev chdb` (or set \
         STICKYDB_CHDB_PYTHON)"
    );
    p
}

/// The sample earning rules plus 25 points per referral, and tiers over 30
/// days: silver at 50, gold at `gold_growth` (the settings the job tests
/// toggle).
pub fn referral_ledger(gold_growth: i64) -> stickydb::LedgerSettings {
    use stickydb::ledger::{EarnRule, RulePoints, TierLevel, Tiers};
    let mut rules = sample_earn_rules();
    rules.push(EarnRule {
        kind: stickydb::ledger::REFERRAL_KIND.into(),
        points: RulePoints::Fixed(25),
        daily_cap_points: None,
        expires_after_days: None,
    });
    let level = |name: &str, min_growth| TierLevel {
        name: name.into(),
        min_growth,
    };
    stickydb::LedgerSettings::new(
        rules,
        Tiers {
            window_days: 30,
            levels: vec![level("silver", 50), level("gold", gold_growth)],
        },
    )
}

/// 2024-03-01 00:00:00 UTC.
pub const T0: i64 = 1_709_251_200_000;
pub const DAY: i64 = 86_400_000;

/// Two earning rules: 1 point per 100 minor units of a purchase, expiring
/// after 30 days, and `sign_in_points` per sign-in (at most `sign_in_cap` a
/// day), never expiring.
#[allow(dead_code)]
pub fn purchase_and_sign_in_rules(
    sign_in_points: i64,
    sign_in_cap: Option<i64>,
) -> Vec<stickydb::ledger::EarnRule> {
    use stickydb::ledger::{EarnRule, RulePoints};
    vec![
        EarnRule {
            kind: "purchase".into(),
            points: RulePoints::PerAmount {
                points: 1,
                per_minor: 100,
            },
            daily_cap_points: None,
            expires_after_days: Some(30),
        },
        EarnRule {
            kind: "sign_in".into(),
            points: RulePoints::Fixed(sign_in_points),
            daily_cap_points: sign_in_cap,
            expires_after_days: None,
        },
    ]
}

/// Earning rules several tests run a store with: points per purchase amount
/// (1 per 10 minor units, expiring after 30 days) and 10 points per sign-in,
/// at most 25 a day, expiring after 10 days.
pub fn sample_earn_rules() -> Vec<stickydb::ledger::EarnRule> {
    use stickydb::ledger::{EarnRule, RulePoints};
    vec![
        EarnRule {
            kind: "purchase".into(),
            points: RulePoints::PerAmount {
                points: 1,
                per_minor: 10,
            },
            daily_cap_points: None,
            expires_after_days: Some(30),
        },
        EarnRule {
            kind: "sign_in".into(),
            points: RulePoints::Fixed(10),
            daily_cap_points: Some(25),
            expires_after_days: Some(10),
        },
    ]
}

/// A copy of format fixture `name` (`tests/data/formats/<name>/store`, a
/// store an older build wrote: never opened in place) and the fixture's
/// directory, for its expected answers.
pub fn copy_fixture(name: &str) -> (TempDir, std::path::PathBuf) {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/formats")
        .join(name);
    let dir = tempfile::tempdir().expect("tempdir");
    for e in std::fs::read_dir(src.join("store")).expect("fixture store") {
        let e = e.expect("fixture entry");
        std::fs::copy(e.path(), dir.path().join(e.file_name())).expect("copy");
    }
    (dir, src)
}

pub fn open_temp() -> (TempDir, Db) {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::create(dir.path(), Options::default()).expect("create");
    (dir, db)
}

pub fn reopen(dir: &TempDir) -> Db {
    Db::open(dir.path(), Options::default()).expect("reopen")
}

pub fn assert_clean(db: &Db) {
    let report = db.verify().expect("verify runs");
    assert!(
        report.is_clean(),
        "verify found problems: {:#?}",
        report.problems
    );
}

/// Opens a store's RocksDB directly, to damage or inspect it. The merge
/// operators must be registered: replaying a WAL merge record into a column
/// family without one fails, and RocksDB drops the rest of the log.
pub fn raw_open(path: &std::path::Path) -> rocksdb::DB {
    use stickydb::store::merge;
    let names = rocksdb::DB::list_cf(&rocksdb::Options::default(), path).expect("list cfs");
    let cfs = names.into_iter().map(|n| {
        let mut o = rocksdb::Options::default();
        match n.as_str() {
            "tag_index" | "attr_index" => o.set_merge_operator(
                "stickydb.bitmap.v1",
                merge::bitmap_full_merge,
                merge::bitmap_partial_merge,
            ),
            "metrics" => o.set_merge_operator(
                "stickydb.metrics.v1",
                merge::metrics_full_merge,
                merge::metrics_partial_merge,
            ),
            _ => {}
        }
        rocksdb::ColumnFamilyDescriptor::new(n, o)
    });
    rocksdb::DB::open_cf_descriptors(&rocksdb::Options::default(), path, cfs).expect("raw open")
}
#[cfg(feature = "cli")]
pub mod cli;
pub mod cluster;
pub mod model;

/// Answers of many metrics over `from..=to`, with users named by their
/// external ids so that stores with different id assignment compare equal.
pub fn metric_snapshot(db: &Db, from: i32, to: i32) -> String {
    use stickydb::metrics::{Period, RetentionQuery, ReturnMode};
    let m = db.metrics();
    let name = |id: u32| db.user_name(id).unwrap().unwrap();
    let mut out = String::new();
    let mut push = |label: &str, v: String| {
        out.push_str(label);
        out.push_str(": ");
        out.push_str(&v);
        out.push('\n');
    };
    push(
        "active",
        format!("{:?}", m.active(None, from, to, None).unwrap()),
    );
    push(
        "active purchase",
        format!(
            "{:?}",
            m.active(Some(&stickydb::EventKind::Purchase), from, to, None)
                .unwrap()
        ),
    );
    push(
        "dist",
        format!(
            "{:?}",
            m.stickiness_distribution(None, from, to, None).unwrap()
        ),
    );
    for p in [Period::Day, Period::Week, Period::Month] {
        let mut q = RetentionQuery::new(p, from, to);
        push("retention", format!("{:?}", m.retention(&q, None).unwrap()));
        q.mode = ReturnMode::OnOrAfter;
        push(
            "retention oa",
            format!("{:?}", m.retention(&q, None).unwrap()),
        );
        push(
            "lifecycle",
            format!("{:?}", m.lifecycle(p, from, to, None).unwrap()),
        );
    }
    push("daily", format!("{:?}", m.daily(from, to).unwrap()));
    push("habits", format!("{:?}", m.habits(None).unwrap()));
    push("stages", format!("{:?}", m.stages(to, None).unwrap()));
    push("rfm", rfm_answer(&m.rfm(to, None).unwrap(), name));
    let mut users: Vec<String> = m
        .users(to, None)
        .unwrap()
        .into_iter()
        .map(|mut u| {
            let n = name(u.user_id);
            u.user_id = 0;
            format!("{n} {u:?}")
        })
        .collect();
    users.sort();
    push("users", format!("{users:?}"));
    push(
        "repurchase",
        format!("{:?}", m.repurchase_rate(from, to, None).unwrap()),
    );
    push(
        "events",
        format!("{} {}", db.event_count().unwrap(), db.user_count().unwrap()),
    );
    out
}

/// An RFM report printed with users named (sorted by name), then its
/// segment counts.
pub fn rfm_answer(rfm: &stickydb::metrics::RfmReport, name: impl Fn(u32) -> String) -> String {
    let mut rows: Vec<String> = rfm
        .users
        .iter()
        .map(|r| {
            let v = (
                r.recency_days,
                r.orders,
                r.net_spend_minor,
                r.r_score,
                r.f_score,
                r.m_score,
                r.segment,
            );
            format!("{} {v:?}", name(r.user_id))
        })
        .collect();
    rows.sort();
    format!("{rows:?} {:?}", rfm.segments)
}

/// Asserts two multi-line answer snapshots are equal, naming the first
/// differing line and showing only the neighbourhood of the difference.
#[allow(dead_code)]
pub fn assert_same_answers(a: &str, b: &str, context: &str) {
    for (x, y) in a.lines().zip(b.lines()) {
        if x != y {
            let at = x.bytes().zip(y.bytes()).take_while(|(p, q)| p == q).count();
            let from = at.saturating_sub(200);
            let cut = |s: &str| s.get(from..(at + 300).min(s.len())).unwrap_or(s).to_owned();
            panic!(
                "{context}: answer {:?} differs\n left: …{}…\nright: …{}…",
                x.split(':').next().unwrap_or(""),
                cut(x),
                cut(y)
            );
        }
    }
    assert_eq!(
        a.lines().count(),
        b.lines().count(),
        "{context}: answer count"
    );
}
