//! `stickydb advance`, `stickydb feed` and `stickydb stages --transitions`:
//! the change feed from the command line.

use std::io::Write;

use serde_json::{json, Value};

use super::query::{day_arg, segment_filter};
use super::{answer, open_existing, points::time_arg, Cli};
use crate::{Db, Error, Options};

/// How long `feed --follow` waits between polls when nothing is new.
const FOLLOW_POLL_MS: u64 = 500;

/// `stickydb advance`.
pub(super) fn advance_cmd(
    cli: &Cli,
    at: &Option<String>,
    notice_days: &Option<u32>,
    now_ms: i64,
) -> Result<(), Error> {
    let db = open_existing(cli, false)?;
    if let Some(days) = notice_days {
        db.set_expiry_notice_days(*days)?;
    }
    let now = time_arg("now", at.as_deref(), now_ms)?;
    let report = super::human::working("advancing the clock", || db.advance(now))?;
    answer(cli, &json!(report))
}

/// One feed entry as a JSON line, its cursor included.
fn line(e: &crate::FeedEntry) -> Result<String, Error> {
    serde_json::to_string(e).map_err(|err| Error::Io(std::io::Error::other(err)))
}

/// `stickydb feed`.
pub(super) fn feed_cmd(
    cli: &Cli,
    after: u64,
    limit: usize,
    follow: bool,
    trim_through: Option<u64>,
) -> Result<(), Error> {
    if let Some(through) = trim_through {
        let db = open_existing(cli, false)?;
        let deleted = db.trim_feed(through)?;
        return answer(cli, &json!({ "deleted": deleted, "through": through }));
    }
    let mut cursor = after;
    let stdout = std::io::stdout();
    loop {
        // A read-only open sees what was committed when it opened: with
        // --follow each poll opens anew, so a writer's new entries appear.
        let db = Db::open(
            &cli.db,
            Options {
                create_if_missing: false,
                read_only: true,
                ..Options::default()
            },
        )?;
        let entries = db.feed(cursor, limit)?;
        drop(db);
        let mut out = stdout.lock();
        for e in &entries {
            writeln!(out, "{}", line(e)?)?;
            cursor = e.cursor;
        }
        out.flush()?;
        if !follow {
            return Ok(());
        }
        if entries.is_empty() {
            std::thread::sleep(std::time::Duration::from_millis(FOLLOW_POLL_MS));
        }
    }
}

/// `stickydb feed --trim-older-than AGE`.
pub(super) fn trim_older_cmd(cli: &Cli, age: &str, now_ms: i64) -> Result<(), Error> {
    let db = open_existing(cli, false)?;
    let age_ms = super::query::duration_ms("trim_older_than", age)?;
    let deleted = db.trim_feed_older(now_ms.saturating_sub(age_ms))?;
    answer(cli, &json!({ "deleted": deleted }))
}

/// `stickydb stages --transitions`.
pub(super) fn transitions_cmd(
    cli: &Cli,
    from: &Option<String>,
    to: &Option<String>,
    segment: &Option<String>,
) -> Result<(), Error> {
    let db = open_existing(cli, true)?;
    let from = day_arg("from", from.as_deref().unwrap_or_default())?;
    let to = day_arg("to", to.as_deref().unwrap_or_default())?;
    let filter = segment_filter(&db, segment.as_deref(), to)?;
    answer(cli, &transitions(&db, from, to, filter.as_ref())?)
}

/// `stages --transitions`: a row per day, users entering and leaving
/// each stage (also the report's chart).
pub fn transitions(
    db: &crate::Db,
    from: i32,
    to: i32,
    filter: Option<&roaring::RoaringBitmap>,
) -> Result<Value, Error> {
    let rows = db.metrics().stage_transitions(from, to, filter)?;
    let rows: Vec<Value> = rows
        .iter()
        .map(|r| {
            let mut row = serde_json::Map::new();
            row.insert("day".into(), json!(crate::time::format_day(r.day)));
            for (stage, n) in &r.entered {
                row.insert(format!("entered:{stage}"), json!(n));
            }
            for (stage, n) in &r.left {
                row.insert(format!("left:{stage}"), json!(n));
            }
            Value::Object(row)
        })
        .collect();
    Ok(Value::Array(rows))
}
