//! The `stickydb` command line: a thin layer over the library API.
//!
//! Owns argument parsing, output formatting and the synthetic-data demo. Must
//! not hold metric or storage logic: every number it prints comes from a
//! [`crate::Db`] call.

mod demo;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

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
    },
    /// Count or list the users of a segment, e.g. "tag:vip and not tag:churn_risk".
    Segment {
        /// The segment expression.
        expr: String,
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

/// Runs one parsed command.
pub fn run(cli: &Cli) -> Result<(), Error> {
    match &cli.command {
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
        Command::Demo { users, days, seed } => demo::run(cli, *users, *days, *seed),
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
            if cli.json {
                let v = serde_json::json!({
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
            for e in &newest {
                println!(
                    "  {} {:<12} {}",
                    e.event.ts_ms,
                    e.event.kind.as_str(),
                    e.event
                        .amount_minor
                        .map(|a| a.to_string())
                        .unwrap_or_default()
                );
            }
            Ok(())
        }
        Command::Segment { expr, list } => {
            let db = open_existing(cli, true)?;
            let seg = crate::Segment::parse(expr)?;
            let users = db.segment(&seg, now_ms())?;
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
