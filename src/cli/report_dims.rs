//! The report's charts of what users did and spent (docs/cli.md,
//! "Report"): the top values of a dimension day by day, net revenue of the
//! users each top value first brought (first touch), the weekly cohorts'
//! LTV curves and session depth. Built by the same library calls as
//! `breakdown`, `revenue`, `ltv` and `sessions`.

use serde_json::{json, Value};

use crate::dims::BreakdownQuery;
use crate::metrics::Period;
use crate::segments::Segment;
use crate::time::format_day;
use crate::{Db, Error};

/// Values a chart of one dimension shows (the rest fold into `(other)`).
const TOP_VALUES: usize = 5;
/// Periods after its own a weekly cohort's LTV curve runs.
const LTV_WEEKS: u32 = 12;

/// The data of the dimension, revenue, LTV and session charts.
pub(super) fn data(db: &Db, from: i32, to: i32) -> Result<Value, Error> {
    let now_ms =
        crate::time::local_midnight_ms(to.saturating_add(1), db.settings().utc_offset_minutes);
    let ltv = db
        .metrics()
        .ltv(Period::Week, (from, to), LTV_WEEKS, None, None)?;
    let sessions: Vec<Value> = db
        .metrics()
        .sessions(from, to, None)?
        .iter()
        .map(|r| {
            json!({"day": format_day(r.day), "sessions": r.sessions, "bounce_rate": r.bounce_rate,
                   "mean_duration_ms": r.mean_duration_ms, "mean_events": r.mean_events})
        })
        .collect();
    Ok(json!({
        "breakdown": breakdown(db, from, to, now_ms)?,
        "ltv": ltv.cohorts.iter().map(|c| json!({
            "cohort": format_day(c.cohort), "size": c.size,
            "cumulative_net_minor": c.cumulative_net_minor,
        })).collect::<Vec<_>>(),
        "sessions": sessions,
    }))
}

/// The dimension the report breaks down by: `channel` when declared, else
/// the first declared.
fn dimension(db: &Db) -> Option<String> {
    let names: Vec<String> = db
        .dimensions()
        .into_iter()
        .map(|d| d.dimension.name)
        .collect();
    names
        .iter()
        .find(|n| *n == "channel")
        .or(names.first())
        .cloned()
}

/// Users per top value per day, and net revenue per day of each top
/// value's first-touch users (`null` without a dimension).
fn breakdown(db: &Db, from: i32, to: i32, now_ms: i64) -> Result<Value, Error> {
    let Some(by) = dimension(db) else {
        return Ok(Value::Null);
    };
    let q = BreakdownQuery::new(&by, from, to).top(TOP_VALUES);
    let b = db.breakdown(&q, None, now_ms)?;
    let rows: Vec<Value> = b
        .rows
        .iter()
        .map(|r| json!({"day": format_day(r.day), "value": r.value, "users": r.users}))
        .collect();
    let mut values: Vec<&str> = Vec::new();
    for r in &b.rows {
        if r.value != crate::dims::OTHER && !values.contains(&r.value.as_str()) {
            values.push(&r.value);
        }
    }
    let mut revenue = Vec::new();
    for value in values {
        // (built, not parsed: a value may hold what the grammar splits on)
        let segment = Segment::Touch {
            last: false,
            dim: by.clone(),
            value: value.to_owned(),
        };
        let users = db.segment(&segment, now_ms)?;
        let rows: Vec<Value> = db
            .metrics()
            .revenue(from, to, Some(&users))?
            .iter()
            .map(|r| json!({"day": format_day(r.day), "net_minor": r.net_minor}))
            .collect();
        revenue.push(json!({"value": value, "users": users.len(), "rows": rows}));
    }
    Ok(json!({"by": by, "rows": rows, "revenue_by_first_touch": revenue}))
}
