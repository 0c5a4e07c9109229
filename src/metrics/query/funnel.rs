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
        let ids: Vec<Option<u32>> = steps.iter().map(|k| self.kinds.id(k)).collect();
        let sets = |i: usize, from: i32, to: i32, filter: Option<&RoaringBitmap>| {
            self.sets(DAY_USERS, ids.get(i).copied().flatten(), from, to, filter)
        };
        let read = |user: u32, from_ms: i64, to_ms: i64| -> Result<Vec<(i64, u32, u32)>> {
            let events = crate::timeline::kinds_and_times(&self.view, user, from_ms, to_ms)?;
            Ok(events.into_iter().map(|(t, k)| (t, k, u32::MAX)).collect())
        };
        self.funnel_core(&ids, &sets, &read, window_ms, (from_day, to_day), filter)
    }

    /// The funnel of step kinds `ids` whose users per day come from
    /// `step_sets(i, from, to, filter)` and whose events, for the users
    /// the day sets leave undecided, from `read(user, from_ms, to_ms)` as
    /// `(ts_ms, kind_id, mask)`: an event can be step i when its kind is
    /// `ids[i]` and bit i of its mask is set (a property filter's verdict;
    /// the day sets must hold exactly the users with such events).
    #[allow(clippy::type_complexity)]
    pub(crate) fn funnel_core(
        &self,
        ids: &[Option<u32>],
        step_sets: &(dyn Fn(usize, i32, i32, Option<&RoaringBitmap>) -> Result<BTreeMap<i32, RoaringBitmap>>
              + Sync),
        read_events: &(dyn Fn(u32, i64, i64) -> Result<Vec<(i64, u32, u32)>> + Sync),
        window_ms: i64,
        (from_day, to_day): (i32, i32),
        filter: Option<&RoaringBitmap>,
    ) -> Result<Vec<u64>> {
        check_range(from_day, to_day)?;
        if ids.is_empty() || ids.len() > MAX_FUNNEL_STEPS {
            return Err(InputError::new(
                "steps",
                Problem::OutOfRange {
                    value: ids.len() as i64,
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
        let mut counts = vec![0u64; ids.len()];
        if ids.first().copied().flatten().is_none() {
            return Ok(counts);
        }
        let window_days = i32::try_from(window_ms / DAY_MS + 1).unwrap_or(i32::MAX);
        let first_sets = step_sets(0, from_day, to_day, filter)?;
        let starters = union_range(&first_sets, from_day, to_day);
        // Each step's day sets, of starters only, over the days the funnel
        // can reach; and who did each later step kind at all in them.
        let reach_to = to_day.saturating_add(window_days);
        let mut step_days: Vec<BTreeMap<i32, RoaringBitmap>> = vec![first_sets];
        let mut later: Vec<RoaringBitmap> = Vec::new();
        for i in 1..ids.len() {
            let sets = step_sets(i, from_day, reach_to, Some(&starters))?;
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
        for i in 0..ids.len() {
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
            let mut reached_at_least = vec![0u64; ids.len()];
            for u in users {
                let events = read_events(u, from_ms, to_ms + window_ms + 1)?;
                let reached = funnel_steps(&events, ids, from_ms, to_ms, window_ms).max(1);
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

/// Steps one user reached: events are `(ts_ms, kind_id, mask)` sorted by
/// time (event j can be step i when its kind is `ids[i]` and bit i of its
/// mask is set).
/// Tries every step-1 event in `[from_ms, to_ms)` and, for each, takes the
/// earliest unused event of each next kind at or after the previous step and
/// within the window — earliest is never worse, so the greedy is exact.
fn funnel_steps(
    events: &[(i64, u32, u32)],
    ids: &[Option<u32>],
    from_ms: i64,
    to_ms: i64,
    window_ms: i64,
) -> usize {
    let mut best = 0;
    let can_be = |e: &(i64, u32, u32), i: usize| Some(e.1) == ids[i] && e.2 & (1 << i) != 0;
    for (s, e0) in events.iter().enumerate() {
        let t0 = &e0.0;
        if !can_be(e0, 0) || *t0 < from_ms || *t0 >= to_ms {
            continue;
        }
        let deadline = t0.saturating_add(window_ms);
        let mut used = vec![s];
        let mut prev = *t0;
        let mut reached = 1;
        for i in 1..ids.len() {
            let lo = events.partition_point(|(t, _, _)| *t < prev);
            let next = (lo..events.len())
                .take_while(|j| events[*j].0 <= deadline)
                .find(|j| can_be(&events[*j], i) && !used.contains(j));
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
