//! Funnels: ordered steps within a window, from the day sets and, for the
//! users they cannot rule out, the events themselves.

use roaring::RoaringBitmap;

use super::*;
use crate::error::Result;
use crate::keys::metrics::DAY_USERS;
use crate::kinds::EventKind;
use crate::time::DAY_MS;

impl Metrics<'_> {
    /// An ordered funnel: `counts[i]` = users who did `steps[0]` on a day in
    /// `from..=to` and then `steps[1]`, … `steps[i]`, each at or after the one
    /// before (distinct events), all within `window_ms` of the first step.
    ///
    /// Bitmaps decide step 1 and rule out users missing a step kind; only the
    /// remaining users' events in the window are read.
    pub fn funnel(
        &self,
        steps: &[EventKind],
        window_ms: i64,
        from_day: i32,
        to_day: i32,
        filter: Option<&RoaringBitmap>,
    ) -> Result<Vec<u64>> {
        check_range(from_day, to_day)?;
        if steps.is_empty() || steps.len() > MAX_FUNNEL_STEPS {
            return Err(InputError::new(
                "steps",
                Problem::OutOfRange {
                    value: steps.len() as i64,
                    min: 1,
                    max: MAX_FUNNEL_STEPS as i64,
                },
            )
            .into());
        }
        if !(0..=MAX_FUNNEL_WINDOW_MS).contains(&window_ms) {
            return Err(InputError::new(
                "window_ms",
                Problem::OutOfRange {
                    value: window_ms,
                    min: 0,
                    max: MAX_FUNNEL_WINDOW_MS,
                },
            )
            .into());
        }
        let ids: Vec<Option<u32>> = steps.iter().map(|k| self.kinds.id(k)).collect();
        let mut counts = vec![0u64; steps.len()];
        let Some(first_id) = ids[0] else {
            return Ok(counts);
        };
        let window_days = i32::try_from(window_ms / DAY_MS + 1).unwrap_or(i32::MAX);
        let starters = union_range(
            &self.sets(DAY_USERS, Some(first_id), from_day, to_day, filter)?,
            from_day,
            to_day,
        );
        // Users who did each later step kind somewhere the funnel could reach.
        let mut later: Vec<RoaringBitmap> = Vec::new();
        for id in &ids[1..] {
            let sets = self.sets(
                DAY_USERS,
                *id,
                from_day,
                to_day.saturating_add(window_days),
                Some(&starters),
            )?;
            later.push(union_range(
                &sets,
                from_day,
                to_day.saturating_add(window_days),
            ));
        }
        let offset_ms = i64::from(self.view.store().settings().utc_offset_minutes) * 60_000;
        let from_ms = i64::from(from_day) * DAY_MS - offset_ms;
        let to_ms = (i64::from(to_day) + 1) * DAY_MS - offset_ms; // exclusive, for step 1
        for u in &starters {
            let possible = 1 + later.iter().take_while(|s| s.contains(u)).count();
            let reached = if possible == 1 {
                1
            } else {
                let events = crate::timeline::kinds_and_times(
                    &self.view,
                    u,
                    from_ms,
                    to_ms + window_ms + 1,
                )?;
                funnel_steps(&events, &ids, from_ms, to_ms, window_ms).max(1)
            };
            for c in counts.iter_mut().take(reached) {
                *c += 1;
            }
        }
        Ok(counts)
    }
}

/// Steps one user reached: events are `(ts_ms, kind_id)` sorted by time.
/// Tries every step-1 event in `[from_ms, to_ms)` and, for each, takes the
/// earliest unused event of each next kind at or after the previous step and
/// within the window — earliest is never worse, so the greedy is exact.
fn funnel_steps(
    events: &[(i64, u32)],
    ids: &[Option<u32>],
    from_ms: i64,
    to_ms: i64,
    window_ms: i64,
) -> usize {
    let mut best = 0;
    for (s, (t0, k0)) in events.iter().enumerate() {
        if Some(*k0) != ids[0] || *t0 < from_ms || *t0 >= to_ms {
            continue;
        }
        let deadline = t0.saturating_add(window_ms);
        let mut used = vec![s];
        let mut prev = *t0;
        let mut reached = 1;
        for id in &ids[1..] {
            let lo = events.partition_point(|(t, _)| *t < prev);
            let next = (lo..events.len())
                .take_while(|j| events[*j].0 <= deadline)
                .find(|j| Some(events[*j].1) == *id && !used.contains(j));
            match next {
                Some(j) => {
                    used.push(j);
                    prev = events[j].0;
                    reached += 1;
                }
                None => break,
            }
        }
        best = best.max(reached);
        if best == ids.len() {
            break;
        }
    }
    best
}
