//! `stickydb dims add|list|drop`, `stickydb breakdown`, `stickydb revenue`,
//! `stickydb ltv` and `stickydb sessions`: what users did and spent
//! (docs/cli.md, docs/metrics.md "Dimensions", "Revenue", "LTV", "Sessions").

use serde_json::json;

use super::query::{day_arg, day_end_ms};
use super::{open_existing, print_json, Cli};
use crate::dims::{BreakdownQuery, Dimension, DEFAULT_MAX_VALUES};
use crate::time::format_day;
use crate::{Error, InputError, Problem};

/// What `stickydb dims` does.
#[derive(Debug, clap::Subcommand)]
pub enum DimsCommand {
    /// Declare event property NAME a dimension (backfilled from the
    /// stored events as a resumable job).
    Add {
        /// The event property.
        name: String,
        /// Read it only from these kinds (comma-separated; default all).
        #[arg(long, value_delimiter = ',')]
        kinds: Vec<String>,
        /// Distinct values tracked exactly; the rest fold into `(other)`.
        #[arg(long, default_value_t = DEFAULT_MAX_VALUES)]
        max_values: u32,
    },
    /// The declared dimensions.
    List,
    /// Drop a dimension with its aggregates.
    Drop {
        /// The dimension.
        name: String,
    },
}

/// `stickydb breakdown`'s arguments.
#[derive(Debug, clap::Args)]
pub struct BreakdownArgs {
    /// The dimension.
    #[arg(long)]
    pub by: String,
    /// Users and events of this kind (default: any activity kind).
    #[arg(long)]
    pub kind: Option<String>,
    /// First day, YYYY-MM-DD.
    #[arg(long)]
    pub from: String,
    /// Last day, YYYY-MM-DD.
    #[arg(long)]
    pub to: String,
    /// Only users in this segment (as of the last day).
    #[arg(long)]
    pub segment: Option<String>,
    /// Keep the N values with the most users; fold the rest into `(other)`.
    #[arg(long)]
    pub top: Option<usize>,
    /// Rolling users: 7d or 30d (default: each day's).
    #[arg(long)]
    pub window: Option<String>,
}

/// Runs one `dims` subcommand.
pub(super) fn dims_cmd(cli: &Cli, cmd: &DimsCommand) -> Result<(), Error> {
    match cmd {
        DimsCommand::Add {
            name,
            kinds,
            max_values,
        } => {
            let db = open_existing(cli, false)?;
            let d = Dimension::new(name.clone())
                .kinds(kinds.iter().cloned())
                .max_values(*max_values);
            db.declare_dimension(&d)?;
            done(cli, json!({"declared": name}))
        }
        DimsCommand::Drop { name } => {
            let db = open_existing(cli, false)?;
            db.drop_dimension(name)?;
            done(cli, json!({"dropped": name}))
        }
        DimsCommand::List => {
            let db = open_existing(cli, true)?;
            let dims = db.dimensions();
            if cli.wants_json() {
                return print_json(&json!({ "dimensions": dims }));
            }
            for d in dims {
                let kinds = match d.dimension.kinds.is_empty() {
                    true => "all kinds".to_owned(),
                    false => d.dimension.kinds.join(","),
                };
                let full = if d.full {
                    " (full: new values fold into (other))"
                } else {
                    ""
                };
                let (n, max) = (d.values, d.dimension.max_values);
                outln!("{}\t{kinds}\t{n}/{max} values{full}", d.dimension.name);
            }
            Ok(())
        }
    }
}

fn done(cli: &Cli, v: serde_json::Value) -> Result<(), Error> {
    if cli.wants_json() {
        return print_json(&v);
    }
    outln!("{v}");
    Ok(())
}

/// `stickydb breakdown`.
pub(super) fn breakdown(cli: &Cli, a: &BreakdownArgs) -> Result<(), Error> {
    let db = open_existing(cli, true)?;
    let (from, to) = (day_arg("from", &a.from)?, day_arg("to", &a.to)?);
    let window_days = match a.window.as_deref() {
        None => 1,
        Some("7d") => 7,
        Some("30d") => 30,
        Some(other) => {
            let reason = format!("{other:?}: 7d or 30d");
            return Err(InputError::new("window", Problem::Invalid { reason }).into());
        }
    };
    let mut q = BreakdownQuery::new(a.by.clone(), from, to).window_days(window_days);
    if let Some(k) = &a.kind {
        q = q.kind(super::query::known_kind(&db, k)?.as_str());
    }
    if let Some(n) = a.top {
        q = q.top(n);
    }
    let segment = a
        .segment
        .as_deref()
        .map(crate::Segment::parse)
        .transpose()?;
    let b = db.breakdown(&q, segment.as_ref(), day_end_ms(&db, to))?;
    let rows: Vec<_> = b
        .rows
        .iter()
        .map(|r| {
            json!({"day": format_day(r.day), "value": r.value, "users": r.users,
                   "events": r.events, "orders": r.orders, "gmv_minor": r.gmv_minor})
        })
        .collect();
    if cli.wants_json() {
        return print_json(&json!({"by": b.by, "kind": b.kind, "rows": rows}));
    }
    outln!("day\tvalue\tusers\tevents\torders\tgmv_minor");
    for r in &b.rows {
        let opt = |v: Option<i64>| v.map_or("-".to_owned(), |n| n.to_string());
        outln!(
            "{}\t{}\t{}\t{}\t{}\t{}",
            format_day(r.day),
            r.value,
            r.users,
            opt(r.events.map(|n| n as i64)),
            opt(r.orders.map(|n| n as i64)),
            opt(r.gmv_minor)
        );
    }
    Ok(())
}

/// `stickydb revenue`'s arguments.
#[derive(Debug, clap::Args)]
pub struct RevenueArgs {
    /// First day, YYYY-MM-DD.
    #[arg(long)]
    pub from: String,
    /// Last day, YYYY-MM-DD.
    #[arg(long)]
    pub to: String,
    /// Only users in this segment (as of the last day).
    #[arg(long)]
    pub segment: Option<String>,
}

/// `stickydb revenue`.
pub(super) fn revenue(cli: &Cli, a: &RevenueArgs) -> Result<(), Error> {
    let db = open_existing(cli, true)?;
    let (from, to) = (day_arg("from", &a.from)?, day_arg("to", &a.to)?);
    let filter = super::query::segment_filter(&db, a.segment.as_deref(), to)?;
    let rows = db.metrics().revenue(from, to, filter.as_ref())?;
    let rows: Vec<_> = rows
        .iter()
        .map(|r| {
            json!({"day": format_day(r.day), "buyers": r.buyers, "orders": r.orders,
                   "gmv_minor": r.gmv_minor, "refunds_minor": r.refunds_minor,
                   "net_minor": r.net_minor, "aov_minor": r.aov_minor})
        })
        .collect();
    if cli.wants_json() {
        return print_json(&json!({ "rows": rows }));
    }
    outln!("day\tbuyers\torders\tgmv_minor\trefunds_minor\tnet_minor\taov_minor");
    for r in rows {
        let cell = |k: &str| match &r[k] {
            serde_json::Value::Null => "-".to_owned(),
            serde_json::Value::String(s) => s.clone(),
            v => v.to_string(),
        };
        let cells: Vec<String> = [
            "day",
            "buyers",
            "orders",
            "gmv_minor",
            "refunds_minor",
            "net_minor",
            "aov_minor",
        ]
        .iter()
        .map(|k| cell(k))
        .collect();
        outln!("{}", cells.join("\t"));
    }
    Ok(())
}

/// `stickydb ltv`'s arguments.
#[derive(Debug, clap::Args)]
pub struct LtvArgs {
    /// Cohort period.
    #[arg(long, value_enum, default_value = "month")]
    pub period: super::args::PeriodArg,
    /// The local days asked about.
    #[command(flatten)]
    pub range: super::args::DayRange,
    /// Most periods after each cohort's own.
    #[arg(long, default_value_t = 12)]
    pub max_offset: u32,
    /// Cohorts by first event of this kind (default: first activity).
    #[arg(long)]
    pub start_kind: Option<String>,
    /// Only users in this segment (as of the last day).
    #[arg(long)]
    pub segment: Option<String>,
}

/// `stickydb ltv`.
pub(super) fn ltv(cli: &Cli, a: &LtvArgs) -> Result<(), Error> {
    let db = open_existing(cli, true)?;
    let (from, to) = a.range.days()?;
    let filter = super::query::segment_filter(&db, a.segment.as_deref(), to)?;
    let kind = super::query::kind_arg(&db, a.start_kind.as_deref())?;
    let r = db.metrics().ltv(
        a.period.into(),
        (from, to),
        a.max_offset,
        kind.as_ref(),
        filter.as_ref(),
    )?;
    let cohorts: Vec<_> = r
        .cohorts
        .iter()
        .map(|c| {
            json!({"cohort": format_day(c.cohort), "size": c.size, "net_minor": c.net_minor,
                   "cumulative_net_minor": c.cumulative_net_minor})
        })
        .collect();
    if cli.wants_json() {
        return print_json(&json!({"period": r.period, "cohorts": cohorts}));
    }
    outln!("cohort\tsize\tcumulative net per user (minor units), period 0, 1, …");
    for c in &r.cohorts {
        let curve: Vec<String> = c
            .cumulative_net_minor
            .iter()
            .map(|x| format!("{x:.2}"))
            .collect();
        outln!("{}\t{}\t{}", format_day(c.cohort), c.size, curve.join("\t"));
    }
    Ok(())
}

/// `stickydb sessions`'s arguments.
#[derive(Debug, clap::Args)]
pub struct SessionsArgs {
    /// The local days asked about (a session's day is its first event's).
    #[command(flatten)]
    pub range: super::args::DayRange,
    /// Only users in this segment (as of the last day).
    #[arg(long)]
    pub segment: Option<String>,
}

/// `stickydb sessions`.
pub(super) fn sessions(cli: &Cli, a: &SessionsArgs) -> Result<(), Error> {
    let db = open_existing(cli, true)?;
    let (from, to) = a.range.days()?;
    let filter = super::query::segment_filter(&db, a.segment.as_deref(), to)?;
    let rows = db.metrics().sessions(from, to, filter.as_ref())?;
    if cli.wants_json() {
        let rows: Vec<_> = rows
            .iter()
            .map(|r| {
                json!({"day": format_day(r.day), "sessions": r.sessions, "bounces": r.bounces,
                       "bounce_rate": r.bounce_rate, "mean_duration_ms": r.mean_duration_ms,
                       "mean_events": r.mean_events})
            })
            .collect();
        return print_json(&json!({ "rows": rows }));
    }
    outln!("day\tsessions\tbounces\tbounce_rate\tmean_duration_ms\tmean_events");
    let opt = |v: Option<f64>| v.map_or("-".to_owned(), |x| format!("{x:.2}"));
    for r in &rows {
        outln!(
            "{}\t{}\t{}\t{}\t{}\t{}",
            format_day(r.day),
            r.sessions,
            r.bounces,
            opt(r.bounce_rate),
            opt(r.mean_duration_ms),
            opt(r.mean_events)
        );
    }
    Ok(())
}
