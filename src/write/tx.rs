//! Write transactions: everything one request changes — events, profile
//! changes, points operations, a merge — of any users, composed into one
//! batch and committed all-or-nothing (docs/embedding.md).
//!
//! Owns the one core every write of events, profiles, points and merges
//! goes through: the lock order (docs/architecture.md, "Lock hierarchy"),
//! the attempts that start over holding more locks, the commit. An attempt
//! runs the caller's closure with what its [`Plan`] says to hold; an
//! operation that finds it needs more (a user's stripe, a new kind's
//! allocation, the merge lock, every writer held off for a late claim)
//! marks the attempt and the plan, nothing of the attempt is written, and
//! the closure runs again holding the grown set. Each such round only adds
//! to the plan, so they are bounded; so are the rounds that start over
//! because the settings or the clock moved while the closure ran.

use rustc_hash::FxHashSet;

use super::record::Recording;
use super::social::{Deferral, Leaving, SocialWrite};
use super::Writer;
use crate::codec;
use crate::dims::DimWrites;
use crate::error::{Error, Result, TxError};
use crate::features::FeatureWrites;
use crate::feed::StageCause;
use crate::keys::meta;
use crate::kinds::{EventKind, Reservation};
use crate::ledger::coupons::work::CouponWork;
use crate::ledger::session::Session;
use crate::ledger::{CouponOp, CouponOutcome, PointsOp, PointsOutcome};
use crate::partition::LogPosition;
use crate::profiles::{self, ProfileUpdate};
use crate::social::engine::SocialEvent;
use crate::store::{Batch, Cf, Durability, Job, JobKind};
use crate::timeline::{Event, RecordOutcome};
use crate::users::{self, MergeOptions, MergeOutcome, UserWrites};

/// Most rounds one transaction starts over to hold more locks.
const MAX_TX_ROUNDS: usize = 8;

/// Most rounds one transaction starts over because the settings or the
/// clock moved while its closure ran.
const MAX_MOVED_ROUNDS: usize = 64;

/// Most operations (calls on the transaction) in one transaction.
pub const MAX_TX_PARTS: usize = 10_000;

/// What an attempt must hold before it runs the caller's closure; grown
/// by each round that found it short.
#[derive(Debug, Default)]
pub(crate) struct Plan {
    /// Users whose stripes (and aliases' targets') are locked.
    pub names: FxHashSet<String>,
    /// Kinds reserved before the settings are read.
    pub kinds: Vec<EventKind>,
    /// The merge lock is held (a merge in the transaction).
    pub merge: bool,
    /// Every writer is held off (a late claim left to a touchers job).
    pub all: bool,
    /// The coupon lock is held (a coupon operation in the transaction).
    pub coupons: bool,
    /// The log position a consumer's write stores with its events.
    pub position: Option<LogPosition>,
    /// The durability asked for; `None`: the store's default.
    pub durability: Option<Durability>,
    /// The caller validated the events it records already (a single
    /// call validates before it locks anything).
    pub events_validated: bool,
    /// The transaction is one call of a single-call method (`Db::record`,
    /// `points`, …): nothing it records can be repeated by a later call.
    pub single_call: bool,
}

impl Plan {
    /// A plan that locks `names` up front.
    pub fn with_names<'n>(names: impl IntoIterator<Item = &'n str>) -> Self {
        let mut plan = Self::default();
        // (a batch names its users many times: one string per user)
        for name in names {
            if !plan.names.contains(name) {
                plan.names.insert(name.to_owned());
            }
        }
        plan
    }
}

thread_local! {
    /// This thread runs a transaction's closure. A write from inside it
    /// would wait for the locks the thread holds itself (of its own store),
    /// or take a second store's locks out of the hierarchy's order (two
    /// closures writing each other's store would wait on each other).
    static IN_TRANSACTION: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Marks the thread as running a closure until dropped (a panic included).
struct InClosure;

impl InClosure {
    fn enter() -> Self {
        IN_TRANSACTION.with(|t| t.set(true));
        InClosure
    }
}

impl Drop for InClosure {
    fn drop(&mut self) {
        IN_TRANSACTION.with(|t| t.set(false));
    }
}

impl Writer<'_> {
    /// Refuses a write from inside a transaction's closure
    /// ([`TxError::Nested`]; see `IN_TRANSACTION`).
    pub(crate) fn check_not_nested(&self) -> Result<()> {
        if IN_TRANSACTION.with(std::cell::Cell::get) {
            return Err(TxError::Nested.into());
        }
        Ok(())
    }
}

/// One write transaction: the calls of [`crate::Db::write`]'s closure.
/// Every call changes the transaction's batch only; nothing is visible
/// to anyone (the transaction itself included: its reads are of the
/// store) until the closure returns `Ok` and the batch commits. A call
/// that fails — a refused redemption, a bad field, a conflicting
/// transaction id — fails the whole transaction: later calls are refused
/// and nothing of any call is written.
///
/// The closure may run more than once (a round that found it needs more
/// locks starts over): keep its effects inside the transaction.
pub struct Transaction<'t> {
    core: &'t mut (dyn Ops + 't),
}

/// The operations a transaction forwards to its attempt's core.
pub(crate) trait Ops {
    fn record_batch(&mut self, events: &[Event]) -> Result<Vec<RecordOutcome>>;
    fn points(
        &mut self,
        user: &str,
        txn_id: &str,
        at_ms: i64,
        op: &PointsOp,
    ) -> Result<PointsOutcome>;
    fn update_profile(&mut self, user: &str, update: &ProfileUpdate) -> Result<()>;
    fn coupon(
        &mut self,
        user: &str,
        txn_id: &str,
        at_ms: i64,
        op: &CouponOp,
    ) -> Result<CouponOutcome>;
    fn merge(
        &mut self,
        from: &str,
        into: &str,
        merge_id: &str,
        options: MergeOptions,
    ) -> Result<MergeOutcome>;
    fn set_durability(&mut self, durability: Durability);
}

impl Transaction<'_> {
    /// Records one event (as [`crate::Db::record`]).
    pub fn record(&mut self, event: &Event) -> Result<RecordOutcome> {
        let mut out = self.core.record_batch(std::slice::from_ref(event))?;
        out.pop()
            .ok_or_else(|| Error::internal("a one-event record has no outcome"))
    }

    /// Records events (as [`crate::Db::record_batch`]); outcomes in input
    /// order.
    pub fn record_batch(&mut self, events: &[Event]) -> Result<Vec<RecordOutcome>> {
        self.core.record_batch(events)
    }

    /// Applies a points operation (as [`crate::Db::points`]). It sees the
    /// transaction's earlier operations on the account, rule credits of
    /// its events included.
    pub fn points(
        &mut self,
        user: &str,
        txn_id: &str,
        at_ms: i64,
        op: &PointsOp,
    ) -> Result<PointsOutcome> {
        self.core.points(user, txn_id, at_ms, op)
    }

    /// Applies a coupon operation (as [`crate::Db::coupon`]). It sees the
    /// transaction's earlier coupon operations; a coupon that does not
    /// stack refuses to be redeemed with another one in the transaction.
    /// A checkout that redeems a coupon, spends points and records the
    /// purchase is one transaction.
    pub fn coupon(
        &mut self,
        user: &str,
        txn_id: &str,
        at_ms: i64,
        op: &CouponOp,
    ) -> Result<CouponOutcome> {
        self.core.coupon(user, txn_id, at_ms, op)
    }

    /// Applies a profile update (as [`crate::Db::update_profile`]); later
    /// updates of one user in the transaction win over earlier ones.
    pub fn update_profile(&mut self, user: &str, update: &ProfileUpdate) -> Result<()> {
        self.core.update_profile(user, update)
    }

    /// Merges `from` into `into` (as [`crate::Db::merge`]). At most one
    /// merge per transaction, before any other call on its two users;
    /// calls after it may name either (`from` is `into`'s alias by then).
    pub fn merge(
        &mut self,
        from: &str,
        into: &str,
        merge_id: &str,
        options: MergeOptions,
    ) -> Result<MergeOutcome> {
        self.core.merge(from, into, merge_id, options)
    }

    /// How the commit waits: [`Durability::Immediate`] fsyncs the log
    /// before [`crate::Db::write`] returns, [`Durability::Eventual`] does
    /// not. Default: [`crate::Options::sync_writes`].
    pub fn set_durability(&mut self, durability: Durability) {
        self.core.set_durability(durability)
    }
}

/// How one attempt ended.
enum Round<T> {
    Done(T),
    /// Start over with this (grown) plan.
    Again(Plan),
    /// Start over with the same plan: what the closure's calls read (the
    /// settings, the clock) moved while it ran.
    Moved(Plan),
}

/// One attempt's state: the batch and every subsystem's writer of it,
/// shared by all calls so each sees what the earlier ones did.
pub(super) struct Core<'a, 'g> {
    pub w: &'a Writer<'a>,
    pub plan: Plan,
    /// A call found the plan short: nothing of this attempt commits.
    pub again: bool,
    /// A call failed: nothing of this transaction commits.
    pub failed: Option<(usize, &'static str)>,
    pub parts: usize,
    pub events_total: usize,
    pub batch: Batch,
    pub users: UserWrites<'a, 'g>,
    pub reservation: Reservation<'a>,
    pub recording: Recording<'a>,
    pub session: Session<'a>,
    pub coupons: CouponWork<'a>,
    /// The gift pack in force when the attempt started.
    pub gifts: std::sync::Arc<Option<crate::GiftPack>>,
    /// Earning rules exist: recorded events earn credits.
    pub rules: bool,
    /// Growth rules or once-per-user reward rules exist: recorded events
    /// (a merge's moved ones too) give growth value and rewards.
    pub growth: bool,
    pub profiles: Vec<(u32, ProfileUpdate)>,
    pub social: Vec<SocialEvent>,
    /// The merge of this transaction, if any.
    pub merged: Option<Merged>,
    /// Names that became aliases: never cached.
    pub forget: Vec<String>,
}

/// A transaction's merge, for the attribution of its commit: who leaves
/// (none when `from` had no events yet) and the (from, into) pair.
pub(super) struct Merged {
    pub leaving: Option<Leaving>,
    pub pair: Option<(u32, u32)>,
}

/// What a commit left to do once the core is gone.
enum Committed {
    Done { job: bool, forget: Vec<String> },
    Again(Plan),
}

impl Writer<'_> {
    /// Runs `f` as one write transaction (see [`Transaction`]), starting
    /// from `plan`.
    pub(crate) fn transact<T>(
        &self,
        mut plan: Plan,
        f: &mut dyn FnMut(&mut Transaction<'_>) -> Result<T>,
    ) -> Result<T> {
        self.store.check_writes_allowed()?;
        self.check_not_nested()?;
        // Rounds that found the plan short grow it (bounded); rounds that
        // met a settings change or an `advance` during the closure do not,
        // and have their own bound.
        let (mut short, mut moved) = (0, 0);
        while short < MAX_TX_ROUNDS && moved < MAX_MOVED_ROUNDS {
            match self.attempt(plan, f)? {
                Round::Done(value) => return Ok(value),
                Round::Again(more) => {
                    plan = more;
                    short += 1;
                }
                Round::Moved(same) => {
                    plan = same;
                    moved += 1;
                }
            }
        }
        Err(Error::Busy {
            what: "rounds of one transaction (locks it did not hold, or settings and the clock moving under it)",
            rounds: (short + moved) as u32,
        })
    }

    /// One attempt: takes what `plan` says in the hierarchy's order, runs
    /// `f`, commits.
    fn attempt<T>(
        &self,
        plan: Plan,
        f: &mut dyn FnMut(&mut Transaction<'_>) -> Result<T>,
    ) -> Result<Round<T>> {
        let _advance = plan.all.then(|| self.advance_lock.lock());
        let _merge = plan.merge.then(|| self.erase_lock.lock());
        let (mut guards, resolved) = if plan.all {
            let mut all = self.stripes.lock_all();
            self.finish_pending(&mut all)?;
            (all, users::Resolved::default())
        } else {
            let names: Vec<&str> = plan.names.iter().map(String::as_str).collect();
            users::lock_resolving(self.stripes, self.store, &names)?
        };
        let _coupons = plan.coupons.then(|| self.coupon_lock.lock());
        // (a job that ran while this write waited for the locks may have
        // failed and left its work half done)
        self.store.check_no_job()?;
        let mut batch = Batch::new();
        let reservation = self.kinds.reserve(plan.kinds.iter(), &mut batch)?;
        // The settings and the clock as the closure's calls use them; no
        // lock is held on them while it runs (it may read through the
        // `Db`). The commit takes them again and starts over if either
        // moved, so a write is still wholly before or after a clock move.
        let settings = self.metric_settings.read().clone();
        let clock = *self.clock.read();
        let cause = if plan.merge {
            StageCause::Merge
        } else {
            StageCause::Event
        };
        let stages = self.stage_ctx(&settings, &clock, cause);
        let ledger_settings = self.ledger_settings.read().clone();
        let gifts = self.gift_pack.read().clone();
        let feature_set = self.features.read().clone();
        let features = FeatureWrites::new(
            feature_set.clone(),
            self.store.settings().utc_offset_minutes,
            clock.now_ms,
            cause,
        );
        let dim_set = self.dims.set.read().clone();
        let dims = DimWrites::new(dim_set.clone(), self.store.settings().utc_offset_minutes);
        let mut recording = Recording::new(self, &reservation, &[], stages, features, dims)?;
        if plan.single_call {
            recording = recording.single_call();
        }
        let mut core = Core {
            w: self,
            again: false,
            failed: None,
            parts: 0,
            events_total: 0,
            batch,
            users: UserWrites::new(self.store, self.allocator, &mut guards, resolved),
            reservation,
            recording,
            session: Session::new(self.store, &ledger_settings).with_notices(clock),
            coupons: CouponWork::new(self.store).with_notices(clock),
            gifts: gifts.clone(),
            rules: !ledger_settings.rules.is_empty(),
            growth: !ledger_settings.growth().rules.is_empty()
                || crate::ledger::session::rewards::has_rewards(&ledger_settings),
            profiles: Vec::new(),
            social: Vec::new(),
            merged: None,
            forget: Vec::new(),
            plan,
        };
        let out = {
            let _running = InClosure::enter();
            f(&mut Transaction { core: &mut core })
        };
        if core.again {
            return Ok(Round::Again(core.plan));
        }
        let value = match (out, core.failed) {
            (Err(e), _) => return Err(e),
            (Ok(_), Some((part, op))) => return Err(TxError::PartFailed { part, op }.into()),
            (Ok(value), None) => value,
        };
        let held_settings = self.metric_settings.read();
        let held_clock = self.clock.read();
        // (earning rules and tiers: a change holds every stripe, which a
        // transaction that took its stripes one by one may not have held
        // when it read them)
        let ledger_moved = !std::sync::Arc::ptr_eq(&self.ledger_settings.read(), &ledger_settings)
            || !std::sync::Arc::ptr_eq(&self.gift_pack.read(), &gifts)
            || !std::sync::Arc::ptr_eq(&self.features.read(), &feature_set)
            || !std::sync::Arc::ptr_eq(&self.dims.set.read(), &dim_set);
        if !std::sync::Arc::ptr_eq(&held_settings, &settings)
            || *held_clock != clock
            || ledger_moved
        {
            return Ok(Round::Moved(core.plan));
        }
        let (job, forget) = match core.commit()? {
            Committed::Again(plan) => return Ok(Round::Again(plan)),
            Committed::Done { job, forget } => (job, forget),
        };
        for name in forget {
            if let Some(shard) = guards.shard(&name) {
                shard.remove(&name);
            }
        }
        if job {
            // (the job takes the settings and the clock in the hierarchy's
            // order)
            drop(held_clock);
            drop(held_settings);
            // The write is stored whatever the job does: a step that fails
            // leaves the job recorded, and writes refused until
            // `finish_jobs`, rather than a caller told "not written"
            // retrying events without ids twice.
            let _ = self.resume_recorded(&mut guards);
        }
        Ok(Round::Done(value))
    }
}

impl Core<'_, '_> {
    /// Puts what the calls gathered into the batch and commits it.
    fn commit(self) -> Result<Committed> {
        let Core {
            w,
            mut plan,
            mut batch,
            users,
            reservation,
            recording,
            mut session,
            coupons,
            profiles,
            social,
            merged,
            forget,
            ..
        } = self;
        let (_, dim_records) = recording.finish(w, &mut batch)?;
        for (user_id, update) in &profiles {
            profiles::apply_update(w.store, &mut batch, *user_id, update)?;
        }
        users.finish(&mut batch)?;
        let (leaving, pair, defer) = match merged {
            // (a merge is one atomic write by contract: its shares'
            // touchers are re-derived in it, however many)
            Some(Merged {
                leaving: Some(leaving),
                pair,
            }) => (Some(leaving), pair, Deferral::Inline),
            Some(Merged { pair, .. }) if !plan.all => (None, pair, Deferral::Escalate),
            Some(Merged { pair, .. }) => (None, pair, Deferral::Record),
            None if plan.all => (None, None, Deferral::Record),
            None => (None, None, Deferral::Escalate),
        };
        let done = match w.social_write(
            &mut batch,
            leaving,
            &social,
            users.created(),
            pair,
            &|name| users.holds(name),
            defer,
        )? {
            SocialWrite::NeedLocks(more) => {
                plan.names.extend(more);
                return Ok(Committed::Again(plan));
            }
            SocialWrite::NeedJob => {
                plan.all = true;
                return Ok(Committed::Again(plan));
            }
            SocialWrite::Done(done) => done,
        };
        super::social::apply_referrals(&mut session, &done.referrals)?;
        session.finish(&mut batch)?;
        coupons.finish(&mut batch)?;
        if let Some(p) = &plan.position {
            batch.put(
                Cf::Meta,
                meta::source(&p.topic, p.partition),
                codec::encode(&p.next_offset)?,
            );
        }
        // The touchers left to a job are recorded with this write.
        let job = (!done.deferred.is_empty()).then(|| Job {
            subject: done.deferred.clone(),
            ..Job::new(JobKind::Touchers)
        });
        if let Some(job) = &job {
            batch.set_job(job)?;
        }
        if !batch.is_empty() {
            match plan.durability {
                None => w.store.write(batch)?,
                Some(d) => w.store.write_durable(batch, d == Durability::Immediate)?,
            }
        }
        done.committed(w.social);
        users.remember();
        reservation.publish();
        if !dim_records.is_empty() {
            w.dims.values.write().stored(&dim_records);
        }
        Ok(Committed::Done {
            job: job.is_some(),
            forget,
        })
    }
}
