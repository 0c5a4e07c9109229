//! The `stickydb` command line: a thin layer over the library API.
//!
//! Owns argument parsing, output formatting and the synthetic-data demo. Must
//! not hold metric or storage logic: every number it prints comes from a
//! [`crate::Db`] call.

mod demo;
pub mod export;
pub mod import;
pub mod points;
pub mod query;
pub mod report;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::metrics::{Period, ReturnMode};
use crate::{Db, Error, Options, Sensitive};

/// stickydb: profiles, timelines and engagement metrics kept exact on write.
#[derive(Debug, Parser)]
#[command(name = "stickydb", version, about)]
pub struct Cli {
    /// Store directory.
    #[arg(long, global = true, default_value = "stickydb-data")]
    pub db: PathBuf,
    /// Print machine-readable JSON on stdout.
    #[arg(long, global = true)]
    pub json: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The CLI's commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a store.
    Init {
        /// The store's fixed UTC offset, e.g. +08:00 or -05:30.
        #[arg(long, default_value = "+00:00", allow_hyphen_values = true)]
        utc_offset: String,
    },
    /// Import events (or profiles) from JSON-lines or CSV files.
    Import {
        /// Files to read, in order.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// File format (default: by extension, .csv = csv, else jsonl).
        #[arg(long, value_enum)]
        format: Option<import::Format>,
        /// What the records are.
        #[arg(long, value_enum, default_value = "events")]
        records: import::Records,
        /// Stop at the first bad record, writing nothing of its batch (the default).
        #[arg(long, conflicts_with = "skip_bad")]
        strict: bool,
        /// Leave out and report up to N bad records.
        #[arg(long)]
        skip_bad: Option<u64>,
        /// Create the store with this UTC offset if it does not exist.
        #[arg(long, allow_hyphen_values = true)]
        utc_offset: Option<String>,
    },
    /// DAU/WAU/MAU/stickiness or daily counters.
    Metrics {
        /// Which metric.
        #[command(subcommand)]
        metric: MetricsCommand,
    },
    /// A retention matrix.
    Retention {
        /// Cohort period.
        #[arg(long, value_enum, default_value = "day")]
        period: PeriodArg,
        /// The local days asked about.
        #[command(flatten)]
        range: DayRange,
        /// Most offsets per cohort.
        #[arg(long)]
        max_offset: Option<u32>,
        /// Cohorts by first event of this kind (default: first activity).
        #[arg(long)]
        start_kind: Option<String>,
        /// Returns are events of this kind (default: any activity).
        #[arg(long)]
        return_kind: Option<String>,
        /// Count returns in period c+n only, or in c+n or later.
        #[arg(long, value_enum, default_value = "on")]
        mode: ModeArg,
        /// Restrict to a segment.
        #[arg(long)]
        segment: Option<String>,
    },
    /// New / returning / resurrecting / dormant users per period.
    Lifecycle {
        /// Period.
        #[arg(long, value_enum, default_value = "week")]
        period: PeriodArg,
        /// The local days asked about.
        #[command(flatten)]
        range: DayRange,
        /// Restrict to a segment.
        #[arg(long)]
        segment: Option<String>,
    },
    /// Users per lifecycle stage.
    Stages {
        /// The day, YYYY-MM-DD.
        #[arg(long)]
        as_of: String,
        /// Restrict to a segment.
        #[arg(long)]
        segment: Option<String>,
    },
    /// RFM segments (and, with --list, per-purchaser scores).
    Rfm {
        /// The day, YYYY-MM-DD.
        #[arg(long)]
        as_of: String,
        /// Restrict to a segment.
        #[arg(long)]
        segment: Option<String>,
        /// Include the first N purchasers' rows.
        #[arg(long)]
        list: Option<usize>,
    },
    /// An ordered funnel, e.g. --steps view,add_to_cart,purchase --window 1d.
    Funnel {
        /// Step kinds, comma-separated.
        #[arg(long, value_delimiter = ',', required = true)]
        steps: Vec<String>,
        /// Window from the first step: 30m, 12h, 1d, …
        #[arg(long)]
        window: String,
        /// The local days asked about.
        #[command(flatten)]
        range: DayRange,
        /// Restrict to a segment.
        #[arg(long)]
        segment: Option<String>,
    },
    /// Users by number of active days in a range.
    StickinessDist {
        /// The local days asked about.
        #[command(flatten)]
        range: DayRange,
        /// Only events of this kind.
        #[arg(long)]
        kind: Option<String>,
        /// Restrict to a segment.
        #[arg(long)]
        segment: Option<String>,
    },
    /// Events by local hour and weekday, store-wide or for one user.
    Habits {
        /// External user id.
        #[arg(long)]
        user: Option<String>,
    },
    /// Per-user exports.
    Users {
        /// What to do.
        #[command(subcommand)]
        command: UsersCommand,
    },
    /// The loyalty ledger.
    Points {
        /// The operation.
        #[command(subcommand)]
        command: points::PointsCommand,
    },
    /// Write a self-contained HTML report with charts.
    Report {
        /// The local days asked about.
        #[command(flatten)]
        range: DayRange,
        /// Output file.
        #[arg(long, default_value = "report.html")]
        out: PathBuf,
    },
    /// Generate synthetic e-commerce behaviour, ingest it and show what is stored.
    Demo {
        /// Number of users to simulate.
        #[arg(long, default_value_t = 20_000)]
        users: u32,
        /// Number of days to simulate.
        #[arg(long, default_value_t = 60)]
        days: u32,
        /// Random seed (the same seed gives the same store).
        #[arg(long, default_value_t = 7)]
        seed: u64,
        /// Where to write the HTML report.
        #[arg(long, default_value = "report.html")]
        report: PathBuf,
    },
    /// Sizes and counts of the store.
    Stats,
    /// Recompute every maintained structure and report differences.
    Verify,
    /// Rebuild every aggregate from the raw events (the repair when verify
    /// reports aggregate damage); writers are held off meanwhile.
    RebuildAggregates,
    /// Show one user's profile and newest events.
    User {
        /// External user id.
        id: String,
        /// How many newest events to show.
        #[arg(long, default_value_t = 10)]
        events: usize,
        /// Also show attributes marked sensitive.
        #[arg(long)]
        show_sensitive: bool,
        /// Metrics as of this local day, YYYY-MM-DD (default: today).
        #[arg(long)]
        as_of: Option<String>,
    },
    /// Count or list the users of a segment, e.g. "tag:vip and not tag:churn_risk".
    Segment {
        /// The segment expression (grammar: docs/architecture.md, "Segments").
        expr: String,
        /// Print only the count (the default without --list).
        #[arg(long, conflicts_with = "list")]
        count: bool,
        /// Evaluate time-relative atoms (stage, rfm, active_within, …) as of
        /// the end of this local day, YYYY-MM-DD (default: now).
        #[arg(long)]
        as_of: Option<String>,
        /// List the users (external ids), at most this many.
        #[arg(long)]
        list: Option<usize>,
    },
    /// Write a consistent copy of the store to DIR.
    Checkpoint {
        /// Target directory (must not exist).
        dir: PathBuf,
    },
}

/// `--from D --to D`: an inclusive range of local days.
#[derive(Debug, clap::Args)]
pub struct DayRange {
    /// First day, YYYY-MM-DD.
    #[arg(long)]
    pub from: String,
    /// Last day, YYYY-MM-DD.
    #[arg(long)]
    pub to: String,
}

impl DayRange {
    /// The range as local day numbers.
    pub fn days(&self) -> Result<(i32, i32), Error> {
        Ok((
            query::day_arg("from", &self.from)?,
            query::day_arg("to", &self.to)?,
        ))
    }
}

/// `metrics` subcommands.
#[derive(Debug, Subcommand)]
pub enum MetricsCommand {
    /// One row per day: dau, wau, mau, stickiness.
    Active {
        /// The local days asked about.
        #[command(flatten)]
        range: DayRange,
        /// Only events of this kind.
        #[arg(long)]
        kind: Option<String>,
        /// Restrict to a segment.
        #[arg(long)]
        segment: Option<String>,
    },
    /// One row per day: events per kind, orders, gmv, refunds, aov, new users, sessions.
    Daily {
        /// The local days asked about.
        #[command(flatten)]
        range: DayRange,
    },
}

/// `users` subcommands.
#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// One row per user: activity, purchases, CLV summary, stage, RFM, tier, points.
    Export {
        /// The day, YYYY-MM-DD.
        #[arg(long)]
        as_of: String,
        /// Output format.
        #[arg(long, value_enum, default_value = "csv")]
        format: export::ExportFormat,
        /// Output file (default: standard output).
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

/// A calendar period argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PeriodArg {
    /// Local days.
    Day,
    /// ISO weeks, named by their Monday.
    Week,
    /// Calendar months, named by their first day.
    Month,
}

impl From<PeriodArg> for Period {
    fn from(p: PeriodArg) -> Self {
        match p {
            PeriodArg::Day => Period::Day,
            PeriodArg::Week => Period::Week,
            PeriodArg::Month => Period::Month,
        }
    }
}

/// A retention mode argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ModeArg {
    /// Returns in period c+n.
    On,
    /// Returns in period c+n or later.
    OnOrAfter,
}

/// Parses the UTC offset syntax `±HH:MM`.
pub fn parse_utc_offset(text: &str) -> Result<i32, Error> {
    let bad = || {
        crate::InputError::new(
            "utc_offset",
            crate::Problem::Unparsable {
                reason: format!("{text:?} is not ±HH:MM"),
            },
        )
    };
    let (sign, rest) = match text.as_bytes().first() {
        Some(b'+') => (1, &text[1..]),
        Some(b'-') => (-1, &text[1..]),
        _ => return Err(bad().into()),
    };
    let (h, m) = rest.split_once(':').ok_or_else(bad)?;
    if h.len() != 2 || m.len() != 2 {
        return Err(bad().into());
    }
    let h: i32 = h.parse().map_err(|_| bad())?;
    let m: i32 = m.parse().map_err(|_| bad())?;
    if m >= 60 {
        return Err(bad().into());
    }
    Ok(sign * (h * 60 + m))
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn open_existing(cli: &Cli, read_only: bool) -> Result<Db, Error> {
    Db::open(
        &cli.db,
        Options {
            create_if_missing: false,
            read_only,
            ..Options::default()
        },
    )
}

fn print_json<T: serde::Serialize>(value: &T) -> Result<(), Error> {
    let text =
        serde_json::to_string_pretty(value).map_err(|e| Error::Io(std::io::Error::other(e)))?;
    println!("{text}");
    Ok(())
}

/// Prints an answer: JSON with `--json`, else a table.
fn answer(cli: &Cli, v: &serde_json::Value) -> Result<(), Error> {
    if cli.json {
        print_json(v)
    } else {
        query::print_table(v);
        Ok(())
    }
}

/// The read-only store, the day range and the segment (evaluated at the
/// range's last day) of a query over a range.
fn ranged(
    cli: &Cli,
    range: &DayRange,
    segment: Option<&str>,
) -> Result<(Db, i32, i32, Option<roaring::RoaringBitmap>), Error> {
    let db = open_existing(cli, true)?;
    let (from, to) = range.days()?;
    let filter = query::segment_filter(&db, segment, to)?;
    Ok((db, from, to, filter))
}

/// Runs one parsed command.
pub fn run(cli: &Cli) -> Result<(), Error> {
    let now = now_ms();
    match &cli.command {
        Command::Import {
            files,
            format,
            records,
            strict: _,
            skip_bad,
            utc_offset,
        } => {
            let db = match utc_offset {
                Some(o) => Db::open(
                    &cli.db,
                    Options {
                        utc_offset_minutes: Some(parse_utc_offset(o)?),
                        ..Options::default()
                    },
                )?,
                None => open_existing(cli, false)?,
            };
            let summary = import::run(&db, files, *format, *records, skip_bad.unwrap_or(0), now)?;
            if cli.json {
                return print_json(&summary);
            }
            println!(
                "imported {}, duplicates {}, rejected {}",
                summary.imported, summary.duplicates, summary.rejected
            );
            Ok(())
        }
        Command::Metrics { metric } => {
            let v = match metric {
                MetricsCommand::Active {
                    range,
                    kind,
                    segment,
                } => {
                    let (db, from, to, filter) = ranged(cli, range, segment.as_deref())?;
                    query::active(&db, from, to, kind.as_deref(), filter.as_ref())?
                }
                MetricsCommand::Daily { range } => {
                    let (db, from, to, _) = ranged(cli, range, None)?;
                    query::daily(&db, from, to)?
                }
            };
            answer(cli, &v)
        }
        Command::Retention {
            period,
            range,
            max_offset,
            start_kind,
            return_kind,
            mode,
            segment,
        } => {
            let (db, from, to, filter) = ranged(cli, range, segment.as_deref())?;
            let a = query::Retention {
                period: (*period).into(),
                from,
                to,
                max_offset: *max_offset,
                start_kind: start_kind.as_deref(),
                return_kind: return_kind.as_deref(),
                mode: match mode {
                    ModeArg::On => ReturnMode::On,
                    ModeArg::OnOrAfter => ReturnMode::OnOrAfter,
                },
            };
            let v = query::retention(&db, &a, filter.as_ref())?;
            if cli.json {
                return print_json(&v);
            }
            for c in v["cohorts"].as_array().into_iter().flatten() {
                println!(
                    "{} {:>7} {}",
                    c["cohort"].as_str().unwrap_or(""),
                    c["size"],
                    c["counts"]
                );
            }
            Ok(())
        }
        Command::Lifecycle {
            period,
            range,
            segment,
        } => {
            let (db, from, to, filter) = ranged(cli, range, segment.as_deref())?;
            answer(
                cli,
                &query::lifecycle(&db, (*period).into(), from, to, filter.as_ref())?,
            )
        }
        Command::Stages { as_of, segment } => {
            let db = open_existing(cli, true)?;
            let as_of = query::day_arg("as_of", as_of)?;
            let filter = query::segment_filter(&db, segment.as_deref(), as_of)?;
            answer(cli, &query::stages(&db, as_of, filter.as_ref())?)
        }
        Command::Rfm {
            as_of,
            segment,
            list,
        } => {
            let db = open_existing(cli, true)?;
            let as_of = query::day_arg("as_of", as_of)?;
            let filter = query::segment_filter(&db, segment.as_deref(), as_of)?;
            answer(cli, &query::rfm(&db, as_of, filter.as_ref(), *list)?)
        }
        Command::Funnel {
            steps,
            window,
            range,
            segment,
        } => {
            let (db, from, to, filter) = ranged(cli, range, segment.as_deref())?;
            let window_ms = query::duration_ms("window", window)?;
            answer(
                cli,
                &query::funnel(&db, steps, window_ms, from, to, filter.as_ref())?,
            )
        }
        Command::StickinessDist {
            range,
            kind,
            segment,
        } => {
            let (db, from, to, filter) = ranged(cli, range, segment.as_deref())?;
            answer(
                cli,
                &query::stickiness_dist(&db, from, to, kind.as_deref(), filter.as_ref())?,
            )
        }
        Command::Habits { user } => {
            let db = open_existing(cli, true)?;
            let today = db.local_day(now);
            answer(cli, &query::habits(&db, user.as_deref(), today)?)
        }
        Command::Users {
            command: UsersCommand::Export { as_of, format, out },
        } => {
            let db = open_existing(cli, true)?;
            let rows = export::rows(&db, query::day_arg("as_of", as_of)?)?;
            match out {
                Some(path) => {
                    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
                    export::write(&rows, *format, &mut f)?;
                    eprintln!("{} users written to {}", rows.len(), path.display());
                }
                None => export::write(&rows, *format, &mut std::io::stdout().lock())?,
            }
            Ok(())
        }
        Command::Points { command } => {
            let read_only = matches!(command, points::PointsCommand::History { .. });
            let db = open_existing(cli, read_only)?;
            let v = points::run(&db, command, now)?;
            if cli.json {
                return print_json(&v);
            }
            println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
            Ok(())
        }
        Command::Report { range, out } => {
            let db = open_existing(cli, true)?;
            let (from, to) = range.days()?;
            let data = report::data(&db, from, to)?;
            std::fs::write(out, report::html(&data))?;
            println!("report written to {}", out.display());
            Ok(())
        }
        Command::Init { utc_offset } => {
            let minutes = parse_utc_offset(utc_offset)?;
            let db = Db::open(
                &cli.db,
                Options {
                    utc_offset_minutes: Some(minutes),
                    ..Options::default()
                },
            )?;
            println!(
                "store at {} (UTC offset {} min)",
                db.path().display(),
                db.settings().utc_offset_minutes
            );
            Ok(())
        }
        Command::Demo {
            users,
            days,
            seed,
            report,
        } => demo::run(cli, *users, *days, *seed, report),
        Command::Stats => {
            let db = open_existing(cli, true)?;
            let stats = db.stats()?;
            if cli.json {
                return print_json(&stats);
            }
            println!("users  {}", stats.users);
            println!("events {}", stats.events);
            for (kind, n) in &stats.events_by_kind {
                println!("  {kind:<14} {n}");
            }
            println!(
                "{:<14} {:>12} {:>14} {:>14}",
                "column family", "keys", "sst bytes", "memtable"
            );
            for (name, cf) in &stats.column_families {
                println!(
                    "{name:<14} {:>12} {:>14} {:>14}",
                    cf.estimated_keys, cf.sst_bytes, cf.memtable_bytes
                );
            }
            for (name, v) in &stats.engine {
                println!("{name:<36} {v:>14}");
            }
            Ok(())
        }
        Command::Verify => {
            let db = open_existing(cli, true)?;
            let report = db.verify()?;
            if cli.json {
                print_json(&report)?;
            } else {
                for (cf, n) in &report.checked {
                    println!("checked {n:>10} records in {cf}");
                }
                for p in &report.problems {
                    println!("PROBLEM: {p}");
                }
                println!("{} problem(s)", report.problem_count);
            }
            if report.is_clean() {
                Ok(())
            } else {
                Err(Error::Corruption(crate::CorruptionError {
                    cf: "*",
                    what: "store",
                    key: Vec::new(),
                    reason: format!("verify found {} problem(s)", report.problem_count),
                }))
            }
        }
        Command::RebuildAggregates => {
            let db = open_existing(cli, false)?;
            let started = std::time::Instant::now();
            let replayed = db.rebuild_aggregates()?;
            let report = db.verify()?;
            if cli.json {
                print_json(&serde_json::json!({
                    "events_replayed": replayed,
                    "verify_problems": report.problem_count,
                }))?;
            } else {
                println!(
                    "rebuilt aggregates from {replayed} events in {:.1} s; verify: {} problem(s)",
                    started.elapsed().as_secs_f64(),
                    report.problem_count
                );
            }
            Ok(())
        }
        Command::User {
            id,
            events,
            show_sensitive,
            as_of,
        } => {
            let db = open_existing(cli, true)?;
            let sensitive = if *show_sensitive {
                Sensitive::Include
            } else {
                Sensitive::Exclude
            };
            let Some(profile) = db.profile(id, sensitive)? else {
                return Err(Error::UnknownUser { user: id.clone() });
            };
            let newest = db.newest(id, *events)?;
            let account = db.account(id)?;
            let as_of = match as_of {
                Some(d) => query::day_arg("as_of", d)?,
                None => db.local_day(now),
            };
            let metrics = match db.user_id(id)? {
                Some(uid) => db.metrics().user(uid, as_of)?,
                None => None,
            };
            if cli.json {
                let v = serde_json::json!({
                    "account": account,
                    "metrics": metrics,
                    "user": id,
                    "attributes": profile.attributes.iter().map(|(k, v)| (k.clone(), format!("{v:?}"))).collect::<std::collections::BTreeMap<_, _>>(),
                    "withheld": profile.withheld,
                    "tags": profile.tags.keys().collect::<Vec<_>>(),
                    "events": newest.iter().map(|e| serde_json::json!({
                        "kind": e.event.kind.as_str(), "ts_ms": e.event.ts_ms,
                        "event_id": e.event.event_id, "amount_minor": e.event.amount_minor,
                    })).collect::<Vec<_>>(),
                });
                return print_json(&v);
            }
            println!("user {id}");
            for (k, v) in &profile.attributes {
                println!("  {k} = {v:?}");
            }
            for k in &profile.withheld {
                println!("  {k} = (sensitive; --show-sensitive to see)");
            }
            for (k, t) in &profile.tags {
                println!("  tag {k} ({:?}, updated {})", t.source, t.updated_at_ms);
            }
            if let Some(m) = &metrics {
                println!(
                    "  stage {}, active days {}, purchases {} ({} minor units), first seen {}, last seen {}",
                    m.stage.as_deref().unwrap_or("-"),
                    m.active_days,
                    m.purchase_count,
                    m.total_spend_minor,
                    m.first_seen_day.map(crate::time::format_day).unwrap_or_default(),
                    m.last_seen_day.map(crate::time::format_day).unwrap_or_default(),
                );
            }
            if let Some(a) = &account {
                println!(
                    "  points: balance {}, held {}, tier {}",
                    a.balance,
                    a.held,
                    a.tier.as_deref().unwrap_or("-")
                );
            }
            for e in &newest {
                println!(
                    "  {} {:<12} {}",
                    crate::time::format_day(db.local_day(e.event.ts_ms)),
                    e.event.kind.as_str(),
                    e.event
                        .amount_minor
                        .map(|a| a.to_string())
                        .unwrap_or_default()
                );
            }
            Ok(())
        }
        Command::Segment {
            expr, list, as_of, ..
        } => {
            let db = open_existing(cli, true)?;
            let seg = crate::Segment::parse(expr)?;
            let at = match as_of {
                Some(d) => query::day_end_ms(&db, query::day_arg("as_of", d)?),
                None => now,
            };
            let users = db.segment(&seg, at)?;
            let mut names = Vec::new();
            if let Some(n) = list {
                for id in users.iter().take(*n) {
                    names.push(db.user_name(id)?.unwrap_or_default());
                }
            }
            if cli.json {
                return print_json(&serde_json::json!({"count": users.len(), "users": names}));
            }
            println!("{} users", users.len());
            for n in names {
                println!("  {n}");
            }
            Ok(())
        }
        Command::Checkpoint { dir } => {
            let db = open_existing(cli, false)?;
            db.checkpoint(dir)?;
            println!("checkpoint written to {}", dir.display());
            Ok(())
        }
    }
}

/// Entry point of the binary: parses arguments, runs, maps errors to exit codes.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
