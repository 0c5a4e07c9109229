//! `verify`: recompute every maintained structure from the raw records and
//! compare.
//!
//! Owns no data; reads every column family in full. It is the oracle the
//! crash tests and operators rely on, so it re-derives each structure in the
//! plainest way possible rather than reusing the write path's code.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use roaring::RoaringBitmap;
use serde::Serialize;

use crate::error::Result;
use crate::keys::metrics::MetricKey;
use crate::keys::{self, EventKey};
use crate::metrics;
use crate::profiles::{self, Tag};
use crate::store::merge;
use crate::store::{decode_value, Cf, Store};
use crate::timeline::{self, KindRegistry};
use crate::users::{self, UserRecord};

mod ledger;

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

pub(crate) fn run(
    store: &Store,
    kinds: &KindRegistry,
    non_activity: &HashSet<u32>,
    ledger_settings: &crate::ledger::LedgerSettings,
) -> Result<VerifyReport> {
    let mut r = VerifyReport::default();
    let records = check_users(store, &mut r)?;
    check_profiles(store, &mut r)?;
    check_tags(store, &mut r)?;
    let tier_sets = ledger::check(store, &records, ledger_settings, &mut r)?;
    let mut expected = Expected {
        store,
        offset: store.settings().utc_offset_minutes,
        non_activity,
        current: None,
        seen: RoaringBitmap::new(),
        sets: tier_sets,
        counters: BTreeMap::new(),
    };
    check_events(store, kinds, &records, &mut expected, &mut r)?;
    check_metrics(store, expected, &mut r)?;
    Ok(r)
}

/// What the aggregates are derived from, per stored event.
struct RawEvent {
    user_id: u32,
    kind_id: u32,
    ts_ms: i64,
    amount_minor: i64,
    session_id: Option<String>,
}

/// The per-user state, re-derived with plain collections.
#[derive(Default)]
struct ExpectedUser {
    days: BTreeMap<u32, BTreeSet<i32>>,
    money: BTreeMap<i32, metrics::DayMoney>,
    hours: [u64; 24],
    weekdays: [u64; 7],
    sessions: BTreeMap<String, i32>,
}

/// Aggregates re-derived from events as they stream by. Events come
/// user by user (their keys start with the user), so only the current user's
/// state is held: when the user changes, it is compared with the stored state
/// and folded into the shared sets and counters.
struct Expected<'a> {
    store: &'a Store,
    offset: i32,
    non_activity: &'a HashSet<u32>,
    current: Option<(u32, ExpectedUser)>,
    seen: RoaringBitmap,
    sets: BTreeMap<Vec<u8>, RoaringBitmap>,
    counters: BTreeMap<Vec<u8>, i64>,
}

impl Expected<'_> {
    fn add(&mut self, e: RawEvent, r: &mut VerifyReport) -> Result<()> {
        use crate::keys::metrics as mk;
        use crate::kinds::ids::{PURCHASE, REFUND};
        if self.current.as_ref().is_some_and(|(u, _)| *u != e.user_id) {
            self.finish_user(r)?;
        }
        let (_, u) = self
            .current
            .get_or_insert_with(|| (e.user_id, ExpectedUser::default()));
        let counters = &mut self.counters;
        let mut add = |k: Vec<u8>, n: i64| *counters.entry(k).or_default() += n;
        let day = crate::time::local_day(e.ts_ms, self.offset);
        let hour = crate::time::local_hour(e.ts_ms, self.offset);
        let wd = crate::time::weekday(day);
        u.days.entry(e.kind_id).or_default().insert(day);
        if !self.non_activity.contains(&e.kind_id) {
            u.days.entry(metrics::ACTIVITY).or_default().insert(day);
        }
        u.hours[usize::from(hour)] += 1;
        u.weekdays[usize::from(wd)] += 1;
        add(mk::events_total(), 1);
        add(mk::events_of_kind(e.kind_id), 1);
        add(mk::kind_day(day, e.kind_id), 1);
        add(mk::hour(hour), 1);
        add(mk::weekday(wd), 1);
        if e.kind_id == PURCHASE {
            let m = u.money.entry(day).or_default();
            m.orders += 1;
            m.purchase_minor += e.amount_minor;
            add(mk::money(day, metrics::MoneyField::Orders), 1);
            add(mk::money(day, metrics::MoneyField::Gmv), e.amount_minor);
        }
        if e.kind_id == REFUND {
            let m = u.money.entry(day).or_default();
            m.refunds += 1;
            m.refund_minor += e.amount_minor;
            add(mk::money(day, metrics::MoneyField::Refunds), 1);
            add(
                mk::money(day, metrics::MoneyField::RefundMinor),
                e.amount_minor,
            );
        }
        if let Some(s) = e.session_id {
            let first = u.sessions.entry(s).or_insert(day);
            *first = (*first).min(day);
        }
        Ok(())
    }

    /// Compares the current user's stored state and sessions with what its
    /// events give, and folds it into the shared expectations.
    fn finish_user(&mut self, r: &mut VerifyReport) -> Result<()> {
        use crate::keys::metrics as mk;
        let Some((user_id, mut u)) = self.current.take() else {
            return Ok(());
        };
        self.seen.insert(user_id);
        let counters = &mut self.counters;
        let mut add = |k: Vec<u8>, n: i64| *counters.entry(k).or_default() += n;
        for (kind, days) in &u.days {
            for d in days {
                self.sets
                    .entry(mk::day_users(*kind, *d))
                    .or_default()
                    .insert(user_id);
            }
            for w in mk::WINDOWS_DAYS {
                let covered: BTreeSet<i32> = days
                    .iter()
                    .flat_map(|a| (0..i32::from(w)).map(move |i| a + i))
                    .collect();
                for d in covered {
                    add(mk::rolling(*kind, w, d), 1);
                }
            }
            if let Some(first) = days.first() {
                if *kind == metrics::ACTIVITY {
                    add(mk::money(*first, metrics::MoneyField::NewUsers), 1);
                }
                self.sets
                    .entry(mk::first_users(*kind, *first))
                    .or_default()
                    .insert(user_id);
            }
        }
        for first in u.sessions.values() {
            add(mk::money(*first, metrics::MoneyField::Sessions), 1);
        }

        let state_key = keys::activity::user_state(user_id);
        match self.store.get_raw(Cf::Activity, &state_key)? {
            None => r.problem(format!("activity: user {user_id} has events but no state")),
            Some(v) => match decode_value::<metrics::UserActivity>(Cf::Activity, &state_key, &v) {
                Err(e) => r.problem(e.to_string()),
                Ok(state) => {
                    let days: BTreeMap<u32, BTreeSet<i32>> = state
                        .days
                        .iter()
                        .map(|(kind, set)| (*kind, set.iter().collect()))
                        .collect();
                    if days != u.days {
                        r.problem(format!(
                            "activity: user {user_id} day sets differ from its events"
                        ));
                    }
                    if state.money != u.money {
                        r.problem(format!(
                            "activity: user {user_id} money differs from its events"
                        ));
                    }
                    if state.hours != u.hours || state.weekdays != u.weekdays {
                        r.problem(format!(
                            "activity: user {user_id} habits differ from its events"
                        ));
                    }
                }
            },
        }
        for item in self.store.prefix(Cf::Activity, &state_key)? {
            let (k, v) = item?;
            if !keys::activity::is_session(&k) {
                continue; // the state, compared above
            }
            let (_, session) = match keys::split_user_and_name(Cf::Activity.name(), &k) {
                Ok(x) => x,
                Err(e) => {
                    r.problem(e.to_string());
                    continue;
                }
            };
            let stored: i32 = match decode_value(Cf::Activity, &k, &v) {
                Ok(d) => d,
                Err(e) => {
                    r.problem(e.to_string());
                    continue;
                }
            };
            match u.sessions.remove(&session) {
                Some(d) if d == stored => {}
                Some(d) => r.problem(format!(
                    "activity: session {session:?} of user {user_id} starts on day {stored}, events give {d}"
                )),
                None => r.problem(format!(
                    "activity: session {session:?} of user {user_id} has no events"
                )),
            }
        }
        for s in u.sessions.keys() {
            r.problem(format!(
                "activity: session {s:?} of user {user_id} not tracked"
            ));
        }
        Ok(())
    }
}

fn check_metrics(store: &Store, mut expected: Expected<'_>, r: &mut VerifyReport) -> Result<()> {
    expected.finish_user(r)?;
    let Expected {
        mut sets,
        mut counters,
        seen,
        ..
    } = expected;

    // Every stored aggregate must equal its re-derivation; absent = 0 / empty.
    for item in store.range(Cf::Metrics, &[], None)? {
        let (k, v) = item?;
        r.count(Cf::Metrics);
        let Some(parsed) = MetricKey::parse(&k) else {
            r.problem(format!("metrics: key {k:?} in no known layout"));
            continue;
        };
        if parsed == MetricKey::AllUsers {
            continue; // compared with the user records by check_users
        }
        if !MetricKey::is_user_set(&k) {
            let want = counters.remove(&k[..]).unwrap_or(0);
            match merge::decode_counter(&v) {
                Some(n) if n == want => {}
                Some(n) => r.problem(format!(
                    "metrics: counter {parsed:?} is {n}, events give {want}"
                )),
                None => r.problem(format!("metrics: counter {parsed:?} does not decode")),
            }
        } else {
            let want = sets.remove(&k[..]).unwrap_or_default();
            match merge::decode_bitmap(&v) {
                Some(set) if set == want => {}
                Some(set) => r.problem(format!(
                    "metrics: user set {parsed:?} has {} users, events give {} ({} differ)",
                    set.len(),
                    want.len(),
                    (&set ^ &want).len()
                )),
                None => r.problem(format!("metrics: user set {parsed:?} does not decode")),
            }
        }
    }
    for (k, n) in counters {
        if n != 0 {
            r.problem(format!(
                "metrics: counter {:?} missing, events give {n}",
                MetricKey::parse(&k)
            ));
        }
    }
    for (k, set) in sets {
        if !set.is_empty() {
            r.problem(format!(
                "metrics: user set {:?} missing, events give {} users",
                MetricKey::parse(&k),
                set.len()
            ));
        }
    }

    // Users with events were compared one by one; what is left must not exist.
    for item in store.range(Cf::Activity, &[], None)? {
        let (k, _) = item?;
        r.count(Cf::Activity);
        match keys::user_of(Cf::Activity.name(), &k) {
            Ok(u) if seen.contains(u) => {}
            Ok(_) => r.problem(format!("activity: entry {k:?} of a user without events")),
            Err(e) => r.problem(e.to_string()),
        }
    }
    Ok(())
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
    expected: &mut Expected<'_>,
    r: &mut VerifyReport,
) -> Result<()> {
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
                if let Some(id) = kinds.id(&e.event.kind) {
                    expected.add(
                        RawEvent {
                            user_id: key.user_id,
                            kind_id: id,
                            ts_ms: key.ts_ms,
                            amount_minor: e.event.amount_minor.unwrap_or(0),
                            session_id: e.event.session_id.clone(),
                        },
                        r,
                    )?;
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
    Ok(())
}
