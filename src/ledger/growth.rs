//! Growth value (SPEC §4, docs/ledger.md#growth-value): a second per-user
//! balance that never spends, earned by its own rules, and the setting that
//! makes tiers grow from it instead of from earned points.
//!
//! Growth value is **derived from the user's events** by the rules in
//! force: per local day, each rule's raw sum (a refund taking off what a
//! spend rule gave), capped per day; so it is exact whatever order, lateness
//! or duplication the events arrive with, an identity merge re-derives it
//! from the moved events, and `verify` recomputes it from the timelines.
//! Changing the rules re-derives every user's (a settings job). Owns the
//! `ledger` records of tag [`crate::keys::ledger::GROWTH_VALUE`] and the
//! `meta` key of the settings; must not touch points.

use serde::{Deserialize, Serialize};

use crate::error::{InputError, Problem, Result};
use crate::store::{Cf, Store};

/// Most growth rules a store may define.
pub const MAX_GROWTH_RULES: usize = 64;

/// The rule kind that matches every event counting as activity (with a
/// daily cap equal to its value it gives that value once per active day).
pub const ANY_ACTIVITY: &str = "*";

/// The event kinds a spend rule reads: a `per_amount` rule on `purchase`
/// takes `refund` amounts off at the same rate (net spend).
const PURCHASE: &str = "purchase";
const REFUND: &str = "refund";

/// How much growth one event gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum GrowthValue {
    /// A fixed value per event.
    Fixed(i64),
    /// `floor(amount_minor × growth / per_minor)` per event with a positive
    /// amount.
    PerAmount {
        /// Growth per `per_minor` minor units.
        growth: i64,
        /// Minor units per `growth`.
        per_minor: i64,
    },
}

/// One growth rule.
///
/// ```
/// use stickydb::ledger::{GrowthRule, GrowthSettings, GrowthValue, TierBasis};
/// let s = GrowthSettings::new(
///     vec![
///         // one per currency unit of net spend
///         GrowthRule::new("purchase", GrowthValue::PerAmount { growth: 1, per_minor: 100 }),
///         // 10 per active day
///         GrowthRule::new("*", GrowthValue::Fixed(10)).daily_cap(10),
///         // 5 per review, at most 15 a day
///         GrowthRule::new("review", GrowthValue::Fixed(5)).daily_cap(15),
///     ],
///     TierBasis::GrowthValue,
/// );
/// assert!(s.validate().is_ok());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct GrowthRule {
    /// The event kind, or [`ANY_ACTIVITY`] (`*`): every activity event.
    pub kind: String,
    /// How much per event.
    pub value: GrowthValue,
    /// Most growth this rule gives one user on one local day. Not allowed
    /// on a spend rule (refunds of other days could not be kept exact).
    /// (Stored with bincode: no `skip_serializing_if`.)
    #[serde(default)]
    pub daily_cap: Option<i64>,
}

impl GrowthRule {
    /// A rule without a cap.
    pub fn new(kind: impl Into<String>, value: GrowthValue) -> Self {
        Self {
            kind: kind.into(),
            value,
            daily_cap: None,
        }
    }

    /// This rule capped at `cap` per user and local day.
    pub fn daily_cap(mut self, cap: i64) -> Self {
        self.daily_cap = Some(cap);
        self
    }

    /// Whether refunds take growth off (a `per_amount` rule on `purchase`).
    pub fn is_spend(&self) -> bool {
        self.kind == PURCHASE && matches!(self.value, GrowthValue::PerAmount { .. })
    }

    /// Raw growth this rule gives an event (negative: a refund's), before caps.
    fn raw(&self, kind: &str, is_activity: bool, amount_minor: Option<i64>) -> i64 {
        let per_amount = |growth: i64, per_minor: i64| match amount_minor {
            // i128: amount × growth can exceed i64 before the division.
            Some(a) if a > 0 => (i128::from(a) * i128::from(growth) / i128::from(per_minor))
                .min(i128::from(super::MAX_POINTS)) as i64,
            _ => 0,
        };
        if self.is_spend() && kind == REFUND {
            if let GrowthValue::PerAmount { growth, per_minor } = self.value {
                return -per_amount(growth, per_minor);
            }
        }
        let matches = if self.kind == ANY_ACTIVITY {
            is_activity
        } else {
            self.kind == kind
        };
        if !matches {
            return 0;
        }
        match self.value {
            GrowthValue::Fixed(n) => n,
            GrowthValue::PerAmount { growth, per_minor } => per_amount(growth, per_minor),
        }
    }
}

/// What tiers grow from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum TierBasis {
    /// Points earned in the tier window (the default).
    #[default]
    Points,
    /// Growth value in the tier window.
    GrowthValue,
}

impl TierBasis {
    /// The basis's name, as in the settings document.
    pub fn name(self) -> &'static str {
        match self {
            TierBasis::Points => "points",
            TierBasis::GrowthValue => "growth_value",
        }
    }
}

/// The growth rules and the tiers' basis.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct GrowthSettings {
    /// Every matching rule gives growth (a rule's index names it in records).
    pub rules: Vec<GrowthRule>,
    /// What tiers grow from.
    pub tier_basis: TierBasis,
}

fn out_of_range(field: &'static str, value: i64, i: usize) -> InputError {
    InputError::new(
        field,
        Problem::OutOfRange {
            value,
            min: 1,
            max: super::MAX_POINTS,
        },
    )
    .at(i)
}

impl GrowthSettings {
    /// Settings of these rules and this basis.
    pub fn new(rules: Vec<GrowthRule>, tier_basis: TierBasis) -> Self {
        Self { rules, tier_basis }
    }

    /// Checks every rule; errors name the rule by index.
    pub fn validate(&self) -> Result<(), InputError> {
        InputError::check_count("growth_rules", self.rules.len(), MAX_GROWTH_RULES)?;
        let range = 1..=super::MAX_POINTS;
        for (i, r) in self.rules.iter().enumerate() {
            if r.kind != ANY_ACTIVITY {
                crate::users::check_name(&r.kind, crate::timeline::MAX_KIND_BYTES)
                    .map_err(|p| InputError::new("growth_rule.kind", p).at(i))?;
            }
            match r.value {
                GrowthValue::Fixed(n) if !range.contains(&n) => {
                    return Err(out_of_range("growth_rule.value", n, i))
                }
                GrowthValue::PerAmount { growth, per_minor } => {
                    if !range.contains(&growth) {
                        return Err(out_of_range("growth_rule.growth", growth, i));
                    }
                    if !range.contains(&per_minor) {
                        return Err(out_of_range("growth_rule.per_minor", per_minor, i));
                    }
                }
                GrowthValue::Fixed(_) => {}
            }
            match r.daily_cap {
                Some(_) if r.is_spend() => {
                    return Err(InputError::new(
                        "growth_rule.daily_cap",
                        Problem::Unparsable {
                            reason: "a spend rule takes refunds off and cannot be capped".into(),
                        },
                    )
                    .at(i))
                }
                Some(c) if !range.contains(&c) => {
                    return Err(out_of_range("growth_rule.daily_cap", c, i))
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Whether any rule reads an event of `kind` (refunds count for spend
    /// rules, activity for `*` rules).
    pub(crate) fn reads(&self, kind: &str, is_activity: bool) -> bool {
        self.rules.iter().any(|r| {
            r.kind == kind
                || (r.kind == ANY_ACTIVITY && is_activity)
                || (r.is_spend() && kind == REFUND)
        })
    }

    /// Adds what one event gives to `day`'s raw sums.
    pub(crate) fn add_event(
        &self,
        day: &mut GrowthDay,
        kind: &str,
        is_activity: bool,
        amount_minor: Option<i64>,
    ) {
        for (i, rule) in self.rules.iter().enumerate() {
            let raw = rule.raw(kind, is_activity, amount_minor);
            if raw != 0 {
                day.add(i as u16, raw);
            }
        }
        day.value = self.value_of(day);
    }

    /// A day's growth value from its raw sums: each rule's, capped.
    pub(crate) fn value_of(&self, day: &GrowthDay) -> i64 {
        day.raw
            .iter()
            .map(
                |&(rule, raw)| match self.rules.get(usize::from(rule)).and_then(|r| r.daily_cap) {
                    Some(cap) => raw.min(cap),
                    None => raw,
                },
            )
            .fold(0i64, i64::saturating_add)
    }
}

/// One user's growth on one local day, as stored: the value and each rule's
/// raw (uncapped) sum, so a late event of a capped day adds exactly.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct GrowthDay {
    /// The day's growth value (sum over rules, each capped).
    pub value: i64,
    /// `(rule, raw sum)` in rule order, no zero sums.
    pub raw: Vec<(u16, i64)>,
}

impl GrowthDay {
    fn add(&mut self, rule: u16, delta: i64) {
        match self.raw.binary_search_by_key(&rule, |(r, _)| *r) {
            Ok(at) => {
                self.raw[at].1 = self.raw[at].1.saturating_add(delta);
                if self.raw[at].1 == 0 {
                    self.raw.remove(at);
                }
            }
            Err(at) => self.raw.insert(at, (rule, delta)),
        }
    }

    /// Whether no rule gave anything that day.
    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }
}

/// A user's growth as of one moment (`Db::growth_value`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct GrowthBalance {
    /// Growth value over the user's whole history (never below 0).
    pub balance: i64,
    /// Growth value over the tier window ending on the moment's local day
    /// (never below 0).
    pub in_window: i64,
    /// The tier window, in local days.
    pub window_days: u32,
    /// What tiers grow from.
    pub tier_basis: TierBasis,
    /// The user's current tier.
    pub tier: Option<String>,
}

/// Loads the growth settings (defaults when none were saved).
pub(crate) fn load(store: &Store) -> Result<GrowthSettings> {
    Ok(store
        .get(Cf::Meta, crate::keys::meta::GROWTH_SETTINGS)?
        .unwrap_or_default())
}

/// Persists the growth settings into `batch` (none saved for the defaults).
pub(crate) fn save(batch: &mut crate::store::Batch, settings: &GrowthSettings) -> Result<()> {
    let key = crate::keys::meta::GROWTH_SETTINGS;
    if *settings == GrowthSettings::default() {
        batch.delete(Cf::Meta, key);
    } else {
        batch.put(Cf::Meta, key, crate::codec::encode(settings)?);
    }
    Ok(())
}
