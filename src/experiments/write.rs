//! Keeping assignments on write: the experiments part of one logical
//! write (under the stripe locks of its users), erasure, and rebuilding a
//! set of users from their events.
//!
//! A write reads a user's assignment records only when the user has ever
//! had an exposure (its activity head knows its kinds), so stores and users
//! without experiments pay nothing. A non-exposure event only lowers the
//! first instant of its kind; an exposure that is a user's first, or
//! earlier than the first, re-derives that experiment from the events
//! since it (the stored ones plus the write's own).

use std::collections::{BTreeMap, BTreeSet};

use super::{derive_all, derive_one, Assignment, MAX_EXPERIMENTS_PER_USER};
use crate::error::{Error, Result};
use crate::keys::activity;
use crate::metrics::state::Deltas;
use crate::store::{decode_value, Batch, Cf, Store};
use crate::timeline::{self, Fact};

/// A user's stored assignments, by experiment.
type Assignments = BTreeMap<String, Assignment>;

/// The stored assignments of `users` (ascending), by user: their indexes
/// (`5 ‖ user`: the experiments each is in) in one batched lookup, then
/// the records they name in another — no iterator per user.
pub(crate) fn load_many(store: &Store, users: &[u32]) -> Result<BTreeMap<u32, Assignments>> {
    debug_assert!(users.windows(2).all(|w| w[0] < w[1]), "users ascending");
    let index_keys: Vec<Vec<u8>> = users.iter().map(|u| activity::exposure_index(*u)).collect();
    let mut wanted: Vec<(u32, String)> = Vec::new();
    for ((user_id, key), raw) in users
        .iter()
        .zip(&index_keys)
        .zip(store.get_raw_sorted(Cf::Activity, &index_keys)?)
    {
        if let Some(raw) = raw {
            let names: Vec<String> = decode_value(Cf::Activity, key, &raw)?;
            wanted.extend(names.into_iter().map(|e| (*user_id, e)));
        }
    }
    // `5 ‖ user ‖ experiment` sorts by user, then name: already in order.
    let record_keys: Vec<Vec<u8>> = wanted
        .iter()
        .map(|(u, e)| activity::exposure(*u, e))
        .collect();
    let mut out: BTreeMap<u32, Assignments> = BTreeMap::new();
    for (((user_id, experiment), key), raw) in wanted
        .into_iter()
        .zip(&record_keys)
        .zip(store.get_raw_sorted(Cf::Activity, &record_keys)?)
    {
        let raw = raw.ok_or_else(|| {
            crate::metrics::corrupt(
                Cf::Activity,
                key,
                "an experiment index names a missing assignment",
            )
        })?;
        let a: Assignment = decode_value(Cf::Activity, key, &raw)?;
        out.entry(user_id).or_default().insert(experiment, a);
    }
    Ok(out)
}

/// One user's stored assignments.
pub(crate) fn load(store: &Store, user_id: u32) -> Result<Assignments> {
    Ok(load_many(store, &[user_id])?
        .remove(&user_id)
        .unwrap_or_default())
}

/// Puts a user's index when the experiments it is in changed.
fn put_index(batch: &mut Batch, user_id: u32, before: &Assignments, after: &[&str]) -> Result<()> {
    if before.keys().map(String::as_str).eq(after.iter().copied()) {
        return Ok(());
    }
    let key = activity::exposure_index(user_id);
    if after.is_empty() {
        batch.delete(Cf::Activity, key);
    } else {
        batch.put(Cf::Activity, key, crate::codec::encode(&after)?);
    }
    Ok(())
}

/// Puts the change from `old` to `new` of one assignment: the record and
/// the set memberships that differ.
fn put_change(
    batch: &mut Batch,
    deltas: &mut Deltas,
    offset_minutes: i32,
    user_id: u32,
    experiment: &str,
    old: Option<&Assignment>,
    new: Option<&Assignment>,
) -> Result<()> {
    if old == new {
        return Ok(());
    }
    let before: BTreeSet<Vec<u8>> = old
        .map(|a| a.memberships(experiment, user_id, offset_minutes))
        .unwrap_or_default()
        .into_iter()
        .collect();
    let after: BTreeSet<Vec<u8>> = new
        .map(|a| a.memberships(experiment, user_id, offset_minutes))
        .unwrap_or_default()
        .into_iter()
        .collect();
    for k in before.difference(&after) {
        deltas.remove_user(k.clone(), user_id);
    }
    for k in after.difference(&before) {
        deltas.add_user(k.clone(), user_id);
    }
    let key = activity::exposure(user_id, experiment);
    match new {
        Some(a) => batch.put(Cf::Activity, key, crate::codec::encode(a)?),
        None => batch.delete(Cf::Activity, key),
    }
    Ok(())
}

/// The experiments side of one write: collects each user's recorded
/// events, then updates the assignments of the users who have exposures.
pub(crate) struct ExposureWrites<'s> {
    store: &'s Store,
    /// The exposure kind's id; `None` while no event of it exists (then
    /// nothing is collected).
    exposure_kind: Option<u32>,
    offset_minutes: i32,
    events: BTreeMap<u32, Vec<Fact>>,
}

impl<'s> ExposureWrites<'s> {
    /// Starts the experiments side of a write.
    pub fn new(store: &'s Store, exposure_kind: Option<u32>) -> Self {
        Self {
            store,
            exposure_kind,
            offset_minutes: store.settings().utc_offset_minutes,
            events: BTreeMap::new(),
        }
    }

    /// Notes one recorded event of the write.
    pub fn add(&mut self, user_id: u32, fact: Fact) {
        if self.exposure_kind.is_some() {
            self.events.entry(user_id).or_default().push(fact);
        }
    }

    /// Users with events in the write.
    pub fn users(&self) -> impl Iterator<Item = u32> + '_ {
        self.events.keys().copied()
    }

    /// Updates the assignments of the users for whom `exposed` holds (every
    /// user who has an exposure, this write's included) into `batch`.
    pub(crate) fn finish(self, exposed: impl Fn(u32) -> bool, batch: &mut Batch) -> Result<()> {
        let mut deltas = Deltas::default();
        let users: Vec<u32> = self
            .events
            .keys()
            .copied()
            .filter(|u| exposed(*u))
            .collect();
        let mut stored_all = load_many(self.store, &users)?;
        for user_id in &users {
            let Some(facts) = self.events.get(user_id) else {
                continue;
            };
            let stored = stored_all.remove(user_id).unwrap_or_default();
            let mut names: BTreeSet<&str> = stored.keys().map(String::as_str).collect();
            names.extend(
                facts
                    .iter()
                    .filter_map(|f| f.exposure.as_ref().map(|(e, _)| e.as_str())),
            );
            if names.len() > MAX_EXPERIMENTS_PER_USER {
                return Err(Error::LimitReached {
                    what: "experiments per user",
                    max: MAX_EXPERIMENTS_PER_USER as u64,
                });
            }
            let mut kept: Vec<&str> = Vec::with_capacity(names.len());
            for experiment in names {
                let old = stored.get(experiment);
                let new = self.updated(*user_id, experiment, old, facts)?;
                if new.is_some() {
                    kept.push(experiment);
                }
                put_change(
                    batch,
                    &mut deltas,
                    self.offset_minutes,
                    *user_id,
                    experiment,
                    old,
                    new.as_ref(),
                )?;
            }
            put_index(batch, *user_id, &stored, &kept)?;
        }
        deltas.write(batch)
    }

    /// The assignment after the write's `facts` of the user.
    fn updated(
        &self,
        user_id: u32,
        experiment: &str,
        old: Option<&Assignment>,
        facts: &[Fact],
    ) -> Result<Option<Assignment>> {
        let first_new = facts
            .iter()
            .filter(|f| f.exposure.as_ref().is_some_and(|(e, _)| e == experiment))
            .min_by_key(|f| (f.ts_ms, f.seq));
        let (o, first) = match (old, first_new) {
            (None, None) => return Ok(None),
            (Some(o), None) => (o, None),
            (None, Some(f)) => return self.rederived(user_id, experiment, f, facts),
            (Some(o), Some(f)) if (f.ts_ms, f.seq) < (o.first_ms, o.first_seq) => {
                return self.rederived(user_id, experiment, f, facts)
            }
            (Some(o), Some(f)) => (o, Some(f)),
        };
        debug_assert!(first.is_none_or(|f| f.ts_ms >= o.first_ms));
        let mut a = o.clone();
        for f in facts.iter().filter(|f| f.ts_ms >= a.first_ms) {
            let at = a.firsts.entry(f.kind_id).or_insert(f.ts_ms);
            *at = (*at).min(f.ts_ms);
            match &f.exposure {
                Some((e, v)) if e == experiment && *v != a.variant && a.other.is_none() => {
                    a.other = Some(v.clone());
                }
                _ => {}
            }
        }
        Ok(Some(a))
    }

    /// The assignment from a new or earlier first exposure `first`: every
    /// event since it counts, the stored ones and the write's own (an
    /// earlier stored exposure would have been the old first).
    fn rederived(
        &self,
        user_id: u32,
        experiment: &str,
        first: &Fact,
        facts: &[Fact],
    ) -> Result<Option<Assignment>> {
        let mut all = timeline::facts(
            self.store,
            user_id,
            first.ts_ms,
            i64::MAX,
            self.exposure_kind,
        )?;
        all.extend(facts.iter().cloned());
        Ok(derive_one(experiment, &all))
    }
}

/// Takes `user_id` out of every experiment (erasure, or the user an
/// identity merge empties): deletes its records and set memberships.
pub(crate) fn forget(store: &Store, batch: &mut Batch, user_id: u32) -> Result<()> {
    let offset = store.settings().utc_offset_minutes;
    let mut deltas = Deltas::default();
    let stored = load(store, user_id)?;
    for (experiment, a) in &stored {
        put_change(
            batch,
            &mut deltas,
            offset,
            user_id,
            experiment,
            Some(a),
            None,
        )?;
    }
    put_index(batch, user_id, &stored, &[])?;
    deltas.write(batch)
}

/// Users per batch when rebuilding assignments.
const REBUILD_BATCH_USERS: usize = 1_000;

/// Derives the assignments of `users` from their events (after a clear of
/// every derived structure, or a migration from a format without them):
/// puts each record and its memberships. Returns the users with at least
/// one assignment.
pub(crate) fn rebuild_users(
    store: &Store,
    users: impl IntoIterator<Item = u32>,
    exposure_kind: u32,
) -> Result<u64> {
    let offset = store.settings().utc_offset_minutes;
    let mut assigned = 0u64;
    let mut pending = 0usize;
    let mut batch = Batch::new();
    let mut deltas = Deltas::default();
    for user_id in users {
        let facts = timeline::facts(store, user_id, i64::MIN, i64::MAX, Some(exposure_kind))?;
        let all = derive_all(&facts);
        assigned += u64::from(!all.is_empty());
        for (experiment, a) in &all {
            put_change(
                &mut batch,
                &mut deltas,
                offset,
                user_id,
                experiment,
                None,
                Some(a),
            )?;
        }
        let names: Vec<&str> = all.keys().map(String::as_str).collect();
        put_index(&mut batch, user_id, &Assignments::new(), &names)?;
        pending += 1;
        if pending == REBUILD_BATCH_USERS {
            std::mem::take(&mut deltas).write(&mut batch)?;
            store.write(std::mem::take(&mut batch))?;
            pending = 0;
        }
    }
    deltas.write(&mut batch)?;
    store.write(batch)?;
    Ok(assigned)
}

/// Derives every assignment of the store from the events (a migration
/// from a format without them, or after a rebuild replayed the events):
/// the users with an exposure are those in the first-day sets of the
/// exposure kind. Returns the users with at least one assignment.
pub(crate) fn rebuild(
    store: &Store,
    kinds: &crate::kinds::KindRegistry,
    exposure_kind: &str,
) -> Result<u64> {
    let Some(kind_id) = kinds.id(&crate::kinds::EventKind::from_name(exposure_kind)) else {
        return Ok(0);
    };
    let mut prefix =
        crate::keys::metrics::set_day_prefix(crate::keys::metrics::FIRST_USERS, kind_id, 0);
    prefix.truncate(crate::keys::metrics::SET_DAY_AT);
    let users = store.get_set(Cf::Metrics, &prefix)?;
    rebuild_users(store, users, kind_id)
}
