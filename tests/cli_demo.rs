//! The real `stickydb` binary: demo, stats, verify, user, segment, init.

mod common;

use stickydb::{Db, Options, Segment};

use common::cli::run as stickydb;

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[test]
fn demo_then_queries_agree_with_the_library() {
    let dir = tempfile::tempdir().unwrap();
    let db_dir = dir.path().join("store");
    let db_arg = db_dir.to_str().unwrap();
    let report = dir.path().join("report.html");
    let out = stickydb(&[
        "--db",
        db_arg,
        "demo",
        "--users",
        "60",
        "--days",
        "10",
        "--report",
        report.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "demo failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("verify: 0 problem(s)"), "{stdout}");
    assert!(stdout.contains("loyalty tiers"), "{stdout}");
    // The user shown as loyal is loyal by the data: a buyer active lately,
    // not churned; the closing lines name the next commands.
    let shown = stdout
        .split("the most loyal buyer")
        .nth(1)
        .expect("a loyal buyer is shown");
    let stage = shown
        .lines()
        .find(|l| l.trim_start().starts_with("stage "))
        .expect("its stage");
    assert!(!stage.contains("churned"), "{stage}");
    assert!(
        shown.contains("purchases") && !shown.contains("purchases    0"),
        "{shown}"
    );
    let next = stdout.split("next, try:").nth(1).expect("next commands");
    assert!(
        next.contains("metrics active --from") && next.contains(" user "),
        "{next}"
    );
    let html = std::fs::read_to_string(&report).unwrap();
    assert!(html.contains("Chart.js v4.6.1") && html.contains("stickydb-data"));
    // sharing and group buys are simulated, summarised and charted, and
    // the report's data is what the CLI answers
    assert!(stdout.contains("social commerce"), "{stdout}");
    assert!(stdout.contains("group buys:"), "{stdout}");
    let data = html
        .split("id=\"stickydb-data\">")
        .nth(1)
        .and_then(|t| t.split("</script>").next())
        .unwrap();
    let data: serde_json::Value = serde_json::from_str(&data.replace("<\\/", "</")).unwrap();
    let (from, to) = (data["from"].as_str().unwrap(), data["to"].as_str().unwrap());
    let out = stickydb(&[
        "--db", db_arg, "--json", "sharers", "--from", from, "--to", to, "--by", "signups",
    ]);
    let sharers: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(data["top_sharers"], sharers["rows"]);
    assert!(
        !sharers["rows"].as_array().unwrap().is_empty(),
        "somebody shared"
    );
    // The charts of what users did are the CLI's answers.
    let json = |args: &[&str]| -> serde_json::Value {
        let mut all = vec!["--db", db_arg, "--json"];
        all.extend_from_slice(args);
        let out = stickydb(&all);
        assert!(out.status.success(), "{args:?}");
        serde_json::from_slice(&out.stdout).unwrap()
    };
    // the coupons chart: each template's counts as `coupons stats` says
    let coupons = data["coupons"].as_array().unwrap();
    assert_eq!(coupons.len(), 2, "the demo's two templates");
    for c in coupons {
        let t = c["template"].as_str().unwrap();
        assert_eq!(c, &json(&["coupons", "stats", "--template", t]));
        assert!(c["redeemed"].as_u64().unwrap() > 0, "{c}");
    }
    let what = &data["what"];
    let pick = |rows: &serde_json::Value, keys: &[&str]| -> Vec<Vec<serde_json::Value>> {
        rows.as_array()
            .unwrap()
            .iter()
            .map(|r| keys.iter().map(|k| r[*k].clone()).collect())
            .collect()
    };
    let sessions = json(&["sessions", "--from", from, "--to", to]);
    let keys = [
        "day",
        "sessions",
        "bounce_rate",
        "mean_duration_ms",
        "mean_events",
    ];
    assert_eq!(
        pick(&what["sessions"], &keys),
        pick(&sessions["rows"], &keys)
    );
    assert!(sessions["rows"][3]["sessions"].as_u64().unwrap() > 0);
    let b = json(&[
        "breakdown",
        "--by",
        "channel",
        "--from",
        from,
        "--to",
        to,
        "--top",
        "5",
    ]);
    let keys = ["day", "value", "users"];
    assert_eq!(
        pick(&what["breakdown"]["rows"], &keys),
        pick(&b["rows"], &keys)
    );
    let first = &what["breakdown"]["revenue_by_first_touch"][0];
    let segment = format!("first:channel={}", first["value"].as_str().unwrap());
    let r = json(&["revenue", "--from", from, "--to", to, "--segment", &segment]);
    let keys = ["day", "net_minor"];
    assert_eq!(pick(&first["rows"], &keys), pick(&r["rows"], &keys));
    let ltv = json(&[
        "ltv",
        "--period",
        "week",
        "--from",
        from,
        "--to",
        to,
        "--max-offset",
        "12",
    ]);
    let keys = ["cohort", "size", "cumulative_net_minor"];
    assert_eq!(pick(&what["ltv"], &keys), pick(&ltv["cohorts"], &keys));
    assert!(html.contains("Group buys by opening day"));

    let out = stickydb(&["--db", db_arg, "--json", "stats"]);
    assert!(out.status.success());
    let stats: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let out = stickydb(&["--db", db_arg, "--json", "segment", "tag:vip or tag:exp:a"]);
    assert!(out.status.success());
    let seg: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(stickydb(&["--db", db_arg, "verify"]).status.success());
    assert!(
        stdout.contains("DAU"),
        "the demo shows engagement: {stdout}"
    );
    let out = stickydb(&["--db", db_arg, "--json", "rebuild-aggregates"]);
    assert!(out.status.success());
    let rebuilt: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rebuilt["verify_problems"].as_u64(), Some(0));
    assert!(stickydb(&["--db", db_arg, "user", "user-0000001"])
        .status
        .success());

    let db = Db::open(&db_dir, Options::default().create_if_missing(true)).unwrap();
    assert_eq!(stats["users"].as_u64().unwrap(), 60);
    assert_eq!(stats["events"].as_u64().unwrap(), db.event_count().unwrap());
    assert_eq!(
        rebuilt["events_replayed"].as_u64().unwrap(),
        db.event_count().unwrap()
    );
    let want = db
        .segment(&Segment::parse("tag:vip or tag:exp:a").unwrap(), now_ms())
        .unwrap();
    assert_eq!(seg["count"].as_u64().unwrap(), want.len());
}

#[test]
fn init_persists_the_offset_and_bad_arguments_fail() {
    let dir = tempfile::tempdir().unwrap();
    let db_dir = dir.path().join("s");
    let db_arg = db_dir.to_str().unwrap();
    assert!(
        stickydb(&["--db", db_arg, "init", "--utc-offset", "+08:00"])
            .status
            .success()
    );
    let db = Db::open(&db_dir, Options::default().create_if_missing(true)).unwrap();
    assert_eq!(db.settings().utc_offset_minutes, 480);
    drop(db);
    let out = stickydb(&["--db", db_arg, "init", "--utc-offset", "-05:00"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("store was created with UTC offset 480 min; reopened with -300 min"));
    let out = stickydb(&["--db", db_arg, "init", "--utc-offset", "8"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("invalid utc_offset: cannot be parsed: \"8\" is not ±HH:MM"));
    let out = stickydb(&["--db", db_arg, "segment", "tag:vip and"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("invalid segment: cannot be parsed: expression ends early at token 3"));
    let out = stickydb(&[
        "--db",
        dir.path().join("missing").to_str().unwrap(),
        "stats",
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("error: no stickydb store at"), "{err}");
    assert!(err.contains("hint: create it with `stickydb --db"), "{err}");
}
