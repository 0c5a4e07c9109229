//! Funnels: ordered steps within a window, from the day sets and, for the
//! users they cannot rule out, the events themselves.

use std::collections::BTreeMap;

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
        let first_sets = self.sets(DAY_USERS, Some(first_id), from_day, to_day, filter)?;
        let starters = union_range(&first_sets, from_day, to_day);
        // Each step's day sets, of starters only, over the days the funnel
        // can reach; and who did each later step kind at all in them.
        let reach_to = to_day.saturating_add(window_days);
        let mut step_days: Vec<BTreeMap<i32, RoaringBitmap>> = vec![first_sets];
        let mut later: Vec<RoaringBitmap> = Vec::new();
        for id in &ids[1..] {
            let sets = self.sets(DAY_USERS, *id, from_day, reach_to, Some(&starters))?;
            later.push(union_range(&sets, from_day, reach_to));
            step_days.push(sets);
        }
        // Day-level bounds first (bitmap algebra over those day sets): who
        // surely reaches each step (steps on strictly later days, all within
        // the window whatever the times of day) and who possibly does (steps
        // on the same or later days, within the window's days plus one).
        // Only users between the two need their events read.
        let sure_span = i32::try_from((window_ms + 1) / DAY_MS - 1).unwrap_or(i32::MAX);
        let maybe_span = i32::try_from(window_ms / DAY_MS + 1).unwrap_or(i32::MAX);
        // the two bounds are independent: one per core
        let (sure, maybe) = std::thread::scope(|sc| {
            let maybe = sc.spawn(|| chain_reach(&step_days, from_day, to_day, maybe_span, false));
            let sure = chain_reach(&step_days, from_day, to_day, sure_span, true);
            (sure, maybe.join())
        });
        let maybe = maybe.map_err(|_| crate::error::Error::internal("a funnel thread panicked"))?;
        let offset = self.view.store().settings().utc_offset_minutes;
        let from_ms = crate::time::local_midnight_ms(from_day, offset);
        let to_ms = crate::time::local_midnight_ms(to_day + 1, offset); // exclusive, for step 1
                                                                        // Nested sets, one per step: who possibly reached it (did every
                                                                        // kind so far, and a day-level chain fits), who surely did. A user
                                                                        // reached step i surely, or its events decide.
        let mut possible = starters.clone();
        let mut uncertain = RoaringBitmap::new();
        for i in 0..steps.len() {
            if i > 0 {
                possible &= &later[i - 1];
                possible &= &maybe[i];
            }
            uncertain |= &possible - &sure[i];
        }
        for (i, c) in counts.iter_mut().enumerate() {
            *c = sure[i].difference_len(&uncertain);
        }
        // The undecided users' events, read on two threads (halves by id).
        let read = |users: &mut dyn Iterator<Item = u32>| -> Result<Vec<u64>> {
            let mut reached_at_least = vec![0u64; steps.len()];
            for u in users {
                let events = crate::timeline::kinds_and_times(
                    &self.view,
                    u,
                    from_ms,
                    to_ms + window_ms + 1,
                )?;
                let reached = funnel_steps(&events, &ids, from_ms, to_ms, window_ms).max(1);
                for c in reached_at_least.iter_mut().take(reached) {
                    *c += 1;
                }
            }
            Ok(reached_at_least)
        };
        let half = uncertain.len() / 2;
        let (a, b) = std::thread::scope(|sc| {
            let other = sc.spawn(|| read(&mut uncertain.iter().skip(half as usize)));
            let mine = read(&mut uncertain.iter().take(half as usize));
            (mine, other.join())
        });
        let b = b.map_err(|_| crate::error::Error::internal("a funnel thread panicked"))?;
        for part in [a?, b?] {
            for (c, n) in counts.iter_mut().zip(part) {
                *c += n;
            }
        }
        Ok(counts)
    }
}

/// Users who reach each step at day level, one set per step: a chain of
/// step days `a1 ≤ a2 ≤ …` (`<` when `strict`) with `a1` in `from..=to`
/// and every later day at most `span` days after `a1`. `days[i]` are step
/// `i`'s day sets.
fn chain_reach(
    days: &[BTreeMap<i32, RoaringBitmap>],
    from: i32,
    to: i32,
    span: i32,
    strict: bool,
) -> Vec<RoaringBitmap> {
    let mut reach = vec![RoaringBitmap::new(); days.len()];
    let Some(first) = days.first() else {
        return reach;
    };
    for (a1, start) in first.range(from..=to) {
        // by_day[d]: users whose chain so far ends on day d
        let mut by_day: BTreeMap<i32, RoaringBitmap> = BTreeMap::new();
        by_day.insert(*a1, start.clone());
        reach[0] |= start;
        for (i, step) in days.iter().enumerate().skip(1) {
            if span < 0 {
                break; // no later day fits: only the first step is sure
            }
            let mut next: BTreeMap<i32, RoaringBitmap> = BTreeMap::new();
            // users whose chain reached some day ≤ (or <) b
            let mut so_far = RoaringBitmap::new();
            let mut prev = by_day.iter().peekable();
            for (b, set) in step.range(*a1..=a1.saturating_add(span)) {
                while let Some((_, s)) =
                    prev.next_if(|(d, _)| if strict { *d < b } else { *d <= b })
                {
                    so_far |= s;
                }
                let got = set & &so_far;
                if !got.is_empty() {
                    reach[i] |= &got;
                    next.insert(*b, got);
                }
            }
            if next.is_empty() {
                break;
            }
            by_day = next;
        }
    }
    reach
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
