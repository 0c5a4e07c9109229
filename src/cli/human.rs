//! Output for people: the instant an answer is computed for, local times
//! in the store's offset, money in currency units, ages ("2 days ago"),
//! typed values as values.

use crate::profiles::AttrValue;
use crate::time::DAY_MS;
use crate::{Db, Error};

/// The instant a time-relative answer is computed for, and why that one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AsOf {
    /// The local day.
    pub day: i32,
    /// The instant: the day's last millisecond, or now.
    pub at_ms: i64,
    /// Where it came from, for the as-of line (empty: asked for).
    pub why: &'static str,
}

impl AsOf {
    /// The line a table starts with: `as of 2024-02-29 (the last day with
    /// data; --as-of now for today)`.
    pub fn line(&self) -> String {
        let day = crate::time::format_day(self.day);
        if self.why.is_empty() {
            format!("as of {day}")
        } else {
            format!("as of {day} ({})", self.why)
        }
    }
}

/// The as-of instant of `user`, `segment`, `stages` and `rfm`:
/// - `--as-of YYYY-MM-DD`: the end of that local day;
/// - `--as-of now`: now;
/// - by default, the end of the store's last day with activity (or of the
///   day of its clock, moved by `advance`, when that is later), never past
///   now; now for a store without activity. A store whose data ends in the
///   past (an import of last year, the demo) is looked at where its data
///   is, instead of calling everyone churned; a live store's last day with
///   activity is today.
pub fn as_of(db: &Db, arg: Option<&str>, now_ms: i64) -> Result<AsOf, Error> {
    let end = |day: i32| super::query::day_end_ms(db, day);
    let today = db.local_day(now_ms);
    match arg {
        Some("now") => Ok(AsOf {
            day: today,
            at_ms: now_ms,
            why: "now",
        }),
        // an instant (RFC 3339, or ms): exact to the millisecond (rule tags)
        Some(d) if d.contains('T') || (d.len() > 10 && d.bytes().all(|b| b.is_ascii_digit())) => {
            let at_ms = super::points::time_arg("as_of", Some(d), now_ms)?;
            Ok(AsOf {
                day: db.local_day(at_ms),
                at_ms,
                why: "",
            })
        }
        Some(d) => {
            let day = super::query::day_arg("as_of", d)?;
            Ok(AsOf {
                day,
                at_ms: end(day),
                why: "",
            })
        }
        None => {
            let last = db.metrics().last_active_day()?;
            let clock = db.clock_ms().map(|ms| db.local_day(ms));
            match last.max(clock).filter(|d| *d < today) {
                Some(day) => Ok(AsOf {
                    day,
                    at_ms: end(day),
                    why: "the last day with data; --as-of now for today",
                }),
                None => Ok(AsOf {
                    day: today,
                    at_ms: now_ms,
                    why: "now",
                }),
            }
        }
    }
}

/// The UTC offset tables print times in: the store the command opened
/// (one store per CLI process; a table has no store at hand).
static TABLE_OFFSET_MINUTES: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

/// Sets the offset tables print times in.
pub fn set_table_offset(minutes: i32) {
    TABLE_OFFSET_MINUTES.store(minutes, std::sync::atomic::Ordering::Relaxed);
}

/// A table cell for people: a `…_ms` column's milliseconds as a local
/// time, a `…_minor` column's minor units as currency units; the column
/// named without its suffix. Anything else as it is.
pub fn table_cell(column: &str, cell: String) -> (String, String) {
    let offset = TABLE_OFFSET_MINUTES.load(std::sync::atomic::Ordering::Relaxed);
    if let Some(name) = column.strip_suffix("_ms") {
        if let Ok(ms) = cell.parse::<i64>() {
            return (name.to_owned(), local_time_at(ms, offset));
        }
        return (name.to_owned(), cell);
    }
    if let Some(name) = column.strip_suffix("_minor") {
        if let Ok(m) = cell.parse::<i64>() {
            return (name.to_owned(), money(m));
        }
        return (name.to_owned(), cell);
    }
    (column.to_owned(), cell)
}

/// `ts_ms` as a local date and time in the store's offset,
/// `YYYY-MM-DD HH:MM`.
pub fn local_time(db: &Db, ts_ms: i64) -> String {
    local_time_at(ts_ms, db.settings().utc_offset_minutes)
}

fn local_time_at(ts_ms: i64, offset_minutes: i32) -> String {
    let offset_ms = i64::from(offset_minutes) * 60_000;
    let local = ts_ms.saturating_add(offset_ms);
    let day = local.div_euclid(DAY_MS);
    let minute = local.rem_euclid(DAY_MS) / 60_000;
    format!(
        "{} {:02}:{:02}",
        crate::time::format_day(i32::try_from(day).unwrap_or(i32::MAX)),
        minute / 60,
        minute % 60
    )
}

/// Minor units as currency units with two decimals (`123456` → `1234.56`).
pub fn money(minor: i64) -> String {
    let sign = if minor < 0 { "-" } else { "" };
    let m = minor.unsigned_abs();
    format!("{sign}{}.{:02}", m / 100, m % 100)
}

/// How long before `now_ms` `ts_ms` was: `just now`, `5 minutes ago`,
/// `3 hours ago`, `2 days ago` (or `in 2 days`).
pub fn ago(ts_ms: i64, now_ms: i64) -> String {
    let d = now_ms.saturating_sub(ts_ms);
    let (n, unit) = match d.unsigned_abs() / 1_000 {
        s if s < 60 => return "just now".to_owned(),
        s if s < 3_600 => (s / 60, "minute"),
        s if s < 86_400 => (s / 3_600, "hour"),
        s => (s / 86_400, "day"),
    };
    let plural = if n == 1 { "" } else { "s" };
    if d >= 0 {
        format!("{n} {unit}{plural} ago")
    } else {
        format!("in {n} {unit}{plural}")
    }
}

/// A profile value as a person reads it (a timestamp as a local time).
pub fn attr(db: &Db, v: &AttrValue) -> String {
    match v {
        AttrValue::Str(s) => s.clone(),
        AttrValue::Int(i) => i.to_string(),
        AttrValue::Float(f) => f.to_string(),
        AttrValue::Bool(b) => b.to_string(),
        AttrValue::Timestamp(ms) => local_time(db, *ms),
        AttrValue::Date(d) => crate::time::format_day(*d),
    }
}

/// A profile value as JSON: numbers, text and booleans as themselves, a
/// timestamp as `{"timestamp_ms": …}`, a date as `{"date": "YYYY-MM-DD"}`
/// (what `import --profiles` reads back).
pub fn attr_json(v: &AttrValue) -> serde_json::Value {
    match v {
        AttrValue::Str(s) => serde_json::json!(s),
        AttrValue::Int(i) => serde_json::json!(i),
        AttrValue::Float(f) => serde_json::json!(f),
        AttrValue::Bool(b) => serde_json::json!(b),
        AttrValue::Timestamp(ms) => serde_json::json!({ "timestamp_ms": ms }),
        AttrValue::Date(d) => serde_json::json!({ "date": crate::time::format_day(*d) }),
    }
}

/// Runs `f` with a spinner and its elapsed time on stderr, for commands
/// whose one library call takes seconds (verify, rebuild, compact,
/// advance, exports). indicatif draws nothing when stderr is not a
/// terminal, so logs and pipes stay clean.
pub fn working<T>(what: &str, f: impl FnOnce() -> Result<T, Error>) -> Result<T, Error> {
    let bar = indicatif::ProgressBar::new_spinner();
    if let Ok(style) = indicatif::ProgressStyle::with_template("{spinner} {msg} [{elapsed}]") {
        bar.set_style(style);
    }
    bar.set_message(what.to_owned());
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    let out = f();
    bar.finish_and_clear();
    out
}

/// Prints `rows` as aligned `label  value` lines under `title`.
pub fn section(title: &str, rows: &[(String, String)]) {
    if rows.is_empty() {
        return;
    }
    outln!("{title}");
    let w = rows
        .iter()
        .map(|(l, _)| l.chars().count())
        .max()
        .unwrap_or(0);
    for (l, v) in rows {
        outln!("  {l:<w$}  {v}");
    }
}

/// An operation's JSON outcome for people: one `field  value` line each.
pub(crate) fn outcome(v: &serde_json::Value) {
    let rows: Vec<(String, String)> = v
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.to_string().trim_matches('"').to_owned()))
        .collect();
    section("done", &rows);
}

/// Coupons for people: the id, then the state and the local expiry.
pub(crate) fn coupon_rows(db: &Db, coupons: &[crate::Coupon]) -> Vec<(String, String)> {
    coupons
        .iter()
        .map(|c| {
            let until = c
                .expires_at_ms
                .map_or("never".into(), |e| local_time(db, e));
            (
                c.id.clone(),
                format!("{:<10} expires {until}", c.state.name()),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_and_ages_read_as_people_write_them() {
        assert_eq!(money(123_456), "1234.56");
        assert_eq!(money(-5), "-0.05");
        assert_eq!(money(0), "0.00");
        let now = 10 * DAY_MS;
        assert_eq!(ago(now - 2 * DAY_MS - 5, now), "2 days ago");
        assert_eq!(ago(now - 3_600_000, now), "1 hour ago");
        assert_eq!(ago(now - 30_000, now), "just now");
        assert_eq!(ago(now + 3 * DAY_MS, now), "in 3 days");
    }
}
