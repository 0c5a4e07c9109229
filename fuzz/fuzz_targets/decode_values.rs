//! Every decoder of stored bytes returns an error on garbage; none panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stickydb::codec;
use stickydb::keys::{self, EventKey};
use stickydb::store::merge::{decode_bitmap, decode_counter, BitmapDelta};

fuzz_target!(|data: &[u8]| {
    let _ = codec::decode::<(u32, String, Option<i64>, Vec<(String, u64)>)>(data);
    let _ = codec::decode::<stickydb::Tag>(data);
    let _ = codec::decode::<stickydb::LedgerEntry>(data);
    let _ = codec::decode::<stickydb::Account>(data);
    let _ = codec::decode::<stickydb::ledger::Lot>(data);
    let _ = codec::decode::<stickydb::ledger::Hold>(data);
    let _ = codec::decode::<stickydb::ledger::GrowthSettings>(data);
    let _ = BitmapDelta::decode(data);
    let _ = decode_bitmap(data);
    let _ = decode_counter(data);
    let _ = EventKey::decode("events", data);
    let _ = keys::split_tag_expiry("tag_expiry", data);
    let _ = keys::split_user_and_name("tags", data);
    let _ = stickydb::Segment::parse(&String::from_utf8_lossy(data));
    // social commerce: figures, group heads, every key parser
    let _ = codec::decode::<stickydb::Figures>(data);
    let _ = codec::decode::<stickydb::GroupHead>(data);
    let _ = codec::decode_format::<(u32, i64)>(data, codec::FORMAT_V2);
    let _ = keys::social::parse_touch(data);
    let _ = keys::social::parse_by_share(data);
    let _ = keys::social::parse_join(data);
    let _ = keys::social::parse_group_day(data);
    let _ = keys::social::parse_sharer_day(data);
    let _ = keys::social::parse_purchase_item(data);
    let _ = keys::social::parse_day(data);
    let _ = keys::social::referred_user(data);
    let _ = keys::social::reached_sharer(data);
    let _ = keys::social::owned_share(data);
    // experiments: an assignment's shape, a user's index, the settings, the
    // metric grammar, every key layout
    let _ = codec::decode::<(
        i64,
        u32,
        String,
        Option<String>,
        std::collections::BTreeMap<u32, i64>,
    )>(data);
    let _ = codec::decode::<Vec<String>>(data);
    let _ = codec::decode::<stickydb::experiments::ExperimentSettings>(data);
    let _ = stickydb::experiments::MetricSpec::parse(&String::from_utf8_lossy(data));
    let _ = keys::metrics::MetricKey::parse(data);
    let _ = keys::activity::ActivityKey::parse(data);
    // coupons: a coupon, a template, every key layout
    let _ = codec::decode::<stickydb::Coupon>(data);
    let _ = codec::decode::<stickydb::CouponTemplate>(data);
    let _ = codec::decode::<(stickydb::CouponOp, stickydb::CouponOutcome)>(data);
    let _ = keys::ledger::LedgerKey::parse(data);
    let _ = keys::ledger::parse_due(data);
    let _ = keys::meta::parse_coupon(data);
});
