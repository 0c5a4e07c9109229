//! Profiles and tags (SPEC §1, §5): typed attributes set and unset
//! atomically, tags with source, freshness and expiry, and the tag index.
//!
//! Owns the `profiles`, `tags`, `tag_index`, `tag_expiry` and `attr_index`
//! column families (`index`: the attribute index).
//! The tag index (tag → user bitmap) is updated by merge operands in the same
//! batch as the tag change, so it never disagrees with the tags after a crash.
//! Expiring tags are also kept ordered by expiry so that "holders as of now"
//! and purging never scan every user. Must not touch events.

mod index;
mod update;

pub(crate) use index::{attribute_types, date_attr, AttrKind, Cond, Lookup};

/// The date attribute a birthday is read from (`birthday_within:`, the
/// birthday reward).
pub(crate) const BIRTHDAY_ATTRIBUTE: &str = "birthday";
pub use update::ProfileUpdate;

use crate::store::Reader;
use std::collections::BTreeMap;

use crate::store::Batch;
use roaring::RoaringBitmap;
use serde::{Deserialize, Serialize};

use crate::codec;
use crate::error::{InputError, Result};
use crate::keys;
use crate::store::merge::BitmapDelta;
use crate::store::{decode_value, Cf, Store};
use crate::time;
use crate::users;

/// Longest attribute name, in bytes.
pub const MAX_ATTRIBUTE_NAME_BYTES: usize = 64;
/// Longest string attribute value, in bytes.
pub const MAX_ATTRIBUTE_VALUE_BYTES: usize = 4096;
/// Longest tag name, in bytes (it must fit the one-byte length in expiry keys).
pub const MAX_TAG_BYTES: usize = 128;
/// Most changes one profile update may carry.
pub const MAX_UPDATE_OPS: usize = 1024;
/// Most expired tags one purge call removes; call again for the rest.
pub const MAX_PURGE_PER_CALL: usize = 100_000;

/// A typed profile attribute value.
///
/// ```
/// use stickydb::AttrValue;
/// let birthday = AttrValue::date(1990, 2, 28).expect("a real date");
/// assert_eq!(birthday.to_string(), "1990-02-28");
/// assert_eq!(AttrValue::date(1990, 2, 29), None);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum AttrValue {
    /// Text (≤ 4 KiB).
    Str(String),
    /// A signed integer.
    Int(i64),
    /// A finite float.
    Float(f64),
    /// A boolean.
    Bool(bool),
    /// A moment, ms since the Unix epoch.
    Timestamp(i64),
    /// A calendar date without a time or zone (a birthday), as days since
    /// 1970-01-01; years 1 to 9999. Build one with [`AttrValue::date`].
    Date(i32),
}

/// Earliest accepted date attribute: 0001-01-01, in days since 1970-01-01.
pub const MIN_DATE_DAY: i32 = -719_162;
/// Latest accepted date attribute: 9999-12-31, in days since 1970-01-01.
pub const MAX_DATE_DAY: i32 = 2_932_896;

impl AttrValue {
    /// The calendar date `year-month-day`, or `None` when there is no such
    /// date in years 1 to 9999.
    pub fn date(year: i32, month: u32, day: u32) -> Option<AttrValue> {
        let d = chrono::NaiveDate::from_ymd_opt(year, month, day)?;
        let days = time::date_to_day(d);
        (MIN_DATE_DAY..=MAX_DATE_DAY)
            .contains(&days)
            .then_some(AttrValue::Date(days))
    }
}

impl From<&str> for AttrValue {
    fn from(s: &str) -> Self {
        AttrValue::Str(s.to_owned())
    }
}
impl From<String> for AttrValue {
    fn from(s: String) -> Self {
        AttrValue::Str(s)
    }
}
impl From<i64> for AttrValue {
    fn from(n: i64) -> Self {
        AttrValue::Int(n)
    }
}
impl From<f64> for AttrValue {
    fn from(f: f64) -> Self {
        AttrValue::Float(f)
    }
}
impl From<bool> for AttrValue {
    fn from(b: bool) -> Self {
        AttrValue::Bool(b)
    }
}

/// How an `attr:` atom compares (`attr:age>=18`, `attr:city^=Shen`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AttrOp {
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `^=`: a text value starts with the literal.
    Prefix,
}

impl AttrOp {
    /// The operator as written.
    pub fn as_str(self) -> &'static str {
        match self {
            AttrOp::Lt => "<",
            AttrOp::Le => "<=",
            AttrOp::Gt => ">",
            AttrOp::Ge => ">=",
            AttrOp::Prefix => "^=",
        }
    }
}

/// Who assigned a tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TagSource {
    /// An operator, by hand.
    Manual,
    /// A rule over the user's data.
    Rule,
    /// A model's prediction.
    Model,
}

/// A tag as held by one user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tag {
    /// Who assigned it.
    pub source: TagSource,
    /// When it was assigned or last confirmed (freshness), ms since epoch.
    pub updated_at_ms: i64,
    /// When it stops holding, if ever; at and after this moment it is expired.
    pub expires_at_ms: Option<i64>,
}

impl Tag {
    /// Whether the tag still holds at `now_ms`.
    pub fn is_live(&self, now_ms: i64) -> bool {
        self.expires_at_ms.is_none_or(|e| now_ms < e)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct StoredAttr {
    value: AttrValue,
    sensitive: bool,
}

/// Whether sensitive attributes are returned (SPEC §5: only on explicit ask).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Sensitive {
    /// Leave sensitive attributes out (the default).
    #[default]
    Exclude,
    /// Return them too.
    Include,
}

/// One user's profile.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Profile {
    /// Attributes by name.
    pub attributes: BTreeMap<String, AttrValue>,
    /// Names of sensitive attributes that were left out of `attributes`.
    pub withheld: Vec<String>,
    /// Tags by name, expired ones included (see [`Tag::is_live`]).
    pub tags: BTreeMap<String, Tag>,
}

/// Puts `update`'s attribute and tag changes for `user_id` into `batch`:
/// tag-index deltas only on first assignment or removal, expiry entries kept
/// exact. Reads the user's old tags; the caller holds the user's lock.
pub(crate) fn apply_update(
    store: &Store,
    batch: &mut Batch,
    user_id: u32,
    update: &ProfileUpdate,
) -> Result<()> {
    let mut old = old_attributes(store, user_id, update)?;
    for (name, value, sensitive) in &update.set {
        let stored = StoredAttr {
            value: value.clone(),
            sensitive: *sensitive,
        };
        let key = keys::user_and_name(user_id, name);
        index::change(
            batch,
            user_id,
            name,
            old.remove(name.as_str()),
            Some(&stored),
        );
        batch.put(Cf::Profiles, key, codec::encode(&stored)?);
    }
    for name in &update.unset {
        if let Some(old) = old.remove(name.as_str()) {
            index::change(batch, user_id, name, Some(old), None);
            batch.delete(Cf::Profiles, keys::user_and_name(user_id, name));
        }
    }
    for (name, tag) in &update.tags {
        let key = keys::user_and_name(user_id, name);
        let old: Option<Tag> = store.get(Cf::Tags, &key)?;
        match old {
            None => batch.merge(
                Cf::TagIndex,
                keys::tag_index(name, user_id),
                BitmapDelta::add(user_id).encode(),
            ),
            Some(Tag {
                expires_at_ms: Some(e),
                ..
            }) => batch.delete(Cf::TagExpiry, keys::tag_expiry(name, e, user_id)),
            Some(_) => {}
        }
        if let Some(e) = tag.expires_at_ms {
            batch.put(Cf::TagExpiry, keys::tag_expiry(name, e, user_id), []);
        }
        batch.put(Cf::Tags, key, codec::encode(tag)?);
    }
    for name in &update.untags {
        let key = keys::user_and_name(user_id, name);
        let old: Option<Tag> = store.get(Cf::Tags, &key)?;
        if let Some(old) = old {
            remove_tag(batch, user_id, name, &old)?;
        }
    }
    Ok(())
}

/// The stored values of the attributes `update` sets or unsets, by name,
/// read together (one batched multi-get: the index change of each needs
/// its old value).
fn old_attributes<'u>(
    store: &Store,
    user_id: u32,
    update: &'u ProfileUpdate,
) -> Result<std::collections::HashMap<&'u str, StoredAttr>> {
    let mut names: Vec<&str> = update.set.iter().map(|(n, _, _)| n.as_str()).collect();
    names.extend(update.unset.iter().map(String::as_str));
    let mut keyed: Vec<(Vec<u8>, &str)> = names
        .into_iter()
        .map(|n| (keys::user_and_name(user_id, n), n))
        .collect();
    keyed.sort_unstable();
    let keys: Vec<Vec<u8>> = keyed.iter().map(|(k, _)| k.clone()).collect();
    let mut out = std::collections::HashMap::with_capacity(keyed.len());
    for ((key, name), value) in keyed.iter().zip(store.get_raw_sorted(Cf::Profiles, &keys)?) {
        if let Some(bytes) = value {
            out.insert(*name, decode_value(Cf::Profiles, key, &bytes)?);
        }
    }
    Ok(out)
}

/// Puts the removal of `user_id`'s tag `tag` into `batch` if it still
/// expires at `expires_at_ms` (it may have been refreshed since the expiry
/// index was read); returns whether it did. The caller holds the user's lock.
pub(crate) fn remove_expired_tag(
    store: &Store,
    batch: &mut Batch,
    user_id: u32,
    tag: &str,
    expires_at_ms: i64,
) -> Result<bool> {
    let key = keys::user_and_name(user_id, tag);
    let current: Option<Tag> = store.get(Cf::Tags, &key)?;
    match current {
        Some(t) if t.expires_at_ms == Some(expires_at_ms) => {
            remove_tag(batch, user_id, tag, &t)?;
            Ok(true)
        }
        _ => Ok(false),
    }
}

/// Deletes every attribute and tag of `user_id` (erasure, SPEC §5), in `batch`.
/// The caller holds the user's stripe lock.
pub(crate) fn erase(store: &Store, batch: &mut Batch, user_id: u32) -> Result<()> {
    let prefix = keys::user(user_id);
    for item in store.prefix(Cf::Profiles, &prefix)? {
        let (k, v) = item?;
        let (_, name) = keys::split_user_and_name(Cf::Profiles.name(), &k)?;
        let old: StoredAttr = decode_value(Cf::Profiles, &k, &v)?;
        index::change(batch, user_id, &name, Some(old), None);
        batch.delete(Cf::Profiles, k);
    }
    for item in store.prefix(Cf::Tags, &prefix)? {
        let (k, v) = item?;
        let (_, name) = keys::split_user_and_name(Cf::Tags.name(), &k)?;
        let tag: Tag = decode_value(Cf::Tags, &k, &v)?;
        remove_tag(batch, user_id, &name, &tag)?;
    }
    Ok(())
}

fn remove_tag(batch: &mut Batch, user_id: u32, name: &str, old: &Tag) -> Result<()> {
    batch.delete(Cf::Tags, keys::user_and_name(user_id, name));
    if let Some(e) = old.expires_at_ms {
        batch.delete(Cf::TagExpiry, keys::tag_expiry(name, e, user_id));
    }
    batch.merge(
        Cf::TagIndex,
        keys::tag_index(name, user_id),
        BitmapDelta::remove(user_id).encode(),
    );
    Ok(())
}

impl std::fmt::Display for AttrValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AttrValue::Str(s) => f.write_str(s),
            AttrValue::Int(n) | AttrValue::Timestamp(n) => write!(f, "{n}"),
            AttrValue::Float(x) => write!(f, "{x}"),
            AttrValue::Bool(b) => write!(f, "{b}"),
            AttrValue::Date(d) => f.write_str(&time::format_day(*d)),
        }
    }
}

/// Users whose attribute `name` meets `cond`, from the attribute index.
pub(crate) fn users_with_attr(
    reader: &impl Reader,
    name: &str,
    cond: Cond<'_>,
    how: Lookup,
) -> Result<RoaringBitmap> {
    users::check_name(name, MAX_ATTRIBUTE_NAME_BYTES)
        .map_err(|p| InputError::new("attribute", p))?;
    index::users(reader, name, cond, how)
}

/// Adds the attribute-index entries of `users`' stored attributes to
/// `batch` (a migration step's page; adding is idempotent).
pub(crate) fn index_users(store: &Store, users: &[u32], batch: &mut Batch) -> Result<()> {
    for &user_id in users {
        for item in store.prefix(Cf::Profiles, &keys::user(user_id))? {
            let (k, v) = item?;
            let (_, name) = keys::split_user_and_name(Cf::Profiles.name(), &k)?;
            let a: StoredAttr = decode_value(Cf::Profiles, &k, &v)?;
            index::change(batch, user_id, &name, None, Some(&a));
        }
    }
    Ok(())
}

/// The attribute index as the profiles say it should be: every entry key
/// with its users (for `verify`).
pub(crate) fn derive_attr_index(store: &Store) -> Result<BTreeMap<Vec<u8>, RoaringBitmap>> {
    let mut out: BTreeMap<Vec<u8>, RoaringBitmap> = BTreeMap::new();
    for item in store.range(Cf::Profiles, &[], None)? {
        let (k, v) = item?;
        let (user_id, name) = keys::split_user_and_name(Cf::Profiles.name(), &k)?;
        let a: StoredAttr = decode_value(Cf::Profiles, &k, &v)?;
        for key in index::keys_of(user_id, &name, &a) {
            out.entry(key).or_default().insert(user_id);
        }
    }
    Ok(out)
}

/// `user_id`'s attributes (sensitive ones only when `include`), through
/// a cursor over the profiles (a page of users in ascending order reads
/// through one).
pub(crate) fn attributes_at(
    profiles: &mut crate::store::Seeker<'_>,
    user_id: u32,
    include: bool,
) -> Result<BTreeMap<String, AttrValue>> {
    let mut out = BTreeMap::new();
    profiles.each_with_prefix(&keys::user(user_id), |k, v| {
        let (_, name) = keys::split_user_and_name(Cf::Profiles.name(), k)?;
        let a: StoredAttr = decode_value(Cf::Profiles, k, v)?;
        if include || !a.sensitive {
            out.insert(name, a.value);
        }
        Ok(())
    })?;
    Ok(out)
}

/// The names of `user_id`'s tags live at `now_ms`, sorted, through a
/// cursor over the tags.
pub(crate) fn live_tags_at(
    tags: &mut crate::store::Seeker<'_>,
    user_id: u32,
    now_ms: i64,
) -> Result<Vec<String>> {
    let mut out = Vec::new();
    tags.each_with_prefix(&keys::user(user_id), |k, v| {
        let (_, name) = keys::split_user_and_name(Cf::Tags.name(), k)?;
        let tag: Tag = decode_value(Cf::Tags, k, v)?;
        if tag.is_live(now_ms) {
            out.push(name);
        }
        Ok(())
    })?;
    Ok(out)
}

/// Checks that a stored attribute value decodes (for `verify`).
pub(crate) fn check_attr_bytes(key: &[u8], value: &[u8]) -> Result<()> {
    decode_value::<StoredAttr>(Cf::Profiles, key, value).map(|_| ())
}

/// A user's profile (`None` when the user does not exist).
pub(crate) fn profile(
    store: &impl Reader,
    user: &str,
    sensitive: Sensitive,
) -> Result<Option<Profile>> {
    let Some(user_id) = users::id_of(store, user)? else {
        return Ok(None);
    };
    let prefix = keys::user(user_id);
    let mut p = Profile::default();
    for item in store.read_prefix(Cf::Profiles, &prefix)? {
        let (k, v) = item?;
        let (_, name) = keys::split_user_and_name(Cf::Profiles.name(), &k)?;
        let a: StoredAttr = decode_value(Cf::Profiles, &k, &v)?;
        if a.sensitive && sensitive == Sensitive::Exclude {
            p.withheld.push(name);
        } else {
            p.attributes.insert(name, a.value);
        }
    }
    for item in store.read_prefix(Cf::Tags, &prefix)? {
        let (k, v) = item?;
        let (_, name) = keys::split_user_and_name(Cf::Tags.name(), &k)?;
        p.tags.insert(name, decode_value(Cf::Tags, &k, &v)?);
    }
    Ok(Some(p))
}

/// A user's stored attributes and tags, by name.
type Stored = (BTreeMap<String, StoredAttr>, BTreeMap<String, Tag>);

fn stored(store: &Store, user_id: u32) -> Result<Stored> {
    let prefix = keys::user(user_id);
    let mut attrs = BTreeMap::new();
    for item in store.prefix(Cf::Profiles, &prefix)? {
        let (k, v) = item?;
        let (_, name) = keys::split_user_and_name(Cf::Profiles.name(), &k)?;
        attrs.insert(name, decode_value(Cf::Profiles, &k, &v)?);
    }
    let mut tags = BTreeMap::new();
    for item in store.prefix(Cf::Tags, &prefix)? {
        let (k, v) = item?;
        let (_, name) = keys::split_user_and_name(Cf::Tags.name(), &k)?;
        tags.insert(name, decode_value(Cf::Tags, &k, &v)?);
    }
    Ok((attrs, tags))
}

/// The update that folds `from_id`'s profile into `into_id`'s (identity
/// merge, docs/identity.md). Attributes carry no update time, so where both
/// have one `into`'s value stays (it is the identity that goes on) and
/// `from`'s fills only what `into` lacks; an attribute sensitive on either
/// side is sensitive after. Tags are united; where both have a tag, the one
/// updated later wins (its source, time and expiry).
pub(crate) fn merge_update(store: &Store, from_id: u32, into_id: u32) -> Result<ProfileUpdate> {
    let (from_attrs, from_tags) = stored(store, from_id)?;
    let (into_attrs, into_tags) = stored(store, into_id)?;
    let mut update = ProfileUpdate::new();
    for (name, a) in from_attrs {
        match into_attrs.get(&name) {
            None => update.set.push((name, a.value, a.sensitive)),
            Some(kept) if a.sensitive && !kept.sensitive => {
                update.set.push((name, kept.value.clone(), true))
            }
            Some(_) => {}
        }
    }
    for (name, tag) in from_tags {
        let newer = into_tags
            .get(&name)
            .is_none_or(|kept| tag.updated_at_ms > kept.updated_at_ms);
        if newer {
            update.tags.push((name, tag));
        }
    }
    Ok(update)
}

/// Re-derives the tag index from the tags: deletes it whole and writes each
/// tag's chunks anew (migration). Not atomic; re-running starts over.
pub(crate) fn rebuild_tag_index(store: &Store) -> Result<()> {
    store.delete_prefix(Cf::TagIndex, &[], users::REBUILD_BATCH_KEYS)?;
    let mut chunks: BTreeMap<Vec<u8>, RoaringBitmap> = BTreeMap::new();
    for item in store.range(Cf::Tags, &[], None)? {
        let (k, _) = item?;
        let (user_id, name) = keys::split_user_and_name(Cf::Tags.name(), &k)?;
        chunks
            .entry(keys::tag_index(&name, user_id))
            .or_default()
            .insert(user_id);
    }
    users::write_chunks(store, Cf::TagIndex, chunks)
}

/// Every tag some user holds or held (an emptied tag may linger with an
/// empty set until compaction).
pub(crate) fn tag_names(store: &Store) -> Result<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for item in store.range(Cf::TagIndex, &[], None)? {
        let (k, _) = item?;
        let (name, _) = keys::split_tag_index(Cf::TagIndex.name(), &k)?;
        // chunks of one tag are adjacent
        if out.last() != Some(&name) {
            out.push(name);
        }
    }
    Ok(out)
}

/// Users holding `tag` per the index, expired or not.
pub(crate) fn tag_index(store: &impl Reader, tag: &str) -> Result<RoaringBitmap> {
    store.read_set(Cf::TagIndex, &keys::tag_index_prefix(tag))
}

/// `(user, expires_at_ms)` of holders of `tag` whose tag expired by `now_ms`.
pub(crate) fn expired_holders(
    store: &impl Reader,
    tag: &str,
    now_ms: i64,
) -> Result<Vec<(u32, i64)>> {
    let prefix = keys::tag_expiry_prefix(tag);
    let mut out = Vec::new();
    for item in store.read_prefix(Cf::TagExpiry, &prefix)? {
        let (k, _) = item?;
        let (_, expires_at_ms, user_id) = keys::split_tag_expiry(Cf::TagExpiry.name(), &k)?;
        if expires_at_ms > now_ms {
            break;
        }
        out.push((user_id, expires_at_ms));
    }
    Ok(out)
}

/// Users holding `tag` at `now_ms` (expired holders excluded), or every
/// holder in the index when `now_ms` is `None`.
pub(crate) fn users_with_tag(
    store: &impl Reader,
    tag: &str,
    now_ms: Option<i64>,
) -> Result<RoaringBitmap> {
    // The tag-index key holds the tag's length in one byte: a query names
    // its tag under the same rule as a write, so no key is ever built from
    // an unchecked name.
    users::check_name(tag, MAX_TAG_BYTES).map_err(|p| InputError::new("tag", p))?;
    if let Some(now) = now_ms {
        time::check_ts(now).map_err(|p| InputError::new("now_ms", p))?;
    }
    let mut set = tag_index(store, tag)?;
    if let Some(now) = now_ms {
        for (user_id, _) in expired_holders(store, tag, now)? {
            set.remove(user_id);
        }
    }
    Ok(set)
}
