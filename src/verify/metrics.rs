//! The aggregates, re-derived from the events with plain collections and
//! compared both ways with what is stored: each user's head, day masks,
//! money days and sessions, then every shared user set and counter.
//!
//! Independent of the write path's aggregation logic on purpose: active
//! windows are expanded day by day into covered sets and their edges taken
//! (the write path adds only newly covered intervals), first days are set
//! minima, masks are rebuilt from day sets. It shares the key registry, the
//! local-day arithmetic and the codec.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use roaring::RoaringBitmap;

use super::VerifyReport;
use crate::error::Result;
use crate::keys::activity::{self, ActivityKey};
use crate::keys::metrics::{self as mk, MetricKey, MoneyField};
use crate::kinds::ids::{ACTIVITY, PURCHASE, REFUND};
use crate::metrics::sessions::SessionRec;
use crate::metrics::DayMoney;
use crate::store::merge;
use crate::store::{decode_value, Cf, Store};

/// What the aggregates are derived from, per stored event.
pub(super) struct RawEvent {
    pub user_id: u32,
    pub kind_id: u32,
    pub ts_ms: i64,
    pub amount_minor: i64,
    pub session_id: Option<String>,
    pub seq: u32,
}

/// The per-user state, re-derived with plain collections.
#[derive(Default)]
struct ExpectedUser {
    events: u64,
    seqs: BTreeSet<u32>,
    days: BTreeMap<u32, BTreeSet<i32>>,
    money: BTreeMap<i32, DayMoney>,
    hours: [u64; 24],
    weekdays: [u64; 7],
    sessions: BTreeMap<String, SessionRec>,
}

/// The stored head, as verify reads it (mirrors the engine's head on the
/// wire: hours, weekdays, first day per kind).
#[derive(serde::Deserialize)]
struct StoredHead {
    events: u32,
    hours: [u64; 24],
    weekdays: [u64; 7],
    firsts: BTreeMap<u32, i32>,
    last_active: Option<i32>,
    recent: u64,
    purchase_days: u32,
    bought_minor: i64,
    refunded_minor: i64,
    mark: Option<crate::metrics::StageMark>,
}

/// Aggregates re-derived from events as they stream by. Events come
/// user by user (their keys start with the user), so only the current user's
/// state is held: when the user changes, it is compared with the stored state
/// and folded into the shared sets and counters.
pub(super) struct Expected<'a> {
    store: &'a Store,
    offset: i32,
    non_activity: &'a HashSet<u32>,
    current: Option<(u32, ExpectedUser)>,
    seen: RoaringBitmap,
    sets: BTreeMap<Vec<u8>, RoaringBitmap>,
    counters: BTreeMap<Vec<u8>, i64>,
    model: &'a crate::metrics::StageModel,
    /// (due day, user) of every stage mark seen.
    due: std::cell::RefCell<BTreeSet<(i32, u32)>>,
}

impl<'a> Expected<'a> {
    /// Starts with the sets other checks derived (the ledger's tier sets).
    pub fn new(
        store: &'a Store,
        non_activity: &'a HashSet<u32>,
        sets: BTreeMap<Vec<u8>, RoaringBitmap>,
        model: &'a crate::metrics::StageModel,
    ) -> Self {
        Self {
            store,
            offset: store.settings().utc_offset_minutes,
            non_activity,
            current: None,
            seen: RoaringBitmap::new(),
            sets,
            counters: BTreeMap::new(),
            model,
            due: Default::default(),
        }
    }

    fn add_count(&mut self, k: Vec<u8>, n: i64) {
        // The write path's rule (SPEC §3 limits): sums saturate at the
        // integer's bounds. Inputs are non-negative, so a saturating sum of
        // them does not depend on order and both paths agree.
        let c = self.counters.entry(k).or_default();
        *c = c.saturating_add(n);
    }

    pub fn add(&mut self, e: RawEvent, r: &mut VerifyReport) -> Result<()> {
        if self.current.as_ref().is_some_and(|(u, _)| *u != e.user_id) {
            self.finish_user(r)?;
        }
        let day = crate::time::local_day(e.ts_ms, self.offset);
        let hour = crate::time::local_hour(e.ts_ms, self.offset);
        let wd = crate::time::weekday(day);
        let (_, u) = self
            .current
            .get_or_insert_with(|| (e.user_id, ExpectedUser::default()));
        u.events += 1;
        u.seqs.insert(e.seq);
        u.days.entry(e.kind_id).or_default().insert(day);
        if !self.non_activity.contains(&e.kind_id) {
            u.days.entry(ACTIVITY).or_default().insert(day);
        }
        u.hours[usize::from(hour)] += 1;
        u.weekdays[usize::from(wd)] += 1;
        if e.kind_id == PURCHASE {
            let m = u.money.entry(day).or_default();
            m.orders = m.orders.saturating_add(1);
            m.purchase_minor = m.purchase_minor.saturating_add(e.amount_minor);
        }
        if e.kind_id == REFUND {
            let m = u.money.entry(day).or_default();
            m.refunds = m.refunds.saturating_add(1);
            m.refund_minor = m.refund_minor.saturating_add(e.amount_minor);
        }
        if let Some(s) = e.session_id {
            match u.sessions.get_mut(&s) {
                Some(rec) => rec.add(day, e.ts_ms),
                None => {
                    u.sessions.insert(s, SessionRec::start(day, e.ts_ms));
                }
            }
        }
        self.add_count(mk::events_total(), 1);
        self.add_count(mk::events_of_kind(e.kind_id), 1);
        self.add_count(mk::kind_day(day, e.kind_id), 1);
        self.add_count(mk::hour(hour), 1);
        self.add_count(mk::weekday(wd), 1);
        if e.kind_id == PURCHASE {
            self.add_count(mk::money(day, MoneyField::Orders), 1);
            self.add_count(mk::money(day, MoneyField::Gmv), e.amount_minor);
        }
        if e.kind_id == REFUND {
            self.add_count(mk::money(day, MoneyField::Refunds), 1);
            self.add_count(mk::money(day, MoneyField::RefundMinor), e.amount_minor);
        }
        Ok(())
    }

    /// Compares the current user's stored state with what its events give,
    /// and folds it into the shared expectations.
    fn finish_user(&mut self, r: &mut VerifyReport) -> Result<()> {
        let Some((user_id, u)) = self.current.take() else {
            return Ok(());
        };
        self.seen.insert(user_id);
        for (kind, days) in &u.days {
            for d in days {
                self.sets
                    .entry(mk::day_users(*kind, *d, user_id))
                    .or_default()
                    .insert(user_id);
            }
            if let Some(first) = days.first() {
                self.sets
                    .entry(mk::first_users(*kind, *first, user_id))
                    .or_default()
                    .insert(user_id);
                if *kind == ACTIVITY {
                    self.add_count(mk::money(*first, MoneyField::NewUsers), 1);
                }
            }
            if *kind == ACTIVITY {
                for d in days {
                    self.add_count(mk::rolling(1, *d), 1);
                }
                for w in [7u8, 30] {
                    // every day some window of w days ending there holds an active day
                    let covered: BTreeSet<i32> = days
                        .iter()
                        .flat_map(|a| (0..i32::from(w)).map(move |i| a + i))
                        .collect();
                    for c in &covered {
                        if !covered.contains(&(c - 1)) {
                            self.add_rolling(w, *c, 1);
                        }
                        if !covered.contains(&(c + 1)) {
                            self.add_rolling(w, c + 1, -1);
                        }
                    }
                }
            }
        }
        for s in u.sessions.values() {
            self.add_count(mk::money(s.day, MoneyField::Sessions), 1);
            self.add_count(
                mk::money(s.day, MoneyField::Bounces),
                i64::from(s.events == 1),
            );
            self.add_count(mk::money(s.day, MoneyField::SessionMs), s.duration_ms());
            self.add_count(
                mk::money(s.day, MoneyField::SessionEvents),
                i64::from(s.events),
            );
        }
        self.compare_state(user_id, u, r)
    }

    fn add_rolling(&mut self, w: u8, day: i32, n: i64) {
        self.add_count(mk::rolling(w, day), n);
        self.add_count(mk::rolling_block_key(w, mk::rolling_block(day)), n);
    }

    fn compare_state(&self, user_id: u32, mut u: ExpectedUser, r: &mut VerifyReport) -> Result<()> {
        let store = self.store;
        let head_key = activity::head(user_id);
        match store.get_raw(Cf::Activity, &head_key)? {
            None => r.problem(format!("activity: user {user_id} has events but no head")),
            Some(v) => match decode_value::<StoredHead>(Cf::Activity, &head_key, &v) {
                Err(e) => r.problem(e.to_string()),
                Ok(head) => {
                    // sequence numbers are handed out 0, 1, 2, … in arrival order
                    let contiguous = u.seqs.len() as u64 == u.events
                        && u.seqs.last().is_none_or(|m| u64::from(*m) + 1 == u.events);
                    if u64::from(head.events) != u.events || !contiguous {
                        r.problem(format!(
                            "activity: user {user_id} counts {} events, has {} (sequence numbers {}…{:?})",
                            head.events,
                            u.events,
                            u.seqs.first().copied().unwrap_or(0),
                            u.seqs.last()
                        ));
                    }
                    if head.hours != u.hours || head.weekdays != u.weekdays {
                        r.problem(format!(
                            "activity: user {user_id} habits differ from its events"
                        ));
                    }
                    let firsts: BTreeMap<u32, i32> = u
                        .days
                        .iter()
                        .filter_map(|(k, d)| d.first().map(|f| (*k, *f)))
                        .collect();
                    if head.firsts != firsts {
                        r.problem(format!(
                            "activity: user {user_id} first days differ from its events"
                        ));
                    }
                    super::feed::check_user(
                        user_id,
                        &u.days,
                        &u.money,
                        &super::feed::HeadTotals {
                            last_active: head.last_active,
                            recent: head.recent,
                            purchase_days: head.purchase_days,
                            bought_minor: head.bought_minor,
                            refunded_minor: head.refunded_minor,
                            mark: &head.mark,
                        },
                        self.model,
                        &mut self.due.borrow_mut(),
                        r,
                    );
                }
            },
        }
        let mut days: BTreeMap<u32, BTreeSet<i32>> = BTreeMap::new();
        let mut money: BTreeMap<i32, DayMoney> = BTreeMap::new();
        for fam in [activity::DAYS, activity::MONEY, activity::SESSION] {
            for item in store.prefix(Cf::Activity, &activity::family(fam, user_id))? {
                let (k, v) = item?;
                match ActivityKey::parse(&k) {
                    Some(ActivityKey::Days { block, .. }) => {
                        match decode_value::<BTreeMap<u32, u64>>(Cf::Activity, &k, &v) {
                            Ok(masks) => {
                                for (kind, mask) in masks {
                                    if mask == 0 {
                                        r.problem(format!(
                                            "activity: user {user_id} stores an empty day mask"
                                        ));
                                    }
                                    let set = days.entry(kind).or_default();
                                    for bit in 0..64 {
                                        if mask & (1 << bit) != 0 {
                                            set.insert(block * activity::BLOCK_DAYS + bit);
                                        }
                                    }
                                }
                            }
                            Err(e) => r.problem(e.to_string()),
                        }
                    }
                    Some(ActivityKey::Money { day, .. }) => {
                        match decode_value::<DayMoney>(Cf::Activity, &k, &v) {
                            Ok(m) => {
                                money.insert(day, m);
                            }
                            Err(e) => r.problem(e.to_string()),
                        }
                    }
                    Some(ActivityKey::Session { session_id, .. }) => {
                        let stored = match SessionRec::decode(&k, &v) {
                            Ok(d) => d,
                            Err(e) => {
                                r.problem(e.to_string());
                                continue;
                            }
                        };
                        match u.sessions.remove(&session_id) {
                            Some(d) if d == stored => {}
                            Some(d) => r.problem(format!(
                                "activity: session {session_id:?} of user {user_id} is {stored:?}, events give {d:?}"
                            )),
                            None => r.problem(format!(
                                "activity: session {session_id:?} of user {user_id} has no events"
                            )),
                        }
                    }
                    _ => r.problem(format!("activity: key {k:?} in no known layout")),
                }
            }
        }
        if days != u.days {
            r.problem(format!(
                "activity: user {user_id} day sets differ from its events"
            ));
        }
        if money != u.money {
            r.problem(format!(
                "activity: user {user_id} money differs from its events"
            ));
        }
        for s in u.sessions.keys() {
            r.problem(format!(
                "activity: session {s:?} of user {user_id} not tracked"
            ));
        }
        Ok(())
    }

    /// Finishes the last user and compares every stored aggregate with its
    /// re-derivation; absent = 0 / empty.
    /// Adds sets other checks derived after the events were read (the
    /// experiments' sets).
    pub fn extend_sets(&mut self, sets: BTreeMap<Vec<u8>, RoaringBitmap>) {
        for (k, set) in sets {
            *self.sets.entry(k).or_default() |= set;
        }
    }

    /// Adds counters other checks derived (the dimensions').
    pub fn extend_counters(&mut self, counters: BTreeMap<Vec<u8>, i64>) {
        for (k, n) in counters {
            *self.counters.entry(k).or_default() += n;
        }
    }

    pub fn check_metrics(mut self, r: &mut VerifyReport) -> Result<()> {
        self.finish_user(r)?;
        super::feed::check_due_index(self.store, &self.due.borrow(), r)?;
        let store = self.store;
        let Expected {
            mut sets,
            mut counters,
            seen,
            ..
        } = self;
        for item in store.range(Cf::Metrics, &[], None)? {
            let (k, v) = item?;
            r.count(Cf::Metrics);
            let Some(parsed) = MetricKey::parse(&k) else {
                r.problem(format!("metrics: key {k:?} in no known layout"));
                continue;
            };
            if matches!(parsed, MetricKey::AllUsers { .. }) {
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
            match ActivityKey::parse(&k) {
                Some(p) if seen.contains(p.user_id()) => {}
                Some(p) => r.problem(format!("activity: {p:?} belongs to a user without events")),
                None => r.problem(format!("activity: key {k:?} in no known layout")),
            }
        }
        Ok(())
    }
}
