//! Per-user rules over every user's state: one user's metrics, stage counts,
//! RFM, repurchase rate and the stage/RFM segments.

use std::collections::BTreeMap;

use roaring::RoaringBitmap;

use super::super::rules::Inputs;
use super::super::state::{kind_ids, UserActivity, ACTIVITY};
use super::super::user::{
    rfm_inputs, rfm_segment, stage_inputs, RfmScale, UserMetrics, RFM_SEGMENTS,
};
use super::*;
use crate::error::Result;
use crate::keys::metrics::{DAY_USERS, FIRST_USERS};

impl Metrics<'_> {
    /// One user's metrics as of `as_of_day`; `None` for a user without events.
    pub fn user(&self, user_id: u32, as_of_day: i32) -> Result<Option<UserMetrics>> {
        check_day("as_of_day", as_of_day)?;
        Ok(self
            .user_state(user_id)?
            .map(|s| UserMetrics::derive(user_id, &s, as_of_day, &self.settings.stage_model)))
    }

    /// One user's lifecycle stage on every day of `from_day..=to_day`, as
    /// runs of equal stages, oldest first: the stage `stages` counts the
    /// user in on each of those days, recomputed from the user's activity
    /// (so it follows late events and merges exactly). Days before the
    /// user's first activity have no stage and are left out; empty for a
    /// user without events. At most [`MAX_RANGE_DAYS`] days.
    ///
    /// ```
    /// # fn main() -> Result<(), stickydb::Error> {
    /// let dir = tempfile::tempdir()?;
    /// let db = stickydb::Db::create(dir.path(), stickydb::Options::default())?;
    /// db.record(&stickydb::Event::new("ann", "view", 19_800 * 86_400_000))?;
    /// let ann = db.user_id("ann")?.unwrap();
    /// let runs = db.metrics().stage_history(ann, 19_790, 19_900)?;
    /// // new for its first week, then quiet: at risk, then churned
    /// assert_eq!(runs[0].from_day, 19_800);
    /// assert_eq!(runs[0].stage, "new");
    /// assert_eq!(runs.last().unwrap().to_day, 19_900);
    /// # Ok(()) }
    /// ```
    pub fn stage_history(
        &self,
        user_id: u32,
        from_day: i32,
        to_day: i32,
    ) -> Result<Vec<StageSpan>> {
        check_range(from_day, to_day)?;
        let Some(state) = self.user_state(user_id)? else {
            return Ok(Vec::new());
        };
        let model = &self.settings.stage_model;
        let mut runs: Vec<StageSpan> = Vec::new();
        for d in from_day..=to_day {
            let Some(inputs) = stage_inputs(&state, d) else {
                continue;
            };
            let stage = model.classify(&inputs);
            match runs.last_mut() {
                Some(r) if r.stage == stage && r.to_day == d - 1 => r.to_day = d,
                _ => runs.push(StageSpan {
                    from_day: d,
                    to_day: d,
                    stage: stage.to_owned(),
                }),
            }
        }
        Ok(runs)
    }

    /// Metrics of every user with events (restricted to `filter`), by user id.
    pub fn users(
        &self,
        as_of_day: i32,
        filter: Option<&RoaringBitmap>,
    ) -> Result<Vec<UserMetrics>> {
        check_day("as_of_day", as_of_day)?;
        let model = &self.settings.stage_model;
        // the halves come back lowest ids first, so the result is in id order
        let parts = self.fold_users(filter, Vec::new, |acc, u, s: &UserActivity| {
            acc.push(UserMetrics::derive(u, s, as_of_day, model))
        })?;
        Ok(parts.into_iter().flatten().collect())
    }

    /// Per user with purchases or refunds on a local day of
    /// `from_day..=to_day` (restricted to `filter`): its purchase events
    /// and its net spend (purchases − refunds, minor units) over those days.
    pub fn money_in(
        &self,
        from_day: i32,
        to_day: i32,
        filter: Option<&RoaringBitmap>,
    ) -> Result<std::collections::HashMap<u32, (i64, i64)>> {
        Ok(self
            .money_pairs(from_day, to_day, filter)?
            .into_iter()
            .collect())
    }

    /// [`Metrics::money_in`] as `(user, (orders, net))` pairs in
    /// ascending user order (a threshold reads them in one pass: no map
    /// to build and probe per user).
    pub(crate) fn money_pairs(
        &self,
        from_day: i32,
        to_day: i32,
        filter: Option<&RoaringBitmap>,
    ) -> Result<Vec<(u32, (i64, i64))>> {
        let parts = self.fold_money(filter, Vec::new, |acc, u, days| {
            let (mut orders, mut net) = (0i64, 0i64);
            for (_, m) in days.range(from_day..=to_day) {
                orders += i64::from(m.orders);
                net += m.purchase_minor - m.refund_minor;
            }
            if orders != 0 || net != 0 {
                acc.push((u, (orders, net)));
            }
        })?;
        let mut pairs: Vec<(u32, (i64, i64))> = parts.into_iter().flatten().collect();
        // (parts are stretches of ids; sorted already unless split otherwise)
        if !pairs.is_sorted_by_key(|(u, _)| *u) {
            pairs.sort_unstable_by_key(|(u, _)| *u);
        }
        Ok(pairs)
    }

    /// [`Metrics::users`] of the users of `filter` whose ids lie in
    /// `lo..hi`, by one range scan of that stretch (an export's page of
    /// neighbouring ids: never a scan of every user, never a point read
    /// per user).
    pub fn users_between(
        &self,
        as_of_day: i32,
        lo: u32,
        hi: Option<u32>,
        filter: &RoaringBitmap,
    ) -> Result<Vec<UserMetrics>> {
        check_day("as_of_day", as_of_day)?;
        let model = &self.settings.stage_model;
        let mut out = Vec::new();
        crate::metrics::load::for_each_user(&self.view, lo, hi, |u, state| {
            if filter.contains(u) {
                out.push(UserMetrics::derive(u, &state, as_of_day, model));
            }
            Ok(())
        })?;
        Ok(out)
    }

    /// Users per lifecycle stage as of `as_of_day`; every stage of the model
    /// is listed, with 0 when empty. Users without activity by then are left out.
    pub fn stages(
        &self,
        as_of_day: i32,
        filter: Option<&RoaringBitmap>,
    ) -> Result<BTreeMap<String, u64>> {
        check_day("as_of_day", as_of_day)?;
        let model = &self.settings.stage_model;
        let names = model.stages();
        let mut counts = vec![0u64; names.len()];
        self.classify_users(as_of_day, filter, |_, stage| {
            if let Some(i) = names.iter().position(|n| *n == stage) {
                counts[i] += 1;
            }
        })?;
        Ok(names
            .iter()
            .zip(counts)
            .map(|(n, c)| ((*n).to_owned(), c))
            .collect())
    }

    /// Users in lifecycle stage `stage` as of `as_of_day`.
    pub fn users_in_stage(&self, stage: &str, as_of_day: i32) -> Result<RoaringBitmap> {
        check_day("as_of_day", as_of_day)?;
        let mut out = RoaringBitmap::new();
        self.classify_users(as_of_day, None, |u, s| {
            if s == stage {
                out.insert(u);
            }
        })?;
        Ok(out)
    }

    /// Calls `f(user, stage)` for every user with activity by `as_of_day`.
    ///
    /// When the model reads only activity and purchase days (the standard
    /// model does), the inputs come from the day sets by bitmap iteration into
    /// dense per-user arrays — no per-user value is decoded. A model reading
    /// net spend needs the per-user money, so it scans the per-user states.
    pub(super) fn classify_users(
        &self,
        as_of_day: i32,
        filter: Option<&RoaringBitmap>,
        mut f: impl FnMut(u32, &str),
    ) -> Result<()> {
        let model = &self.settings.stage_model;
        let d = as_of_day;
        if model.uses(super::super::rules::StageInput::NetSpendMinor) {
            let parts = self.fold_users(
                filter,
                Vec::<(u32, Inputs)>::new,
                |acc, u, s: &UserActivity| {
                    if let Some(x) = stage_inputs(s, d) {
                        acc.push((u, x));
                    }
                },
            )?;
            for (u, x) in parts.into_iter().flatten() {
                f(u, model.classify(&x));
            }
            return Ok(());
        }
        let firsts = self.sets(FIRST_USERS, Some(ACTIVITY), i32::MIN, d, filter)?;
        let top = firsts.values().filter_map(RoaringBitmap::max).max();
        let bottom = firsts.values().filter_map(RoaringBitmap::min).min();
        let (Some(top), Some(bottom)) = (top, bottom) else {
            return Ok(());
        };
        // Indexed from the lowest id: a partition's ids start at its range's
        // base (SPEC §7), not at 0. Every active user has a first day, so
        // every id below falls in bottom..=top.
        let n = (top - bottom) as usize + 1;
        let at = |u: u32| u.checked_sub(bottom).map(|i| i as usize);
        let mut first = vec![i32::MIN; n];
        for (day, set) in &firsts {
            for u in set {
                if let Some(i) = at(u) {
                    first[i] = *day;
                }
            }
        }
        drop(firsts);
        let mut last = vec![i32::MIN; n];
        let mut last30 = vec![0u16; n];
        let mut prev30 = vec![0u16; n];
        for (day, set) in self
            .sets(DAY_USERS, Some(ACTIVITY), i32::MIN, d, filter)?
            .iter()
            .rev()
        {
            for u in set {
                let Some(u) = at(u).filter(|i| *i < n) else {
                    continue;
                };
                if last[u] == i32::MIN {
                    last[u] = *day;
                }
                if *day > d - 30 {
                    last30[u] += 1;
                } else if *day > d - 60 {
                    prev30[u] += 1;
                }
            }
        }
        let mut purchase_days = vec![0u32; n];
        for set in self
            .sets(DAY_USERS, Some(kind_ids::PURCHASE), i32::MIN, d, filter)?
            .values()
        {
            for u in set {
                if let Some(p) = at(u).and_then(|i| purchase_days.get_mut(i)) {
                    *p += 1;
                }
            }
        }
        for u in 0..n {
            if first[u] == i32::MIN || last[u] == i32::MIN {
                continue;
            }
            let x = Inputs {
                days_since_first: i64::from(d) - i64::from(first[u]),
                days_since_last: i64::from(d) - i64::from(last[u]),
                active_last30: i64::from(last30[u]),
                active_prev30: i64::from(prev30[u]),
                purchase_days: i64::from(purchase_days[u]),
                net_spend_minor: 0,
            };
            f(bottom + u as u32, model.classify(&x));
        }
        Ok(())
    }

    /// RFM values, scores and segments of every purchaser as of `as_of_day`.
    /// Scores are quintiles among all purchasers; `filter` restricts the rows
    /// and counts, not the population the scores are ranked in.
    pub fn rfm(&self, as_of_day: i32, filter: Option<&RoaringBitmap>) -> Result<RfmReport> {
        let rows = self.rfm_rows(as_of_day)?;
        let scale = scale_of(&rows);
        Ok(score_rows(as_of_day, &rows, &scale, filter))
    }

    /// The distributions this store's purchasers rank in as of `as_of_day`:
    /// what a partition contributes to a deployment's RFM (SPEC §7).
    pub fn rfm_scale(&self, as_of_day: i32) -> Result<RfmScale> {
        Ok(scale_of(&self.rfm_rows(as_of_day)?))
    }

    /// [`Metrics::rfm`] with scores ranked in `scale` — the merged
    /// distributions of every partition — instead of this store's own.
    pub fn rfm_in(
        &self,
        as_of_day: i32,
        filter: Option<&RoaringBitmap>,
        scale: &RfmScale,
    ) -> Result<RfmReport> {
        let rows = self.rfm_rows(as_of_day)?;
        Ok(score_rows(as_of_day, &rows, scale, filter))
    }

    /// Every purchaser's RFM values, by user id.
    fn rfm_rows(&self, as_of_day: i32) -> Result<Vec<RfmRow>> {
        check_day("as_of_day", as_of_day)?;
        // Only purchasers have RFM values, and scores rank every purchaser
        // (not only the filter's): one scan of the money days alone, which
        // exist only for users with purchases or refunds.
        let parts = self.fold_money(None, Vec::<RfmRow>::new, |acc, u, money| {
            if let Some((last, orders, days, net)) = rfm_inputs(money, as_of_day) {
                acc.push(RfmRow {
                    user_id: u,
                    recency_days: i64::from(as_of_day) - i64::from(last),
                    orders,
                    purchase_days: days,
                    net_spend_minor: net,
                });
            }
        })?;
        let mut rows: Vec<RfmRow> = parts.into_iter().flatten().collect();
        rows.sort_unstable_by_key(|r| r.user_id);
        Ok(rows)
    }

    /// Users with purchases on ≥ 2 distinct days in `from..=to` ÷ users with
    /// at least one.
    pub fn repurchase_rate(
        &self,
        from_day: i32,
        to_day: i32,
        filter: Option<&RoaringBitmap>,
    ) -> Result<RepurchaseRate> {
        let sets = self.day_sets_in(Some(kind_ids::PURCHASE), from_day, to_day, filter)?;
        let counts = Self::day_counts(&sets);
        let purchasers = counts.len() as u64;
        let repeat_purchasers = counts.values().filter(|n| **n >= 2).count() as u64;
        Ok(RepurchaseRate {
            repeat_purchasers,
            purchasers,
            rate: ratio(repeat_purchasers, purchasers),
        })
    }

    /// Users whose RFM segment as of `as_of_day` is `segment`.
    pub fn users_in_rfm_segment(&self, segment: &str, as_of_day: i32) -> Result<RoaringBitmap> {
        Ok(self
            .rfm(as_of_day, None)?
            .users
            .into_iter()
            .filter(|u| u.segment == segment)
            .map(|u| u.user_id)
            .collect())
    }
}

/// One purchaser's RFM values.
struct RfmRow {
    user_id: u32,
    recency_days: i64,
    orders: u64,
    purchase_days: u64,
    net_spend_minor: i64,
}

fn scale_of(rows: &[RfmRow]) -> RfmScale {
    let mut scale = RfmScale::default();
    for r in rows {
        scale.recency.add(-r.recency_days);
        scale.frequency.add(r.orders as i64);
        scale.monetary.add(r.net_spend_minor);
    }
    scale
}

fn score_rows(
    as_of_day: i32,
    rows: &[RfmRow],
    scale: &RfmScale,
    filter: Option<&RoaringBitmap>,
) -> RfmReport {
    let (r, f, m) = (
        scale.recency.ranked(),
        scale.frequency.ranked(),
        scale.monetary.ranked(),
    );
    let mut segments: BTreeMap<&'static str, u64> = RFM_SEGMENTS.iter().map(|s| (*s, 0)).collect();
    let mut users = Vec::new();
    for x in rows {
        if filter.is_some_and(|set| !set.contains(x.user_id)) {
            continue;
        }
        let (r_score, f_score) = (r.score(-x.recency_days), f.score(x.orders as i64));
        let segment = rfm_segment(r_score, f_score);
        *segments.entry(segment).or_default() += 1;
        users.push(UserRfm {
            user_id: x.user_id,
            recency_days: x.recency_days,
            orders: x.orders,
            purchase_days: x.purchase_days,
            net_spend_minor: x.net_spend_minor,
            r_score,
            f_score,
            m_score: m.score(x.net_spend_minor),
            segment,
        });
    }
    RfmReport {
        as_of_day,
        users,
        segments,
    }
}
