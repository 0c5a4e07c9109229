//! The touchers step of a job: re-deriving, a page at a time, the users who
//! came through shares whose owner a write changed — a share claimed late
//! after more visits than one write should re-derive, or the shares of a
//! user being erased — with the referral credits that move (docs/social.md,
//! "How a write keeps it exact"). The write that changed the owner recorded
//! the shares as the job's subject in its own batch; each page's batch moves
//! the cursor, and re-deriving a user twice changes nothing, so a kill
//! anywhere resumes exactly.

use crate::error::Result;
use crate::ledger::session::Session;
use crate::social::engine::Engine;
use crate::store::{Batch, Job};

use super::jobs::JobCtx;

/// Touchers re-derived per batch.
const TOUCHERS_PAGE: usize = 1_000;

/// Where the step is: the index of the share in the job's subject and the
/// last touch key of it re-derived.
fn cursor(job: &Job) -> (usize, Option<Vec<u8>>) {
    match job.cursor.split_first_chunk::<4>() {
        Some((index, rest)) => (
            u32::from_be_bytes(*index) as usize,
            (!rest.is_empty()).then(|| rest.to_vec()),
        ),
        None => (0, None),
    }
}

fn encode(index: usize, after: &[u8]) -> Vec<u8> {
    let mut c = (index as u32).to_be_bytes().to_vec();
    c.extend_from_slice(after);
    c
}

/// Re-derives the touchers of every share of the job's subject.
pub(super) fn touchers_step(ctx: &JobCtx<'_>, job: &mut Job) -> Result<()> {
    let (mut index, mut after) = cursor(job);
    let pays = super::jobs::pays_referrals(ctx.ledger);
    while let Some(share) = job.subject.get(index).cloned() {
        loop {
            let mut engine = Engine::new(ctx.store, ctx.social, false);
            // (an erasure's touchers: its user's credits go with its ledger,
            // as in a one-batch erasure)
            if let crate::store::JobKind::Erase { user_id } = job.kind {
                engine = engine.erasing(user_id);
            }
            if pays {
                engine = engine.with_referrals(None);
            }
            let Some(last) = engine.touchers_page(&share, after.as_deref(), TOUCHERS_PAGE)? else {
                break;
            };
            let ops = engine.referral_ops()?;
            let mut batch = Batch::new();
            engine.finish(&mut batch)?;
            if !ops.is_empty() {
                let mut session = Session::new(ctx.store, ctx.ledger).with_notices(*ctx.clock);
                super::social::apply_referrals(&mut session, &ops)?;
                session.finish(&mut batch)?;
            }
            job.cursor = encode(index, &last);
            after = Some(last);
            batch.set_job(job)?;
            ctx.store.write(batch)?;
        }
        index += 1;
        after = None;
    }
    Ok(())
}
