//! Key layouts of the `activity` column family: the aggregation engine's
//! per-user state, split so that one write rewrites only what it changes and
//! no value grows with a user's history (SPEC §6).
//!
//! Family first, then the user: a scan over one family reads only that kind
//! of record for every user in id order (RFM reads only money), and a
//! per-user scan of a family is one prefix.
//!
//! | key | value |
//! |---|---|
//! | `1 ‖ user` | the head: hours, weekdays, the first day of each kind, money totals, the last 64 days' activity, the stage mark |
//! | `2 ‖ user ‖ block` | the days of each kind in one block of 64 days, as bit masks |
//! | `3 ‖ user ‖ day` | purchases and refunds of one day |
//! | `4 ‖ user ‖ session id` | the session: first local day, first and last instants, events |
//! | `5 ‖ user` | the experiments the user has an assignment in (read first, with one batched lookup for a write's users) |
//! | `5 ‖ user ‖ experiment` | the user's assignment in one experiment (docs/metrics.md, "Experiments") |
//! | `6 ‖ user ‖ dim` | the user's first and last touch of one dimension (written by `dims`) |

use super::{day_asc, day_from_asc, user, USER_BYTES};

/// Family byte of the per-user head.
pub const HEAD: u8 = 1;
/// Family byte of the per-(kind, block) day masks.
pub const DAYS: u8 = 2;
/// Family byte of the per-day money.
pub const MONEY: u8 = 3;
/// Family byte of the sessions (first day, instants, events).
pub const SESSION: u8 = 4;
/// Family byte of the per-experiment assignments.
pub const EXPOSURE: u8 = 5;
/// Family byte of the per-dimension first and last touches.
pub const TOUCH: u8 = 6;

/// Days per day-mask block (one bit each in a `u64`).
pub const BLOCK_DAYS: i32 = 64;

/// The block a day falls in and its bit inside the block.
pub fn block_of(day: i32) -> (i32, u32) {
    (
        day.div_euclid(BLOCK_DAYS),
        day.rem_euclid(BLOCK_DAYS) as u32,
    )
}

/// The first day of block `block`.
pub fn block_start(block: i32) -> i32 {
    block.saturating_mul(BLOCK_DAYS)
}

/// Every key layout of the `activity` column family, decoded.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ActivityKey {
    /// A user's head.
    Head {
        /// Internal user id.
        user_id: u32,
    },
    /// A user's days of every kind in one block.
    Days {
        /// Internal user id.
        user_id: u32,
        /// Block number ([`block_of`]).
        block: i32,
    },
    /// A user's money on one day.
    Money {
        /// Internal user id.
        user_id: u32,
        /// Local day.
        day: i32,
    },
    /// A session (first day, instants, events).
    Session {
        /// Internal user id.
        user_id: u32,
        /// The session id (1..=128 bytes of UTF-8).
        session_id: String,
    },
    /// The experiments a user has an assignment in.
    ExposureIndex {
        /// Internal user id.
        user_id: u32,
    },
    /// A user's assignment in one experiment.
    Exposure {
        /// Internal user id.
        user_id: u32,
        /// The experiment's name (1..=64 bytes of UTF-8).
        experiment: String,
    },
    /// A user's first and last touch of dimension `dim`.
    Touch {
        /// Internal user id.
        user_id: u32,
        /// Dimension id.
        dim: u16,
    },
}

impl ActivityKey {
    /// The key's bytes.
    pub fn encode(&self) -> Vec<u8> {
        match self {
            ActivityKey::Head { user_id } => family(HEAD, *user_id),
            ActivityKey::Days { user_id, block } => {
                let mut k = family(DAYS, *user_id);
                k.extend_from_slice(&day_asc(*block));
                k
            }
            ActivityKey::Money { user_id, day } => {
                let mut k = family(MONEY, *user_id);
                k.extend_from_slice(&day_asc(*day));
                k
            }
            ActivityKey::Session {
                user_id,
                session_id,
            } => {
                let mut k = family(SESSION, *user_id);
                k.extend_from_slice(session_id.as_bytes());
                k
            }
            ActivityKey::ExposureIndex { user_id } => family(EXPOSURE, *user_id),
            ActivityKey::Exposure {
                user_id,
                experiment,
            } => exposure(*user_id, experiment),
            ActivityKey::Touch { user_id, dim } => touch(*user_id, *dim),
        }
    }

    /// Decodes any key of the `activity` column family; `None` for bytes no
    /// layout produces.
    pub fn parse(key: &[u8]) -> Option<Self> {
        let (&fam, rest) = key.split_first()?;
        let user_id = u32::from_be_bytes(rest.get(..USER_BYTES)?.try_into().ok()?);
        let body = &rest[USER_BYTES..];
        let be4 = |b: &[u8]| -> Option<[u8; 4]> { b.try_into().ok() };
        match fam {
            HEAD if body.is_empty() => Some(ActivityKey::Head { user_id }),
            DAYS if body.len() == 4 => Some(ActivityKey::Days {
                user_id,
                block: day_from_asc(be4(body)?),
            }),
            MONEY if body.len() == 4 => Some(ActivityKey::Money {
                user_id,
                day: day_from_asc(be4(body)?),
            }),
            SESSION if !body.is_empty() => Some(ActivityKey::Session {
                user_id,
                session_id: std::str::from_utf8(body).ok()?.to_owned(),
            }),
            EXPOSURE if body.is_empty() => Some(ActivityKey::ExposureIndex { user_id }),
            TOUCH if body.len() == 2 => Some(ActivityKey::Touch {
                user_id,
                dim: u16::from_be_bytes(body.try_into().ok()?),
            }),
            EXPOSURE => Some(ActivityKey::Exposure {
                user_id,
                experiment: std::str::from_utf8(body).ok()?.to_owned(),
            }),
            _ => None,
        }
    }

    /// The user the key belongs to.
    pub fn user_id(&self) -> u32 {
        match self {
            ActivityKey::Head { user_id }
            | ActivityKey::Days { user_id, .. }
            | ActivityKey::Money { user_id, .. }
            | ActivityKey::Session { user_id, .. }
            | ActivityKey::ExposureIndex { user_id }
            | ActivityKey::Exposure { user_id, .. }
            | ActivityKey::Touch { user_id, .. } => *user_id,
        }
    }
}

/// `family ‖ user`: the start of one family's records of one user.
pub fn family(fam: u8, user_id: u32) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + USER_BYTES + 8);
    k.push(fam);
    k.extend_from_slice(&user(user_id));
    k
}

/// A user's head.
pub fn head(user_id: u32) -> Vec<u8> {
    family(HEAD, user_id)
}

/// A user's days of every kind in block `block`.
pub fn days(user_id: u32, block: i32) -> Vec<u8> {
    ActivityKey::Days { user_id, block }.encode()
}

/// A user's money on `day`.
pub fn money(user_id: u32, day: i32) -> Vec<u8> {
    ActivityKey::Money { user_id, day }.encode()
}

/// A session's record.
pub fn session(user_id: u32, session_id: &str) -> Vec<u8> {
    let mut k = family(SESSION, user_id);
    k.extend_from_slice(session_id.as_bytes());
    k
}

/// The experiments `user_id` has an assignment in.
pub fn exposure_index(user_id: u32) -> Vec<u8> {
    family(EXPOSURE, user_id)
}

/// A user's assignment in `experiment`.
pub fn exposure(user_id: u32, experiment: &str) -> Vec<u8> {
    let mut k = family(EXPOSURE, user_id);
    k.extend_from_slice(experiment.as_bytes());
    k
}

/// A user's first and last touch of dimension `dim`.
pub fn touch(user_id: u32, dim: u16) -> Vec<u8> {
    let mut k = family(TOUCH, user_id);
    k.extend_from_slice(&dim.to_be_bytes());
    k
}
