//! A naive model of the SPEC §3 metrics: every answer recomputed from the
//! list of accepted events, with plain collections and no shared code with
//! the engine.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};

pub const DAY_MS: i64 = 86_400_000;

#[derive(Debug, Clone)]
pub struct Ev {
    pub user: String,
    pub kind: &'static str,
    pub ts_ms: i64,
    pub amount: i64,
    pub session: Option<String>,
}

pub struct Model {
    pub offset_min: i32,
    pub non_activity: Vec<&'static str>,
    pub events: Vec<Ev>,
}

pub fn week_start(day: i32) -> i32 {
    // 1970-01-01 was a Thursday
    day - (day + 3).rem_euclid(7)
}

pub fn month_start(day: i32) -> i32 {
    let date =
        chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap() + chrono::Duration::days(day as i64);
    let first = chrono::NaiveDate::from_ymd_opt(
        chrono::Datelike::year(&date),
        chrono::Datelike::month(&date),
        1,
    )
    .unwrap();
    (first - chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap()).num_days() as i32
}

/// Period index of a day: day itself, its Monday, or its month's first day.
pub fn period_of(period: &str, day: i32) -> i32 {
    match period {
        "day" => day,
        "week" => week_start(day),
        _ => month_start(day),
    }
}

pub fn next_period(period: &str, start: i32) -> i32 {
    match period {
        "day" => start + 1,
        "week" => start + 7,
        _ => month_start(start + 31),
    }
}

impl Model {
    pub fn day(&self, ts: i64) -> i32 {
        (ts + self.offset_min as i64 * 60_000).div_euclid(DAY_MS) as i32
    }

    pub fn hour(&self, ts: i64) -> usize {
        ((ts + self.offset_min as i64 * 60_000).rem_euclid(DAY_MS) / 3_600_000) as usize
    }

    fn is_activity(&self, kind: &str) -> bool {
        !self.non_activity.contains(&kind)
    }

    /// Users with an event of `kind` (None = activity) on each day.
    pub fn day_sets(&self, kind: Option<&str>) -> BTreeMap<i32, BTreeSet<String>> {
        let mut m: BTreeMap<i32, BTreeSet<String>> = BTreeMap::new();
        for e in &self.events {
            let hit = match kind {
                None => self.is_activity(e.kind),
                Some(k) => e.kind == k,
            };
            if hit {
                m.entry(self.day(e.ts_ms))
                    .or_default()
                    .insert(e.user.clone());
            }
        }
        m
    }

    pub fn active_between(&self, kind: Option<&str>, from: i32, to: i32) -> BTreeSet<String> {
        self.day_sets(kind)
            .range(from..=to)
            .flat_map(|(_, s)| s.iter().cloned())
            .collect()
    }

    /// First day of `kind` (None = activity) per user.
    pub fn first_days(&self, kind: Option<&str>) -> BTreeMap<String, i32> {
        let mut m: BTreeMap<String, i32> = BTreeMap::new();
        for (d, users) in self.day_sets(kind) {
            for u in users {
                m.entry(u).or_insert(d);
            }
        }
        m
    }

    /// (dau, wau, mau) of `day`.
    pub fn active(&self, kind: Option<&str>, day: i32) -> (u64, u64, u64) {
        (
            self.active_between(kind, day, day).len() as u64,
            self.active_between(kind, day - 6, day).len() as u64,
            self.active_between(kind, day - 29, day).len() as u64,
        )
    }

    pub fn distribution(&self, from: i32, to: i32) -> Vec<u64> {
        let mut per_user: BTreeMap<String, u32> = BTreeMap::new();
        for d in from..=to {
            for u in self.active_between(None, d, d) {
                *per_user.entry(u).or_default() += 1;
            }
        }
        (1..=(to - from + 1) as u32)
            .map(|n| per_user.values().filter(|c| **c == n).count() as u64)
            .collect()
    }

    /// Retention counts per cohort: (cohort start, size, counts).
    pub fn retention(
        &self,
        period: &str,
        from: i32,
        to: i32,
        start: Option<&str>,
        ret: Option<&str>,
        on_or_after: bool,
    ) -> Vec<(i32, u64, Vec<u64>)> {
        let mut periods = Vec::new();
        let mut p = period_of(period, from);
        while p <= to {
            periods.push(p);
            p = next_period(period, p);
        }
        let firsts = self.first_days(start);
        let mut out = Vec::new();
        for (i, c) in periods.iter().enumerate() {
            let cohort: BTreeSet<String> = firsts
                .iter()
                .filter(|(_, d)| period_of(period, **d) == *c)
                .map(|(u, _)| u.clone())
                .collect();
            let mut counts = Vec::new();
            for n in 0..periods.len() - i {
                let target = periods[i + n];
                let returned = cohort
                    .iter()
                    .filter(|u| {
                        self.events.iter().any(|e| {
                            &e.user == *u
                                && match ret {
                                    None => self.is_activity(e.kind),
                                    Some(k) => e.kind == k,
                                }
                                && {
                                    let p = period_of(period, self.day(e.ts_ms));
                                    if on_or_after {
                                        p >= target && p <= *periods.last().unwrap()
                                    } else {
                                        p == target
                                    }
                                }
                        })
                    })
                    .count() as u64;
                counts.push(returned);
            }
            out.push((*c, cohort.len() as u64, counts));
        }
        out
    }

    /// (new, returning, resurrecting, dormant) per period.
    pub fn lifecycle(&self, period: &str, from: i32, to: i32) -> Vec<(i32, u64, u64, u64, i64)> {
        let firsts = self.first_days(None);
        let active_in = |p: i32| -> BTreeSet<String> {
            self.events
                .iter()
                .filter(|e| self.is_activity(e.kind) && period_of(period, self.day(e.ts_ms)) == p)
                .map(|e| e.user.clone())
                .collect()
        };
        let mut out = Vec::new();
        let mut p = period_of(period, from);
        while p <= to {
            let prev_p = period_of(period, p - 1);
            let cur = active_in(p);
            let prev = active_in(prev_p);
            let new: BTreeSet<String> = cur
                .iter()
                .filter(|u| period_of(period, firsts[*u]) == p)
                .cloned()
                .collect();
            let returning = cur
                .iter()
                .filter(|u| !new.contains(*u) && prev.contains(*u))
                .count();
            let resurrecting = cur
                .iter()
                .filter(|u| !new.contains(*u) && !prev.contains(*u))
                .count();
            let dormant = prev.iter().filter(|u| !cur.contains(*u)).count();
            out.push((
                p,
                new.len() as u64,
                returning as u64,
                resurrecting as u64,
                -(dormant as i64),
            ));
            p = next_period(period, p);
        }
        out
    }

    /// Per user: purchase days ≤ d, orders ≤ d, gross spend, refunds ≤ d.
    pub fn purchases(&self, user: &str, d: i32) -> (BTreeSet<i32>, u64, i64, i64) {
        let mut days = BTreeSet::new();
        let mut orders = 0;
        let mut spend = 0;
        let mut refunds = 0;
        for e in self
            .events
            .iter()
            .filter(|e| e.user == user && self.day(e.ts_ms) <= d)
        {
            if e.kind == "purchase" {
                days.insert(self.day(e.ts_ms));
                orders += 1;
                spend += e.amount;
            }
            if e.kind == "refund" {
                refunds += e.amount;
            }
        }
        (days, orders, spend, refunds)
    }

    pub fn users(&self) -> BTreeSet<String> {
        self.events.iter().map(|e| e.user.clone()).collect()
    }

    /// The default SPEC §3 stage of `user` as of `d`.
    pub fn stage(&self, user: &str, d: i32) -> Option<&'static str> {
        let days: BTreeSet<i32> = self
            .events
            .iter()
            .filter(|e| e.user == user && self.is_activity(e.kind))
            .map(|e| self.day(e.ts_ms))
            .filter(|x| *x <= d)
            .collect();
        let first = *days.iter().next()?;
        let last = *days.iter().next_back()?;
        let last30 = days.iter().filter(|x| **x >= d - 29).count();
        let prev30 = days
            .iter()
            .filter(|x| **x >= d - 59 && **x <= d - 30)
            .count();
        let (pdays, ..) = self.purchases(user, d);
        Some(if d - first < 7 {
            "new"
        } else if d - last >= 30 {
            "churned"
        } else if d - last >= 14 || last30 * 2 < prev30 {
            "declining"
        } else if pdays.len() >= 2 {
            "mature"
        } else {
            "growing"
        })
    }

    /// CLV: (frequency, recency, T, monetary_value).
    pub fn clv(&self, user: &str, d: i32) -> Option<(u64, i64, i64, f64)> {
        let (days, ..) = self.purchases(user, d);
        let first = *days.iter().next()?;
        let last = *days.iter().next_back()?;
        let freq = days.len() as u64 - 1;
        let repeat: i64 = self
            .events
            .iter()
            .filter(|e| e.user == user && e.kind == "purchase")
            .filter(|e| {
                let x = self.day(e.ts_ms);
                x > first && x <= d
            })
            .map(|e| e.amount)
            .sum();
        let mv = if freq == 0 {
            0.0
        } else {
            repeat as f64 / freq as f64
        };
        Some((freq, (last - first) as i64, (d - first) as i64, mv))
    }

    /// (current, longest) sign-in streak as of d.
    pub fn streaks(&self, user: &str, d: i32) -> (u64, u64) {
        let days: BTreeSet<i32> = self
            .events
            .iter()
            .filter(|e| e.user == user && e.kind == "sign_in")
            .map(|e| self.day(e.ts_ms))
            .filter(|x| *x <= d)
            .collect();
        let run_ending = |end: i32| -> u64 {
            let mut n = 0;
            while days.contains(&(end - n as i32)) {
                n += 1;
            }
            n
        };
        let longest = days.iter().map(|x| run_ending(*x)).max().unwrap_or(0);
        let current = if days.contains(&d) {
            run_ending(d)
        } else {
            run_ending(d - 1)
        };
        (current, longest)
    }

    /// RFM scores per purchaser: (r, f, m, segment).
    pub fn rfm(&self, d: i32) -> BTreeMap<String, (u8, u8, u8, &'static str)> {
        let buyers: Vec<(String, i64, i64, i64)> = self
            .users()
            .into_iter()
            .filter_map(|u| {
                let (days, orders, spend, refunds) = self.purchases(&u, d);
                let last = *days.iter().next_back()?;
                Some((u, -((d - last) as i64), orders as i64, spend - refunds))
            })
            .collect();
        let score = |vals: Vec<i64>| -> Vec<u8> {
            let n = vals.len();
            vals.iter()
                .map(|v| (1 + 5 * vals.iter().filter(|x| *x < v).count() / n) as u8)
                .collect()
        };
        let r = score(buyers.iter().map(|b| b.1).collect());
        let f = score(buyers.iter().map(|b| b.2).collect());
        let m = score(buyers.iter().map(|b| b.3).collect());
        buyers
            .iter()
            .enumerate()
            .map(|(i, b)| {
                let seg = match (r[i], f[i]) {
                    (r, f) if r >= 4 && f >= 4 => "champions",
                    (r, f) if r >= 3 && f >= 3 => "loyal",
                    (r, 1) if r >= 4 => "new_customers",
                    (r, _) if r >= 3 => "potential",
                    (_, f) if f >= 3 => "at_risk",
                    (2, _) => "hibernating",
                    _ => "lost",
                };
                (b.0.clone(), (r[i], f[i], m[i], seg))
            })
            .collect()
    }

    /// Per step, users reaching it; exhaustive search over event sequences.
    pub fn funnel(&self, steps: &[&str], window_ms: i64, from: i32, to: i32) -> Vec<u64> {
        let mut counts = vec![0u64; steps.len()];
        for u in self.users() {
            let evs: Vec<(i64, &str)> = self
                .events
                .iter()
                .filter(|e| e.user == u)
                .map(|e| (e.ts_ms, e.kind))
                .collect();
            fn deepest(
                evs: &[(i64, &str)],
                steps: &[&str],
                used: &mut Vec<usize>,
                prev: i64,
                deadline: i64,
            ) -> usize {
                if used.len() == steps.len() {
                    return used.len();
                }
                let mut best = used.len();
                for j in 0..evs.len() {
                    let (t, k) = evs[j];
                    if k == steps[used.len()] && t >= prev && t <= deadline && !used.contains(&j) {
                        used.push(j);
                        best = best.max(deepest(evs, steps, used, t, deadline));
                        used.pop();
                    }
                }
                best
            }
            let mut best = 0;
            for (i, (t, k)) in evs.iter().enumerate() {
                let d = self.day(*t);
                if *k == steps[0] && d >= from && d <= to {
                    let mut used = vec![i];
                    best = best.max(deepest(&evs, steps, &mut used, *t, t + window_ms));
                }
            }
            for c in counts.iter_mut().take(best) {
                *c += 1;
            }
        }
        counts
    }
}
