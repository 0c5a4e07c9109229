//! Past one machine (docs/scale-out.md): `stickydb cluster` (global answers
//! over every partition's store), `stickydb export clickhouse`, and
//! `stickydb consume` (one Kafka partition into one store).

use std::path::PathBuf;

use clap::Subcommand;
use serde_json::json;

use super::args::{ActiveArgs, DayRange, LifecycleArgs, RetentionArgs};
use super::query::{self, day_end_ms};
use super::{answer, print_json, Cli};
use crate::cluster::Cluster;
use crate::metrics::Period;
use crate::time::format_day;
use crate::{Db, Error, Options, Segment};

/// `stickydb cluster`.
#[derive(Debug, clap::Args)]
pub struct ClusterArgs {
    /// A partition's store directory; give every partition once, in any
    /// order (repeat the flag).
    #[arg(long = "store", required = true)]
    pub stores: Vec<PathBuf>,
    /// The question.
    #[command(subcommand)]
    pub query: ClusterQuery,
}

/// What a cluster answers: the single-store commands of the same name, with
/// the same JSON.
#[derive(Debug, Subcommand)]
pub enum ClusterQuery {
    /// DAU/WAU/MAU and stickiness per day.
    Active(ActiveArgs),
    /// Store-wide counters per day.
    Daily {
        /// The local days asked about.
        #[command(flatten)]
        range: DayRange,
    },
    /// A retention matrix.
    Retention(RetentionArgs),
    /// New / returning / resurrecting / dormant users per period.
    Lifecycle(LifecycleArgs),
    /// Users per lifecycle stage.
    Stages {
        /// The day, YYYY-MM-DD.
        #[arg(long)]
        as_of: String,
        /// Restrict to a segment.
        #[arg(long)]
        segment: Option<String>,
    },
    /// RFM segment counts, scores ranked over every partition's purchasers.
    Rfm {
        /// The day, YYYY-MM-DD.
        #[arg(long)]
        as_of: String,
        /// Restrict to a segment.
        #[arg(long)]
        segment: Option<String>,
    },
    /// How many users a segment holds.
    Segment {
        /// The segment expression (no `rfm:` atoms: ask `cluster rfm`).
        expr: String,
        /// As of the end of this local day, YYYY-MM-DD (default: now).
        #[arg(long)]
        as_of: Option<String>,
    },
    /// An experiment's comparison, each partition measuring its own users.
    Experiment(super::experiments::ExperimentArgs),
    /// Users and events over every partition.
    Stats,
}

/// `stickydb export` targets.
#[derive(Debug, Subcommand)]
pub enum ExportTarget {
    /// Per-day user sets as ClickHouse groupBitmap states (RowBinary), for
    /// `INSERT INTO stickydb_user_sets FORMAT RowBinary` (docs/scale-out.md).
    Clickhouse {
        /// The local days to export.
        #[command(flatten)]
        range: DayRange,
        /// Output file.
        #[arg(long)]
        out: PathBuf,
        /// The rows' version: a later export's rows replace an earlier
        /// one's (default: now, in ms).
        #[arg(long)]
        version: Option<u64>,
    },
}

/// `stickydb consume`.
#[cfg(feature = "kafka")]
#[derive(Debug, clap::Args)]
pub struct ConsumeArgs {
    /// Bootstrap brokers, host:port[,host:port…].
    #[arg(long)]
    pub brokers: String,
    /// The topic.
    #[arg(long)]
    pub topic: String,
    /// The topic partition to record.
    #[arg(long)]
    pub partition: i32,
    /// Consumer group to commit progress to, for lag monitoring
    /// (default stickydb-TOPIC-PARTITION).
    #[arg(long)]
    pub group: Option<String>,
    /// Messages per write.
    #[arg(long, default_value_t = 1_000)]
    pub batch: usize,
    /// Leave out and report up to N bad messages (default: stop at the
    /// first, writing nothing of its batch).
    #[arg(long, default_value_t = 0)]
    pub skip_bad: u64,
    /// Stop once no message came for this long, e.g. 5s (default: run
    /// until SIGTERM or SIGINT).
    #[arg(long)]
    pub exit_when_idle: Option<String>,
    /// Stop at the partition's end as it was at the start: catch up, then
    /// exit.
    #[arg(long)]
    pub until_end: bool,
    /// The store's UTC offset when this run creates it.
    #[arg(long, allow_hyphen_values = true)]
    pub utc_offset: Option<String>,
}

fn open_stores(args: &ClusterArgs) -> Result<Vec<Db>, Error> {
    args.stores
        .iter()
        .map(|p| {
            Db::open(
                p,
                Options {
                    create_if_missing: false,
                    read_only: true,
                    ..Options::default()
                },
            )
        })
        .collect()
}

fn segment(expr: Option<&str>) -> Result<Option<Segment>, Error> {
    Ok(expr.map(Segment::parse).transpose()?)
}

/// `stickydb cluster …`.
pub(super) fn cluster(cli: &Cli, args: &ClusterArgs, now: i64) -> Result<(), Error> {
    let stores = open_stores(args)?;
    let c = Cluster::new(stores.iter().collect())?;
    let first = c.stores()[0];
    // Segments are evaluated as of the end of the query's last day, as the
    // single-store commands do.
    let seg_at = |day: i32| day_end_ms(first, day);
    let v = match &args.query {
        ClusterQuery::Active(a) => {
            let (from, to) = a.range.days()?;
            let k = query::kind_arg(first, a.kind.as_deref())?;
            let s = segment(a.segment.as_deref())?;
            query::active_json(&c.active(k.as_ref(), from, to, s.as_ref(), seg_at(to))?)
        }
        ClusterQuery::Daily { range } => {
            let (from, to) = range.days()?;
            query::daily_json(&c.daily(from, to)?)
        }
        ClusterQuery::Retention(a) => {
            let q = a.query()?;
            let s = segment(a.segment.as_deref())?;
            query::retention_json(&c.retention(&q, s.as_ref(), seg_at(q.to_day))?)
        }
        ClusterQuery::Lifecycle(a) => {
            let (from, to) = a.range.days()?;
            let (p, s) = (Period::from(a.period), segment(a.segment.as_deref())?);
            query::lifecycle_json(p, &c.lifecycle(p, from, to, s.as_ref(), seg_at(to))?)
        }
        ClusterQuery::Stages { as_of, segment: s } => {
            let d = query::day_arg("as_of", as_of)?;
            let stages = c.stages(d, segment(s.as_deref())?.as_ref(), seg_at(d))?;
            json!({ "as_of": format_day(d), "stages": stages })
        }
        ClusterQuery::Rfm { as_of, segment: s } => {
            let d = query::day_arg("as_of", as_of)?;
            let r = c.rfm(d, segment(s.as_deref())?.as_ref(), seg_at(d))?;
            json!({ "as_of": format_day(d), "purchasers": r.users.len(), "segments": r.segments })
        }
        ClusterQuery::Segment { expr, as_of } => {
            let at = match as_of {
                Some(d) => seg_at(query::day_arg("as_of", d)?),
                None => now,
            };
            json!({ "segment": expr, "users": c.segment_count(&Segment::parse(expr)?, at)? })
        }
        ClusterQuery::Experiment(a) => {
            let q = super::experiments::parse_query(a)?;
            let d = match a.as_of.as_deref() {
                None | Some("now") => first.local_day(now),
                Some(d) => query::day_arg("as_of", d)?,
            };
            let s = segment(a.segment.as_deref())?;
            let at = if d == first.local_day(now) {
                now
            } else {
                seg_at(d)
            };
            serde_json::to_value(c.experiment(&q, s.as_ref(), at)?)
                .map_err(|e| Error::Io(std::io::Error::other(e)))?
        }
        ClusterQuery::Stats => json!({
            "partitions": c.stores().len(), "users": c.user_count()?, "events": c.event_count()?,
        }),
    };
    answer(cli, &v)
}

/// `stickydb export clickhouse`.
pub(super) fn export(cli: &Cli, target: &ExportTarget, now: i64) -> Result<(), Error> {
    let ExportTarget::Clickhouse {
        range,
        out,
        version,
    } = target;
    let db = super::open_existing(cli, true)?;
    let (from, to) = range.days()?;
    // Written beside the target and renamed into place: a reader never
    // loads half an export.
    let tmp = out.with_extension("partial");
    let mut file = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
    let version = version.unwrap_or(now.max(0) as u64);
    let summary = super::human::working("exporting", || {
        crate::clickhouse::export(&db, from, to, version, &mut file)
    })?;
    file.into_inner()
        .map_err(|e| Error::Io(e.into_error()))?
        .sync_all()?;
    std::fs::rename(&tmp, out)?;
    if cli.wants_json() {
        return print_json(&json!({
            "partition": db.partition().index, "version": version, "rows": summary.rows,
            "non_empty_rows": summary.non_empty_rows, "bytes": summary.bytes,
        }));
    }
    outln!(
        "exported {} rows ({} with users, {} bytes) of partition {} with version {version} to {}",
        summary.rows,
        summary.non_empty_rows,
        summary.bytes,
        db.partition(),
        out.display()
    );
    Ok(())
}

/// `stickydb consume`.
#[cfg(feature = "kafka")]
pub(super) fn consume(cli: &Cli, args: &ConsumeArgs) -> Result<(), Error> {
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;

    use crate::kafka::{self, ConsumeOptions};

    let mut options = ConsumeOptions::new(&args.brokers, &args.topic, args.partition);
    options.group = args.group.clone();
    options.batch_messages = args.batch;
    options.skip_bad = args.skip_bad;
    options.until_end = args.until_end;
    options.exit_when_idle_ms = args
        .exit_when_idle
        .as_deref()
        .map(|t| query::duration_ms("exit_when_idle", t).map(|ms| ms as u64))
        .transpose()?;
    let db = if cli.db.join("CURRENT").exists() {
        super::open_existing(cli, false)?
    } else {
        // A new store is the topic partition's: partition P of the topic's N.
        let count = kafka::partition_count(&args.brokers, &args.topic)?;
        let index = u32::try_from(args.partition).unwrap_or(u32::MAX);
        Db::open(
            &cli.db,
            Options {
                utc_offset_minutes: args
                    .utc_offset
                    .as_deref()
                    .map(super::parse_utc_offset)
                    .transpose()?,
                partition: Some(crate::Partition::new(index, count)?),
                create_if_missing: true,
                ..Options::default()
            },
        )?
    };
    kafka::check_assignment(&db, &options)?;
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, Arc::clone(&stop))?;
    }
    let started = std::time::Instant::now();
    let mut last_line = started;
    let mut progress = |r: &kafka::ConsumeReport| {
        if last_line.elapsed() >= std::time::Duration::from_secs(2) {
            last_line = std::time::Instant::now();
            let rate = r.recorded as f64 / started.elapsed().as_secs_f64().max(1e-3);
            eprintln!(
                "{}[{}] offset {} · recorded {} · duplicates {} · skipped {} · lag {} · {:.0} events/s",
                args.topic,
                args.partition,
                r.next_offset,
                r.recorded,
                r.duplicates,
                r.skipped,
                r.lag.map_or("?".to_owned(), |l| l.to_string()),
                query::round4(rate)
            );
        }
    };
    let report = kafka::consume(&db, &options, &stop, &mut progress)?;
    for b in &report.bad {
        eprintln!(
            "skipped {}[{}] offset {}: {}",
            args.topic, args.partition, b.offset, b.error
        );
    }
    db.close()?;
    let v = json!({
        "topic": args.topic, "partition": args.partition, "next_offset": report.next_offset,
        "recorded": report.recorded, "duplicates": report.duplicates, "skipped": report.skipped,
        "batches": report.batches, "lag": report.lag, "merges_and_handovers": report.controls,
        "forwarded": report.forwarded,
    });
    if cli.wants_json() {
        print_json(&v)
    } else {
        outln!(
            "{}[{}]: recorded {}, duplicates {}, skipped {}; resumes at offset {}",
            args.topic,
            args.partition,
            report.recorded,
            report.duplicates,
            report.skipped,
            report.next_offset
        );
        Ok(())
    }
}
