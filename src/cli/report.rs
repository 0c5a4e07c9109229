//! `stickydb report`: one self-contained HTML file with hand-written SVG
//! charts — no script, no font, no network. The data behind every chart is
//! embedded as JSON (`<script type="application/json" id="stickydb-data">`),
//! built by the same calls as the CLI's `--json` answers, so a test can
//! check the charts against the metrics API.

use std::fmt::Write as _;

use serde_json::{json, Value};

use crate::metrics::{Period, RetentionQuery};
use crate::{Db, Error};

use std::path::PathBuf;

use super::{open_existing, query, Cli, DayRange};

/// The data of every chart.
pub fn data(db: &Db, from: i32, to: i32) -> Result<Value, Error> {
    let retention = RetentionQuery::new(Period::Week, from, to);
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
        "top_sharers": super::social::sharers(db, from, to, 10, super::RankArg::Signups, None)?["rows"],
        "groups": super::social::groups(db, from, to, groups_as_of(db, to), None)?["rows"],
    }))
}

/// Group deadlines in the report are judged at the store's clock, else at
/// the end of the range's last day.
fn groups_as_of(db: &Db, to: i32) -> i64 {
    db.clock_ms().unwrap_or_else(|| {
        crate::time::local_midnight_ms(to.saturating_add(1), db.settings().utc_offset_minutes)
    })
}

/// A plain table of the rows' `keys`.
fn table(title: &str, rows: &[Value], keys: &[&str]) -> String {
    let mut s = format!("<h2>{}</h2><table><tr>", esc(title));
    for k in keys {
        let _ = write!(s, "<th>{}</th>", esc(k));
    }
    s.push_str("</tr>");
    for r in rows {
        s.push_str("<tr>");
        for k in keys {
            let cell = match &r[*k] {
                Value::String(t) => t.clone(),
                Value::Null => String::new(),
                other => other.to_string(),
            };
            let _ = write!(s, "<td>{}</td>", esc(&cell));
        }
        s.push_str("</tr>");
    }
    s.push_str("</table>");
    s
}

const W: f64 = 760.0;
const H: f64 = 220.0;
const PAD: f64 = 40.0;
const COLORS: [&str; 6] = [
    "#3366cc", "#dc3912", "#ff9900", "#109618", "#990099", "#0099c6",
];

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn num(v: &Value, key: &str) -> f64 {
    v.get(key).and_then(Value::as_f64).unwrap_or(0.0)
}

/// Lines over the rows' index; one series per key.
fn lines(title: &str, rows: &[Value], keys: &[&str]) -> String {
    let max = rows
        .iter()
        .flat_map(|r| keys.iter().map(move |k| num(r, k)))
        .fold(0.0f64, f64::max)
        .max(1e-9);
    let n = rows.len().max(2) as f64 - 1.0;
    let x = |i: usize| PAD + i as f64 * (W - 2.0 * PAD) / n;
    let y = |v: f64| H - PAD + -(v / max) * (H - 2.0 * PAD);
    let mut s = format!(
        "<h2>{}</h2><svg viewBox=\"0 0 {W} {H}\" width=\"{W}\" height=\"{H}\">",
        esc(title)
    );
    let _ = write!(
        s,
        "<line x1=\"{PAD}\" y1=\"{0}\" x2=\"{1}\" y2=\"{0}\" stroke=\"#999\"/>",
        H - PAD,
        W - PAD
    );
    let _ = write!(
        s,
        "<text x=\"2\" y=\"{}\" font-size=\"10\">{}</text>",
        PAD - 4.0,
        fmt_num(max)
    );
    for (k, key) in keys.iter().enumerate() {
        let pts: Vec<String> = rows
            .iter()
            .enumerate()
            .map(|(i, r)| format!("{:.1},{:.1}", x(i), y(num(r, key))))
            .collect();
        let c = COLORS[k % COLORS.len()];
        let _ = write!(
            s,
            "<polyline fill=\"none\" stroke=\"{c}\" stroke-width=\"1.5\" points=\"{}\"/>\
             <text x=\"{}\" y=\"{}\" font-size=\"11\" fill=\"{c}\">{key}</text>",
            pts.join(" "),
            W - PAD - 60.0,
            PAD + 12.0 * k as f64
        );
    }
    label_ends(&mut s, rows, "day");
    s.push_str("</svg>");
    s
}

fn label_ends(s: &mut String, rows: &[Value], key: &str) {
    let name = |r: Option<&Value>| {
        r.and_then(|r| r.get(key))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    };
    let _ = write!(
        s,
        "<text x=\"{PAD}\" y=\"{}\" font-size=\"10\">{}</text><text x=\"{}\" y=\"{}\" font-size=\"10\" text-anchor=\"end\">{}</text>",
        H - PAD + 14.0,
        name(rows.first()),
        W - PAD,
        H - PAD + 14.0,
        name(rows.last())
    );
}

fn fmt_num(x: f64) -> String {
    if x.fract() == 0.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.3}")
    }
}

/// Vertical bars, stacked per row; negative values grow downwards.
fn bars(title: &str, rows: &[Value], keys: &[&str], label: &str) -> String {
    let up = rows
        .iter()
        .map(|r| keys.iter().map(|k| num(r, k).max(0.0)).sum::<f64>())
        .fold(0.0f64, f64::max);
    let down = rows
        .iter()
        .map(|r| keys.iter().map(|k| (-num(r, k)).max(0.0)).sum::<f64>())
        .fold(0.0f64, f64::max);
    let span = (up + down).max(1e-9);
    let zero = PAD + up / span * (H - 2.0 * PAD);
    let scale = (H - 2.0 * PAD) / span;
    let bw = (W - 2.0 * PAD) / rows.len().max(1) as f64;
    let mut s = format!(
        "<h2>{}</h2><svg viewBox=\"0 0 {W} {H}\" width=\"{W}\" height=\"{H}\">",
        esc(title)
    );
    for (i, r) in rows.iter().enumerate() {
        let (mut top, mut bottom) = (zero, zero);
        for (k, key) in keys.iter().enumerate() {
            let v = num(r, key);
            let h = v.abs() * scale;
            let y = if v >= 0.0 {
                top -= h;
                top
            } else {
                bottom += h;
                bottom - h
            };
            let _ = write!(
                s,
                "<rect x=\"{:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{h:.1}\" fill=\"{}\"><title>{} {key}: {}</title></rect>",
                PAD + i as f64 * bw + 1.0,
                (bw - 2.0).max(1.0),
                COLORS[k % COLORS.len()],
                esc(r.get(label).and_then(Value::as_str).unwrap_or("")),
                fmt_num(v)
            );
        }
    }
    for (k, key) in keys.iter().enumerate() {
        let _ = write!(
            s,
            "<text x=\"{}\" y=\"{}\" font-size=\"11\" fill=\"{}\">{key}</text>",
            W - PAD - 90.0,
            PAD + 12.0 * k as f64,
            COLORS[k % COLORS.len()]
        );
    }
    let _ = write!(
        s,
        "<line x1=\"{PAD}\" y1=\"{zero:.1}\" x2=\"{}\" y2=\"{zero:.1}\" stroke=\"#999\"/>",
        W - PAD
    );
    label_ends(&mut s, rows, label);
    s.push_str("</svg>");
    s
}

/// Horizontal bars of a name → count map.
fn breakdown(title: &str, counts: &Value) -> String {
    let items: Vec<(String, f64)> = counts
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_f64().unwrap_or(0.0)))
                .collect()
        })
        .unwrap_or_default();
    let max = items.iter().map(|i| i.1).fold(0.0f64, f64::max).max(1e-9);
    let h = 20.0 * items.len() as f64 + 10.0;
    let mut s = format!(
        "<h2>{}</h2><svg viewBox=\"0 0 {W} {h}\" width=\"{W}\" height=\"{h}\">",
        esc(title)
    );
    for (i, (name, v)) in items.iter().enumerate() {
        let y = 5.0 + 20.0 * i as f64;
        let w = v / max * (W - 260.0);
        let _ = write!(
            s,
            "<text x=\"150\" y=\"{:.1}\" font-size=\"12\" text-anchor=\"end\">{}</text>\
             <rect x=\"160\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"15\" fill=\"{}\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\">{}</text>",
            y + 12.0,
            esc(name),
            COLORS[i % COLORS.len()],
            165.0 + w,
            y + 12.0,
            fmt_num(*v)
        );
    }
    s.push_str("</svg>");
    s
}

/// Retention heatmap: one row per cohort, cell shade = share returning.
fn heatmap(retention: &Value) -> String {
    let cohorts = retention["cohorts"].as_array().cloned().unwrap_or_default();
    let n = cohorts.len().max(1);
    let cell = ((W - 200.0) / n as f64).min(40.0);
    let h = cell * n as f64 + 40.0;
    let mut s = format!(
        "<h2>Retention by weekly cohort (share of the cohort active n weeks later)</h2>\
         <svg viewBox=\"0 0 {W} {h}\" width=\"{W}\" height=\"{h}\">"
    );
    for (r, c) in cohorts.iter().enumerate() {
        let size = num(c, "size");
        let y = 20.0 + r as f64 * cell;
        let _ = write!(
            s,
            "<text x=\"150\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"end\">{} ({})</text>",
            y + cell * 0.7,
            esc(c["cohort"].as_str().unwrap_or("")),
            fmt_num(size)
        );
        for (k, v) in c["counts"].as_array().into_iter().flatten().enumerate() {
            let share = if size > 0.0 {
                v.as_f64().unwrap_or(0.0) / size
            } else {
                0.0
            };
            let _ = write!(
                s,
                "<rect x=\"{:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"rgba(51,102,204,{share:.3})\" stroke=\"#fff\"><title>week {k}: {:.1}%</title></rect>",
                160.0 + k as f64 * cell,
                cell,
                cell,
                share * 100.0
            );
        }
    }
    s.push_str("</svg>");
    s
}

/// The whole page.
pub fn html(data: &Value) -> String {
    let empty = Vec::new();
    let rows = |k: &str| data[k].as_array().unwrap_or(&empty).clone();
    let mut page = String::from(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>stickydb report</title>\
         <style>body{font-family:sans-serif;margin:2em;max-width:800px}h2{font-size:15px;margin-top:2em}td,th{padding:2px 8px;text-align:right}</style>\
         </head><body>",
    );
    let _ = write!(
        page,
        "<h1>stickydb report {} – {}</h1>",
        esc(data["from"].as_str().unwrap_or("")),
        esc(data["to"].as_str().unwrap_or(""))
    );
    page.push_str(&lines(
        "Active users (DAU, WAU, MAU)",
        &rows("active"),
        &["dau", "wau", "mau"],
    ));
    page.push_str(&lines(
        "Stickiness (DAU ÷ MAU)",
        &rows("active"),
        &["stickiness"],
    ));
    page.push_str(&heatmap(&data["retention"]));
    page.push_str(&bars(
        "Lifecycle by week",
        &rows("lifecycle"),
        &["new", "returning", "resurrecting", "dormant"],
        "period",
    ));
    page.push_str(&breakdown(
        "Lifecycle stages (as of the last day)",
        &data["stages"],
    ));
    page.push_str(&breakdown(
        "RFM segments (as of the last day)",
        &data["rfm_segments"],
    ));
    page.push_str(&bars(
        "Daily GMV (minor units)",
        &rows("daily"),
        &["gmv"],
        "day",
    ));
    page.push_str(&bars("Daily orders", &rows("daily"), &["orders"], "day"));
    if data["tiers"].as_object().is_some_and(|t| !t.is_empty()) {
        page.push_str(&breakdown("Loyalty tiers", &data["tiers"]));
    }
    if !rows("top_sharers").is_empty() {
        page.push_str(&table(
            "Top sharers by attributed signups",
            &rows("top_sharers"),
            &[
                "rank",
                "user",
                "shares",
                "reached",
                "signups",
                "first_purchases",
                "orders",
                "gmv_minor",
            ],
        ));
    }
    if !rows("groups").is_empty() {
        page.push_str(&bars(
            "Group buys by opening day (completed, expired, open)",
            &rows("groups"),
            &["completed", "expired", "open"],
            "day",
        ));
        page.push_str(&lines(
            "Group-buy completion rate (completed ÷ decided)",
            &rows("groups"),
            &["completion_rate"],
        ));
    }
    // The chart data, for tools and tests; `</` cannot occur in JSON
    // strings we produce unescaped, but escape it anyway.
    let text = serde_json::to_string(data)
        .unwrap_or_default()
        .replace("</", "<\\/");
    let _ = write!(
        page,
        "<script type=\"application/json\" id=\"stickydb-data\">{text}</script></body></html>"
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
    println!("report written to {}", out.display());
    Ok(())
}
