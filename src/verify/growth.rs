//! Growth value and once-per-user rewards: every user's growth-value days
//! re-derived from its events under the growth rules in force, and the
//! oldest event of each first-order and campaign reward, for the ledger
//! check to compare with what is stored (docs/ledger.md#growth-value,
//! #first-order-and-campaign-rewards).

use std::collections::BTreeMap;

use crate::error::Result;
use crate::keys::EventKey;
use crate::kinds::KindRegistry;
use crate::ledger::growth::GrowthDay;
use crate::ledger::LedgerSettings;
use crate::store::{Cf, Store};
use crate::time::local_day;

/// What the events imply.
#[derive(Default)]
pub(super) struct Expected {
    /// Growth-value days by user.
    pub growth: BTreeMap<u32, BTreeMap<i32, GrowthDay>>,
    /// (user, reward, campaign) → the oldest event the reward reads
    /// `(ts_ms, seq)`, for the rewards the rules in force pay.
    pub firsts: BTreeMap<(u32, u16, String), (i64, u32)>,
    /// The rewards the rules in force pay (holders of others are left
    /// from earlier rules and not checked).
    pub paid: Vec<u16>,
    /// Each user's distinct local days with a `sign_in` (when streak
    /// rules exist).
    pub sign_in_days: BTreeMap<u32, Vec<i32>>,
    /// Whether streak rules exist (a state left from earlier rules is
    /// stale, not wrong).
    pub streaks: bool,
    /// Whether birthday rules exist; their holders must name an activity
    /// event, by the kind ids that are not activity.
    pub birthdays: Option<std::collections::HashSet<u32>>,
}

/// Reads every event once (none when there are no growth rules).
pub(super) fn expected(
    store: &Store,
    kinds: &KindRegistry,
    settings: &LedgerSettings,
    non_activity_kinds: &[String],
) -> Result<Expected> {
    let growth = settings.growth();
    let mut out = Expected::default();
    use crate::ledger::session::rewards::{self as rw, CAMPAIGN, FIRST_ORDER};
    let (first_order, campaigns) = rw::reward_kinds(settings);
    let rewards: Vec<(u16, bool)> = [(FIRST_ORDER, first_order), (CAMPAIGN, campaigns)]
        .into_iter()
        .filter(|(_, on)| *on)
        .map(|(code, _)| (code, code == FIRST_ORDER))
        .collect();
    out.paid = rewards.iter().map(|(code, _)| *code).collect();
    let streaks = !crate::ledger::session::streak::streak_rules(settings).is_empty();
    out.streaks = streaks;
    if !crate::ledger::session::birthday::windows(settings).is_empty() {
        let ids = non_activity_kinds
            .iter()
            .filter_map(|n| kinds.id(&crate::kinds::EventKind::from_name(n)))
            .collect();
        out.birthdays = Some(ids);
    }
    if growth.rules.is_empty() && rewards.is_empty() && !streaks {
        return Ok(out);
    }
    let offset = store.settings().utc_offset_minutes;
    for item in store.range(Cf::Events, &[], None)? {
        let (k, v) = item?;
        // (an undecodable event is the events check's problem)
        let (Ok(key), Ok(value)) = (
            EventKey::decode(Cf::Events.name(), &k),
            crate::timeline::decode_event_value(&k, &v),
        ) else {
            continue;
        };
        let Some(kind) = kinds.kind(value.kind_id) else {
            continue;
        };
        let kind = kind.as_str();
        if streaks && kind == "sign_in" {
            // keys run newest first: days arrive descending
            let days = out.sign_in_days.entry(key.user_id).or_default();
            let day = local_day(key.ts_ms, offset);
            if days.last() != Some(&day) {
                days.push(day);
            }
        }
        for &(rule, first_order) in &rewards {
            let campaign = if first_order {
                (kind == "purchase").then_some("")
            } else {
                value.properties.iter().find_map(|(name, p)| match p {
                    crate::timeline::StoredProp::Str(c)
                        if name == crate::kinds::CAMPAIGN_PROPERTY =>
                    {
                        rw::campaign_of(c)
                    }
                    _ => None,
                })
            };
            if let Some(c) = campaign {
                // keys run newest first: the last one seen is the oldest
                out.firsts
                    .insert((key.user_id, rule, c.to_owned()), (key.ts_ms, key.seq));
            }
        }
        let is_activity = crate::metrics::counts_as_activity(non_activity_kinds, kind);
        if !growth.reads(kind, is_activity) {
            continue;
        }
        let day = out
            .growth
            .entry(key.user_id)
            .or_default()
            .entry(local_day(key.ts_ms, offset))
            .or_default();
        growth.add_event(day, kind, is_activity, value.amount_minor);
    }
    for days in out.sign_in_days.values_mut() {
        days.reverse();
    }
    for days in out.growth.values_mut() {
        days.retain(|_, g| !g.is_empty());
    }
    out.growth.retain(|_, days| !days.is_empty());
    Ok(out)
}
