//! `stickydb users export`: one row per user as of a day, from the per-user
//! metrics, the RFM report and the ledger. Sensitive profile attributes are
//! never exported (SPEC §5): the row holds no attribute at all.

use std::collections::HashMap;
use std::io::Write;

use serde::Serialize;

use crate::time::format_day;
use std::path::PathBuf;

use super::{open_existing, Cli};
use crate::{Db, Error};

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// Comma-separated with a header line.
    Csv,
    /// One JSON object per line.
    Jsonl,
}

/// One exported row; days as `YYYY-MM-DD`, empty (CSV) or null (JSON)
/// where undefined.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UserRow {
    /// External user id.
    pub user: String,
    /// First day with activity.
    pub first_seen_day: Option<String>,
    /// Last day with activity.
    pub last_seen_day: Option<String>,
    /// Distinct active days.
    pub active_days: u64,
    /// Purchase events.
    pub purchase_count: u64,
    /// Distinct purchase days.
    pub purchase_days: u64,
    /// Sum of purchases, minor units.
    pub total_spend_minor: i64,
    /// First purchase day.
    pub first_purchase_day: Option<String>,
    /// Last purchase day.
    pub last_purchase_day: Option<String>,
    /// CLV: purchase days − 1.
    pub frequency: Option<u64>,
    /// CLV: last − first purchase day.
    pub recency: Option<i64>,
    /// CLV: as-of day − first purchase day.
    #[serde(rename = "T")]
    pub t: Option<i64>,
    /// CLV: mean repeat-day purchase, minor units.
    pub monetary_value: Option<f64>,
    /// Lifecycle stage.
    pub stage: Option<String>,
    /// RFM recency score.
    pub r_score: Option<u8>,
    /// RFM frequency score.
    pub f_score: Option<u8>,
    /// RFM monetary score.
    pub m_score: Option<u8>,
    /// RFM segment.
    pub rfm_segment: Option<String>,
    /// Loyalty tier.
    pub tier: Option<String>,
    /// Points balance.
    pub points_balance: i64,
}

/// Every user's row as of `as_of`, in internal id order.
pub fn rows(db: &Db, as_of: i32) -> Result<Vec<UserRow>, Error> {
    let m = db.metrics();
    let rfm: HashMap<u32, crate::metrics::UserRfm> = m
        .rfm(as_of, None)?
        .users
        .into_iter()
        .map(|r| (r.user_id, r))
        .collect();
    let mut out = Vec::new();
    let metrics: HashMap<u32, crate::metrics::UserMetrics> = m
        .users(as_of, None)?
        .into_iter()
        .map(|u| (u.user_id, u))
        .collect();
    for id in &db.all_users()? {
        let Some(name) = db.user_name(id)? else {
            continue;
        };
        let account = db.account(&name)?;
        let u = metrics.get(&id);
        let r = rfm.get(&id);
        let day = |d: Option<i32>| d.map(format_day);
        let clv = u.and_then(|u| u.clv);
        out.push(UserRow {
            first_seen_day: day(u.and_then(|u| u.first_seen_day)),
            last_seen_day: day(u.and_then(|u| u.last_seen_day)),
            active_days: u.map_or(0, |u| u.active_days),
            purchase_count: u.map_or(0, |u| u.purchase_count),
            purchase_days: u.map_or(0, |u| u.purchase_days),
            total_spend_minor: u.map_or(0, |u| u.total_spend_minor),
            first_purchase_day: day(u.and_then(|u| u.first_purchase_day)),
            last_purchase_day: day(u.and_then(|u| u.last_purchase_day)),
            frequency: clv.map(|c| c.frequency),
            recency: clv.map(|c| c.recency),
            t: clv.map(|c| c.t),
            monetary_value: clv.map(|c| c.monetary_value),
            stage: u.and_then(|u| u.stage.clone()),
            r_score: r.map(|r| r.r_score),
            f_score: r.map(|r| r.f_score),
            m_score: r.map(|r| r.m_score),
            rfm_segment: r.map(|r| r.segment.to_owned()),
            tier: account.as_ref().and_then(|a| a.tier.clone()),
            points_balance: account.map_or(0, |a| a.balance),
            user: name,
        });
    }
    Ok(out)
}

/// Writes the rows to `out`.
pub fn write(rows: &[UserRow], format: ExportFormat, out: &mut dyn Write) -> Result<(), Error> {
    let io = |e: &dyn std::fmt::Display| Error::Io(std::io::Error::other(e.to_string()));
    match format {
        ExportFormat::Jsonl => {
            for r in rows {
                let line = serde_json::to_string(r).map_err(|e| io(&e))?;
                writeln!(out, "{line}")?;
            }
        }
        ExportFormat::Csv => {
            let mut w = csv::Writer::from_writer(out);
            for r in rows {
                w.serialize(r).map_err(|e| io(&e))?;
            }
            w.flush()?;
        }
    }
    Ok(())
}

// ---- the command ----

/// `stickydb users`.
pub(super) fn export_cmd(
    cli: &Cli,
    as_of: Option<&str>,
    out: &Option<PathBuf>,
    now: i64,
) -> Result<(), Error> {
    let format = &match cli.output() {
        super::OutputFormat::Jsonl | super::OutputFormat::Json => ExportFormat::Jsonl,
        super::OutputFormat::Csv | super::OutputFormat::Table => ExportFormat::Csv,
    };
    let db = open_existing(cli, true)?;
    let at = super::human::as_of(&db, as_of, now)?;
    eprintln!("{}", at.line());
    let day = at.day;
    let rows = super::human::working("collecting users", || rows(&db, day))?;
    match out {
        Some(path) => {
            let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
            write(&rows, *format, &mut f)?;
            eprintln!("{} users written to {}", rows.len(), path.display());
        }
        None => write(&rows, *format, &mut std::io::stdout().lock())?,
    }
    Ok(())
}
