//! Answering experiment questions from the kept state: variant sets and
//! contaminated users by bitmap, conversions from the delay buckets (only
//! the users of the window's edge bucket are read one by one), retention
//! from the first-exposure-day cohorts and the activity day sets, and
//! window means from each assigned user's events in its window.

use std::collections::{BTreeMap, HashMap, HashSet};

use roaring::RoaringBitmap;
use serde::Serialize;

use super::report::{assemble, unknown_kind, Measured};
use super::{bucket_bounds, bucket_of, Assignment, ExperimentQuery, ExperimentReport, MetricSpec};
use crate::error::{Error, InputError, Problem, Result};
use crate::keys::activity;
use crate::keys::experiments as xkeys;
use crate::keys::metrics::MetricKey;
use crate::kinds::{ids, EventKind};
use crate::metrics::stats::Moments;
use crate::metrics::Metrics;
use crate::store::Cf;
use crate::time::local_day;

/// One variant of an experiment and its users.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VariantCount {
    /// The variant.
    pub variant: String,
    /// Users assigned to it.
    pub users: u64,
}

/// One experiment: its variants with their users, and contamination.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExperimentSummary {
    /// The experiment.
    pub experiment: String,
    /// Its variants by name.
    pub variants: Vec<VariantCount>,
    /// Users exposed to more than one of its variants.
    pub contaminated_users: u64,
}

/// Experiment questions over one consistent view of a store (the
/// metrics snapshot). Made by [`crate::Db::experiments`].
pub struct Experiments<'a> {
    pub(crate) m: Metrics<'a>,
}

impl Experiments<'_> {
    /// The variant sets under `prefix` (one experiment's, or every one's),
    /// by (experiment, variant); empty sets left out.
    fn variant_sets(&self, prefix: &[u8]) -> Result<BTreeMap<(String, String), RoaringBitmap>> {
        let mut sets = self.grouped(prefix, |k| match k {
            MetricKey::VariantUsers {
                experiment,
                variant,
                ..
            } => Some((experiment, variant)),
            _ => None,
        })?;
        sets.retain(|_, users| !users.is_empty());
        Ok(sets)
    }

    /// The user sets under `prefix`, their chunks unioned per the group
    /// `group` names from each key (keys it names none of are skipped).
    fn grouped<G: Ord>(
        &self,
        prefix: &[u8],
        group: impl Fn(MetricKey) -> Option<G>,
    ) -> Result<BTreeMap<G, RoaringBitmap>> {
        let mut out: BTreeMap<G, RoaringBitmap> = BTreeMap::new();
        let until = crate::keys::prefix_successor(prefix);
        for item in self.m.view.range(Cf::Metrics, prefix, until)? {
            let (k, v) = item?;
            let Some(g) = MetricKey::parse(&k).and_then(&group) else {
                continue;
            };
            let chunk = crate::store::merge::decode_bitmap(&v).ok_or_else(|| {
                crate::metrics::corrupt(Cf::Metrics, &k, "user set does not decode")
            })?;
            *out.entry(g).or_default() |= chunk;
        }
        Ok(out)
    }

    /// Every experiment with users, by name.
    pub fn list(&self) -> Result<Vec<ExperimentSummary>> {
        let sets = self.variant_sets(&xkeys::VARIANT_USERS_PREFIX)?;
        let mut out: Vec<ExperimentSummary> = Vec::new();
        for ((experiment, variant), users) in sets {
            if out.last().is_none_or(|s| s.experiment != experiment) {
                let contaminated_users = self.contaminated(&experiment)?.len();
                out.push(ExperimentSummary {
                    experiment: experiment.clone(),
                    variants: Vec::new(),
                    contaminated_users,
                });
            }
            if let Some(s) = out.last_mut() {
                s.variants.push(VariantCount {
                    variant,
                    users: users.len(),
                });
            }
        }
        Ok(out)
    }

    /// The users assigned `variant` in `experiment` (segment atom
    /// `variant:EXPERIMENT=VARIANT`).
    pub fn variant_users(&self, experiment: &str, variant: &str) -> Result<RoaringBitmap> {
        self.m
            .view
            .get_set(Cf::Metrics, &xkeys::variant_prefix(experiment, variant))
    }

    /// The users exposed to more than one variant of `experiment`.
    pub fn contaminated(&self, experiment: &str) -> Result<RoaringBitmap> {
        self.m
            .view
            .get_set(Cf::Metrics, &xkeys::contaminated_prefix(experiment))
    }

    /// Answers `query` over the users in `filter` (a segment; `None` =
    /// everyone). Retention counts the cohorts whose day has come by
    /// local day `as_of_day`.
    pub fn report(
        &self,
        query: &ExperimentQuery,
        filter: Option<&RoaringBitmap>,
        as_of_day: i32,
    ) -> Result<ExperimentReport> {
        // a kind never recorded is a typo here (a cluster's partition may
        // lack it: `measure` counts no conversion then)
        if let Some(kind) = query.metric.kind() {
            if self.m.kinds.id(&EventKind::from_name(kind)).is_none() {
                return Err(unknown_kind(kind));
            }
        }
        let (measured, contaminated) = self.measure(query, filter, as_of_day)?;
        finish(query, measured, contaminated, || {
            Ok(self.list()?.into_iter().map(|s| s.experiment).collect())
        })
    }

    /// Every variant's figures in this store, by name (none when the
    /// experiment has no users here), and its contaminated users, all ∩
    /// `filter`. A kind this store never recorded converts nobody.
    pub(crate) fn measure(
        &self,
        query: &ExperimentQuery,
        filter: Option<&RoaringBitmap>,
        as_of_day: i32,
    ) -> Result<(BTreeMap<String, Measured>, u64)> {
        let e = query.experiment.as_str();
        let sets: BTreeMap<String, RoaringBitmap> = self
            .variant_sets(&xkeys::variants_prefix(e))?
            .into_iter()
            .filter(|((x, _), _)| x == e)
            .map(|((_, v), users)| (v, users))
            .collect();
        let variants: Vec<&str> = sets.keys().map(String::as_str).collect();
        let assigned: Vec<RoaringBitmap> = sets
            .values()
            .map(|set| match filter {
                Some(f) => set & f,
                None => set.clone(),
            })
            .collect();
        let kind_id = |k: &str| self.m.kinds.id(&EventKind::from_name(k));
        let measured: Vec<Measured> = match &query.metric {
            MetricSpec::Conversion { kind, window_ms } => {
                let union = assigned.iter().fold(RoaringBitmap::new(), |a, b| a | b);
                let converted = match kind_id(kind) {
                    Some(id) => self.converted(e, id, *window_ms, &union)?,
                    None => RoaringBitmap::new(),
                };
                assigned
                    .iter()
                    .map(|set| Measured::Proportion {
                        users: set.len(),
                        converted: set.intersection_len(&converted),
                    })
                    .collect()
            }
            MetricSpec::Retention { day, kind } => {
                let kind = match kind.as_deref() {
                    None => Returning::Active,
                    Some(k) => kind_id(k).map_or(Returning::Nobody, Returning::Kind),
                };
                self.retention(e, &variants, filter, *day, kind, as_of_day)?
            }
            MetricSpec::Revenue { window_ms }
            | MetricSpec::Events { window_ms }
            | MetricSpec::ActiveDays { window_ms } => {
                let mut out = Vec::with_capacity(assigned.len());
                for set in &assigned {
                    out.push(self.window_means(e, set, &query.metric, *window_ms)?);
                }
                out
            }
        };
        let mut contaminated = self.contaminated(e)?;
        if let Some(f) = filter {
            contaminated &= f;
        }
        let by_variant = variants
            .iter()
            .map(|v| (*v).to_owned())
            .zip(measured)
            .collect();
        Ok((by_variant, contaminated.len()))
    }

    /// One user's assignment in `experiment`, as of the view.
    fn assignment(&self, experiment: &str, user_id: u32) -> Result<Option<Assignment>> {
        self.m
            .view
            .get(Cf::Activity, &activity::exposure(user_id, experiment))
    }

    /// The users of `among` whose first `kind_id` event came at most
    /// `window_ms` after their first exposure to `experiment`.
    fn converted(
        &self,
        experiment: &str,
        kind_id: u32,
        window_ms: i64,
        among: &RoaringBitmap,
    ) -> Result<RoaringBitmap> {
        let prefix = xkeys::converted_prefix(experiment, kind_id);
        let edge = bucket_of(window_ms);
        let (_, edge_hi) = bucket_bounds(edge);
        // Buckets below the edge lie wholly inside the window; the edge
        // bucket too when the window ends at its end.
        let whole_edge = edge_hi - 1 <= window_ms;
        let at = |b: u32| {
            let mut k = prefix.clone();
            match u16::try_from(b) {
                Ok(b) => {
                    k.extend_from_slice(&b.to_be_bytes());
                    k
                }
                Err(_) => crate::keys::prefix_successor(&prefix).unwrap_or_default(),
            }
        };
        let end = u32::from(edge) + u32::from(whole_edge);
        let mut converted = self.m.view.union_range(Cf::Metrics, &at(0), at(end))?;
        converted &= among;
        if !whole_edge {
            let mut edge_users = self.m.view.get_set(Cf::Metrics, &at(u32::from(edge)))?;
            edge_users &= among;
            for user_id in &edge_users {
                let a = self.assignment(experiment, user_id)?;
                if a.is_some_and(|a| {
                    a.firsts
                        .get(&kind_id)
                        .is_some_and(|t| t - a.first_ms <= window_ms)
                }) {
                    converted.insert(user_id);
                }
            }
        }
        Ok(converted)
    }

    /// Retention on day `day` after the exposure day, per variant.
    fn retention(
        &self,
        experiment: &str,
        variants: &[&str],
        filter: Option<&RoaringBitmap>,
        day: u32,
        returning: Returning,
        as_of_day: i32,
    ) -> Result<Vec<Measured>> {
        let offset = i32::try_from(day).unwrap_or(i32::MAX);
        let mut returned_on: HashMap<i32, RoaringBitmap> = HashMap::new();
        let mut out = Vec::with_capacity(variants.len());
        for v in variants {
            let (mut users, mut converted) = (0u64, 0u64);
            for (d, mut cohort) in self.cohorts(experiment, v)? {
                let target = d.saturating_add(offset);
                if target > as_of_day {
                    continue;
                }
                if let Some(f) = filter {
                    cohort &= f;
                }
                let back = match returned_on.get(&target) {
                    Some(set) => set,
                    None => {
                        let set = match returning {
                            Returning::Active => self.m.active_users(None, target, target, None)?,
                            Returning::Kind(id) => match self.m.kinds.kind(id) {
                                Some(k) => self.m.active_users(Some(&k), target, target, None)?,
                                None => RoaringBitmap::new(),
                            },
                            Returning::Nobody => RoaringBitmap::new(),
                        };
                        returned_on.entry(target).or_insert(set)
                    }
                };
                users += cohort.len();
                converted += cohort.intersection_len(back);
            }
            out.push(Measured::Proportion { users, converted });
        }
        Ok(out)
    }

    /// The first-exposure-day cohorts of one variant, by local day.
    fn cohorts(&self, experiment: &str, variant: &str) -> Result<BTreeMap<i32, RoaringBitmap>> {
        let prefix = xkeys::exposed_on_prefix(experiment, variant);
        self.grouped(&prefix, |k| match k {
            MetricKey::ExposedOn { day, .. } => Some(day),
            _ => None,
        })
    }

    /// A window mean over `users`: each user's events in `[first exposure,
    /// first exposure + window_ms]`.
    fn window_means(
        &self,
        experiment: &str,
        users: &RoaringBitmap,
        metric: &MetricSpec,
        window_ms: i64,
    ) -> Result<Measured> {
        let non_activity: HashSet<u32> =
            crate::metrics::non_activity_ids(&self.m.settings, self.m.kinds);
        let offset = self.m.view.store().settings().utc_offset_minutes;
        // One user's value: its events in `[first exposure, + window]`.
        let value_of = |user_id: u32| -> Result<Option<i64>> {
            let Some(a) = self.assignment(experiment, user_id)? else {
                return Ok(None);
            };
            let to_ms = a.first_ms.saturating_add(window_ms).saturating_add(1);
            let facts = crate::timeline::facts_at(&self.m.view, user_id, a.first_ms, to_ms, None)?;
            let activity = facts.iter().filter(|f| !non_activity.contains(&f.kind_id));
            Ok(Some(match metric {
                MetricSpec::Revenue { .. } => facts
                    .iter()
                    .map(|f| match f.kind_id {
                        ids::PURCHASE => f.amount_minor,
                        ids::REFUND => -f.amount_minor,
                        _ => 0,
                    })
                    .fold(0i64, i64::saturating_add),
                MetricSpec::Events { .. } => activity.count() as i64,
                _ => {
                    let days: HashSet<i32> = activity.map(|f| local_day(f.ts_ms, offset)).collect();
                    days.len() as i64
                }
            }))
        };
        // Each user costs a point read and a range read: two threads, the
        // users halved by id.
        let read = |part: &mut dyn Iterator<Item = u32>| -> Result<Vec<i64>> {
            let mut out = Vec::new();
            for user_id in part {
                out.extend(value_of(user_id)?);
            }
            Ok(out)
        };
        let half = users.len() / 2;
        let (a, b) = std::thread::scope(|sc| {
            let other = sc.spawn(|| read(&mut users.iter().skip(half as usize)));
            let mine = read(&mut users.iter().take(half as usize));
            (mine, other.join())
        });
        let b = b.map_err(|_| Error::internal("an experiment thread panicked"))?;
        let (a, b) = (a?, b?);
        let sum = a.iter().chain(&b).fold(0i64, |s, v| s.saturating_add(*v));
        let values: Vec<f64> = a.iter().chain(&b).map(|v| *v as f64).collect();
        Ok(Measured::Mean {
            moments: Moments::of(&values),
            sum,
        })
    }
}

/// Who counts as returned in a retention question.
#[derive(Debug, Clone, Copy)]
enum Returning {
    /// Any activity.
    Active,
    /// An event of this kind id.
    Kind(u32),
    /// Nobody: a kind this store never recorded.
    Nobody,
}

/// The report of `measured` variants: refused when the experiment has no
/// users (`experiments` names those there are) or lacks the control; the
/// control first, then the others by name.
pub(crate) fn finish(
    query: &ExperimentQuery,
    mut measured: BTreeMap<String, Measured>,
    contaminated: u64,
    experiments: impl FnOnce() -> Result<Vec<String>>,
) -> Result<ExperimentReport> {
    if measured.is_empty() {
        let there = experiments()?;
        return Err(Error::Input(InputError::new(
            "experiment",
            Problem::Unparsable {
                reason: format!(
                    "no experiment {:?}; experiments: {}",
                    query.experiment,
                    names(there.iter().map(String::as_str))
                ),
            },
        )));
    }
    let Some(control) = measured.remove(&query.control) else {
        return Err(Error::Input(InputError::new(
            "control",
            Problem::Unparsable {
                reason: format!(
                    "no variant {:?} in {:?}; variants: {}",
                    query.control,
                    query.experiment,
                    names(measured.keys().map(String::as_str))
                ),
            },
        )));
    };
    let ordered: Vec<(String, Measured)> = std::iter::once((query.control.clone(), control))
        .chain(measured)
        .collect();
    Ok(assemble(query, &ordered, contaminated)?)
}

/// Names for a message, comma-separated ("none" when empty).
fn names<'n>(it: impl Iterator<Item = &'n str>) -> String {
    let v: Vec<&str> = it.collect();
    if v.is_empty() {
        "none".to_owned()
    } else {
        v.join(", ")
    }
}
