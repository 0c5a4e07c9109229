//! A user's stage history (`Metrics::stage_history`) equals the stage the
//! naive model recomputes from the event list on every day — under late and
//! out-of-order events and a non-zero UTC offset.

mod common;
use common::model::{Ev, Model, DAY_MS};
use proptest::prelude::*;
use stickydb::{Db, Event, Options};

/// 2024-03-01 00:00 UTC.
const T0: i64 = 1_709_251_200_000;
const KINDS: [&str; 4] = ["view", "purchase", "refund", "sign_in"];

fn events() -> impl Strategy<Value = Vec<(u8, i64, i64, usize, i64)>> {
    // (user, day, minute, kind, amount)
    prop::collection::vec(
        (0u8..3, 0i64..150, 0i64..1440, 0..KINDS.len(), 1i64..5_000),
        1..80,
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]

    #[test]
    fn stage_history_equals_the_stage_recomputed_every_day(
        evs in events(),
        offset_min in prop::sample::select(vec![0i32, 480, -300]),
        batch in 1usize..20,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path(), Options::default().create_if_missing(true).utc_offset_minutes(offset_min)).unwrap();
        let mut model = Model { offset_min, non_activity: vec![], events: Vec::new() };
        // arrival order is the generated order: late and out of order
        let list: Vec<Event> = evs.iter().map(|&(u, day, minute, k, amount)| {
            let kind = KINDS[k];
            let ts = T0 + day * DAY_MS + minute * 60_000;
            model.events.push(Ev {
                user: format!("u{u}"),
                kind,
                ts_ms: ts,
                amount: if kind == "purchase" || kind == "refund" { amount } else { 0 },
                session: None,
            });
            let e = Event::new(format!("u{u}"), kind, ts);
            if kind == "purchase" || kind == "refund" { e.with_amount(amount) } else { e }
        }).collect();
        for chunk in list.chunks(batch) {
            db.record_batch(chunk).unwrap();
        }
        let first = db.local_day(T0) - 3;
        let last = first + 200;
        for u in 0..3u8 {
            let name = format!("u{u}");
            let Some(id) = db.user_id(&name).unwrap() else { continue };
            let runs = db.metrics().stage_history(id, first, last).unwrap();
            // runs are ordered, non-overlapping and maximal
            for w in runs.windows(2) {
                prop_assert!(w[0].to_day < w[1].from_day);
                prop_assert!(w[0].to_day + 1 < w[1].from_day || w[0].stage != w[1].stage);
            }
            for d in first..=last {
                let got = runs
                    .iter()
                    .find(|r| r.from_day <= d && d <= r.to_day)
                    .map(|r| r.stage.as_str());
                prop_assert_eq!(got, model.stage(&name, d), "{} on day {}", name, d);
            }
        }
    }
}
