//! Forgetting: erasing one user from every aggregate (SPEC §5) and clearing
//! every derived aggregate before a rebuild.

use super::days::DaySet;
use super::sessions::SessionRec;
use super::state::{add_mask_days, BlockMasks, Deltas, EventCounts, UserHead, ACTIVITY};
use crate::error::Result;
use crate::keys::activity::{self, ActivityKey};
use crate::keys::metrics::{self as keys, MetricKey};
use crate::store::{decode_value, Batch, Cf, Store};
use crate::time::{local_day, local_hour};

/// One stored event reduced to what erasure must subtract.
pub(crate) struct ErasedEvent {
    pub kind_id: u32,
    pub ts_ms: i64,
    pub amount_minor: Option<i64>,
}

impl From<&crate::timeline::EventFacts> for ErasedEvent {
    fn from(e: &crate::timeline::EventFacts) -> Self {
        Self {
            kind_id: e.kind_id,
            ts_ms: e.ts_ms,
            amount_minor: e.amount_minor,
        }
    }
}

/// The maximal runs of days covered by windows of `window_days` ending on
/// each day of `days`: the union of `a ..= a + w − 1` over active days `a`.
pub(crate) fn covered_runs(days: &DaySet, window_days: u8) -> Vec<(i32, i32)> {
    let w = i32::from(window_days);
    let mut runs: Vec<(i32, i32)> = Vec::new();
    for a in days.iter() {
        let end = a.saturating_add(w - 1);
        match runs.last_mut() {
            Some((_, hi)) if a <= hi.saturating_add(1) => *hi = (*hi).max(end),
            _ => runs.push((a, end)),
        }
    }
    runs
}

/// What `events` added to the store-wide counters, negated.
fn event_counts(utc_offset_minutes: i32, events: &[ErasedEvent]) -> EventCounts {
    let mut counts = EventCounts::default();
    for e in events {
        let day = local_day(e.ts_ms, utc_offset_minutes);
        let hour = local_hour(e.ts_ms, utc_offset_minutes);
        counts.add(e.kind_id, e.amount_minor, day, hour, -1);
    }
    counts
}

/// Subtracts what `events` of a user being erased in steps (a job: a user
/// with more events than one write should carry) added to the store-wide
/// counters — events per kind and day, money, habits, totals — into the
/// batch that deletes them. Counters are sums, so the chunks' subtractions
/// add up to one erasure's; the per-user state goes last ([`erase`] with no
/// events).
pub(crate) fn erase_counts(
    batch: &mut Batch,
    utc_offset_minutes: i32,
    events: &[ErasedEvent],
) -> Result<()> {
    let mut deltas = Deltas::default();
    event_counts(utc_offset_minutes, events).into_deltas(&mut deltas);
    deltas.write(batch)
}

/// Deletes the session keys of `user_id` after `after` (at most `limit`),
/// each with its contribution taken off its day's counters, into `batch`;
/// returns the last key deleted (`None`: none was left). A step of an
/// erasure in steps.
pub(crate) fn erase_sessions(
    store: &Store,
    batch: &mut Batch,
    user_id: u32,
    after: Option<&[u8]>,
    limit: usize,
) -> Result<Option<Vec<u8>>> {
    let prefix = activity::family(activity::SESSION, user_id);
    let mut deltas = Deltas::default();
    let last = store.prefix_page(Cf::Activity, &prefix, after, limit, |k, v| {
        SessionRec::decode(k, v)?.contribute(&mut deltas, -1);
        batch.delete(Cf::Activity, k);
        Ok(())
    })?;
    deltas.write(batch)?;
    Ok(last)
}

/// Removes every trace of `user_id` from the shared aggregates and deletes
/// its per-user state, given all of its stored events. The caller deletes
/// the events themselves and holds the user's stripe lock.
pub(crate) fn erase(
    store: &Store,
    batch: &mut Batch,
    utc_offset_minutes: i32,
    user_id: u32,
    events: &[ErasedEvent],
    cause: crate::feed::StageCause,
) -> Result<()> {
    let mut deltas = Deltas::default();
    event_counts(utc_offset_minutes, events).into_deltas(&mut deltas);
    let head_key = activity::head(user_id);
    let head: UserHead = store.get(Cf::Activity, &head_key)?.unwrap_or_default();
    for (kind, first) in &head.firsts {
        deltas.remove_user(keys::first_users(*kind, *first, user_id), user_id);
        if *kind == ACTIVITY {
            deltas.count(keys::money(*first, keys::MoneyField::NewUsers), -1);
        }
    }
    batch.delete(Cf::Activity, head_key);
    // The feed hears that the user left its stage, and its due day goes.
    if let Some(mark) = &head.mark {
        if let Some(d) = mark.indexed {
            batch.delete(Cf::Feed, crate::keys::feed::due(d, user_id));
        }
        if mark.stage.is_some() {
            crate::feed::log(
                batch,
                &crate::feed::Record {
                    user_id,
                    change: crate::feed::Change::Stage {
                        from: mark.stage.clone(),
                        to: None,
                        day: mark.day,
                        at_ms: crate::time::local_midnight_ms(mark.day, utc_offset_minutes),
                        cause,
                    },
                    retroactive: false,
                },
            )?;
        }
    }
    let mut days: std::collections::BTreeMap<u32, DaySet> = std::collections::BTreeMap::new();
    for fam in [activity::DAYS, activity::MONEY, activity::SESSION] {
        for item in store.prefix(Cf::Activity, &activity::family(fam, user_id))? {
            let (k, v) = item?;
            match ActivityKey::parse(&k) {
                Some(ActivityKey::Days { block, .. }) => {
                    let masks: BlockMasks = decode_value(Cf::Activity, &k, &v)?;
                    for (kind, mask) in masks {
                        add_mask_days(days.entry(kind).or_default(), block, mask);
                    }
                }
                Some(ActivityKey::Session { .. }) => {
                    SessionRec::decode(&k, &v)?.contribute(&mut deltas, -1);
                }
                _ => {}
            }
            batch.delete(Cf::Activity, k);
        }
    }
    for (kind, set) in &days {
        for day in set.iter() {
            deltas.remove_user(keys::day_users(*kind, day, user_id), user_id);
            if *kind == ACTIVITY {
                deltas.count(keys::rolling(1, day), -1);
            }
        }
        if *kind == ACTIVITY {
            for w in [7, 30] {
                for (lo, hi) in covered_runs(set, w) {
                    deltas.rolling_diff(w, lo, -1);
                    deltas.rolling_diff(w, hi.saturating_add(1), 1);
                }
            }
        }
    }
    deltas.write(batch)
}

/// Deletes every aggregate derived from events, in batches of bounded size
/// (the first step of a rebuild): every `metrics` key but the all-users set
/// (owned by the users module) and the tier sets (owned by the ledger), and
/// the whole `activity` column family. Not atomic; the caller holds every
/// stripe lock and replays the events afterwards.
pub(crate) fn clear(store: &Store) -> Result<()> {
    /// Deletes per write batch while clearing.
    const CLEAR_BATCH_KEYS: usize = 10_000;
    for cf in [Cf::Metrics, Cf::Activity] {
        let mut batch = Batch::new();
        for item in store.range(cf, &[], None)? {
            let (k, _) = item?;
            if cf == Cf::Metrics && MetricKey::parse(&k).is_some_and(|p| !p.derived_from_events()) {
                continue;
            }
            batch.delete(cf, k);
            if batch.len() >= CLEAR_BATCH_KEYS {
                store.write(std::mem::take(&mut batch))?;
            }
        }
        store.write(batch)?;
    }
    // Stage marks live in the heads just cleared; their due days go too.
    store.delete_prefix(Cf::Feed, &[crate::keys::feed::DUE], CLEAR_BATCH_KEYS)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_merge_touching_windows() {
        let days: DaySet = [1, 3, 20].into_iter().collect();
        assert_eq!(covered_runs(&days, 7), vec![(1, 9), (20, 26)]);
        assert_eq!(covered_runs(&days, 1), vec![(1, 1), (3, 3), (20, 20)]);
        let adjacent: DaySet = [1, 8].into_iter().collect();
        assert_eq!(covered_runs(&adjacent, 7), vec![(1, 14)]);
    }
}
