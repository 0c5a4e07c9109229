//! Sign-in streak rewards (docs/ledger.md#sign-in-streaks): an earning rule
//! of the pseudo-kind `reward:sign_in_streak:N` credits every block of N
//! consecutive local days with a `sign_in` — in a run of consecutive
//! sign-in days starting on day s, on the days s+N−1, s+2N−1, … (the
//! *completions*), each at that day's local midnight.
//!
//! Each user keeps its sign-in days and, per completion, the credit paid
//! for it (`ledger` tag 17). A sign-in on a new day can join two runs (a
//! late sign-in filling a gap): the completions of the joined run are
//! derived again, a credit whose completion is gone is reversed and one is
//! paid for each new completion — exact under any arrival order. When a
//! rule first meets a user, its older sign-in days are read from the
//! timeline once; completions among them hold no credit (the streak was
//! before the programme).

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::*;
use crate::error::Result;
use crate::keys::ledger as lk;
use crate::store::Cf;

use crate::kinds::SIGN_IN_STREAK_KIND_PREFIX as STREAK_KIND_PREFIX;

/// Longest streak block, in days.
pub const MAX_STREAK_DAYS: u32 = 366;

/// A user's sign-in days and the streak credits paid for them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StreakState {
    /// Distinct local days with a sign-in, ascending.
    pub days: Vec<i32>,
    /// (rule, completion day) → the credit's transaction id (`None`: the
    /// completion came before the rule met the user, unpaid).
    pub paid: Vec<((u16, i32), Option<String>)>,
    /// Numbers credit ids: a completion that goes and comes back is paid
    /// under a new id.
    pub next_generation: u32,
}

/// The block length of a streak rule's kind, if it is one.
pub(crate) fn streak_days(kind: &str) -> Option<u32> {
    kind.strip_prefix(STREAK_KIND_PREFIX)?
        .parse::<u32>()
        .ok()
        .filter(|n| (1..=MAX_STREAK_DAYS).contains(n))
}

/// The streak rules of `settings`: (rule index, block length).
pub(crate) fn streak_rules(settings: &LedgerSettings) -> Vec<(u16, u32)> {
    settings
        .rules
        .iter()
        .enumerate()
        .filter_map(|(i, r)| streak_days(&r.kind).map(|n| (i as u16, n)))
        .collect()
}

/// Every completion of every rule over `days` (sorted, distinct).
pub(crate) fn completions(days: &[i32], rules: &[(u16, u32)]) -> BTreeSet<(u16, i32)> {
    let mut out = BTreeSet::new();
    let mut i = 0;
    while i < days.len() {
        let start = days[i];
        let mut end = start;
        while i + 1 < days.len() && days[i + 1] == end + 1 {
            i += 1;
            end = days[i];
        }
        for &(rule, n) in rules {
            let n = n as i64;
            let mut c = i64::from(start) + n - 1;
            while c <= i64::from(end) {
                out.insert((rule, c as i32));
                c += n;
            }
        }
        i += 1;
    }
    out
}

impl Session<'_> {
    /// Adds a sign-in on `ts_ms`'s local day to `user_id`'s streaks.
    pub fn sign_in(&mut self, user_id: u32, seq: u32, ts_ms: i64) -> Result<()> {
        let rules = streak_rules(self.ctx.settings);
        if rules.is_empty() {
            return Ok(());
        }
        self.with(user_id, |ctx, w| ctx.streak(w, &rules, seq, ts_ms))
    }
}

impl Ctx<'_> {
    fn streak(&self, w: &mut Work, rules: &[(u16, u32)], seq: u32, ts_ms: i64) -> Result<()> {
        let day = local_day(ts_ms, self.offset_minutes);
        let mut state = match w.streak.take() {
            Some(s) => s,
            None => self.load_streak(w, seq, ts_ms)?,
        };
        if state.days.binary_search(&day).is_ok() {
            w.streak = Some(state);
            return Ok(());
        }
        let at = state.days.partition_point(|d| *d < day);
        state.days.insert(at, day);
        let want = completions(&state.days, rules);
        let have: BTreeSet<(u16, i32)> = state.paid.iter().map(|(k, _)| *k).collect();
        let mut paid: BTreeMap<(u16, i32), Option<String>> = state.paid.drain(..).collect();
        for gone in have.difference(&want) {
            if let Some(Some(txn)) = paid.remove(gone) {
                self.reverse_credit(w, &txn, ts_ms)?;
            }
        }
        for &(rule, c) in want.difference(&have) {
            let txn = self.pay_streak(w, rule, c, state.next_generation)?;
            state.next_generation = state.next_generation.wrapping_add(1);
            paid.insert((rule, c), txn);
        }
        state.paid = paid.into_iter().collect();
        w.streak = Some(state);
        w.streak_dirty = true;
        Ok(())
    }

    /// Pays rule `rule`'s credit for completion day `day`.
    fn pay_streak(
        &self,
        w: &mut Work,
        rule: u16,
        day: i32,
        generation: u32,
    ) -> Result<Option<String>> {
        let Some(r) = self.settings.rules.get(usize::from(rule)) else {
            return Ok(None);
        };
        let points = LedgerSettings::rule_points(r, None);
        if points <= 0 {
            return Ok(None);
        }
        let at_ms = crate::time::local_midnight_ms(day, self.offset_minutes);
        let used = self.cap(w, day, rule)?;
        w.caps.insert((day, rule), used.saturating_add(points));
        let op = PointsOp::Earn {
            points,
            expires_at_ms: r
                .expires_after_days
                .map(|d| at_ms.saturating_add(i64::from(d) * DAY_MS)),
            reason: format!("rule {rule}: {}", r.kind),
        };
        let txn = format!("{RULE_TXN_PREFIX}streak:{rule}:{day}:{generation}");
        self.run(w, &txn, at_ms, &op, Some(rule))?;
        Ok(Some(txn))
    }

    /// The stored streak state, or — when the rules first meet this user —
    /// its older sign-in days from the timeline, their completions unpaid.
    fn load_streak(&self, w: &Work, seq: u32, ts_ms: i64) -> Result<StreakState> {
        let key = lk::family(w.user_id, lk::STREAK);
        if let Some(s) = self.store.get(Cf::Ledger, &key)? {
            return Ok(s);
        }
        let mut days = BTreeSet::new();
        crate::timeline::each_older(self.store, w.user_id, (ts_ms, seq), |k, v| {
            if v.kind_id == crate::kinds::ids::SIGN_IN {
                days.insert(local_day(k.ts_ms, self.offset_minutes));
            }
        })?;
        let days: Vec<i32> = days.into_iter().collect();
        let paid = completions(&days, &streak_rules(self.settings))
            .into_iter()
            .map(|k| (k, None))
            .collect();
        Ok(StreakState {
            days,
            paid,
            next_generation: 0,
        })
    }
}
