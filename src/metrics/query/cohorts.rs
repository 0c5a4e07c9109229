//! Cohort questions: retention matrices, activation, lifecycle per period.

use roaring::RoaringBitmap;

use super::super::days::Period;
use super::super::state::ACTIVITY;
use super::*;
use crate::error::Result;
use crate::keys::metrics::{DAY_USERS, FIRST_USERS};
use crate::kinds::EventKind;

impl Metrics<'_> {
    /// The retention matrix of `q` (SPEC §3): cohort c = users whose first
    /// start event fell in period c; cell (c, n) = cohort users with a return
    /// event in period c+n (mode `On`) or in any period from c+n to the last
    /// period of the range (`OnOrAfter`). Cells past the range are left out.
    pub fn retention(
        &self,
        q: &RetentionQuery,
        filter: Option<&RoaringBitmap>,
    ) -> Result<RetentionMatrix> {
        check_range(q.from_day, q.to_day)?;
        let periods = q.period.starts(q.from_day, q.to_day);
        let (Some(&first), Some(&last)) = (periods.first(), periods.last()) else {
            return Ok(RetentionMatrix {
                period: q.period,
                mode: q.mode,
                cohorts: Vec::new(),
            });
        };
        let end = q.period.end(last);
        let starts = self.sets(
            FIRST_USERS,
            self.kind_id(q.start_kind.as_ref()),
            first,
            end,
            filter,
        )?;
        let returns = self.sets(
            DAY_USERS,
            self.kind_id(q.return_kind.as_ref()),
            first,
            end,
            None,
        )?;
        // One pass over users instead of a bitmap intersection per cell:
        // tag every cohort user with its cohort, then walk each period's
        // returners once. Cost grows with users per period, not with cells.
        const NONE: u16 = u16::MAX;
        let offsets_max = q.max_offset.saturating_add(1) as usize;
        let top = starts.values().filter_map(RoaringBitmap::max).max();
        let mut cohort_of: Vec<u16> = vec![NONE; top.map_or(0, |t| t as usize + 1)];
        let mut sizes = vec![0u64; periods.len()];
        for (i, p) in periods.iter().enumerate() {
            for (_, set) in starts.range(*p..=q.period.end(*p)) {
                sizes[i] += set.len();
                for u in set {
                    cohort_of[u as usize] = i as u16;
                }
            }
        }
        let mut counts: Vec<Vec<u64>> = (0..periods.len())
            .map(|i| vec![0u64; (periods.len() - i).min(offsets_max)])
            .collect();
        // on-or-after: the last period each cohort user returned in
        let mut last_return: Vec<u16> = Vec::new();
        if q.mode == ReturnMode::OnOrAfter {
            last_return = vec![NONE; cohort_of.len()];
        }
        // Cohort users seen so far: a return in period p can only count for
        // cohorts up to p, so iterate returners ∩ those (a word-wise AND)
        // instead of every returner.
        let mut cohorts_so_far = RoaringBitmap::new();
        for (pi, p) in periods.iter().enumerate() {
            for (_, set) in starts.range(*p..=q.period.end(*p)) {
                cohorts_so_far |= set;
            }
            let mut returners = RoaringBitmap::new();
            for (_, set) in returns.range(*p..=q.period.end(*p)) {
                returners |= set & &cohorts_so_far;
            }
            for u in &returners {
                let Some(&c) = cohort_of.get(u as usize) else {
                    continue;
                };
                if c == NONE || usize::from(c) > pi {
                    continue;
                }
                match q.mode {
                    ReturnMode::On => {
                        if let Some(cell) = counts[usize::from(c)].get_mut(pi - usize::from(c)) {
                            *cell += 1;
                        }
                    }
                    ReturnMode::OnOrAfter => last_return[u as usize] = pi as u16,
                }
            }
        }
        if q.mode == ReturnMode::OnOrAfter {
            // a user last seen at offset k counts in cells 0..=k
            for (u, &c) in cohort_of.iter().enumerate() {
                let r = last_return[u];
                if c == NONE || r == NONE {
                    continue;
                }
                let row = &mut counts[usize::from(c)];
                let k = usize::from(r - c).min(row.len().saturating_sub(1));
                if let Some(cell) = row.get_mut(k) {
                    *cell += 1;
                }
            }
            for row in &mut counts {
                for n in (0..row.len().saturating_sub(1)).rev() {
                    row[n] += row[n + 1];
                }
            }
        }
        let cohorts = periods
            .iter()
            .zip(sizes)
            .zip(counts)
            .map(|((p, size), counts)| RetentionCohort {
                cohort: *p,
                size,
                counts,
            })
            .collect();
        Ok(RetentionMatrix {
            period: q.period,
            mode: q.mode,
            cohorts,
        })
    }

    /// Activation per cohort period: of the users whose first `start_kind`
    /// event fell in the period, those with an `activation_kind` event on the
    /// start day or within `within_days` days after it.
    #[allow(clippy::too_many_arguments)]
    pub fn activation(
        &self,
        start_kind: &EventKind,
        activation_kind: &EventKind,
        within_days: u32,
        period: Period,
        from_day: i32,
        to_day: i32,
        filter: Option<&RoaringBitmap>,
    ) -> Result<Vec<ActivationRow>> {
        check_range(from_day, to_day)?;
        let within = i32::try_from(within_days.min(MAX_RANGE_DAYS as u32)).unwrap_or(0);
        let periods = period.starts(from_day, to_day);
        let (Some(&first), Some(&last)) = (periods.first(), periods.last()) else {
            return Ok(Vec::new());
        };
        let end = period.end(last);
        let starts = self.sets(FIRST_USERS, self.kinds.id(start_kind), first, end, filter)?;
        let acts = self.sets(
            DAY_USERS,
            self.kinds.id(activation_kind),
            first,
            end + within,
            None,
        )?;
        Ok(periods
            .iter()
            .map(|p| {
                let mut size = 0;
                let mut activated = 0;
                for (day, users) in starts.range(*p..=period.end(*p)) {
                    size += users.len();
                    activated += users.intersection_len(&union_range(&acts, *day, day + within));
                }
                ActivationRow {
                    cohort: *p,
                    size,
                    activated,
                    rate: ratio(activated, size),
                }
            })
            .collect())
    }

    /// New / returning / resurrecting / dormant users per period touching
    /// `from..=to`.
    pub fn lifecycle(
        &self,
        period: Period,
        from_day: i32,
        to_day: i32,
        filter: Option<&RoaringBitmap>,
    ) -> Result<Vec<LifecycleRow>> {
        check_range(from_day, to_day)?;
        let periods = period.starts(from_day, to_day);
        let (Some(&first), Some(&last)) = (periods.first(), periods.last()) else {
            return Ok(Vec::new());
        };
        let before = period.prev(first);
        let end = period.end(last);
        let active = self.sets(DAY_USERS, Some(ACTIVITY), before, end, filter)?;
        let firsts = self.sets(FIRST_USERS, Some(ACTIVITY), first, end, filter)?;
        let mut prev = union_range(&active, before, first - 1);
        let mut rows = Vec::with_capacity(periods.len());
        for p in periods {
            let cur = union_range(&active, p, period.end(p));
            let new = union_range(&firsts, p, period.end(p));
            let not_new = &cur - &new;
            rows.push(LifecycleRow {
                period: p,
                new: new.len(),
                returning: not_new.intersection_len(&prev),
                resurrecting: (&not_new - &prev).len(),
                dormant: -((&prev - &cur).len() as i64),
            });
            prev = cur;
        }
        Ok(rows)
    }
}
