//! Once-per-user rewards (docs/ledger.md#first-order-and-campaign-rewards):
//! earning rules of the pseudo-kinds `reward:first_order` (a user's first
//! purchase) and `reward:campaign` (a user's first event of each campaign).
//!
//! Each (user, reward kind, campaign) keeps which event holds the reward,
//! the generation of its credits and their ids. An event earlier than the holder — a late
//! purchase — takes the reward over in its own write: the holder's credit
//! is reversed and the next generation is paid for the new first event, so
//! a credit id is never used twice. The holder is the oldest matching event
//! of the user's whole timeline: when a rule first meets a user, the older
//! events are read once, and one recorded before the rule existed holds
//! the reward unpaid.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use super::*;
use crate::error::Result;
use crate::keys::ledger as lk;
use crate::kinds::{CAMPAIGN_KIND, CAMPAIGN_PROPERTY, FIRST_ORDER_KIND};
use crate::store::Cf;
use crate::timeline::{EventValue, StoredProp};

/// Longest campaign name a campaign reward is paid for, in bytes (it is
/// part of the credit's transaction id).
pub const MAX_CAMPAIGN_BYTES: usize = 64;

/// The reward kind code of [`crate::kinds::FIRST_ORDER_KIND`] in keys.
pub(crate) const FIRST_ORDER: u16 = 1;
/// The reward kind code of [`crate::kinds::CAMPAIGN_KIND`] in keys.
pub(crate) const CAMPAIGN: u16 = 2;

/// Which event holds a once-per-user reward, and the credits paid for it.
/// Keyed by the reward's kind (not a rule's position), and naming the
/// credits it paid, so an edit of the earning rules never leaves a credit
/// that a later take-over would not reverse.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Holder {
    /// The generation of the latest credits (paid or not).
    pub generation: u32,
    /// The holding event's time and sequence number.
    pub ts_ms: i64,
    pub seq: u32,
    /// The transaction ids of the credits paid for it.
    pub paid: Vec<String>,
}

/// What a reward rule reads of one event.
pub(crate) struct RewardEvent<'e> {
    pub seq: u32,
    pub kind: &'e str,
    pub ts_ms: i64,
    pub amount_minor: Option<i64>,
    pub campaign: Option<&'e str>,
    /// Whether the kind counts as activity (a birthday reward reads only
    /// activity).
    pub is_activity: bool,
}

/// A [`RewardEvent`] kept until a merge's moved events are all in.
pub(super) struct Deferred {
    user_id: u32,
    seq: u32,
    kind: String,
    ts_ms: i64,
    amount_minor: Option<i64>,
    campaign: Option<String>,
    is_activity: bool,
}

/// The campaign an event names, when a campaign reward can be paid for it.
pub(crate) fn campaign_of(value: &str) -> Option<&str> {
    (!value.is_empty() && value.len() <= MAX_CAMPAIGN_BYTES).then_some(value)
}

/// The transaction id of rule `rule`'s reward credit, generation
/// `generation`, for `campaign` (empty for a first order).
pub(crate) fn reward_txn(rule: usize, generation: u32, campaign: &str) -> String {
    format!("{RULE_TXN_PREFIX}first:{rule}:{generation}:{campaign}")
}

/// Whether a transaction id is a once-per-user or streak reward's (or its
/// reversal).
pub(crate) fn is_reward_txn(txn_id: &str) -> bool {
    txn_id
        .strip_prefix(RULE_TXN_PREFIX)
        .is_some_and(|rest| rest.starts_with("first:") || rest.starts_with("streak:"))
}

/// The reward kind codes `settings` pay.
pub(crate) fn reward_kinds(settings: &LedgerSettings) -> (bool, bool) {
    let has = |k: &str| settings.rules.iter().any(|r| r.kind == k);
    (has(FIRST_ORDER_KIND), has(CAMPAIGN_KIND))
}

/// Whether `settings` hold a once-per-user, streak or birthday reward rule.
pub(crate) fn has_rewards(settings: &LedgerSettings) -> bool {
    reward_kinds(settings) != (false, false)
        || !super::streak::streak_rules(settings).is_empty()
        || !super::birthday::windows(settings).is_empty()
}

/// Whether a rule of kind `kind` pays reward `code` held under `campaign`.
fn pays(code: u16, campaign: &str, kind: &str) -> bool {
    match code {
        FIRST_ORDER => kind == FIRST_ORDER_KIND,
        CAMPAIGN => kind == CAMPAIGN_KIND,
        _ => super::birthday::pays(kind, campaign),
    }
}

impl Session<'_> {
    /// Applies the once-per-user reward rules to one recorded event (kept
    /// for [`Session::settle_rewards`] while a merge defers them).
    pub fn rewards(&mut self, user_id: u32, e: &RewardEvent<'_>) -> Result<()> {
        let (first_order, campaigns) = reward_kinds(self.ctx.settings);
        let mut wanted: Vec<(u16, Cow<'_, str>)> = Vec::new();
        if first_order && e.kind == "purchase" {
            wanted.push((FIRST_ORDER, "".into()));
        }
        if let Some(c) = e.campaign.and_then(campaign_of).filter(|_| campaigns) {
            wanted.push((CAMPAIGN, c.into()));
        }
        let streak =
            e.kind == "sign_in" && !super::streak::streak_rules(self.ctx.settings).is_empty();
        let birthday = e.is_activity && !self.ctx.birthday_windows.is_empty();
        if wanted.is_empty() && !streak && !birthday {
            return Ok(());
        }
        if let Some(d) = self.deferred.as_mut() {
            d.push(Deferred {
                user_id,
                seq: e.seq,
                kind: e.kind.to_owned(),
                ts_ms: e.ts_ms,
                amount_minor: e.amount_minor,
                campaign: e.campaign.map(str::to_owned),
                is_activity: e.is_activity,
            });
            return Ok(());
        }
        if streak {
            self.sign_in(user_id, e.seq, e.ts_ms)?;
        }
        self.with(user_id, |ctx, w| {
            if birthday {
                wanted.extend(ctx.birthday_keys(w, e)?);
            }
            for (code, campaign) in wanted {
                ctx.reward(w, code, &campaign, e)?;
            }
            Ok(())
        })
    }

    /// Keeps the rewards of the events recorded from now on until
    /// [`Session::settle_rewards`]: a merge records the moved events newest
    /// first, and settling them oldest first pays the oldest once instead
    /// of paying and taking over event by event.
    pub fn defer_rewards(&mut self) {
        self.deferred = Some(Vec::new());
    }

    /// Applies the deferred rewards, oldest event first.
    pub fn settle_rewards(&mut self) -> Result<()> {
        let mut deferred = self.deferred.take().unwrap_or_default();
        deferred.sort_by_key(|d| (d.user_id, d.ts_ms, d.seq));
        for d in &deferred {
            let e = RewardEvent {
                seq: d.seq,
                kind: &d.kind,
                ts_ms: d.ts_ms,
                amount_minor: d.amount_minor,
                campaign: d.campaign.as_deref(),
                is_activity: d.is_activity,
            };
            self.rewards(d.user_id, &e)?;
        }
        Ok(())
    }
}

impl Ctx<'_> {
    fn reward(&self, w: &mut Work, code: u16, campaign: &str, e: &RewardEvent<'_>) -> Result<()> {
        // (the common case — an older event holds it — clones nothing: it
        // runs on every purchase of a store with a first-order rule)
        if self.held_before(w, code, campaign, e)? {
            return Ok(());
        }
        let known = self.holder(w, code, campaign)?;
        let holder = match known.clone() {
            Some(h) => Some(h),
            // (a birthday's older events did not know it: birthday.rs)
            None if code == super::birthday::BIRTHDAY => None,
            None => self.older_holder(w, code, campaign, e)?,
        };
        let generation = match holder {
            Some(h) if (h.ts_ms, h.seq) <= (e.ts_ms, e.seq) => {
                if known.is_none() {
                    // (an event recorded before the rule holds it unpaid)
                    w.firsts
                        .insert((code, campaign.to_owned()), (Some(h), true));
                }
                return Ok(());
            }
            Some(h) => {
                for target in &h.paid {
                    self.reverse_credit(w, target, e.ts_ms)?;
                }
                h.generation
                    .checked_add(1)
                    .ok_or(crate::error::Error::LimitReached {
                        what: "reward take-overs",
                        max: u64::from(u32::MAX),
                    })?
            }
            None => 0,
        };
        let mut paid = Vec::new();
        for (rule, r) in self.settings.rules.iter().enumerate() {
            if !pays(code, campaign, &r.kind) {
                continue;
            }
            let points = LedgerSettings::rule_points(r, e.amount_minor);
            if points <= 0 {
                continue;
            }
            // (every rule credit counts in its rule's day total; verify has one rule)
            let day = local_day(e.ts_ms, self.offset_minutes);
            let used = self.cap(w, day, rule as u16)?;
            w.caps
                .insert((day, rule as u16), used.saturating_add(points));
            let op = PointsOp::Earn {
                points,
                expires_at_ms: r
                    .expires_after_days
                    .map(|d| e.ts_ms.saturating_add(i64::from(d) * DAY_MS)),
                reason: format!("rule {rule}: {}", r.kind),
            };
            let txn = reward_txn(rule, generation, campaign);
            self.run(w, &txn, e.ts_ms, &op, Some(rule as u16))?;
            paid.push(txn);
        }
        let h = Holder {
            generation,
            ts_ms: e.ts_ms,
            seq: e.seq,
            paid,
        };
        w.firsts
            .insert((code, campaign.to_owned()), (Some(h), true));
        Ok(())
    }

    /// Whether a stored (or this session's) holder older than `e` holds
    /// the reward.
    fn held_before(
        &self,
        w: &mut Work,
        code: u16,
        campaign: &str,
        e: &RewardEvent<'_>,
    ) -> Result<bool> {
        // (a purchase's common case: the account, read anyway, keeps the
        // first-order holder's position — `ledger::account_value`)
        let first_order = code == FIRST_ORDER && campaign.is_empty();
        if first_order && !w.firsts.contains_key(&(code, String::new())) {
            if let Some(at) = w.stored_first_order_at {
                if at <= (e.ts_ms, e.seq) {
                    return Ok(true);
                }
            }
        }
        Ok(matches!(
            self.cached_holder(w, code, campaign)?,
            Some(h) if (h.ts_ms, h.seq) <= (e.ts_ms, e.seq)
        ))
    }

    /// The stored (or this session's) holder of a reward.
    fn holder(&self, w: &mut Work, code: u16, campaign: &str) -> Result<Option<Holder>> {
        Ok(self.cached_holder(w, code, campaign)?.clone())
    }

    /// The holder of a reward, read once per session.
    fn cached_holder<'w>(
        &self,
        w: &'w mut Work,
        code: u16,
        campaign: &str,
    ) -> Result<&'w Option<Holder>> {
        let user_id = w.user_id;
        let (h, _) = match w.firsts.entry((code, campaign.to_owned())) {
            std::collections::btree_map::Entry::Occupied(o) => o.into_mut(),
            std::collections::btree_map::Entry::Vacant(v) => {
                let key = lk::first_reward(user_id, code, campaign);
                v.insert((self.store.get(Cf::Ledger, &key)?, false))
            }
        };
        Ok(h)
    }

    /// The oldest stored event older than `e` that the reward reads: it
    /// holds the reward unpaid (recorded before the rule met this user).
    fn older_holder(
        &self,
        w: &Work,
        code: u16,
        campaign: &str,
        e: &RewardEvent<'_>,
    ) -> Result<Option<Holder>> {
        let matches = |v: &EventValue| {
            if code == FIRST_ORDER {
                v.kind_id == crate::kinds::ids::PURCHASE
            } else {
                v.properties.iter().any(|(k, p)| {
                    k == CAMPAIGN_PROPERTY && matches!(p, StoredProp::Str(s) if s == campaign)
                })
            }
        };
        let older =
            crate::timeline::oldest_before(self.store, w.user_id, (e.ts_ms, e.seq), matches)?;
        Ok(older.map(|(ts_ms, seq, _)| Holder {
            generation: 0,
            ts_ms,
            seq,
            paid: Vec::new(),
        }))
    }
}
