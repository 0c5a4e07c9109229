//! The job record: a multi-batch maintenance operation in progress (SPEC §5,
//! "Jobs"; docs/architecture.md, "Jobs").
//!
//! A job writes its record into `meta` in its first batch, moves it forward
//! in the batches that make progress, and deletes it in its last. While a
//! record exists and nobody runs the job (a crash or a kill interrupted it,
//! or a step failed) the store refuses writes naming it, and queries of what
//! it re-derives say so; the call that finishes it runs the remaining steps.
//! This module owns the record's layout and the store's view of it; which
//! steps a job has and what they do belong to the write path.

use serde::{Deserialize, Serialize};

use super::{Batch, Cf};
use crate::codec;
use crate::keys::meta;

/// What a job does. Its parameters (settings, models) are saved in `meta`
/// in the job's first batch, so the record needs only the kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum JobKind {
    /// Migrating a store of an older format (run by a writable open).
    Migration {
        /// The format version found.
        from_format: u32,
    },
    /// Rebuilding every aggregate from the events (`Db::rebuild_aggregates`).
    Rebuild,
    /// Re-evaluating every account's tier under new tiers
    /// (`Db::set_ledger_settings`).
    Retier,
    /// Re-deriving attribution under a new window
    /// (`Db::set_social_settings`).
    SocialWindow,
    /// Re-deriving every user's published stage under a new stage model
    /// (`Db::set_stage_model`).
    StageModel,
    /// Erasing a user with more events than one write should carry, or
    /// who owns a share with more touchers than one write should re-derive
    /// (`Db::erase_user`).
    Erase {
        /// The user being erased.
        user_id: u32,
    },
    /// Re-deriving the users who came through shares whose owner a write
    /// changed (a late claim), when there are more than one write should
    /// carry; the shares are the job's subject.
    Touchers,
    /// Adding a newly declared dimension's aggregates for the events
    /// already stored (`Db::declare_dimension`).
    DimBackfill {
        /// The dimension's id.
        dim: u16,
    },
    /// Deleting a dropped dimension's aggregates and values
    /// (`Db::drop_dimension`).
    DimDrop {
        /// The dimension's id.
        dim: u16,
    },
    /// Applying a settings document (`Db::apply_settings`): whichever of
    /// the re-derivations its changes need, in one job.
    Settings {
        /// The attribution window changed.
        social: bool,
        /// The tiers changed.
        retier: bool,
        /// The stage model changed.
        stage: bool,
    },
    /// Applying a settings document that changed the growth rules: as
    /// `Settings`, with every user's growth value re-derived from its
    /// events (and its tier with it) after attribution.
    SettingsGrowth {
        /// The attribution window changed.
        social: bool,
        /// The stage model changed.
        stage: bool,
    },
}

/// A settings job's steps by what changed (index: social | retier << 1 |
/// stage << 2). Attribution first: its referral credits are earns that
/// the re-tier then sees under the new tiers.
const SETTINGS_STEPS: [&[Step]; 8] = {
    use Step::*;
    [
        &[],
        &[SocialSnapshot, SocialRederive, SocialReconcile],
        &[Retier],
        &[SocialSnapshot, SocialRederive, SocialReconcile, Retier],
        &[Resettle],
        &[SocialSnapshot, SocialRederive, SocialReconcile, Resettle],
        &[Retier, Resettle],
        &[
            SocialSnapshot,
            SocialRederive,
            SocialReconcile,
            Retier,
            Resettle,
        ],
    ]
};

/// A growth settings job's steps (index: social | stage << 1).
const GROWTH_STEPS: [&[Step]; 4] = {
    use Step::*;
    [
        &[GrowthDays, Retier],
        &[
            SocialSnapshot,
            SocialRederive,
            SocialReconcile,
            GrowthDays,
            Retier,
        ],
        &[GrowthDays, Retier, Resettle],
        &[
            SocialSnapshot,
            SocialRederive,
            SocialReconcile,
            GrowthDays,
            Retier,
            Resettle,
        ],
    ]
};

impl JobKind {
    /// The job's name, as listed and as named in errors.
    pub fn name(self) -> &'static str {
        match self {
            JobKind::Migration { .. } => "migration",
            JobKind::Rebuild => "rebuild-aggregates",
            JobKind::Retier => "retier",
            JobKind::SocialWindow => "social-window",
            JobKind::StageModel => "stage-model",
            JobKind::Erase { .. } => "erase-user",
            JobKind::Touchers => "touchers",
            JobKind::DimBackfill { .. } => "dimension-backfill",
            JobKind::DimDrop { .. } => "dimension-drop",
            JobKind::Settings { .. } | JobKind::SettingsGrowth { .. } => "settings",
        }
    }

    /// The steps the job runs, in order.
    pub fn steps(self) -> &'static [Step] {
        use Step::*;
        match self {
            // Formats 1–5 differ from today in every derived structure;
            // 6 lacks the social family, 7 the experiment assignments, 8
            // the users' sequence records (docs/architecture.md, "Opening"),
            // 9 the sessions' depth, 10 the attribute index; 11 lacks only
            // coupons and 12 only growth value, which start empty.
            JobKind::Migration { from_format } => match from_format {
                ..=5 => &[
                    AllUsers,
                    TagIndex,
                    TierSets,
                    Clear,
                    Replay,
                    SocialRederive,
                    Experiments,
                    Sequences,
                    AttrIndex,
                ],
                6 => &[SocialRederive, Experiments, Sequences, SessionDepth, AttrIndex],
                7 => &[Experiments, Sequences, SessionDepth, AttrIndex],
                8 => &[Sequences, SessionDepth, AttrIndex],
                9 => &[SessionDepth, AttrIndex],
                10 => &[AttrIndex],
                _ => &[],
            },
            JobKind::Rebuild => &[
                Clear,
                Replay,
                SocialSnapshot,
                SocialRederive,
                SocialReconcile,
                Experiments,
                DimBackfill,
            ],
            JobKind::Retier => &[Retier],
            JobKind::SocialWindow => &[SocialSnapshot, SocialRederive, SocialReconcile],
            JobKind::StageModel => &[Resettle],
            JobKind::Touchers => &[Touchers],
            JobKind::DimBackfill { .. } => &[DimBackfill],
            JobKind::DimDrop { .. } => &[DimDrop],
            JobKind::Settings {
                social,
                retier,
                stage,
            } => {
                SETTINGS_STEPS
                    [usize::from(social) | usize::from(retier) << 1 | usize::from(stage) << 2]
            }
            JobKind::SettingsGrowth { social, stage } => {
                GROWTH_STEPS[usize::from(social) | usize::from(stage) << 1]
            }
            JobKind::Erase { .. } => &[
                EraseSocial,
                Touchers,
                EraseEvents,
                EraseSessions,
                EraseLedger,
                EraseLast,
            ],
        }
    }

    /// Whether queries reading `area` would see the job's half-done work.
    pub fn touches(self, area: Area) -> bool {
        match self {
            _ if area == Area::Everything => true,
            JobKind::Migration { .. } | JobKind::Rebuild | JobKind::Erase { .. } => true,
            JobKind::Retier => area == Area::Tiers,
            JobKind::SocialWindow | JobKind::Touchers => area == Area::Social,
            JobKind::StageModel => area == Area::Stages,
            JobKind::DimBackfill { .. } | JobKind::DimDrop { .. } => area == Area::Dimensions,
            JobKind::Settings {
                social,
                retier,
                stage,
            } => match area {
                Area::Social => social,
                Area::Tiers => retier,
                Area::Stages => stage,
                _ => false,
            },
            JobKind::SettingsGrowth { social, stage } => match area {
                Area::Social => social,
                Area::Tiers => true,
                Area::Stages => stage,
                _ => false,
            },
        }
    }
}

/// One step of a job. Every step is idempotent against the store's
/// current state, or commits its progress in the batches that make it, so
/// a job resumed after a kill at any instant ends as an uninterrupted run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// The all-users set from the user records.
    AllUsers,
    /// The tag index from the tags.
    TagIndex,
    /// The tier sets from the accounts.
    TierSets,
    /// Deleting every aggregate derived from events.
    Clear,
    /// Replaying every event into the aggregates (cursor: the last event
    /// key replayed).
    Replay,
    /// Keeping each first-purchase attribution as it was, to pay or reverse
    /// referral credits for what the re-derivation moves.
    SocialSnapshot,
    /// Re-deriving the social family from the events.
    SocialRederive,
    /// Reversing and paying referral credits of moved attributions (cursor:
    /// the last user settled).
    SocialReconcile,
    /// Re-deriving the experiment assignments.
    Experiments,
    /// Each user's sequence record from its events (cursor: the last user).
    Sequences,
    /// Re-evaluating each account's tier (cursor: the last user).
    Retier,
    /// Re-deriving each user's growth value from its events, and its tier
    /// (cursor: the last user).
    GrowthDays,
    /// Re-deriving each user's published stage (cursor: the last user).
    Resettle,
    /// Taking the erased user out of attribution (one batch; the touchers of
    /// its shares, when too many, become the job's subject).
    EraseSocial,
    /// Re-deriving the touchers of the job's shares (cursor: the share's
    /// index and the last touch key).
    Touchers,
    /// Deleting its events, with their counters (cursor: the last event key).
    EraseEvents,
    /// Deleting its sessions, with their counters (cursor: the last key).
    EraseSessions,
    /// Deleting its ledger records (cursor: the last key).
    EraseLedger,
    /// Deleting the rest — profile, state, sets, experiments, ids — with
    /// the job's record (one batch).
    EraseLast,
    /// Adding one dimension's part of every stored event (cursor: the last
    /// event key).
    DimBackfill,
    /// Deleting one dimension's aggregates and registered values.
    DimDrop,
    /// Re-deriving each session's depth from its events (cursor: the last
    /// user).
    SessionDepth,
    /// The attribute index from the profiles: cleared while the cursor is
    /// empty, then each page of users' entries added (cursor: the last
    /// user).
    AttrIndex,
}

impl Step {
    /// What the step does, for listings and errors.
    pub fn describe(self) -> &'static str {
        match self {
            Step::AllUsers => "re-deriving the all-users set",
            Step::TagIndex => "re-deriving the tag index",
            Step::TierSets => "re-deriving the tier sets",
            Step::Clear => "deleting the aggregates",
            Step::Replay => "replaying the events",
            Step::SocialSnapshot => "keeping the attributions before re-deriving them",
            Step::SocialRederive => "re-deriving attribution",
            Step::SocialReconcile => "settling referral credits of moved attributions",
            Step::Experiments => "re-deriving experiment assignments",
            Step::Sequences => "writing each user's sequence record",
            Step::Retier => "re-evaluating tiers",
            Step::GrowthDays => "re-deriving growth value from the events",
            Step::Resettle => "re-deriving published stages",
            Step::EraseSocial => "taking the user out of attribution",
            Step::Touchers => "re-deriving the users who came through a share",
            Step::EraseEvents => "deleting the user's events",
            Step::EraseSessions => "deleting the user's sessions",
            Step::EraseLedger => "deleting the user's ledger",
            Step::EraseLast => "deleting the rest of the user",
            Step::DimBackfill => "adding the dimension's part of every event",
            Step::DimDrop => "deleting the dimension's aggregates",
            Step::SessionDepth => "re-deriving each session's depth",
            Step::AttrIndex => "deriving the attribute index from the profiles",
        }
    }
}

/// What a query reads, for refusing reads of what an unfinished job
/// re-derives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Area {
    /// Counters, user sets and per-user state kept from the events.
    Aggregates,
    /// Published stages and the stage due index.
    Stages,
    /// Recorded tiers and the tier sets.
    Tiers,
    /// Attribution, sharers and group buys.
    Social,
    /// Dimension breakdowns.
    Dimensions,
    /// Everything maintained (`verify`, which would report half a job's
    /// work as damage).
    Everything,
}

/// A job's durable record: what it is and how far it got.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Job {
    pub kind: JobKind,
    /// The step it is at (an index into the kind's list of steps).
    pub step: u32,
    /// Where in the step: the last key or user it finished (empty: from
    /// the step's start). Each step defines its own.
    pub cursor: Vec<u8>,
    /// What the job is about beyond its kind (the shares whose touchers a
    /// touchers step re-derives).
    pub subject: Vec<String>,
}

impl Job {
    /// A job at its first step.
    pub fn new(kind: JobKind) -> Self {
        Self {
            kind,
            step: 0,
            cursor: Vec::new(),
            subject: Vec::new(),
        }
    }

    /// The step it is at, if any is left.
    pub fn current(&self) -> Option<Step> {
        self.kind.steps().get(self.step as usize).copied()
    }

    /// "i/n: what it does", for listings and errors.
    pub fn describe_step(&self) -> String {
        let steps = self.kind.steps();
        match self.current() {
            Some(step) => format!("{}/{}: {}", self.step + 1, steps.len(), step.describe()),
            None => format!("{}/{}: finishing", steps.len(), steps.len()),
        }
    }

    /// Puts the record into `batch`.
    pub fn put(&self, batch: &mut Batch) -> crate::error::Result<()> {
        batch.put(Cf::Meta, meta::JOB, codec::encode(self)?);
        Ok(())
    }

    /// Deletes the record in `batch` (the job's last batch).
    pub fn clear(batch: &mut Batch) {
        batch.delete(Cf::Meta, meta::JOB);
    }
}

/// The store's view of its job record: the record as last committed, and
/// whether this handle is running it (then writes wait on the job's locks
/// instead of being refused).
#[derive(Debug, Default)]
pub(crate) struct JobState {
    pub recorded: Option<Job>,
    pub running: bool,
}
