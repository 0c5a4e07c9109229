//! Jobs (SPEC §5; docs/architecture.md, "Jobs"): the multi-batch
//! maintenance operations — a rebuild, a migration, a re-tier, a window or
//! stage-model change — run as a list of steps from where their durable
//! record says. A step either restarts from its beginning and ends in the
//! same state whatever it met (clearing, then writing) or commits its
//! progress (a cursor) in the very batches that make it, so a job killed at
//! any instant and resumed ends as an uninterrupted run would have.

use crate::error::Result;
use crate::feed::Clock;
use crate::keys;
use crate::kinds::KindRegistry;
use crate::ledger::session::Session;
use crate::ledger::LedgerSettings;
use crate::metrics::state::{StageCtx, StateWrites};
use crate::metrics::transitions::Publish;
use crate::metrics::StageModel;
use crate::social::SocialSettings;
use crate::store::{Batch, Cf, Job, JobRun, Step, Store};
use crate::{ledger, metrics, profiles, social, users};

/// Users settled per batch by the per-user steps (re-tier, resettle,
/// referral reconciliation).
const USERS_PER_BATCH: usize = 1_000;

/// What a job's steps read: the settings in force (a job's own parameters
/// were saved with its record, so a resumed job reads the same).
pub(crate) struct JobCtx<'a> {
    pub store: &'a Store,
    pub kinds: &'a KindRegistry,
    pub non_activity_kinds: &'a [String],
    pub model: &'a StageModel,
    pub exposure_kind: &'a str,
    pub ledger: &'a LedgerSettings,
    pub social: &'a SocialSettings,
    pub clock: &'a Clock,
    pub dims: &'a crate::dims::DimState,
}

/// What a run of a job did.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct JobRunReport {
    /// Events replayed into the aggregates (rebuild and migration steps).
    pub events_replayed: u64,
}

/// Records `job` in `first`, the batch that also saves its parameters:
/// from this commit on the job exists, and a kill leaves it for
/// [`resume`]. The caller holds every writer off, and changes the settings
/// in memory only after this returned.
///
/// The caller runs the job next (holding every writer off): the returned
/// guard marks it as run by this handle from before its record commits, so
/// a concurrent write's entry check meets a running job and waits on the
/// stripe locks instead of being refused with `JobUnfinished` in the
/// instant between the record and the run (a race `ledger_concurrent`
/// caught). Keep it until the job has run.
#[must_use = "hold the guard until the job has run"]
pub(crate) fn record<'s>(store: &'s Store, job: &Job, mut first: Batch) -> Result<JobRun<'s>> {
    let running = store.run_job();
    first.set_job(job)?;
    store.write(first)?;
    Ok(running)
}

/// Runs the recorded `job` from its step and cursor to the end. The caller
/// holds every writer off.
pub(crate) fn resume(ctx: &JobCtx<'_>, job: Job) -> Result<JobRunReport> {
    let _running = ctx.store.run_job();
    run_steps(ctx, job)
}

fn run_steps(ctx: &JobCtx<'_>, mut job: Job) -> Result<JobRunReport> {
    let mut report = JobRunReport::default();
    while let Some(step) = job.current() {
        let at = job.step;
        run_step(ctx, &mut job, step, &mut report)?;
        // (a one-batch step that cannot run twice moved the job on in its
        // own batch)
        if job.step == at {
            job.step += 1;
            job.cursor.clear();
            if job.current().is_some() {
                let mut batch = Batch::new();
                batch.set_job(&job)?;
                ctx.store.write(batch)?;
            }
        }
    }
    // A migration ends with the format stamp, which clears the record in
    // its own batch (the caller's); every other job ends here.
    if !matches!(job.kind, crate::store::JobKind::Migration { .. }) {
        let mut last = Batch::new();
        last.clear_job();
        ctx.store.write_synced(last)?;
    }
    Ok(report)
}

fn run_step(ctx: &JobCtx<'_>, job: &mut Job, step: Step, report: &mut JobRunReport) -> Result<()> {
    let store = ctx.store;
    match step {
        Step::AllUsers => users::rebuild_all_users(store),
        Step::TagIndex => profiles::rebuild_tag_index(store),
        Step::TierSets => ledger::rebuild_tier_sets(store),
        Step::Clear => {
            metrics::forget::clear(store)?;
            // (derived too: recomputed from the events when next read or
            // written, or by a backfill)
            crate::features::clear(store)
        }
        Step::Replay => {
            report.events_replayed += super::rebuild::replay(ctx, job)?;
            Ok(())
        }
        Step::SocialSnapshot if pays_referrals(ctx.ledger) => social::snapshot::take(store),
        Step::SocialSnapshot => social::snapshot::clear(store),
        Step::SocialRederive => social::rebuild(store),
        Step::SocialReconcile => reconcile_referrals(ctx, job),
        Step::Experiments => {
            crate::experiments::rebuild(store, ctx.kinds, ctx.exposure_kind).map(|_| ())
        }
        Step::Sequences => {
            let after = cursor_user(job);
            crate::timeline::rebuild_sequences(store, after, |mut batch, last| {
                job.cursor = keys::user(last).to_vec();
                batch.set_job(job)?;
                store.write(batch)
            })
        }
        Step::Retier => per_user(ctx, job, |store, users, batch| {
            let mut session = Session::new(store, ctx.ledger);
            for &user_id in users {
                session.retier(user_id)?;
            }
            session.finish(batch)
        }),
        Step::GrowthDays => per_user(ctx, job, |store, users, batch| {
            let mut session = Session::new(store, ctx.ledger);
            for &user_id in users {
                growth_of(ctx, &mut session, user_id)?;
            }
            session.finish(batch)
        }),
        Step::EraseSocial => super::erase_job::social_step(ctx, job, erased(job)?),
        Step::Touchers => super::touchers::touchers_step(ctx, job),
        Step::EraseEvents => super::erase_job::events_step(ctx, job, erased(job)?),
        Step::EraseSessions => super::erase_job::sessions_step(ctx, job, erased(job)?),
        Step::EraseLedger => super::erase_job::ledger_step(ctx, job, erased(job)?),
        Step::EraseLast => super::erase_job::last_step(ctx, job, erased(job)?),
        Step::DimBackfill => dims_backfill(ctx, job),
        Step::DimDrop => match job.kind {
            crate::store::JobKind::DimDrop { dim } => crate::dims::drop_step(store, dim),
            _ => Ok(()),
        },
        Step::SessionDepth => per_user(ctx, job, |store, users, batch| {
            let offset = store.settings().utc_offset_minutes;
            metrics::sessions::rederive(store, offset, users, batch)
        }),
        Step::AttrIndex => {
            if job.cursor.is_empty() {
                store.delete_prefix(Cf::AttrIndex, &[], users::REBUILD_BATCH_KEYS)?;
            }
            per_user(ctx, job, |store, users, batch| {
                profiles::index_users(store, users, batch)
            })
        }
        Step::Resettle => per_user(ctx, job, |store, users, batch| {
            let stages = StageCtx {
                model: ctx.model,
                clock_day: ctx.clock.day(store.settings().utc_offset_minutes),
                publish: Publish::Live(crate::feed::StageCause::Model),
            };
            let mut state = StateWrites::new(store, stages);
            for &user_id in users {
                state.resettle(user_id, stages.clock_day.unwrap_or(i32::MIN))?;
            }
            state.finish(batch)
        }),
    }
}

/// Events one batch of a dimension backfill adds.
const DIM_BACKFILL_EVENTS: usize = 10_000;

/// Adds every event after the job's cursor to the job's dimension (a
/// rebuild: to every dimension), a page per batch with the cursor moved
/// to its last event key, so a resumed run adds each event once.
fn dims_backfill(ctx: &JobCtx<'_>, job: &mut Job) -> Result<()> {
    let all = ctx.dims.set.read().clone();
    let set = match job.kind {
        crate::store::JobKind::DimBackfill { dim } => std::sync::Arc::new(all.only(dim)),
        _ => all,
    };
    if set.is_empty() {
        return Ok(());
    }
    let kv = crate::dims::KindView {
        kinds: ctx.kinds,
        non_activity: ctx.non_activity_kinds,
    };
    loop {
        let after = (!job.cursor.is_empty()).then(|| job.cursor.clone());
        let page = (after.as_deref(), DIM_BACKFILL_EVENTS);
        let (mut batch, records, last) =
            crate::dims::backfill_page(ctx.store, set.clone(), &ctx.dims.values, &kv, page)?;
        let Some(last) = last else { return Ok(()) };
        job.cursor = last;
        batch.set_job(job)?;
        ctx.store.write(batch)?;
        ctx.dims.values.write().stored(&records);
    }
}

/// The user an erasure job erases.
fn erased(job: &Job) -> Result<u32> {
    match job.kind {
        crate::store::JobKind::Erase { user_id } => Ok(user_id),
        other => Err(crate::error::CorruptionError {
            cf: crate::store::Cf::Meta.name(),
            what: "value",
            key: keys::meta::JOB.to_vec(),
            reason: format!("an erasure step in a {} job", other.name()),
        }
        .into()),
    }
}

/// Whether `settings`' earning rules pay referral credits.
pub(crate) fn pays_referrals(settings: &LedgerSettings) -> bool {
    settings
        .rules
        .iter()
        .any(|r| r.kind == crate::kinds::REFERRAL_KIND)
}

/// The user a per-user step's cursor names (the last one it finished).
fn cursor_user(job: &Job) -> Option<u32> {
    let bytes: [u8; 4] = job.cursor.as_slice().try_into().ok()?;
    Some(u32::from_be_bytes(bytes))
}

/// Runs `each` over every user after the job's cursor, [`USERS_PER_BATCH`]
/// at a time, committing each batch with the cursor moved to its last user.
/// Re-derives `user_id`'s growth value from its events (one prefix scan).
fn growth_of(ctx: &JobCtx<'_>, session: &mut Session<'_>, user_id: u32) -> Result<()> {
    let mut kinds: Vec<(String, i64, Option<i64>)> = Vec::new();
    for item in ctx.store.prefix(Cf::Events, &keys::user(user_id))? {
        let (k, v) = item?;
        let key = keys::EventKey::decode(Cf::Events.name(), &k)?;
        let value = crate::timeline::decode_event_value(&k, &v)?;
        if let Some(kind) = ctx.kinds.kind(value.kind_id) {
            kinds.push((kind.as_str().to_owned(), key.ts_ms, value.amount_minor));
        }
    }
    let events: Vec<ledger::session::GrowthEvent<'_>> = kinds
        .iter()
        .map(|(kind, ts_ms, amount_minor)| ledger::session::GrowthEvent {
            kind,
            is_activity: metrics::counts_as_activity(ctx.non_activity_kinds, kind),
            ts_ms: *ts_ms,
            amount_minor: *amount_minor,
        })
        .collect();
    session.rederive_growth(user_id, &events)
}

fn per_user(
    ctx: &JobCtx<'_>,
    job: &mut Job,
    each: impl Fn(&Store, &[u32], &mut Batch) -> Result<()>,
) -> Result<()> {
    let all = users::all_users(ctx.store)?;
    let after = cursor_user(job);
    let mut users: Vec<u32> = Vec::with_capacity(USERS_PER_BATCH);
    let mut pending = all
        .iter()
        .filter(|&u| after.is_none_or(|a| u > a))
        .peekable();
    while pending.peek().is_some() {
        users.clear();
        users.extend(pending.by_ref().take(USERS_PER_BATCH));
        let mut batch = Batch::new();
        each(ctx.store, &users, &mut batch)?;
        if let Some(&last) = users.last() {
            job.cursor = keys::user(last).to_vec();
        }
        batch.set_job(job)?;
        ctx.store.write(batch)?;
    }
    Ok(())
}

/// Pays and reverses the referral credits of every first-purchase
/// attribution the re-derivation moved (its snapshot against what is
/// stored now), each user's credits in the batch that drops its snapshot.
fn reconcile_referrals(ctx: &JobCtx<'_>, job: &mut Job) -> Result<()> {
    if !pays_referrals(ctx.ledger) {
        return social::snapshot::clear(ctx.store);
    }
    per_user(ctx, job, |store, users, batch| {
        let mut engine = social::engine::Engine::new(store, ctx.social, false).with_referrals(None);
        for &user_id in users {
            let (before, after) = social::snapshot::before_after(store, user_id)?;
            if before != after {
                engine.first_purchase_moved(user_id, before, after);
            }
            if before.is_some() {
                social::snapshot::settled(batch, user_id);
            }
        }
        let ops = engine.referral_ops()?;
        engine.finish(batch)?;
        let mut session = Session::new(store, ctx.ledger).with_notices(*ctx.clock);
        super::social::apply_referrals(&mut session, &ops)?;
        session.finish(batch)
    })?;
    // (users gone from the all-users set have no snapshot left to settle)
    social::snapshot::clear(ctx.store)
}
