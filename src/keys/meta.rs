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

/// Every fixed key, for the registry's tests.
pub const FIXED: [&[u8]; 7] = [
    FORMAT_VERSION,
    SETTINGS,
    METRIC_SETTINGS,
    LEDGER_SETTINGS,
    NEXT_USER_ID_FLOOR,
    IDENTITY_SETTINGS,
    SOCIAL_SETTINGS,
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
