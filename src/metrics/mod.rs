//! The incremental aggregation engine (SPEC §3): engagement metrics kept
//! exact on write.
//!
//! Owns the `metrics` column family (counters and user-set bitmaps, updated
//! only through merge operands) and the `activity` column family (per-user
//! state, read-modified-written under the user's stripe lock). Every delta
//! rides in the WriteBatch of the write that causes it. Queries answer from
//! this state, never by scanning events — except funnels, which read the
//! events of the users the bitmaps cannot rule out (see docs/metrics.md), and
//! `rebuild`, which replays every event to re-derive the aggregates.
//! Must not write events, profiles or user records.

mod days;
mod deltas;
mod dense;
pub(crate) mod forget;
mod load;
mod query;
mod rules;
pub(crate) mod sessions;
pub(crate) mod state;
pub mod stats;
pub(crate) mod transitions;
mod user;
mod work;

use std::collections::HashSet;

use crate::store::Batch;
use serde::{Deserialize, Serialize};

pub use crate::keys::metrics::MoneyField;
pub use days::{DaySet, Period};
pub use query::{mean_stickiness, ratio};
pub use query::{
    ActivationRow, ActiveRow, DailyRow, DistributionRow, Habits, LifecycleRow, LtvCohort,
    LtvReport, Metrics, RepurchaseRate, RetentionMatrix, RetentionQuery, ReturnMode, RevenueRow,
    RfmReport, SessionRow, StageSpan, TransitionRow, UserRfm, MAX_FUNNEL_STEPS, MAX_QUERY_DAY,
    MAX_RANGE_DAYS, MIN_QUERY_DAY,
};
pub use rules::{
    Condition, StageInput, StageModel, StageRule, MAX_STAGE_NAME_BYTES, MAX_STAGE_RULES,
};
pub use state::{DayMoney, UserActivity, ACTIVITY};
pub use transitions::{StageMark, MAX_DUE_AHEAD_DAYS};
pub use user::{Clv, Distribution, RfmScale, UserMetrics};

/// The stage-rule inputs of a user as of day `d` from its assembled state
/// (`None` without activity by then): what `stages` classifies.
pub(crate) fn stage_inputs_of(state: &UserActivity, d: i32) -> Option<rules::Inputs> {
    user::stage_inputs(state, d)
}

use crate::error::{CorruptionError, OpenError, Result};
use crate::store::{Cf, Store};

/// Metric settings persisted in the store (SPEC §3 "store settings").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricSettings {
    /// Kinds that do not count as activity, by name (default: none — every
    /// kind counts). Fixed at creation: activity sets are built with it.
    pub non_activity_kinds: Vec<String>,
    /// The lifecycle-stage model; query-time only, so it may be replaced.
    pub stage_model: StageModel,
}

impl Default for MetricSettings {
    fn default() -> Self {
        Self {
            non_activity_kinds: Vec::new(),
            stage_model: StageModel::standard(),
        }
    }
}

impl MetricSettings {
    /// Whether an event of kind `name` counts as activity.
    pub fn is_activity(&self, name: &str) -> bool {
        counts_as_activity(&self.non_activity_kinds, name)
    }
}

/// The one activity rule (SPEC §2): a kind counts unless it is listed.
pub(crate) fn counts_as_activity(non_activity_kinds: &[String], kind: &str) -> bool {
    !non_activity_kinds.iter().any(|k| k == kind)
}

/// Loads the metric settings, writing them on first open. `requested` is the
/// caller's non-activity list: it must match a stored one; without it a new
/// store gets `default_non_activity`.
pub(crate) fn load_settings(
    store: &Store,
    requested: Option<&Vec<String>>,
    default_non_activity: &[String],
) -> Result<MetricSettings> {
    let stored: Option<MetricSettings> = store.get(Cf::Meta, crate::keys::meta::METRIC_SETTINGS)?;
    match stored {
        Some(s) => {
            if let Some(req) = requested {
                let mut a: Vec<&String> = req.iter().collect();
                let mut b: Vec<&String> = s.non_activity_kinds.iter().collect();
                a.sort();
                a.dedup();
                b.sort();
                if a != b {
                    return Err(OpenError::SettingMismatch {
                        setting: "non_activity_kinds",
                        stored: format!("{:?}", s.non_activity_kinds),
                        requested: format!("{req:?}"),
                    }
                    .into());
                }
            }
            Ok(s)
        }
        None => {
            let mut s = MetricSettings {
                non_activity_kinds: default_non_activity.to_vec(),
                ..MetricSettings::default()
            };
            if let Some(req) = requested {
                for k in req {
                    crate::users::check_name(k, crate::timeline::MAX_KIND_BYTES).map_err(|p| {
                        OpenError::InvalidOption {
                            option: "non_activity_kinds",
                            reason: format!("{k:?}: {p}"),
                        }
                    })?;
                }
                let mut v = req.clone();
                v.sort();
                v.dedup();
                s.non_activity_kinds = v;
            }
            // (a new store's creation batch, or an older store's own write)
            if store.check_writable().is_ok() {
                store.put_setting(
                    crate::keys::meta::METRIC_SETTINGS,
                    crate::codec::encode(&s)?,
                )?;
            }
            Ok(s)
        }
    }
}

/// Puts the metric settings into `batch`.
pub(crate) fn put_settings(batch: &mut Batch, settings: &MetricSettings) -> Result<()> {
    batch.put(
        Cf::Meta,
        crate::keys::meta::METRIC_SETTINGS,
        crate::codec::encode(settings)?,
    );
    Ok(())
}

/// Kind ids that do not count as activity, resolved against the registry.
pub(crate) fn non_activity_ids(
    settings: &MetricSettings,
    kinds: &crate::timeline::KindRegistry,
) -> HashSet<u32> {
    settings
        .non_activity_kinds
        .iter()
        .filter_map(|n| kinds.id(&crate::timeline::EventKind::from_name(n)))
        .collect()
}

/// Events recorded in the store (duplicates excluded).
pub(crate) fn events_total(store: &Store) -> Result<i64> {
    store.get_counter(Cf::Metrics, &crate::keys::metrics::events_total())
}

/// Events of kind `kind_id` recorded in the store.
pub(crate) fn events_of_kind(store: &Store, kind_id: u32) -> Result<i64> {
    store.get_counter(Cf::Metrics, &crate::keys::metrics::events_of_kind(kind_id))
}

/// The first local day `user_id` had an event of `kind_id`, as stored
/// (attribution finds a user's first signup and first purchase through it,
/// then reads only that day's events).
pub(crate) fn first_day_of_kind(store: &Store, user_id: u32, kind_id: u32) -> Result<Option<i32>> {
    let head: Option<state::UserHead> =
        store.get(Cf::Activity, &crate::keys::activity::head(user_id))?;
    Ok(head.and_then(|h| h.firsts.get(&kind_id).copied()))
}

pub(crate) fn corrupt(cf: Cf, key: &[u8], reason: &str) -> CorruptionError {
    CorruptionError {
        cf: cf.name(),
        what: "value",
        key: key.to_vec(),
        reason: reason.to_owned(),
    }
}

/// The refusal of a write whose user's head counts `counted` events when
/// the user's sequence record (primary) says `next`: the derived state is
/// damaged or half rebuilt, and building on it would store a wrong
/// aggregate (or, before the sequence was primary, overwrite an event).
pub(crate) fn count_mismatch(user_id: u32, counted: u32, next: u32) -> crate::error::Error {
    corrupt(
        Cf::Activity,
        &crate::keys::activity::head(user_id),
        &format!(
            "the user's state counts {counted} events but its sequence record says {next}: \
             the aggregates are damaged (run rebuild-aggregates)"
        ),
    )
    .into()
}
