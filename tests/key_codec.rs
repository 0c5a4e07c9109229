//! The key codec preserves order and round-trips (property tests).

use proptest::prelude::*;
use stickydb::keys::{self, EventKey};

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn ts_asc_orders_like_numbers(a: i64, b: i64) {
        prop_assert_eq!(a.cmp(&b), keys::ts_asc(a).cmp(&keys::ts_asc(b)));
        prop_assert_eq!(keys::ts_from_asc(keys::ts_asc(a)), a);
    }

    #[test]
    fn ts_desc_orders_reversed(a: i64, b: i64) {
        prop_assert_eq!(b.cmp(&a), keys::ts_desc(a).cmp(&keys::ts_desc(b)));
        prop_assert_eq!(keys::ts_from_desc(keys::ts_desc(a)), a);
    }

    #[test]
    fn day_asc_orders_like_numbers(a: i32, b: i32) {
        prop_assert_eq!(a.cmp(&b), keys::day_asc(a).cmp(&keys::day_asc(b)));
        prop_assert_eq!(keys::day_from_asc(keys::day_asc(a)), a);
    }

    /// Event keys sort by user ascending, then newest first, then latest
    /// arrival first: exactly the order a timeline is read in.
    #[test]
    fn event_keys_sort_user_then_newest_first(
        a in (any::<u32>(), any::<i64>(), any::<u32>()),
        b in (any::<u32>(), any::<i64>(), any::<u32>()),
    ) {
        let ka = EventKey { user_id: a.0, ts_ms: a.1, seq: a.2 };
        let kb = EventKey { user_id: b.0, ts_ms: b.1, seq: b.2 };
        let logical = a.0.cmp(&b.0).then(b.1.cmp(&a.1)).then(b.2.cmp(&a.2));
        prop_assert_eq!(logical, ka.encode().cmp(&kb.encode()));
        prop_assert_eq!(EventKey::decode("events", &ka.encode()).ok(), Some(ka));
    }

    #[test]
    fn user_and_name_round_trips_and_groups_by_user(u in any::<u32>(), v in any::<u32>(), n in "\\PC{1,40}", m in "\\PC{1,40}") {
        let a = keys::user_and_name(u, &n);
        let b = keys::user_and_name(v, &m);
        prop_assert_eq!(keys::split_user_and_name("t", &a).ok(), Some((u, n.clone())));
        if u != v {
            prop_assert_eq!(u.cmp(&v), a.cmp(&b));
        } else {
            prop_assert_eq!(n.as_bytes().cmp(m.as_bytes()), a.cmp(&b));
        }
    }

    /// Expiry keys group by tag (no tag is a prefix of another's range) and
    /// sort by expiry within a tag.
    #[test]
    fn tag_expiry_keys_group_by_tag_then_time(
        t1 in "[a-z:]{1,12}", t2 in "[a-z:]{1,12}",
        e1 in 0i64..1<<45, e2 in 0i64..1<<45, u1: u32, u2: u32,
    ) {
        let a = keys::tag_expiry(&t1, e1, u1);
        let b = keys::tag_expiry(&t2, e2, u2);
        prop_assert_eq!(keys::split_tag_expiry("x", &a).ok(), Some((t1.clone(), e1, u1)));
        let pa = keys::tag_expiry_prefix(&t1);
        prop_assert_eq!(b.starts_with(&pa), t1 == t2);
        if t1 == t2 {
            prop_assert_eq!(e1.cmp(&e2).then(u1.cmp(&u2)), a.cmp(&b));
        }
    }

    #[test]
    fn malformed_keys_are_errors_not_panics(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
        let _ = EventKey::decode("events", &bytes);
        let _ = keys::split_tag_expiry("tag_expiry", &bytes);
        let _ = keys::split_user_and_name("tags", &bytes);
    }
}
