//! Key layouts of the `social` column family: shares, touches, attribution
//! and the per-sharer figures (SPEC §4b, docs/social.md).
//!
//! | key | value |
//! |---|---|
//! | `1 ‖ share_id` | the share's owner (registry) |
//! | `2 ‖ owner ‖ share_id` | empty: the owner's shares |
//! | `3 ‖ len ‖ share_id ‖ user ‖ ts_asc ‖ seq` | empty: a touch, by share |
//! | `4 ‖ user ‖ ts_asc ‖ len ‖ share_id ‖ seq` | empty: a touch, by user and time |
//! | `5 ‖ user ‖ sharer` | first touch (ms) of `user` through one of `sharer`'s shares |
//! | `6 ‖ user ‖ item [‖ ts_asc ‖ seq]` | an attributed item of `user` |
//! | `7 ‖ day_asc ‖ sharer` | the sharer's figures of one local day |
//! | `8 ‖ day_asc` | the store's figures of one local day |
//! | `9 ‖ sharer ‖ user` | empty: `user`'s signup is attributed to `sharer` |
//! | `10 ‖ len ‖ group_id` | a group buy's head |
//! | `11 ‖ len ‖ group_id ‖ user ‖ ts_asc ‖ seq` | empty: a join |
//! | `12 ‖ day_asc(opened) ‖ len ‖ group_id` | the head again, by opening day |
//! | `13 ‖ user` | the user's referral credit state (generation, sharer) |
//! | `14 ‖ user` | a job's scratch: the user's first-purchase attribution before the job re-derived it |
//!
//! Share ids inside a key are length-prefixed, so that share `a` is never a
//! range prefix of share `ab`, and touches at one instant order by share id
//! (then by arrival, which never decides anything: equal instant and share
//! mean equal owner).

use super::{day_asc, day_from_asc, ts_asc, ts_from_asc, user, USER_BYTES};

/// Family byte of the registry.
pub const REGISTRY: u8 = 1;
/// Family byte of the owners' share lists.
pub const OWNED: u8 = 2;
/// Family byte of touches by share.
pub const BY_SHARE: u8 = 3;
/// Family byte of touches by user.
pub const TOUCHES: u8 = 4;
/// Family byte of first touches per (user, sharer).
pub const REACHED: u8 = 5;
/// Family byte of attributed items.
pub const ATTRIBUTED: u8 = 6;
/// Family byte of per-sharer daily figures.
pub const SHARER_DAY: u8 = 7;
/// Family byte of store-wide daily figures.
pub const DAY: u8 = 8;
/// Family byte of the referred-by index.
pub const REFERRED: u8 = 9;

/// Family byte of group heads.
pub const GROUP: u8 = 10;
/// Family byte of group joins.
pub const JOIN: u8 = 11;
/// Family byte of group heads by opening day.
pub const GROUP_DAY: u8 = 12;

/// Family byte of referral credit states (not derived from events: the
/// ledger's side of attribution).
pub const REFERRAL: u8 = 13;

/// Family byte of a job's snapshot of first-purchase attributions (empty
/// outside a job that re-derives attribution).
pub const SNAPSHOT: u8 = 14;

/// Item byte of a user's first signup.
pub const ITEM_SIGNUP: u8 = 1;
/// Item byte of a user's first purchase.
pub const ITEM_FIRST_PURCHASE: u8 = 2;
/// Item byte of one purchase.
pub const ITEM_PURCHASE: u8 = 3;

fn with_user(family: u8, user_id: u32) -> Vec<u8> {
    let mut k = Vec::with_capacity(32);
    k.push(family);
    k.extend_from_slice(&user(user_id));
    k
}

fn push_share(k: &mut Vec<u8>, share_id: &str) {
    debug_assert!(share_id.len() <= usize::from(u8::MAX));
    k.push(share_id.len() as u8);
    k.extend_from_slice(share_id.as_bytes());
}

/// The registry key of `share_id`.
pub fn registry(share_id: &str) -> Vec<u8> {
    let mut k = vec![REGISTRY];
    k.extend_from_slice(share_id.as_bytes());
    k
}

/// The key listing `share_id` among `owner`'s shares.
pub fn owned(owner: u32, share_id: &str) -> Vec<u8> {
    let mut k = with_user(OWNED, owner);
    k.extend_from_slice(share_id.as_bytes());
    k
}

/// The prefix of `owner`'s shares.
pub fn owned_prefix(owner: u32) -> Vec<u8> {
    with_user(OWNED, owner)
}

/// The share id of an `owned` key.
pub fn owned_share(key: &[u8]) -> Option<&str> {
    std::str::from_utf8(key.get(1 + USER_BYTES..)?).ok()
}

/// A touch: `user_id` came through `share_id` at `ts_ms` with event `seq`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Touch {
    /// The touching user.
    pub user_id: u32,
    /// The event's instant.
    pub ts_ms: i64,
    /// The share id it came through.
    pub share_id: String,
    /// The event's sequence number.
    pub seq: u32,
}

/// The by-share key of a touch.
pub fn by_share(t: &Touch) -> Vec<u8> {
    let mut k = by_share_prefix(&t.share_id);
    k.extend_from_slice(&user(t.user_id));
    k.extend_from_slice(&ts_asc(t.ts_ms));
    k.extend_from_slice(&t.seq.to_be_bytes());
    k
}

/// The prefix of every touch through `share_id`.
pub fn by_share_prefix(share_id: &str) -> Vec<u8> {
    let mut k = vec![BY_SHARE];
    push_share(&mut k, share_id);
    k
}

/// The touch of a by-share key.
pub fn parse_by_share(key: &[u8]) -> Option<Touch> {
    let (&BY_SHARE, rest) = key.split_first()? else {
        return None;
    };
    let (&len, rest) = rest.split_first()?;
    let share = rest.get(..usize::from(len))?;
    let rest = &rest[usize::from(len)..];
    if rest.len() != USER_BYTES + 8 + 4 {
        return None;
    }
    Some(Touch {
        user_id: u32::from_be_bytes(rest[..4].try_into().ok()?),
        ts_ms: ts_from_asc(rest[4..12].try_into().ok()?),
        share_id: std::str::from_utf8(share).ok()?.to_owned(),
        seq: u32::from_be_bytes(rest[12..16].try_into().ok()?),
    })
}

/// The by-user key of a touch.
pub fn touch(t: &Touch) -> Vec<u8> {
    let mut k = touches_from(t.user_id, t.ts_ms);
    push_share(&mut k, &t.share_id);
    k.extend_from_slice(&t.seq.to_be_bytes());
    k
}

/// The first by-user touch key of `user_id` at or after `ts_ms`.
pub fn touches_from(user_id: u32, ts_ms: i64) -> Vec<u8> {
    let mut k = with_user(TOUCHES, user_id);
    k.extend_from_slice(&ts_asc(ts_ms));
    k
}

/// The prefix of every touch of `user_id`.
pub fn touches_prefix(user_id: u32) -> Vec<u8> {
    with_user(TOUCHES, user_id)
}

/// The touch of a by-user key.
pub fn parse_touch(key: &[u8]) -> Option<Touch> {
    let (&TOUCHES, rest) = key.split_first()? else {
        return None;
    };
    let user_id = u32::from_be_bytes(rest.get(..4)?.try_into().ok()?);
    let ts_ms = ts_from_asc(rest.get(4..12)?.try_into().ok()?);
    let len = usize::from(*rest.get(12)?);
    let share = rest.get(13..13 + len)?;
    let seq = rest.get(13 + len..)?;
    Some(Touch {
        user_id,
        ts_ms,
        share_id: std::str::from_utf8(share).ok()?.to_owned(),
        seq: u32::from_be_bytes(seq.try_into().ok()?),
    })
}

/// The first-touch key of `user_id` through `sharer`'s shares.
pub fn reached(user_id: u32, sharer: u32) -> Vec<u8> {
    let mut k = with_user(REACHED, user_id);
    k.extend_from_slice(&user(sharer));
    k
}

/// The prefix of every first-touch key of `user_id`.
pub fn reached_prefix(user_id: u32) -> Vec<u8> {
    with_user(REACHED, user_id)
}

/// The sharer of a first-touch key.
pub fn reached_sharer(key: &[u8]) -> Option<u32> {
    Some(u32::from_be_bytes(key.get(5..9)?.try_into().ok()?))
}

/// The key of `user_id`'s attributed first signup or first purchase.
pub fn first_item(user_id: u32, item: u8) -> Vec<u8> {
    debug_assert!(item == ITEM_SIGNUP || item == ITEM_FIRST_PURCHASE);
    let mut k = with_user(ATTRIBUTED, user_id);
    k.push(item);
    k
}

/// The key of `user_id`'s attributed purchase `(ts_ms, seq)`.
pub fn purchase_item(user_id: u32, ts_ms: i64, seq: u32) -> Vec<u8> {
    let mut k = purchases_from(user_id, ts_ms);
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

/// The first attributed-purchase key of `user_id` at or after `ts_ms`.
pub fn purchases_from(user_id: u32, ts_ms: i64) -> Vec<u8> {
    let mut k = with_user(ATTRIBUTED, user_id);
    k.push(ITEM_PURCHASE);
    k.extend_from_slice(&ts_asc(ts_ms));
    k
}

/// The prefix of every attributed item of `user_id`.
pub fn attributed_prefix(user_id: u32) -> Vec<u8> {
    with_user(ATTRIBUTED, user_id)
}

/// `(ts_ms, seq)` of an attributed-purchase key.
pub fn parse_purchase_item(key: &[u8]) -> Option<(i64, u32)> {
    if key.len() != 1 + USER_BYTES + 1 + 8 + 4 || key[5] != ITEM_PURCHASE {
        return None;
    }
    Some((
        ts_from_asc(key[6..14].try_into().ok()?),
        u32::from_be_bytes(key[14..18].try_into().ok()?),
    ))
}

/// The key of `sharer`'s figures of local day `day`.
pub fn sharer_day(day: i32, sharer: u32) -> Vec<u8> {
    let mut k = day_prefix(SHARER_DAY, day);
    k.extend_from_slice(&user(sharer));
    k
}

/// The key of the store's figures of local day `day`.
pub fn day(day: i32) -> Vec<u8> {
    day_prefix(DAY, day)
}

/// The first key of `family` (`SHARER_DAY` or `DAY`) on `day`.
pub fn day_prefix(family: u8, day: i32) -> Vec<u8> {
    let mut k = vec![family];
    k.extend_from_slice(&day_asc(day));
    k
}

/// `(day, sharer)` of a per-sharer figures key.
pub fn parse_sharer_day(key: &[u8]) -> Option<(i32, u32)> {
    if key.len() != 1 + 4 + USER_BYTES || key[0] != SHARER_DAY {
        return None;
    }
    Some((
        day_from_asc(key[1..5].try_into().ok()?),
        u32::from_be_bytes(key[5..9].try_into().ok()?),
    ))
}

/// The day of a store-wide figures key.
pub fn parse_day(key: &[u8]) -> Option<i32> {
    if key.len() != 5 || key[0] != DAY {
        return None;
    }
    Some(day_from_asc(key[1..5].try_into().ok()?))
}

/// The key recording that `user_id`'s signup is attributed to `sharer`.
pub fn referred(sharer: u32, user_id: u32) -> Vec<u8> {
    let mut k = with_user(REFERRED, sharer);
    k.extend_from_slice(&user(user_id));
    k
}

/// The prefix of the users `sharer` referred (all of family 9 for `None`).
pub fn referred_prefix(sharer: Option<u32>) -> Vec<u8> {
    match sharer {
        Some(s) => with_user(REFERRED, s),
        None => vec![REFERRED],
    }
}

/// The referred user of a referred-by key.
pub fn referred_user(key: &[u8]) -> Option<u32> {
    if key.len() != 1 + 2 * USER_BYTES || key[0] != REFERRED {
        return None;
    }
    Some(u32::from_be_bytes(key[5..9].try_into().ok()?))
}

/// The head key of group `group_id`.
pub fn group(group_id: &str) -> Vec<u8> {
    let mut k = vec![GROUP];
    push_share(&mut k, group_id);
    k
}

/// A join of `user_id` to `group_id` at `ts_ms` with event `seq`.
pub fn join(group_id: &str, user_id: u32, ts_ms: i64, seq: u32) -> Vec<u8> {
    let mut k = joins_prefix(group_id);
    k.extend_from_slice(&user(user_id));
    k.extend_from_slice(&ts_asc(ts_ms));
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

/// The prefix of every join of `group_id`.
pub fn joins_prefix(group_id: &str) -> Vec<u8> {
    let mut k = vec![JOIN];
    push_share(&mut k, group_id);
    k
}

/// `(user, ts_ms)` of a join key.
pub fn parse_join(key: &[u8]) -> Option<(u32, i64)> {
    let n = key.len();
    if n < 2 + USER_BYTES + 12 || key[0] != JOIN {
        return None;
    }
    Some((
        u32::from_be_bytes(key[n - 16..n - 12].try_into().ok()?),
        ts_from_asc(key[n - 12..n - 4].try_into().ok()?),
    ))
}

/// The by-day key of group `group_id` opened on local day `day`.
pub fn group_day(day: i32, group_id: &str) -> Vec<u8> {
    let mut k = day_prefix(GROUP_DAY, day);
    push_share(&mut k, group_id);
    k
}

/// `(day, group_id)` of a by-day key.
pub fn parse_group_day(key: &[u8]) -> Option<(i32, &str)> {
    if key.len() < 6 || key[0] != GROUP_DAY {
        return None;
    }
    let day = day_from_asc(key[1..5].try_into().ok()?);
    let id = key.get(6..6 + usize::from(key[5]))?;
    (6 + id.len() == key.len()).then_some(())?;
    Some((day, std::str::from_utf8(id).ok()?))
}

/// The snapshot key of `user_id`'s first-purchase attribution.
pub fn snapshot(user_id: u32) -> Vec<u8> {
    with_user(SNAPSHOT, user_id)
}

/// The referral credit state key of `user_id`.
pub fn referral(user_id: u32) -> Vec<u8> {
    with_user(REFERRAL, user_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn touch_keys_round_trip_and_order_by_time_then_share() {
        let a = Touch {
            user_id: 7,
            ts_ms: -5,
            share_id: "ab".into(),
            seq: 3,
        };
        assert_eq!(parse_touch(&touch(&a)), Some(a.clone()));
        assert_eq!(parse_by_share(&by_share(&a)), Some(a.clone()));
        let b = Touch {
            share_id: "b".into(),
            seq: 0,
            ..a.clone()
        };
        // same instant: the shorter id first, whatever the sequence numbers
        assert!(touch(&b) < touch(&a));
        let c = Touch { ts_ms: -4, ..b };
        assert!(touch(&a) < touch(&c));
        assert!(!by_share(&a).starts_with(&by_share_prefix("a")));
    }

    #[test]
    fn figure_and_item_keys_parse() {
        assert_eq!(parse_sharer_day(&sharer_day(-3, 9)), Some((-3, 9)));
        assert_eq!(parse_day(&day(12)), Some(12));
        assert_eq!(parse_purchase_item(&purchase_item(4, 99, 2)), Some((99, 2)));
        assert_eq!(referred_user(&referred(1, 2)), Some(2));
        assert_eq!(reached_sharer(&reached(1, 2)), Some(2));
        assert_eq!(owned_share(&owned(1, "s")), Some("s"));
        assert_eq!(parse_join(&join("g", 3, -7, 1)), Some((3, -7)));
        assert_eq!(parse_group_day(&group_day(-2, "g1")), Some((-2, "g1")));
        assert!(!join("g", 3, 0, 0).starts_with(&joins_prefix("g1")));
    }
}
