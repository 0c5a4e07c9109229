//! Key codec: hand-written, big-endian, order-preserving encodings.
//!
//! Owns every byte layout of every RocksDB key, in one place: the primitive
//! encodings here, then one submodule per column family whose keys have more
//! than one layout — [`attrs`] (the attribute index), [`meta`], [`metrics`] (every counter and user set,
//! whichever module writes it), [`ledger`] (the `ledger` and `ledger_due`
//! column families) and [`activity`]. Per-user keys of the other column
//! families (`profiles`, `tags`, `events`, `event_ids`, `tag_expiry`) are the
//! functions below. Keys are never bincode: the byte order of an encoded key
//! must equal the logical order we scan in, so signed numbers have their sign
//! bit flipped and "newest first" components are stored bit-inverted. Must not
//! touch RocksDB or value encodings.

pub mod activity;
pub mod attrs;
pub mod dims;
pub mod experiments;
pub mod feed;
pub mod ledger;
pub mod meta;
pub mod metrics;
pub mod social;

use crate::error::CorruptionError;

/// Width of an internal user id in a key.
pub const USER_BYTES: usize = 4;

/// Width of an encoded event key: user, descending timestamp, descending sequence.
pub const EVENT_KEY_BYTES: usize = USER_BYTES + 8 + 4;

/// Encodes a signed timestamp so that byte order equals numeric order.
pub fn ts_asc(ts_ms: i64) -> [u8; 8] {
    ((ts_ms as u64) ^ (1 << 63)).to_be_bytes()
}

/// Inverse of [`ts_asc`].
pub fn ts_from_asc(bytes: [u8; 8]) -> i64 {
    (u64::from_be_bytes(bytes) ^ (1 << 63)) as i64
}

/// Encodes a signed timestamp so that byte order is the reverse of numeric order:
/// a forward iterator then meets the newest entry first, which RocksDB serves
/// faster than a reverse scan.
pub fn ts_desc(ts_ms: i64) -> [u8; 8] {
    (!((ts_ms as u64) ^ (1 << 63))).to_be_bytes()
}

/// Inverse of [`ts_desc`].
pub fn ts_from_desc(bytes: [u8; 8]) -> i64 {
    ((!u64::from_be_bytes(bytes)) ^ (1 << 63)) as i64
}

/// A signed local day as an unsigned number in the same order: the sign
/// bit flipped. Keys store it big-endian ([`day_asc`]); per-user day sets
/// store it as a roaring bitmap member, so bitmap order is day order (a
/// −14 h offset puts the epoch on day −1).
pub fn day_bits(day: i32) -> u32 {
    (day as u32) ^ (1 << 31)
}

/// Inverse of [`day_bits`].
pub fn day_from_bits(bits: u32) -> i32 {
    (bits ^ (1 << 31)) as i32
}

/// Encodes a signed local day number so that byte order equals numeric order.
pub fn day_asc(day: i32) -> [u8; 4] {
    day_bits(day).to_be_bytes()
}

/// Inverse of [`day_asc`].
pub fn day_from_asc(bytes: [u8; 4]) -> i32 {
    day_from_bits(u32::from_be_bytes(bytes))
}

/// Encodes an internal user id.
pub fn user(user_id: u32) -> [u8; USER_BYTES] {
    user_id.to_be_bytes()
}

/// Where a paged scan resumes: the first key after `after` (`after ‖ 0`,
/// its immediate successor), or `start` when nothing was read yet. Every
/// job cursor and paged read seeks through it.
pub fn resume_at(start: &[u8], after: Option<&[u8]>) -> Vec<u8> {
    match after {
        Some(k) => {
            let mut next = Vec::with_capacity(k.len() + 1);
            next.extend_from_slice(k);
            next.push(0);
            next
        }
        None => start.to_vec(),
    }
}

/// The first `USER_BYTES` of a per-user key, as the user id.
pub fn user_of(cf: &'static str, key: &[u8]) -> Result<u32, CorruptionError> {
    let head: [u8; USER_BYTES] = key
        .get(..USER_BYTES)
        .and_then(|s| s.try_into().ok())
        .ok_or_else(|| short_key(cf, key, USER_BYTES))?;
    Ok(u32::from_be_bytes(head))
}

/// A key made of a user id followed by a name (profile attributes, tags,
/// event-id index entries). Per-user prefix scans read these in name order.
pub fn user_and_name(user_id: u32, name: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(USER_BYTES + name.len());
    k.extend_from_slice(&user(user_id));
    k.extend_from_slice(name.as_bytes());
    k
}

/// Splits a [`user_and_name`] key.
pub fn split_user_and_name(cf: &'static str, key: &[u8]) -> Result<(u32, String), CorruptionError> {
    let user_id = user_of(cf, key)?;
    let name = std::str::from_utf8(&key[USER_BYTES..]).map_err(|e| CorruptionError {
        cf,
        what: "key",
        key: key.to_vec(),
        reason: format!("name is not UTF-8: {e}"),
    })?;
    Ok((user_id, name.to_owned()))
}

/// The key of one event: `user | ts_desc | seq_desc`, newest first per user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EventKey {
    /// Internal user id.
    pub user_id: u32,
    /// Event time, ms since the Unix epoch.
    pub ts_ms: i64,
    /// Per-user arrival sequence; breaks ties between equal timestamps.
    pub seq: u32,
}

impl EventKey {
    /// Encodes the key.
    pub fn encode(&self) -> [u8; EVENT_KEY_BYTES] {
        let mut k = [0u8; EVENT_KEY_BYTES];
        k[..4].copy_from_slice(&user(self.user_id));
        k[4..12].copy_from_slice(&ts_desc(self.ts_ms));
        k[12..].copy_from_slice(&(!self.seq).to_be_bytes());
        k
    }

    /// Decodes a key produced by [`EventKey::encode`].
    pub fn decode(cf: &'static str, key: &[u8]) -> Result<Self, CorruptionError> {
        let k: &[u8; EVENT_KEY_BYTES] = key
            .try_into()
            .map_err(|_| short_key(cf, key, EVENT_KEY_BYTES))?;
        let mut u = [0u8; 4];
        u.copy_from_slice(&k[..4]);
        let mut t = [0u8; 8];
        t.copy_from_slice(&k[4..12]);
        let mut s = [0u8; 4];
        s.copy_from_slice(&k[12..]);
        Ok(Self {
            user_id: u32::from_be_bytes(u),
            ts_ms: ts_from_desc(t),
            seq: !u32::from_be_bytes(s),
        })
    }
}

/// The key of one tag-expiry entry: `tag_len | tag | expires_asc | user`.
///
/// Tag-first so that "who holds tag T but has expired by `now`" is one bounded
/// range scan; the length prefix keeps one tag from being a prefix of another.
pub fn tag_expiry(tag: &str, expires_at_ms: i64, user_id: u32) -> Vec<u8> {
    let mut k = tag_expiry_prefix(tag);
    k.extend_from_slice(&ts_asc(expires_at_ms));
    k.extend_from_slice(&user(user_id));
    k
}

/// The prefix shared by all expiry entries of one tag.
pub fn tag_expiry_prefix(tag: &str) -> Vec<u8> {
    debug_assert!(
        tag.len() <= u8::MAX as usize,
        "tag names are validated to fit"
    );
    let mut k = Vec::with_capacity(1 + tag.len() + 12);
    k.push(tag.len() as u8);
    k.extend_from_slice(tag.as_bytes());
    k
}

/// Splits a [`tag_expiry`] key into `(tag, expires_at_ms, user_id)`.
pub fn split_tag_expiry(
    cf: &'static str,
    key: &[u8],
) -> Result<(String, i64, u32), CorruptionError> {
    let bad = |reason: &str| CorruptionError {
        cf,
        what: "key",
        key: key.to_vec(),
        reason: reason.to_owned(),
    };
    let len = *key.first().ok_or_else(|| bad("empty key"))? as usize;
    if key.len() != 1 + len + 12 {
        return Err(bad("length does not match its tag length byte"));
    }
    let tag = std::str::from_utf8(&key[1..1 + len]).map_err(|_| bad("tag is not UTF-8"))?;
    let mut t = [0u8; 8];
    t.copy_from_slice(&key[1 + len..1 + len + 8]);
    let mut u = [0u8; 4];
    u.copy_from_slice(&key[1 + len + 8..]);
    Ok((tag.to_owned(), ts_from_asc(t), u32::from_be_bytes(u)))
}

/// The key of one chunk of a tag's holder set (`tag_index` column family):
/// `tag_len ‖ tag ‖ chunk` ([`metrics::chunk_of`]). The length byte keeps
/// tag `vi`'s chunks out of tag `vip`'s range.
pub fn tag_index(tag: &str, user_id: u32) -> Vec<u8> {
    let mut k = tag_expiry_prefix(tag);
    k.extend_from_slice(&metrics::chunk_of(user_id).to_be_bytes());
    k
}

/// The prefix of every chunk of one tag's holder set.
pub fn tag_index_prefix(tag: &str) -> Vec<u8> {
    tag_expiry_prefix(tag)
}

/// Splits a [`tag_index`] key into `(tag, chunk)`.
pub fn split_tag_index(cf: &'static str, key: &[u8]) -> Result<(String, u16), CorruptionError> {
    let bad = |reason: &str| CorruptionError {
        cf,
        what: "key",
        key: key.to_vec(),
        reason: reason.to_owned(),
    };
    let len = *key.first().ok_or_else(|| bad("empty key"))? as usize;
    if key.len() != 1 + len + 2 {
        return Err(bad("length does not match its tag length byte"));
    }
    let tag = std::str::from_utf8(&key[1..1 + len]).map_err(|_| bad("tag is not UTF-8"))?;
    let chunk = u16::from_be_bytes([key[1 + len], key[2 + len]]);
    Ok((tag.to_owned(), chunk))
}

/// Smallest key strictly greater than every key starting with `prefix`, or
/// `None` when the prefix is all `0xff` (then the scan runs to the end).
pub fn prefix_successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut k = prefix.to_vec();
    while let Some(last) = k.pop() {
        if last < u8::MAX {
            k.push(last + 1);
            return Some(k);
        }
    }
    None
}

fn short_key(cf: &'static str, key: &[u8], want: usize) -> CorruptionError {
    CorruptionError {
        cf,
        what: "key",
        key: key.to_vec(),
        reason: format!("expected {want} bytes, found {}", key.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_successor_carries() {
        assert_eq!(prefix_successor(&[1, 2, 3]), Some(vec![1, 2, 4]));
        assert_eq!(prefix_successor(&[1, 0xff]), Some(vec![2]));
        assert_eq!(prefix_successor(&[0xff, 0xff]), None);
    }

    #[test]
    fn a_scan_resumes_right_after_the_last_key() {
        assert_eq!(resume_at(&[7], None), vec![7]);
        let last = [7u8, 1, 2];
        let next = resume_at(&[7], Some(&last));
        assert_eq!(next, vec![7, 1, 2, 0]);
        // the immediate successor: above `last`, below any longer or
        // greater key that follows it
        assert!(next.as_slice() > &last[..]);
        assert!(next.as_slice() <= &[7u8, 1, 2, 0, 0][..]);
        assert!(next.as_slice() < &[7u8, 1, 3][..]);
    }

    #[test]
    fn event_key_rejects_wrong_length() {
        for len in [15, 17] {
            assert_eq!(
                EventKey::decode("events", &vec![0; len]),
                Err(CorruptionError {
                    cf: "events",
                    what: "key",
                    key: vec![0; len],
                    reason: format!("expected 16 bytes, found {len}"),
                })
            );
        }
    }
}
