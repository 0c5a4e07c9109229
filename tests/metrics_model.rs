//! Every SPEC §3 metric equals a naive recomputation from the event list,
//! whatever the arrival order: random streams with duplicates, late and
//! shuffled arrivals, weeks and months across a year boundary, non-zero UTC
//! offsets. `verify` must be clean after each stream.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::model::{Ev, Model, DAY_MS};
use proptest::prelude::*;
use roaring::RoaringBitmap;
use stickydb::metrics::{Period, RetentionQuery, ReturnMode};
use stickydb::{Db, Event, EventKind, Options, RecordOutcome};

const KINDS: [&str; 7] = [
    "view",
    "add_to_cart",
    "purchase",
    "refund",
    "sign_in",
    "signup",
    "share",
];
/// 2024-12-10 00:00 UTC: streams run 60 days, over the new year.
const BASE_MS: i64 = 1_733_788_800_000;
const SPAN_DAYS: i64 = 60;

#[derive(Debug, Clone)]
struct Gen {
    user: u8,
    kind: usize,
    minute: i64,
    amount: i64,
    id: Option<u8>,
    session: Option<u8>,
}

fn gen_event() -> impl Strategy<Value = Gen> {
    (
        0u8..8,
        0usize..KINDS.len(),
        (0i64..SPAN_DAYS * 48).prop_map(|half_hours| half_hours * 30),
        0i64..50_000,
        prop::option::weighted(0.4, 0u8..40),
        prop::option::weighted(0.5, 0u8..6),
    )
        .prop_map(|(user, kind, minute, amount, id, session)| Gen {
            user,
            kind,
            minute,
            amount,
            id,
            session,
        })
}

fn to_event(g: &Gen) -> Event {
    let kind = KINDS[g.kind];
    let mut e = Event::new(format!("u{}", g.user), kind, BASE_MS + g.minute * 60_000);
    if kind == "purchase" || kind == "refund" {
        e = e.with_amount(g.amount);
    }
    if let Some(id) = g.id {
        e = e.with_id(format!("e{id}"));
    }
    if let Some(s) = g.session {
        e = e.with_session(format!("s{s}"));
    }
    e
}

fn users_by_name(db: &Db, names: &BTreeSet<String>) -> RoaringBitmap {
    names
        .iter()
        .filter_map(|n| db.user_id(n).unwrap())
        .collect()
}

fn check(db: &Db, model: &Model, filter_names: &BTreeSet<String>) {
    let m = db.metrics();
    let first_day = model.day(BASE_MS) - 2;
    let last_day = model.day(BASE_MS + SPAN_DAYS * DAY_MS) + 1;

    // DAU / WAU / MAU / stickiness, activity and per kind
    for kind in [None, Some("purchase"), Some("share")] {
        let k = kind.map(EventKind::from_name);
        let rows = m.active(k.as_ref(), first_day, last_day, None).unwrap();
        for r in &rows {
            let (dau, wau, mau) = model.active(kind, r.day);
            assert_eq!(
                (r.dau, r.wau, r.mau),
                (dau, wau, mau),
                "kind {kind:?} day {}",
                r.day
            );
        }
    }
    // calendar weeks and months, across the new year
    for day in [first_day, first_day + 21, first_day + 25, last_day] {
        for (period, p) in [("week", Period::Week), ("month", Period::Month)] {
            let start = common::model::period_of(period, day);
            let end = common::model::next_period(period, start) - 1;
            assert_eq!(
                m.calendar_active(None, p, day, None).unwrap(),
                model.active_between(None, start, end).len() as u64,
                "calendar {period} of {day}"
            );
        }
    }

    // the same through a filter
    let filter = users_by_name(db, filter_names);
    let sub = Model {
        offset_min: model.offset_min,
        non_activity: model.non_activity.clone(),
        events: model
            .events
            .iter()
            .filter(|e| filter_names.contains(&e.user))
            .cloned()
            .collect(),
    };
    for r in m.active(None, first_day, last_day, Some(&filter)).unwrap() {
        assert_eq!(
            (r.dau, r.wau, r.mau),
            sub.active(None, r.day),
            "filtered day {}",
            r.day
        );
    }

    // average stickiness and distribution over a sub-range
    let (a, b) = (first_day + 5, first_day + 40);
    let dist = m.stickiness_distribution(None, a, b, None).unwrap();
    assert_eq!(
        dist.iter().map(|r| r.users).collect::<Vec<_>>(),
        model.distribution(a, b)
    );
    let all = model.active_between(None, a, b).len() as f64;
    let dau_sum: usize = (a..=b)
        .map(|d| model.active_between(None, d, d).len())
        .sum();
    let want = if all == 0.0 {
        0.0
    } else {
        dau_sum as f64 / f64::from(b - a + 1) / all
    };
    assert!((m.average_stickiness(None, a, b, None).unwrap() - want).abs() < 1e-9);

    // retention: day / week / month, on and on-or-after, default and kinds
    for (period, p) in [
        ("day", Period::Day),
        ("week", Period::Week),
        ("month", Period::Month),
    ] {
        for (start, ret) in [(None, None), (Some("signup"), Some("purchase"))] {
            for mode in [ReturnMode::On, ReturnMode::OnOrAfter] {
                let mut q = RetentionQuery::new(p, first_day, last_day);
                q.start_kind = start.map(EventKind::from_name);
                q.return_kind = ret.map(EventKind::from_name);
                q.mode = mode;
                let got = m.retention(&q, None).unwrap();
                let want = model.retention(
                    period,
                    first_day,
                    last_day,
                    start,
                    ret,
                    mode == ReturnMode::OnOrAfter,
                );
                let got: Vec<(i32, u64, Vec<u64>)> = got
                    .cohorts
                    .into_iter()
                    .map(|c| (c.cohort, c.size, c.counts))
                    .collect();
                assert_eq!(got, want, "{period} {start:?}->{ret:?} {mode:?}");
                q.max_offset = 2;
                let capped: Vec<Vec<u64>> = m
                    .retention(&q, None)
                    .unwrap()
                    .cohorts
                    .into_iter()
                    .map(|c| c.counts)
                    .collect();
                let want_capped: Vec<Vec<u64>> = want
                    .iter()
                    .map(|(_, _, c)| c.iter().take(3).copied().collect())
                    .collect();
                assert_eq!(capped, want_capped, "capped {period} {mode:?}");
            }
        }
        // lifecycle
        let got: Vec<_> = m
            .lifecycle(p, first_day, last_day, None)
            .unwrap()
            .into_iter()
            .map(|r| (r.period, r.new, r.returning, r.resurrecting, r.dormant))
            .collect();
        assert_eq!(
            got,
            model.lifecycle(period, first_day, last_day),
            "lifecycle {period}"
        );
    }

    // activation: signup → purchase within 7 days, per week
    let firsts = model.first_days(Some("signup"));
    for row in m
        .activation(
            &EventKind::Signup,
            &EventKind::Purchase,
            7,
            Period::Week,
            first_day,
            last_day,
            None,
        )
        .unwrap()
    {
        let cohort: Vec<(&String, &i32)> = firsts
            .iter()
            .filter(|(_, d)| common::model::week_start(**d) == row.cohort)
            .collect();
        let activated = cohort
            .iter()
            .filter(|(u, d)| {
                model.events.iter().any(|e| {
                    &e.user == *u && e.kind == "purchase" && {
                        let x = model.day(e.ts_ms);
                        x >= **d && x <= **d + 7
                    }
                })
            })
            .count() as u64;
        assert_eq!((row.size, row.activated), (cohort.len() as u64, activated));
    }

    // daily counters
    for row in m.daily(first_day, last_day).unwrap() {
        let evs: Vec<&Ev> = model
            .events
            .iter()
            .filter(|e| model.day(e.ts_ms) == row.day)
            .collect();
        assert_eq!(row.events, evs.len() as u64);
        let mut by_kind: BTreeMap<String, u64> = BTreeMap::new();
        for e in &evs {
            *by_kind.entry(e.kind.to_owned()).or_default() += 1;
        }
        assert_eq!(row.events_by_kind, by_kind);
        let orders = evs.iter().filter(|e| e.kind == "purchase").count() as u64;
        let gmv: i64 = evs
            .iter()
            .filter(|e| e.kind == "purchase")
            .map(|e| e.amount)
            .sum();
        let refunds = evs.iter().filter(|e| e.kind == "refund").count() as u64;
        let refund_minor: i64 = evs
            .iter()
            .filter(|e| e.kind == "refund")
            .map(|e| e.amount)
            .sum();
        assert_eq!(
            (row.orders, row.gmv_minor, row.refunds, row.refund_minor),
            (orders, gmv, refunds, refund_minor)
        );
        let new_users = model
            .first_days(None)
            .values()
            .filter(|d| **d == row.day)
            .count() as u64;
        assert_eq!(row.new_users, new_users, "new users on {}", row.day);
        let mut session_first: BTreeMap<(String, String), i32> = BTreeMap::new();
        for e in &model.events {
            if let Some(s) = &e.session {
                let d = session_first
                    .entry((e.user.clone(), s.clone()))
                    .or_insert(i32::MAX);
                *d = (*d).min(model.day(e.ts_ms));
            }
        }
        assert_eq!(
            row.sessions,
            session_first.values().filter(|d| **d == row.day).count() as u64
        );
    }

    // habits, store-wide and filtered
    let h = m.habits(None).unwrap();
    let hf = m.habits(Some(&filter)).unwrap();
    let mut hours = [0u64; 24];
    let mut hours_f = [0u64; 24];
    for e in &model.events {
        hours[model.hour(e.ts_ms)] += 1;
        if filter_names.contains(&e.user) {
            hours_f[model.hour(e.ts_ms)] += 1;
        }
    }
    assert_eq!(h.hours, hours);
    assert_eq!(hf.hours, hours_f);
    assert_eq!(h.weekdays.iter().sum::<u64>(), model.events.len() as u64);

    // per-user metrics, stages, RFM at several as-of days
    for as_of in [first_day + 10, first_day + 35, last_day, last_day + 45] {
        let mut stage_counts: BTreeMap<String, u64> = BTreeMap::new();
        for u in model.users() {
            let id = db.user_id(&u).unwrap().unwrap();
            let um = m.user(id, as_of).unwrap().unwrap();
            assert_eq!(
                um.stage.as_deref(),
                model.stage(&u, as_of),
                "stage of {u} as of {as_of}"
            );
            if let Some(s) = model.stage(&u, as_of) {
                *stage_counts.entry(s.to_owned()).or_default() += 1;
            }
            let (pdays, orders, spend, refunds) = model.purchases(&u, as_of);
            assert_eq!(
                (
                    um.purchase_days,
                    um.purchase_count,
                    um.total_spend_minor,
                    um.net_spend_minor
                ),
                (pdays.len() as u64, orders, spend, spend - refunds)
            );
            let clv = um
                .clv
                .map(|c| (c.frequency, c.recency, c.t, c.monetary_value));
            assert_eq!(clv, model.clv(&u, as_of), "clv of {u}");
            assert_eq!(
                (um.sign_in_streak_current, um.sign_in_streak_longest),
                model.streaks(&u, as_of),
                "streaks of {u} as of {as_of}"
            );
        }
        let got: BTreeMap<String, u64> = m
            .stages(as_of, None)
            .unwrap()
            .into_iter()
            .filter(|(_, n)| *n > 0)
            .collect();
        assert_eq!(got, stage_counts);
        let rfm = m.rfm(as_of, None).unwrap();
        let want = model.rfm(as_of);
        let got: BTreeMap<String, (u8, u8, u8, &str)> = rfm
            .users
            .iter()
            .map(|r| {
                (
                    db.user_name(r.user_id).unwrap().unwrap(),
                    (r.r_score, r.f_score, r.m_score, r.segment),
                )
            })
            .collect();
        assert_eq!(got, want, "rfm as of {as_of}");
    }

    // repurchase rate
    let (a, b) = (first_day, first_day + 30);
    let rr = m.repurchase_rate(a, b, None).unwrap();
    let per_user: BTreeMap<String, BTreeSet<i32>> = model
        .events
        .iter()
        .filter(|e| e.kind == "purchase" && (a..=b).contains(&model.day(e.ts_ms)))
        .fold(BTreeMap::new(), |mut acc, e| {
            acc.entry(e.user.clone())
                .or_default()
                .insert(model.day(e.ts_ms));
            acc
        });
    assert_eq!(rr.purchasers, per_user.len() as u64);
    assert_eq!(
        rr.repeat_purchasers,
        per_user.values().filter(|d| d.len() >= 2).count() as u64
    );

    // funnels
    for (steps, window_days) in [
        (vec!["view", "add_to_cart", "purchase"], 3),
        (vec!["view", "view"], 1),
        (vec!["sign_in", "purchase", "refund"], 20),
    ] {
        let kinds: Vec<EventKind> = steps.iter().map(|s| EventKind::from_name(s)).collect();
        let got = m
            .funnel(
                &kinds,
                window_days * DAY_MS,
                first_day + 3,
                first_day + 30,
                None,
            )
            .unwrap();
        let want = model.funnel(&steps, window_days * DAY_MS, first_day + 3, first_day + 30);
        assert_eq!(got, want, "funnel {steps:?}");
    }
    // windows that are not whole days: the day-level bounds must stay exact
    for (steps, window_ms) in [
        (vec!["view", "purchase"], 36 * 3_600_000),
        (vec!["view", "add_to_cart", "purchase"], 7 * DAY_MS - 1),
        (vec!["view", "purchase"], 0),
        (vec!["add_to_cart", "view"], 3_600_000),
        (vec!["view", "view", "purchase"], DAY_MS + 1),
    ] {
        let kinds: Vec<EventKind> = steps.iter().map(|s| EventKind::from_name(s)).collect();
        let got = m
            .funnel(&kinds, window_ms, first_day + 3, first_day + 30, None)
            .unwrap();
        let want = model.funnel(&steps, window_ms, first_day + 3, first_day + 30);
        assert_eq!(got, want, "funnel {steps:?} within {window_ms} ms");
    }

    let report = db.verify().unwrap();
    assert!(report.is_clean(), "{:#?}", report.problems);
}

fn run(
    stream: Vec<Gen>,
    batch_sizes: Vec<usize>,
    offset_min: i32,
    share_inactive: bool,
    filter_users: Vec<u8>,
    erase: Option<(u8, usize)>,
) {
    let dir = tempfile::tempdir().unwrap();
    let non_activity: Vec<&'static str> = if share_inactive {
        vec!["share"]
    } else {
        vec![]
    };
    let db = Db::open(
        dir.path(),
        Options::default()
            .create_if_missing(true)
            .utc_offset_minutes(offset_min)
            .non_activity_kinds(non_activity.iter().copied()),
    )
    .unwrap();
    let mut model = Model {
        offset_min,
        non_activity,
        events: Vec::new(),
    };
    let mut seen_ids: BTreeSet<(String, String)> = BTreeSet::new();
    let mut rest = &stream[..];
    let mut sizes = batch_sizes.iter().cycle();
    let mut batches_done = 0usize;
    while !rest.is_empty() {
        // erasure midway: the user's events go, its later events re-create it
        if let Some((user, after)) = erase {
            if batches_done == after {
                let name = format!("u{user}");
                let existed = db.erase_user(&name).unwrap();
                assert_eq!(existed, model.events.iter().any(|e| e.user == name));
                model.events.retain(|e| e.user != name);
                seen_ids.retain(|(u, _)| *u != name);
            }
        }
        batches_done += 1;
        let n = (*sizes.next().unwrap()).clamp(1, rest.len());
        let (batch, tail) = rest.split_at(n);
        rest = tail;
        let events: Vec<Event> = batch.iter().map(to_event).collect();
        let outcomes = db.record_batch(&events).unwrap();
        for (e, o) in events.iter().zip(outcomes) {
            let fresh = match &e.event_id {
                Some(id) => seen_ids.insert((e.user.clone(), id.clone())),
                None => true,
            };
            assert_eq!(
                fresh,
                matches!(o, RecordOutcome::Recorded { .. }),
                "dedup of {e:?}"
            );
            if fresh {
                model.events.push(Ev {
                    user: e.user.clone(),
                    kind: KINDS
                        .iter()
                        .find(|k| **k == e.kind.as_str())
                        .copied()
                        .unwrap(),
                    ts_ms: e.ts_ms,
                    amount: e.amount_minor.unwrap_or(0),
                    session: e.session_id.clone(),
                });
            }
        }
    }
    let filter: BTreeSet<String> = filter_users.iter().map(|u| format!("u{u}")).collect();
    check(&db, &model, &filter);
    drop(db);
    // and after a reopen, from disk
    let db = Db::open(dir.path(), Options::default().create_if_missing(true)).unwrap();
    check(&db, &model, &filter);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn metrics_match_the_model(
        stream in prop::collection::vec(gen_event(), 1..160),
        batch_sizes in prop::collection::vec(1usize..40, 1..5),
        offset_min in prop::sample::select(vec![0, 480, -330, 840, -840]),
        share_inactive in any::<bool>(),
        filter_users in prop::collection::vec(0u8..8, 0..4),
        erase in prop::option::weighted(0.5, (0u8..8, 0usize..6)),
    ) {
        run(stream, batch_sizes, offset_min, share_inactive, filter_users, erase);
    }
}

/// Arrival order never matters: the same events in timestamp order and in
/// reverse (every event late) give identical answers.
#[test]
fn late_arrivals_equal_in_order_ingestion() {
    let mut stream: Vec<Gen> = (0..120)
        .map(|i| Gen {
            user: (i % 5) as u8,
            kind: (i * 7 % KINDS.len() as i64) as usize,
            minute: (i * 997) % (SPAN_DAYS * 24 * 60),
            amount: i * 13,
            id: None,
            session: Some((i % 4) as u8),
        })
        .collect();
    stream.sort_by_key(|g| g.minute);
    let in_order = stream.clone();
    stream.reverse();
    run(in_order, vec![7], 480, false, vec![1, 2], None);
    run(stream, vec![1, 50], 480, false, vec![1, 2], None);
}
