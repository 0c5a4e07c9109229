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

/// Tag of per-(kind, day) user sets: `USER_SET 'd' kind day chunk`.
pub const DAY_USERS: u8 = b'd';
/// Tag of per-(kind, first day) user sets: `USER_SET 'f' kind day chunk`.
pub const FIRST_USERS: u8 = b'f';
/// Tag of the set of every existing user: `USER_SET 'u' chunk`.
const ALL_USERS_TAG: u8 = b'u';
/// Tag of the per-tier user sets: `USER_SET 'T' len name chunk`.
const TIER_USERS: u8 = b'T';
/// Tag of per-(experiment, variant) assigned users: `USER_SET 'x' len E len V chunk`.
pub const VARIANT_USERS: u8 = b'x';
/// Tag of per-(experiment, variant, first-exposure day) users:
/// `USER_SET 'y' len E len V day chunk`.
pub const EXPOSED_ON: u8 = b'y';
/// Tag of per-experiment contaminated users: `USER_SET 'z' len E chunk`.
pub(super) const CONTAMINATED: u8 = b'z';
/// Tag of per-(experiment, kind, delay bucket) converted users:
/// `USER_SET 'q' len E kind bucket chunk`.
pub(super) const CONVERTED: u8 = b'q';
/// Tag of per-(day, kind) event counters: `COUNTER 'k' day kind`.
pub const KIND_DAY: u8 = b'k';
/// Tag of per-day money and session counters: `COUNTER 'm' day field`.
pub const MONEY: u8 = b'm';
/// Tag of active-user counters by day: `COUNTER 'r' window day`.
pub const ROLLING: u8 = b'r';
/// Tag of their per-block sums: `COUNTER 'R' window block`.
pub const ROLLING_BLOCK: u8 = b'R';
/// Tag of store-wide events by local hour: `COUNTER 'h' hour`.
const HOUR: u8 = b'h';
/// Tag of store-wide events by local weekday: `COUNTER 'w' weekday`.
const WEEKDAY: u8 = b'w';
/// Tag of event totals: `COUNTER "ev"` and `COUNTER "ek" kind`.
const EVENTS: u8 = b'e';

/// User sets are split by user id into chunks of 2^16 users, one key each,
/// so that no stored set is larger than one roaring container (8 KiB) and
/// the 64 KiB value cap holds at any number of users (SPEC §6).
pub const CHUNK_BITS: u32 = 16;

/// The chunk of a user id.
pub fn chunk_of(user_id: u32) -> u16 {
    (user_id >> CHUNK_BITS) as u16
}

/// The active-user windows: DAU, WAU, MAU.
pub const WINDOWS_DAYS: [u8; 3] = [1, 7, 30];

/// Days per block of the rolling counters' block sums.
pub const ROLLING_BLOCK_DAYS: i32 = 64;

/// The block of the rolling counters' block sums a day falls in.
pub fn rolling_block(day: i32) -> i32 {
    day.div_euclid(ROLLING_BLOCK_DAYS)
}

/// The per-day counters besides events per kind. Later formats add
/// fields (formats ≥ 10: the session depth ones), hence non-exhaustive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
#[non_exhaustive]
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
    /// Of the day's sessions, those of one event.
    Bounces = 7,
    /// Σ the day's sessions' durations (last − first event), ms.
    SessionMs = 8,
    /// Σ the day's sessions' events.
    SessionEvents = 9,
}

impl MoneyField {
    /// Every field.
    pub const ALL: [MoneyField; 9] = {
        use MoneyField::*;
        [Orders, Gmv, Refunds, RefundMinor, Sessions, NewUsers, Bounces, SessionMs, SessionEvents]
    };

    /// The field with byte `b`.
    pub fn from_byte(b: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|f| *f as u8 == b)
    }
}

/// Every key layout of the `metrics` column family, decoded.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum MetricKey {
    /// Users (of one chunk) with ≥ 1 event of `kind` (0 = activity) on `day`.
    DayUsers {
        /// Kind id (0 = any activity).
        kind: u32,
        /// Local day.
        day: i32,
        /// User-id chunk ([`chunk_of`]).
        chunk: u16,
    },
    /// Users (of one chunk) whose first event of `kind` (0 = first
    /// activity) fell on `day`.
    FirstUsers {
        /// Kind id (0 = any activity).
        kind: u32,
        /// Local day.
        day: i32,
        /// User-id chunk.
        chunk: u16,
    },
    /// Every existing user of one chunk.
    AllUsers {
        /// User-id chunk.
        chunk: u16,
    },
    /// Users (of one chunk) whose recorded tier is `name`.
    TierUsers {
        /// Tier name (UTF-8, ≤ 255 bytes: validated by the ledger settings).
        name: String,
        /// User-id chunk.
        chunk: u16,
    },
    /// Users (of one chunk) assigned `variant` in `experiment`.
    VariantUsers {
        /// Experiment name (≤ 64 bytes).
        experiment: String,
        /// Variant name (≤ 64 bytes).
        variant: String,
        /// User-id chunk.
        chunk: u16,
    },
    /// Users (of one chunk) assigned `variant` whose first exposure fell on `day`.
    ExposedOn {
        /// Experiment name.
        experiment: String,
        /// Variant name.
        variant: String,
        /// Local day of the first exposure.
        day: i32,
        /// User-id chunk.
        chunk: u16,
    },
    /// Users (of one chunk) exposed to more than one variant of `experiment`.
    Contaminated {
        /// Experiment name.
        experiment: String,
        /// User-id chunk.
        chunk: u16,
    },
    /// Users (of one chunk) whose first event of `kind` at or after their
    /// first exposure came a delay in delay bucket `bucket` after it.
    Converted {
        /// Experiment name.
        experiment: String,
        /// Kind id.
        kind: u32,
        /// Delay bucket (`experiments::bucket_of`).
        bucket: u16,
        /// User-id chunk.
        chunk: u16,
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
    /// Active users by day. Window 1: users active on `day` (DAU). Windows 7
    /// and 30: the change, at `day`, of the number of users active in the
    /// window ending there — +1 where a user's covered days start, −1 after
    /// they end — so WAU/MAU(d) = the sum of these up to `d` (SPEC §3,
    /// docs/metrics.md). A new active day changes at most two of them.
    Rolling {
        /// 1, 7 or 30.
        window_days: u8,
        /// Local day.
        day: i32,
    },
    /// The sum of the window-`window_days` [`MetricKey::Rolling`] changes of
    /// the days in one block of [`ROLLING_BLOCK_DAYS`]: a prefix sum reads
    /// whole blocks, then the days of the last one.
    RollingBlock {
        /// 7 or 30.
        window_days: u8,
        /// Block number ([`rolling_block`]).
        block: i32,
    },
    /// Store-wide events at local hour `hour` (0..24).
    Hour(u8),
    /// Store-wide events on weekday `weekday` (0 = Monday).
    Weekday(u8),
    /// Every event in the store.
    EventsTotal,
    /// Every event of `kind` in the store.
    EventsOfKind(u32),
    /// Users (of one chunk) with an event of `kind` (0 = any activity)
    /// carrying value `value` of dimension `dim` on `day` ([`super::dims`]).
    DimUsers {
        /// Dimension id.
        dim: u16,
        /// Kind id (0 = any activity).
        kind: u32,
        /// Local day.
        day: i32,
        /// Value id (0 = `(other)`).
        value: u32,
        /// User-id chunk.
        chunk: u16,
    },
    /// Users (of one chunk) whose first (`last`: most recent) event
    /// carrying dimension `dim` carried value `value`.
    DimTouch {
        /// Last touch (else first).
        last: bool,
        /// Dimension id.
        dim: u16,
        /// Value id (0 = `(other)`).
        value: u32,
        /// User-id chunk.
        chunk: u16,
    },
    /// A counter of value `value` of dimension `dim` on `day`.
    DimCounter {
        /// Dimension id.
        dim: u16,
        /// Local day.
        day: i32,
        /// Value id (0 = `(other)`).
        value: u32,
        /// Which counter.
        field: super::dims::DimField,
        /// Kind id of an events counter (0 for money).
        kind: u32,
    },
}

impl MetricKey {
    /// The key's bytes.
    pub fn encode(&self) -> Vec<u8> {
        match self {
            MetricKey::DayUsers { kind, day, chunk } => set_key(DAY_USERS, *kind, *day, *chunk),
            MetricKey::FirstUsers { kind, day, chunk } => set_key(FIRST_USERS, *kind, *day, *chunk),
            MetricKey::AllUsers { chunk } => {
                let mut k = vec![USER_SET, ALL_USERS_TAG];
                k.extend_from_slice(&chunk.to_be_bytes());
                k
            }
            MetricKey::TierUsers { name, chunk } => {
                let mut k = tier_users_prefix(name);
                k.extend_from_slice(&chunk.to_be_bytes());
                k
            }
            MetricKey::VariantUsers {
                experiment,
                variant,
                chunk,
            } => {
                let mut k = super::experiments::variant_prefix(experiment, variant);
                k.extend_from_slice(&chunk.to_be_bytes());
                k
            }
            MetricKey::ExposedOn {
                experiment,
                variant,
                day,
                chunk,
            } => {
                let mut k = super::experiments::exposed_on_prefix(experiment, variant);
                k.extend_from_slice(&day_asc(*day));
                k.extend_from_slice(&chunk.to_be_bytes());
                k
            }
            MetricKey::Contaminated { experiment, chunk } => {
                let mut k = super::experiments::contaminated_prefix(experiment);
                k.extend_from_slice(&chunk.to_be_bytes());
                k
            }
            MetricKey::Converted {
                experiment,
                kind,
                bucket,
                chunk,
            } => {
                let mut k = super::experiments::converted_prefix(experiment, *kind);
                k.extend_from_slice(&bucket.to_be_bytes());
                k.extend_from_slice(&chunk.to_be_bytes());
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
            MetricKey::Rolling { window_days, day } => {
                let mut k = Vec::with_capacity(7);
                k.extend_from_slice(&[COUNTER, ROLLING, *window_days]);
                k.extend_from_slice(&day_asc(*day));
                k
            }
            MetricKey::RollingBlock { window_days, block } => {
                let mut k = Vec::with_capacity(7);
                k.extend_from_slice(&[COUNTER, ROLLING_BLOCK, *window_days]);
                k.extend_from_slice(&day_asc(*block));
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
            MetricKey::DimUsers {
                dim,
                kind,
                day,
                value,
                chunk,
            } => super::dims::users_of_chunk(*dim, *kind, *day, *value, *chunk),
            MetricKey::DimCounter {
                dim,
                day,
                value,
                field,
                kind,
            } => super::dims::counter(*dim, *day, *value, *field, *kind),
            MetricKey::DimTouch {
                last,
                dim,
                value,
                chunk,
            } => super::dims::touch_users(*last, *dim, *value, *chunk),
        }
    }

    /// Decodes any key of the `metrics` column family; `None` for bytes no
    /// layout produces.
    pub fn parse(key: &[u8]) -> Option<Self> {
        let (&space, rest) = key.split_first()?;
        let (&tag, body) = rest.split_first()?;
        let be32 = |b: &[u8]| -> Option<[u8; 4]> { b.try_into().ok() };
        let be16 = |b: &[u8]| -> Option<u16> { Some(u16::from_be_bytes(b.try_into().ok()?)) };
        match (space, tag) {
            (USER_SET, DAY_USERS | FIRST_USERS) if body.len() == 10 => {
                let kind = u32::from_be_bytes(be32(&body[..4])?);
                let day = day_from_asc(be32(&body[4..8])?);
                let chunk = be16(&body[8..])?;
                Some(if tag == DAY_USERS {
                    MetricKey::DayUsers { kind, day, chunk }
                } else {
                    MetricKey::FirstUsers { kind, day, chunk }
                })
            }
            (USER_SET, ALL_USERS_TAG) if body.len() == 2 => {
                Some(MetricKey::AllUsers { chunk: be16(body)? })
            }
            (USER_SET, TIER_USERS) => {
                let (&len, rest) = body.split_first()?;
                let len = usize::from(len);
                if rest.len() != len + 2 {
                    return None;
                }
                Some(MetricKey::TierUsers {
                    name: std::str::from_utf8(&rest[..len]).ok()?.to_owned(),
                    chunk: be16(&rest[len..])?,
                })
            }
            (USER_SET, VARIANT_USERS | EXPOSED_ON | CONTAMINATED | CONVERTED) => {
                super::experiments::parse(tag, body)
            }
            (COUNTER, KIND_DAY) if body.len() == 8 => Some(MetricKey::KindDay {
                day: day_from_asc(be32(&body[..4])?),
                kind: u32::from_be_bytes(be32(&body[4..])?),
            }),
            (COUNTER, MONEY) if body.len() == 5 => Some(MetricKey::Money {
                day: day_from_asc(be32(&body[..4])?),
                field: MoneyField::from_byte(body[4])?,
            }),
            (COUNTER, ROLLING) if body.len() == 5 => Some(MetricKey::Rolling {
                window_days: body[0],
                day: day_from_asc(be32(&body[1..])?),
            }),
            (COUNTER, ROLLING_BLOCK) if body.len() == 5 => Some(MetricKey::RollingBlock {
                window_days: body[0],
                block: day_from_asc(be32(&body[1..])?),
            }),
            (USER_SET | COUNTER, super::dims::DIM) => super::dims::parse(space, body),
            (USER_SET, super::dims::FIRST_TOUCH | super::dims::LAST_TOUCH) => {
                super::dims::parse_touch(tag, body)
            }
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
        !matches!(
            self,
            MetricKey::AllUsers { .. } | MetricKey::TierUsers { .. }
        )
    }
}

fn set_key(tag: u8, kind: u32, day: i32, chunk: u16) -> Vec<u8> {
    let mut k = set_day_prefix(tag, kind, day);
    k.extend_from_slice(&chunk.to_be_bytes());
    k
}

/// `USER_SET tag kind day`: every chunk of one day's set.
pub fn set_day_prefix(tag: u8, kind: u32, day: i32) -> Vec<u8> {
    let mut k = Vec::with_capacity(12);
    k.push(USER_SET);
    k.push(tag);
    k.extend_from_slice(&kind.to_be_bytes());
    k.extend_from_slice(&day_asc(day));
    k
}

/// Users (of `user_id`'s chunk) with at least one event of `kind` (or
/// activity) on `day`.
pub fn day_users(kind: u32, day: i32, user_id: u32) -> Vec<u8> {
    set_key(DAY_USERS, kind, day, chunk_of(user_id))
}

/// Users (of `user_id`'s chunk) whose first event of `kind` (or first
/// activity) fell on `day`.
pub fn first_users(kind: u32, day: i32, user_id: u32) -> Vec<u8> {
    set_key(FIRST_USERS, kind, day, chunk_of(user_id))
}

/// The chunk of the all-users set holding `user_id`.
pub fn all_users(user_id: u32) -> Vec<u8> {
    MetricKey::AllUsers {
        chunk: chunk_of(user_id),
    }
    .encode()
}

/// The start of every chunk of the all-users set.
pub const ALL_USERS_PREFIX: [u8; 2] = [USER_SET, ALL_USERS_TAG];

/// The start of every chunk of every tier set.
pub const TIER_USERS_PREFIX: [u8; 2] = [USER_SET, TIER_USERS];

/// The chunk of the tier-`name` set holding `user_id`.
pub fn tier_users(name: &str, user_id: u32) -> Vec<u8> {
    MetricKey::TierUsers {
        name: name.to_owned(),
        chunk: chunk_of(user_id),
    }
    .encode()
}

/// The start of every chunk of the tier-`name` set. The length byte keeps
/// tier `gold` from being a prefix of tier `golden`'s chunks.
pub fn tier_users_prefix(name: &str) -> Vec<u8> {
    debug_assert!(
        name.len() <= usize::from(u8::MAX),
        "tier names are validated to fit"
    );
    let mut k = Vec::with_capacity(3 + name.len() + 2);
    k.extend_from_slice(&[USER_SET, TIER_USERS, name.len() as u8]);
    k.extend_from_slice(name.as_bytes());
    k
}

/// Active users of `day` (window 1) or the change at `day` of the users
/// active in the window ending there (windows 7, 30).
pub fn rolling(window_days: u8, day: i32) -> Vec<u8> {
    MetricKey::Rolling { window_days, day }.encode()
}

/// The block sum of the window-`window_days` changes of block `block`.
pub fn rolling_block_key(window_days: u8, block: i32) -> Vec<u8> {
    MetricKey::RollingBlock { window_days, block }.encode()
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

/// Bounds of the user-set keys under `tag` ([`DAY_USERS`] or [`FIRST_USERS`])
/// of `kind` for days `from..=to`, every chunk, as a half-open key range.
pub fn day_users_range(tag: u8, kind: u32, from: i32, to: i32) -> (Vec<u8>, Vec<u8>) {
    let start = set_day_prefix(tag, kind, from);
    let end = match to.checked_add(1) {
        Some(t) => set_day_prefix(tag, kind, t),
        None => {
            let mut e = set_day_prefix(tag, kind, 0);
            e.truncate(6);
            super::prefix_successor(&e).unwrap_or_default()
        }
    };
    (start, end)
}

/// Bounds of the window-`window_days` keys of days `from..=to` under `tag`
/// ([`ROLLING`] days or [`ROLLING_BLOCK`] blocks), half-open.
pub fn rolling_range(tag: u8, window_days: u8, from: i32, to: i32) -> (Vec<u8>, Vec<u8>) {
    let key = |d: i32| {
        let mut k = vec![COUNTER, tag, window_days];
        k.extend_from_slice(&day_asc(d));
        k
    };
    let end = match to.checked_add(1) {
        Some(t) => key(t),
        None => super::prefix_successor(&[COUNTER, tag, window_days]).unwrap_or_default(),
    };
    (key(from), end)
}

/// The byte offset of the day inside a [`day_users`]/[`first_users`] key.
pub const SET_DAY_AT: usize = 6;
/// The byte offset of the day (or block) inside rolling keys.
pub const ROLLING_DAY_AT: usize = 3;
