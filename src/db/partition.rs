//! The partitioned deployment's side of a store (SPEC §7): its partition and
//! the log positions written with the events they cover.

use super::Db;
use crate::error::Result;
use crate::keys::meta;
use crate::partition::{LogPosition, Partition};
use crate::store::Cf;
use crate::timeline::{Event, RecordOutcome};

impl Db {
    /// Which partition of a deployment this store is ([`Partition::WHOLE`]
    /// when it is not partitioned).
    pub fn partition(&self) -> Partition {
        self.store.partition()
    }

    /// The stored position in `topic`'s log partition `partition`: the
    /// offset after the last message recorded, `None` before the first.
    pub fn log_position(&self, topic: &str, partition: i32) -> Result<Option<i64>> {
        self.store.get(Cf::Meta, &meta::source(topic, partition))
    }

    /// Records `events` and stores `position` in the same atomic write — the
    /// exactly-once step of a log consumer: after a crash the store's
    /// position says where to resume, and a write whose position is not
    /// past the stored one changes nothing and returns `None` (its messages
    /// were recorded before). An empty `events` only moves the position
    /// (a run of messages that were all skipped).
    ///
    /// ```
    /// # fn main() -> Result<(), stickydb::Error> {
    /// use stickydb::partition::LogPosition;
    /// let dir = tempfile::tempdir()?;
    /// let db = stickydb::Db::create(dir.path(), stickydb::Options::default())?;
    /// let at = |next_offset| LogPosition { topic: "events".into(), partition: 0, next_offset };
    /// let batch = [stickydb::Event::new("alice", "view", 1_700_000_000_000)];
    /// assert!(db.record_batch_at(&batch, &at(1))?.is_some());
    /// assert!(db.record_batch_at(&batch, &at(1))?.is_none()); // a replay
    /// assert_eq!(db.event_count()?, 1);
    /// assert_eq!(db.log_position("events", 0)?, Some(1));
    /// # Ok(()) }
    /// ```
    pub fn record_batch_at(
        &self,
        events: &[Event],
        position: &LogPosition,
    ) -> Result<Option<Vec<RecordOutcome>>> {
        position.validate()?;
        self.writer().check_not_nested()?;
        let _one = self.position_lock.lock();
        let stored = self.log_position(&position.topic, position.partition)?;
        if stored.is_some_and(|s| position.next_offset <= s) {
            return Ok(None);
        }
        self.writer().record_batch(events, Some(position)).map(Some)
    }
}

/// Most events one handover carries (a Kafka message stays near 1 MB at a
/// hundred bytes an event).
pub const MAX_HANDOVER_EVENTS: usize = 10_000;

/// A cross-partition identity merge on its way through the log (SPEC §7):
/// `from`'s history, for the partition that owns `into`.
///
/// Moved events are renamed to `into`; an event without an id gets
/// `MERGE_ID/#SEQ` (its sequence number in `from`'s history), so recording
/// a handover twice — a replayed log, a retried producer — records each
/// event once. An event whose id `into` already holds is a duplicate, as in
/// a merge within one store (docs/identity.md).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct Handover {
    /// The caller's merge id.
    pub merge_id: String,
    /// The merged id (in the sending partition).
    pub from: String,
    /// The id it is merged into (in the receiving partition).
    pub into: String,
    /// `from`'s events, oldest first, renamed to `into`.
    pub events: Vec<Event>,
    /// `from`'s next event sequence number when the handover was read:
    /// [`Db::finish_handover`] refuses when `from` recorded events since,
    /// which would otherwise be erased without being handed over. `None`
    /// (handovers written before it existed) skips the check.
    #[serde(default)]
    pub from_next_seq: Option<u32>,
}

impl Db {
    /// Step 1 of a cross-partition merge, in `from`'s partition: the
    /// handover carrying `from`'s history to `into`'s partition, or `None`
    /// when this merge id was handed over here before (replays end here).
    /// Nothing is written: the caller puts the handover in the log, then
    /// calls [`Db::finish_handover`].
    ///
    /// Refused when `into` belongs to this store (use [`Db::merge`]), when
    /// neither id is anonymous and `force` is not set, and when `from`
    /// holds what cannot travel as events: a points account (earned,
    /// redeemed or referral points), or more than [`MAX_HANDOVER_EVENTS`]
    /// events.
    pub fn handover(
        &self,
        from: &str,
        into: &str,
        merge_id: &str,
        force: bool,
    ) -> Result<Option<Handover>> {
        crate::users::check_merge_id(merge_id)?;
        for u in [from, into] {
            crate::users::check_user(u).map_err(|p| crate::InputError::new("user", p))?;
        }
        if self
            .store
            .get_raw(Cf::Meta, &meta::handed_over(merge_id))?
            .is_some()
        {
            return Ok(None);
        }
        let refuse = |reason: &str| -> crate::Error {
            crate::MergeError::Handover {
                from: from.to_owned(),
                into: into.to_owned(),
                reason: reason.to_owned(),
            }
            .into()
        };
        if self.partition().owns(into) {
            return Err(refuse("both live in this partition: merge them here"));
        }
        let identity = self.identity_settings();
        if !force && !identity.is_anonymous(from) && !identity.is_anonymous(into) {
            return Err(crate::MergeError::BothIdentified {
                from: from.to_owned(),
                into: into.to_owned(),
            }
            .into());
        }
        match self.resolve(from)? {
            None => {
                return Err(crate::Error::UnknownUser {
                    user: from.to_owned(),
                })
            }
            // Merged here before: an alias names its target, whose history
            // is not `from`'s to give away.
            Some(crate::users::NameEntry::Alias { into: target, .. }) => {
                return Err(crate::MergeError::AlreadyMerged {
                    from: from.to_owned(),
                    into: target,
                }
                .into())
            }
            Some(crate::users::NameEntry::User(_)) => {}
        }
        let from_id = self
            .user_id(from)?
            .ok_or_else(|| crate::Error::UnknownUser {
                user: from.to_owned(),
            })?;
        // Read before the events: an event recorded after this read makes
        // `finish_handover` refuse rather than erase it unhanded.
        let from_next_seq = crate::timeline::stored_next_seq(&self.store, from_id)?;
        if self.account(from)?.is_some() {
            return Err(refuse(
                "a points account does not travel between partitions",
            ));
        }
        if !self.coupons(from)?.is_empty() {
            return Err(refuse("coupons do not travel between partitions"));
        }
        let mut stored = self.timeline(from, i64::MIN, i64::MAX, MAX_HANDOVER_EVENTS + 1)?;
        if stored.len() > MAX_HANDOVER_EVENTS {
            return Err(refuse(&format!(
                "more than {MAX_HANDOVER_EVENTS} events to hand over"
            )));
        }
        stored.reverse();
        let events = stored
            .into_iter()
            .map(|s| {
                let mut e = s.event;
                e.user = into.to_owned();
                if e.event_id.is_none() {
                    e.event_id = Some(format!("{merge_id}/#{}", s.seq));
                }
                e
            })
            .collect();
        Ok(Some(Handover {
            merge_id: merge_id.to_owned(),
            from: from.to_owned(),
            into: into.to_owned(),
            events,
            from_next_seq: Some(from_next_seq),
        }))
    }

    /// Step 2, in `from`'s partition, once the handover is safely in the
    /// log: erases `from`, marks the merge id handed over and `from` as
    /// moved, in one atomic write. Returns whether `from` was still here (a
    /// replay finds it gone). From then on an event of `from` is refused
    /// with [`crate::Problem::Moved`] naming `into` (a consumer forwards it
    /// to `into`'s partition as `into`'s). Refused with
    /// [`crate::MergeError::Handover`], nothing written, when `from`
    /// recorded events after [`Db::handover`] read its history: they would
    /// be erased without being handed over (make the handover again).
    pub fn finish_handover(&self, handover: &Handover) -> Result<bool> {
        // The merge-id mark only needs to exist: it names nobody, so an
        // erasure has nothing to find in it.
        let marks = [
            (
                meta::handed_over(&handover.merge_id),
                crate::codec::encode(&true)?,
            ),
            (
                meta::moved(&handover.from),
                crate::codec::encode(&handover.into)?,
            ),
        ];
        self.writer()
            .erase_user_marking(&handover.from, &marks, handover.from_next_seq)
    }

    /// The user of another partition that `name` was handed over to, if it
    /// was (its events and erasure belong there).
    pub fn moved_to(&self, name: &str) -> Result<Option<String>> {
        if self.partition().count <= 1 {
            return Ok(None);
        }
        self.store.get(Cf::Meta, &meta::moved(name))
    }

    /// The receiving side, in `into`'s partition: records the handover's
    /// events under `into`. Recording it again records nothing (the moved
    /// events' ids are fixed by the merge id). Returns the events recorded.
    pub fn accept_handover(&self, handover: &Handover) -> Result<u64> {
        crate::error::InputError::check_count(
            "handover.events",
            handover.events.len(),
            MAX_HANDOVER_EVENTS,
        )?;
        if let Some(i) = handover.events.iter().position(|e| e.user != handover.into) {
            return Err(crate::InputError::new(
                "handover.events.user",
                crate::Problem::Unparsable {
                    reason: format!("event {i} is not {:?}'s", handover.into),
                },
            )
            .into());
        }
        let mut recorded = 0;
        for chunk in handover.events.chunks(crate::timeline::MAX_BATCH_EVENTS) {
            recorded += self
                .record_batch(chunk)?
                .iter()
                .filter(|o| matches!(o, RecordOutcome::Recorded { .. }))
                .count() as u64;
        }
        Ok(recorded)
    }
}
