//! Keys of the attribute index (`attr_index` column family, format 11).
//!
//! One entry is a chunk of the set of users whose attribute has one typed
//! value: `name_len ‖ name ‖ space ‖ value ‖ chunk` ([`super::metrics::chunk_of`]).
//! The space byte says how the value is encoded, so each type sorts in its
//! own order and a range of one type is one bounded scan; its top bit marks
//! values stored sensitive, which only a caller allowed to see them reads.
//! Every encoding is order-preserving: integers and instants sign-flipped
//! big-endian, floats by the total-order trick, strings escaped so that a
//! value is never a prefix of another's key (`0x00` → `0x00 0xff`, end
//! `0x00 0x01`) while a string prefix stays a key prefix.

use crate::error::CorruptionError;

/// The attribute exists (no value bytes): `has:NAME`.
pub const SPACE_EXISTS: u8 = 0;
/// A boolean: one byte, 0 or 1.
pub const SPACE_BOOL: u8 = 1;
/// An integer: 8 bytes sign-flipped.
pub const SPACE_INT: u8 = 2;
/// A float: 8 bytes in total order.
pub const SPACE_FLOAT: u8 = 3;
/// An instant (ms since the epoch): 8 bytes sign-flipped.
pub const SPACE_TIMESTAMP: u8 = 4;
/// A calendar date (days since 1970-01-01): 4 bytes sign-flipped.
pub const SPACE_DATE: u8 = 5;
/// A calendar date's month and day (2 bytes): birthdays and anniversaries.
pub const SPACE_MONTH_DAY: u8 = 6;
/// Text, escaped and terminated.
pub const SPACE_STR: u8 = 7;
/// The flag on a space byte of a value stored sensitive.
pub const SENSITIVE: u8 = 0x80;

/// The prefix of every entry of attribute `name` in `space`.
pub fn space_prefix(name: &str, space: u8) -> Vec<u8> {
    debug_assert!(name.len() <= u8::MAX as usize, "names are validated to fit");
    let mut k = Vec::with_capacity(2 + name.len() + 10);
    k.push(name.len() as u8);
    k.extend_from_slice(name.as_bytes());
    k.push(space);
    k
}

/// The key of the chunk holding `user_id` of the entry `value_prefix`
/// (a [`space_prefix`] with its value encoding appended).
pub fn with_chunk(value_prefix: &[u8], user_id: u32) -> Vec<u8> {
    let mut k = Vec::with_capacity(value_prefix.len() + 2);
    k.extend_from_slice(value_prefix);
    k.extend_from_slice(&super::metrics::chunk_of(user_id).to_be_bytes());
    k
}

/// An integer's value bytes.
pub fn int(n: i64) -> [u8; 8] {
    super::ts_asc(n)
}

/// A float's value bytes: byte order equals numeric order (−0 before +0).
pub fn float(x: f64) -> [u8; 8] {
    let bits = x.to_bits();
    let ordered = if bits >> 63 == 1 { !bits } else { bits | (1 << 63) };
    ordered.to_be_bytes()
}

/// A calendar date's value bytes (days since 1970-01-01).
pub fn date(day: i32) -> [u8; 4] {
    ((day as u32) ^ (1 << 31)).to_be_bytes()
}

/// A month and day's value bytes.
pub fn month_day(month: u8, day: u8) -> [u8; 2] {
    [month, day]
}

/// A string's escaped bytes without the terminator: a prefix of a value's
/// [`text`] whenever the string is a prefix of the value.
pub fn text_prefix(s: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len() + 2);
    for &b in s.as_bytes() {
        out.push(b);
        if b == 0 {
            out.push(0xff);
        }
    }
    out
}

/// A string's value bytes: escaped and terminated.
pub fn text(s: &str) -> Vec<u8> {
    let mut out = text_prefix(s);
    out.extend_from_slice(&[0, 1]);
    out
}

/// Splits an entry key into `(name, space, value bytes, chunk)`.
pub fn split(cf: &'static str, key: &[u8]) -> Result<(String, u8, Vec<u8>, u16), CorruptionError> {
    let bad = |reason: &str| CorruptionError {
        cf,
        what: "key",
        key: key.to_vec(),
        reason: reason.to_owned(),
    };
    let len = *key.first().ok_or_else(|| bad("empty key"))? as usize;
    if key.len() < 1 + len + 1 + 2 {
        return Err(bad("shorter than its name length byte says"));
    }
    let name = std::str::from_utf8(&key[1..1 + len]).map_err(|_| bad("name is not UTF-8"))?;
    let space = key[1 + len];
    let value = key[2 + len..key.len() - 2].to_vec();
    let chunk = u16::from_be_bytes([key[key.len() - 2], key[key.len() - 1]]);
    Ok((name.to_owned(), space, value, chunk))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings_sort_as_their_values() {
        let ints = [i64::MIN, -5, -1, 0, 1, 18, i64::MAX];
        assert!(ints.windows(2).all(|w| int(w[0]) < int(w[1])));
        let floats = [f64::MIN, -2.5, -0.0, 0.0, 1e-9, 18.5, f64::MAX];
        assert!(floats.windows(2).all(|w| float(w[0]) < float(w[1])));
        let days = [i32::MIN, -700_000, -1, 0, 7_000, i32::MAX];
        assert!(days.windows(2).all(|w| date(w[0]) < date(w[1])));
        let texts = ["", "\u{0}", "\u{0}a", "a", "a\u{0}", "ab", "b"];
        assert!(texts.windows(2).all(|w| text(w[0]) < text(w[1])));
        // a prefix's escaped bytes lead every longer value's, never the
        // terminated value of another string
        assert!(text("Shenzhen").starts_with(&text_prefix("Shen")));
        assert!(!text("Shen").starts_with(&text("She")));
    }

    #[test]
    fn a_key_splits_back() {
        let mut k = space_prefix("city", SPACE_STR | SENSITIVE);
        k.extend_from_slice(&text("Shen\u{0}zhen"));
        let key = with_chunk(&k, 3 << 16 | 9);
        let (name, space, value, chunk) = split("attr_index", &key).unwrap_or_default();
        assert_eq!(name, "city");
        assert_eq!(space, SPACE_STR | SENSITIVE);
        assert_eq!(value, text("Shen\u{0}zhen"));
        assert_eq!(chunk, 3);
        assert!(split("attr_index", &key[..3]).is_err());
    }
}
