//! Every setting an operator changes after creation, as one document
//! (docs/cli.md, "settings"), on the [`Db`] handle.

use super::Db;
use crate::error::Result;
use crate::write::{SettingsApplied, SettingsDocument};

impl Db {
    /// The settings in force as one document, every section present: what
    /// `stickydb settings show` prints and [`Db::apply_settings`] takes back.
    pub fn settings_document(&self) -> SettingsDocument {
        self.writer().current_settings().document()
    }

    /// Applies `doc` (its missing sections stay as they are) as one job:
    /// its first batch saves every changed setting with the job's record,
    /// then whatever they need re-derived runs — attribution under a new
    /// window (moving referral credits), every account's tier under new
    /// tiers, every published stage under a new model — with every writer
    /// held off. A kill leaves nothing or the record; this call again (or
    /// [`Db::finish_jobs`]) finishes it. A document that fails a check
    /// changes nothing. Returns which sections changed and what was
    /// re-derived (see [`SettingsDocument`] for an example).
    pub fn apply_settings(&self, doc: &SettingsDocument) -> Result<SettingsApplied> {
        self.writer().apply_settings(doc)
    }
}
