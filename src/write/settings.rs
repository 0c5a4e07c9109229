//! Every setting an operator may change after creation, as one document
//! applied as one job (docs/cli.md, "settings"): the earning rules, the
//! tiers, the stage model, the attribution window, the anonymous-id
//! prefixes and the expiry-notice period.
//!
//! Its first batch saves every changed setting with the job's record, so
//! a kill leaves either nothing or the new settings with the record of
//! what they still need re-derived (tiers, stages, attribution); the next
//! call (this one again, or `finish_jobs`) finishes it.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::Writer;
use crate::error::Result;
use crate::feed::Clock;
use crate::ledger::{EarnRule, GrowthRule, LedgerSettings, TierBasis, Tiers};
use crate::metrics::{MetricSettings, StageModel};
use crate::social::SocialSettings;
use crate::store::{Batch, Job, JobKind};
use crate::users::IdentitySettings;

/// The settings an operator changes after creation, as one document
/// ([`crate::Db::settings_document`], [`crate::Db::apply_settings`]). Every
/// section is optional when applied: a missing one stays as it is. Unknown
/// fields are refused, so a typo is an error, not a silent default.
///
/// ```
/// # fn main() -> Result<(), stickydb::Error> {
/// let dir = tempfile::tempdir()?;
/// let db = stickydb::Db::create(dir.path(), stickydb::Options::default())?;
/// let doc: stickydb::SettingsDocument = serde_json::from_str(
///     r#"{"attribution_window_days": 14, "expiry_notice_days": 3}"#,
/// ).map_err(std::io::Error::other)?;
/// let applied = db.apply_settings(&doc)?;
/// assert_eq!(applied.changed, ["attribution_window_days", "expiry_notice_days"]);
/// assert_eq!(db.settings_document().attribution_window_days, Some(14));
/// // the same document again changes nothing
/// assert!(db.apply_settings(&doc)?.changed.is_empty());
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct SettingsDocument {
    /// Earning rules (every matching rule credits, in order).
    pub earning_rules: Option<Vec<EarnRule>>,
    /// Tiers: growth window and levels.
    pub tiers: Option<Tiers>,
    /// The lifecycle-stage model.
    pub stage_model: Option<StageModel>,
    /// The social attribution window, in days.
    pub attribution_window_days: Option<u32>,
    /// Prefixes of anonymous external ids.
    pub anonymous_prefixes: Option<Vec<String>>,
    /// How many days before a lot's expiry its notice is due.
    pub expiry_notice_days: Option<u32>,
    /// Growth rules (docs/ledger.md#growth-value); changing them
    /// re-derives every user's growth value from its events. Shown only
    /// when there are any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub growth_rules: Option<Vec<GrowthRule>>,
    /// What tiers grow from: `points` or `growth_value`. Shown only when
    /// it is `growth_value`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier_basis: Option<TierBasis>,
}

/// What [`crate::Db::apply_settings`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct SettingsApplied {
    /// The document's sections that changed, in the document's order.
    pub changed: Vec<&'static str>,
    /// What was re-derived under them: `attribution`, `growth`, `tiers`,
    /// `stages`.
    pub rederived: Vec<&'static str>,
}

/// The settings in force, whole.
pub(crate) struct Current {
    pub ledger: LedgerSettings,
    pub metric: MetricSettings,
    pub social: SocialSettings,
    pub identity: IdentitySettings,
    pub clock: Clock,
}

impl Current {
    /// The document of these settings, every section present.
    pub fn document(&self) -> SettingsDocument {
        SettingsDocument {
            earning_rules: Some(self.ledger.rules.clone()),
            tiers: Some(self.ledger.tiers.clone()),
            stage_model: Some(self.metric.stage_model.clone()),
            attribution_window_days: Some(self.social.window_days),
            anonymous_prefixes: Some(self.identity.anonymous_prefixes.clone()),
            expiry_notice_days: Some(self.clock.notice_days),
            // (absent while unused: the document of a store without growth
            // rules keeps the shape it had before they existed)
            growth_rules: Some(self.ledger.growth().rules.clone()).filter(|r| !r.is_empty()),
            tier_basis: Some(self.ledger.growth().tier_basis).filter(|b| *b != TierBasis::Points),
        }
    }

    /// These settings with `doc`'s sections in place, checked whole.
    fn with(&self, doc: &SettingsDocument) -> Result<Current> {
        let mut ledger = self.ledger.clone();
        if let Some(rules) = &doc.earning_rules {
            ledger.rules = rules.clone();
        }
        if let Some(tiers) = &doc.tiers {
            ledger.tiers = tiers.clone();
        }
        if let Some(rules) = &doc.growth_rules {
            ledger.growth.rules = rules.clone();
        }
        if let Some(basis) = doc.tier_basis {
            ledger.growth.tier_basis = basis;
        }
        ledger.validate()?;
        ledger.growth.validate()?;
        let mut metric = self.metric.clone();
        if let Some(model) = &doc.stage_model {
            model.validate()?;
            metric.stage_model = model.clone();
        }
        let social = doc
            .attribution_window_days
            .map_or(self.social, SocialSettings::window);
        social.validate()?;
        let identity = match &doc.anonymous_prefixes {
            Some(p) => IdentitySettings::anonymous(p.iter().cloned()),
            None => self.identity.clone(),
        };
        identity.validate()?;
        let clock = match doc.expiry_notice_days {
            Some(days) => {
                super::advance::check_notice_days(days)?;
                super::advance::with_notice_days(&self.clock, days)
            }
            None => self.clock,
        };
        Ok(Current {
            ledger,
            metric,
            social,
            identity,
            clock,
        })
    }

    /// The sections that differ from `old`, in the document's order.
    fn changed_from(&self, old: &Current) -> Vec<&'static str> {
        [
            ("earning_rules", self.ledger.rules != old.ledger.rules),
            ("tiers", self.ledger.tiers != old.ledger.tiers),
            (
                "stage_model",
                self.metric.stage_model != old.metric.stage_model,
            ),
            ("attribution_window_days", self.social != old.social),
            ("anonymous_prefixes", self.identity != old.identity),
            (
                "expiry_notice_days",
                self.clock.notice_days != old.clock.notice_days,
            ),
            (
                "growth_rules",
                self.ledger.growth.rules != old.ledger.growth.rules,
            ),
            (
                "tier_basis",
                self.ledger.growth.tier_basis != old.ledger.growth.tier_basis,
            ),
        ]
        .into_iter()
        .filter_map(|(name, changed)| changed.then_some(name))
        .collect()
    }
}

impl Writer<'_> {
    /// The settings in force. Taken in the lock hierarchy's order.
    pub(crate) fn current_settings(&self) -> Current {
        let metric = MetricSettings::clone(&self.metric_settings.read());
        let clock = *self.clock.read();
        let social = *self.social.settings.read();
        let ledger = LedgerSettings::clone(&self.ledger_settings.read());
        let identity = self.identity_settings.read().clone();
        Current {
            ledger,
            metric,
            social,
            identity,
            clock,
        }
    }

    /// Applies `doc` as one job: a job an earlier call left recorded is
    /// finished first (so re-running a killed apply finishes it), then the
    /// changed settings are saved in the job's first batch and whatever
    /// they need re-derived runs, with every writer held off.
    pub(crate) fn apply_settings(&self, doc: &SettingsDocument) -> Result<SettingsApplied> {
        self.check_not_nested()?;
        self.store.check_writable()?;
        let _advance = self.advance_lock.lock();
        let mut all = self.stripes.lock_all();
        self.finish_pending(&mut all)?;
        let old = self.current_settings();
        let next = old.with(doc)?;
        let changed = next.changed_from(&old);
        if changed.is_empty() {
            return Ok(SettingsApplied::default());
        }
        let growth = next.ledger.growth.rules != old.ledger.growth.rules;
        let (social, retier, stage) = (
            next.social != old.social,
            next.ledger.tiers != old.ledger.tiers
                || next.ledger.growth.tier_basis != old.ledger.growth.tier_basis,
            next.metric.stage_model != old.metric.stage_model,
        );
        let rederived = [
            ("attribution", social),
            ("growth", growth),
            ("tiers", retier || growth),
            ("stages", stage),
        ]
        .into_iter()
        .filter_map(|(name, yes)| yes.then_some(name))
        .collect::<Vec<_>>();
        let kind = if growth {
            JobKind::SettingsGrowth { social, stage }
        } else {
            JobKind::Settings {
                social,
                retier,
                stage,
            }
        };
        let running = self.save_settings(next, (!rederived.is_empty()).then_some(kind))?;
        if running.is_some() {
            self.resume_recorded(&mut all)?;
        }
        Ok(SettingsApplied { changed, rederived })
    }

    /// Saves `next` in one batch (with `job`'s record when it needs one)
    /// and then puts it in force, holding every settings lock in the
    /// hierarchy's order so no reader sees half of it.
    fn save_settings(
        &self,
        next: Current,
        job: Option<JobKind>,
    ) -> Result<Option<crate::store::JobRun<'_>>> {
        let mut metric = self.metric_settings.write();
        let mut clock = self.clock.write();
        let _social = self.social.lock.lock();
        let mut social = self.social.settings.write();
        let mut ledger = self.ledger_settings.write();
        let mut identity = self.identity_settings.write();
        let mut first = Batch::new();
        crate::ledger::rules::save(&mut first, &next.ledger)?;
        crate::metrics::put_settings(&mut first, &next.metric)?;
        crate::social::put_settings(&mut first, &next.social)?;
        crate::users::put_identity_settings(&mut first, &next.identity)?;
        next.clock.save(&mut first)?;
        let running = match job {
            Some(kind) => Some(super::jobs::record(self.store, &Job::new(kind), first)?),
            None => {
                self.store.write(first)?;
                None
            }
        };
        // (in memory only once stored)
        *metric = Arc::new(next.metric);
        *clock = next.clock;
        *social = next.social;
        *ledger = Arc::new(next.ledger);
        *identity = next.identity;
        Ok(running)
    }
}
