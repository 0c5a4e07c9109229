//! The report in a real browser (issue 17): headless Chromium (Debian's
//! package; `scripts/dev test` installs it when missing) loads the report of
//! a demo store from disk with the network off; the page must finish
//! drawing without a script or console error, and every chart must have
//! drawn elements (each chart's container says how many, from Chart.js's
//! own element lists; the retention table counts its cells).

mod common;

use std::path::PathBuf;
use std::process::Command;

fn chromium() -> PathBuf {
    if let Ok(p) = std::env::var("STICKYDB_CHROMIUM") {
        return PathBuf::from(p);
    }
    for p in ["/usr/bin/chromium", "/usr/bin/chromium-browser"] {
        if std::path::Path::new(p).exists() {
            return PathBuf::from(p);
        }
    }
    panic!("Chromium is not installed: `bash scripts/dev test` installs it (apt-get install chromium), or set STICKYDB_CHROMIUM");
}

#[test]
fn the_report_draws_every_chart_in_chromium() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("demo");
    let report = tmp.path().join("report.html");
    common::cli::ok(&common::cli::stickydb(
        &db,
        &[
            "demo",
            "--users",
            "150",
            "--days",
            "45",
            "--report",
            report.to_str().unwrap(),
        ],
    ));
    let out = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            // nothing may be fetched: the page is one offline file
            "--proxy-server=127.0.0.1:9",
            "--virtual-time-budget=10000",
            "--dump-dom",
        ])
        .arg(format!(
            "--user-data-dir={}",
            tmp.path().join("profile").display()
        ))
        .arg(format!("file://{}", report.display()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(
        dom.contains("data-status=\"drawn\""),
        "the page did not finish drawing"
    );
    assert!(
        !dom.contains("data-errors="),
        "script errors: {}",
        dom.split("data-errors=")
            .nth(1)
            .unwrap_or("")
            .chars()
            .take(400)
            .collect::<String>()
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("Uncaught"), "{stderr}");
    let mut charts = Vec::new();
    for part in dom.split("data-chart=\"").skip(1) {
        let name = part.split('"').next().unwrap().to_owned();
        let drawn: u64 = part
            .split("data-drawn=\"")
            .nth(1)
            .and_then(|t| t.split('"').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        assert!(drawn > 0, "chart {name} drew nothing");
        charts.push(name);
    }
    for want in [
        "active",
        "stickiness",
        "retention",
        "lifecycle",
        "transitions",
        "stages",
        "rfm",
        "gmv",
        "tiers",
        "sharers",
        "coupons",
        "groups",
        "experiment-0",
        "experiment-1",
        "breakdown",
        "revenue-segments",
        "ltv",
        "sessions",
    ] {
        assert!(
            charts.iter().any(|c| c == want),
            "no {want} chart in {charts:?}"
        );
    }
    // The header names the range and the store's offset.
    assert!(
        dom.contains("local days at UTC+00:00"),
        "no offset in the header"
    );
}
