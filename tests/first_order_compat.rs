//! Accounts written before the first-order holder's position rode in the
//! account (format 1, tests/data/formats/rewards-v1, written by commit
//! `d15f2c3`: a purchase rule and a `reward:first_order` rule, `u1`'s
//! reward taken over by a late older purchase) answer as they did; a
//! purchase reads their holder record, and the account written then keeps
//! its position (format 2); late older purchases still take the reward
//! over; `verify` stays clean (it checks the copy against the holder).

mod common;

use common::cli::{ok, stickydb};
use stickydb::{Db, Event, Options};

const DAY: i64 = 86_400_000;
const T0: i64 = 1_709_251_200_000;

fn balance(db: &Db, u: &str) -> i64 {
    db.account(u).unwrap().map_or(0, |a| a.balance)
}

/// Ledger values of format byte 2 (accounts keeping a holder's position).
fn format_2_accounts(db: &Db) -> usize {
    db.raw_dump()
        .unwrap()
        .iter()
        .filter(|(cf, _, v)| *cf == "ledger" && v.first() == Some(&2))
        .count()
}

#[test]
fn accounts_of_the_first_layout_answer_and_keep_rewarding_exactly() {
    let (dir, src) = common::copy_fixture("rewards-v1");
    let expected = std::fs::read_to_string(src.join("expected.jsonl")).unwrap();
    for (u, want) in ["u0", "u1"].iter().zip(expected.lines()) {
        let got = ok(&stickydb(dir.path(), &["--json", "points", "history", u]));
        let got: String = got.split_whitespace().collect();
        assert_eq!(got, want, "{u}");
    }
    let db = Db::open(dir.path(), Options::default()).unwrap();
    assert_eq!(
        format_2_accounts(&db),
        0,
        "the fixture is of the first layout"
    );
    // a later purchase: the holder record is read, no second reward
    let before = balance(&db, "u0");
    db.record(&Event::new("u0", "purchase", T0 + 5 * DAY).with_amount(700))
        .unwrap();
    assert_eq!(balance(&db, "u0"), before + 7);
    assert_eq!(
        format_2_accounts(&db),
        1,
        "the account now keeps the position"
    );
    // ...which answers the next purchase; a late older one takes over
    db.record(&Event::new("u0", "purchase", T0 + 6 * DAY).with_amount(100))
        .unwrap();
    assert_eq!(balance(&db, "u0"), before + 8);
    db.record(&Event::new("u0", "purchase", T0 - DAY).with_amount(300))
        .unwrap();
    // (the old reward's 500 reversed, the new one's 500 paid, and 3)
    assert_eq!(balance(&db, "u0"), before + 11);
    // a user without an account yet: paid, and its new account keeps it
    db.record(&Event::new("u2", "purchase", T0 + DAY).with_amount(1_000))
        .unwrap();
    assert_eq!(balance(&db, "u2"), 510);
    assert_eq!(format_2_accounts(&db), 2);
    common::assert_clean(&db);
    drop(db);
    let db = Db::open(dir.path(), Options::default()).unwrap();
    db.record(&Event::new("u2", "purchase", T0).with_amount(100))
        .unwrap();
    assert_eq!(
        balance(&db, "u2"),
        511,
        "taken over: 500 reversed, 500 paid, 1"
    );
    common::assert_clean(&db);
}
