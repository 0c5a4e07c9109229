//! What an experiment question is and what its answer holds: the metric
//! grammar, the per-variant rows, the comparisons with the control and
//! the sample-ratio-mismatch check (statistics from `metrics::stats`).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::error::{InputError, Problem};
use crate::metrics::stats::{self, Moments};

/// Longest window of a window metric: a year.
pub const MAX_WINDOW_MS: i64 = 366 * 86_400_000;
/// Latest retention day after the exposure day.
pub const MAX_RETENTION_DAY: u32 = 3_660;
/// The confidence of every interval.
const CONFIDENCE: f64 = 0.95;

/// What is measured per variant, each from the user's first exposure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetricSpec {
    /// Users with an event of `kind` at most `window_ms` after their first
    /// exposure (at or after it; exact milliseconds, like a funnel window).
    Conversion {
        /// The kind converted to.
        kind: String,
        /// The window, ms.
        window_ms: i64,
    },
    /// Users active (or with an event of `kind`) on local day `day` after
    /// their first exposure's local day, among those whose day has come.
    Retention {
        /// Days after the exposure day (0 = that day).
        day: u32,
        /// `None` = any activity.
        kind: Option<String>,
    },
    /// Net spend (purchases − refunds, minor units) per user within the window.
    Revenue {
        /// The window, ms.
        window_ms: i64,
    },
    /// Activity events per user within the window.
    Events {
        /// The window, ms.
        window_ms: i64,
    },
    /// Local days with activity per user within the window.
    ActiveDays {
        /// The window, ms.
        window_ms: i64,
    },
}

/// Parses a window: a positive integer and a unit (`ms`, `s`, `m`, `h`,
/// `d`, `w`), at most [`MAX_WINDOW_MS`].
pub fn parse_window(text: &str) -> Result<i64, InputError> {
    let bad = |reason: String| InputError::new("metric.window", Problem::Unparsable { reason });
    let digits = text.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit = &text[digits.len()..];
    let n: i64 = digits
        .parse()
        .map_err(|_| bad(format!("{text:?}: expected a number and a unit, e.g. 7d")))?;
    let unit_ms = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        "w" => 7 * 86_400_000,
        _ => return Err(bad(format!("{text:?}: unit must be ms, s, m, h, d or w"))),
    };
    let ms = n.saturating_mul(unit_ms);
    if !(0..=MAX_WINDOW_MS).contains(&ms) {
        return Err(InputError::new(
            "metric.window",
            Problem::OutOfRange {
                value: ms,
                min: 0,
                max: MAX_WINDOW_MS,
            },
        ));
    }
    Ok(ms)
}

impl MetricSpec {
    /// Parses `conversion:KIND:WINDOW`, `retention:DAYS[:KIND]`,
    /// `revenue:WINDOW`, `events:WINDOW` or `active_days:WINDOW`.
    ///
    /// ```
    /// use stickydb::experiments::MetricSpec;
    /// assert_eq!(
    ///     MetricSpec::parse("conversion:purchase:7d").unwrap(),
    ///     MetricSpec::Conversion { kind: "purchase".into(), window_ms: 7 * 86_400_000 }
    /// );
    /// assert_eq!(MetricSpec::parse("retention:x").unwrap_err().field, "metric");
    /// ```
    pub fn parse(text: &str) -> Result<Self, InputError> {
        let parts: Vec<&str> = text.split(':').collect();
        let bad = || {
            InputError::new(
                "metric",
                Problem::Unparsable {
                    reason: format!(
                        "{text:?}: expected conversion:KIND:WINDOW, retention:DAYS[:KIND], \
                         revenue:WINDOW, events:WINDOW or active_days:WINDOW"
                    ),
                },
            )
        };
        let kind = |k: &str| -> Result<String, InputError> {
            crate::users::check_name(k, crate::timeline::MAX_KIND_BYTES)
                .map_err(|p| InputError::new("metric.kind", p))?;
            Ok(k.to_owned())
        };
        Ok(match parts.as_slice() {
            ["conversion", k, w] => MetricSpec::Conversion {
                kind: kind(k)?,
                window_ms: parse_window(w)?,
            },
            ["retention", d, rest @ ..] if rest.len() <= 1 => {
                let day: u32 = d.parse().map_err(|_| bad())?;
                if day > MAX_RETENTION_DAY {
                    return Err(InputError::new(
                        "metric.day",
                        Problem::OutOfRange {
                            value: i64::from(day),
                            min: 0,
                            max: i64::from(MAX_RETENTION_DAY),
                        },
                    ));
                }
                MetricSpec::Retention {
                    day,
                    kind: rest.first().map(|k| kind(k)).transpose()?,
                }
            }
            ["revenue", w] => MetricSpec::Revenue {
                window_ms: parse_window(w)?,
            },
            ["events", w] => MetricSpec::Events {
                window_ms: parse_window(w)?,
            },
            ["active_days", w] => MetricSpec::ActiveDays {
                window_ms: parse_window(w)?,
            },
            _ => return Err(bad()),
        })
    }

    /// The kind the metric names, if any (a conversion's, a retention's).
    pub fn kind(&self) -> Option<&str> {
        match self {
            MetricSpec::Conversion { kind, .. }
            | MetricSpec::Retention {
                kind: Some(kind), ..
            } => Some(kind),
            _ => None,
        }
    }

    /// Whether the metric is a proportion (else a per-user mean).
    pub fn is_proportion(&self) -> bool {
        matches!(
            self,
            MetricSpec::Conversion { .. } | MetricSpec::Retention { .. }
        )
    }

    /// The metric as text (`conversion:purchase:604800000ms`).
    pub fn text(&self) -> String {
        match self {
            MetricSpec::Conversion { kind, window_ms } => {
                format!("conversion:{kind}:{window_ms}ms")
            }
            MetricSpec::Retention { day, kind: None } => format!("retention:{day}"),
            MetricSpec::Retention { day, kind: Some(k) } => format!("retention:{day}:{k}"),
            MetricSpec::Revenue { window_ms } => format!("revenue:{window_ms}ms"),
            MetricSpec::Events { window_ms } => format!("events:{window_ms}ms"),
            MetricSpec::ActiveDays { window_ms } => format!("active_days:{window_ms}ms"),
        }
    }
}

/// One experiment question.
#[derive(Debug, Clone, PartialEq)]
pub struct ExperimentQuery {
    /// The experiment's name.
    pub experiment: String,
    /// What to measure.
    pub metric: MetricSpec,
    /// The control variant (default `control`).
    pub control: String,
    /// The intended split, variant → weight (any positive scale); `None`
    /// or an empty map = equal. Every variant must be named.
    pub split: Option<BTreeMap<String, f64>>,
}

impl ExperimentQuery {
    /// A question about `experiment`'s `metric` against variant `control`,
    /// for an equal split.
    pub fn new(experiment: impl Into<String>, metric: MetricSpec) -> Self {
        Self {
            experiment: experiment.into(),
            metric,
            control: "control".to_owned(),
            split: None,
        }
    }
}

/// One variant's figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VariantRow {
    /// The variant.
    pub variant: String,
    /// Users measured (for retention: those whose day has come).
    pub users: u64,
    /// Proportions: users counted (converted, retained).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub converted: Option<u64>,
    /// Means: the sum over the users.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sum: Option<i64>,
    /// Means: `sum ÷ users`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mean: Option<f64>,
    /// Means: the sample standard deviation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub std_dev: Option<f64>,
    /// Proportions: `converted ÷ users` (0 without users).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate: Option<f64>,
}

/// One variant against the control.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    /// The variant.
    pub variant: String,
    /// The control.
    pub control: String,
    /// `variant − control` (rates or means).
    pub diff: f64,
    /// 95 % interval, lower end (Newcombe's hybrid score; Welch's t).
    pub ci_low: f64,
    /// 95 % interval, upper end.
    pub ci_high: f64,
    /// Two-sided p-value (pooled two-proportion z-test; Welch's t-test).
    pub p_value: f64,
    /// `diff ÷ control`; `None` when the control's figure is 0.
    pub lift: Option<f64>,
}

/// The answer to an [`ExperimentQuery`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExperimentReport {
    /// The experiment.
    pub experiment: String,
    /// The metric, as text.
    pub metric: String,
    /// Every variant, the control first.
    pub variants: Vec<VariantRow>,
    /// Every other variant against the control.
    pub comparisons: Vec<Comparison>,
    /// The chi-square goodness-of-fit p-value of the users per variant
    /// against the intended split: small (< 0.001) = a broken assignment.
    pub srm_p_value: f64,
    /// Users (in the segment) exposed to more than one variant.
    pub contaminated_users: u64,
}

/// The refusal of a metric naming a kind the store (or no partition)
/// ever recorded: a typo would answer zeros.
pub(crate) fn unknown_kind(kind: &str) -> crate::Error {
    InputError::new(
        "metric.kind",
        Problem::Unparsable {
            reason: format!("no event of kind {kind:?} was ever recorded"),
        },
    )
    .into()
}

/// What one variant measured.
pub(crate) enum Measured {
    Proportion { users: u64, converted: u64 },
    Mean { moments: Moments, sum: i64 },
}

impl Measured {
    /// The figures of two disjoint groups of users together (a cluster's
    /// partitions): counts add; moments combine exactly (Chan et al.'s
    /// pairwise update of the sum of squared deviations).
    pub(crate) fn merge(self, other: Measured) -> Measured {
        match (self, other) {
            (
                Measured::Proportion { users, converted },
                Measured::Proportion {
                    users: u2,
                    converted: c2,
                },
            ) => Measured::Proportion {
                users: users + u2,
                converted: converted + c2,
            },
            (
                Measured::Mean { moments, sum },
                Measured::Mean {
                    moments: m2,
                    sum: s2,
                },
            ) => Measured::Mean {
                moments: combine(moments, m2),
                sum: sum.saturating_add(s2),
            },
            // one metric has one shape in every partition
            (a, _) => a,
        }
    }

    fn users(&self) -> u64 {
        match self {
            Measured::Proportion { users, .. } => *users,
            Measured::Mean { moments, .. } => moments.n,
        }
    }

    fn row(&self, variant: &str) -> VariantRow {
        let mut row = VariantRow {
            variant: variant.to_owned(),
            users: self.users(),
            converted: None,
            sum: None,
            mean: None,
            std_dev: None,
            rate: None,
        };
        match self {
            Measured::Proportion { users, converted } => {
                row.converted = Some(*converted);
                row.rate = Some(crate::metrics::ratio(*converted, *users));
            }
            Measured::Mean { moments, sum } => {
                row.sum = Some(*sum);
                row.mean = Some(moments.mean);
                row.std_dev = Some(moments.variance.sqrt());
            }
        }
        row
    }
}

/// The moments of two disjoint groups together.
fn combine(x: Moments, y: Moments) -> Moments {
    let n = x.n + y.n;
    if n == 0 {
        return Moments::default();
    }
    let (nx, ny, nf) = (x.n as f64, y.n as f64, n as f64);
    let mean = (x.mean * nx + y.mean * ny) / nf;
    let squares = |m: Moments| m.variance * m.n.saturating_sub(1) as f64;
    let delta = y.mean - x.mean;
    let m2 = squares(x) + squares(y) + delta * delta * nx * ny / nf;
    Moments {
        n,
        mean,
        variance: if n > 1 { m2 / (nf - 1.0) } else { 0.0 },
    }
}

/// The report of measured variants (the control first), with
/// comparisons and the SRM check against `split`.
pub(crate) fn assemble(
    query: &ExperimentQuery,
    measured: &[(String, Measured)],
    contaminated_users: u64,
) -> Result<ExperimentReport, InputError> {
    let control = measured
        .iter()
        .find(|(v, _)| *v == query.control)
        .map(|(_, m)| m);
    let mut comparisons = Vec::new();
    for (variant, m) in measured.iter().filter(|(v, _)| *v != query.control) {
        let c = match (m, control) {
            (
                Measured::Proportion { users, converted },
                Some(Measured::Proportion {
                    users: cu,
                    converted: cc,
                }),
            ) => stats::proportions(*converted, *users, *cc, *cu, CONFIDENCE),
            (Measured::Mean { moments, .. }, Some(Measured::Mean { moments: cm, .. })) => {
                stats::welch(*moments, *cm, CONFIDENCE).0
            }
            _ => continue,
        };
        comparisons.push(Comparison {
            variant: variant.clone(),
            control: query.control.clone(),
            diff: c.diff,
            ci_low: c.ci_low,
            ci_high: c.ci_high,
            p_value: c.p_value,
            lift: c.lift,
        });
    }
    let weights: Vec<f64> = match &query.split {
        Some(split) if !split.is_empty() => measured
            .iter()
            .map(|(v, _)| {
                split.get(v).copied().ok_or_else(|| {
                    InputError::new(
                        "split",
                        Problem::Unparsable {
                            reason: format!("no weight for variant {v:?}"),
                        },
                    )
                })
            })
            .collect::<Result<_, _>>()?,
        _ => vec![1.0; measured.len()],
    };
    if weights.iter().any(|w| !w.is_finite() || *w <= 0.0) {
        return Err(InputError::new(
            "split",
            Problem::Unparsable {
                reason: "weights must be positive".to_owned(),
            },
        ));
    }
    let observed: Vec<u64> = measured.iter().map(|(_, m)| m.users()).collect();
    Ok(ExperimentReport {
        experiment: query.experiment.clone(),
        metric: query.metric.text(),
        variants: measured.iter().map(|(v, m)| m.row(v)).collect(),
        comparisons,
        srm_p_value: stats::sample_ratio_mismatch(&observed, &weights),
        contaminated_users,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moments_of_two_groups_combine_exactly() {
        let a = [3.0, 5.0, 9.0];
        let b = [1.0, 4.0];
        let all: Vec<f64> = a.iter().chain(&b).copied().collect();
        let c = combine(Moments::of(&a), Moments::of(&b));
        let want = Moments::of(&all);
        assert_eq!(c.n, want.n);
        assert!((c.mean - want.mean).abs() < 1e-12);
        assert!((c.variance - want.variance).abs() < 1e-12);
        assert_eq!(
            combine(Moments::default(), Moments::of(&b)),
            Moments::of(&b)
        );
        assert_eq!(
            combine(Moments::of(&[2.0]), Moments::default()).variance,
            0.0
        );
    }
}
