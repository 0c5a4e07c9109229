//! Every query command of the real binary, `--json`, against the library's
//! answer on the same store: the CLI adds formatting only. Also the HTML
//! report: its embedded chart data equal the metrics API's answers.

mod common;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use stickydb::metrics::{Period, RetentionQuery, ReturnMode};
use stickydb::time::format_day;
use stickydb::{Db, EventKind, Options, PointsOp};

use common::cli::stickydb;

fn json_of(db: &Path, args: &[&str]) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let out = stickydb(db, &all);
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON on stdout")
}

/// A store filled by the CLI from the fixtures, with a loyalty programme.
fn store() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s");
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/events.jsonl");
    {
        let lib = Db::open(&db, Options::default().create_if_missing(true)).unwrap();
        let mut s = lib.ledger_settings();
        s.tiers.levels = vec![stickydb::ledger::TierLevel {
            name: "gold".into(),
            min_growth: 100,
        }];
        s.rules = vec![stickydb::ledger::EarnRule {
            kind: "purchase".into(),
            points: stickydb::ledger::RulePoints::PerAmount {
                points: 1,
                per_minor: 100,
            },
            daily_cap_points: None,
            expires_after_days: Some(30),
        }];
        lib.set_ledger_settings(s).unwrap();
    }
    let out = stickydb(&db, &["import", fixture.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (dir, db)
}

const FROM: &str = "2024-03-01";
const TO: &str = "2024-03-21";

fn days(db: &Db) -> (i32, i32) {
    let _ = db;
    (
        stickydb::time::parse_day(FROM).unwrap(),
        stickydb::time::parse_day(TO).unwrap(),
    )
}

fn r4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

#[test]
fn every_query_equals_the_library() {
    let (_d, path) = store();
    let cli = |args: &[&str]| json_of(&path, args);
    let active = cli(&["metrics", "active", "--from", FROM, "--to", TO]);
    let active_view = cli(&[
        "metrics", "active", "--from", FROM, "--to", TO, "--kind", "view",
    ]);
    let daily = cli(&["metrics", "daily", "--from", FROM, "--to", TO]);
    let retention = cli(&[
        "retention",
        "--period",
        "week",
        "--from",
        FROM,
        "--to",
        TO,
        "--max-offset",
        "2",
        "--return-kind",
        "purchase",
        "--mode",
        "on-or-after",
    ]);
    let lifecycle = cli(&["lifecycle", "--period", "week", "--from", FROM, "--to", TO]);
    let stages = cli(&["stages", "--as-of", TO]);
    let rfm = cli(&["rfm", "--as-of", TO, "--list", "3"]);
    let funnel = cli(&[
        "funnel",
        "--steps",
        "view,add_to_cart,purchase",
        "--window",
        "1d",
        "--from",
        FROM,
        "--to",
        TO,
    ]);
    let dist = cli(&["stickiness-dist", "--from", FROM, "--to", TO]);
    let habits = cli(&["habits"]);
    let habits_u = cli(&["habits", "--user", "u01"]);
    let seg = cli(&[
        "metrics",
        "active",
        "--from",
        FROM,
        "--to",
        TO,
        "--segment",
        "tier:gold",
    ]);
    let count = cli(&["segment", "did:purchase and tier:gold", "--count"]);
    // time-relative atoms are evaluated at the end of the asked day
    let recent = cli(&["segment", "active_within:3d", "--as-of", TO, "--count"]);
    let recent_active = cli(&[
        "metrics",
        "active",
        "--from",
        TO,
        "--to",
        TO,
        "--segment",
        "active_within:3d",
    ]);

    let db = Db::open(&path, Options::default().create_if_missing(true)).unwrap();
    let (from, to) = days(&db);
    let m = db.metrics();
    let rows = |v: Vec<stickydb::metrics::ActiveRow>| {
        json!({"rows": v.iter().map(|r| json!({"day": format_day(r.day), "dau": r.dau,
            "wau": r.wau, "mau": r.mau, "stickiness": r4(r.stickiness)})).collect::<Vec<_>>()})
    };
    assert_eq!(active, rows(m.active(None, from, to, None).unwrap()));
    assert!(
        active["rows"][5]["dau"].as_u64().unwrap() > 0,
        "the fixture is not empty"
    );
    assert_eq!(
        active_view,
        rows(
            m.active(Some(&EventKind::from_name("view")), from, to, None)
                .unwrap()
        )
    );
    let gold = db.users_in_tier("gold").unwrap();
    assert!(!gold.is_empty());
    assert_eq!(seg, rows(m.active(None, from, to, Some(&gold)).unwrap()));
    let purchasers = m.ever_did(&EventKind::Purchase).unwrap();
    assert_eq!(count["count"].as_u64(), Some((&purchasers & &gold).len()));
    let end_of_to = (i64::from(to) + 1) * 86_400_000 - 1; // UTC store
    let within = db
        .segment(
            &stickydb::Segment::parse("active_within:3d").unwrap(),
            end_of_to,
        )
        .unwrap();
    assert!(!within.is_empty());
    assert_eq!(recent["count"].as_u64(), Some(within.len()));
    assert_eq!(
        recent_active,
        rows(m.active(None, to, to, Some(&within)).unwrap())
    );

    let lib_daily = m.daily(from, to).unwrap();
    assert_eq!(daily["rows"].as_array().unwrap().len(), lib_daily.len());
    for (c, l) in daily["rows"].as_array().unwrap().iter().zip(&lib_daily) {
        assert_eq!(c["day"], format_day(l.day));
        assert_eq!(c["orders"].as_u64(), Some(l.orders));
        assert_eq!(c["gmv"].as_i64(), Some(l.gmv_minor));
        assert_eq!(c["sessions"].as_u64(), Some(l.sessions));
        assert_eq!(c["new_users"].as_u64(), Some(l.new_users));
        assert_eq!(c["events_by_kind"], json!(l.events_by_kind));
    }

    let mut q = RetentionQuery::new(Period::Week, from, to);
    q.max_offset = 2;
    q.return_kind = Some(EventKind::Purchase);
    q.mode = ReturnMode::OnOrAfter;
    let lib = m.retention(&q, None).unwrap();
    assert_eq!(retention["period"], "week");
    assert_eq!(retention["mode"], "on-or-after");
    let cohorts: Vec<Value> = lib
        .cohorts
        .iter()
        .map(|c| json!({"cohort": format_day(c.cohort), "size": c.size, "counts": c.counts}))
        .collect();
    assert_eq!(retention["cohorts"], json!(cohorts));

    let lib = m.lifecycle(Period::Week, from, to, None).unwrap();
    let want: Vec<Value> = lib
        .iter()
        .map(|r| {
            json!({"period": format_day(r.period), "new": r.new, "returning": r.returning,
            "resurrecting": r.resurrecting, "dormant": r.dormant})
        })
        .collect();
    assert_eq!(lifecycle["rows"], json!(want));
    assert_eq!(stages["stages"], json!(m.stages(to, None).unwrap()));

    let lib = m.rfm(to, None).unwrap();
    assert_eq!(rfm["segments"], json!(lib.segments));
    assert_eq!(rfm["purchasers"].as_u64(), Some(lib.users.len() as u64));
    assert_eq!(
        rfm["users"][0]["user"],
        json!(db.user_name(lib.users[0].user_id).unwrap())
    );
    assert_eq!(rfm["users"][0]["m"], json!(lib.users[0].m_score));

    let steps: Vec<EventKind> = ["view", "add_to_cart", "purchase"]
        .iter()
        .map(|s| EventKind::from_name(s))
        .collect();
    assert_eq!(
        funnel["counts"],
        json!(m.funnel(&steps, 86_400_000, from, to, None).unwrap())
    );
    assert_eq!(
        dist["rows"],
        json!(m.stickiness_distribution(None, from, to, None).unwrap())
    );
    let h = m.habits(None).unwrap();
    assert_eq!(
        (habits["hours"].clone(), habits["weekdays"].clone()),
        (json!(h.hours), json!(h.weekdays))
    );
    let u = m
        .user(
            db.user_id("u01").unwrap().unwrap(),
            stickydb::time::parse_day("2030-01-01").unwrap(),
        )
        .unwrap()
        .unwrap();
    assert_eq!(habits_u["hours"], json!(u.hours));
}

#[test]
fn users_export_matches_the_library() {
    let (dir, path) = store();
    let out_csv = dir.path().join("users.csv");
    let out = stickydb(
        &path,
        &[
            "users",
            "export",
            "--as-of",
            TO,
            "--out",
            out_csv.to_str().unwrap(),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = stickydb(
        &path,
        &["users", "export", "--as-of", TO, "--format", "jsonl"],
    );
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();

    let db = Db::open(&path, Options::default().create_if_missing(true)).unwrap();
    assert_eq!(lines.len() as u64, db.user_count().unwrap());
    let to = stickydb::time::parse_day(TO).unwrap();
    let m = db.metrics();
    let rfm = m.rfm(to, None).unwrap();
    for line in &lines {
        let name = line["user"].as_str().unwrap();
        let id = db.user_id(name).unwrap().unwrap();
        let u = m.user(id, to).unwrap().unwrap();
        assert_eq!(line["active_days"].as_u64(), Some(u.active_days), "{name}");
        assert_eq!(line["purchase_count"].as_u64(), Some(u.purchase_count));
        assert_eq!(
            line["total_spend_minor"].as_i64(),
            Some(u.total_spend_minor)
        );
        assert_eq!(
            line["first_seen_day"],
            json!(u.first_seen_day.map(format_day))
        );
        assert_eq!(line["stage"], json!(u.stage));
        assert_eq!(line["frequency"], json!(u.clv.map(|c| c.frequency)));
        assert_eq!(line["T"], json!(u.clv.map(|c| c.t)));
        let r = rfm.users.iter().find(|r| r.user_id == id);
        assert_eq!(line["rfm_segment"], json!(r.map(|r| r.segment)));
        let a = db.account(name).unwrap();
        assert_eq!(
            line["points_balance"].as_i64(),
            Some(a.as_ref().map_or(0, |a| a.balance))
        );
        assert_eq!(line["tier"], json!(a.and_then(|a| a.tier)));
    }
    // the CSV has the same rows and the documented header
    let text = std::fs::read_to_string(&out_csv).unwrap();
    let header = text.lines().next().unwrap();
    assert_eq!(
        header,
        "user,first_seen_day,last_seen_day,active_days,purchase_count,purchase_days,\
         total_spend_minor,first_purchase_day,last_purchase_day,frequency,recency,T,\
         monetary_value,stage,r_score,f_score,m_score,rfm_segment,tier,points_balance"
    );
    assert_eq!(text.lines().count(), lines.len() + 1);
}

#[test]
fn points_commands_drive_the_ledger() {
    let (_d, path) = store();
    let cli = |args: &[&str]| json_of(&path, args);
    let t = "2024-03-22T10:00:00Z";
    let e = cli(&[
        "points", "earn", "zed", "--txn", "w1", "--points", "500", "--at", t,
    ]);
    assert_eq!(e["balance"], 500);
    let h = cli(&[
        "points",
        "hold",
        "zed",
        "--txn",
        "h1",
        "--points",
        "200",
        "--timeout",
        "15m",
        "--at",
        t,
    ]);
    assert_eq!(h["available"], 300);
    let c = cli(&[
        "points", "capture", "zed", "--txn", "c1", "--hold", "h1", "--at", t,
    ]);
    assert_eq!(c["balance"], 300);
    let again = cli(&[
        "points", "capture", "zed", "--txn", "c1", "--hold", "h1", "--at", t,
    ]);
    assert_eq!(again["replayed"], true);
    let r = cli(&[
        "points", "reverse", "zed", "--txn", "x1", "--target", "c1", "--at", t,
    ]);
    assert_eq!(r["balance"], 500);
    let a = cli(&[
        "points",
        "adjust",
        "zed",
        "--txn",
        "a1",
        "--points",
        "-50",
        "--reason",
        "goodwill fix",
        "--at",
        t,
    ]);
    assert_eq!(a["balance"], 450);
    let out = stickydb(
        &path,
        &[
            "points", "redeem", "zed", "--txn", "r1", "--points", "451", "--at", t,
        ],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("insufficient points"));
    let hist = cli(&["points", "history", "zed"]);
    assert_eq!(hist["account"]["balance"], 450);
    assert_eq!(hist["entries"].as_array().unwrap().len(), 5);
    let x = cli(&["points", "expire", "--now", "2030-01-01T00:00:00Z"]);
    assert!(
        x["lots_expired"].as_u64().unwrap() > 0,
        "rule credits expire after 30 days"
    );
    let db = Db::open(&path, Options::default().create_if_missing(true)).unwrap();
    assert_eq!(db.account("zed").unwrap().unwrap().balance, 450);
    // the CLI's transaction ids are the library's: same payload replays,
    // another payload conflicts
    assert!(
        db.points("zed", "w1", 0, &PointsOp::earn(500, ""))
            .unwrap()
            .replayed
    );
    assert!(matches!(
        db.points("zed", "w1", 0, &PointsOp::earn(501, "")),
        Err(stickydb::Error::Ledger(
            stickydb::LedgerError::TxnConflict { .. }
        ))
    ));
    common::assert_clean(&db);
}

#[test]
fn the_report_embeds_the_metrics_it_draws() {
    let (dir, path) = store();
    {
        // an experiment over the fixture's users
        let db = Db::open(&path, Options::default().create_if_missing(true)).unwrap();
        let (from, _) = days(&db);
        let at = stickydb::time::local_midnight_ms(from, db.settings().utc_offset_minutes);
        let exposures: Vec<stickydb::Event> = db
            .all_users()
            .unwrap()
            .iter()
            .map(|id| {
                let v = if id % 2 == 0 { "control" } else { "b" };
                stickydb::Event::new(
                    db.user_name(id).unwrap().unwrap(),
                    "exposure",
                    at + i64::from(id),
                )
                .with_property("experiment", stickydb::PropValue::Str("checkout".into()))
                .with_property("variant", stickydb::PropValue::Str(v.into()))
            })
            .collect();
        db.record_batch(&exposures).unwrap();
    }
    let out_html = dir.path().join("r.html");
    let out = stickydb(
        &path,
        &[
            "report",
            "--from",
            FROM,
            "--to",
            TO,
            "--out",
            out_html.to_str().unwrap(),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let html = std::fs::read_to_string(&out_html).unwrap();
    // One offline file: Chart.js inlined, nothing loaded from anywhere (the
    // only addresses are in Chart.js's licence banner and a comment).
    assert!(html.contains("Chart.js v4.6.1"));
    assert!(!html.contains(" src=") && !html.contains("<link") && !html.contains("url("));
    assert!(!html.contains("http://"));
    let start = html.find("id=\"stickydb-data\">").unwrap() + "id=\"stickydb-data\">".len();
    let end = start + html[start..].find("</script>").unwrap();
    let data: Value = serde_json::from_str(&html[start..end].replace("<\\/", "</")).unwrap();

    let db = Db::open(&path, Options::default().create_if_missing(true)).unwrap();
    let (from, to) = days(&db);
    // the experiment charts: each comparison as the library answers it
    let charts = data["experiments"].as_array().unwrap();
    assert_eq!(charts.len(), 2);
    for (c, metric) in charts.iter().zip(["conversion:purchase:7d", "retention:7"]) {
        let q = stickydb::experiments::ExperimentQuery::new(
            "checkout",
            stickydb::experiments::MetricSpec::parse(metric).unwrap(),
        );
        let want = db.experiments().report(&q, None, to).unwrap();
        let mut got = c.clone();
        got.as_object_mut().unwrap().remove("label");
        assert_eq!(got, serde_json::to_value(&want).unwrap(), "{metric}");
    }
    let m = db.metrics();
    let active = m.active(None, from, to, None).unwrap();
    let chart = data["active"].as_array().unwrap();
    assert_eq!(chart.len(), active.len());
    for (c, a) in chart.iter().zip(&active) {
        assert_eq!(c["day"], format_day(a.day));
        assert_eq!(
            (c["dau"].as_u64(), c["wau"].as_u64(), c["mau"].as_u64()),
            (Some(a.dau), Some(a.wau), Some(a.mau))
        );
        assert_eq!(c["stickiness"].as_f64(), Some(r4(a.stickiness)));
    }
    let ret = m
        .retention(&RetentionQuery::new(Period::Week, from, to), None)
        .unwrap();
    // zip stops at the shorter side: lengths first, or a short chart passes
    assert_eq!(
        data["retention"]["cohorts"].as_array().unwrap().len(),
        ret.cohorts.len()
    );
    for (c, l) in data["retention"]["cohorts"]
        .as_array()
        .unwrap()
        .iter()
        .zip(&ret.cohorts)
    {
        assert_eq!(
            (c["size"].as_u64(), c["counts"].clone()),
            (Some(l.size), json!(l.counts))
        );
    }
    let life = m.lifecycle(Period::Week, from, to, None).unwrap();
    assert_eq!(data["lifecycle"].as_array().unwrap().len(), life.len());
    for (c, l) in data["lifecycle"].as_array().unwrap().iter().zip(&life) {
        assert_eq!(c["dormant"].as_i64(), Some(l.dormant));
        assert_eq!(c["new"].as_u64(), Some(l.new));
    }
    assert_eq!(data["stages"], json!(m.stages(to, None).unwrap()));
    assert_eq!(
        data["rfm_segments"],
        json!(m.rfm(to, None).unwrap().segments)
    );
    let daily = m.daily(from, to).unwrap();
    assert_eq!(data["daily"].as_array().unwrap().len(), daily.len());
    for (c, l) in data["daily"].as_array().unwrap().iter().zip(&daily) {
        assert_eq!(
            (c["gmv"].as_i64(), c["orders"].as_u64()),
            (Some(l.gmv_minor), Some(l.orders))
        );
    }
    assert_eq!(
        data["tiers"]["gold"].as_u64(),
        Some(db.users_in_tier("gold").unwrap().len())
    );
    // Tiers over time end where the tier sets are (no change after the
    // range here), and each day counts the users whose history puts them
    // in the tier then.
    let by_day = data["tiers_by_day"].as_array().unwrap();
    assert_eq!(by_day.len(), (to - from + 1) as usize);
    let last = by_day.last().unwrap();
    for level in db.ledger_settings().tiers.levels {
        let now = db.users_in_tier(&level.name).unwrap().len();
        assert_eq!(last[&level.name].as_u64(), Some(now), "{}", level.name);
    }
    assert!(
        by_day.iter().any(|r| db
            .ledger_settings()
            .tiers
            .levels
            .iter()
            .any(|l| r[&l.name].as_u64() > Some(0))),
        "some user holds a tier"
    );
    let mid = &by_day[by_day.len() / 2];
    let mid_day = stickydb::time::parse_day(mid["day"].as_str().unwrap()).unwrap();
    let mid_end = stickydb::time::local_midnight_ms(mid_day + 1, db.settings().utc_offset_minutes);
    for level in db.ledger_settings().tiers.levels {
        let mut want = 0u64;
        for id in db.all_users().unwrap() {
            let name = db.user_name(id).unwrap().unwrap();
            // newest first: the first change before the day's end decides
            let tier = db
                .tier_history(&name)
                .unwrap()
                .into_iter()
                .find(|c| c.at_ms < mid_end)
                .and_then(|c| c.to);
            want += u64::from(tier.as_deref() == Some(level.name.as_str()));
        }
        assert_eq!(
            mid[&level.name].as_u64(),
            Some(want),
            "{} on {}",
            level.name,
            mid["day"]
        );
    }
}
