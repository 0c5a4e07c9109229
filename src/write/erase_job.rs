//! Erasing a user with more events than one write should carry (issue 27,
//! "bounded write paths"): a job whose steps take the user out of
//! attribution, delete its events and sessions a page at a time with what
//! they added to the store-wide counters, delete its ledger a page at a
//! time, and then, in one last batch, everything else an erasure deletes —
//! profile, per-user state and the user sets it derives, experiments,
//! aliases, ids. Counters are sums, so the pages' subtractions add up to one
//! erasure's; every page moves the job's cursor in its own batch, and the
//! one-batch steps advance the job's step in theirs, so a kill anywhere
//! resumes exactly. Every writer is held off meanwhile (as every job does),
//! so no write meets the half-erased user; queries of aggregates say a job
//! is unfinished.

use crate::error::Result;
use crate::ledger::session::Session;
use crate::metrics::forget::ErasedEvent;
use crate::store::{Batch, Job};
use crate::{keys, ledger, metrics, profiles, social, timeline, users};

use super::jobs::JobCtx;

/// A user with more events than this is erased as a job; others in one
/// atomic write.
pub(crate) const ERASE_INLINE_EVENTS: u32 = 100_000;

/// Keys deleted per batch by the paged steps.
const ERASE_PAGE: usize = 10_000;

/// Commits a one-batch step's `batch` with the job moved past the step.
fn finish_step(ctx: &JobCtx<'_>, job: &mut Job, mut batch: Batch) -> Result<()> {
    job.step += 1;
    job.cursor.clear();
    batch.set_job(job)?;
    ctx.store.write(batch)
}

/// The social part: the user's shares and group-buy events leave the
/// figures, its touches and attributions go (reversing the referral
/// credits it earned others, moving those of the users it brought).
pub(super) fn social_step(ctx: &JobCtx<'_>, job: &mut Job, user_id: u32) -> Result<()> {
    let store = ctx.store;
    let facts = timeline::social_facts(store, user_id)?;
    let leaving = super::social::Leaving::of(user_id, &facts);
    // (the touchers of its shares, if more than one batch should carry,
    // become the job's subject: the next step re-derives them)
    let mut engine = social::engine::Engine::new(store, ctx.social, false).deferring();
    let pays = super::jobs::pays_referrals(ctx.ledger);
    if pays {
        engine = engine.with_referrals(None);
    }
    engine.erase(user_id, &leaving.share_instants, &leaving.groups)?;
    job.subject = engine.deferred().to_vec();
    let ops = engine.referral_ops()?;
    let mut batch = Batch::new();
    engine.finish(&mut batch)?;
    if !ops.is_empty() {
        let mut session = Session::new(store, ctx.ledger).with_notices(*ctx.clock);
        super::social::apply_referrals(&mut session, &ops)?;
        session.finish(&mut batch)?;
    }
    finish_step(ctx, job, batch)
}

/// The events, a page at a time, each page with its counters.
pub(super) fn events_step(ctx: &JobCtx<'_>, job: &mut Job, user_id: u32) -> Result<()> {
    let offset = ctx.store.settings().utc_offset_minutes;
    loop {
        let after = (!job.cursor.is_empty()).then(|| job.cursor.clone());
        let mut batch = Batch::new();
        let kv = crate::dims::KindView {
            kinds: ctx.kinds,
            non_activity: ctx.non_activity_kinds,
        };
        let set = ctx.dims.set.read().clone();
        let page = (after.as_deref(), ERASE_PAGE);
        crate::dims::forget_events(
            ctx.store,
            &set,
            &ctx.dims.values,
            &kv,
            user_id,
            page,
            &mut batch,
        )?;
        let (facts, last) =
            timeline::erase_page(ctx.store, &mut batch, user_id, after.as_deref(), ERASE_PAGE)?;
        let Some(last) = last else {
            return Ok(());
        };
        let events: Vec<ErasedEvent> = facts.iter().map(ErasedEvent::from).collect();
        metrics::forget::erase_counts(&mut batch, offset, &events)?;
        job.cursor = last;
        batch.set_job(job)?;
        ctx.store.write(batch)?;
    }
}

/// The sessions, a page at a time, each with its counter.
pub(super) fn sessions_step(ctx: &JobCtx<'_>, job: &mut Job, user_id: u32) -> Result<()> {
    loop {
        let after = (!job.cursor.is_empty()).then(|| job.cursor.clone());
        let mut batch = Batch::new();
        let Some(last) = metrics::forget::erase_sessions(
            ctx.store,
            &mut batch,
            user_id,
            after.as_deref(),
            ERASE_PAGE,
        )?
        else {
            return Ok(());
        };
        job.cursor = last;
        batch.set_job(job)?;
        ctx.store.write(batch)?;
    }
}

/// The ledger records, a page at a time.
pub(super) fn ledger_step(ctx: &JobCtx<'_>, job: &mut Job, user_id: u32) -> Result<()> {
    loop {
        let after = (!job.cursor.is_empty()).then(|| job.cursor.clone());
        let mut batch = Batch::new();
        if after.is_none() {
            // Every coupon leaves its template's counts with the first
            // page, which records the cursor: a re-run resumes past it and
            // counts none twice. (The job holds every stripe: no coupon
            // write runs.)
            ledger::coupons::read::count_erased(ctx.store, &mut batch, user_id)?;
        }
        let Some(last) =
            ledger::read::erase_page(ctx.store, &mut batch, user_id, after.as_deref(), ERASE_PAGE)?
        else {
            return Ok(());
        };
        job.cursor = last;
        batch.set_job(job)?;
        ctx.store.write(batch)?;
    }
}

/// Everything else, with the job's record: what one atomic erasure deletes
/// besides what the steps before took (`write/erase.rs`).
pub(super) fn last_step(ctx: &JobCtx<'_>, job: &mut Job, user_id: u32) -> Result<()> {
    let store = ctx.store;
    let mut batch = Batch::new();
    if let Some(record) = users::record_of(store, user_id)? {
        for (name, merge_id) in users::aliases(store, user_id)? {
            users::delete_alias(&mut batch, &name, user_id);
            batch.delete(crate::store::Cf::Meta, keys::meta::merge(&merge_id));
        }
        profiles::erase(store, &mut batch, user_id)?;
        crate::features::erase(store, &mut batch, user_id, crate::feed::StageCause::Erase)?;
        // (the events went page by page; what is left is the sequence record)
        timeline::delete_event_ids(store, &mut batch, user_id)?;
        metrics::forget::erase(
            store,
            &mut batch,
            store.settings().utc_offset_minutes,
            user_id,
            &[],
            crate::feed::StageCause::Erase,
        )?;
        crate::experiments::forget(store, &mut batch, user_id)?;
        ledger::read::erase_notices(store, &mut batch, user_id)?;
        users::erase(store, &mut batch, user_id, &record.name)?;
    }
    job.step += 1;
    job.cursor.clear();
    batch.clear_job();
    store.write(batch)
}
