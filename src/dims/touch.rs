//! First and last touch: per user and dimension, the value on the user's
//! first event carrying the dimension and on its most recent (by instant,
//! then sequence), kept in one record (`activity` family 6) and in the
//! first- and last-touch user sets the `first:`/`last:` atoms read. A late
//! earlier event moves the first touch; erasure takes the user out; a
//! merge is the erasure of the visitor and its events recorded again.

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use super::write::DimDeltas;
use crate::codec;
use crate::error::Result;
use crate::keys::activity;
use crate::keys::metrics::chunk_of;
use crate::store::{decode_value, Batch, Cf, Store};

/// An event's place and value: `(ts_ms, seq, value id)`.
pub(crate) type At = (i64, u32, u32);

/// One user's touches of one dimension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Touch {
    pub first: At,
    pub last: At,
}

impl Touch {
    fn of(at: At) -> Touch {
        Touch {
            first: at,
            last: at,
        }
    }

    fn with(self, other: Touch) -> Touch {
        let place = |a: &At| (a.0, a.1);
        Touch {
            first: if place(&other.first) < place(&self.first) {
                other.first
            } else {
                self.first
            },
            last: if place(&other.last) > place(&self.last) {
                other.last
            } else {
                self.last
            },
        }
    }
}

/// The touches one write's events make, per (user, dimension), merged
/// with the stored ones at its end (one batched read).
#[derive(Debug, Default)]
pub(crate) struct Touches {
    seen: FxHashMap<(u32, u16), Touch>,
}

impl Touches {
    /// Notes an event of `user_id` carrying value `value` of `dim`.
    pub fn note(&mut self, user_id: u32, dim: u16, at: At) {
        let t = Touch::of(at);
        self.seen
            .entry((user_id, dim))
            .and_modify(|x| *x = x.with(t))
            .or_insert(t);
    }

    /// Puts every changed record and the set moves into `batch`/`deltas`.
    pub fn finish(self, store: &Store, deltas: &mut DimDeltas, batch: &mut Batch) -> Result<()> {
        if self.seen.is_empty() {
            return Ok(());
        }
        let mut seen: Vec<((u32, u16), Touch)> = self.seen.into_iter().collect();
        seen.sort_unstable_by_key(|(k, _)| *k);
        let keys: Vec<Vec<u8>> = seen
            .iter()
            .map(|((u, d), _)| activity::touch(*u, *d))
            .collect();
        let stored = store.get_raw_sorted(Cf::Activity, &keys)?;
        for ((((user_id, dim), new), key), old) in seen.into_iter().zip(&keys).zip(stored) {
            let old: Option<Touch> = match old {
                Some(bytes) => Some(decode_value(Cf::Activity, key, &bytes)?),
                None => None,
            };
            let now = old.map_or(new, |o| o.with(new));
            if old == Some(now) {
                continue;
            }
            batch.put(Cf::Activity, key, codec::encode(&now)?);
            deltas.move_touch(user_id, dim, old, now);
        }
        Ok(())
    }
}

impl Touches {
    /// What the noted touches give on their own (`verify`): their sets
    /// into `deltas`, their records by key.
    pub fn expected(self, deltas: &mut DimDeltas) -> std::collections::BTreeMap<Vec<u8>, Touch> {
        let mut out = std::collections::BTreeMap::new();
        for ((user_id, dim), t) in self.seen {
            deltas.move_touch(user_id, dim, None, t);
            out.insert(activity::touch(user_id, dim), t);
        }
        out
    }
}

/// Compares every stored touch record with `want`; returns what differs.
pub(crate) fn check(
    store: &Store,
    mut want: std::collections::BTreeMap<Vec<u8>, Touch>,
) -> Result<Vec<String>> {
    let mut problems = Vec::new();
    for item in store.range(
        Cf::Activity,
        &[activity::TOUCH],
        Some(vec![activity::TOUCH + 1]),
    )? {
        let (k, v) = item?;
        let stored: Touch = decode_value(Cf::Activity, &k, &v)?;
        match want.remove(&k[..]) {
            Some(t) if t == stored => {}
            other => problems.push(format!(
                "dimensions: touch record {:?} is {stored:?}, the events give {other:?}",
                activity::ActivityKey::parse(&k)
            )),
        }
    }
    for (k, t) in want {
        problems.push(format!(
            "dimensions: touch record {:?} missing, the events give {t:?}",
            activity::ActivityKey::parse(&k)
        ));
    }
    Ok(problems)
}

/// Deletes every touch record of dimension `dim` (a drop).
pub(crate) fn drop_records(store: &Store, dim: u16) -> Result<()> {
    let mut batch = Batch::new();
    for item in store.range(
        Cf::Activity,
        &[activity::TOUCH],
        Some(vec![activity::TOUCH + 1]),
    )? {
        let (k, _) = item?;
        if matches!(activity::ActivityKey::parse(&k), Some(activity::ActivityKey::Touch { dim: d, .. }) if d == dim)
        {
            batch.delete(Cf::Activity, k);
            if batch.len() >= 10_000 {
                store.write(std::mem::take(&mut batch))?;
            }
        }
    }
    store.write(batch)
}

/// Takes `user_id` out of every touch set and deletes its touch records
/// (erasure, or the visitor of a merge).
pub(crate) fn forget(
    store: &Store,
    user_id: u32,
    deltas: &mut DimDeltas,
    batch: &mut Batch,
) -> Result<()> {
    let prefix = activity::family(activity::TOUCH, user_id);
    for item in store.prefix(Cf::Activity, &prefix)? {
        let (k, v) = item?;
        let Some(activity::ActivityKey::Touch { dim, .. }) = activity::ActivityKey::parse(&k)
        else {
            continue;
        };
        let t: Touch = decode_value(Cf::Activity, &k, &v)?;
        deltas.touch_user((false, dim, t.first.2, chunk_of(user_id)), user_id, -1);
        deltas.touch_user((true, dim, t.last.2, chunk_of(user_id)), user_id, -1);
        batch.delete(Cf::Activity, k);
    }
    Ok(())
}
