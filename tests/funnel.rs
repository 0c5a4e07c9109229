//! Funnel edge cases: ties in time, repeated kinds, window edges, the choice
//! of the first step.

mod common;
use common::*;
use stickydb::{Error, Event, EventKind, Problem};

fn kinds(names: &[&str]) -> Vec<EventKind> {
    names.iter().map(|n| EventKind::from_name(n)).collect()
}

#[test]
fn funnel_edges() {
    let (_dir, db) = open_temp();
    let day = db.local_day(T0);
    let h = 3_600_000;
    let events = vec![
        // a: all three steps at the very same instant — "at or after" counts
        Event::new("a", "view", T0),
        Event::new("a", "add_to_cart", T0),
        Event::new("a", "purchase", T0),
        // b: purchase before the cart: stops at step 2
        Event::new("b", "view", T0),
        Event::new("b", "purchase", T0 + h),
        Event::new("b", "add_to_cart", T0 + 2 * h),
        // c: the window ends exactly at the purchase (inclusive)
        Event::new("c", "view", T0),
        Event::new("c", "add_to_cart", T0 + h),
        Event::new("c", "purchase", T0 + 24 * h),
        // d: the first view is too early for the window, a later one works
        Event::new("d", "view", T0),
        Event::new("d", "view", T0 + 30 * h),
        Event::new("d", "add_to_cart", T0 + 31 * h),
        Event::new("d", "purchase", T0 + 32 * h),
        // e: one purchase only, no view
        Event::new("e", "purchase", T0),
    ];
    db.record_batch(&events).unwrap();
    let m = db.metrics();
    let window = 24 * h;
    assert_eq!(
        m.funnel(
            &kinds(&["view", "add_to_cart", "purchase"]),
            window,
            day,
            day + 1,
            None
        )
        .unwrap(),
        vec![4, 4, 3]
    );
    // one millisecond less of window loses c
    assert_eq!(
        m.funnel(
            &kinds(&["view", "add_to_cart", "purchase"]),
            window - 1,
            day,
            day + 1,
            None
        )
        .unwrap(),
        vec![4, 4, 2]
    );
    // the same kind twice needs two distinct events: only d viewed twice
    assert_eq!(
        m.funnel(&kinds(&["view", "view"]), 2 * window, day, day + 1, None)
            .unwrap(),
        vec![4, 1]
    );
    // step 1 must fall in the range: d's second view is on day + 1
    assert_eq!(
        m.funnel(
            &kinds(&["view", "add_to_cart", "purchase"]),
            window,
            day,
            day,
            None
        )
        .unwrap(),
        vec![4, 3, 2]
    );
    // a filter restricts the users
    let only_b: roaring::RoaringBitmap = [db.user_id("b").unwrap().unwrap()].into_iter().collect();
    assert_eq!(
        m.funnel(
            &kinds(&["view", "add_to_cart", "purchase"]),
            window,
            day,
            day + 1,
            Some(&only_b)
        )
        .unwrap(),
        vec![1, 1, 0]
    );
    // bad input is a typed error
    assert!(matches!(
        m.funnel(&[], window, day, day, None),
        Err(Error::Input(ref e)) if e.field == "steps"
            && e.problem == Problem::OutOfRange { value: 0, min: 1, max: 16 }
    ));
    assert!(matches!(
        m.funnel(&kinds(&["view"]), -1, day, day, None),
        Err(Error::Input(ref e)) if e.field == "window_ms"
            && matches!(e.problem, Problem::OutOfRange { value: -1, min: 0, .. })
    ));
    assert!(matches!(
        m.funnel(&kinds(&["view"]), window, day + 1, day, None),
        Err(Error::Input(ref e)) if e.field == "to_day"
            && matches!(e.problem, Problem::OutOfRange { .. })
    ));
}
