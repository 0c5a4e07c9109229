//! Key layouts of the `metrics` column family: every counter and user set,
//! whichever module writes it (the aggregation engine, the users module's
//! all-users set, the ledger's tier sets).
//!
//! The first byte is the key's *space* and tells the merge operator the value
//! shape ([`COUNTER`]: i64 sums; [`USER_SET`]: bitmap deltas); the second
//! byte is the layout's tag. User sets are kind-first so that one range scan
//! reads a kind's days in order; counters are day-first so that one range
//! scan reads a day range. [`MetricKey::parse`] decodes every layout, and the
//! key-codec tests check that no two layouts can produce the same key.

use super::{day_asc, day_from_asc};

/// Space byte of i64 counters (merge: saturating sum).
pub const COUNTER: u8 = 0x01;
/// Space byte of user-set bitmaps (merge: add/remove deltas).
pub const USER_SET: u8 = 0x02;

/// Tag of per-(kind, day) user sets: `USER_SET 'd' kind day`.
pub const DAY_USERS: u8 = b'd';
/// Tag of per-(kind, first day) user sets: `USER_SET 'f' kind day`.
pub const FIRST_USERS: u8 = b'f';
/// Tag of the set of every existing user: `USER_SET "users"`.
const ALL_USERS_TAG: u8 = b'u';
/// Tag of the per-tier user sets: `USER_SET 'T' name`.
const TIER_USERS: u8 = b'T';
/// Tag of per-(day, kind) event counters: `COUNTER 'k' day kind`.
pub const KIND_DAY: u8 = b'k';
/// Tag of per-day money and session counters: `COUNTER 'm' day field`.
pub const MONEY: u8 = b'm';
/// Tag of rolling active-user counters: `COUNTER 'r' kind window day`.
pub const ROLLING: u8 = b'r';
/// Tag of store-wide events by local hour: `COUNTER 'h' hour`.
const HOUR: u8 = b'h';
/// Tag of store-wide events by local weekday: `COUNTER 'w' weekday`.
const WEEKDAY: u8 = b'w';
/// Tag of event totals: `COUNTER "ev"` and `COUNTER "ek" kind`.
const EVENTS: u8 = b'e';

/// The key of the set of every existing user.
pub const ALL_USERS: &[u8] = &[USER_SET, ALL_USERS_TAG, b's', b'e', b'r', b's'];

/// The rolling windows kept as counters: DAU, WAU, MAU.
pub const WINDOWS_DAYS: [u8; 3] = [1, 7, 30];

/// The per-day counters besides events per kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
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

/// Every key layout of the `metrics` column family, decoded.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum MetricKey {
    /// Users with ≥ 1 event of `kind` (0 = activity) on `day`.
    DayUsers {
        /// Kind id (0 = any activity).
        kind: u32,
        /// Local day.
        day: i32,
    },
    /// Users whose first event of `kind` (0 = first activity) fell on `day`.
    FirstUsers {
        /// Kind id (0 = any activity).
        kind: u32,
        /// Local day.
        day: i32,
    },
    /// Every existing user.
    AllUsers,
    /// Users whose recorded tier is `name`.
    TierUsers {
        /// Tier name (UTF-8, validated by the ledger settings).
        name: String,
    },
    /// Events of `kind` on `day`.
    KindDay {
        /// Local day.
        day: i32,
        /// Kind id.
        kind: u32,
    },
    /// A money or session counter of `day`.
    Money {
        /// Local day.
        day: i32,
        /// Which counter.
        field: MoneyField,
    },
    /// Users with an event of `kind` in the `window_days` days ending at `day`.
    Rolling {
        /// Kind id (0 = any activity).
        kind: u32,
        /// Window length (one of [`WINDOWS_DAYS`]).
        window_days: u8,
        /// Last day of the window.
        day: i32,
    },
    /// Store-wide events at local hour `hour` (0..24).
    Hour(u8),
    /// Store-wide events on weekday `weekday` (0 = Monday).
    Weekday(u8),
    /// Every event in the store.
    EventsTotal,
    /// Every event of `kind` in the store.
    EventsOfKind(u32),
}

impl MetricKey {
    /// The key's bytes.
    pub fn encode(&self) -> Vec<u8> {
        match self {
            MetricKey::DayUsers { kind, day } => kind_day_key(USER_SET, DAY_USERS, *kind, *day),
            MetricKey::FirstUsers { kind, day } => kind_day_key(USER_SET, FIRST_USERS, *kind, *day),
            MetricKey::AllUsers => ALL_USERS.to_vec(),
            MetricKey::TierUsers { name } => {
                let mut k = vec![USER_SET, TIER_USERS];
                k.extend_from_slice(name.as_bytes());
                k
            }
            MetricKey::KindDay { day, kind } => {
                let mut k = Vec::with_capacity(10);
                k.extend_from_slice(&[COUNTER, KIND_DAY]);
                k.extend_from_slice(&day_asc(*day));
                k.extend_from_slice(&kind.to_be_bytes());
                k
            }
            MetricKey::Money { day, field } => {
                let mut k = Vec::with_capacity(7);
                k.extend_from_slice(&[COUNTER, MONEY]);
                k.extend_from_slice(&day_asc(*day));
                k.push(*field as u8);
                k
            }
            MetricKey::Rolling {
                kind,
                window_days,
                day,
            } => {
                let mut k = Vec::with_capacity(11);
                k.extend_from_slice(&[COUNTER, ROLLING]);
                k.extend_from_slice(&kind.to_be_bytes());
                k.push(*window_days);
                k.extend_from_slice(&day_asc(*day));
                k
            }
            MetricKey::Hour(h) => vec![COUNTER, HOUR, *h],
            MetricKey::Weekday(w) => vec![COUNTER, WEEKDAY, *w],
            MetricKey::EventsTotal => vec![COUNTER, EVENTS, b'v'],
            MetricKey::EventsOfKind(kind) => {
                let mut k = vec![COUNTER, EVENTS, b'k'];
                k.extend_from_slice(&kind.to_be_bytes());
                k
            }
        }
    }

    /// Decodes any key of the `metrics` column family; `None` for bytes no
    /// layout produces.
    pub fn parse(key: &[u8]) -> Option<Self> {
        let (&space, rest) = key.split_first()?;
        let (&tag, body) = rest.split_first()?;
        let be32 = |b: &[u8]| -> Option<[u8; 4]> { b.try_into().ok() };
        match (space, tag) {
            (USER_SET, DAY_USERS | FIRST_USERS) if body.len() == 8 => {
                let kind = u32::from_be_bytes(be32(&body[..4])?);
                let day = day_from_asc(be32(&body[4..])?);
                Some(if tag == DAY_USERS {
                    MetricKey::DayUsers { kind, day }
                } else {
                    MetricKey::FirstUsers { kind, day }
                })
            }
            (USER_SET, ALL_USERS_TAG) if key == ALL_USERS => Some(MetricKey::AllUsers),
            (USER_SET, TIER_USERS) => Some(MetricKey::TierUsers {
                name: std::str::from_utf8(body).ok()?.to_owned(),
            }),
            (COUNTER, KIND_DAY) if body.len() == 8 => Some(MetricKey::KindDay {
                day: day_from_asc(be32(&body[..4])?),
                kind: u32::from_be_bytes(be32(&body[4..])?),
            }),
            (COUNTER, MONEY) if body.len() == 5 => Some(MetricKey::Money {
                day: day_from_asc(be32(&body[..4])?),
                field: MoneyField::from_byte(body[4])?,
            }),
            (COUNTER, ROLLING) if body.len() == 9 => Some(MetricKey::Rolling {
                kind: u32::from_be_bytes(be32(&body[..4])?),
                window_days: body[4],
                day: day_from_asc(be32(&body[5..])?),
            }),
            (COUNTER, HOUR) if body.len() == 1 => Some(MetricKey::Hour(body[0])),
            (COUNTER, WEEKDAY) if body.len() == 1 => Some(MetricKey::Weekday(body[0])),
            (COUNTER, EVENTS) if body == b"v" => Some(MetricKey::EventsTotal),
            (COUNTER, EVENTS) if body.len() == 5 && body[0] == b'k' => Some(
                MetricKey::EventsOfKind(u32::from_be_bytes(be32(&body[1..])?)),
            ),
            _ => None,
        }
    }

    /// Whether the key's value is a user set (else a counter).
    pub fn is_user_set(key: &[u8]) -> bool {
        key.first() == Some(&USER_SET)
    }

    /// Whether the aggregation engine derives this key from events (a
    /// rebuild clears and re-derives exactly these): every layout but the
    /// all-users set (owned by the users module) and the tier sets (owned by
    /// the ledger).
    pub fn derived_from_events(&self) -> bool {
        !matches!(self, MetricKey::AllUsers | MetricKey::TierUsers { .. })
    }
}

fn kind_day_key(space: u8, tag: u8, kind: u32, day: i32) -> Vec<u8> {
    let mut k = Vec::with_capacity(10);
    k.push(space);
    k.push(tag);
    k.extend_from_slice(&kind.to_be_bytes());
    k.extend_from_slice(&day_asc(day));
    k
}

/// Users with an event of `kind` (0 = activity) in the `window_days` days
/// ending at `day`.
pub fn rolling(kind: u32, window_days: u8, day: i32) -> Vec<u8> {
    MetricKey::Rolling {
        kind,
        window_days,
        day,
    }
    .encode()
}

/// Users with at least one event of `kind` (or activity) on `day`.
pub fn day_users(kind: u32, day: i32) -> Vec<u8> {
    kind_day_key(USER_SET, DAY_USERS, kind, day)
}

/// Users whose first event of `kind` (or first activity) fell on `day`.
pub fn first_users(kind: u32, day: i32) -> Vec<u8> {
    kind_day_key(USER_SET, FIRST_USERS, kind, day)
}

/// Events of `kind` on `day`.
pub fn kind_day(day: i32, kind: u32) -> Vec<u8> {
    MetricKey::KindDay { day, kind }.encode()
}

/// A money or session counter of `day`.
pub fn money(day: i32, field: MoneyField) -> Vec<u8> {
    MetricKey::Money { day, field }.encode()
}

/// Store-wide events at local hour `hour`.
pub fn hour(hour: u8) -> Vec<u8> {
    MetricKey::Hour(hour).encode()
}

/// Store-wide events on weekday `weekday` (0 = Monday).
pub fn weekday(weekday: u8) -> Vec<u8> {
    MetricKey::Weekday(weekday).encode()
}

/// Every event in the store.
pub fn events_total() -> Vec<u8> {
    MetricKey::EventsTotal.encode()
}

/// Every event of `kind_id` in the store.
pub fn events_of_kind(kind_id: u32) -> Vec<u8> {
    MetricKey::EventsOfKind(kind_id).encode()
}

/// The set of users in tier `name`.
pub fn tier_users(name: &str) -> Vec<u8> {
    MetricKey::TierUsers {
        name: name.to_owned(),
    }
    .encode()
}

/// The start of the per-(kind, day) counter range of `day`.
pub fn kind_day_start(day: i32) -> Vec<u8> {
    let mut k = vec![COUNTER, KIND_DAY];
    k.extend_from_slice(&day_asc(day));
    k
}

/// The start of the money-counter range of `day`.
pub fn money_start(day: i32) -> Vec<u8> {
    let mut k = vec![COUNTER, MONEY];
    k.extend_from_slice(&day_asc(day));
    k
}

/// Bounds of the user-set keys under `tag` ([`DAY_USERS`] or [`FIRST_USERS`])
/// of `kind` for days `from..=to`, as a half-open key range.
pub fn day_users_range(tag: u8, kind: u32, from: i32, to: i32) -> (Vec<u8>, Vec<u8>) {
    let start = kind_day_key(USER_SET, tag, kind, from);
    let end = match to.checked_add(1) {
        Some(t) => kind_day_key(USER_SET, tag, kind, t),
        None => {
            let mut e = kind_day_key(USER_SET, tag, kind, 0);
            e.truncate(6);
            super::prefix_successor(&e).unwrap_or_default()
        }
    };
    (start, end)
}

/// The byte offset of the day inside a [`day_users`]/[`first_users`] key.
pub const SET_DAY_AT: usize = 6;
/// The byte offset of the day inside a [`rolling`] key.
pub const ROLLING_DAY_AT: usize = 7;
/// The byte offset of the day inside [`kind_day`] and [`money`] keys.
pub const COUNTER_DAY_AT: usize = 2;
