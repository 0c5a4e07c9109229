//! The change feed (SPEC §4a): a durable, ordered log of stage changes,
//! tier changes and points-expiry notices that consumers read with a cursor,
//! and the feed's clock (the last `advance` instant).
//!
//! Owns the entry format, the log's reads and trims, the clock's record and
//! the feed settings. Entries are produced by the subsystems whose state
//! changes (the aggregation engine for stages, the ledger for tiers and
//! notices) into the same batch as their cause; the store hands out cursors
//! at commit. Must not know how stages or tiers are computed.

use serde::{Deserialize, Serialize};

use crate::error::{CorruptionError, InputError, Result};
use crate::keys::feed as fk;
use crate::store::{decode_value, Batch, Cf, Store};

/// Most entries one read of the feed returns.
pub const MAX_READ_ENTRIES: usize = 100_000;
/// Default notice period before a lot expires, in days.
pub const DEFAULT_NOTICE_DAYS: u32 = 7;
/// Longest notice period, in days.
pub const MAX_NOTICE_DAYS: u32 = 366;

/// Why a stage changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum StageCause {
    /// Time passed (settled by `advance`).
    Time,
    /// An event was recorded (on time or late).
    Event,
    /// An identity merge moved events onto the user, or merged it away.
    Merge,
    /// The user was erased.
    Erase,
    /// The stage model was replaced.
    Model,
    /// The feature definitions or tag rules changed.
    Definitions,
}

/// How a rule tag changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum TagState {
    /// The user began to hold the tag.
    Entered,
    /// The user stopped holding it.
    Left,
}

/// What changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Change {
    /// A lifecycle stage change. `from`/`to` are `None` before a user's
    /// first activity and after its erasure (or merge into another id).
    Stage {
        /// The stage before.
        from: Option<String>,
        /// The stage after.
        to: Option<String>,
        /// The local day from which the new stage holds.
        day: i32,
        /// The local midnight starting `day`, UTC milliseconds.
        at_ms: i64,
        /// What caused it.
        cause: StageCause,
    },
    /// A rule tag began or stopped holding (docs/features.md).
    Tag {
        /// The tag.
        tag: String,
        /// Entered or left.
        state: TagState,
        /// The instant it did, UTC milliseconds.
        at_ms: i64,
        /// What caused it.
        cause: StageCause,
    },
    /// A loyalty tier change (as recorded by the ledger).
    Tier {
        /// The tier before.
        from: Option<String>,
        /// The tier after.
        to: Option<String>,
        /// When it happened.
        at_ms: i64,
    },
    /// Points of a lot will expire within the notice period.
    ExpiryNotice {
        /// The lot.
        lot: u32,
        /// Points still open in the lot when the notice was written.
        points: i64,
        /// When they expire.
        expires_at_ms: i64,
        /// The instant the notice fell due (`expires_at_ms` − notice period).
        at_ms: i64,
    },
    /// A coupon will expire within the notice period (docs/coupons.md).
    CouponExpiryNotice {
        /// The coupon's id.
        coupon: String,
        /// Its template.
        template: String,
        /// When it expires.
        expires_at_ms: i64,
        /// The instant the notice fell due (`expires_at_ms` − notice period).
        at_ms: i64,
    },
}

/// One stored feed entry (what a write appends).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// Internal user id (entries never store a user's name: an erased
    /// user's entries say nothing about who it was).
    pub user_id: u32,
    /// The change.
    pub change: Change,
    /// Whether the change took effect before the write that produced it
    /// (late events, merges, backfills): consumers should not act on it as
    /// news.
    pub retroactive: bool,
}

/// What the log stores per entry: the record and when it was written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Stored {
    /// Wall-clock time the write composed the entry, UTC milliseconds: what
    /// retention by age reads (an entry's own instant may be long past).
    written_ms: i64,
    record: Record,
}

fn wall_clock_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// One feed entry as read: its cursor, the user's current name (`None`
/// once erased) and the stored record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FeedEntry {
    /// Position in the feed; strictly increasing in commit order.
    pub cursor: u64,
    /// The user's external id, `None` when the user was erased since.
    pub user: Option<String>,
    /// Wall-clock time the entry was written, UTC milliseconds.
    pub written_ms: i64,
    /// Internal user id.
    #[serde(flatten)]
    pub record: Record,
}

/// Appends `record` to the feed in `batch`.
pub(crate) fn log(batch: &mut Batch, record: &Record) -> Result<()> {
    batch.log(crate::codec::encode(&Stored {
        written_ms: wall_clock_ms(),
        record: record.clone(),
    })?);
    Ok(())
}

/// Entries with a cursor above `after`, oldest first, at most `limit`
/// (≤ [`MAX_READ_ENTRIES`]). Names are resolved through the user records.
pub(crate) fn read(store: &Store, after: u64, limit: usize) -> Result<Vec<FeedEntry>> {
    InputError::check_count("limit", limit, MAX_READ_ENTRIES)?;
    let mut out = Vec::new();
    if limit == 0 {
        return Ok(out);
    }
    let from = fk::entry(after.saturating_add(1));
    let mut records = Vec::new();
    for item in store.range(Cf::Feed, &from, Some(vec![fk::ENTRY + 1]))? {
        let (k, v) = item?;
        let cursor = fk::entry_cursor(&k).ok_or_else(|| CorruptionError {
            cf: Cf::Feed.name(),
            what: "key",
            key: k.to_vec(),
            reason: "feed entry key does not decode".into(),
        })?;
        let stored: Stored = decode_value(Cf::Feed, &k, &v)?;
        records.push((cursor, stored));
        if records.len() >= limit {
            break;
        }
    }
    // Names are looked up together, once per user.
    let ids: std::collections::BTreeSet<u32> =
        records.iter().map(|(_, s)| s.record.user_id).collect();
    let names = crate::users::names_of(store, &ids)?;
    for (cursor, stored) in records {
        out.push(FeedEntry {
            cursor,
            user: names.get(&stored.record.user_id).cloned(),
            written_ms: stored.written_ms,
            record: stored.record,
        });
    }
    Ok(out)
}

/// Puts an expiry notice for `lot` of `user_id` and its mark into `batch`.
pub(crate) fn notice(
    batch: &mut Batch,
    user_id: u32,
    lot: u32,
    points: i64,
    expires_at_ms: i64,
    notice_ms: i64,
) -> Result<()> {
    log(
        batch,
        &Record {
            user_id,
            change: Change::ExpiryNotice {
                lot,
                points,
                expires_at_ms,
                at_ms: expires_at_ms.saturating_sub(notice_ms),
            },
            retroactive: false,
        },
    )?;
    batch.put(Cf::Feed, fk::noticed(user_id, lot), []);
    Ok(())
}

/// Appends the expiry notice of `user_id`'s coupon `coupon` (of
/// `template`, in `slot`) and marks it written.
pub(crate) fn coupon_notice(
    batch: &mut Batch,
    user_id: u32,
    slot: u32,
    coupon: (&str, &str),
    expires_at_ms: i64,
    notice_ms: i64,
) -> Result<()> {
    let (coupon, template) = coupon;
    log(
        batch,
        &Record {
            user_id,
            change: Change::CouponExpiryNotice {
                coupon: coupon.to_owned(),
                template: template.to_owned(),
                expires_at_ms,
                at_ms: expires_at_ms.saturating_sub(notice_ms),
            },
            retroactive: false,
        },
    )?;
    batch.put(Cf::Feed, fk::coupon_noticed(user_id, slot), []);
    Ok(())
}

/// Deletes every entry with a cursor at or below `through`; returns how
/// many it deleted. Cursors are never reused: each batch of deletes also
/// raises the stored highest trimmed cursor, which a reopened store hands
/// out cursors above even when no entry is left.
pub(crate) fn trim(store: &Store, through: u64) -> Result<u64> {
    let mut deleted = 0u64;
    let mut batch = Batch::new();
    let mut highest = store.get::<u64>(Cf::Feed, &fk::TRIMMED)?.unwrap_or(0);
    let until = fk::entry(through.saturating_add(1)).to_vec();
    for item in store.range(Cf::Feed, &[fk::ENTRY], Some(until))? {
        let (k, _) = item?;
        highest = highest.max(fk::entry_cursor(&k).unwrap_or(0));
        batch.delete(Cf::Feed, &k);
        deleted += 1;
        if batch.len() >= 10_000 {
            batch.put(Cf::Feed, fk::TRIMMED, crate::codec::encode(&highest)?);
            store.write(std::mem::take(&mut batch))?;
        }
    }
    if !batch.is_empty() {
        batch.put(Cf::Feed, fk::TRIMMED, crate::codec::encode(&highest)?);
        store.write(batch)?;
    }
    Ok(deleted)
}

/// Deletes the entries written before `written_before_ms` (wall clock),
/// oldest first, stopping at the first entry written at or after it; returns
/// how many it deleted. Retention by age: consumers that fell further
/// behind lose what they did not read.
pub(crate) fn trim_older(store: &Store, written_before_ms: i64) -> Result<u64> {
    let mut through = None;
    for item in store.range(Cf::Feed, &[fk::ENTRY], Some(vec![fk::ENTRY + 1]))? {
        let (k, v) = item?;
        let stored: Stored = decode_value(Cf::Feed, &k, &v)?;
        if stored.written_ms >= written_before_ms {
            break;
        }
        through = fk::entry_cursor(&k);
    }
    match through {
        Some(c) => trim(store, c),
        None => Ok(0),
    }
}

/// The next at most `limit` `(due day, user)` entries of the due index up
/// to `day`, after the entry `after`: `advance` pages through what is due
/// instead of holding every due user at once.
pub(crate) fn due_users_page(
    store: &Store,
    day: i32,
    after: Option<(i32, u32)>,
    limit: usize,
) -> Result<Vec<(i32, u32)>> {
    let last = after.map(|(d, u)| fk::due(d, u));
    let from = crate::keys::resume_at(&[fk::DUE], last.as_ref().map(|k| &k[..]));
    let mut out = Vec::new();
    for item in store.range(Cf::Feed, &from, Some(fk::due_until(day)))? {
        let (k, _) = item?;
        out.push(fk::parse_due(&k).ok_or_else(|| CorruptionError {
            cf: Cf::Feed.name(),
            what: "key",
            key: k.to_vec(),
            reason: "due key does not decode".into(),
        })?);
        if out.len() >= limit {
            break;
        }
    }
    Ok(out)
}

/// The feed's clock: the last instant `advance` moved to, how far expiry
/// notices were written, and the notice period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Clock {
    /// The `now` of the last `advance`, UTC milliseconds.
    pub now_ms: Option<i64>,
    /// Every open lot expiring at or before this instant plus the notice
    /// period has had its notice written (an `advance` that finished its
    /// notice scan moves it to its `now`).
    pub noticed_through_ms: Option<i64>,
    /// How long before a lot's expiry its notice is due, in days.
    pub notice_days: u32,
}

impl Default for Clock {
    fn default() -> Self {
        Self {
            now_ms: None,
            noticed_through_ms: None,
            notice_days: DEFAULT_NOTICE_DAYS,
        }
    }
}

impl Clock {
    /// Reads the stored clock (none before the first `advance`).
    pub(crate) fn load(store: &Store) -> Result<Self> {
        if store.db().cf_handle(Cf::Feed.name()).is_none() {
            return Ok(Self::default());
        }
        Ok(store.get(Cf::Feed, &fk::CLOCK)?.unwrap_or_default())
    }

    /// Puts the clock into `batch`.
    pub(crate) fn save(&self, batch: &mut Batch) -> Result<()> {
        batch.put(Cf::Feed, fk::CLOCK, crate::codec::encode(self)?);
        Ok(())
    }

    /// The notice period in milliseconds.
    pub fn notice_ms(&self) -> i64 {
        i64::from(self.notice_days) * crate::time::DAY_MS
    }

    /// A lot expiring at `expires_at_ms` is due its notice by now: its notice
    /// instant is at or before the clock.
    pub fn notice_due(&self, expires_at_ms: i64) -> bool {
        self.now_ms
            .is_some_and(|now| expires_at_ms.saturating_sub(self.notice_ms()) <= now)
    }

    /// The local day of the clock under `utc_offset_minutes`.
    pub fn day(&self, utc_offset_minutes: i32) -> Option<i32> {
        self.now_ms
            .map(|t| crate::time::local_day(t, utc_offset_minutes))
    }
}
