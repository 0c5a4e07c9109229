//! Dimensions (docs/metrics.md, "Dimensions") against a model recomputed
//! from the list of accepted events: random streams of views, carts,
//! purchases, refunds and a non-activity kind over five days, late and
//! out of order, duplicates by event id, events without the property,
//! values past a dimension's cap (folded into `(other)`), erasures,
//! identity merges, a reopen, a rebuild and a dimension declared on a
//! store that already has events (its backfill). Every breakdown row —
//! per kind and any activity, daily and rolling 2-day users, `--top 1`
//! folds — equals the model's, and so do the users of every
//! `did:KIND[channel=VALUE]@D..D` atom, of every `first:channel=VALUE`
//! and `last:channel=VALUE` (first and last touch), a funnel whose steps
//! filter on the channel (against a brute-force search), daily LTV cohorts, and
//! revenue and session depth per day (store-wide and for a set of users);
//! `verify` is clean and re-derives them.

mod common;
use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use stickydb::dims::{BreakdownQuery, Dimension, FunnelStep};
use stickydb::{Db, Event, MergeOptions, Options, PropValue, Segment};

const DAY_MS: i64 = 86_400_000;
const HOUR_MS: i64 = 3_600_000;
/// 2024-03-01 00:00 UTC.
const T0: i64 = 1_709_251_200_000;
const USERS: u8 = 6;
const CHANNELS: [&str; 4] = ["ads", "seo", "mail", "social"];
const KINDS: [&str; 5] = ["view", "add_to_cart", "purchase", "refund", "contacted"];
/// `channel`: every kind, at most 2 values (the rest fold).
const CHANNEL_CAP: u32 = 2;

#[derive(Debug, Clone)]
struct Gen {
    user: u8,
    kind: u8,
    hour: i64,
    amount: i64,
    channel: Option<u8>,
    category: Option<u8>,
    event_id: Option<u8>,
    session: Option<u8>,
}

#[derive(Debug, Clone)]
enum Op {
    Record(Vec<Gen>),
    Erase(u8),
    Merge(u8, u8),
    Reopen,
    Rebuild,
    /// Declares `category` (views and carts only) if not declared yet.
    DeclareCategory,
}

fn gen() -> impl Strategy<Value = Gen> {
    (
        0..USERS,
        0u8..5,
        0i64..(5 * 24),
        1i64..5,
        proptest::option::of(0u8..4),
        proptest::option::of(0u8..3),
        proptest::option::of(0u8..5),
        proptest::option::of(0u8..3),
    )
        .prop_map(
            |(user, kind, hour, amount, channel, category, event_id, session)| Gen {
                user,
                kind,
                hour,
                amount: amount * 100,
                channel,
                category,
                event_id,
                session,
            },
        )
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        10 => proptest::collection::vec(gen(), 1..10).prop_map(Op::Record),
        1 => (0..USERS).prop_map(Op::Erase),
        1 => (0..USERS, 0..USERS).prop_map(|(a, b)| Op::Merge(a, b)),
        1 => Just(Op::Reopen),
        1 => Just(Op::Rebuild),
        1 => Just(Op::DeclareCategory),
    ]
}

fn name(u: u8) -> String {
    format!("u{u}")
}

fn event(g: &Gen) -> Event {
    let kind = KINDS[g.kind as usize];
    let mut e = Event::new(name(g.user), kind, T0 + g.hour * HOUR_MS + g.hour % 7);
    if matches!(kind, "purchase" | "refund") {
        e = e.with_amount(g.amount);
    }
    if let Some(c) = g.channel {
        e = e.with_property("channel", PropValue::Str(CHANNELS[c as usize].into()));
    }
    if let Some(c) = g.category {
        // (numbers are kept as their text)
        e = e.with_property("category", PropValue::Int(i64::from(c)));
    }
    if let Some(id) = g.event_id {
        e = e.with_id(format!("e{id}"));
    }
    if let Some(n) = g.session {
        e = e.with_session(format!("s{n}"));
    }
    e
}

#[derive(Debug, Clone)]
struct MEvent {
    kind: &'static str,
    ts: i64,
    seq: u32,
    id: Option<u8>,
    amount: i64,
    channel: Option<String>,
    category: Option<String>,
    session: Option<u8>,
}

#[derive(Default)]
struct Model {
    users: BTreeMap<String, Vec<MEvent>>,
    next_seq: BTreeMap<String, u32>,
    aliases: BTreeMap<String, String>,
    /// `channel`'s registered values, first accepted first.
    channels: Vec<String>,
    category_declared: bool,
}

impl Model {
    fn resolve(&self, n: &str) -> String {
        self.aliases.get(n).cloned().unwrap_or_else(|| n.to_owned())
    }

    fn push(&mut self, user: &str, mut e: MEvent) {
        let events = self.users.entry(user.to_owned()).or_default();
        if e.id.is_some() && events.iter().any(|x| x.id == e.id) {
            return;
        }
        let seq = self.next_seq.entry(user.to_owned()).or_insert(0);
        e.seq = *seq;
        *seq += 1;
        if let Some(c) = &e.channel {
            if !self.channels.contains(c) && self.channels.len() < CHANNEL_CAP as usize {
                self.channels.push(c.clone());
            }
        }
        events.push(e);
    }

    fn record(&mut self, gens: &[Gen]) {
        for g in gens {
            let user = self.resolve(&name(g.user));
            let kind = KINDS[g.kind as usize];
            let amount = if matches!(kind, "purchase" | "refund") {
                g.amount
            } else {
                0
            };
            self.push(
                &user,
                MEvent {
                    kind,
                    ts: T0 + g.hour * HOUR_MS + g.hour % 7,
                    seq: 0,
                    id: g.event_id,
                    amount,
                    channel: g.channel.map(|c| CHANNELS[c as usize].to_owned()),
                    category: g.category.map(|c| c.to_string()),
                    session: g.session,
                },
            );
        }
    }

    fn erase(&mut self, user: &str) {
        self.users.remove(user);
        self.next_seq.remove(user);
        self.aliases.retain(|_, t| t != user);
    }

    fn merge(&mut self, from: &str, into: &str) {
        let mut moved = self.users.remove(from).unwrap_or_default();
        self.next_seq.remove(from);
        moved.sort_by_key(|e| std::cmp::Reverse((e.ts, e.seq)));
        for e in moved {
            self.push(into, e);
        }
        for t in self.aliases.values_mut() {
            if t == from {
                *t = into.to_owned();
            }
        }
        self.aliases.insert(from.to_owned(), into.to_owned());
    }

    /// The value a dimension keeps of `e` (None: the event does not count).
    fn value(&self, dim: &str, e: &MEvent) -> Option<String> {
        match dim {
            "channel" => e.channel.as_ref().map(|c| {
                if self.channels.contains(c) {
                    c.clone()
                } else {
                    "(other)".to_owned()
                }
            }),
            _ if matches!(e.kind, "view" | "add_to_cart") => e.category.clone(),
            _ => None,
        }
    }

    /// Breakdown rows as (day, value) → (users, events, orders, gmv).
    fn breakdown(
        &self,
        dim: &str,
        kind: Option<&str>,
        window: i32,
        offset: i32,
        days: (i32, i32),
    ) -> BTreeMap<(i32, String), (u64, u64, u64, i64)> {
        let day_of = |ts: i64| (ts + i64::from(offset) * 60_000).div_euclid(DAY_MS) as i32;
        let counts_kind = |k: &str| kind.map_or(k != "contacted", |want| want == k);
        let mut users: BTreeMap<(i32, String), BTreeSet<&str>> = BTreeMap::new();
        let mut sums: BTreeMap<(i32, String), (u64, u64, i64)> = BTreeMap::new();
        for (u, evs) in &self.users {
            for e in evs {
                let Some(v) = self.value(dim, e) else {
                    continue;
                };
                let d = day_of(e.ts);
                if counts_kind(e.kind) {
                    for day in d..d + window {
                        users.entry((day, v.clone())).or_default().insert(u);
                    }
                }
                let s = sums.entry((d, v)).or_default();
                if counts_kind(e.kind) {
                    s.0 += 1;
                }
                if e.kind == "purchase" {
                    s.1 += 1;
                    s.2 += e.amount;
                }
            }
        }
        let mut out = BTreeMap::new();
        for day in days.0..=days.1 {
            let keys: BTreeSet<String> = users
                .keys()
                .chain(sums.keys())
                .filter(|(d, _)| *d == day)
                .map(|(_, v)| v.clone())
                .collect();
            for v in keys {
                let n = users.get(&(day, v.clone())).map_or(0, |s| s.len() as u64);
                let s = sums.get(&(day, v.clone())).copied().unwrap_or_default();
                if n == 0 && s.0 == 0 && s.1 == 0 {
                    continue;
                }
                out.insert((day, v), (n, s.0, s.1, s.2));
            }
        }
        out
    }
}

/// `did:KIND[channel=VALUE]@D..D` against the model, for every channel
/// (a value past the cap is refused: it counts in `(other)`).
fn check_did(db: &Db, model: &Model, offset: i32, (from, to): (i32, i32)) {
    let day_of = |ts: i64| (ts + i64::from(offset) * 60_000).div_euclid(DAY_MS) as i32;
    let fmt = stickydb::time::format_day;
    for kind in ["", "view", "purchase"] {
        for value in CHANNELS.iter().copied().chain(["(other)"]) {
            let text = format!("did:{kind}[channel={value}]@{}..{}", fmt(from), fmt(to));
            let got = db.segment(&Segment::parse(&text).unwrap(), T0);
            let tracked = value == "(other)" || model.channels.iter().any(|c| c == value);
            let full = model.channels.len() >= CHANNEL_CAP as usize;
            if !tracked && full {
                assert!(got.is_err(), "{text}: {got:?}");
                continue;
            }
            let want: BTreeSet<u32> = model
                .users
                .iter()
                .filter(|(_, evs)| {
                    evs.iter().any(|e| {
                        let counts = if kind.is_empty() {
                            e.kind != "contacted"
                        } else {
                            e.kind == kind
                        };
                        counts
                            && (from..=to).contains(&day_of(e.ts))
                            && model.value("channel", e).as_deref() == Some(value)
                    })
                })
                .map(|(u, _)| db.user_id(u).unwrap().unwrap())
                .collect();
            let got: BTreeSet<u32> = got.unwrap().into_iter().collect();
            assert_eq!(got, want, "{text}");
        }
    }
}

/// Every other user of the model, by name and as the store's id set: the
/// segment the filtered checks ask about.
fn every_other_user<'m>(db: &Db, model: &'m Model) -> (Vec<&'m String>, roaring::RoaringBitmap) {
    let some: Vec<&String> = model.users.keys().step_by(2).collect();
    let ids = some
        .iter()
        .map(|u| db.user_id(u).unwrap().unwrap())
        .collect();
    (some, ids)
}

/// Revenue per day against the model, store-wide and for a set of users
/// (`(day, buyers, orders, gmv, refunds, net, aov)`).
fn check_revenue(db: &Db, model: &Model, offset: i32, (from, to): (i32, i32)) {
    type Row = (i32, u64, u64, i64, i64, i64, Option<i64>);
    let day_of = |ts: i64| (ts + i64::from(offset) * 60_000).div_euclid(DAY_MS) as i32;
    let (some, filter) = every_other_user(db, model);
    for only in [None, Some(&filter)] {
        let got: Vec<Row> = db
            .metrics()
            .revenue(from, to, only)
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r.day,
                    r.buyers,
                    r.orders,
                    r.gmv_minor,
                    r.refunds_minor,
                    r.net_minor,
                    r.aov_minor,
                )
            })
            .collect();
        let mut want = Vec::new();
        for day in from..=to {
            let (mut buyers, mut orders, mut gmv, mut refunds) =
                (BTreeSet::new(), 0u64, 0i64, 0i64);
            for (u, evs) in &model.users {
                if only.is_some() && !some.contains(&u) {
                    continue;
                }
                for e in evs.iter().filter(|e| day_of(e.ts) == day) {
                    match e.kind {
                        "purchase" => {
                            buyers.insert(u);
                            orders += 1;
                            gmv += e.amount;
                        }
                        "refund" => refunds += e.amount,
                        _ => {}
                    }
                }
            }
            let aov = (orders > 0).then(|| gmv.div_euclid(orders as i64));
            want.push((
                day,
                buyers.len() as u64,
                orders,
                gmv,
                refunds,
                gmv - refunds,
                aov,
            ));
        }
        assert_eq!(got, want, "revenue (filtered: {})", only.is_some());
    }
}

/// Session depth per day against the model, store-wide and for a set of
/// users: a session is one user's events of one session id, its day its
/// first event's (`(day, sessions, bounces, duration ms, events)`).
fn check_sessions(db: &Db, model: &Model, offset: i32, (from, to): (i32, i32)) {
    let day_of = |ts: i64| (ts + i64::from(offset) * 60_000).div_euclid(DAY_MS) as i32;
    let (some, filter) = every_other_user(db, model);
    for only in [None, Some(&filter)] {
        let rows = db.metrics().sessions(from, to, only).unwrap();
        let got: Vec<(i32, u64, u64, i64, u64)> = rows
            .iter()
            .map(|r| (r.day, r.sessions, r.bounces, r.duration_ms, r.events))
            .collect();
        let mut sessions: BTreeMap<(&String, u8), (i64, i64, u64)> = BTreeMap::new();
        for (u, evs) in &model.users {
            if only.is_some() && !some.contains(&u) {
                continue;
            }
            for e in evs {
                if let Some(s) = e.session {
                    let slot = sessions.entry((u, s)).or_insert((e.ts, e.ts, 0));
                    slot.0 = slot.0.min(e.ts);
                    slot.1 = slot.1.max(e.ts);
                    slot.2 += 1;
                }
            }
        }
        let want: Vec<(i32, u64, u64, i64, u64)> = (from..=to)
            .map(|day| {
                let of_day = sessions.values().filter(|s| day_of(s.0) == day);
                let (mut n, mut bounces, mut ms, mut events) = (0, 0, 0, 0);
                for (first, last, count) in of_day {
                    n += 1;
                    bounces += u64::from(*count == 1);
                    ms += last - first;
                    events += count;
                }
                (day, n, bounces, ms, events)
            })
            .collect();
        assert_eq!(got, want, "sessions (filtered: {})", only.is_some());
        for r in &rows {
            let mean = (r.sessions > 0).then(|| r.events as f64 / r.sessions as f64);
            assert_eq!(r.mean_events, mean);
        }
    }
}

/// `first:channel=V` and `last:channel=V` against the model: the value on
/// each user's first and most recent event carrying a channel (by instant,
/// then sequence).
fn check_touch(db: &Db, model: &Model) {
    for (which, last) in [("first", false), ("last", true)] {
        for value in CHANNELS.iter().copied().chain(["(other)"]) {
            let text = format!("{which}:channel={value}");
            let got = db.segment(&Segment::parse(&text).unwrap(), T0);
            let tracked = value == "(other)" || model.channels.iter().any(|c| c == value);
            if !tracked && model.channels.len() >= CHANNEL_CAP as usize {
                assert!(got.is_err(), "{text}: {got:?}");
                continue;
            }
            let want: BTreeSet<u32> = model
                .users
                .iter()
                .filter(|(_, evs)| {
                    let with = evs.iter().filter(|e| e.channel.is_some());
                    let touch = if last {
                        with.max_by_key(|e| (e.ts, e.seq))
                    } else {
                        with.min_by_key(|e| (e.ts, e.seq))
                    };
                    touch.and_then(|e| model.value("channel", e)).as_deref() == Some(value)
                })
                .map(|(u, _)| db.user_id(u).unwrap().unwrap())
                .collect();
            let got: BTreeSet<u32> = got.unwrap().into_iter().collect();
            assert_eq!(got, want, "{text}");
        }
    }
}

/// Daily LTV cohorts against the model, store-wide and for a set of users:
/// cohort = day of the first activity, cell = net spend of its users on
/// the n-th day after, curve = cumulative net ÷ cohort size.
fn check_ltv(db: &Db, model: &Model, offset: i32, (from, to): (i32, i32)) {
    let day_of = |ts: i64| (ts + i64::from(offset) * 60_000).div_euclid(DAY_MS) as i32;
    let some: Vec<&String> = model.users.keys().skip(1).step_by(2).collect();
    let filter: roaring::RoaringBitmap = some
        .iter()
        .map(|u| db.user_id(u).unwrap().unwrap())
        .collect();
    let max_offset = 3usize;
    for only in [None, Some(&filter)] {
        let got = db
            .metrics()
            .ltv(
                stickydb::metrics::Period::Day,
                (from, to),
                max_offset as u32,
                None,
                only,
            )
            .unwrap();
        let got: Vec<(i32, u64, Vec<i64>, Vec<f64>)> = got
            .cohorts
            .iter()
            .map(|c| {
                (
                    c.cohort,
                    c.size,
                    c.net_minor.clone(),
                    c.cumulative_net_minor.clone(),
                )
            })
            .collect();
        let mut want = Vec::new();
        for c in from..=to {
            let members: Vec<&String> = model
                .users
                .iter()
                .filter(|(u, _)| only.is_none() || some.contains(u))
                .filter(|(_, evs)| {
                    evs.iter()
                        .filter(|e| e.kind != "contacted")
                        .map(|e| day_of(e.ts))
                        .min()
                        == Some(c)
                })
                .map(|(u, _)| u)
                .collect();
            let cells = ((to - c + 1) as usize).min(max_offset + 1);
            let mut net = vec![0i64; cells];
            for u in &members {
                for e in &model.users[*u] {
                    let n = day_of(e.ts) - c;
                    if (0..cells as i32).contains(&n) {
                        match e.kind {
                            "purchase" => net[n as usize] += e.amount,
                            "refund" => net[n as usize] -= e.amount,
                            _ => {}
                        }
                    }
                }
            }
            let size = members.len() as u64;
            let mut sum = 0i64;
            let curve = net
                .iter()
                .map(|n| {
                    sum += n;
                    if size == 0 {
                        0.0
                    } else {
                        ((sum as f64 / size as f64) * 10_000.0).round() / 10_000.0
                    }
                })
                .collect();
            want.push((c, size, net, curve));
        }
        assert_eq!(got, want, "ltv (filtered: {})", only.is_some());
    }
}

/// The deepest step a brute-force search reaches from `used`'s last event.
fn reach(
    evs: &[&MEvent],
    steps: &[(&str, Option<&str>)],
    used: &mut Vec<usize>,
    deadline: i64,
    model: &Model,
) -> usize {
    let i = used.len();
    if i == steps.len() {
        return i;
    }
    let prev = evs[*used.last().unwrap()].ts;
    let mut best = i;
    for (j, e) in evs.iter().enumerate() {
        let fits = !used.contains(&j) && e.ts >= prev && e.ts <= deadline;
        let (kind, value) = steps[i];
        let matches =
            e.kind == kind && value.is_none_or(|v| model.value("channel", e).as_deref() == Some(v));
        if fits && matches {
            used.push(j);
            best = best.max(reach(evs, steps, used, deadline, model));
            used.pop();
        }
    }
    best
}

/// A funnel whose steps filter on the channel against a brute-force model.
fn check_funnel(db: &Db, model: &Model, offset: i32, (from, to): (i32, i32)) {
    let day_of = |ts: i64| (ts + i64::from(offset) * 60_000).div_euclid(DAY_MS) as i32;
    let value = model.channels.first().map_or("ads", String::as_str);
    let steps = [
        ("view", Some(value)),
        ("add_to_cart", Some(value)),
        ("purchase", None),
    ];
    let window_ms = 6 * HOUR_MS;
    let parsed: Vec<FunnelStep> = steps
        .iter()
        .map(|(k, v)| match v {
            Some(v) => FunnelStep::kind(*k).with("channel", *v),
            None => FunnelStep::kind(*k),
        })
        .collect();
    let got = db
        .funnel_steps(&parsed, window_ms, (from, to), None)
        .unwrap();
    let mut want = vec![0u64; steps.len()];
    for evs in model.users.values() {
        let evs: Vec<&MEvent> = evs.iter().collect();
        let mut best = 0;
        for (s, e) in evs.iter().enumerate() {
            let starts = e.kind == steps[0].0
                && model.value("channel", e).as_deref() == steps[0].1
                && (from..=to).contains(&day_of(e.ts));
            if starts {
                best = best.max(reach(&evs, &steps, &mut vec![s], e.ts + window_ms, model));
            }
        }
        for c in want.iter_mut().take(best) {
            *c += 1;
        }
    }
    assert_eq!(got, want, "funnel {steps:?}");
}

fn check(db: &Db, model: &Model, offset: i32) {
    check_funnel(
        db,
        model,
        offset,
        (db.local_day(T0), db.local_day(T0 + 4 * DAY_MS)),
    );
    check_touch(db, model);
    let days = (db.local_day(T0) - 1, db.local_day(T0 + 5 * DAY_MS) + 1);
    check_revenue(db, model, offset, days);
    check_sessions(db, model, offset, days);
    check_ltv(db, model, offset, days);
    check_did(db, model, offset, days);
    check_did(db, model, offset, (days.0 + 2, days.0 + 3));
    let mut dims = vec!["channel"];
    if model.category_declared {
        dims.push("category");
    }
    for dim in dims {
        for kind in [None, Some("view"), Some("purchase"), Some("contacted")] {
            for window in [1, 2] {
                let mut q = BreakdownQuery::new(dim, days.0, days.1).window_days(window as u16);
                if let Some(k) = kind {
                    q = q.kind(k);
                }
                let got = db.breakdown(&q, None, T0).unwrap();
                let got: BTreeMap<(i32, String), (u64, u64, u64, i64)> = got
                    .rows
                    .iter()
                    .map(|r| {
                        let sums = (r.events.unwrap(), r.orders.unwrap(), r.gmv_minor.unwrap());
                        ((r.day, r.value.clone()), (r.users, sums.0, sums.1, sums.2))
                    })
                    .collect();
                let want = model.breakdown(dim, kind, window, offset, days);
                assert_eq!(got, want, "{dim} by {kind:?}, window {window}");
            }
        }
        // the top value kept, the rest folded: users a distinct union
        let top = db
            .breakdown(&BreakdownQuery::new(dim, days.0, days.1).top(1), None, T0)
            .unwrap();
        let values: BTreeSet<&str> = top.rows.iter().map(|r| r.value.as_str()).collect();
        assert!(values.len() <= 2, "{values:?}");
        let all = model.breakdown(dim, None, 1, offset, days);
        for day in days.0..=days.1 {
            let users: u64 = top
                .rows
                .iter()
                .filter(|r| r.day == day)
                .map(|r| r.events.unwrap())
                .sum();
            let want: u64 = all
                .iter()
                .filter(|((d, _), _)| *d == day)
                .map(|(_, s)| s.1)
                .sum();
            assert_eq!(users, want, "events of day {day} under --top 1");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(32),
        ..ProptestConfig::default()
    })]

    #[test]
    fn breakdowns_equal_the_model(
        ops in proptest::collection::vec(op(), 1..24),
        offset in prop_oneof![Just(0i32), Just(480), Just(-300)],
    ) {
        let dir = tempfile::tempdir().unwrap();
        let options = || Options::default()
            .create_if_missing(true)
            .utc_offset_minutes(offset)
            .non_activity_kinds(["contacted"]);
        let mut db = Db::open(dir.path(), options()).unwrap();
        db.declare_dimension(&Dimension::new("channel").max_values(CHANNEL_CAP)).unwrap();
        let mut model = Model::default();
        for op in &ops {
            match op {
                Op::Record(gens) => {
                    let events: Vec<Event> = gens.iter().map(event).collect();
                    db.record_batch(&events).unwrap();
                    model.record(gens);
                }
                Op::Erase(u) => {
                    let n = name(*u);
                    if model.users.contains_key(&n) {
                        prop_assert!(db.erase_user(&n).unwrap());
                        model.erase(&n);
                    }
                }
                Op::Merge(a, b) => {
                    let (from, into) = (name(*a), name(*b));
                    if from != into && model.users.contains_key(&from) && model.users.contains_key(&into) {
                        let id = format!("m-{from}-{into}-{}", model.aliases.len());
                        db.merge(&from, &into, &id, MergeOptions::forced()).unwrap();
                        model.merge(&from, &into);
                    }
                }
                Op::Reopen => {
                    db.close().unwrap();
                    db = Db::open(dir.path(), options()).unwrap();
                }
                Op::Rebuild => {
                    db.rebuild_aggregates().unwrap();
                }
                Op::DeclareCategory => {
                    if !model.category_declared {
                        let d = Dimension::new("category").kinds(["view", "add_to_cart"]);
                        db.declare_dimension(&d).unwrap();
                        model.category_declared = true;
                    }
                }
            }
        }
        check(&db, &model, offset);
        common::assert_clean(&db);
    }
}
