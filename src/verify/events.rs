//! Events: every one decodes and belongs to a user; the event-id index names
//! exactly the events with ids. Feeds every event to the aggregate
//! re-derivation (which checks the users' sequence numbers against their
//! event counts).

use std::collections::{BTreeMap, HashMap};

use super::metrics::{Expected, RawEvent};
use super::VerifyReport;
use crate::error::Result;
use crate::keys::{self, EventKey};
use crate::kinds::KindRegistry;
use crate::store::{decode_value, Cf, Store};
use crate::timeline;
use crate::users::UserRecord;

pub(super) fn check_events(
    store: &Store,
    kinds: &KindRegistry,
    records: &HashMap<u32, UserRecord>,
    expected: &mut Expected<'_>,
    assignments: &mut super::experiments::Expected<'_>,
    r: &mut VerifyReport,
) -> Result<()> {
    let mut with_ids: BTreeMap<(u32, String), (i64, u32)> = BTreeMap::new();
    // user → one past its highest stored sequence number
    let mut next_seq: BTreeMap<u32, u32> = BTreeMap::new();
    for item in store.range(Cf::Events, &[], None)? {
        let (k, v) = item?;
        r.count(Cf::Events);
        let key = match EventKey::decode(Cf::Events.name(), &k) {
            Ok(key) => key,
            Err(e) => {
                r.problem(e.to_string());
                continue;
            }
        };
        let Some(rec) = records.get(&key.user_id) else {
            r.problem(format!("event {key:?} belongs to no user"));
            continue;
        };
        let next = next_seq.entry(key.user_id).or_default();
        *next = (*next).max(key.seq.saturating_add(1));
        match timeline::decode_event(kinds, &rec.name, &k, &v) {
            Ok(e) => {
                if let Some(id) = kinds.id(&e.event.kind) {
                    let fact = timeline::Fact::of_event(
                        &e.event,
                        key.seq,
                        id,
                        assignments.exposure_kind(),
                    );
                    assignments.add(key.user_id, fact, r)?;
                    expected.add(
                        RawEvent {
                            user_id: key.user_id,
                            kind_id: id,
                            ts_ms: key.ts_ms,
                            amount_minor: e.event.amount_minor.unwrap_or(0),
                            session_id: e.event.session_id.clone(),
                            seq: key.seq,
                        },
                        r,
                    )?;
                }
                if let Some(eid) = e.event.event_id {
                    with_ids.insert((key.user_id, eid), (key.ts_ms, key.seq));
                }
            }
            Err(e) => r.problem(e.to_string()),
        }
    }
    for item in store.range(Cf::EventIds, &[], None)? {
        let (k, v) = item?;
        r.count(Cf::EventIds);
        if k.len() == keys::USER_BYTES {
            check_sequence(&k, &v, &mut next_seq, r);
            continue;
        }
        let (user_id, eid) = match keys::split_user_and_name(Cf::EventIds.name(), &k) {
            Ok(x) => x,
            Err(e) => {
                r.problem(e.to_string());
                continue;
            }
        };
        // Format 4 writes an empty value; stores migrated from older
        // formats keep the (ts, seq) of the event, which must then match.
        let at = if v.is_empty() {
            None
        } else {
            match decode_value::<(i64, u32)>(Cf::EventIds, &k, &v) {
                Ok(at) => Some(at),
                Err(e) => {
                    r.problem(e.to_string());
                    continue;
                }
            }
        };
        match (with_ids.remove(&(user_id, eid.clone())), at) {
            (Some(_), None) => {}
            (Some(found), Some(at)) if found == at => {}
            (Some(found), Some(at)) => r.problem(format!(
                "event id {eid:?} of user {user_id} indexed at {at:?}, stored at {found:?}"
            )),
            (None, _) => r.problem(format!(
                "event id {eid:?} of user {user_id} indexed but no such event"
            )),
        }
    }
    for ((user_id, eid), _) in with_ids {
        r.problem(format!("event id {eid:?} of user {user_id} not indexed"));
    }
    // (users whose sequence record was met were removed above)
    for (user_id, next) in next_seq {
        r.problem(format!(
            "user {user_id} has events up to sequence {} but no sequence record",
            next.saturating_sub(1)
        ));
    }
    Ok(())
}

/// A user's sequence record (primary: the next event's number) must be one
/// past its highest stored sequence number, so no later write can reuse
/// one. Removes the user from `next_seq`.
fn check_sequence(k: &[u8], v: &[u8], next_seq: &mut BTreeMap<u32, u32>, r: &mut VerifyReport) {
    let user_id = match keys::user_of(Cf::EventIds.name(), k) {
        Ok(u) => u,
        Err(e) => return r.problem(e.to_string()),
    };
    let stored: u32 = match decode_value(Cf::EventIds, k, v) {
        Ok(s) => s,
        Err(e) => return r.problem(e.to_string()),
    };
    let wanted = next_seq.remove(&user_id).unwrap_or(0);
    if stored != wanted {
        r.problem(format!(
            "user {user_id}'s sequence record says the next event is {stored}, \
             its stored events say {wanted}"
        ));
    }
}
