//! Lifecycle stages as data: ordered rules over per-user inputs (SPEC §3).

use serde::{Deserialize, Serialize};

use crate::error::{InputError, Problem};

/// Most rules one stage model may hold.
pub const MAX_STAGE_RULES: usize = 32;
/// Most alternatives per rule and conditions per alternative.
const MAX_CONDITIONS: usize = 16;
/// Longest stage name, in bytes.
pub const MAX_STAGE_NAME_BYTES: usize = 64;

/// A per-user input a stage rule can test, evaluated as of a day `d`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StageInput {
    /// `d` − first activity day.
    DaysSinceFirstActivity,
    /// `d` − last activity day at or before `d`.
    DaysSinceLastActivity,
    /// Distinct active days in `d−29..=d`.
    ActiveDaysLast30,
    /// Distinct active days in `d−59..=d−30`.
    ActiveDaysPrev30,
    /// Distinct days with a purchase, up to `d`.
    PurchaseDays,
    /// Purchases minus refunds up to `d`, minor units.
    NetSpendMinor,
}

/// One test on the inputs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Condition {
    /// `input <= value`.
    AtMost(StageInput, i64),
    /// `input >= value`.
    AtLeast(StageInput, i64),
    /// `input × 100 < of × percent` (e.g. "fewer than half": percent 50).
    BelowPercentOf {
        /// The tested input.
        input: StageInput,
        /// The input it is compared with.
        of: StageInput,
        /// The share of `of`, in percent.
        percent: i64,
    },
}

/// A stage and when it applies: any of the alternatives, each a conjunction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageRule {
    /// The stage's name.
    pub stage: String,
    /// Alternatives (or); each a list of conditions that must all hold (and).
    pub any_of: Vec<Vec<Condition>>,
}

/// An ordered list of rules: a user's stage is the first rule that matches,
/// else `fallback`. Users with no activity up to the day have no stage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageModel {
    /// Rules, first match wins.
    pub rules: Vec<StageRule>,
    /// The stage of a user no rule matches.
    pub fallback: String,
}

/// The inputs of one user as of one day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Inputs {
    pub days_since_first: i64,
    pub days_since_last: i64,
    pub active_last30: i64,
    pub active_prev30: i64,
    pub purchase_days: i64,
    pub net_spend_minor: i64,
}

impl Inputs {
    fn get(&self, i: StageInput) -> i64 {
        match i {
            StageInput::DaysSinceFirstActivity => self.days_since_first,
            StageInput::DaysSinceLastActivity => self.days_since_last,
            StageInput::ActiveDaysLast30 => self.active_last30,
            StageInput::ActiveDaysPrev30 => self.active_prev30,
            StageInput::PurchaseDays => self.purchase_days,
            StageInput::NetSpendMinor => self.net_spend_minor,
        }
    }
}

impl Condition {
    fn holds(&self, x: &Inputs) -> bool {
        match *self {
            Condition::AtMost(i, v) => x.get(i) <= v,
            Condition::AtLeast(i, v) => x.get(i) >= v,
            Condition::BelowPercentOf { input, of, percent } => {
                i128::from(x.get(input)) * 100 < i128::from(x.get(of)) * i128::from(percent)
            }
        }
    }
}

impl StageModel {
    /// The SPEC §3 model with its default thresholds: new 7 days, declining
    /// 14 days, churned 30 days.
    pub fn standard() -> Self {
        Self::with_thresholds(7, 14, 30)
    }

    /// The SPEC §3 model: `new` (first activity within `new_days`),
    /// `churned` (no activity within `churn_days`), `declining` (no activity
    /// within `decline_days`, or active days in the last 30 fewer than half of
    /// the 30 before), `mature` (active within 30 days, ≥ 2 purchase days),
    /// `growing` (active within 30 days). First match wins.
    pub fn with_thresholds(new_days: i64, decline_days: i64, churn_days: i64) -> Self {
        use Condition::*;
        use StageInput::*;
        let rule = |stage: &str, any_of: Vec<Vec<Condition>>| StageRule {
            stage: stage.to_owned(),
            any_of,
        };
        Self {
            rules: vec![
                rule(
                    "new",
                    vec![vec![AtMost(DaysSinceFirstActivity, new_days - 1)]],
                ),
                rule(
                    "churned",
                    vec![vec![AtLeast(DaysSinceLastActivity, churn_days)]],
                ),
                rule(
                    "declining",
                    vec![
                        vec![AtLeast(DaysSinceLastActivity, decline_days)],
                        vec![BelowPercentOf {
                            input: ActiveDaysLast30,
                            of: ActiveDaysPrev30,
                            percent: 50,
                        }],
                    ],
                ),
                rule(
                    "mature",
                    vec![vec![
                        AtMost(DaysSinceLastActivity, 29),
                        AtLeast(PurchaseDays, 2),
                    ]],
                ),
                rule("growing", vec![vec![AtMost(DaysSinceLastActivity, 29)]]),
            ],
            fallback: "other".to_owned(),
        }
    }

    /// Checks the model's bounds and names.
    pub fn validate(&self) -> Result<(), InputError> {
        InputError::check_count("stage_model.rules", self.rules.len(), MAX_STAGE_RULES)?;
        crate::users::check_name(&self.fallback, MAX_STAGE_NAME_BYTES)
            .map_err(|p| InputError::new("stage_model.fallback", p))?;
        for (i, r) in self.rules.iter().enumerate() {
            crate::users::check_name(&r.stage, MAX_STAGE_NAME_BYTES)
                .map_err(|p| InputError::new("stage_model.rules.stage", p).at(i))?;
            let too_many = r.any_of.len() > MAX_CONDITIONS
                || r.any_of.iter().any(|c| c.len() > MAX_CONDITIONS);
            if too_many {
                return Err(InputError::new(
                    "stage_model.rules.any_of",
                    Problem::TooMany {
                        count: r.any_of.len().max(r.any_of.iter().map(Vec::len).sum()),
                        max: MAX_CONDITIONS,
                    },
                )
                .at(i));
            }
        }
        Ok(())
    }

    /// Every stage name the model can yield, in rule order, fallback last.
    pub fn stages(&self) -> Vec<&str> {
        let mut v: Vec<&str> = Vec::new();
        for r in &self.rules {
            if !v.contains(&r.stage.as_str()) {
                v.push(&r.stage);
            }
        }
        if !v.contains(&self.fallback.as_str()) {
            v.push(&self.fallback);
        }
        v
    }

    /// Whether any rule reads `input`.
    pub(crate) fn uses(&self, input: StageInput) -> bool {
        self.rules
            .iter()
            .flat_map(|r| r.any_of.iter().flatten())
            .any(|c| match *c {
                Condition::AtMost(i, _) | Condition::AtLeast(i, _) => i == input,
                Condition::BelowPercentOf {
                    input: a, of: b, ..
                } => a == input || b == input,
            })
    }

    pub(crate) fn classify(&self, x: &Inputs) -> &str {
        self.rules
            .iter()
            .find(|r| r.any_of.iter().any(|all| all.iter().all(|c| c.holds(x))))
            .map_or(self.fallback.as_str(), |r| r.stage.as_str())
    }
}
