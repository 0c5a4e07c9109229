//! `stickydb report`: one self-contained, offline HTML file — the data as
//! JSON (`<script type="application/json" id="stickydb-data">`, built by
//! the same calls as the CLI's `--json` answers, so a test checks the
//! charts' data against the metrics API), Chart.js (vendored in
//! `vendor/chart.js`, MIT) and the page's script (`report.js`) inlined: real
//! axes and ticks, tooltips with exact values, legends above the data, a
//! retention table with each cell's share and the cohort sizes, money in
//! currency units, the range and the store's UTC offset in the header.
//! `tests/report_browser.rs` loads it in headless Chromium.

use std::fmt::Write as _;

use serde_json::{json, Value};

use crate::metrics::{Period, RetentionQuery};
use crate::{Db, Error};

use std::path::PathBuf;

use super::{open_existing, query, Cli, DayRange};

/// The data of every chart.
pub fn data(db: &Db, from: i32, to: i32) -> Result<Value, Error> {
    let retention = RetentionQuery::new(Period::Week, from, to);
    let coupons: Vec<crate::CouponStats> = db
        .coupon_templates()?
        .iter()
        .map(|t| db.coupon_stats(&t.id))
        .collect::<Result<_, _>>()?;
    let mut tiers = serde_json::Map::new();
    for level in db.ledger_settings().tiers.levels {
        let n = db.users_in_tier(&level.name)?.len();
        tiers.insert(level.name, json!(n));
    }
    Ok(json!({
        "from": crate::time::format_day(from),
        "to": crate::time::format_day(to),
        "active": query::active(db, from, to, None, None)?["rows"],
        "retention": query::retention(db, &retention, None)?,
        "lifecycle": query::lifecycle(db, Period::Week, from, to, None)?["rows"],
        "stages": query::stages(db, to, None)?["stages"],
        "rfm_segments": query::rfm(db, to, None, None)?["segments"],
        "daily": query::daily(db, from, to)?["rows"],
        "tiers": tiers,
        "tier_basis": db.ledger_settings().growth().tier_basis.name(),
        "coupons": coupons,
        "top_sharers": super::social::sharers(db, from, to, 10, super::RankArg::Signups, None)?["rows"],
        "groups": super::social::groups(db, from, to, groups_as_of(db, to), None)?["rows"],
        "stage_transitions": super::feed::transitions(db, from, to, None)?,
        "tiers_by_day": tiers_by_day(db, from, to)?,
        "rule_tags_by_day": rule_tags_by_day(db, from, to)?,
        "utc_offset": utc_offset(db.settings().utc_offset_minutes),
        "experiments": super::experiments::report_data(db, to)?,
        "what": super::report_dims::data(db, from, to)?,
    }))
}

/// Users in each tier at the end of each day of `from..=to`, from every
/// user's tier changes: a row per day, a column per tier. One read of each
/// user's history (the report is occasional; a tier index by day would be
/// the way for stores of many millions).
fn tiers_by_day(db: &Db, from: i32, to: i32) -> Result<Value, Error> {
    let levels: Vec<String> = db
        .ledger_settings()
        .tiers
        .levels
        .into_iter()
        .map(|l| l.name)
        .collect();
    if levels.is_empty() || to < from {
        return Ok(json!([]));
    }
    let days = usize::try_from(to - from + 1).unwrap_or(0);
    // per tier: users at the start of the range, and each day's change
    let mut base = vec![0i64; levels.len()];
    let mut delta = vec![vec![0i64; days]; levels.len()];
    let at = |name: &Option<String>| {
        name.as_ref()
            .and_then(|n| levels.iter().position(|l| l == n))
    };
    for id in db.all_users()? {
        let Some(name) = db.user_name(id)? else {
            continue;
        };
        for change in db.tier_history(&name)? {
            let day = db.local_day(change.at_ms);
            if day > to {
                continue;
            }
            for (tier, sign) in [(at(&change.from), -1), (at(&change.to), 1)] {
                let Some(t) = tier else { continue };
                match usize::try_from(day - from) {
                    Ok(i) => delta[t][i] += sign,
                    Err(_) => base[t] += sign,
                }
            }
        }
    }
    let rows = (0..days)
        .zip(from..)
        .map(|(i, day)| {
            let mut row = serde_json::Map::new();
            row.insert("day".into(), json!(crate::time::format_day(day)));
            for ((level, count), changes) in levels.iter().zip(&mut base).zip(&delta) {
                *count += changes[i];
                row.insert(level.clone(), json!(*count));
            }
            Value::Object(row)
        })
        .collect();
    Ok(Value::Array(rows))
}

/// Users holding each rule tag at the end of each day: a row per day, a
/// column per tag held on any day (docs/features.md).
fn rule_tags_by_day(db: &Db, from: i32, to: i32) -> Result<Value, Error> {
    if to < from {
        return Ok(json!([]));
    }
    let rows = db.rule_tags_by_day(from, to)?;
    let tags: std::collections::BTreeSet<&String> =
        rows.iter().flat_map(|(_, c)| c.keys()).collect();
    let out = rows
        .iter()
        .map(|(day, counts)| {
            let mut row = serde_json::Map::new();
            row.insert("day".into(), json!(crate::time::format_day(*day)));
            for tag in &tags {
                row.insert(
                    (*tag).clone(),
                    json!(counts.get(*tag).copied().unwrap_or(0)),
                );
            }
            Value::Object(row)
        })
        .collect();
    Ok(Value::Array(out))
}

/// `±HH:MM`.
fn utc_offset(minutes: i32) -> String {
    let sign = if minutes < 0 { '-' } else { '+' };
    let m = minutes.unsigned_abs();
    format!("{sign}{:02}:{:02}", m / 60, m % 60)
}

/// Group deadlines in the report are judged at the store's clock, else at
/// the end of the range's last day.
fn groups_as_of(db: &Db, to: i32) -> i64 {
    db.clock_ms().unwrap_or_else(|| {
        crate::time::local_midnight_ms(to.saturating_add(1), db.settings().utc_offset_minutes)
    })
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Chart.js 4.6.1, vendored (vendor/chart.js, MIT License).
const CHART_JS: &str = include_str!("../../vendor/chart.js/chart.umd.min.js");
/// The page's own script: draws every chart from the embedded data.
const PAGE_JS: &str = include_str!("report.js");
const STYLE: &str =
    "body{font-family:system-ui,sans-serif;margin:2em auto;max-width:960px;color:#222}\
h1{font-size:20px;margin-bottom:0}#range{color:#555;margin-top:4px}\
h2{font-size:15px;margin:2.2em 0 .6em}section.chart canvas{max-height:320px}\
table.heatmap{border-collapse:collapse;font-size:12px}\
table.heatmap th,table.heatmap td{padding:4px 8px;text-align:right;border:1px solid #fff}\
footer{margin-top:3em;color:#777;font-size:12px}";

/// The whole page: one offline file — the data as JSON, Chart.js and the
/// page's script inlined.
pub fn html(data: &Value) -> String {
    // `</` cannot end a script early: escaped in the JSON and checked in
    // the scripts (Chart.js's minified source holds none).
    let text = serde_json::to_string(data)
        .unwrap_or_default()
        .replace("</", "<\\/");
    let script = |js: &str| js.replace("</script", "<\\/script");
    let mut page = String::with_capacity(CHART_JS.len() + text.len() + 16_384);
    page.push_str(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>stickydb report</title><style>",
    );
    page.push_str(STYLE);
    let _ = write!(
        page,
        "</style></head><body><h1>stickydb report</h1><p id=\"range\">{} – {}</p><div id=\"charts\"></div>\
         <footer>Charts: Chart.js 4.6.1 (MIT License, vendored and inlined). Hover a chart for exact values.</footer>",
        esc(data["from"].as_str().unwrap_or("")),
        esc(data["to"].as_str().unwrap_or(""))
    );
    let _ = write!(
        page,
        "<script type=\"application/json\" id=\"stickydb-data\">{text}</script><script>{}</script><script>{}</script></body></html>",
        script(CHART_JS),
        script(PAGE_JS)
    );
    page
}

// ---- the command ----

/// `stickydb report`.
pub(super) fn report_cmd(cli: &Cli, range: &DayRange, out: &PathBuf) -> Result<(), Error> {
    let db = open_existing(cli, true)?;
    let (from, to) = range.days()?;
    let data = data(&db, from, to)?;
    std::fs::write(out, html(&data))?;
    outln!("report written to {}", out.display());
    Ok(())
}
