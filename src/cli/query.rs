//! Query commands: each turns one library answer into JSON (the shapes the
//! CLI documents) or a table. Days print as `YYYY-MM-DD`; no metric is
//! computed here.

use roaring::RoaringBitmap;
use serde_json::{json, Value};

use super::args::{LifecycleArgs, RetentionArgs};
use super::{answer, open_existing, ranged, Cli, DayRange, MetricsCommand};
use crate::metrics::{ActiveRow, DailyRow, LifecycleRow, Period, RetentionMatrix, RetentionQuery};
use crate::time::format_day;
use crate::{Db, Error, EventKind, InputError, Problem};

/// Parses `YYYY-MM-DD` into a local day.
pub fn day_arg(field: &'static str, text: &str) -> Result<i32, Error> {
    crate::time::parse_day(text).map_err(|p| InputError::new(field, p).into())
}

/// Parses a duration like `90s`, `30m`, `12h`, `7d` into milliseconds.
pub fn duration_ms(field: &'static str, text: &str) -> Result<i64, Error> {
    let bad = || {
        Error::from(InputError::new(
            field,
            Problem::Unparsable {
                reason: format!("{text:?} is not N followed by s, m, h or d"),
            },
        ))
    };
    let (num, unit) = text.split_at(text.len().saturating_sub(1));
    let n: i64 = num.parse().map_err(|_| bad())?;
    let unit_ms = match unit {
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => crate::time::DAY_MS,
        _ => return Err(bad()),
    };
    n.checked_mul(unit_ms).filter(|ms| *ms > 0).ok_or_else(bad)
}

/// Four decimals, as the CLI prints ratios.
pub fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

/// The last millisecond of local day `day`.
pub fn day_end_ms(db: &Db, day: i32) -> i64 {
    crate::time::local_midnight_ms(day + 1, db.settings().utc_offset_minutes) - 1
}

/// The users of `--segment EXPR`, if given, evaluated at the end of local
/// day `as_of` (a query's last day), so time-relative atoms such as
/// `active_within:7d` mean "as of the data asked about", not "as of today".
pub fn segment_filter(
    db: &Db,
    expr: Option<&str>,
    as_of: i32,
) -> Result<Option<RoaringBitmap>, Error> {
    match expr {
        None => Ok(None),
        Some(e) => Ok(Some(
            db.segment(&crate::Segment::parse(e)?, day_end_ms(db, as_of))?,
        )),
    }
}

/// The kind a flag names, refused when the store has never heard of it:
/// a typo would otherwise answer zeros. The error lists the known kinds.
pub fn kind_arg(db: &Db, name: Option<&str>) -> Result<Option<EventKind>, Error> {
    name.map(|n| known_kind(db, n)).transpose()
}

/// [`kind_arg`] of a name that is there.
pub fn known_kind(db: &Db, name: &str) -> Result<EventKind, Error> {
    let known = db.kinds();
    let kind = EventKind::from_name(name);
    if known.iter().any(|(_, k)| *k == kind) {
        return Ok(kind);
    }
    let mut names: Vec<&str> = known.iter().map(|(_, k)| k.as_str()).collect();
    names.sort_unstable();
    Err(InputError::new(
        "kind",
        Problem::Unparsable {
            reason: format!("unknown kind {name:?}; known kinds: {}", names.join(", ")),
        },
    )
    .into())
}

/// `metrics active`.
pub fn active(
    db: &Db,
    from: i32,
    to: i32,
    kind_name: Option<&str>,
    filter: Option<&RoaringBitmap>,
) -> Result<Value, Error> {
    let k = kind_arg(db, kind_name)?;
    Ok(active_json(&db.metrics().active(
        k.as_ref(),
        from,
        to,
        filter,
    )?))
}

/// The JSON of `metrics active` rows (one store's or a cluster's).
pub fn active_json(rows: &[ActiveRow]) -> Value {
    json!({ "rows": rows.iter().map(|r| json!({
        "day": format_day(r.day), "dau": r.dau, "wau": r.wau, "mau": r.mau,
        "stickiness": round4(r.stickiness),
    })).collect::<Vec<_>>() })
}

/// `metrics daily`.
pub fn daily(db: &Db, from: i32, to: i32) -> Result<Value, Error> {
    Ok(daily_json(&db.metrics().daily(from, to)?))
}

/// The JSON of `metrics daily` rows.
pub fn daily_json(rows: &[DailyRow]) -> Value {
    json!({ "rows": rows.iter().map(|r| json!({
        "day": format_day(r.day), "events": r.events, "events_by_kind": r.events_by_kind,
        "orders": r.orders, "gmv": r.gmv_minor, "refunds": r.refunds,
        "refund_amount": r.refund_minor, "aov": r.aov_minor.map(round4),
        "new_users": r.new_users, "sessions": r.sessions,
    })).collect::<Vec<_>>() })
}

/// `retention`.
pub fn retention(
    db: &Db,
    q: &RetentionQuery,
    filter: Option<&RoaringBitmap>,
) -> Result<Value, Error> {
    Ok(retention_json(&db.metrics().retention(q, filter)?))
}

/// The JSON of a retention matrix.
pub fn retention_json(m: &RetentionMatrix) -> Value {
    json!({
        "period": m.period, "mode": m.mode,
        "cohorts": m.cohorts.iter().map(|c| json!({
            "cohort": format_day(c.cohort), "size": c.size, "counts": c.counts,
        })).collect::<Vec<_>>(),
    })
}

/// `lifecycle`.
pub fn lifecycle(
    db: &Db,
    period: Period,
    from: i32,
    to: i32,
    filter: Option<&RoaringBitmap>,
) -> Result<Value, Error> {
    let rows = db.metrics().lifecycle(period, from, to, filter)?;
    Ok(lifecycle_json(period, &rows))
}

/// The JSON of lifecycle rows.
pub fn lifecycle_json(period: Period, rows: &[LifecycleRow]) -> Value {
    json!({ "period_kind": period, "rows": rows.iter().map(|r| json!({
        "period": format_day(r.period), "new": r.new, "returning": r.returning,
        "resurrecting": r.resurrecting, "dormant": r.dormant,
    })).collect::<Vec<_>>() })
}

/// `stages`.
pub fn stages(db: &Db, as_of: i32, filter: Option<&RoaringBitmap>) -> Result<Value, Error> {
    Ok(json!({ "as_of": format_day(as_of), "stages": db.metrics().stages(as_of, filter)? }))
}

/// `rfm`; per-user rows only when `list` asks for them.
pub fn rfm(
    db: &Db,
    as_of: i32,
    filter: Option<&RoaringBitmap>,
    list: Option<usize>,
) -> Result<Value, Error> {
    let r = db.metrics().rfm(as_of, filter)?;
    let mut users = Vec::new();
    for u in r.users.iter().take(list.unwrap_or(0)) {
        users.push(json!({
            "user": db.user_name(u.user_id)?, "recency_days": u.recency_days,
            "orders": u.orders, "purchase_days": u.purchase_days,
            "net_spend": u.net_spend_minor, "r": u.r_score, "f": u.f_score, "m": u.m_score,
            "segment": u.segment,
        }));
    }
    Ok(json!({
        "as_of": format_day(as_of), "purchasers": r.users.len(),
        "segments": r.segments, "users": users,
    }))
}

/// `funnel`.
pub fn funnel(
    db: &Db,
    steps: &[String],
    window_ms: i64,
    from: i32,
    to: i32,
    filter: Option<&RoaringBitmap>,
) -> Result<Value, Error> {
    // `kind` or `kind[dim=value]` (a declared dimension's value)
    let parsed: Vec<crate::dims::FunnelStep> = steps
        .iter()
        .map(|s| crate::dims::FunnelStep::parse(s))
        .collect::<Result<_, _>>()?;
    let kinds: Vec<EventKind> = parsed
        .iter()
        .map(|s| known_kind(db, &s.kind))
        .collect::<Result<_, _>>()?;
    let counts = if parsed.iter().all(|s| s.filter.is_none()) {
        db.metrics().funnel(&kinds, window_ms, from, to, filter)?
    } else {
        db.funnel_steps(&parsed, window_ms, (from, to), filter)?
    };
    let first = counts.first().copied().unwrap_or(0);
    let conversion: Vec<f64> = counts
        .iter()
        .map(|c| round4(crate::metrics::ratio(*c, first)))
        .collect();
    // the same numbers a row per step, for tables and CSV
    let rows: Vec<Value> = steps
        .iter()
        .zip(counts.iter().zip(&conversion))
        .map(|(s, (n, c))| json!({ "step": s, "users": n, "conversion": c }))
        .collect();
    Ok(
        json!({ "steps": steps, "window_ms": window_ms, "from": format_day(from),
        "to": format_day(to), "counts": counts, "conversion": conversion, "rows": rows }),
    )
}

/// `stickiness-dist`.
pub fn stickiness_dist(
    db: &Db,
    from: i32,
    to: i32,
    kind_name: Option<&str>,
    filter: Option<&RoaringBitmap>,
) -> Result<Value, Error> {
    let k = kind_arg(db, kind_name)?;
    let rows = db
        .metrics()
        .stickiness_distribution(k.as_ref(), from, to, filter)?;
    Ok(json!({ "from": format_day(from), "to": format_day(to), "rows": rows }))
}

/// `habits`, store-wide or for one user (all time).
pub fn habits(db: &Db, user: Option<&str>, today: i32) -> Result<Value, Error> {
    let (hours, weekdays) = match user {
        None => {
            let h = db.metrics().habits(None)?;
            (h.hours, h.weekdays)
        }
        Some(u) => {
            let id = db
                .user_id(u)?
                .ok_or_else(|| Error::UnknownUser { user: u.to_owned() })?;
            db.metrics()
                .user(id, today)?
                .map(|m| (m.hours, m.weekdays))
                .unwrap_or(([0; 24], [0; 7]))
        }
    };
    // the same counts a row each, for tables and CSV: 24 hours, 7 weekdays
    const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    let rows: Vec<Value> = hours
        .iter()
        .enumerate()
        .map(|(h, n)| json!({ "when": format!("{h:02}:00"), "events": n }))
        .chain(
            weekdays
                .iter()
                .zip(DAYS)
                .map(|(n, d)| json!({ "when": d, "events": n })),
        )
        .collect();
    let mut v = json!({ "hours": hours, "weekdays": weekdays, "rows": rows });
    if let Some(u) = user {
        v["user"] = json!(u);
    }
    Ok(v)
}

/// An answer as a table: its column names and rows of cells. The rows
/// are the answer's `rows` (or its first list of objects: `cohorts`,
/// `users`, …, or the answer itself when it is a list); failing that, its
/// first map of numbers (`stages`, `segments`) as name/value rows.
pub fn tabulate(v: &Value) -> Option<(Vec<String>, Vec<Vec<String>>)> {
    let cell = |v: Option<&Value>| match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    };
    let objects = |a: &Vec<Value>| a.iter().all(Value::is_object) && !a.is_empty();
    let list = match v {
        Value::Array(a) if objects(a) => Some(a),
        Value::Object(o) => o
            .get("rows")
            .and_then(Value::as_array)
            .or_else(|| o.values().filter_map(Value::as_array).find(|a| objects(a))),
        _ => None,
    };
    if let Some(rows) = list {
        let mut cols: Vec<String> = Vec::new();
        for r in rows.iter().filter_map(Value::as_object) {
            for k in r.keys() {
                if !cols.contains(k) {
                    cols.push(k.clone());
                }
            }
        }
        let cells = rows
            .iter()
            .map(|r| cols.iter().map(|c| cell(r.get(c.as_str()))).collect())
            .collect();
        return Some((cols, cells));
    }
    let (name, map) = v
        .as_object()?
        .iter()
        .find_map(|(k, v)| v.as_object().map(|m| (k, m)))?;
    let rows = map
        .iter()
        .map(|(k, v)| vec![k.clone(), cell(Some(v))])
        .collect();
    // users per stage or RFM segment; any other map as name and value
    let cols = match name.as_str() {
        "stages" => vec!["stage".to_owned(), "users".to_owned()],
        "segments" => vec!["segment".to_owned(), "users".to_owned()],
        _ => vec!["name".to_owned(), name.clone()],
    };
    Some((cols, rows))
}

/// Prints an answer as an aligned table (JSON when it has no table
/// shape), after the instant a time-relative answer was computed for.
pub fn print_table(v: &Value) {
    if let Some(at) = v.get("as_of").and_then(Value::as_str) {
        outln!("as of {at}");
    }
    let Some((cols, rows)) = tabulate(v) else {
        outln!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
        return;
    };
    if rows.is_empty() {
        outln!("(no rows)");
        return;
    }
    // times local, money in currency units (CSV and JSON keep the raw numbers)
    let mut head = cols.clone();
    let rows: Vec<Vec<String>> = rows
        .into_iter()
        .map(|r| {
            r.into_iter()
                .enumerate()
                .map(|(i, c)| {
                    let (name, cell) = super::human::table_cell(&cols[i], c);
                    head[i] = name;
                    cell
                })
                .collect()
        })
        .collect();
    let cols = head;
    // what a row is about first (rank, day, user, …), then its numbers
    const LEAD: [&str; 8] = [
        "rank", "day", "period", "cohort", "user", "group", "step", "stage",
    ];
    let mut order: Vec<usize> = (0..cols.len()).collect();
    order.sort_by_key(|&i| {
        LEAD.iter()
            .position(|l| *l == cols[i])
            .unwrap_or(LEAD.len())
    });
    let cols: Vec<String> = order.iter().map(|&i| cols[i].clone()).collect();
    let rows: Vec<Vec<String>> = rows
        .into_iter()
        .map(|r| order.iter().map(|&i| r[i].clone()).collect())
        .collect();
    let widths: Vec<usize> = cols
        .iter()
        .enumerate()
        .map(|(i, c)| {
            rows.iter()
                .map(|r| r[i].chars().count())
                .max()
                .unwrap_or(0)
                .max(c.chars().count())
        })
        .collect();
    // numbers right-aligned, text left-aligned
    let numeric: Vec<bool> = (0..cols.len())
        .map(|i| {
            rows.iter()
                .map(|r| r[i].as_str())
                .filter(|c| !c.is_empty())
                .all(|c| c.trim_start_matches('+').parse::<f64>().is_ok())
        })
        .collect();
    let line = |cells: &[String]| {
        let parts: Vec<String> = cells
            .iter()
            .zip(widths.iter().zip(&numeric))
            .map(|(c, (w, num))| {
                if *num {
                    format!("{c:>w$}")
                } else {
                    format!("{c:<w$}")
                }
            })
            .collect();
        outln!("{}", parts.join("  ").trim_end());
    };
    line(&cols);
    for r in &rows {
        line(r);
    }
}

/// Prints an answer's table as CSV (`--format csv`): a header line, then
/// a line per row; nested values as JSON text.
pub fn print_csv(v: &Value) -> Result<(), Error> {
    let mut w = csv::Writer::from_writer(std::io::stdout().lock());
    let io = |e: csv::Error| Error::Io(std::io::Error::other(e));
    match tabulate(v) {
        Some((cols, rows)) => {
            w.write_record(&cols).map_err(io)?;
            for r in rows {
                w.write_record(&r).map_err(io)?;
            }
        }
        // No table shape: one column of the answer's JSON.
        None => {
            w.write_record(["answer"]).map_err(io)?;
            w.write_record([v.to_string()]).map_err(io)?;
        }
    }
    w.flush()?;
    Ok(())
}

// ---- the command ----

/// `stickydb metrics`.
pub(super) fn metrics_cmd(cli: &Cli, metric: &MetricsCommand) -> Result<(), Error> {
    let v = match metric {
        MetricsCommand::Active(a) => {
            let (db, from, to, filter) = ranged(cli, &a.range, a.segment.as_deref())?;
            active(&db, from, to, a.kind.as_deref(), filter.as_ref())?
        }
        MetricsCommand::Daily { range } => {
            let (db, from, to, _) = ranged(cli, range, None)?;
            daily(&db, from, to)?
        }
    };
    answer(cli, &v)
}

/// `stickydb retention`.
pub(super) fn retention_cmd(cli: &Cli, a: &RetentionArgs) -> Result<(), Error> {
    let (db, _, _, filter) = ranged(cli, &a.range, a.segment.as_deref())?;
    kind_arg(&db, a.start_kind.as_deref())?;
    kind_arg(&db, a.return_kind.as_deref())?;
    let v = retention(&db, &a.query()?, filter.as_ref())?;
    if cli.output() != super::OutputFormat::Table {
        return answer(cli, &v);
    }
    for c in v["cohorts"].as_array().into_iter().flatten() {
        outln!(
            "{} {:>7} {}",
            c["cohort"].as_str().unwrap_or(""),
            c["size"],
            c["counts"]
        );
    }
    Ok(())
}

/// `stickydb lifecycle`.
pub(super) fn lifecycle_cmd(cli: &Cli, a: &LifecycleArgs) -> Result<(), Error> {
    let (db, from, to, filter) = ranged(cli, &a.range, a.segment.as_deref())?;
    answer(
        cli,
        &lifecycle(&db, a.period.into(), from, to, filter.as_ref())?,
    )
}

/// `stickydb stages`.
pub(super) fn stages_cmd(
    cli: &Cli,
    as_of: Option<&str>,
    segment: &Option<String>,
    now: i64,
) -> Result<(), Error> {
    let db = open_existing(cli, true)?;
    let at = super::human::as_of(&db, as_of, now)?;
    let filter = segment_filter(&db, segment.as_deref(), at.day)?;
    answer_as_of(cli, &at, stages(&db, at.day, filter.as_ref())?)
}

/// An answer stating its as-of instant and why that one (a table's first
/// line; JSON and CSV carry the day only, in `as_of`).
fn answer_as_of(cli: &Cli, at: &super::human::AsOf, mut v: Value) -> Result<(), Error> {
    if cli.output() == super::OutputFormat::Table {
        outln!("{}", at.line());
        if let Some(o) = v.as_object_mut() {
            o.remove("as_of");
        }
    }
    answer(cli, &v)
}

/// `stickydb rfm`.
pub(super) fn rfm_cmd(
    cli: &Cli,
    as_of: Option<&str>,
    segment: &Option<String>,
    list: &Option<usize>,
    now: i64,
) -> Result<(), Error> {
    let db = open_existing(cli, true)?;
    let at = super::human::as_of(&db, as_of, now)?;
    let filter = segment_filter(&db, segment.as_deref(), at.day)?;
    answer_as_of(cli, &at, rfm(&db, at.day, filter.as_ref(), *list)?)
}

/// `stickydb funnel`.
pub(super) fn funnel_cmd(
    cli: &Cli,
    steps: &[String],
    window: &str,
    range: &DayRange,
    segment: &Option<String>,
) -> Result<(), Error> {
    let (db, from, to, filter) = ranged(cli, range, segment.as_deref())?;
    let window_ms = duration_ms("window", window)?;
    answer(
        cli,
        &funnel(&db, steps, window_ms, from, to, filter.as_ref())?,
    )
}

/// `stickydb stickinessdist`.
pub(super) fn stickiness_dist_cmd(
    cli: &Cli,
    range: &DayRange,
    kind: &Option<String>,
    segment: &Option<String>,
) -> Result<(), Error> {
    let (db, from, to, filter) = ranged(cli, range, segment.as_deref())?;
    answer(
        cli,
        &stickiness_dist(&db, from, to, kind.as_deref(), filter.as_ref())?,
    )
}

/// `stickydb habits`.
pub(super) fn habits_cmd(cli: &Cli, user: &Option<String>, now: i64) -> Result<(), Error> {
    let db = open_existing(cli, true)?;
    let today = db.local_day(now);
    answer(cli, &habits(&db, user.as_deref(), today)?)
}
