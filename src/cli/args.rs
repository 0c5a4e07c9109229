//! The command line's arguments (clap): every command and its flags.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use super::social::{GroupStateArg, RankArg};
use super::{experiments, import, points, query, scale};
use crate::Error;

pub use super::args_sub::*;

/// stickydb: profiles, timelines and engagement metrics kept exact on write.
#[derive(Debug, Parser)]
#[command(name = "stickydb", version, about)]
pub struct Cli {
    /// Store directory (default: $STICKYDB_DB, else stickydb-data).
    #[arg(
        long,
        global = true,
        env = "STICKYDB_DB",
        default_value = "stickydb-data"
    )]
    pub db: PathBuf,
    /// Print machine-readable JSON on stdout (short for `--format json`).
    #[arg(long, global = true)]
    pub json: bool,
    /// How answers print: an aligned table (default), JSON, or CSV (the
    /// answer's rows, for a spreadsheet); for `import` and `users export`,
    /// the format of the records read or written (jsonl or csv; `users
    /// export` also parquet).
    #[arg(long, global = true, value_enum)]
    pub format: Option<OutputFormat>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// How answers print.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// Aligned columns for people.
    Table,
    /// JSON, the documented shapes (docs/cli.md).
    Json,
    /// The answer's rows as CSV.
    Csv,
    /// JSON lines: the records of `import` and `users export` (answers
    /// print as JSON).
    Jsonl,
    /// Apache Parquet: `users export --out FILE` only.
    Parquet,
}

impl Cli {
    /// The output format asked for (`--json` is `--format json`).
    pub fn output(&self) -> OutputFormat {
        if self.json {
            OutputFormat::Json
        } else {
            self.format.unwrap_or(OutputFormat::Table)
        }
    }

    /// Whether answers print as JSON.
    pub fn wants_json(&self) -> bool {
        matches!(self.output(), OutputFormat::Json | OutputFormat::Jsonl)
    }
}

/// The CLI's commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a store.
    Init {
        /// The store's fixed UTC offset, e.g. +08:00 or -05:30.
        #[arg(long, default_value = "+00:00", allow_hyphen_values = true)]
        utc_offset: String,
        /// Create it as partition P of N of a partitioned deployment, `P/N`
        /// (docs/scale-out.md).
        #[arg(long)]
        partition: Option<String>,
        /// Kind of experiment exposure events (fixed at creation; `exposure`).
        #[arg(long)]
        exposure_kind: Option<String>,
        /// Accept only these event kinds (comma-separated; fixed at
        /// creation): an event of another kind — a typo such as
        /// `Purchase` — is refused naming them. Default: any kind.
        #[arg(long, value_delimiter = ',')]
        strict_kinds: Option<Vec<String>>,
    },
    /// Print a shell completion script (e.g. `stickydb completions bash >
    /// /etc/bash_completion.d/stickydb`).
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Global answers over every partition's store (docs/scale-out.md).
    Cluster(scale::ClusterArgs),
    /// Export the store's data for another system.
    Export {
        /// Where to.
        #[command(subcommand)]
        target: scale::ExportTarget,
    },
    /// Record one Kafka partition's JSON events into the store, exactly once
    /// (creating the store as that partition when it does not exist).
    #[cfg(feature = "kafka")]
    Consume(scale::ConsumeArgs),
    /// Import events (or profiles) from JSON-lines or CSV files.
    Import {
        /// Files to read, in order; `-` reads standard input. The global
        /// `--format jsonl|csv` names their format (default: by extension,
        /// .csv = csv, else JSON lines).
        #[arg(required = true)]
        files: Vec<PathBuf>,
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
    Retention(RetentionArgs),
    /// New / returning / resurrecting / dormant users per period.
    Lifecycle(LifecycleArgs),
    /// Users per lifecycle stage.
    Stages {
        /// The day, YYYY-MM-DD, or `now` (users per stage on it; default:
        /// the last day with data, docs/cli.md).
        #[arg(long)]
        as_of: Option<String>,
        /// Instead: users entering and leaving each stage per day of
        /// --from..--to.
        #[arg(long, requires_all = ["from", "to"], conflicts_with = "as_of")]
        transitions: bool,
        /// First day, YYYY-MM-DD (with --transitions).
        #[arg(long)]
        from: Option<String>,
        /// Last day, YYYY-MM-DD (with --transitions).
        #[arg(long)]
        to: Option<String>,
        /// Restrict to a segment.
        #[arg(long)]
        segment: Option<String>,
    },
    /// Move the store's clock and settle everything due: stage changes time
    /// brought, expiries, hold timeouts, tier reviews, expiry notices.
    Advance {
        /// The clock (default now): RFC 3339 or ms.
        #[arg(long)]
        now: Option<String>,
        /// First set the expiry-notice period, in days.
        #[arg(long)]
        notice_days: Option<u32>,
    },
    /// Print the change feed as JSON lines, one entry per line.
    Feed {
        /// Print entries after this cursor.
        #[arg(long, default_value_t = 0)]
        after: u64,
        /// Most entries (per poll with --follow).
        #[arg(long, default_value_t = 1000)]
        limit: usize,
        /// Keep polling for new entries until interrupted.
        #[arg(long)]
        follow: bool,
        /// Instead: delete the entries up to and including this cursor.
        #[arg(long, conflicts_with_all = ["follow", "after"])]
        trim_through: Option<u64>,
        /// Instead: delete the entries written more than this long ago
        /// (e.g. 30d, 12h).
        #[arg(long, conflicts_with_all = ["follow", "after", "trim_through"])]
        trim_older_than: Option<String>,
    },
    /// RFM segments (and, with --list, per-purchaser scores).
    Rfm {
        /// The day, YYYY-MM-DD, or `now` (default: the last day with data).
        #[arg(long)]
        as_of: Option<String>,
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
    /// Top sharers of a range: shares, users reached, attributed signups,
    /// first purchases, orders and GMV (docs/social.md).
    Sharers {
        /// The local days asked about.
        #[command(flatten)]
        range: DayRange,
        /// How many.
        #[arg(long, default_value_t = 10)]
        top: usize,
        /// Ranked by.
        #[arg(long, value_enum, default_value = "signups")]
        by: RankArg,
        /// Only sharers in this segment.
        #[arg(long)]
        segment: Option<String>,
    },
    /// One sharer's funnel: reached → signed up → first purchase.
    Sharer {
        /// External user id.
        user: String,
        /// First day, YYYY-MM-DD (default: all time).
        #[arg(long)]
        from: Option<String>,
        /// Last day, YYYY-MM-DD (default: all time).
        #[arg(long)]
        to: Option<String>,
    },
    /// The viral coefficient per period: attributed signups ÷ sharing users.
    Viral {
        /// The local days asked about.
        #[command(flatten)]
        range: DayRange,
        /// Period length in days.
        #[arg(long, default_value_t = 7)]
        period_days: u32,
        /// Only sharers in this segment.
        #[arg(long)]
        segment: Option<String>,
    },
    /// Group buys per opening day: opened, completed, expired, open,
    /// completion rate, mean time to complete; or one group with --id.
    Groups {
        /// First day, YYYY-MM-DD.
        #[arg(long, required_unless_present = "id")]
        from: Option<String>,
        /// Last day, YYYY-MM-DD.
        #[arg(long, required_unless_present = "id")]
        to: Option<String>,
        /// Instead: one group and its members.
        #[arg(long)]
        id: Option<String>,
        /// Judge deadlines as of this instant, RFC 3339 or ms (default: the
        /// store's clock, set by `advance`, else now).
        #[arg(long)]
        as_of: Option<String>,
        /// Only groups opened by users in this segment.
        #[arg(long)]
        segment: Option<String>,
        /// Instead of per-day counts: list up to N groups (with --state).
        #[arg(long)]
        list: Option<usize>,
        /// With --list: only groups in this state.
        #[arg(long, value_enum)]
        state: Option<GroupStateArg>,
    },
    /// Compare an experiment's variants on one metric, with intervals and
    /// p-values (docs/metrics.md, "Experiments").
    Experiment(experiments::ExperimentArgs),
    /// Experiments with their variants and users.
    Experiments,
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
    /// A user's growth value (docs/ledger.md#growth-value): its balance,
    /// the tier window's part of it, the tiers' basis and its tier.
    Growth {
        /// External user id.
        user: String,
        /// As of when (default now): RFC 3339 or ms.
        #[arg(long)]
        at: Option<String>,
    },
    /// Coupons: templates, issue, hold, redeem, release, reverse.
    Coupons {
        /// The operation.
        #[command(subcommand)]
        command: super::coupons::CouponsCommand,
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
    /// reports aggregate damage); writers are held off meanwhile. A job: a
    /// kill leaves it recorded, finished by `jobs finish` (or this again).
    RebuildAggregates,
    /// The maintenance job recorded in the store, if any (a rebuild, a
    /// migration, a re-tier, a window or stage-model change left
    /// unfinished by a crash); `jobs finish` finishes it.
    Jobs {
        /// What to do (default: list).
        #[command(subcommand)]
        command: Option<JobsCommand>,
    },
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
        /// Metrics as of this local day, YYYY-MM-DD, or `now` (default: the
        /// last day with data, docs/cli.md).
        #[arg(long)]
        as_of: Option<String>,
    },
    /// Erase one user for good (SPEC §5): profile, tags, events, ledger and
    /// their part of every aggregate (needs --yes).
    Erase(super::ops::EraseArgs),
    /// Set (with source and expiry) or remove one user's tag.
    Tags {
        /// What to do.
        #[command(subcommand)]
        command: super::ops::TagsCommand,
    },
    /// Activation per cohort: users whose first START_KIND event fell in the
    /// period and who did KIND within the window.
    Activation(super::ops::ActivationArgs),
    /// Repurchase rate: purchasers on ≥ 2 distinct days ÷ purchasers.
    Repurchase(super::ops::RepurchaseArgs),
    /// Show or apply every setting an operator changes after creation
    /// (earning rules, tiers, stage model, attribution window, anonymous
    /// prefixes, expiry notice days) as one JSON or TOML document.
    Settings {
        /// What to do.
        #[command(subcommand)]
        command: super::settings::SettingsCommand,
    },
    /// Count or list the users of a segment, e.g. "tag:vip and not tag:churn_risk".
    Segment {
        /// The segment expression (grammar: docs/architecture.md, "Segments").
        expr: String,
        /// Print only the count (the default without --list).
        #[arg(long, conflicts_with = "list")]
        count: bool,
        /// Evaluate time-relative atoms (stage, rfm, active_within, …) as of
        /// the end of this local day, YYYY-MM-DD, an instant (RFC 3339 or
        /// ms), or `now` (default: the last day with data, docs/cli.md).
        #[arg(long)]
        as_of: Option<String>,
        /// List the users (external ids), at most this many.
        #[arg(long)]
        list: Option<usize>,
        /// Let `attr:`, `has:` and anniversary atoms match attributes
        /// marked sensitive (docs/metrics.md, "Targeting").
        #[arg(long)]
        show_sensitive: bool,
    },
    /// Write a consistent copy of the store to DIR.
    Checkpoint {
        /// Target directory (must not exist).
        dir: PathBuf,
    },
    /// Compact every column family to its last level (zstd), e.g. after a
    /// bulk import, and print the on-disk size before and after.
    Compact,
    /// Merge user FROM into INTO (identity merge, docs/identity.md): FROM's
    /// history becomes INTO's and FROM an alias of INTO.
    Merge {
        /// The id to merge (e.g. an anonymous device id).
        from: String,
        /// The id it is merged into.
        into: String,
        /// Merge id: the same id and pair again is answered, not redone.
        #[arg(long)]
        id: String,
        /// Merge even when neither id is anonymous.
        #[arg(long)]
        force: bool,
    },
    /// Event properties kept as dimensions (docs/metrics.md).
    Dims {
        /// What to do.
        #[command(subcommand)]
        command: super::dims::DimsCommand,
    },
    /// Users, events and GMV per value of a dimension, day by day.
    Breakdown(super::dims::BreakdownArgs),
    /// Buyers, orders, GMV, refunds, net and AOV per day, of any segment.
    Revenue(super::dims::RevenueArgs),
    /// Net spend per cohort and period after it: the LTV curves.
    Ltv(super::dims::LtvArgs),
    /// Sessions, bounces, mean duration and events per day, of any segment.
    Sessions(super::dims::SessionsArgs),
    /// Per-user features and rule tags (docs/features.md).
    Features {
        /// What to do.
        #[command(subcommand)]
        command: super::features::FeaturesCommand,
    },
    /// Show or set which user ids are anonymous (by prefix).
    Identity {
        /// Replace the anonymous-id prefixes with these (repeatable).
        #[arg(long = "anonymous-prefix")]
        anonymous_prefix: Vec<String>,
        /// Remove every anonymous-id prefix.
        #[arg(long, conflicts_with = "anonymous_prefix")]
        clear: bool,
    },
}

/// The flags of `retention` (and `cluster retention`).
#[derive(Debug, clap::Args)]
pub struct RetentionArgs {
    /// Cohort period.
    #[arg(long, value_enum, default_value = "day")]
    pub period: PeriodArg,
    /// The local days asked about.
    #[command(flatten)]
    pub range: DayRange,
    /// Most offsets per cohort.
    #[arg(long)]
    pub max_offset: Option<u32>,
    /// Cohorts by first event of this kind (default: first activity).
    #[arg(long)]
    pub start_kind: Option<String>,
    /// Returns are events of this kind (default: any activity).
    #[arg(long)]
    pub return_kind: Option<String>,
    /// Count returns in period c+n only, or in c+n or later.
    #[arg(long, value_enum, default_value = "on")]
    pub mode: ModeArg,
    /// Restrict to a segment.
    #[arg(long)]
    pub segment: Option<String>,
}

impl RetentionArgs {
    /// The library's query.
    pub fn query(&self) -> Result<crate::metrics::RetentionQuery, Error> {
        let (from, to) = self.range.days()?;
        let mut q = crate::metrics::RetentionQuery::new(self.period.into(), from, to);
        q.max_offset = self.max_offset.unwrap_or(u32::MAX);
        q.start_kind = self.start_kind.as_deref().map(crate::EventKind::from_name);
        q.return_kind = self.return_kind.as_deref().map(crate::EventKind::from_name);
        q.mode = self.mode.into();
        Ok(q)
    }
}

/// The flags of `lifecycle` (and `cluster lifecycle`).
#[derive(Debug, clap::Args)]
pub struct LifecycleArgs {
    /// Period.
    #[arg(long, value_enum, default_value = "week")]
    pub period: PeriodArg,
    /// The local days asked about.
    #[command(flatten)]
    pub range: DayRange,
    /// Restrict to a segment.
    #[arg(long)]
    pub segment: Option<String>,
}

/// The flags of `metrics active` (and `cluster active`).
#[derive(Debug, clap::Args)]
pub struct ActiveArgs {
    /// The local days asked about.
    #[command(flatten)]
    pub range: DayRange,
    /// Only events of this kind.
    #[arg(long)]
    pub kind: Option<String>,
    /// Restrict to a segment.
    #[arg(long)]
    pub segment: Option<String>,
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
