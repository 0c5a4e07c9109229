//! Growth value on the write path: what an event gives under the growth
//! rules, added to its local day, and the tier re-evaluated when tiers grow
//! from growth value (docs/ledger.md#growth-value).

use super::*;
use crate::error::Result;
use crate::keys::ledger as lk;
use crate::store::Cf;

impl Session<'_> {
    /// What one recorded event gives: the earning rules' points (unless
    /// `rules` is false: a merge's moved events keep their credits), the
    /// once-per-user rewards (re-derived for moved events too: the merged
    /// user's do not move) and the growth rules' growth value.
    pub fn event_credit(
        &mut self,
        user_id: u32,
        e: &super::RewardEvent<'_>,
        rules: bool,
    ) -> Result<()> {
        let (kind, ts_ms, amount_minor) = (e.kind, e.ts_ms, e.amount_minor);
        let is_activity = e.is_activity;
        if rules {
            self.rule_credit(user_id, e.seq, kind, ts_ms, amount_minor)?;
        }
        if self.rewards {
            self.rewards(user_id, e)?;
        }
        if !self.ctx.settings.growth.reads(kind, is_activity) {
            return Ok(());
        }
        self.with(user_id, |ctx, w| {
            let t = w.account.clock_ms.max(ts_ms);
            ctx.catch_up(w, t)?;
            let day = local_day(ts_ms, ctx.offset_minutes);
            let before = ctx.growth_day(w, day)?.value;
            let growth = &ctx.settings.growth;
            let after = {
                let (g, dirty) = ctx.growth_day_mut(w, day)?;
                growth.add_event(g, kind, is_activity, amount_minor);
                *dirty = true;
                g.value
            };
            if after != before
                && growth.tier_basis == TierBasis::GrowthValue
                && !ctx.settings.tiers.levels.is_empty()
            {
                ctx.evaluate_tier(w, t)?;
            }
            w.account.clock_ms = t;
            w.changed = true;
            Ok(())
        })
    }
}

impl Ctx<'_> {
    /// `day`'s growth-value record, loaded on first use.
    pub(super) fn growth_day<'w>(&self, w: &'w mut Work, day: i32) -> Result<&'w GrowthDay> {
        Ok(&self.growth_day_mut(w, day)?.0)
    }

    fn growth_day_mut<'w>(&self, w: &'w mut Work, day: i32) -> Result<&'w mut (GrowthDay, bool)> {
        if !w.growth_values.contains_key(&day) {
            let g: GrowthDay = self
                .store
                .get(Cf::Ledger, &lk::growth_value(w.user_id, day))?
                .unwrap_or_default();
            w.growth_values.insert(day, (g, false));
        }
        w.growth_values
            .get_mut(&day)
            .ok_or_else(|| self.corrupt(&lk::growth_value(w.user_id, day), "not loaded".into()))
    }
}

/// What the growth rules read of one stored event.
pub(crate) struct GrowthEvent<'e> {
    pub kind: &'e str,
    pub is_activity: bool,
    pub ts_ms: i64,
    pub amount_minor: Option<i64>,
}

impl Session<'_> {
    /// Re-derives `user_id`'s growth-value days from all its `events` under
    /// the rules in force (a settings job), then its tier at its clock,
    /// which moves to its latest event the rules read (as recording those
    /// events would have moved it).
    pub fn rederive_growth(&mut self, user_id: u32, events: &[GrowthEvent<'_>]) -> Result<()> {
        self.with(user_id, |ctx, w| {
            let growth = &ctx.settings.growth;
            let mut days: BTreeMap<i32, GrowthDay> = BTreeMap::new();
            let mut latest: Option<i64> = None;
            for e in events {
                if growth.reads(e.kind, e.is_activity) {
                    let day = local_day(e.ts_ms, ctx.offset_minutes);
                    let g = days.entry(day).or_default();
                    growth.add_event(g, e.kind, e.is_activity, e.amount_minor);
                    latest = latest.max(Some(e.ts_ms));
                }
            }
            let prefix = lk::family(w.user_id, lk::GROWTH_VALUE);
            let mut stored: BTreeMap<i32, GrowthDay> = BTreeMap::new();
            for item in ctx.store.prefix(Cf::Ledger, &prefix)? {
                let (k, v) = item?;
                let Some(crate::keys::ledger::LedgerKey::GrowthValue { day, .. }) =
                    crate::keys::ledger::LedgerKey::parse(&k)
                else {
                    return Err(ctx.corrupt(&k, "growth-value key does not decode".into()));
                };
                stored.insert(day, crate::store::decode_value(Cf::Ledger, &k, &v)?);
            }
            days.retain(|_, g| !g.is_empty());
            let had_account = w.account != Account::default();
            if days == stored && latest.is_none_or(|t| t <= w.account.clock_ms) {
                if had_account {
                    ctx.evaluate_tier(w, w.account.clock_ms)?;
                }
                return Ok(());
            }
            for day in stored.keys() {
                w.growth_values.insert(*day, (GrowthDay::default(), true));
            }
            for (day, g) in days {
                w.growth_values.insert(day, (g, true));
            }
            let t = w.account.clock_ms.max(latest.unwrap_or(i64::MIN));
            // (reviews due on the way run at their own times, as recording
            // the events would have run them)
            ctx.catch_up(w, t)?;
            w.account.clock_ms = t;
            ctx.evaluate_tier(w, t)
        })
    }
}
