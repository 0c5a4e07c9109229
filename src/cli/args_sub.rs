//! The CLI's subcommand groups and argument enums (beside `args`, which
//! holds the commands).

use clap::Subcommand;

use super::args::{ActiveArgs, DayRange};
use crate::metrics::Period;

/// `metrics` subcommands.
#[derive(Debug, Subcommand)]
pub enum MetricsCommand {
    /// One row per day: dau, wau, mau, stickiness.
    Active(ActiveArgs),
    /// One row per day: events per kind, orders, gmv, refunds, aov, new users, sessions.
    Daily {
        /// The local days asked about.
        #[command(flatten)]
        range: DayRange,
    },
}

/// `jobs` subcommands.
#[derive(Debug, Subcommand)]
pub enum JobsCommand {
    /// List the recorded job (the default).
    List,
    /// Finish the recorded job from where it stopped.
    Finish,
}

/// `users` subcommands.
#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// One row per user of a segment: attributes, tags, activity,
    /// purchases, CLV summary, stage, RFM, tier, points (docs/cli.md).
    Export(super::export::ExportArgs),
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

impl From<ModeArg> for crate::metrics::ReturnMode {
    fn from(m: ModeArg) -> Self {
        match m {
            ModeArg::On => Self::On,
            ModeArg::OnOrAfter => Self::OnOrAfter,
        }
    }
}
