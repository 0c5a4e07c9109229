//! The demo's loyalty programme: earning rules and tiers, and the growth
//! rules the tiers grow from.

/// Loyalty programme of the demo shop: points for sign-ins (10 a day),
/// reviews and shares, one point per currency unit spent (expiring after a
/// year), 200 for a first order, 50 for every 7-day sign-in streak, and
/// four tiers over a trailing year.
pub(super) fn points() -> crate::LedgerSettings {
    use crate::ledger::{EarnRule, RulePoints, TierLevel, Tiers};
    let rule = |kind: &str, points, cap, expiry| EarnRule {
        kind: kind.into(),
        points,
        daily_cap_points: cap,
        expires_after_days: expiry,
    };
    let tier = |name: &str, min_growth| TierLevel {
        name: name.into(),
        min_growth,
    };
    crate::LedgerSettings::new(
        vec![
            rule("sign_in", RulePoints::Fixed(10), Some(10), Some(90)),
            rule("review", RulePoints::Fixed(50), Some(100), Some(365)),
            rule("share", RulePoints::Fixed(20), Some(20), Some(365)),
            rule(
                "purchase",
                RulePoints::PerAmount {
                    points: 1,
                    per_minor: 100,
                },
                None,
                Some(365),
            ),
            rule(
                crate::ledger::FIRST_ORDER_KIND,
                RulePoints::Fixed(200),
                None,
                Some(365),
            ),
            rule(
                "reward:sign_in_streak:7",
                RulePoints::Fixed(50),
                None,
                Some(90),
            ),
        ],
        Tiers {
            window_days: 365,
            levels: vec![
                tier("bronze", 100),
                tier("silver", 500),
                tier("gold", 1_500),
                tier("platinum", 4_000),
            ],
        },
    )
}

/// Tiers grow from growth value: net spend, active days and reviews.
pub(super) fn growth() -> crate::SettingsDocument {
    use crate::ledger::{GrowthRule, GrowthValue, TierBasis};
    crate::SettingsDocument {
        growth_rules: Some(vec![
            GrowthRule::new(
                "purchase",
                GrowthValue::PerAmount {
                    growth: 1,
                    per_minor: 100,
                },
            ),
            GrowthRule::new("*", GrowthValue::Fixed(10)).daily_cap(10),
            GrowthRule::new("review", GrowthValue::Fixed(50)).daily_cap(100),
        ]),
        tier_basis: Some(TierBasis::GrowthValue),
        ..Default::default()
    }
}
