//! Key layouts of the `feed` column family: the change feed's log, the
//! stage due index and the feed's clock (SPEC §4a).
//!
//! | key | value |
//! |---|---|
//! | `1 ‖ cursor (u64 BE)` | one feed entry |
//! | `2 ‖ day_asc(due) ‖ user` | empty: the user's stage changes on `due` with no new event |
//! | `3 ‖ user ‖ lot (u32 BE)` | empty: the lot's expiry notice was written |
//! | `4` | the clock: the last `advance` instant |
//! | `5` | the highest cursor a trim deleted (u64), so a reopened store never hands it out again |
//! | `6 ‖ due_ms (u64 BE) ‖ user` | empty: the user's rule tags may change at `due_ms` with no new event |
//! | `7 ‖ user ‖ coupon slot (u32 BE)` | empty: the coupon's expiry notice was written |

use super::{day_asc, day_from_asc, user, USER_BYTES};

/// Family byte of the log entries.
pub const ENTRY: u8 = 1;
/// Family byte of the stage due index.
pub const DUE: u8 = 2;
/// Family byte of the "notice written" marks.
pub const NOTICED: u8 = 3;
/// The clock's key.
pub const CLOCK: [u8; 1] = [4];
/// The key of the highest cursor ever trimmed.
pub const TRIMMED: [u8; 1] = [5];

/// Family byte of the rule-tag due index.
pub const TAG_DUE: u8 = 6;
/// Family byte of the coupons' "notice written" marks.
pub const COUPON_NOTICED: u8 = 7;
/// Width of a rule-tag due key.
pub const TAG_DUE_KEY_BYTES: usize = 1 + 8 + USER_BYTES;

/// The rule-tag due key of `user_id` at `due_ms` (instants are never
/// negative, so their big-endian bytes sort).
pub fn tag_due(due_ms: i64, user_id: u32) -> [u8; TAG_DUE_KEY_BYTES] {
    let mut k = [0u8; TAG_DUE_KEY_BYTES];
    k[0] = TAG_DUE;
    k[1..9].copy_from_slice(&(due_ms.max(0) as u64).to_be_bytes());
    k[9..].copy_from_slice(&user(user_id));
    k
}

/// The first key after every rule-tag due key at or before `ms`.
pub fn tag_due_until(ms: i64) -> Vec<u8> {
    let mut k = vec![TAG_DUE];
    k.extend_from_slice(&(ms.max(0) as u64).saturating_add(1).to_be_bytes());
    k
}

/// `(due_ms, user)` of a rule-tag due key.
pub fn parse_tag_due(key: &[u8]) -> Option<(i64, u32)> {
    if key.len() != TAG_DUE_KEY_BYTES || key[0] != TAG_DUE {
        return None;
    }
    let ms = u64::from_be_bytes(key[1..9].try_into().ok()?);
    let u = u32::from_be_bytes(key[9..].try_into().ok()?);
    Some((i64::try_from(ms).ok()?, u))
}

/// Width of an entry key.
pub const ENTRY_KEY_BYTES: usize = 9;
/// Width of a due key.
pub const DUE_KEY_BYTES: usize = 1 + 4 + USER_BYTES;

/// The key of the entry with `cursor`.
pub fn entry(cursor: u64) -> [u8; ENTRY_KEY_BYTES] {
    let mut k = [0u8; ENTRY_KEY_BYTES];
    k[0] = ENTRY;
    k[1..].copy_from_slice(&cursor.to_be_bytes());
    k
}

/// The cursor of an entry key; `None` for any other bytes.
pub fn entry_cursor(key: &[u8]) -> Option<u64> {
    match key.split_first() {
        Some((&ENTRY, rest)) => Some(u64::from_be_bytes(rest.try_into().ok()?)),
        _ => None,
    }
}

/// The due key of `user_id` changing stage on `day`.
pub fn due(day: i32, user_id: u32) -> [u8; DUE_KEY_BYTES] {
    let mut k = [0u8; DUE_KEY_BYTES];
    k[0] = DUE;
    k[1..5].copy_from_slice(&day_asc(day));
    k[5..].copy_from_slice(&user(user_id));
    k
}

/// The first key after every due key of days up to `day`.
pub fn due_until(day: i32) -> Vec<u8> {
    match day.checked_add(1) {
        Some(next) => {
            let mut k = vec![DUE];
            k.extend_from_slice(&day_asc(next));
            k
        }
        None => vec![DUE + 1],
    }
}

/// `(day, user)` of a due key.
pub fn parse_due(key: &[u8]) -> Option<(i32, u32)> {
    if key.len() != DUE_KEY_BYTES || key[0] != DUE {
        return None;
    }
    let day = day_from_asc(key[1..5].try_into().ok()?);
    let u = u32::from_be_bytes(key[5..].try_into().ok()?);
    Some((day, u))
}

/// The mark that lot `lot` of `user_id` had its expiry notice.
pub fn noticed(user_id: u32, lot: u32) -> [u8; 9] {
    let mut k = [0u8; 9];
    k[0] = NOTICED;
    k[1..5].copy_from_slice(&user(user_id));
    k[5..].copy_from_slice(&lot.to_be_bytes());
    k
}

/// `(user, lot)` of a notice mark key.
#[cfg(any(test, feature = "internals"))]
pub fn parse_noticed(key: &[u8]) -> Option<(u32, u32)> {
    if key.len() != 9 || key[0] != NOTICED {
        return None;
    }
    let u = u32::from_be_bytes(key[1..5].try_into().ok()?);
    let lot = u32::from_be_bytes(key[5..].try_into().ok()?);
    Some((u, lot))
}

/// The prefix of every notice mark of `user_id`.
pub fn noticed_of(user_id: u32) -> [u8; 5] {
    let mut k = [0u8; 5];
    k[0] = NOTICED;
    k[1..].copy_from_slice(&user(user_id));
    k
}

/// The mark that coupon `slot` of `user_id` had its expiry notice.
pub fn coupon_noticed(user_id: u32, slot: u32) -> [u8; 9] {
    let mut k = noticed(user_id, slot);
    k[0] = COUPON_NOTICED;
    k
}

/// The prefix of every coupon notice mark of `user_id`.
pub fn coupon_noticed_of(user_id: u32) -> [u8; 5] {
    let mut k = noticed_of(user_id);
    k[0] = COUPON_NOTICED;
    k
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_sort() {
        assert_eq!(entry_cursor(&entry(7)), Some(7));
        assert!(entry(2) < entry(300));
        assert_eq!(parse_due(&due(-5, 9)), Some((-5, 9)));
        assert!(due(-5, 9) < due(3, 1));
        assert!(due(3, 1).as_slice() < due_until(3).as_slice());
        assert!(due(4, 0).as_slice() >= due_until(3).as_slice());
        assert!(noticed(1, 2).starts_with(&noticed_of(1)));
        assert_eq!(parse_noticed(&noticed(1, 2)), Some((1, 2)));
    }
}
