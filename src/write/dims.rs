//! Declaring and dropping dimensions: the set is stored with every writer
//! held off, in the batch that records the job adding (or deleting) the
//! dimension's aggregates, so a kill at any instant leaves a job the next
//! writable call finishes — never a dimension that misses stored events.

use std::sync::Arc;

use super::jobs;
use super::Writer;
use crate::dims::{DimSet, Dimension};
use crate::error::Result;
use crate::store::{Batch, Job, JobKind};

impl Writer<'_> {
    /// Declares `d` and adds every stored event's part of it.
    pub(crate) fn declare_dimension(&self, d: &Dimension) -> Result<()> {
        self.change_dims(|set| set.with(d), |id| JobKind::DimBackfill { dim: id })
    }

    /// Drops dimension `name` and deletes its aggregates and values.
    pub(crate) fn drop_dimension(&self, name: &str) -> Result<()> {
        self.change_dims(|set| set.without(name), |id| JobKind::DimDrop { dim: id })
    }

    fn change_dims(
        &self,
        change: impl FnOnce(&DimSet) -> Result<(DimSet, u16)>,
        job_of: impl FnOnce(u16) -> JobKind,
    ) -> Result<()> {
        self.check_not_nested()?;
        self.store.check_writable()?;
        let _advance = self.advance_lock.lock();
        let mut all = self.stripes.lock_all();
        self.finish_pending(&mut all)?;
        let (next, id, kind) = {
            let guard = self.dims.set.read();
            let (next, id) = change(&guard)?;
            (Arc::new(next), id, job_of(id))
        };
        let mut batch = Batch::new();
        next.save(&mut batch)?;
        let _running = jobs::record(self.store, &Job::new(kind), batch)?;
        // (in memory only once stored; a new dimension starts with no value)
        match kind {
            JobKind::DimBackfill { .. } => self.dims.values.write().declare(id),
            _ => self.dims.values.write().forget(id),
        }
        *self.dims.set.write() = next;
        self.resume_recorded(&mut all).map(|_| ())
    }
}
