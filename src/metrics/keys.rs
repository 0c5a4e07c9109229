//! Key layouts of the aggregates in the `metrics` and `activity` column families.
//!
//! User sets are kind-first so that one range scan reads a kind's days in
//! order; counters are day-first so that one range scan reads a day range.

use crate::keys::{day_asc, user};
use crate::store::merge::metric_space::{COUNTER, USER_SET};

/// Tag of per-(kind, day) user sets: `USER_SET 'd' kind day`.
pub const DAY_USERS: u8 = b'd';
/// Tag of per-(kind, first day) user sets: `USER_SET 'f' kind day`.
pub const FIRST_USERS: u8 = b'f';
/// Tag of per-(day, kind) event counters: `COUNTER 'k' day kind`.
pub const KIND_DAY: u8 = b'k';
/// Tag of per-day money and session counters: `COUNTER 'm' day field`.
pub const MONEY: u8 = b'm';
/// Tag of rolling active-user counters: `COUNTER 'r' kind window day`.
pub const ROLLING: u8 = b'r';

/// The rolling windows kept as counters: DAU, WAU, MAU.
pub const WINDOWS_DAYS: [u8; 3] = [1, 7, 30];

/// Users with an event of `kind` (0 = activity) in the `window_days` days
/// ending at `day`.
pub fn rolling(kind: u32, window_days: u8, day: i32) -> Vec<u8> {
    let mut k = Vec::with_capacity(11);
    k.push(COUNTER);
    k.push(ROLLING);
    k.extend_from_slice(&kind.to_be_bytes());
    k.push(window_days);
    k.extend_from_slice(&day_asc(day));
    k
}

/// The days `window_days`-window counters gain when a user's day set gains
/// `day`, given its nearest other days before (`prev`) and after (`next`):
/// the windows ending in `day ..= day + w − 1` that no other day covers.
pub fn newly_covered(
    day: i32,
    prev: Option<i32>,
    next: Option<i32>,
    window_days: u8,
) -> (i32, i32) {
    let w = i32::from(window_days);
    let lo = prev.map_or(day, |p| day.max(p.saturating_add(w)));
    let hi = next.map_or(day.saturating_add(w - 1), |n| {
        (day.saturating_add(w - 1)).min(n - 1)
    });
    (lo, hi)
}

/// The per-day counters besides events per kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum MoneyField {
    /// Purchase events.
    Orders = 1,
    /// Sum of purchase amounts.
    Gmv = 2,
    /// Refund events.
    Refunds = 3,
    /// Sum of refund amounts.
    RefundMinor = 4,
    /// Sessions whose first event fell on the day.
    Sessions = 5,
    /// Users whose first activity fell on the day.
    NewUsers = 6,
}

impl MoneyField {
    /// Every field.
    pub const ALL: [MoneyField; 6] = [
        MoneyField::Orders,
        MoneyField::Gmv,
        MoneyField::Refunds,
        MoneyField::RefundMinor,
        MoneyField::Sessions,
        MoneyField::NewUsers,
    ];

    /// The field with byte `b`.
    pub fn from_byte(b: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|f| *f as u8 == b)
    }
}

fn kind_day_key(space: u8, tag: u8, a: [u8; 4], b: [u8; 4]) -> Vec<u8> {
    let mut k = Vec::with_capacity(10);
    k.push(space);
    k.push(tag);
    k.extend_from_slice(&a);
    k.extend_from_slice(&b);
    k
}

/// Users with at least one event of `kind` (or activity) on `day`.
pub fn day_users(kind: u32, day: i32) -> Vec<u8> {
    kind_day_key(USER_SET, DAY_USERS, kind.to_be_bytes(), day_asc(day))
}

/// Users whose first event of `kind` (or first activity) fell on `day`.
pub fn first_users(kind: u32, day: i32) -> Vec<u8> {
    kind_day_key(USER_SET, FIRST_USERS, kind.to_be_bytes(), day_asc(day))
}

/// Events of `kind` on `day`.
pub fn kind_day(day: i32, kind: u32) -> Vec<u8> {
    kind_day_key(COUNTER, KIND_DAY, day_asc(day), kind.to_be_bytes())
}

/// A money or session counter of `day`.
pub fn money(day: i32, field: MoneyField) -> Vec<u8> {
    let mut k = vec![COUNTER, MONEY];
    k.extend_from_slice(&day_asc(day));
    k.push(field as u8);
    k
}

/// Store-wide events at local hour `hour`.
pub fn hour(hour: u8) -> Vec<u8> {
    vec![COUNTER, b'h', hour]
}

/// Store-wide events on weekday `weekday` (0 = Monday).
pub fn weekday(weekday: u8) -> Vec<u8> {
    vec![COUNTER, b'w', weekday]
}

/// Every event in the store.
pub fn events_total() -> Vec<u8> {
    vec![COUNTER, b'e', b'v']
}

/// Every event of `kind_id` in the store.
pub fn events_of_kind(kind_id: u32) -> Vec<u8> {
    let mut k = vec![COUNTER, b'e', b'k'];
    k.extend_from_slice(&kind_id.to_be_bytes());
    k
}

/// Per-user state, in the `activity` column family.
pub fn user_state(user_id: u32) -> Vec<u8> {
    user(user_id).to_vec()
}

/// A session's first local day, in the `activity` column family.
pub fn session(user_id: u32, session_id: &str) -> Vec<u8> {
    crate::keys::user_and_name(user_id, session_id)
}

/// Bounds of the user-set keys of `kind` for days `from..=to`, as a half-open
/// key range.
pub fn day_users_range(tag: u8, kind: u32, from: i32, to: i32) -> (Vec<u8>, Vec<u8>) {
    let start = kind_day_key(USER_SET, tag, kind.to_be_bytes(), day_asc(from));
    let end = match to.checked_add(1) {
        Some(t) => kind_day_key(USER_SET, tag, kind.to_be_bytes(), day_asc(t)),
        None => {
            let mut e = kind_day_key(USER_SET, tag, kind.to_be_bytes(), [0xff; 4]);
            e.push(0);
            e
        }
    };
    (start, end)
}
