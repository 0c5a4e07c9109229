//! Sessions with their depth (docs/metrics.md, "Sessions"): one record per
//! (user, session id) in the `activity` family — its first event's local
//! day, first and last event instants and event count — and per day the
//! counters the records sum to (sessions, bounces, duration, events).
//!
//! A record is rewritten whole by every write that adds one of its events,
//! its old contribution taken off the counters and the new one put on, so
//! a late earlier event moves a session's day and lengthens it exactly.
//! Erasure takes every record's contribution off. Owns no key layout (see
//! `keys::activity::session`, `keys::metrics::money`).

use serde::{Deserialize, Serialize};

use std::collections::BTreeMap;

use super::deltas::Deltas;
use crate::codec;
use crate::error::{CorruptionError, Result};
use crate::keys::activity;
use crate::keys::metrics::{self as keys, MoneyField};
use crate::store::{Batch, Cf, Store};
use crate::time::local_day;

/// One session of one user: what its events give.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SessionRec {
    /// Local day of its first event.
    pub day: i32,
    /// Instant of its first event, ms.
    pub first_ms: i64,
    /// Instant of its last event, ms.
    pub last_ms: i64,
    /// Its events.
    pub events: u32,
}

impl SessionRec {
    /// A session of one event at `ts_ms` on local day `day`.
    pub fn start(day: i32, ts_ms: i64) -> Self {
        SessionRec {
            day,
            first_ms: ts_ms,
            last_ms: ts_ms,
            events: 1,
        }
    }

    /// Adds an event at `ts_ms` (local day `day`), in any order.
    pub fn add(&mut self, day: i32, ts_ms: i64) {
        if ts_ms < self.first_ms {
            self.first_ms = ts_ms;
            self.day = day;
        }
        self.last_ms = self.last_ms.max(ts_ms);
        self.events = self.events.saturating_add(1);
    }

    /// Last − first event instant, ms.
    pub fn duration_ms(&self) -> i64 {
        self.last_ms.saturating_sub(self.first_ms)
    }

    /// Puts the session on (`sign` 1) or takes it off (−1) its day's counters.
    pub fn contribute(&self, deltas: &mut Deltas, sign: i64) {
        let day = self.day;
        deltas.count(keys::money(day, MoneyField::Sessions), sign);
        if self.events == 1 {
            deltas.count(keys::money(day, MoneyField::Bounces), sign);
        }
        deltas.count(
            keys::money(day, MoneyField::SessionMs),
            sign.saturating_mul(self.duration_ms()),
        );
        deltas.count(
            keys::money(day, MoneyField::SessionEvents),
            sign.saturating_mul(i64::from(self.events)),
        );
    }

    /// The stored value: byte [`codec::FORMAT_V2`] (byte 1 was the first
    /// day alone, formats ≤ 9).
    pub fn encode(&self) -> Result<Vec<u8>> {
        // The instants order: a record whose last precedes its first would
        // put a negative duration on the counters.
        if self.last_ms < self.first_ms || self.events == 0 {
            return Err(crate::error::Error::Internal {
                what: format!("session record out of order: {self:?}"),
            });
        }
        codec::encode_as(codec::FORMAT_V2, self)
    }

    /// Reads a stored record (`key` for the error).
    pub fn decode(key: &[u8], value: &[u8]) -> Result<Self> {
        let rec: SessionRec = codec::decode_format(value, codec::FORMAT_V2)
            .map_err(|e| corrupt(key, &e.to_string()))?;
        if rec.last_ms < rec.first_ms || rec.events == 0 {
            return Err(corrupt(key, "session's last event precedes its first").into());
        }
        Ok(rec)
    }
}

/// A session record as a format-9 store kept it or as kept now.
pub(crate) enum StoredSession {
    /// Format ≤ 9: its first day only.
    FirstDay(i32),
    /// Today's record.
    Full(SessionRec),
}

impl StoredSession {
    /// Reads a record of either layout (the migration's read).
    pub fn decode(key: &[u8], value: &[u8]) -> Result<Self> {
        match value.first() {
            Some(&codec::FORMAT_V2) => Ok(StoredSession::Full(SessionRec::decode(key, value)?)),
            _ => codec::decode::<i32>(value)
                .map(StoredSession::FirstDay)
                .map_err(|e| corrupt(key, &e.to_string()).into()),
        }
    }

    /// Takes the record's contribution off the counters.
    pub fn take_off(&self, deltas: &mut Deltas) {
        match self {
            StoredSession::FirstDay(day) => {
                deltas.count(keys::money(*day, MoneyField::Sessions), -1);
            }
            StoredSession::Full(rec) => rec.contribute(deltas, -1),
        }
    }
}

/// Re-derives the session records of `users` from their events: every
/// stored record's contribution taken off the counters and deleted, every
/// derived one's put on and written. The migration from format 9 (whose
/// records held the first day alone); idempotent per user, so a resumed
/// step may repeat a page.
pub(crate) fn rederive(
    store: &Store,
    utc_offset_minutes: i32,
    users: &[u32],
    batch: &mut Batch,
) -> Result<()> {
    let mut deltas = Deltas::default();
    for &user in users {
        for item in store.prefix(Cf::Activity, &activity::family(activity::SESSION, user))? {
            let (k, v) = item?;
            StoredSession::decode(&k, &v)?.take_off(&mut deltas);
            batch.delete(Cf::Activity, k);
        }
        let mut derived: BTreeMap<String, SessionRec> = BTreeMap::new();
        crate::timeline::for_user_events(store, user, i64::MIN, i64::MAX, |key, value| {
            if let Some(s) = value.session_id {
                let day = local_day(key.ts_ms, utc_offset_minutes);
                match derived.get_mut(&s) {
                    Some(rec) => rec.add(day, key.ts_ms),
                    None => {
                        derived.insert(s, SessionRec::start(day, key.ts_ms));
                    }
                }
            }
            Ok(true)
        })?;
        for (s, rec) in derived {
            rec.contribute(&mut deltas, 1);
            batch.put(Cf::Activity, activity::session(user, &s), rec.encode()?);
        }
    }
    deltas.write(batch)
}

fn corrupt(key: &[u8], reason: &str) -> CorruptionError {
    CorruptionError {
        cf: Cf::Activity.name(),
        what: "value",
        key: key.to_vec(),
        reason: format!("session record: {reason}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_late_earlier_event_moves_the_day_and_lengthens_the_session() {
        let mut s = SessionRec::start(10, 5_000);
        s.add(10, 9_000);
        s.add(9, 1_000);
        assert_eq!(
            (s.day, s.first_ms, s.last_ms, s.events),
            (9, 1_000, 9_000, 3)
        );
        assert_eq!(s.duration_ms(), 8_000);
        let key = activity::session(1, "s");
        let bytes = s.encode().unwrap_or_default();
        assert_eq!(SessionRec::decode(&key, &bytes).ok(), Some(s));
        // a format-9 record is its first day behind byte 1
        let old = codec::encode(&9i32).unwrap_or_default();
        assert!(matches!(
            StoredSession::decode(&key, &old),
            Ok(StoredSession::FirstDay(9))
        ));
        assert!(SessionRec::decode(&key, &old).is_err());
    }
}
