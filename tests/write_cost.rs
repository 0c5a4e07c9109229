//! SPEC §6: the cost of a write does not grow with the user's history. A
//! user with 700 active days over 8 kinds writes no more bytes for one new
//! event than a user seen for the first time (within 1.25×), and no stored
//! value of such a user grows past the 64 KiB cap.

mod common;
use common::*;
use stickydb::Event;

fn bytes_of(db: &stickydb::Db, e: &Event) -> u64 {
    let before = db.bytes_written();
    db.record(e).unwrap();
    db.bytes_written() - before
}

#[test]
fn a_long_history_does_not_make_writes_bigger() {
    let (_dir, db) = open_temp();
    let kinds = [
        "view",
        "search",
        "favorite",
        "add_to_cart",
        "purchase",
        "sign_in",
        "share",
        "review",
    ];
    let mut batch = Vec::new();
    for d in 0..700i64 {
        for kind in kinds {
            let mut e =
                Event::new("old", kind, T0 + d * DAY + 3_600_000).with_session(format!("s{d}"));
            if kind == "purchase" {
                e = e.with_amount(2_500);
            }
            batch.push(e);
        }
        if batch.len() >= 5_000 {
            db.record_batch(&batch).unwrap();
            batch.clear();
        }
    }
    db.record_batch(&batch).unwrap();
    // A first user of the day is charged for nothing the test is not about.
    db.record(&Event::new("warm", "view", T0 + 800 * DAY))
        .unwrap();

    for (i, kind) in ["view", "purchase", "sign_in"].into_iter().enumerate() {
        let day = 800 + i as i64;
        let make = |user: &str| {
            let mut e = Event::new(user, kind, T0 + day * DAY + 7)
                .with_id(format!("{user}-{i}"))
                .with_session(format!("{user}-s{i}"));
            if kind == "purchase" {
                e = e.with_amount(1_000);
            }
            e
        };
        let fresh = bytes_of(&db, &make(&format!("new{i}")));
        let old = bytes_of(&db, &make("old"));
        assert!(
            old * 4 <= fresh * 5,
            "{kind}: a 700-day user's event wrote {old} bytes, a new user's {fresh}"
        );
    }
    assert_clean(&db);
}
