//! Every loyalty rule of issue 32 at once, against one plain model: an
//! earning rule (a point per currency unit of purchases), a first-order
//! reward, a campaign reward, a 3-day sign-in streak, a 7-day birthday
//! reward, and growth value (net spend, 10 per active day) deciding the
//! tiers — over random
//! purchases, refunds, sign-ins and views (late, out of order, duplicated
//! by event id, some naming a campaign), identity merges and erasures. The
//! rules share each event's write and a merge's deferred settlement, so
//! this is where they meet. After every step each user's balance, growth
//! balance and tier equal the model's; `verify` is clean at the end.

mod common;
#[path = "model/loyalty_rules.rs"]
mod rules_model;

use proptest::prelude::*;
use rules_model::{run, setup, Ev, Model, Step, DAY, KINDS, T0, USERS};

fn step() -> impl Strategy<Value = Step> {
    let ev = (
        0..KINDS.len(),
        0i64..30,
        1i64..DAY,
        1i64..30_000,
        prop::bool::weighted(0.2),
        prop::option::of(0u8..4),
    )
        .prop_map(|(kind, day, ms, amount_minor, campaign, id)| Ev {
            kind,
            ts_ms: T0 + day * DAY + ms,
            amount_minor,
            campaign,
            id,
            known: false,
        });
    prop_oneof![
        14 => (0..USERS.len(), ev).prop_map(|(user, ev)| Step::Record { user, ev }),
        1 => (0..USERS.len(), 0..USERS.len()).prop_map(|(from, into)| Step::Merge { from, into }),
        1 => (0..USERS.len()).prop_map(|user| Step::Erase { user }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn every_rule_at_once_equals_the_model(steps in prop::collection::vec(step(), 1..60)) {
        let (_dir, db) = common::open_temp();
        setup(&db);
        let mut model = Model::default();
        run(&db, &mut model, &steps);
        common::assert_clean(&db);
    }
}
