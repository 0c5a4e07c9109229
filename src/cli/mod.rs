//! The `stickydb` command line: a thin layer over the library API (behind
//! the `cli` cargo feature, on by default).
//!
//! Owns argument parsing (`args`), dispatch (here: one line per command into
//! its group's file), output formatting and the synthetic-data demo. Must
//! not hold metric or storage logic: every number it prints comes from a
//! [`crate::Db`] call.

/// `println!` for the CLI's answers: ends quietly in a closed pipe.
macro_rules! outln {
    () => {
        $crate::cli::out::write(format_args!(""), true)
    };
    ($($arg:tt)*) => {
        $crate::cli::out::write(format_args!($($arg)*), true)
    };
}

/// `print!` for the CLI's answers: ends quietly in a closed pipe.
#[allow(unused_macros)]
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::cli::out::write(format_args!($($arg)*), false)
    };
}

mod admin;
mod args;
mod args_sub;
pub mod coupons;
mod demo;
pub mod dims;
pub mod experiments;
pub mod export;
pub mod features;
pub mod feed;
pub mod human;
mod identity;
pub mod import;
mod inspect;
pub mod ops;
mod out;
pub mod points;
pub mod query;
pub mod report;
mod report_dims;
pub mod scale;
pub mod settings;
pub mod social;

use std::process::ExitCode;

use clap::Parser;

pub use args::{
    Cli, Command, DayRange, MetricsCommand, ModeArg, OutputFormat, PeriodArg, UsersCommand,
};
pub use social::{GroupStateArg, RankArg};

use crate::{Db, Error, InputError, Options, Problem};

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

pub(super) fn open_existing(cli: &Cli, read_only: bool) -> Result<Db, Error> {
    let db = Db::open(
        &cli.db,
        Options {
            create_if_missing: false,
            read_only,
            ..Options::default()
        },
    )?;
    human::set_table_offset(db.settings().utc_offset_minutes);
    Ok(db)
}

pub(super) fn print_json<T: serde::Serialize>(value: &T) -> Result<(), Error> {
    let text =
        serde_json::to_string_pretty(value).map_err(|e| Error::Io(std::io::Error::other(e)))?;
    outln!("{text}");
    Ok(())
}

/// Prints an answer: JSON with `--json`/`--format json`, CSV with
/// `--format csv`, else a table.
pub(super) fn answer(cli: &Cli, v: &serde_json::Value) -> Result<(), Error> {
    match cli.output() {
        OutputFormat::Json | OutputFormat::Jsonl => print_json(v),
        OutputFormat::Csv => query::print_csv(v),
        OutputFormat::Table | OutputFormat::Parquet => {
            query::print_table(v);
            Ok(())
        }
    }
}

/// The read-only store, the day range and the segment (evaluated at the
/// range's last day) of a query over a range.
pub(super) fn ranged(
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
    let exports = matches!(cli.command, Command::Users { .. });
    if cli.format == Some(OutputFormat::Parquet) && !exports {
        return Err(InputError::new(
            "format",
            Problem::Unparsable {
                reason: "parquet is the format of `users export --out FILE` only".into(),
            },
        )
        .into());
    }
    match &cli.command {
        Command::Import {
            files,
            records,
            strict: _,
            skip_bad,
            utc_offset,
        } => import::import_cmd(cli, files, records, skip_bad, utc_offset, now),
        Command::Metrics { metric } => query::metrics_cmd(cli, metric),
        Command::Retention(a) => query::retention_cmd(cli, a),
        Command::Lifecycle(a) => query::lifecycle_cmd(cli, a),
        Command::Stages {
            as_of,
            transitions: false,
            segment,
            ..
        } => query::stages_cmd(cli, as_of.as_deref(), segment, now),
        Command::Stages {
            from, to, segment, ..
        } => feed::transitions_cmd(cli, from, to, segment),
        Command::Advance {
            now: at,
            notice_days,
        } => feed::advance_cmd(cli, at, notice_days, now),
        Command::Feed {
            after,
            limit,
            follow,
            trim_through,
            trim_older_than,
        } => match trim_older_than {
            Some(age) => feed::trim_older_cmd(cli, age, now),
            None => feed::feed_cmd(cli, *after, *limit, *follow, *trim_through),
        },
        Command::Rfm {
            as_of,
            segment,
            list,
        } => query::rfm_cmd(cli, as_of.as_deref(), segment, list, now),
        Command::Funnel {
            steps,
            window,
            range,
            segment,
        } => query::funnel_cmd(cli, steps, window, range, segment),
        Command::StickinessDist {
            range,
            kind,
            segment,
        } => query::stickiness_dist_cmd(cli, range, kind, segment),
        Command::Habits { user } => query::habits_cmd(cli, user, now),
        Command::Sharers {
            range,
            top,
            by,
            segment,
        } => social::sharers_cmd(cli, range, *top, *by, segment),
        Command::Sharer { user, from, to } => social::sharer_cmd(cli, user, from, to),
        Command::Groups {
            from,
            to,
            id,
            as_of,
            segment,
            list,
            state,
        } => social::groups_cmd(
            cli,
            &social::GroupsArgs {
                from,
                to,
                id,
                as_of,
                segment,
                list: *list,
                state: state.map(Into::into),
            },
            now,
        ),
        Command::Viral {
            range,
            period_days,
            segment,
        } => social::viral_cmd(cli, range, *period_days, segment),
        Command::Users {
            command: UsersCommand::Export(args),
        } => export::export_cmd(cli, args, now),
        Command::Points { command } => points::points_cmd(cli, command, now),
        Command::Coupons { command } => coupons::coupons_cmd(cli, command, now),
        Command::Growth { user, at } => points::growth_cmd(cli, user, at.as_deref(), now),
        Command::Report { range, out } => report::report_cmd(cli, range, out),
        Command::Init {
            utc_offset,
            partition,
            exposure_kind,
            strict_kinds,
        } => admin::init(
            cli,
            utc_offset,
            partition.as_deref(),
            exposure_kind.as_deref(),
            strict_kinds.as_deref(),
        ),
        Command::Experiment(args) => experiments::experiment_cmd(cli, args, now),
        Command::Experiments => experiments::experiments_cmd(cli),
        Command::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(*shell, &mut cmd, "stickydb", &mut std::io::stdout());
            Ok(())
        }
        Command::Cluster(args) => scale::cluster(cli, args, now),
        Command::Export { target } => scale::export(cli, target, now),
        #[cfg(feature = "kafka")]
        Command::Consume(args) => scale::consume(cli, args),
        Command::Demo {
            users,
            days,
            seed,
            report,
        } => demo::run(cli, *users, *days, *seed, report),
        Command::Stats => admin::stats(cli),
        Command::Verify => admin::verify(cli),
        Command::RebuildAggregates => admin::rebuild_aggregates(cli),
        Command::Jobs { command } => admin::jobs_cmd(cli, command.as_ref()),
        Command::User {
            id,
            events,
            show_sensitive,
            as_of,
        } => inspect::user(cli, id, events, show_sensitive, as_of, now),
        Command::Segment {
            expr,
            list,
            as_of,
            show_sensitive,
            ..
        } => inspect::segment(cli, expr, list, as_of, *show_sensitive, now),
        Command::Erase(a) => ops::erase_cmd(cli, a),
        Command::Tags { command } => ops::tags_cmd(cli, command, now),
        Command::Activation(a) => ops::activation_cmd(cli, a),
        Command::Repurchase(a) => ops::repurchase_cmd(cli, a),
        Command::Settings { command } => settings::settings_cmd(cli, command),
        Command::Checkpoint { dir } => admin::checkpoint(cli, dir),
        Command::Compact => admin::compact(cli),
        Command::Merge {
            from,
            into,
            id,
            force,
        } => identity::merge_cmd(cli, from, into, id, *force),
        Command::Identity {
            anonymous_prefix,
            clear,
        } => identity::identity_cmd(cli, anonymous_prefix, *clear),
        Command::Features { command } => features::features_cmd(cli, command, now),
        Command::Dims { command } => dims::dims_cmd(cli, command),
        Command::Breakdown(args) => dims::breakdown(cli, args),
        Command::Revenue(args) => dims::revenue(cli, args),
        Command::Sessions(args) => dims::sessions(cli, args),
        Command::Ltv(args) => dims::ltv(cli, args),
    }
}

/// Entry point of the binary: parses arguments, runs, maps errors to exit codes.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        // the reader went away (`… | head`): nothing left to say
        Err(e) if out::is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            if let Some(hint) = hint(&cli, &e) {
                eprintln!("hint: {hint}");
            }
            ExitCode::FAILURE
        }
    }
}

/// The fix, where one is obvious.
fn hint(cli: &Cli, e: &Error) -> Option<String> {
    let db = cli.db.display();
    match e {
        Error::Open(crate::OpenError::Missing { .. }) => Some(format!(
            "create it with `stickydb --db {db} init` (or `import … --utc-offset +00:00`), or point --db / STICKYDB_DB at an existing store"
        )),
        Error::Open(crate::OpenError::NeedsMigration { .. }) => Some(format!(
            "open it once with a writing command (e.g. `stickydb --db {db} verify` cannot; `stickydb --db {db} compact` can) to migrate it"
        )),
        Error::JobUnfinished { .. } => Some(format!(
            "`stickydb --db {db} jobs` shows it; `stickydb --db {db} jobs finish` finishes it"
        )),
        Error::Poisoned { .. } => Some("run the command again: it reopens the store".into()),
        Error::UnknownUser { .. } => {
            Some("user ids are case-sensitive; `stickydb segment all --list 10` lists some".into())
        }
        Error::Storage(s) if s.to_string().contains("lock") => Some(
            "another process has the store open for writing (one writer at a time); stop it, or query read-only".into(),
        ),
        _ => None,
    }
}
