//! Value codec: serde + bincode behind one door, with a format byte in front.
//!
//! Owns the byte layout of every stored value. Every value starts with a
//! format-version byte so that a later release can read old values and refuse
//! unknown ones; decoding is bounded by a size limit so corrupted length
//! fields cannot make us allocate gigabytes. Must not touch RocksDB or keys.

use bincode::Options as _;
use serde::{de::DeserializeOwned, Serialize};

use crate::error::Error;

/// Format byte of every value written by this release.
pub const FORMAT_V1: u8 = 1;

/// Format byte of a record kind's second layout (today only events with
/// social fields: the format-1 fields, then the social ones).
pub const FORMAT_V2: u8 = 2;

/// Format byte a merge operator writes when its inputs did not decode.
///
/// A merge operator must never fail (RocksDB would stop accepting writes), so it
/// records the damage in the value instead and readers report it as corruption.
pub const POISONED: u8 = 0xff;

/// Largest value a write may store, in bytes (SPEC §6: no stored value over
/// 64 KiB). Writes over it fail with [`Error::ValueTooLarge`] and write
/// nothing; the store checks every value of a batch against it at commit.
pub const MAX_STORED_VALUE_BYTES: u64 = 64 << 10;

/// Decode limit: no value is read if it claims to be larger. Above the
/// write cap because stores written by older formats (before the cap) may
/// hold values up to this size, and a migration must read them.
pub const MAX_VALUE_BYTES: u64 = 16 << 20;

/// The one bincode configuration of stored values (varint, little-endian,
/// size-limited); whole-value reads also reject trailing bytes.
fn base_options(limit_bytes: u64) -> impl bincode::Options {
    bincode::DefaultOptions::new()
        .with_limit(limit_bytes)
        .with_little_endian()
        .with_varint_encoding()
}

fn options(limit_bytes: u64) -> impl bincode::Options {
    base_options(limit_bytes).reject_trailing_bytes()
}

/// Why a value did not decode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// The value is empty (not even a format byte).
    Empty,
    /// The format byte is one this build does not know.
    UnknownFormat(u8),
    /// A merge operator met undecodable input and poisoned the value.
    Poisoned,
    /// The body did not decode.
    Body(String),
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecodeError::Empty => write!(f, "empty value"),
            DecodeError::UnknownFormat(b) => write!(f, "unknown format byte {b:#04x}"),
            DecodeError::Poisoned => write!(f, "a merge operator met undecodable input"),
            DecodeError::Body(e) => write!(f, "body does not decode: {e}"),
        }
    }
}

/// Encodes `value` as `FORMAT_V1 | bincode(value)`.
///
/// Fails with [`Error::ValueTooLarge`] when the encoding would exceed
/// [`MAX_STORED_VALUE_BYTES`] (bincode stops at the limit, so an oversized
/// value is never built in full). The caller's write then fails whole.
pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, Error> {
    encode_as(FORMAT_V1, value)
}

/// Encodes `value` behind format byte `format`: for a record kind whose
/// later layout gained fields (events with social fields are byte
/// [`FORMAT_V2`]); readers pick the layout by the byte
/// ([`decode_format`]).
pub fn encode_as<T: Serialize>(format: u8, value: &T) -> Result<Vec<u8>, Error> {
    let mut out = vec![format];
    // The limit counts the body; the format byte is one more.
    let body_limit = MAX_STORED_VALUE_BYTES - 1;
    match options(body_limit).serialize_into(&mut out, value) {
        Ok(()) => Ok(out),
        Err(_) => Err(Error::ValueTooLarge {
            what: std::any::type_name::<T>().to_owned(),
            bytes: options(u64::MAX).serialized_size(value).unwrap_or(u64::MAX) + 1,
            max: MAX_STORED_VALUE_BYTES,
        }),
    }
}

/// Decodes a value written by [`encode`], refusing bodies over `limit_bytes`.
pub fn decode_limited<T: DeserializeOwned>(
    bytes: &[u8],
    limit_bytes: u64,
) -> Result<T, DecodeError> {
    let (&format, body) = bytes.split_first().ok_or(DecodeError::Empty)?;
    match format {
        FORMAT_V1 => options(limit_bytes)
            .deserialize(body)
            .map_err(|e| DecodeError::Body(e.to_string())),
        POISONED => Err(DecodeError::Poisoned),
        other => Err(DecodeError::UnknownFormat(other)),
    }
}

/// Decodes the leading fields of a value written by [`encode`]: `T` must be a
/// struct whose fields are the first fields of the stored type, in order.
/// Lets a scan read a small head of a large value without decoding the rest.
#[cfg(feature = "internals")]
pub fn decode_prefix<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, DecodeError> {
    let (&format, body) = bytes.split_first().ok_or(DecodeError::Empty)?;
    match format {
        FORMAT_V1 => base_options(MAX_VALUE_BYTES)
            .allow_trailing_bytes()
            .deserialize(body)
            .map_err(|e| DecodeError::Body(e.to_string())),
        POISONED => Err(DecodeError::Poisoned),
        other => Err(DecodeError::UnknownFormat(other)),
    }
}

/// Decodes a value written by [`encode_as`] with `format`, under the default
/// size limit.
pub fn decode_format<T: DeserializeOwned>(bytes: &[u8], format: u8) -> Result<T, DecodeError> {
    let (&found, body) = bytes.split_first().ok_or(DecodeError::Empty)?;
    match found {
        f if f == format => options(MAX_VALUE_BYTES)
            .deserialize(body)
            .map_err(|e| DecodeError::Body(e.to_string())),
        POISONED => Err(DecodeError::Poisoned),
        other => Err(DecodeError::UnknownFormat(other)),
    }
}

/// Decodes a value written by [`encode`] with the default limit.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, DecodeError> {
    decode_limited(bytes, MAX_VALUE_BYTES)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_format_byte() {
        let v = (42u32, String::from("vip"), Some(-7i64));
        let bytes = encode(&v).unwrap_or_default();
        assert_eq!(bytes[0], FORMAT_V1);
        assert_eq!(decode::<(u32, String, Option<i64>)>(&bytes), Ok(v));
    }

    #[test]
    fn rejects_unknown_format_and_garbage() {
        assert_eq!(decode::<u32>(&[]), Err(DecodeError::Empty));
        assert_eq!(decode::<u32>(&[9, 1]), Err(DecodeError::UnknownFormat(9)));
        assert_eq!(decode::<u32>(&[POISONED]), Err(DecodeError::Poisoned));
        assert!(matches!(
            decode::<u32>(&[FORMAT_V1]),
            Err(DecodeError::Body(_))
        ));
        // trailing bytes are corruption, not ignorable padding
        assert!(matches!(
            decode::<u8>(&[FORMAT_V1, 1, 2]),
            Err(DecodeError::Body(_))
        ));
    }

    #[test]
    fn oversized_values_are_a_typed_error() {
        let big = vec![7u8; MAX_STORED_VALUE_BYTES as usize];
        match encode(&big) {
            Err(Error::ValueTooLarge { bytes, max, .. }) => {
                assert!(bytes > max);
                assert_eq!(max, MAX_STORED_VALUE_BYTES);
            }
            other => panic!("expected ValueTooLarge, got {other:?}"),
        }
        let fits = vec![7u8; MAX_STORED_VALUE_BYTES as usize - 16];
        assert!(encode(&fits).is_ok());
    }

    #[test]
    fn huge_length_prefix_does_not_allocate() {
        // a string claiming u64::MAX bytes must fail on the limit, not on OOM
        let mut bytes = vec![FORMAT_V1, 0xff];
        bytes.extend_from_slice(&u64::MAX.to_le_bytes());
        assert!(matches!(
            decode_limited::<String>(&bytes, 1024),
            Err(DecodeError::Body(_))
        ));
    }
}
