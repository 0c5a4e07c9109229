//! Store administration commands: init, stats, verify, rebuild-aggregates,
//! checkpoint.

use std::path::PathBuf;
use std::time::Instant;

use super::{open_existing, parse_utc_offset, print_json, Cli};
use crate::{Db, Error, Options};

/// `stickydb init`.
pub(super) fn init(
    cli: &Cli,
    utc_offset: &str,
    partition: Option<&str>,
    exposure_kind: Option<&str>,
    strict_kinds: Option<&[String]>,
) -> Result<(), Error> {
    let minutes = parse_utc_offset(utc_offset)?;
    let partition = partition.map(crate::Partition::parse).transpose()?;
    let db = Db::open(
        &cli.db,
        Options {
            utc_offset_minutes: Some(minutes),
            partition,
            exposure_kind: exposure_kind.map(str::to_owned),
            // (`init` is the command that creates a store)
            create_if_missing: true,
            kinds: strict_kinds.map(crate::store::KindPolicy::strict),
            ..Options::default()
        },
    )?;
    let kinds = match db.kind_policy() {
        crate::store::KindPolicy::Strict(list) => list.join(","),
        _ => "any".to_owned(),
    };
    outln!(
        "store at {} (UTC offset {} min, partition {}, kinds {kinds})",
        db.path().display(),
        db.settings().utc_offset_minutes,
        db.partition()
    );
    Ok(())
}

/// `stickydb stats`.
pub(super) fn stats(cli: &Cli) -> Result<(), Error> {
    let db = open_existing(cli, true)?;
    let stats = db.stats()?;
    if cli.wants_json() {
        return print_json(&stats);
    }
    outln!("users  {}", stats.users);
    outln!("events {}", stats.events);
    for (kind, n) in &stats.events_by_kind {
        outln!("  {kind:<14} {n}");
    }
    outln!(
        "{:<14} {:>12} {:>14} {:>14}",
        "column family",
        "keys",
        "sst bytes",
        "memtable"
    );
    for (name, cf) in &stats.column_families {
        outln!(
            "{name:<14} {:>12} {:>14} {:>14}",
            cf.estimated_keys,
            cf.sst_bytes,
            cf.memtable_bytes
        );
    }
    for (name, v) in &stats.engine {
        outln!("{name:<36} {v:>14}");
    }
    Ok(())
}

/// `stickydb verify`.
pub(super) fn verify(cli: &Cli) -> Result<(), Error> {
    let db = open_existing(cli, true)?;
    let report = super::human::working("verifying", || db.verify())?;
    if cli.wants_json() {
        print_json(&report)?;
    } else {
        for (cf, n) in &report.checked {
            outln!("checked {n:>10} records in {cf}");
        }
        for p in &report.problems {
            outln!("PROBLEM: {p}");
        }
        outln!("{} problem(s)", report.problem_count);
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

/// `stickydb rebuildaggregates`.
pub(super) fn rebuild_aggregates(cli: &Cli) -> Result<(), Error> {
    let db = open_existing(cli, false)?;
    let started = Instant::now();
    let replayed = super::human::working("rebuilding aggregates", || db.rebuild_aggregates())?;
    let report = super::human::working("verifying", || db.verify())?;
    if cli.wants_json() {
        print_json(&serde_json::json!({
            "events_replayed": replayed,
            "verify_problems": report.problem_count,
        }))?;
    } else {
        outln!(
            "rebuilt aggregates from {replayed} events in {:.1} s; verify: {} problem(s)",
            started.elapsed().as_secs_f64(),
            report.problem_count
        );
    }
    Ok(())
}

/// `stickydb jobs [list|finish]`.
pub(super) fn jobs_cmd(cli: &Cli, command: Option<&super::args::JobsCommand>) -> Result<(), Error> {
    use super::args::JobsCommand;
    match command.unwrap_or(&JobsCommand::List) {
        JobsCommand::List => {
            let db = open_existing(cli, true)?;
            let job = db.pending_job();
            if cli.wants_json() {
                return print_json(&serde_json::json!({ "job": job }));
            }
            match job {
                None => outln!("no job recorded"),
                Some(j) => {
                    outln!("job {} unfinished at step {}", j.name, j.step);
                    outln!(
                        "finish it with `stickydb --db {} jobs finish`",
                        cli.db.display()
                    );
                }
            }
        }
        JobsCommand::Finish => {
            let db = open_existing(cli, false)?;
            let started = Instant::now();
            let done = super::human::working("finishing the job", || db.finish_jobs())?;
            if cli.wants_json() {
                return print_json(&serde_json::json!({ "finished": done }));
            }
            match done {
                None => outln!("no job recorded"),
                Some(name) => outln!(
                    "finished {name} in {:.1} s",
                    started.elapsed().as_secs_f64()
                ),
            }
        }
    }
    Ok(())
}

/// `stickydb checkpoint`.
pub(super) fn checkpoint(cli: &Cli, dir: &PathBuf) -> Result<(), Error> {
    let db = open_existing(cli, false)?;
    super::human::working("writing a checkpoint", || db.checkpoint(dir))?;
    outln!("checkpoint written to {}", dir.display());
    Ok(())
}

/// `stickydb compact`.
pub(super) fn compact(cli: &Cli) -> Result<(), Error> {
    let db = open_existing(cli, false)?;
    let before = sst_bytes(&db)?;
    let started = Instant::now();
    super::human::working("compacting", || db.compact())?;
    let after = sst_bytes(&db)?;
    if cli.wants_json() {
        outln!(
            "{}",
            serde_json::json!({ "sst_bytes_before": before, "sst_bytes_after": after })
        );
    } else {
        outln!(
            "compacted in {:.1} s: {before} -> {after} bytes of table files",
            started.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

fn sst_bytes(db: &Db) -> Result<u64, Error> {
    Ok(db
        .stats()?
        .column_families
        .values()
        .map(|c| c.sst_bytes)
        .sum())
}
