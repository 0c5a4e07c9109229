//! `verify`: recompute every maintained structure from the raw records and
//! compare.
//!
//! Owns no data; reads every column family in full. It is the oracle the
//! crash tests and operators rely on, so it re-derives each structure in the
//! plainest way possible rather than reusing the write path's code.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use roaring::RoaringBitmap;
use serde::Serialize;

use crate::error::Result;
use crate::keys::{self, EventKey};
use crate::metrics;
use crate::profiles::{self, Tag};
use crate::store::{decode_value, Cf, Store};
use crate::timeline::{self, KindRegistry};
use crate::users::{self, UserRecord};

/// Most problems listed in one report; the count goes on past it.
pub const MAX_LISTED_PROBLEMS: usize = 1000;

/// What `verify` found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
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

    fn problem(&mut self, text: String) {
        self.problem_count += 1;
        if self.problems.len() < MAX_LISTED_PROBLEMS {
            self.problems.push(text);
        }
    }

    fn count(&mut self, cf: Cf) {
        *self.checked.entry(cf.name().to_owned()).or_default() += 1;
    }
}

pub(crate) fn run(store: &Store, kinds: &KindRegistry) -> Result<VerifyReport> {
    let mut r = VerifyReport::default();
    let records = check_users(store, &mut r)?;
    check_profiles(store, &mut r)?;
    check_tags(store, &mut r)?;
    check_events(store, kinds, &records, &mut r)?;
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
        match decode_value::<UserRecord>(Cf::UserById, &k, &v) {
            Ok(rec) => {
                ids.insert(id);
                records.insert(id, rec);
            }
            Err(e) => r.problem(e.to_string()),
        }
    }
    let mut named = 0usize;
    for item in store.range(Cf::UserByName, &[], None)? {
        let (k, v) = item?;
        r.count(Cf::UserByName);
        named += 1;
        let name = String::from_utf8_lossy(&k).into_owned();
        match decode_value::<u32>(Cf::UserByName, &k, &v) {
            Ok(id) => match records.get(&id) {
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
    if named != records.len() {
        r.problem(format!(
            "{named} user names but {} user records",
            records.len()
        ));
    }
    match users::all_users(store) {
        Ok(set) if set == ids => {}
        Ok(set) => r.problem(format!(
            "all-users set has {} members, user records {} (differing: {})",
            set.len(),
            ids.len(),
            (&set ^ &ids).len()
        )),
        Err(e) => r.problem(e.to_string()),
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

fn check_tags(store: &Store, r: &mut VerifyReport) -> Result<()> {
    let mut holders: BTreeMap<String, RoaringBitmap> = BTreeMap::new();
    let mut expiries: BTreeSet<(String, i64, u32)> = BTreeSet::new();
    for item in store.range(Cf::Tags, &[], None)? {
        let (k, v) = item?;
        r.count(Cf::Tags);
        let (user_id, name) = match keys::split_user_and_name(Cf::Tags.name(), &k) {
            Ok(x) => x,
            Err(e) => {
                r.problem(e.to_string());
                continue;
            }
        };
        match decode_value::<Tag>(Cf::Tags, &k, &v) {
            Ok(tag) => {
                if let Some(e) = tag.expires_at_ms {
                    expiries.insert((name.clone(), e, user_id));
                }
                holders.entry(name).or_default().insert(user_id);
            }
            Err(e) => r.problem(e.to_string()),
        }
    }
    let indexed = profiles::tag_names(store)?;
    let mut all: BTreeSet<String> = holders.keys().cloned().collect();
    all.extend(indexed);
    for tag in all {
        r.count(Cf::TagIndex);
        let want = holders.remove(&tag).unwrap_or_default();
        match profiles::tag_index(store, &tag) {
            Ok(got) if got == want => {}
            Ok(got) => r.problem(format!(
                "tag index {tag:?} has {} users, tags say {} ({} differ)",
                got.len(),
                want.len(),
                (&got ^ &want).len()
            )),
            Err(e) => r.problem(e.to_string()),
        }
    }
    let mut on_disk: BTreeSet<(String, i64, u32)> = BTreeSet::new();
    for item in store.range(Cf::TagExpiry, &[], None)? {
        let (k, _) = item?;
        r.count(Cf::TagExpiry);
        match keys::split_tag_expiry(Cf::TagExpiry.name(), &k) {
            Ok(entry) => {
                on_disk.insert(entry);
            }
            Err(e) => r.problem(e.to_string()),
        }
    }
    for missing in expiries.difference(&on_disk) {
        r.problem(format!("tag expiry entry missing: {missing:?}"));
    }
    for extra in on_disk.difference(&expiries) {
        r.problem(format!("tag expiry entry without a tag: {extra:?}"));
    }
    Ok(())
}

fn check_events(
    store: &Store,
    kinds: &KindRegistry,
    records: &HashMap<u32, UserRecord>,
    r: &mut VerifyReport,
) -> Result<()> {
    let mut total = 0i64;
    let mut per_kind: BTreeMap<u32, i64> = BTreeMap::new();
    let mut max_seq: HashMap<u32, u32> = HashMap::new();
    let mut with_ids: BTreeMap<(u32, String), (i64, u32)> = BTreeMap::new();
    for item in store.range(Cf::Events, &[], None)? {
        let (k, v) = item?;
        r.count(Cf::Events);
        let key = match EventKey::decode(Cf::Events.name(), &k) {
            Ok(key) => key,
            Err(e) => {
                r.problem(e.to_string());
                continue;
            }
        };
        let Some(rec) = records.get(&key.user_id) else {
            r.problem(format!("event {key:?} belongs to no user"));
            continue;
        };
        match timeline::decode_event(kinds, &rec.name, &k, &v) {
            Ok(e) => {
                total += 1;
                if let Some(id) = kinds.id(&e.event.kind) {
                    *per_kind.entry(id).or_default() += 1;
                }
                let m = max_seq.entry(key.user_id).or_insert(0);
                *m = (*m).max(key.seq);
                if let Some(eid) = e.event.event_id {
                    with_ids.insert((key.user_id, eid), (key.ts_ms, key.seq));
                }
            }
            Err(e) => r.problem(e.to_string()),
        }
    }
    for (user_id, m) in &max_seq {
        if let Some(rec) = records.get(user_id) {
            if rec.next_event_seq <= *m {
                r.problem(format!(
                    "user {:?}: next event seq {} but an event has seq {m}",
                    rec.name, rec.next_event_seq
                ));
            }
        }
    }
    for item in store.range(Cf::EventIds, &[], None)? {
        let (k, v) = item?;
        r.count(Cf::EventIds);
        let (user_id, eid) = match keys::split_user_and_name(Cf::EventIds.name(), &k) {
            Ok(x) => x,
            Err(e) => {
                r.problem(e.to_string());
                continue;
            }
        };
        let at = match decode_value::<(i64, u32)>(Cf::EventIds, &k, &v) {
            Ok(at) => at,
            Err(e) => {
                r.problem(e.to_string());
                continue;
            }
        };
        match with_ids.remove(&(user_id, eid.clone())) {
            Some(found) if found == at => {}
            Some(found) => r.problem(format!(
                "event id {eid:?} of user {user_id} indexed at {at:?}, stored at {found:?}"
            )),
            None => r.problem(format!(
                "event id {eid:?} of user {user_id} indexed but no such event"
            )),
        }
    }
    for ((user_id, eid), _) in with_ids {
        r.problem(format!("event id {eid:?} of user {user_id} not indexed"));
    }
    match metrics::events_total(store) {
        Ok(n) if n == total => {}
        Ok(n) => r.problem(format!("event counter says {n}, events hold {total}")),
        Err(e) => r.problem(e.to_string()),
    }
    let mut all_kinds: BTreeSet<u32> = per_kind.keys().copied().collect();
    all_kinds.extend(crate::timeline::EventKind::known().filter_map(|k| k.known_id()));
    all_kinds.extend(kinds.custom().into_iter().map(|(id, _)| id));
    for id in all_kinds {
        let want = per_kind.get(&id).copied().unwrap_or(0);
        match metrics::events_of_kind(store, id) {
            Ok(n) if n == want => {}
            Ok(n) => r.problem(format!("kind {id} counter says {n}, events hold {want}")),
            Err(e) => r.problem(e.to_string()),
        }
    }
    Ok(())
}
