//! Key layouts of the dimension aggregates in the `metrics` column family
//! (docs/metrics.md, "Dimensions"): the [`MetricKey`] variants `DimUsers`
//! and `DimCounter`, and the value registry's records in `meta`.
//!
//! Both aggregates are day-ordered inside one dimension, so a breakdown of
//! a day range is one range scan per dimension and kind: the user sets as
//! `dim ‖ kind ‖ day ‖ value ‖ chunk`, the counters as `dim ‖ day ‖ value
//! ‖ field ‖ kind`. A dimension is named by its stored id (`u16`, never
//! reused after a drop), a value by its registered id (`u32`, `0` =
//! `(other)`).

use super::metrics::{MetricKey, COUNTER, USER_SET};
use super::{day_asc, day_from_asc};

/// The tag of both dimension layouts (after the user-set or counter byte).
pub const DIM: u8 = b'D';
/// The tag of the first-touch user sets.
pub const FIRST_TOUCH: u8 = b'G';
/// The tag of the last-touch user sets.
pub const LAST_TOUCH: u8 = b'L';

/// Users (of one chunk) whose first (`last`: most recent) event carrying
/// dimension `dim` carried value `value`.
pub fn touch_users(last: bool, dim: u16, value: u32, chunk: u16) -> Vec<u8> {
    let mut k = touch_value_prefix(last, dim, value);
    k.extend_from_slice(&chunk.to_be_bytes());
    k
}

/// Every chunk of one touch set.
pub fn touch_value_prefix(last: bool, dim: u16, value: u32) -> Vec<u8> {
    let mut k = touch_prefix(last, dim);
    k.extend_from_slice(&value.to_be_bytes());
    k
}

/// Every touch set of one dimension (first or last).
pub fn touch_prefix(last: bool, dim: u16) -> Vec<u8> {
    let mut k = vec![USER_SET, if last { LAST_TOUCH } else { FIRST_TOUCH }];
    k.extend_from_slice(&dim.to_be_bytes());
    k
}

/// Which dimension counter a key holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum DimField {
    /// Events of the key's kind.
    Events = 0,
    /// Purchases.
    Orders = 1,
    /// Purchase amounts (minor units).
    Gmv = 2,
    /// Refunds.
    Refunds = 3,
    /// Refund amounts (minor units).
    RefundMinor = 4,
}

impl DimField {
    /// The field of a stored byte.
    pub fn from_byte(b: u8) -> Option<Self> {
        Some(match b {
            0 => DimField::Events,
            1 => DimField::Orders,
            2 => DimField::Gmv,
            3 => DimField::Refunds,
            4 => DimField::RefundMinor,
            _ => return None,
        })
    }
}

/// The chunk `chunk` of a dimension user set.
pub fn users_of_chunk(dim: u16, kind: u32, day: i32, value: u32, chunk: u16) -> Vec<u8> {
    let mut k = users_day_prefix(dim, kind, day);
    k.extend_from_slice(&value.to_be_bytes());
    k.extend_from_slice(&chunk.to_be_bytes());
    k
}

/// The start of the user sets of one dimension and kind on `day` (a
/// breakdown scans from the first day's to past the last's).
pub fn users_day_prefix(dim: u16, kind: u32, day: i32) -> Vec<u8> {
    let mut k = Vec::with_capacity(18);
    k.extend_from_slice(&[USER_SET, DIM]);
    k.extend_from_slice(&dim.to_be_bytes());
    k.extend_from_slice(&kind.to_be_bytes());
    k.extend_from_slice(&day_asc(day));
    k
}

/// A counter of dimension `dim`, value `value`, on local `day`; `kind`
/// only for [`DimField::Events`] (0 for the money fields).
pub fn counter(dim: u16, day: i32, value: u32, field: DimField, kind: u32) -> Vec<u8> {
    let mut k = counters_day_prefix(dim, day);
    k.extend_from_slice(&value.to_be_bytes());
    k.push(field as u8);
    k.extend_from_slice(&kind.to_be_bytes());
    k
}

/// The start of the counters of one dimension on `day`.
pub fn counters_day_prefix(dim: u16, day: i32) -> Vec<u8> {
    let mut k = Vec::with_capacity(16);
    k.extend_from_slice(&[COUNTER, DIM]);
    k.extend_from_slice(&dim.to_be_bytes());
    k.extend_from_slice(&day_asc(day));
    k
}

/// The start of every aggregate of dimension `dim` of one layout (`space`:
/// [`USER_SET`] or [`COUNTER`]): dropping a dimension deletes both.
pub fn dim_prefix(space: u8, dim: u16) -> Vec<u8> {
    let mut k = vec![space, DIM];
    k.extend_from_slice(&dim.to_be_bytes());
    k
}

/// The touch layouts after their tag.
pub(super) fn parse_touch(tag: u8, body: &[u8]) -> Option<MetricKey> {
    if body.len() != 8 {
        return None;
    }
    Some(MetricKey::DimTouch {
        last: tag == LAST_TOUCH,
        dim: u16::from_be_bytes(body[..2].try_into().ok()?),
        value: u32::from_be_bytes(body[2..6].try_into().ok()?),
        chunk: u16::from_be_bytes(body[6..].try_into().ok()?),
    })
}

/// The two layouts after their tag.
pub(super) fn parse(space: u8, body: &[u8]) -> Option<MetricKey> {
    let be16 = |b: &[u8]| -> Option<u16> { Some(u16::from_be_bytes(b.try_into().ok()?)) };
    let be32 = |b: &[u8]| -> Option<u32> { Some(u32::from_be_bytes(b.try_into().ok()?)) };
    let day = |b: &[u8]| -> Option<i32> { Some(day_from_asc(b.try_into().ok()?)) };
    match space {
        USER_SET if body.len() == 16 => Some(MetricKey::DimUsers {
            dim: be16(&body[..2])?,
            kind: be32(&body[2..6])?,
            day: day(&body[6..10])?,
            value: be32(&body[10..14])?,
            chunk: be16(&body[14..])?,
        }),
        COUNTER if body.len() == 15 => Some(MetricKey::DimCounter {
            dim: be16(&body[..2])?,
            day: day(&body[2..6])?,
            value: be32(&body[6..10])?,
            field: DimField::from_byte(body[10])?,
            kind: be32(&body[11..])?,
        }),
        _ => None,
    }
}

/// `meta` prefix of the value registry: `dim_value:` ‖ dim (u16 BE) ‖
/// value id (u32 BE) → the value's text.
pub const VALUE_PREFIX: &[u8] = b"dim_value:";

/// The registry record of value `id` of dimension `dim`.
pub fn value(dim: u16, id: u32) -> Vec<u8> {
    let mut k = values_of(dim);
    k.extend_from_slice(&id.to_be_bytes());
    k
}

/// The prefix of every registered value of `dim`.
pub fn values_of(dim: u16) -> Vec<u8> {
    let mut k = VALUE_PREFIX.to_vec();
    k.extend_from_slice(&dim.to_be_bytes());
    k
}

/// `(dim, id)` of a registry record's key.
pub fn parse_value(key: &[u8]) -> Option<(u16, u32)> {
    let body = key.strip_prefix(VALUE_PREFIX)?;
    if body.len() != 6 {
        return None;
    }
    Some((
        u16::from_be_bytes(body[..2].try_into().ok()?),
        u32::from_be_bytes(body[2..].try_into().ok()?),
    ))
}

#[cfg(test)]
mod tests {
    use super::super::metrics::chunk_of;
    use super::*;

    #[test]
    fn layouts_round_trip() {
        let k = users_of_chunk(3, 7, -2, 9, chunk_of(70_000));
        assert_eq!(
            MetricKey::parse(&k),
            Some(MetricKey::DimUsers {
                dim: 3,
                kind: 7,
                day: -2,
                value: 9,
                chunk: 1
            })
        );
        let c = counter(3, 5, 9, DimField::Gmv, 0);
        assert_eq!(
            MetricKey::parse(&c),
            Some(MetricKey::DimCounter {
                dim: 3,
                day: 5,
                value: 9,
                field: DimField::Gmv,
                kind: 0
            })
        );
        assert_eq!(parse_value(&value(2, 5)), Some((2, 5)));
        assert!(users_day_prefix(3, 7, 1) < users_day_prefix(3, 7, 2));
    }
}
