//! `verify`: recompute every maintained structure from the raw records and
//! compare.
//!
//! Owns no data; reads every column family in full. It is the oracle the
//! crash tests and operators rely on, so it re-derives each structure in the
//! plainest way possible rather than reusing the write path's code.

use std::collections::{BTreeMap, HashMap, HashSet};

use roaring::RoaringBitmap;
use serde::Serialize;

use crate::error::Result;
use crate::keys;
use crate::keys::metrics::{all_users as all_users_key, MetricKey, ALL_USERS_PREFIX};
use crate::kinds::KindRegistry;
use crate::profiles;
use crate::store::merge;
use crate::store::{Cf, Store};
use crate::users::UserRecord;

mod aliases;
mod coupons;
mod events;
mod experiments;
mod feed;
mod growth;
mod ledger;
mod metrics;
mod social;
mod social_derive;
mod tags;

/// Most problems listed in one report; the count goes on past it.
pub const MAX_LISTED_PROBLEMS: usize = 1000;

/// What `verify` found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct VerifyReport {
    /// Records read, per column family.
    pub checked: BTreeMap<String, u64>,
    /// Total number of problems found.
    pub problem_count: u64,
    /// The first problems, described.
    pub problems: Vec<String>,
}

impl VerifyReport {
    /// Whether no problem was found.
    pub fn is_clean(&self) -> bool {
        self.problem_count == 0
    }

    pub(super) fn problem(&mut self, text: String) {
        self.problem_count += 1;
        if self.problems.len() < MAX_LISTED_PROBLEMS {
            self.problems.push(text);
        }
    }

    pub(super) fn count(&mut self, cf: Cf) {
        *self.checked.entry(cf.name().to_owned()).or_default() += 1;
    }
}

// (each argument is one independent setting the re-derivation reads)
#[allow(clippy::too_many_arguments)]
pub(crate) fn run(
    store: &Store,
    kinds: &KindRegistry,
    non_activity: &HashSet<u32>,
    ledger_settings: &crate::ledger::LedgerSettings,
    model: &crate::metrics::StageModel,
    exposure_kind: Option<u32>,
    features: &crate::features::FeatureSet,
    (dims, non_activity_kinds): (&crate::dims::DimState, &[String]),
) -> Result<VerifyReport> {
    let mut r = VerifyReport::default();
    let records = check_users(store, &mut r)?;
    let (problems, read) =
        crate::features::check(store, kinds, features, &|u| records.contains_key(&u))?;
    problems.into_iter().for_each(|p| r.problem(p));
    *r.checked.entry(Cf::Features.name().to_owned()).or_default() += read;
    check_profiles(store, &mut r)?;
    tags::check_tags(store, &mut r)?;
    tags::check_attr_index(store, &mut r)?;
    let growth = growth::expected(store, kinds, ledger_settings, non_activity_kinds)?;
    let tier_sets = ledger::check(store, &records, ledger_settings, growth, &mut r)?;
    let mut expected = metrics::Expected::new(store, non_activity, tier_sets, model);
    let mut assignments = experiments::Expected::new(store, exposure_kind);
    events::check_events(
        store,
        kinds,
        &records,
        &mut expected,
        &mut assignments,
        &mut r,
    )?;
    expected.extend_sets(assignments.finish(&mut r)?);
    let kv = crate::dims::KindView {
        kinds,
        non_activity: non_activity_kinds,
    };
    // (a copy: writers that register values are not held off by the scan)
    let (set, reg) = (dims.set.read().clone(), dims.values.read().clone());
    let (sets, counters, problems) = crate::dims::expected(store, &set, &reg, &kv)?;
    problems.into_iter().for_each(|p| r.problem(p));
    expected.extend_sets(sets);
    expected.extend_counters(counters);
    expected.check_metrics(&mut r)?;
    let pays_referrals = ledger_settings
        .rules
        .iter()
        .any(|rule| rule.kind == crate::kinds::REFERRAL_KIND);
    social::check(store, pays_referrals, &mut r)?;
    Ok(r)
}

fn check_users(store: &Store, r: &mut VerifyReport) -> Result<HashMap<u32, UserRecord>> {
    let mut records = HashMap::new();
    let mut ids = RoaringBitmap::new();
    for item in store.range(Cf::UserById, &[], None)? {
        let (k, v) = item?;
        r.count(Cf::UserById);
        let id = match keys::user_of(Cf::UserById.name(), &k) {
            Ok(id) if k.len() == keys::USER_BYTES => id,
            _ => {
                r.problem(format!("user_by_id: malformed key {k:?}"));
                continue;
            }
        };
        match crate::users::decode_record(&k, &v) {
            Ok(rec) => {
                // A partition's users are its own (SPEC §7): ids in its
                // range, names its partition function gives it.
                let partition = store.partition();
                if !partition.holds_id(id) {
                    r.problem(format!(
                        "user id {id} lies outside partition {partition}'s range"
                    ));
                }
                if !partition.owns(&rec.name) {
                    r.problem(format!(
                        "user {:?} belongs to another partition than {partition}",
                        rec.name
                    ));
                }
                ids.insert(id);
                records.insert(id, rec);
            }
            Err(e) => r.problem(e.to_string()),
        }
    }
    let mut named = 0usize;
    let mut aliases = Vec::new();
    for item in store.range(Cf::UserByName, &[], None)? {
        let (k, v) = item?;
        r.count(Cf::UserByName);
        named += 1;
        let name = String::from_utf8_lossy(&k).into_owned();
        match crate::users::decode_entry(&k, &v) {
            Ok(crate::users::NameEntry::Alias { user_id, into }) => {
                named -= 1;
                aliases.push((name, user_id, into));
            }
            Ok(crate::users::NameEntry::User(id)) => match records.get(&id) {
                Some(rec) if rec.name == name => {}
                Some(rec) => r.problem(format!(
                    "user {name:?} maps to id {id} whose record names {:?}",
                    rec.name
                )),
                None => r.problem(format!("user {name:?} maps to id {id} with no record")),
            },
            Err(e) => r.problem(e.to_string()),
        }
    }
    aliases::check(store, &records, &aliases, r)?;
    if named != records.len() {
        r.problem(format!(
            "{named} user names but {} user records",
            records.len()
        ));
    }
    // The all-users set, chunk by chunk: a user filed under another
    // chunk's key is damage too.
    let mut want: BTreeMap<Vec<u8>, RoaringBitmap> = BTreeMap::new();
    for id in &ids {
        want.entry(all_users_key(id)).or_default().insert(id);
    }
    for item in store.prefix(Cf::Metrics, &ALL_USERS_PREFIX)? {
        let (k, v) = item?;
        let expect = want.remove(&k[..]).unwrap_or_default();
        match merge::decode_bitmap(&v) {
            Some(set) if set == expect => {}
            Some(set) => r.problem(format!(
                "all-users set {:?} has {} members, user records {} (differing: {})",
                MetricKey::parse(&k),
                set.len(),
                expect.len(),
                (&set ^ &expect).len()
            )),
            None => r.problem(format!(
                "all-users set {:?} does not decode",
                MetricKey::parse(&k)
            )),
        }
    }
    for (k, set) in want {
        r.problem(format!(
            "all-users set {:?} missing, user records give {}",
            MetricKey::parse(&k),
            set.len()
        ));
    }
    Ok(records)
}

fn check_profiles(store: &Store, r: &mut VerifyReport) -> Result<()> {
    for item in store.range(Cf::Profiles, &[], None)? {
        let (k, v) = item?;
        r.count(Cf::Profiles);
        if let Err(e) = keys::split_user_and_name(Cf::Profiles.name(), &k) {
            r.problem(e.to_string());
        }
        if let Err(e) = profiles::check_attr_bytes(&k, &v) {
            r.problem(e.to_string());
        }
    }
    Ok(())
}
