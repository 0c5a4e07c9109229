//! Experiments: each user's assignment records against the whole-history
//! derivation (`experiments::derive_all`, the definition the incremental
//! write path must agree with), and the experiment user sets they imply
//! (handed to the metrics check, which compares every `metrics` key).

use std::collections::BTreeMap;

use roaring::RoaringBitmap;

use super::VerifyReport;
use crate::error::Result;
use crate::experiments::{derive_all, Assignment};
use crate::keys::activity::{self, ActivityKey};
use crate::store::{decode_value, Cf, Store};
use crate::timeline::Fact;

/// Assignments re-derived from the events, user by user (events arrive
/// grouped by user).
pub(super) struct Expected<'s> {
    store: &'s Store,
    exposure_kind: Option<u32>,
    offset_minutes: i32,
    current: Option<(u32, Vec<Fact>)>,
    /// Users with assignments, whose records were compared.
    compared: RoaringBitmap,
    /// The experiment sets the assignments imply.
    sets: BTreeMap<Vec<u8>, RoaringBitmap>,
}

impl<'s> Expected<'s> {
    pub fn new(store: &'s Store, exposure_kind: Option<u32>) -> Self {
        Self {
            store,
            exposure_kind,
            offset_minutes: store.settings().utc_offset_minutes,
            current: None,
            compared: RoaringBitmap::new(),
            sets: BTreeMap::new(),
        }
    }

    /// The exposure kind's id, if the store knows the kind.
    pub fn exposure_kind(&self) -> Option<u32> {
        self.exposure_kind
    }

    /// One stored event of `user_id`.
    pub fn add(&mut self, user_id: u32, fact: Fact, r: &mut VerifyReport) -> Result<()> {
        if self.exposure_kind.is_none() {
            return Ok(());
        }
        if self.current.as_ref().is_some_and(|(u, _)| *u != user_id) {
            self.flush(r)?;
        }
        self.current
            .get_or_insert_with(|| (user_id, Vec::new()))
            .1
            .push(fact);
        Ok(())
    }

    fn flush(&mut self, r: &mut VerifyReport) -> Result<()> {
        let Some((user_id, facts)) = self.current.take() else {
            return Ok(());
        };
        let want = derive_all(&facts);
        if want.is_empty() {
            // nothing to compare record by record: the closing scan of the
            // family flags any record of a user not compared
            return Ok(());
        }
        self.compared.insert(user_id);
        let mut stored: BTreeMap<String, Assignment> = BTreeMap::new();
        let mut index: Option<Vec<String>> = None;
        for item in self
            .store
            .prefix(Cf::Activity, &activity::family(activity::EXPOSURE, user_id))?
        {
            let (k, v) = item?;
            match ActivityKey::parse(&k) {
                Some(ActivityKey::ExposureIndex { .. }) => match decode_value(Cf::Activity, &k, &v)
                {
                    Ok(names) => index = Some(names),
                    Err(e) => r.problem(e.to_string()),
                },
                Some(ActivityKey::Exposure { experiment, .. }) => {
                    match decode_value::<Assignment>(Cf::Activity, &k, &v) {
                        Ok(a) => {
                            stored.insert(experiment, a);
                        }
                        Err(e) => r.problem(e.to_string()),
                    }
                }
                _ => r.problem(format!("activity: key {k:?} in no known layout")),
            }
        }
        let names: Vec<String> = want.keys().cloned().collect();
        if index.unwrap_or_default() != names {
            r.problem(format!(
                "activity: user {user_id}'s experiment index differs from its assignments {names:?}"
            ));
        }
        for (experiment, a) in &want {
            match stored.remove(experiment) {
                Some(s) if s.normalized() == a.normalized() => {}
                Some(s) => r.problem(format!(
                    "activity: user {user_id}'s assignment in {experiment:?} is {s:?}, events give {a:?}"
                )),
                None => r.problem(format!(
                    "activity: user {user_id} has no assignment in {experiment:?}, events give {a:?}"
                )),
            }
            for k in a.memberships(experiment, user_id, self.offset_minutes) {
                self.sets.entry(k).or_default().insert(user_id);
            }
        }
        for experiment in stored.keys() {
            r.problem(format!(
                "activity: user {user_id} has an assignment in {experiment:?} its events do not give"
            ));
        }
        Ok(())
    }

    /// Compares what is left and returns the expected experiment sets.
    pub fn finish(mut self, r: &mut VerifyReport) -> Result<BTreeMap<Vec<u8>, RoaringBitmap>> {
        self.flush(r)?;
        for item in self.store.prefix(Cf::Activity, &[activity::EXPOSURE])? {
            let (k, _) = item?;
            if let Some(p) = ActivityKey::parse(&k) {
                if !self.compared.contains(p.user_id()) {
                    r.problem(format!(
                        "activity: {p:?} belongs to a user without exposures"
                    ));
                }
            }
        }
        Ok(self.sets)
    }
}
