//! Experiments on the [`Db`] handle (docs/metrics.md, "Experiments").

use super::Db;
use crate::error::{InputError, Result};
use crate::experiments::{ExperimentQuery, ExperimentReport, ExperimentSettings, Experiments};
use crate::segments::Segment;

impl Db {
    /// The experiments of this store (docs/metrics.md, "Experiments"),
    /// answered from assignments kept on write, through one snapshot.
    ///
    /// ```
    /// # fn main() -> Result<(), stickydb::Error> {
    /// use stickydb::experiments::{ExperimentQuery, MetricSpec};
    /// use stickydb::{Event, PropValue};
    /// let dir = tempfile::tempdir()?;
    /// let db = stickydb::Db::create(dir.path(), stickydb::Options::default())?;
    /// let t = 1_700_000_000_000;
    /// let exposure = |user: &str, variant: &str| {
    ///     Event::new(user, "exposure", t)
    ///         .with_property("experiment", PropValue::Str("checkout".into()))
    ///         .with_property("variant", PropValue::Str(variant.into()))
    /// };
    /// db.record_batch(&[exposure("ann", "control"), exposure("bob", "b")])?;
    /// db.record(&Event::new("bob", "purchase", t + 60_000).with_amount(500))?;
    /// let metric = MetricSpec::parse("conversion:purchase:1h")?;
    /// let report = db.experiment(&ExperimentQuery::new("checkout", metric), None, t)?;
    /// assert_eq!(report.variants[1].converted, Some(1));
    /// # Ok(()) }
    /// ```
    pub fn experiments(&self) -> Experiments<'_> {
        Experiments { m: self.metrics() }
    }

    /// Answers an experiment question over the users of `segment` (all
    /// when `None`), with time-relative atoms and retention's "has the day
    /// come" as of the local day of `now_ms`.
    pub fn experiment(
        &self,
        query: &ExperimentQuery,
        segment: Option<&Segment>,
        now_ms: i64,
    ) -> Result<ExperimentReport> {
        crate::time::check_ts(now_ms).map_err(|p| InputError::new("now_ms", p))?;
        let filter = segment.map(|s| self.segment(s, now_ms)).transpose()?;
        self.experiments()
            .report(query, filter.as_ref(), self.local_day(now_ms))
    }

    /// The experiment settings (the exposure kind).
    pub fn experiment_settings(&self) -> ExperimentSettings {
        self.experiment_settings.clone()
    }
}
