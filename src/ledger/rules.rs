//! Ledger settings: earning rules and tiers, as data persisted in `meta`.

use serde::{Deserialize, Serialize};

use crate::error::{InputError, Problem, Result};
use crate::store::{Cf, Store};

/// Most earning rules a store may define.
pub const MAX_RULES: usize = 64;
/// Most tier levels a store may define.
pub const MAX_TIERS: usize = 16;
/// Longest tier window, in days.
pub const MAX_TIER_WINDOW_DAYS: u32 = 3660;
/// Longest rule-credit lifetime, in days.
pub const MAX_RULE_EXPIRY_DAYS: u32 = 3660;
/// Longest tier name, in bytes.
pub const MAX_TIER_NAME_BYTES: usize = 64;

/// How a rule computes points from an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RulePoints {
    /// A fixed number of points per event.
    Fixed(i64),
    /// `floor(amount_minor × points / per_minor)`: e.g. `points: 1,
    /// per_minor: 100` is one point per currency unit of a cent currency.
    /// Events without a positive amount earn nothing.
    PerAmount {
        /// Points per `per_minor` minor units.
        points: i64,
        /// Minor units per `points`.
        per_minor: i64,
    },
}

/// Points credited for events of one kind, in the event's own write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EarnRule {
    /// The event kind (`purchase`, `sign_in`, `review`, …).
    pub kind: String,
    /// How many points.
    pub points: RulePoints,
    /// Most points this rule credits one user on one local day.
    pub daily_cap_points: Option<i64>,
    /// Rule credits expire this many days after the event.
    pub expires_after_days: Option<u32>,
}

/// One tier: reached when the growth value is at least `min_growth`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TierLevel {
    /// The tier's name (`bronze`, `gold`, …).
    pub name: String,
    /// Growth value needed.
    pub min_growth: i64,
}

/// Tiers: growth value = points earned over the trailing `window_days` local
/// days (the current day included); the highest level reached names the tier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tiers {
    /// Trailing window, in local days.
    pub window_days: u32,
    /// Levels in ascending `min_growth`; empty = no tiers.
    pub levels: Vec<TierLevel>,
}

impl Default for Tiers {
    fn default() -> Self {
        Self {
            window_days: 365,
            levels: Vec::new(),
        }
    }
}

impl Tiers {
    /// The tier reached with `growth`.
    pub fn tier_for(&self, growth: i64) -> Option<&str> {
        self.levels
            .iter()
            .rev()
            .find(|l| growth >= l.min_growth)
            .map(|l| l.name.as_str())
    }
}

/// The ledger's settings.
///
/// ```
/// use stickydb::ledger::{EarnRule, LedgerSettings, RulePoints, TierLevel, Tiers};
/// let s = LedgerSettings::new(
///     vec![EarnRule {
///         kind: "purchase".into(),
///         points: RulePoints::PerAmount { points: 1, per_minor: 100 },
///         daily_cap_points: Some(5_000),
///         expires_after_days: Some(365),
///     }],
///     Tiers {
///         window_days: 365,
///         levels: vec![
///             TierLevel { name: "silver".into(), min_growth: 1_000 },
///             TierLevel { name: "gold".into(), min_growth: 5_000 },
///         ],
///     },
/// );
/// assert!(s.validate().is_ok());
/// assert_eq!(s.tiers.tier_for(2_000), Some("silver"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct LedgerSettings {
    /// Earning rules; every matching rule credits (in order).
    pub rules: Vec<EarnRule>,
    /// Tier definition.
    pub tiers: Tiers,
    /// Growth rules and the tiers' basis: kept with these settings in
    /// memory (one snapshot for a write) but stored under their own key
    /// and changed only through the settings document.
    #[serde(skip)]
    pub(crate) growth: super::GrowthSettings,
}

/// A sign-in streak rule names its block length (1..=366 days), a
/// birthday rule its window (1..=31 days); both pay a fixed number of
/// points (a streak has no amount; a birthday's does not matter).
fn check_streak(r: &EarnRule) -> Result<(), InputError> {
    use super::session::{birthday, streak};
    let (n, what, ok, max) = if let Some(n) = r
        .kind
        .strip_prefix(crate::kinds::SIGN_IN_STREAK_KIND_PREFIX)
    {
        let ok = streak::streak_days(&r.kind).is_some();
        (n, "a sign-in streak", ok, streak::MAX_STREAK_DAYS)
    } else if let Some(n) = r.kind.strip_prefix(crate::kinds::BIRTHDAY_KIND_PREFIX) {
        let ok = birthday::window_days(&r.kind).is_some();
        (
            n,
            "a birthday reward",
            ok,
            birthday::MAX_BIRTHDAY_WINDOW_DAYS,
        )
    } else {
        return Ok(());
    };
    if !ok {
        return Err(InputError::new(
            "rule.kind",
            Problem::Unparsable {
                reason: format!("{what}'s length {n:?} is not a number of days in 1..={max}"),
            },
        ));
    }
    if !matches!(r.points, RulePoints::Fixed(_)) {
        return Err(InputError::new(
            "rule.points",
            Problem::Unparsable {
                reason: format!("{what} pays fixed points"),
            },
        ));
    }
    Ok(())
}

fn out_of_range(field: &'static str, value: i64, min: i64, max: i64) -> InputError {
    InputError::new(field, Problem::OutOfRange { value, min, max })
}

impl LedgerSettings {
    /// Settings of these earning rules and tiers.
    pub fn new(rules: Vec<EarnRule>, tiers: Tiers) -> Self {
        Self {
            rules,
            tiers,
            growth: super::GrowthSettings::default(),
        }
    }

    /// The growth rules and the tiers' basis in force.
    pub fn growth(&self) -> &super::GrowthSettings {
        &self.growth
    }

    /// These settings with `rules` as the earning rules.
    pub fn rules(mut self, rules: Vec<EarnRule>) -> Self {
        self.rules = rules;
        self
    }

    /// These settings with `tiers` as the tier definition.
    pub fn tiers(mut self, tiers: Tiers) -> Self {
        self.tiers = tiers;
        self
    }

    /// Checks every rule and level; errors name the rule or level by index.
    pub fn validate(&self) -> Result<(), InputError> {
        InputError::check_count("rules", self.rules.len(), MAX_RULES)?;
        for (i, r) in self.rules.iter().enumerate() {
            crate::users::check_name(&r.kind, crate::timeline::MAX_KIND_BYTES)
                .map_err(|p| InputError::new("rule.kind", p).at(i))?;
            match r.points {
                RulePoints::Fixed(p) if !(1..=super::MAX_POINTS).contains(&p) => {
                    return Err(out_of_range("rule.points", p, 1, super::MAX_POINTS).at(i))
                }
                RulePoints::PerAmount { points, per_minor } => {
                    if !(1..=super::MAX_POINTS).contains(&points) {
                        return Err(out_of_range("rule.points", points, 1, super::MAX_POINTS).at(i));
                    }
                    if !(1..=super::MAX_POINTS).contains(&per_minor) {
                        return Err(out_of_range(
                            "rule.per_minor",
                            per_minor,
                            1,
                            super::MAX_POINTS,
                        )
                        .at(i));
                    }
                }
                RulePoints::Fixed(_) => {}
            }
            check_streak(r).map_err(|e| e.at(i))?;
            let once = [crate::kinds::FIRST_ORDER_KIND, crate::kinds::CAMPAIGN_KIND];
            let streak = r.kind.starts_with(crate::kinds::SIGN_IN_STREAK_KIND_PREFIX)
                || r.kind.starts_with(crate::kinds::BIRTHDAY_KIND_PREFIX);
            if r.daily_cap_points.is_some() && (streak || once.contains(&r.kind.as_str())) {
                return Err(InputError::new(
                    "rule.daily_cap_points",
                    Problem::Unparsable {
                        reason: format!("{} pays once per user: it takes no daily cap", r.kind),
                    },
                )
                .at(i));
            }
            if let Some(c) = r.daily_cap_points {
                if !(1..=super::MAX_POINTS).contains(&c) {
                    return Err(
                        out_of_range("rule.daily_cap_points", c, 1, super::MAX_POINTS).at(i),
                    );
                }
            }
            if let Some(d) = r.expires_after_days {
                if !(1..=MAX_RULE_EXPIRY_DAYS).contains(&d) {
                    return Err(out_of_range(
                        "rule.expires_after_days",
                        i64::from(d),
                        1,
                        i64::from(MAX_RULE_EXPIRY_DAYS),
                    )
                    .at(i));
                }
            }
        }
        let t = &self.tiers;
        if !(1..=MAX_TIER_WINDOW_DAYS).contains(&t.window_days) {
            return Err(out_of_range(
                "tiers.window_days",
                i64::from(t.window_days),
                1,
                i64::from(MAX_TIER_WINDOW_DAYS),
            ));
        }
        InputError::check_count("tiers.levels", t.levels.len(), MAX_TIERS)?;
        for (i, l) in t.levels.iter().enumerate() {
            crate::users::check_name(&l.name, MAX_TIER_NAME_BYTES)
                .map_err(|p| InputError::new("tier.name", p).at(i))?;
            if l.name.contains(char::is_whitespace) {
                return Err(InputError::new(
                    "tier.name",
                    Problem::Unparsable {
                        reason: "must not contain whitespace (segments name tiers)".into(),
                    },
                )
                .at(i));
            }
            let min = match i {
                0 => 0,
                _ => t.levels[i - 1].min_growth.saturating_add(1),
            };
            if !(min..=super::MAX_BALANCE).contains(&l.min_growth) {
                return Err(
                    out_of_range("tier.min_growth", l.min_growth, min, super::MAX_BALANCE).at(i),
                );
            }
            if t.levels[..i].iter().any(|o| o.name == l.name) {
                return Err(InputError::new(
                    "tier.name",
                    Problem::Repeated {
                        name: l.name.clone(),
                    },
                )
                .at(i));
            }
        }
        Ok(())
    }

    /// Points `rule` credits for an event of `amount_minor` (before caps).
    pub(crate) fn rule_points(rule: &EarnRule, amount_minor: Option<i64>) -> i64 {
        match rule.points {
            RulePoints::Fixed(p) => p,
            RulePoints::PerAmount { points, per_minor } => match amount_minor {
                Some(a) if a > 0 => {
                    // i128: amount × points can exceed i64 before the division.
                    let p = i128::from(a) * i128::from(points) / i128::from(per_minor);
                    p.min(i128::from(super::MAX_POINTS)) as i64
                }
                _ => 0,
            },
        }
    }
}

/// Loads the ledger settings (defaults when none were saved), the growth
/// settings with them.
pub(crate) fn load(store: &Store) -> Result<LedgerSettings> {
    let mut settings: LedgerSettings = store
        .get(Cf::Meta, crate::keys::meta::LEDGER_SETTINGS)?
        .unwrap_or_default();
    settings.growth = super::growth::load(store)?;
    Ok(settings)
}

/// Persists the ledger settings (and the growth settings) into `batch`.
pub(crate) fn save(batch: &mut crate::store::Batch, settings: &LedgerSettings) -> Result<()> {
    batch.put(
        Cf::Meta,
        crate::keys::meta::LEDGER_SETTINGS,
        crate::codec::encode(settings)?,
    );
    super::growth::save(batch, &settings.growth)
}
