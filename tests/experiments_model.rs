//! Experiments (docs/metrics.md, "Experiments") against a model that
//! recomputes every figure from the list of accepted events: random
//! streams of exposures (two experiments, three variants), late and
//! duplicate exposures, exposures to another variant (contamination),
//! exposures at the same instant, views, carts, purchases and refunds at
//! instants on an hour grid ± 1 ms — so conversions fall exactly on, just
//! inside and just outside the windows asked — with erasures and identity
//! merges between the writes. Every variant's users, conversions (windows
//! of 5 ms, 1 h, 2 h and 1 day: exact buckets, edge buckets read user by
//! user, whole buckets), retention on days 0–2 (any activity or a kind),
//! revenue, events and active days per user, the contaminated users, the
//! experiment list and the `variant:` atom must equal the model's, with
//! and without a segment filter; `verify` must be clean.

mod common;
use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use stickydb::experiments::{ExperimentQuery, MetricSpec};
use stickydb::{Db, Error, Event, MergeOptions, Options, PropValue, Segment};

const DAY_MS: i64 = 86_400_000;
const HOUR_MS: i64 = 3_600_000;
/// 2024-03-01 00:00 UTC.
const T0: i64 = 1_709_251_200_000;
const USERS: u8 = 6;
const EXPERIMENTS: [&str; 2] = ["checkout", "banner"];
const VARIANTS: [&str; 3] = ["control", "b", "c"];

#[derive(Debug, Clone, Copy)]
enum Kind {
    View,
    Cart,
    Purchase(i64),
    Refund(i64),
    Exposure(u8, u8),
}

#[derive(Debug, Clone)]
struct Gen {
    user: u8,
    kind: Kind,
    hour: i64,
    jitter_ms: i64,
    event_id: Option<u8>,
}

#[derive(Debug, Clone)]
enum Op {
    Record(Vec<Gen>),
    Erase(u8),
    Merge(u8, u8),
}

fn gen() -> impl Strategy<Value = Gen> {
    let kind = prop_oneof![
        2 => Just(Kind::View),
        1 => Just(Kind::Cart),
        2 => (1i64..5).prop_map(|a| Kind::Purchase(a * 100)),
        1 => (1i64..3).prop_map(|a| Kind::Refund(a * 50)),
        3 => (0u8..2, 0u8..3).prop_map(|(e, v)| Kind::Exposure(e, v)),
    ];
    (
        0..USERS,
        kind,
        0i64..(8 * 24),
        -1i64..=1,
        proptest::option::of(0u8..6),
    )
        .prop_map(|(user, kind, hour, jitter_ms, event_id)| Gen {
            user,
            kind,
            hour,
            jitter_ms,
            event_id,
        })
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => proptest::collection::vec(gen(), 1..12).prop_map(Op::Record),
        1 => (0..USERS).prop_map(Op::Erase),
        1 => (0..USERS, 0..USERS).prop_map(|(a, b)| Op::Merge(a, b)),
    ]
}

fn name(u: u8) -> String {
    format!("u{u}")
}

fn event(g: &Gen) -> Event {
    let ts = T0 + g.hour * HOUR_MS + g.jitter_ms;
    let mut e = match g.kind {
        Kind::View => Event::new(name(g.user), "view", ts),
        Kind::Cart => Event::new(name(g.user), "add_to_cart", ts),
        Kind::Purchase(a) => Event::new(name(g.user), "purchase", ts).with_amount(a),
        Kind::Refund(a) => Event::new(name(g.user), "refund", ts).with_amount(a),
        Kind::Exposure(x, v) => Event::new(name(g.user), "exposure", ts)
            .with_property("experiment", PropValue::Str(EXPERIMENTS[x as usize].into()))
            .with_property("variant", PropValue::Str(VARIANTS[v as usize].into())),
    };
    if let Some(id) = g.event_id {
        e = e.with_id(format!("e{id}"));
    }
    e
}

/// One accepted event in the model.
#[derive(Debug, Clone)]
struct MEvent {
    kind: &'static str,
    ts: i64,
    seq: u32,
    id: Option<u8>,
    amount: i64,
    exposure: Option<(u8, u8)>,
}

fn kind_name(k: Kind) -> &'static str {
    match k {
        Kind::View => "view",
        Kind::Cart => "add_to_cart",
        Kind::Purchase(_) => "purchase",
        Kind::Refund(_) => "refund",
        Kind::Exposure(..) => "exposure",
    }
}

#[derive(Default)]
struct Model {
    /// live user name → its events
    users: BTreeMap<String, Vec<MEvent>>,
    next_seq: BTreeMap<String, u32>,
    /// merged-away name → the user it resolves to
    aliases: BTreeMap<String, String>,
}

impl Model {
    fn resolve(&self, n: &str) -> String {
        self.aliases.get(n).cloned().unwrap_or_else(|| n.to_owned())
    }

    fn push(&mut self, user: &str, mut e: MEvent) {
        let events = self.users.entry(user.to_owned()).or_default();
        if e.id.is_some() && events.iter().any(|x| x.id == e.id) {
            return; // a duplicate by event id
        }
        let seq = self.next_seq.entry(user.to_owned()).or_insert(0);
        e.seq = *seq;
        *seq += 1;
        events.push(e);
    }

    fn record(&mut self, gens: &[Gen]) {
        for g in gens {
            let user = self.resolve(&name(g.user));
            let (amount, exposure) = match g.kind {
                Kind::Purchase(a) | Kind::Refund(a) => (a, None),
                Kind::Exposure(x, v) => (0, Some((x, v))),
                _ => (0, None),
            };
            self.push(
                &user,
                MEvent {
                    kind: kind_name(g.kind),
                    ts: T0 + g.hour * HOUR_MS + g.jitter_ms,
                    seq: 0,
                    id: g.event_id,
                    amount,
                    exposure,
                },
            );
        }
    }

    fn erase(&mut self, user: &str) {
        self.users.remove(user);
        self.next_seq.remove(user);
        self.aliases.retain(|_, t| t != user);
    }

    /// `from`'s events move to `into` newest first (the order the store
    /// re-records them in), duplicates by event id dropped.
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
}

/// A user's assignment in the model: (first instant, variant, contaminated).
fn assignment(events: &[MEvent], x: u8) -> Option<(i64, u8, bool)> {
    let exposures: Vec<&MEvent> = events
        .iter()
        .filter(|e| e.exposure.is_some_and(|(ex, _)| ex == x))
        .collect();
    let first = exposures.iter().min_by_key(|e| (e.ts, e.seq))?;
    let v = first.exposure.map(|(_, v)| v)?;
    let contaminated = exposures
        .iter()
        .any(|e| e.exposure.is_some_and(|(_, w)| w != v));
    Some((first.ts, v, contaminated))
}

fn local_day(ts: i64, offset_min: i32) -> i64 {
    (ts + i64::from(offset_min) * 60_000).div_euclid(DAY_MS)
}

fn is_activity(kind: &str) -> bool {
    kind != "exposure"
}

/// The model's figure of one user for `metric`: (counted as converted or
/// the value of a mean). `None`: the user is not measured (retention day
/// not come yet).
fn figure(
    events: &[MEvent],
    first: i64,
    metric: &MetricSpec,
    offset: i32,
    as_of_day: i64,
) -> Option<i64> {
    let within = |w: i64| {
        events
            .iter()
            .filter(move |e| e.ts >= first && e.ts <= first + w)
    };
    Some(match metric {
        MetricSpec::Conversion { kind, window_ms } => {
            i64::from(within(*window_ms).any(|e| e.kind == kind.as_str()))
        }
        MetricSpec::Retention { day, kind } => {
            let target = local_day(first, offset) + i64::from(*day);
            if target > as_of_day {
                return None;
            }
            i64::from(events.iter().any(|e| {
                local_day(e.ts, offset) == target
                    && match kind {
                        Some(k) => e.kind == k.as_str(),
                        None => is_activity(e.kind),
                    }
            }))
        }
        MetricSpec::Revenue { window_ms } => within(*window_ms)
            .map(|e| match e.kind {
                "purchase" => e.amount,
                "refund" => -e.amount,
                _ => 0,
            })
            .sum(),
        MetricSpec::Events { window_ms } => {
            within(*window_ms).filter(|e| is_activity(e.kind)).count() as i64
        }
        MetricSpec::ActiveDays { window_ms } => within(*window_ms)
            .filter(|e| is_activity(e.kind))
            .map(|e| local_day(e.ts, offset))
            .collect::<BTreeSet<_>>()
            .len() as i64,
    })
}

fn metrics() -> Vec<MetricSpec> {
    [
        "conversion:purchase:5ms",
        "conversion:purchase:1h",
        "conversion:view:2h",
        "conversion:add_to_cart:1d",
        "conversion:refund:2h",
        "retention:0",
        "retention:1",
        "retention:2:purchase",
        "revenue:1d",
        "events:1h",
        "active_days:2d",
    ]
    .iter()
    .map(|m| MetricSpec::parse(m).unwrap())
    .collect()
}

fn check(db: &Db, model: &Model, offset: i32) {
    let now = T0 + 6 * DAY_MS;
    let as_of_day = local_day(now, offset);
    // the list: variants with users, contaminated users
    let list = db.experiments().list().unwrap();
    for (x, e) in EXPERIMENTS.iter().enumerate() {
        let mut want: BTreeMap<u8, BTreeSet<String>> = BTreeMap::new();
        let mut contaminated = 0u64;
        for (u, events) in &model.users {
            if let Some((_, v, c)) = assignment(events, x as u8) {
                want.entry(v).or_default().insert(u.clone());
                contaminated += u64::from(c);
            }
        }
        let got = list.iter().find(|s| s.experiment == *e);
        let got_variants: BTreeMap<String, u64> = got
            .map(|s| {
                s.variants
                    .iter()
                    .map(|v| (v.variant.clone(), v.users))
                    .collect()
            })
            .unwrap_or_default();
        let want_variants: BTreeMap<String, u64> = want
            .iter()
            .map(|(v, us)| (VARIANTS[*v as usize].to_owned(), us.len() as u64))
            .collect();
        assert_eq!(got_variants, want_variants, "variants of {e}");
        assert_eq!(
            got.map_or(0, |s| s.contaminated_users),
            contaminated,
            "contaminated in {e}"
        );
        // the variant: atom
        for (v, users) in &want {
            let atom = Segment::Variant {
                experiment: (*e).to_owned(),
                variant: VARIANTS[*v as usize].to_owned(),
            };
            let got: BTreeSet<String> = db
                .segment(&atom, now)
                .unwrap()
                .iter()
                .map(|id| db.user_name(id).unwrap().unwrap())
                .collect();
            assert_eq!(&got, users, "{atom}");
        }
        let Some(control) = want.keys().next().map(|v| VARIANTS[*v as usize]) else {
            let q = ExperimentQuery::new(*e, metrics()[0].clone());
            assert!(
                matches!(db.experiment(&q, None, now), Err(Error::Input(ref ie)) if ie.field == "experiment"),
                "{e} has no users"
            );
            continue;
        };
        for segment in [None, Some(Segment::parse("did:purchase").unwrap())] {
            for metric in metrics() {
                let mut q = ExperimentQuery::new(*e, metric.clone());
                q.control = control.to_owned();
                let report = db.experiment(&q, segment.as_ref(), now).unwrap();
                let mut want_rows: BTreeMap<String, (u64, i64)> = BTreeMap::new();
                for (v, users) in &want {
                    let row = want_rows
                        .entry(VARIANTS[*v as usize].to_owned())
                        .or_default();
                    for u in users {
                        let events = &model.users[u];
                        if segment.is_some() && !events.iter().any(|e| e.kind == "purchase") {
                            continue;
                        }
                        let (first, _, _) = assignment(events, x as u8).unwrap();
                        if let Some(f) = figure(events, first, &metric, offset, as_of_day) {
                            row.0 += 1;
                            row.1 += f;
                        }
                    }
                }
                let got_rows: BTreeMap<String, (u64, i64)> = report
                    .variants
                    .iter()
                    .map(|r| {
                        let n = r.converted.map_or_else(|| r.sum.unwrap(), |c| c as i64);
                        (r.variant.clone(), (r.users, n))
                    })
                    .collect();
                assert_eq!(
                    got_rows,
                    want_rows,
                    "{e} {} segment {segment:?}",
                    metric.text()
                );
                assert_eq!(report.variants[0].variant, control);
                assert_eq!(report.comparisons.len(), report.variants.len() - 1);
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(32),
        ..ProptestConfig::default()
    })]

    #[test]
    fn experiments_equal_the_model(
        ops in proptest::collection::vec(op(), 1..24),
        offset in prop_oneof![Just(0i32), Just(480), Just(-300)],
    ) {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path(), Options::default().create_if_missing(true).utc_offset_minutes(offset)).unwrap();
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
                        db.merge(&from, &into, &format!("m-{from}-{into}-{}", model.aliases.len()), MergeOptions::forced()).unwrap();
                        model.merge(&from, &into);
                    }
                }
            }
        }
        check(&db, &model, offset);
        common::assert_clean(&db);
    }
}
