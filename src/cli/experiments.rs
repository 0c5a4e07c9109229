//! `stickydb experiment` and `stickydb experiments` (docs/metrics.md,
//! "Experiments"; docs/cli.md).

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::args::Cli;
use super::query::{known_kind, round4, segment_filter};
use super::{answer, open_existing, print_json, OutputFormat};
use crate::error::{InputError, Problem};
use crate::experiments::{ExperimentQuery, ExperimentReport, MetricSpec};
use crate::{Db, Error};

/// The arguments of `stickydb experiment`.
#[derive(Debug, clap::Args)]
pub struct ExperimentArgs {
    /// The experiment's name.
    pub name: String,
    /// What to compare: `conversion:KIND:WINDOW`, `retention:DAYS[:KIND]`,
    /// `revenue:WINDOW`, `events:WINDOW` or `active_days:WINDOW` (windows
    /// like 30m, 24h, 7d; measured from each user's first exposure).
    #[arg(long)]
    pub metric: String,
    /// The control variant.
    #[arg(long, default_value = "control")]
    pub control: String,
    /// Only the users of this segment expression.
    #[arg(long)]
    pub segment: Option<String>,
    /// The intended split, e.g. `control=50,b=50` (default: equal), for
    /// the sample-ratio-mismatch check.
    #[arg(long)]
    pub split: Option<String>,
    /// The day retention and the segment are evaluated as of, YYYY-MM-DD or
    /// `now` (default: the last day with data, docs/cli.md).
    #[arg(long)]
    pub as_of: Option<String>,
}

/// Parses `control=50,b=50`.
pub fn parse_split(text: &str) -> Result<BTreeMap<String, f64>, Error> {
    let bad =
        |reason: String| Error::from(InputError::new("split", Problem::Unparsable { reason }));
    let mut out = BTreeMap::new();
    for part in text.split(',') {
        let (v, w) = part
            .split_once('=')
            .ok_or_else(|| bad(format!("{part:?}: expected VARIANT=WEIGHT")))?;
        let w: f64 = w
            .parse()
            .map_err(|_| bad(format!("{part:?}: the weight is not a number")))?;
        if !w.is_finite() || w <= 0.0 {
            return Err(bad(format!("{part:?}: weights must be positive")));
        }
        out.insert(v.to_owned(), w);
    }
    Ok(out)
}

/// The question `args` asks.
pub(super) fn parse_query(args: &ExperimentArgs) -> Result<ExperimentQuery, Error> {
    let mut q = ExperimentQuery::new(args.name.clone(), MetricSpec::parse(&args.metric)?);
    q.control = args.control.clone();
    q.split = args.split.as_deref().map(parse_split).transpose()?;
    Ok(q)
}

/// The question `args` asks, its kinds checked against the store's.
fn query_of(db: &Db, args: &ExperimentArgs) -> Result<ExperimentQuery, Error> {
    let q = parse_query(args)?;
    if let Some(kind) = q.metric.kind() {
        known_kind(db, kind)?;
    }
    Ok(q)
}

/// One row per variant with its comparison against the control.
pub fn rows(report: &ExperimentReport) -> Vec<Value> {
    report
        .variants
        .iter()
        .map(|v| {
            let mut row = serde_json::to_value(v).unwrap_or_default();
            if let Some(c) = report.comparisons.iter().find(|c| c.variant == v.variant) {
                if let Some(o) = row.as_object_mut() {
                    o.insert("diff".into(), json!(c.diff));
                    o.insert("ci_low".into(), json!(c.ci_low));
                    o.insert("ci_high".into(), json!(c.ci_high));
                    o.insert("p_value".into(), json!(c.p_value));
                    o.insert("lift".into(), json!(c.lift));
                }
            }
            row
        })
        .collect()
}

/// The rows rounded for reading: four decimals, but a p-value below
/// 0.0001 in scientific notation (rounding it to 0 would claim certainty).
fn rounded(rows: Vec<Value>) -> Vec<Value> {
    rows.into_iter()
        .map(|mut r| {
            if let Some(o) = r.as_object_mut() {
                for (k, v) in o.iter_mut() {
                    if let Some(x) = v.as_f64().filter(|_| v.is_f64()) {
                        *v = if k == "p_value" && x > 0.0 && x < 1e-4 {
                            json!(format!("{x:.2e}"))
                        } else {
                            json!(round4(x))
                        };
                    }
                }
            }
            r
        })
        .collect()
}

/// What the sample-ratio check says, for a table's reader.
pub fn srm_line(p: f64) -> String {
    if p < 0.001 {
        format!("sample ratio mismatch: p = {p:.2e} — the split is not what was intended; do not read the lift")
    } else {
        format!(
            "sample ratio: p = {:.4} (consistent with the intended split)",
            p
        )
    }
}

/// `stickydb experiment NAME --metric …`.
pub(super) fn experiment_cmd(cli: &Cli, args: &ExperimentArgs, now: i64) -> Result<(), Error> {
    let db = open_existing(cli, true)?;
    let at = super::human::as_of(&db, args.as_of.as_deref(), now)?;
    let query = query_of(&db, args)?;
    let filter = segment_filter(&db, args.segment.as_deref(), at.day)?;
    let report = db.experiments().report(&query, filter.as_ref(), at.day)?;
    match cli.output() {
        OutputFormat::Json | OutputFormat::Jsonl => print_json(&report),
        OutputFormat::Csv => answer(cli, &json!({ "rows": rows(&report) })),
        OutputFormat::Table | OutputFormat::Parquet => {
            outln!("{}", at.line());
            outln!("{} · {}", report.experiment, args.metric);
            answer(cli, &json!({ "rows": rounded(rows(&report)) }))?;
            outln!("{}", srm_line(report.srm_p_value));
            outln!(
                "contaminated users (exposed to another variant too): {}",
                report.contaminated_users
            );
            Ok(())
        }
    }
}

/// `stickydb experiments`.
pub(super) fn experiments_cmd(cli: &Cli) -> Result<(), Error> {
    let db = open_existing(cli, true)?;
    let list = db.experiments().list()?;
    if cli.wants_json() {
        return print_json(&list);
    }
    let rows: Vec<Value> = list
        .iter()
        .flat_map(|e| {
            e.variants.iter().map(move |v| {
                json!({
                    "experiment": e.experiment,
                    "variant": v.variant,
                    "users": v.users,
                    "contaminated_users": e.contaminated_users,
                })
            })
        })
        .collect();
    answer(cli, &json!({ "rows": rows }))
}

/// Most experiments the report shows.
const REPORT_EXPERIMENTS: usize = 12;

/// The report's experiments: each one's conversion to purchase within 7
/// days (when the store has purchases) and day-7 retention against its
/// control (`control`, else its first variant by name), as of `as_of_day`.
pub fn report_data(db: &Db, as_of_day: i32) -> Result<Value, Error> {
    let ex = db.experiments();
    let purchases = db
        .kinds()
        .iter()
        .any(|(_, k)| *k == crate::EventKind::Purchase);
    let mut metrics = vec![MetricSpec::Retention { day: 7, kind: None }];
    if purchases {
        metrics.insert(
            0,
            MetricSpec::Conversion {
                kind: "purchase".into(),
                window_ms: 7 * crate::time::DAY_MS,
            },
        );
    }
    let mut out = Vec::new();
    for e in ex.list()?.into_iter().take(REPORT_EXPERIMENTS) {
        let control = e
            .variants
            .iter()
            .find(|v| v.variant == "control")
            .or(e.variants.first())
            .map(|v| v.variant.clone())
            .unwrap_or_default();
        for metric in &metrics {
            let mut q = ExperimentQuery::new(e.experiment.clone(), metric.clone());
            q.control = control.clone();
            let mut v = serde_json::to_value(ex.report(&q, None, as_of_day)?)
                .map_err(|e| Error::Io(std::io::Error::other(e)))?;
            if let Some(o) = v.as_object_mut() {
                let label = match metric {
                    MetricSpec::Conversion { .. } => "conversion to purchase within 7 days",
                    _ => "day-7 retention",
                };
                o.insert("label".into(), json!(label));
            }
            out.push(v);
        }
    }
    Ok(Value::Array(out))
}

/// The demo's lines about its experiment: each variant's conversion to
/// purchase within 7 days against the control, with the interval.
pub(super) fn demo_summary(db: &Db, experiment: &str, as_of_day: i32) -> Result<(), Error> {
    let metric = MetricSpec::Conversion {
        kind: "purchase".into(),
        window_ms: 7 * crate::time::DAY_MS,
    };
    let started = std::time::Instant::now();
    let r = db
        .experiments()
        .report(&ExperimentQuery::new(experiment, metric), None, as_of_day)?;
    let ms = started.elapsed().as_secs_f64() * 1e3;
    outln!("\nexperiment {experiment} (docs/metrics.md, \"Experiments\"), conversion to purchase within 7 days of the first exposure (in {ms:.1} ms):");
    for v in &r.variants {
        outln!(
            "  {:<9} {:>6} users, {:>6} converted ({:.1} %)",
            v.variant,
            v.users,
            v.converted.unwrap_or(0),
            v.rate.unwrap_or(0.0) * 100.0
        );
    }
    for c in &r.comparisons {
        outln!(
            "  {} − {}: {:+.1} points (95 % interval {:+.1} .. {:+.1}), p = {:.2e}",
            c.variant,
            c.control,
            c.diff * 100.0,
            c.ci_low * 100.0,
            c.ci_high * 100.0,
            c.p_value
        );
    }
    outln!(
        "  {}; {} users saw both variants",
        srm_line(r.srm_p_value),
        r.contaminated_users
    );
    Ok(())
}
