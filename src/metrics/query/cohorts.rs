//! Cohort questions: retention matrices, activation, lifecycle per period.

use roaring::RoaringBitmap;

use super::super::days::Period;
use super::super::dense::Bits;
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
        let starts =
            self.chunk_values(FIRST_USERS, self.kind_id(q.start_kind.as_ref()), first, end)?;
        let returns =
            self.chunk_values(DAY_USERS, self.kind_id(q.return_kind.as_ref()), first, end)?;
        // Chunk by chunk, each period's cohort and returners as dense bits:
        // a cell is one AND-and-count over 1 024 words per chunk, whatever
        // the number of users in it (walking users one by one cost twice as
        // much at a million users). The buffers are reused across chunks.
        let offsets_max = q.max_offset.saturating_add(1) as usize;
        let mut sizes = vec![0u64; periods.len()];
        let mut counts: Vec<Vec<u64>> = (0..periods.len())
            .map(|i| vec![0u64; (periods.len() - i).min(offsets_max)])
            .collect();
        let period_of = |day: i32| periods.partition_point(|p| *p <= day).checked_sub(1);
        let mut cohort: Vec<Bits> = vec![Bits::default(); periods.len()];
        let mut ret: Vec<Bits> = vec![Bits::default(); periods.len()];
        let mut filter_bits = Bits::default();
        for (chunk, start_values) in &starts {
            cohort
                .iter_mut()
                .chain(ret.iter_mut())
                .for_each(Bits::clear);
            Self::or_into_periods(start_values, period_of, &mut cohort)?;
            if let Some(values) = returns.get(chunk) {
                Self::or_into_periods(values, period_of, &mut ret)?;
            }
            if let Some(f) = filter {
                filter_bits.clear();
                filter_bits.or_roaring(f, *chunk);
                cohort.iter_mut().for_each(|c| c.and(&filter_bits));
            }
            if q.mode == ReturnMode::OnOrAfter {
                // a return in period p or later
                for i in (0..periods.len().saturating_sub(1)).rev() {
                    let (head, tail) = ret.split_at_mut(i + 1);
                    head[i].or(&tail[0]);
                }
            }
            for (c, bits) in cohort.iter().enumerate() {
                sizes[c] += bits.count();
                for (n, cell) in counts[c].iter_mut().enumerate() {
                    *cell += bits.and_count(&ret[c + n]);
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
