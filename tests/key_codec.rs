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

// ---- the key registry: every layout of a shared column family round-trips
// through one parser, so no two layouts can produce the same key ----

use stickydb::keys::ledger::{self as lk, LedgerKey};
use stickydb::keys::metrics::{MetricKey, MoneyField};

fn metric_key() -> impl Strategy<Value = MetricKey> {
    let day = any::<i32>();
    let kind = any::<u32>();
    let chunk = any::<u16>();
    prop_oneof![
        (kind, day, chunk).prop_map(|(kind, day, chunk)| MetricKey::DayUsers { kind, day, chunk }),
        (kind, day, chunk).prop_map(|(kind, day, chunk)| MetricKey::FirstUsers {
            kind,
            day,
            chunk
        }),
        chunk.prop_map(|chunk| MetricKey::AllUsers { chunk }),
        ("\\PC{0,40}", chunk).prop_map(|(name, chunk)| MetricKey::TierUsers { name, chunk }),
        (day, kind).prop_map(|(day, kind)| MetricKey::KindDay { day, kind }),
        (day, 0usize..6).prop_map(|(day, f)| MetricKey::Money {
            day,
            field: MoneyField::ALL[f]
        }),
        (any::<u8>(), day).prop_map(|(window_days, day)| MetricKey::Rolling { window_days, day }),
        (any::<u8>(), day)
            .prop_map(|(window_days, block)| MetricKey::RollingBlock { window_days, block }),
        any::<u8>().prop_map(MetricKey::Hour),
        any::<u8>().prop_map(MetricKey::Weekday),
        Just(MetricKey::EventsTotal),
        kind.prop_map(MetricKey::EventsOfKind),
        ("\\PC{1,20}", "\\PC{1,20}", chunk).prop_map(|(experiment, variant, chunk)| {
            MetricKey::VariantUsers {
                experiment,
                variant,
                chunk,
            }
        }),
        ("\\PC{1,20}", "\\PC{1,20}", day, chunk).prop_map(|(experiment, variant, day, chunk)| {
            MetricKey::ExposedOn {
                experiment,
                variant,
                day,
                chunk,
            }
        }),
        ("\\PC{1,20}", chunk)
            .prop_map(|(experiment, chunk)| MetricKey::Contaminated { experiment, chunk }),
        ("\\PC{1,20}", kind, any::<u16>(), chunk).prop_map(|(experiment, kind, bucket, chunk)| {
            MetricKey::Converted {
                experiment,
                kind,
                bucket,
                chunk,
            }
        }),
    ]
}

fn ledger_key() -> impl Strategy<Value = LedgerKey> {
    let u = any::<u32>();
    let n = any::<u32>();
    // Times a caller can give (checked against 0..=9999-12-31 on input).
    let t = 0i64..=253_402_300_799_999;
    prop_oneof![
        u.prop_map(|user_id| LedgerKey::Account { user_id }),
        (u, t.clone(), n).prop_map(|(user_id, at_ms, seq)| LedgerKey::Entry {
            user_id,
            at_ms,
            seq
        }),
        (u, n).prop_map(|(user_id, lot)| LedgerKey::Lot { user_id, lot }),
        (u, proptest::option::of(t.clone()), n).prop_map(|(user_id, expires_at_ms, lot)| {
            LedgerKey::OpenLot {
                user_id,
                expires_at_ms,
                lot,
            }
        }),
        (u, n).prop_map(|(user_id, seq)| LedgerKey::Hold { user_id, seq }),
        (u, "\\PC{1,40}").prop_map(|(user_id, txn_id)| LedgerKey::Txn { user_id, txn_id }),
        (u, any::<i32>()).prop_map(|(user_id, day)| LedgerKey::Growth { user_id, day }),
        (u, any::<i32>()).prop_map(|(user_id, day)| LedgerKey::GrowthValue { user_id, day }),
        (u, any::<u16>(), "\\PC{0,40}").prop_map(|(user_id, reward, campaign)| {
            LedgerKey::FirstReward {
                user_id,
                reward,
                campaign,
            }
        }),
        (u, t, n).prop_map(|(user_id, at_ms, seq)| LedgerKey::Tier {
            user_id,
            at_ms,
            seq
        }),
        (u, n).prop_map(|(user_id, seq)| LedgerKey::Reversed { user_id, seq }),
        (u, n).prop_map(|(user_id, slot)| LedgerKey::Coupon { user_id, slot }),
        u.prop_map(|user_id| LedgerKey::CouponHead { user_id }),
        u.prop_map(|user_id| LedgerKey::Streak { user_id }),
        (u, "\\PC{1,40}").prop_map(|(user_id, coupon)| LedgerKey::CouponId { user_id, coupon }),
        (u, "\\PC{1,40}").prop_map(|(user_id, txn_id)| LedgerKey::CouponTxn { user_id, txn_id }),
        (u, any::<i32>(), any::<u16>()).prop_map(|(user_id, day, rule)| LedgerKey::Cap {
            user_id,
            day,
            rule
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]

    /// Every metrics-cf layout decodes back to itself through the one
    /// parser: were two layouts able to produce the same bytes, one of them
    /// would decode as the other.
    #[test]
    fn metric_keys_round_trip_through_one_parser(k in metric_key()) {
        prop_assert_eq!(MetricKey::parse(&k.encode()), Some(k.clone()));
        // the space byte the merge operator dispatches on matches the shape
        let is_set = matches!(k, MetricKey::DayUsers { .. } | MetricKey::FirstUsers { .. } | MetricKey::AllUsers { .. } | MetricKey::TierUsers { .. }
            | MetricKey::VariantUsers { .. } | MetricKey::ExposedOn { .. } | MetricKey::Contaminated { .. } | MetricKey::Converted { .. });
        prop_assert_eq!(MetricKey::is_user_set(&k.encode()), is_set);
    }

    #[test]
    fn distinct_metric_keys_never_collide(a in metric_key(), b in metric_key()) {
        prop_assert_eq!(a == b, a.encode() == b.encode());
    }

    #[test]
    fn ledger_keys_round_trip_through_one_parser(k in ledger_key()) {
        prop_assert_eq!(LedgerKey::parse(&k.encode()), Some(k.clone()));
    }

    #[test]
    fn distinct_ledger_keys_never_collide(a in ledger_key(), b in ledger_key()) {
        prop_assert_eq!(a == b, a.encode() == b.encode());
    }

    /// Entries sort newest first within a user; open lots soonest expiry
    /// first, undated last.
    #[test]
    fn ledger_families_sort_in_reading_order(u: u32, t1 in 0i64..1<<45, t2 in 0i64..1<<45, s1: u32, s2: u32) {
        let e = |t, s| LedgerKey::Entry { user_id: u, at_ms: t, seq: s }.encode();
        prop_assert_eq!(t2.cmp(&t1).then(s2.cmp(&s1)), e(t1, s1).cmp(&e(t2, s2)));
        let o = |t: Option<i64>, l| lk::open_lot(u, t, l);
        prop_assert!(o(Some(t1), s1) < o(None, s2));
        prop_assert_eq!(t1.cmp(&t2).then(s1.cmp(&s2)), o(Some(t1), s1).cmp(&o(Some(t2), s2)));
    }

    #[test]
    fn due_keys_round_trip(tag in 1u8..=3, at in 0i64..1<<45, u: u32, s: u32) {
        prop_assert_eq!(lk::parse_due(&lk::due(tag, at, u, s)), Some((tag, at, u, s)));
    }

    #[test]
    fn malformed_registry_keys_are_none_not_panics(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
        let _ = MetricKey::parse(&bytes);
        let _ = LedgerKey::parse(&bytes);
        let _ = lk::parse_due(&bytes);
    }

    /// Custom-kind registry keys never meet the fixed meta keys.
    #[test]
    fn meta_registry_keys_avoid_fixed_keys(name in "\\PC{1,64}", id: u32) {
        use stickydb::keys::meta;
        for fixed in meta::FIXED {
            prop_assert_ne!(&meta::kind_name(&name)[..], fixed);
            prop_assert_ne!(&meta::kind_id(id)[..], fixed);
            prop_assert!(!fixed.starts_with(meta::KIND_NAME_PREFIX));
            prop_assert!(!fixed.starts_with(meta::KIND_ID_PREFIX));
        }
        let key = meta::kind_name(&name);
        prop_assert_eq!(meta::kind_name_of(&key), Some(name.as_bytes()));
        // merge records and the alias index: their own prefixes
        let prefixes = [meta::KIND_NAME_PREFIX, meta::KIND_ID_PREFIX, meta::MERGE_PREFIX, meta::ALIAS_PREFIX];
        for (i, a) in prefixes.iter().enumerate() {
            for b in &prefixes[i + 1..] {
                prop_assert!(!a.starts_with(b) && !b.starts_with(a));
            }
            for fixed in meta::FIXED {
                prop_assert!(!fixed.starts_with(a));
            }
        }
        let alias = meta::alias(id, &name);
        prop_assert_eq!(meta::alias_name_of(id, &alias), Some(name.as_bytes()));
        prop_assert_eq!(meta::parse_alias(&alias), Some((id, name.as_bytes())));
        prop_assert!(meta::merge(&name).starts_with(meta::MERGE_PREFIX));
        prop_assert!(!meta::kind_id(id).starts_with(meta::KIND_NAME_PREFIX));
    }
}

use stickydb::keys::activity::ActivityKey;

fn activity_key() -> impl Strategy<Value = ActivityKey> {
    let u = any::<u32>();
    prop_oneof![
        u.prop_map(|user_id| ActivityKey::Head { user_id }),
        (u, any::<i32>()).prop_map(|(user_id, block)| ActivityKey::Days { user_id, block }),
        (u, any::<i32>()).prop_map(|(user_id, day)| ActivityKey::Money { user_id, day }),
        (u, "\\PC{1,40}").prop_map(|(user_id, session_id)| ActivityKey::Session {
            user_id,
            session_id
        }),
        u.prop_map(|user_id| ActivityKey::ExposureIndex { user_id }),
        (u, "\\PC{1,40}").prop_map(|(user_id, experiment)| ActivityKey::Exposure {
            user_id,
            experiment
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]

    #[test]
    fn activity_keys_round_trip_through_one_parser(k in activity_key()) {
        prop_assert_eq!(ActivityKey::parse(&k.encode()), Some(k.clone()));
    }

    #[test]
    fn distinct_activity_keys_never_collide(a in activity_key(), b in activity_key()) {
        prop_assert_eq!(a == b, a.encode() == b.encode());
    }

    /// A family scan meets users in id order, and one user's day masks in
    /// block order.
    #[test]
    fn activity_families_sort_by_user_then_block(u: u32, v: u32, b1: i32, b2: i32) {
        let a = ActivityKey::Days { user_id: u, block: b1 }.encode();
        let c = ActivityKey::Days { user_id: v, block: b2 }.encode();
        prop_assert_eq!(u.cmp(&v).then(b1.cmp(&b2)), a.cmp(&c));
    }

    #[test]
    fn tag_index_keys_round_trip_and_group_by_tag(t1 in "[a-z:]{1,12}", t2 in "[a-z:]{1,12}", u1: u32, u2: u32) {
        let a = keys::tag_index(&t1, u1);
        prop_assert_eq!(keys::split_tag_index("t", &a).ok(), Some((t1.clone(), (u1 >> 16) as u16)));
        prop_assert_eq!(keys::tag_index(&t2, u2).starts_with(&keys::tag_index_prefix(&t1)), t1 == t2);
    }
}
