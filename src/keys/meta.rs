//! Key layouts of the `meta` column family: fixed names for the store's
//! metadata and settings, and the custom-kind registry (`kind:NAME` → id,
//! `kind_id:ID` → name). Every fixed name differs from the two registry
//! prefixes in its first five bytes, so a registry scan never meets one.

/// The on-disk format version.
pub const FORMAT_VERSION: &[u8] = b"format_version";
/// Settings fixed at creation (UTC offset).
pub const SETTINGS: &[u8] = b"settings";
/// Metric settings (non-activity kinds, the stage model).
pub const METRIC_SETTINGS: &[u8] = b"metric_settings";
/// Ledger settings (earning rules, tiers).
pub const LEDGER_SETTINGS: &[u8] = b"ledger_settings";
/// The lowest internal user id the allocator may hand out (raised by erasure).
pub const NEXT_USER_ID_FLOOR: &[u8] = b"next_user_id_floor";

/// Identity settings (which user ids are anonymous).
pub const IDENTITY_SETTINGS: &[u8] = b"identity_settings";

/// Social settings (the attribution window).
pub const SOCIAL_SETTINGS: &[u8] = b"social_settings";
/// The experiment settings (the exposure kind), fixed at creation.
pub const EXPERIMENT_SETTINGS: &[u8] = b"experiment_settings";

/// The store's partition (absent: unpartitioned).
pub const PARTITION: &[u8] = b"partition";

/// The record of the maintenance job in progress, if any (docs/architecture.md, "Jobs").
pub const JOB: &[u8] = b"job";

/// Which event kinds the store accepts (fixed at creation).
pub const KIND_POLICY: &[u8] = b"kind_policy";

/// The feature definitions and tag rules (`features`).
pub const FEATURE_SET: &[u8] = b"feature_set";
/// The declared dimensions (`dims::DimSet`); their values are registered
/// under [`super::dims::VALUE_PREFIX`].
pub const DIM_SET: &[u8] = b"dim_set";
/// The new-member gift pack (`ledger::coupons::GiftPack`).
pub const COUPON_GIFT_PACK: &[u8] = b"coupon_gift_pack";
/// The growth rules and the tiers' basis (`ledger::GrowthSettings`).
pub const GROWTH_SETTINGS: &[u8] = b"growth_settings";

/// Every fixed key, for the registry's tests.
#[cfg(feature = "internals")]
pub const FIXED: [&[u8]; 15] = [
    FORMAT_VERSION,
    SETTINGS,
    METRIC_SETTINGS,
    LEDGER_SETTINGS,
    NEXT_USER_ID_FLOOR,
    IDENTITY_SETTINGS,
    SOCIAL_SETTINGS,
    EXPERIMENT_SETTINGS,
    PARTITION,
    JOB,
    KIND_POLICY,
    FEATURE_SET,
    DIM_SET,
    COUPON_GIFT_PACK,
    GROWTH_SETTINGS,
];

/// Prefix of the merge records: `merge:ID` → what merge `ID` did.
pub const MERGE_PREFIX: &[u8] = b"merge:";
/// Prefix of the alias index: `alias:` ‖ target user (u32 BE) ‖ alias name
/// → the merge id that made the alias. One prefix scan lists a user's
/// aliases.
pub const ALIAS_PREFIX: &[u8] = b"alias:";

/// `merge:ID`: the record of merge `id`.
pub fn merge(id: &str) -> Vec<u8> {
    let mut k = MERGE_PREFIX.to_vec();
    k.extend_from_slice(id.as_bytes());
    k
}

/// `alias:` ‖ `user_id` ‖ `name`: `name` is an alias of `user_id`.
pub fn alias(user_id: u32, name: &str) -> Vec<u8> {
    let mut k = aliases_of(user_id);
    k.extend_from_slice(name.as_bytes());
    k
}

/// The prefix of every alias of `user_id`.
pub fn aliases_of(user_id: u32) -> Vec<u8> {
    let mut k = ALIAS_PREFIX.to_vec();
    k.extend_from_slice(&user_id.to_be_bytes());
    k
}

/// The alias name of an [`alias`] key of `user_id`.
pub fn alias_name_of(user_id: u32, key: &[u8]) -> Option<&[u8]> {
    key.strip_prefix(aliases_of(user_id).as_slice())
}

/// The target user and alias name of any [`alias`] key; `None` for other keys.
pub fn parse_alias(key: &[u8]) -> Option<(u32, &[u8])> {
    let rest = key.strip_prefix(ALIAS_PREFIX)?;
    let (id, name) = rest.split_first_chunk::<4>()?;
    Some((u32::from_be_bytes(*id), name))
}

/// Prefix of the source positions: `source:` ‖ topic ‖ `0x00` ‖ partition
/// (i32 BE) → the next offset of that log partition to record (SPEC §7).
pub const SOURCE_PREFIX: &[u8] = b"source:";

/// The key of the position in `topic`'s `partition`. A topic name holds no
/// NUL byte (Kafka allows `[a-zA-Z0-9._-]`), so keys of two topics never
/// collide.
pub fn source(topic: &str, partition: i32) -> Vec<u8> {
    let mut k = SOURCE_PREFIX.to_vec();
    k.extend_from_slice(topic.as_bytes());
    k.push(0);
    k.extend_from_slice(&partition.to_be_bytes());
    k
}

/// Prefix of the handover marks: `handed_over:` ‖ merge id → `true`: the
/// merge handed `from`'s history to another partition (SPEC §7).
pub const HANDED_OVER_PREFIX: &[u8] = b"handed_over:";

/// `handed_over:ID`: merge `id` handed a history over to another partition.
pub fn handed_over(merge_id: &str) -> Vec<u8> {
    let mut k = HANDED_OVER_PREFIX.to_vec();
    k.extend_from_slice(merge_id.as_bytes());
    k
}

/// Prefix of the moved names: `moved:` ‖ external id → the user of another
/// partition its history was handed over to (SPEC §7).
pub const MOVED_PREFIX: &[u8] = b"moved:";

/// `moved:NAME`: `name` was handed over to another partition.
pub fn moved(name: &str) -> Vec<u8> {
    let mut k = MOVED_PREFIX.to_vec();
    k.extend_from_slice(name.as_bytes());
    k
}

/// Prefix of the registry's name → id entries.
pub const KIND_NAME_PREFIX: &[u8] = b"kind:";
/// Prefix of the registry's id → name entries.
pub const KIND_ID_PREFIX: &[u8] = b"kind_id:";

/// `kind:NAME`: the id of custom kind `name`.
pub fn kind_name(name: &str) -> Vec<u8> {
    let mut k = KIND_NAME_PREFIX.to_vec();
    k.extend_from_slice(name.as_bytes());
    k
}

/// `kind_id:ID`: the name of custom kind `id`.
pub fn kind_id(id: u32) -> Vec<u8> {
    let mut k = KIND_ID_PREFIX.to_vec();
    k.extend_from_slice(&id.to_be_bytes());
    k
}

/// The kind name of a [`kind_name`] key; `None` for other keys.
pub fn kind_name_of(key: &[u8]) -> Option<&[u8]> {
    key.strip_prefix(KIND_NAME_PREFIX)
}

/// Prefix of the coupon templates and their counts: `coupon:` ‖ template
/// id ‖ `0x00` ‖ `t` → the template, ‖ `c` → its counts. A template id
/// holds no NUL byte, so one prefix scan lists every template with its
/// counts, in id order.
pub const COUPON_PREFIX: &[u8] = b"coupon:";

/// The record byte of a coupon template.
pub const COUPON_TEMPLATE: u8 = b't';
/// The record byte of a coupon template's counts.
pub const COUPON_COUNTS: u8 = b'c';

/// `coupon:ID 0x00 what`: template `id`'s record `what`
/// ([`COUPON_TEMPLATE`] or [`COUPON_COUNTS`]).
pub fn coupon(template_id: &str, what: u8) -> Vec<u8> {
    let mut k = COUPON_PREFIX.to_vec();
    k.extend_from_slice(template_id.as_bytes());
    k.push(0);
    k.push(what);
    k
}

/// The template id and record byte of a [`coupon`] key; `None` for other
/// keys.
pub fn parse_coupon(key: &[u8]) -> Option<(&[u8], u8)> {
    let rest = key.strip_prefix(COUPON_PREFIX)?;
    let (&what, head) = rest.split_last()?;
    let id = head.strip_suffix(&[0])?;
    (!id.contains(&0)).then_some((id, what))
}
