//! Experiments (SPEC §3, docs/metrics.md "Experiments"): which variant each
//! exposed user was assigned, kept exact on write, and the per-variant
//! metrics and comparisons answered from it.
//!
//! Owns the per-(user, experiment) assignment records (`activity` cf,
//! family 5), the experiment user sets in the `metrics` cf (variant users,
//! first-exposure-day cohorts, contaminated users, conversion delays by
//! bucket: `keys::experiments`) and the experiment settings in `meta`. The
//! write path hands it each write's recorded events (`write.rs`); erasure,
//! merges, rebuilds and `verify` go through `derive.rs`, the one definition
//! of an assignment. Reads events only through `timeline`, activity day
//! sets only through `metrics`. Must not write events, profiles, the ledger
//! or any other module's sets.

mod derive;
mod query;
mod report;
mod write;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{InputError, OpenError, Problem, Result};
use crate::keys::metrics::{chunk_of, MetricKey};
use crate::store::{Cf, Store};
use crate::time::local_day;
use crate::timeline::{Event, EXPERIMENT_PROPERTY, VARIANT_PROPERTY};

pub(crate) use derive::{derive_all, derive_one};
pub(crate) use query::finish;
pub use query::{ExperimentSummary, Experiments, VariantCount};
pub(crate) use report::{unknown_kind, Measured};
pub use report::{
    Comparison, ExperimentQuery, ExperimentReport, MetricSpec, VariantRow, MAX_WINDOW_MS,
};
pub(crate) use write::{forget, rebuild, ExposureWrites};

/// The default exposure kind.
pub const DEFAULT_EXPOSURE_KIND: &str = "exposure";
/// Longest experiment or variant name, in bytes.
pub const MAX_NAME_BYTES: usize = 64;
/// Most experiments one user may be exposed to: bounds the records one of
/// the user's writes reads.
pub const MAX_EXPERIMENTS_PER_USER: usize = 256;

/// Sub-buckets per power of two of conversion delays: a delay bucket spans
/// less than 1/128 of its delay, so a window's edge bucket holds few users.
const SUB_BUCKET_BITS: u32 = 7;
const SUB_BUCKETS: u64 = 1 << SUB_BUCKET_BITS;

/// The delay bucket of a conversion `delay_ms` after the first exposure:
/// exact below 128 ms, then 128 buckets per power of two (≤ 5 375 buckets
/// for any delay a timestamp allows).
pub fn bucket_of(delay_ms: i64) -> u16 {
    let d = u64::try_from(delay_ms).unwrap_or(0);
    if d < SUB_BUCKETS {
        return d as u16;
    }
    let e = 63 - d.leading_zeros(); // ≥ SUB_BUCKET_BITS
    let m = (d >> (e - SUB_BUCKET_BITS)) & (SUB_BUCKETS - 1);
    let b = SUB_BUCKETS + u64::from(e - SUB_BUCKET_BITS) * SUB_BUCKETS + m;
    u16::try_from(b).unwrap_or(u16::MAX)
}

/// The delays of bucket `b`: `[lo, hi)` in ms.
pub fn bucket_bounds(b: u16) -> (i64, i64) {
    let b = u64::from(b);
    if b < SUB_BUCKETS {
        return (b as i64, b as i64 + 1);
    }
    let shift = (b - SUB_BUCKETS) / SUB_BUCKETS;
    let m = (b - SUB_BUCKETS) % SUB_BUCKETS;
    let lo = (SUB_BUCKETS + m) << shift;
    let hi = (SUB_BUCKETS + m + 1) << shift;
    (
        i64::try_from(lo).unwrap_or(i64::MAX),
        i64::try_from(hi).unwrap_or(i64::MAX),
    )
}

/// Experiment settings persisted in the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExperimentSettings {
    /// The kind of the events that expose a user to a variant. Fixed at
    /// creation: assignments are kept on write with it.
    pub exposure_kind: String,
}

impl Default for ExperimentSettings {
    fn default() -> Self {
        Self {
            exposure_kind: DEFAULT_EXPOSURE_KIND.to_owned(),
        }
    }
}

/// Loads the experiment settings, writing them on first open (a store of
/// an older format gets the default). `requested` must match stored ones.
pub(crate) fn load_settings(store: &Store, requested: Option<&str>) -> Result<ExperimentSettings> {
    let stored: Option<ExperimentSettings> =
        store.get(Cf::Meta, crate::keys::meta::EXPERIMENT_SETTINGS)?;
    match stored {
        Some(s) => {
            if let Some(req) = requested {
                if req != s.exposure_kind {
                    return Err(OpenError::SettingMismatch {
                        setting: "exposure_kind",
                        stored: s.exposure_kind,
                        requested: req.to_owned(),
                    }
                    .into());
                }
            }
            Ok(s)
        }
        None => {
            let mut s = ExperimentSettings::default();
            if let Some(req) = requested {
                crate::users::check_name(req, crate::timeline::MAX_KIND_BYTES).map_err(|p| {
                    OpenError::InvalidOption {
                        option: "exposure_kind",
                        reason: format!("{req:?}: {p}"),
                    }
                })?;
                s.exposure_kind = req.to_owned();
            }
            // (a new store's creation batch, or an older store's own write)
            if store.check_writable().is_ok() {
                store.put_setting(
                    crate::keys::meta::EXPERIMENT_SETTINGS,
                    crate::codec::encode(&s)?,
                )?;
            }
            Ok(s)
        }
    }
}

/// Checks an event of the exposure kind: it names its experiment and
/// variant as string properties of 1..=64 bytes. Other events pass.
pub(crate) fn check_exposure(
    e: &Event,
    exposure_kind: &str,
) -> std::result::Result<(), InputError> {
    if e.kind.as_str() != exposure_kind {
        return Ok(());
    }
    for (name, field) in [
        (EXPERIMENT_PROPERTY, "event.properties.experiment"),
        (VARIANT_PROPERTY, "event.properties.variant"),
    ] {
        match e.properties.get(name) {
            None => return Err(InputError::new(field, Problem::Empty)),
            Some(crate::timeline::PropValue::Str(s)) => {
                crate::users::check_name(s, MAX_NAME_BYTES)
                    .map_err(|p| InputError::new(field, p))?;
            }
            Some(_) => {
                return Err(InputError::new(
                    field,
                    Problem::Unparsable {
                        reason: "must be a string".to_owned(),
                    },
                ))
            }
        }
    }
    Ok(())
}

/// One user's assignment in one experiment (`activity` cf, `5 ‖ user ‖
/// experiment`). Field order is the wire order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Assignment {
    /// The instant of the first exposure (the earliest; among equal
    /// instants the first recorded).
    pub first_ms: i64,
    /// Its event's sequence number.
    pub first_seq: u32,
    /// The variant of the first exposure: the user's variant.
    pub variant: String,
    /// Another variant the user was exposed to, if any (contamination).
    pub other: Option<String>,
    /// Kind id → the instant of the first event of the kind at or after
    /// `first_ms` (the conversion delays).
    pub firsts: BTreeMap<u32, i64>,
}

impl Assignment {
    /// The user-set keys this assignment puts `user_id` in.
    pub fn memberships(&self, experiment: &str, user_id: u32, offset_minutes: i32) -> Vec<Vec<u8>> {
        let chunk = chunk_of(user_id);
        let mut out = vec![
            MetricKey::VariantUsers {
                experiment: experiment.to_owned(),
                variant: self.variant.clone(),
                chunk,
            }
            .encode(),
            MetricKey::ExposedOn {
                experiment: experiment.to_owned(),
                variant: self.variant.clone(),
                day: local_day(self.first_ms, offset_minutes),
                chunk,
            }
            .encode(),
        ];
        if self.other.is_some() {
            out.push(
                MetricKey::Contaminated {
                    experiment: experiment.to_owned(),
                    chunk,
                }
                .encode(),
            );
        }
        for (kind, at) in &self.firsts {
            out.push(
                MetricKey::Converted {
                    experiment: experiment.to_owned(),
                    kind: *kind,
                    bucket: bucket_of(at - self.first_ms),
                    chunk,
                }
                .encode(),
            );
        }
        out
    }

    /// What `verify` compares: `other` only as "contaminated or not" (which
    /// other variant was seen first depends on arrival order).
    pub fn normalized(&self) -> (i64, u32, &str, bool, &BTreeMap<u32, i64>) {
        (
            self.first_ms,
            self.first_seq,
            &self.variant,
            self.other.is_some(),
            &self.firsts,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_tile_the_delays_in_order() {
        let mut prev = (0, 0);
        for b in 0..=bucket_of(253_402_300_799_999) {
            let (lo, hi) = bucket_bounds(b);
            assert_eq!(
                lo,
                prev.1,
                "bucket {b} starts where {} ended",
                b.wrapping_sub(1)
            );
            assert!(hi > lo);
            assert_eq!(bucket_of(lo), b);
            assert_eq!(bucket_of(hi - 1), b);
            // an edge bucket is narrow: < 1/128 of its delays
            assert!(lo < 128 || (hi - lo) * 128 <= lo, "bucket {b}: {lo}..{hi}");
            prev = (lo, hi);
        }
        assert!(bucket_of(253_402_300_799_999) < 5_400);
        assert_eq!(bucket_of(-5), 0);
    }
}
