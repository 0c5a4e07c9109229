//! Profile writes: one update (attributes and tags) is one atomic write, and
//! purging expired tags settles one holder per write.

use crate::store::Batch;

use super::Writer;
use crate::error::{InputError, Result};
use crate::profiles::{self, ProfileUpdate, MAX_PURGE_PER_CALL};
use crate::time;
use crate::users;

impl Writer<'_> {
    /// Applies `update` to `user` as one atomic write.
    pub fn update_profile(&self, user: &str, update: &ProfileUpdate) -> Result<()> {
        let mut plan = super::tx::Plan::with_names([user]);
        plan.single_call = true;
        self.transact(plan, &mut |tx| tx.update_profile(user, update))
    }

    /// Removes every tag that expired at or before `now_ms`; returns how many.
    pub fn purge_expired_tags(&self, now_ms: i64) -> Result<usize> {
        self.check_not_nested()?;
        self.store.check_writes_allowed()?;
        time::check_ts(now_ms).map_err(|p| InputError::new("now_ms", p))?;
        let mut removed = 0usize;
        for tag in profiles::tag_names(self.store)? {
            for (user_id, expires_at_ms) in profiles::expired_holders(self.store, &tag, now_ms)? {
                if removed >= MAX_PURGE_PER_CALL {
                    return Ok(removed);
                }
                let Some(record) = users::record_of(self.store, user_id)? else {
                    continue;
                };
                let _guard = self.stripes.lock([record.name.as_str()]);
                let mut batch = Batch::new();
                if profiles::remove_expired_tag(
                    self.store,
                    &mut batch,
                    user_id,
                    &tag,
                    expires_at_ms,
                )? {
                    self.store.write(batch)?;
                    removed += 1;
                }
            }
        }
        Ok(removed)
    }
}
