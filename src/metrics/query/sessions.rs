//! Session depth by day, store-wide or for any segment: sessions, bounces,
//! bounce rate, mean duration and mean events (docs/metrics.md,
//! "Sessions"). Store-wide it reads four daily counters; for a segment, its
//! users' session records (one prefix read per user).

use std::collections::BTreeMap;

use roaring::RoaringBitmap;
use serde::Serialize;

use super::*;
use crate::error::Result;
use crate::keys::activity;
use crate::keys::metrics::MoneyField;
use crate::metrics::sessions::SessionRec;
use crate::store::merge::decode_counter;
use crate::store::Cf;

/// One day of sessions (a session's day is its first event's local day).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[non_exhaustive]
pub struct SessionRow {
    /// The local day.
    pub day: i32,
    /// Sessions whose first event fell on the day.
    pub sessions: u64,
    /// Of them, sessions of one event.
    pub bounces: u64,
    /// Bounces ÷ sessions; `None` without sessions.
    pub bounce_rate: Option<f64>,
    /// Sum of the sessions' durations (last − first event), ms.
    pub duration_ms: i64,
    /// Sum of the sessions' events.
    pub events: u64,
    /// Duration ÷ sessions, ms; `None` without sessions.
    pub mean_duration_ms: Option<f64>,
    /// Events ÷ sessions; `None` without sessions.
    pub mean_events: Option<f64>,
}

impl SessionRow {
    fn new(day: i32) -> Self {
        SessionRow {
            day,
            sessions: 0,
            bounces: 0,
            bounce_rate: None,
            duration_ms: 0,
            events: 0,
            mean_duration_ms: None,
            mean_events: None,
        }
    }

    fn add(&mut self, s: &SessionRec) {
        self.sessions += 1;
        self.bounces += u64::from(s.events == 1);
        self.duration_ms = self.duration_ms.saturating_add(s.duration_ms());
        self.events += u64::from(s.events);
    }

    fn settle(mut self) -> Self {
        if self.sessions > 0 {
            let n = self.sessions as f64;
            self.bounce_rate = Some(self.bounces as f64 / n);
            self.mean_duration_ms = Some(self.duration_ms as f64 / n);
            self.mean_events = Some(self.events as f64 / n);
        }
        self
    }
}

impl Metrics<'_> {
    /// Session depth of every day of `from..=to`, of every user or of
    /// `filter`'s.
    pub fn sessions(
        &self,
        from_day: i32,
        to_day: i32,
        filter: Option<&RoaringBitmap>,
    ) -> Result<Vec<SessionRow>> {
        check_range(from_day, to_day)?;
        let mut rows: BTreeMap<i32, SessionRow> = (from_day..=to_day)
            .map(|d| (d, SessionRow::new(d)))
            .collect();
        match filter {
            None => self.session_counters((from_day, to_day), &mut rows)?,
            Some(users) => {
                for user in users {
                    self.add_sessions_of(user, &mut rows)?;
                }
            }
        }
        Ok(rows.into_values().map(SessionRow::settle).collect())
    }

    /// The days' counters (one range read of the money keys).
    fn session_counters(
        &self,
        (from_day, to_day): (i32, i32),
        rows: &mut BTreeMap<i32, SessionRow>,
    ) -> Result<()> {
        let start = keys::money(from_day, MoneyField::Orders);
        let end = keys::money(to_day.saturating_add(1), MoneyField::Orders);
        for item in self.view.range(Cf::Metrics, &start, Some(end))? {
            let (k, v) = item?;
            let Some(keys::MetricKey::Money { day, field }) = keys::MetricKey::parse(&k) else {
                return Err(corrupt(Cf::Metrics, &k, "malformed money counter key").into());
            };
            let n = decode_counter(&v)
                .ok_or_else(|| corrupt(Cf::Metrics, &k, "counter does not decode"))?;
            let Some(row) = rows.get_mut(&day) else {
                continue;
            };
            match field {
                MoneyField::Sessions => row.sessions = n.max(0) as u64,
                MoneyField::Bounces => row.bounces = n.max(0) as u64,
                MoneyField::SessionMs => row.duration_ms = n,
                MoneyField::SessionEvents => row.events = n.max(0) as u64,
                _ => {}
            }
        }
        Ok(())
    }

    /// Adds the sessions of `user` whose day is one of `rows`.
    fn add_sessions_of(&self, user: u32, rows: &mut BTreeMap<i32, SessionRow>) -> Result<()> {
        let prefix = activity::family(activity::SESSION, user);
        let end = crate::keys::prefix_successor(&prefix);
        for item in self.view.range(Cf::Activity, &prefix, end)? {
            let (k, v) = item?;
            let s = SessionRec::decode(&k, &v)?;
            if let Some(row) = rows.get_mut(&s.day) {
                row.add(&s);
            }
        }
        Ok(())
    }
}
