//! Every issue-32 loyalty rule at once (an earning rule, first-order and
//! campaign rewards, a sign-in streak, growth value deciding tiers) against
//! the plain model of `tests/model/loyalty_rules.rs`, shared with
//! `tests/loyalty_rules_model.rs`: purchases, refunds, sign-ins and views
//! (late, out of order, duplicated by event id), identity merges and
//! erasures; after every operation each user's balance, growth and tier
//! equal the model's, and `verify` is clean at the end.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use stickydb::{Db, Options};

#[path = "../../tests/model/loyalty_rules.rs"]
mod model;
use model::{Ev, Model, Step, DAY, KINDS, T0, USERS};

#[derive(Debug, Arbitrary)]
enum Op {
    Record {
        user: u8,
        kind: u8,
        day: u8,
        ms: u32,
        amount: u16,
        campaign: bool,
        id: Option<u8>,
    },
    Merge {
        from: u8,
        into: u8,
    },
    Erase {
        user: u8,
    },
}

fn step(op: Op) -> Step {
    let users = USERS.len();
    match op {
        Op::Record {
            user,
            kind,
            day,
            ms,
            amount,
            campaign,
            id,
        } => Step::Record {
            user: usize::from(user) % users,
            ev: Ev {
                kind: usize::from(kind) % KINDS.len(),
                ts_ms: T0 + i64::from(day % 30) * DAY + 1 + i64::from(ms) % (DAY - 1),
                amount_minor: 1 + i64::from(amount),
                // (a campaign on a few events only, as in the property test)
                campaign: campaign && kind & 0x30 == 0,
                id: id.map(|i| i % 4),
                known: false,
            },
        },
        Op::Merge { from, into } => Step::Merge {
            from: usize::from(from) % users,
            into: usize::from(into) % users,
        },
        Op::Erase { user } => Step::Erase {
            user: usize::from(user) % users,
        },
    }
}

fuzz_target!(|ops: Vec<Op>| {
    let Ok(dir) = tempfile::tempdir() else { return };
    let Ok(db) = Db::open(dir.path(), Options::default().create_if_missing(true)) else {
        return;
    };
    model::setup(&db);
    let steps: Vec<Step> = ops.into_iter().take(120).map(step).collect();
    let mut m = Model::default();
    model::run(&db, &mut m, &steps);
    assert!(db.verify().expect("verify").is_clean());
});
