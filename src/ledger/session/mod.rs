//! The write side of the ledger: a [`Session`] loads the accounts one logical
//! write touches, applies operations to an in-memory working copy, and only
//! when every operation succeeded puts the result into the write's batch.
//! A refused operation therefore changes nothing: the caller drops the
//! session. Callers hold the stripe locks of every user named.

pub(crate) mod birthday;
mod expiry;
mod growth;
mod ops;
mod persist;
pub(crate) mod rewards;
pub(crate) mod streak;
mod transfer;

pub(crate) use growth::GrowthEvent;
pub(crate) use rewards::RewardEvent;

use std::collections::BTreeMap;

use super::growth::GrowthDay;
use super::{
    Account, EntryKind, ExpireReport, Hold, LedgerEntry, LedgerSettings, Lot, LotDraw, LotMove,
    NewLot, PointsOp, PointsOutcome, TierBasis, TierChange, TxnRecord, MAX_BALANCE,
    RULE_TXN_PREFIX,
};
use crate::error::Result;
use crate::store::Store;
use crate::time::{local_day, DAY_MS};

/// Most lots one draw may consider: bounds the work of one redeem.
pub const MAX_LOTS_PER_DRAW: usize = 100_000;

struct LotWork {
    lot: Lot,
    stored_open: bool,
    dirty: bool,
}

struct HoldWork {
    stored: Option<Hold>,
    current: Option<Hold>,
}

/// One account's working copy.
struct Work {
    user_id: u32,
    account: Account,
    stored_review: Option<i64>,
    stored_tier: Option<String>,
    changed: bool,
    lots: BTreeMap<u32, LotWork>,
    holds: BTreeMap<u32, HoldWork>,
    txns: BTreeMap<String, TxnRecord>,
    /// Records moved in by an identity merge (replay only).
    moved_txns: BTreeMap<String, TxnRecord>,
    growth: BTreeMap<i32, (i64, bool)>,
    /// Growth-value days read or changed (dirty flag).
    growth_values: BTreeMap<i32, (GrowthDay, bool)>,
    /// Once-per-user reward holders read or changed, by (rule, campaign).
    firsts: BTreeMap<(u16, String), (Option<rewards::Holder>, bool)>,
    /// Whether the account is stored (a copy of the first-order holder's
    /// position is kept only in a stored or written account), and that
    /// stored copy (`ledger::account_value`).
    account_stored: bool,
    stored_first_order_at: Option<crate::ledger::account_value::HolderAt>,
    /// The sign-in streak state, once read, and whether it changed.
    streak: Option<streak::StreakState>,
    streak_dirty: bool,
    /// The user's birthday (a date), once read: `Some(None)` when it has
    /// none.
    birthday: Option<Option<i32>>,
    caps: BTreeMap<(i32, u16), i64>,
    entries: Vec<LedgerEntry>,
    tier_changes: Vec<(u32, TierChange)>,
    reversed: BTreeMap<u32, String>,
}

/// The tier window's growth as of one day.
#[derive(Default)]
struct Window {
    /// Growth in the window (never below 0).
    growth: i64,
    /// The oldest day in it with growth.
    oldest: Option<i32>,
    /// Whether a day in it holds negative growth.
    negative: bool,
}

/// An entry before it is posted.
struct Draft {
    at_ms: i64,
    kind: EntryKind,
    txn_id: Option<String>,
    amount: i64,
    held_delta: i64,
    lots: Vec<LotMove>,
    new_lot: Option<NewLot>,
    reason: Option<String>,
    related: Option<u32>,
    rule: Option<u16>,
    deadline_ms: Option<i64>,
}

impl Draft {
    fn new(at_ms: i64, kind: EntryKind, amount: i64) -> Self {
        Self {
            at_ms,
            kind,
            txn_id: None,
            amount,
            held_delta: 0,
            lots: Vec::new(),
            new_lot: None,
            reason: None,
            related: None,
            rule: None,
            deadline_ms: None,
        }
    }
}

/// What the session needs from the store and the settings.
struct Ctx<'a> {
    store: &'a Store,
    settings: &'a LedgerSettings,
    offset_minutes: i32,
    /// The windows of the birthday rules, in days.
    birthday_windows: Vec<u32>,
}

/// The ledger side of one logical write.
pub(crate) struct Session<'a> {
    ctx: Ctx<'a>,
    users: BTreeMap<u32, Work>,
    /// The feed's clock, when the write holds it: a lot opened with its
    /// notice instant at or before the clock gets its expiry notice in this
    /// write (a later `advance` scans only lots beyond it).
    notices: Option<crate::feed::Clock>,
    /// Whether the settings hold once-per-user reward rules.
    rewards: bool,
    /// Rewards kept for later while a merge records the moved events.
    deferred: Option<Vec<rewards::Deferred>>,
}

/// The transaction id of referral rule `rule`'s credit for `referred`'s
/// first purchase, generation `generation` (in the reserved rule space).
pub(crate) fn referral_txn(referred: u32, generation: u32, rule: usize) -> String {
    format!("{RULE_TXN_PREFIX}referral:{referred}:{generation}:{rule}")
}

fn reason_of(r: &str) -> Option<String> {
    (!r.is_empty()).then(|| r.to_owned())
}

impl<'a> Session<'a> {
    /// Starts a session.
    pub fn new(store: &'a Store, settings: &'a LedgerSettings) -> Self {
        Self {
            ctx: Ctx {
                store,
                settings,
                offset_minutes: store.settings().utc_offset_minutes,
                birthday_windows: birthday::windows(settings),
            },
            users: BTreeMap::new(),
            notices: None,
            rewards: rewards::has_rewards(settings),
            deferred: None,
        }
    }

    /// Writes the expiry notices of lots this session opens that are due
    /// one by `clock` (the caller holds the clock to its commit).
    pub fn with_notices(mut self, clock: crate::feed::Clock) -> Self {
        self.notices = Some(clock);
        self
    }

    fn with<T>(
        &mut self,
        user_id: u32,
        f: impl FnOnce(&Ctx<'a>, &mut Work) -> Result<T>,
    ) -> Result<T> {
        let mut w = match self.users.remove(&user_id) {
            Some(w) => w,
            None => self.ctx.load(user_id)?,
        };
        let out = f(&self.ctx, &mut w);
        self.users.insert(user_id, w);
        out
    }

    /// Applies one caller operation (already validated) to `user_id`'s account.
    pub fn apply(
        &mut self,
        user_id: u32,
        txn_id: &str,
        at_ms: i64,
        op: &PointsOp,
    ) -> Result<PointsOutcome> {
        self.with(user_id, |ctx, w| ctx.run(w, txn_id, at_ms, op, None))
    }

    /// Credits what the earning rules give for one new event.
    pub fn rule_credit(
        &mut self,
        user_id: u32,
        event_seq: u32,
        kind: &str,
        ts_ms: i64,
        amount_minor: Option<i64>,
    ) -> Result<()> {
        self.credit_rules(user_id, kind, ts_ms, amount_minor, &|i| {
            format!("{RULE_TXN_PREFIX}{event_seq}:{i}")
        })
    }

    /// Credits the referral rules (kind [`crate::ledger::REFERRAL_KIND`])
    /// to `sharer` for `referred`'s first purchase at `ts_ms` of
    /// `amount_minor`, as credit generation `generation` (docs/social.md).
    pub fn referral_credit(
        &mut self,
        sharer: u32,
        referred: u32,
        generation: u32,
        ts_ms: i64,
        amount_minor: i64,
    ) -> Result<()> {
        self.credit_rules(
            sharer,
            crate::ledger::REFERRAL_KIND,
            ts_ms,
            Some(amount_minor),
            &|i| referral_txn(referred, generation, i),
        )
    }

    /// Reverses what [`Session::referral_credit`] credited `sharer` for
    /// `referred` as generation `generation`, at `at_ms`. A credit that is
    /// not there (a cap left nothing) or that moved in with a merge is
    /// final and left alone; a reversal already made is a replay, and one a
    /// caller made by hand stands (`Ctx::reverse_credit`).
    pub fn referral_reverse(
        &mut self,
        sharer: u32,
        referred: u32,
        generation: u32,
        at_ms: i64,
    ) -> Result<()> {
        let rules = self.ctx.settings.rules.len();
        self.with(sharer, |ctx, w| {
            for i in 0..rules {
                let target = referral_txn(referred, generation, i);
                ctx.reverse_credit(w, &target, at_ms)?;
            }
            Ok(())
        })
    }

    /// Credits every rule of `kind` to `user_id` for one event at `ts_ms`
    /// (daily caps per rule and local day), rule `i` under `txn_of(i)`.
    fn credit_rules(
        &mut self,
        user_id: u32,
        kind: &str,
        ts_ms: i64,
        amount_minor: Option<i64>,
        txn_of: &dyn Fn(usize) -> String,
    ) -> Result<()> {
        let rules = &self.ctx.settings.rules;
        if !rules.iter().any(|r| r.kind == kind) {
            return Ok(());
        }
        self.with(user_id, |ctx, w| {
            let day = local_day(ts_ms, ctx.offset_minutes);
            for (i, rule) in ctx.settings.rules.iter().enumerate() {
                if rule.kind != kind {
                    continue;
                }
                let rule_idx = i as u16;
                let mut points = LedgerSettings::rule_points(rule, amount_minor);
                if points <= 0 {
                    continue;
                }
                // Every rule keeps its per-day total (capped or not), so a cap
                // added later starts from the truth and verify has one rule.
                let used = ctx.cap(w, day, rule_idx)?;
                if let Some(cap) = rule.daily_cap_points {
                    points = points.min(cap - used);
                }
                if points <= 0 {
                    continue;
                }
                w.caps.insert((day, rule_idx), used + points);
                let expires_at_ms = rule
                    .expires_after_days
                    .map(|d| ts_ms.saturating_add(i64::from(d) * DAY_MS));
                let op = PointsOp::Earn {
                    points,
                    expires_at_ms,
                    reason: format!("rule {i}: {kind}"),
                };
                ctx.run(w, &txn_of(i), ts_ms, &op, Some(rule_idx))?;
            }
            Ok(())
        })
    }

    /// Everything due at or before `now_ms` in one account: timed-out holds,
    /// expired lots, tier reviews. Adds what it did to `report`.
    pub fn expire_account(
        &mut self,
        user_id: u32,
        now_ms: i64,
        report: &mut ExpireReport,
    ) -> Result<()> {
        self.with(user_id, |ctx, w| ctx.expire_account(w, now_ms, report))
    }

    /// Re-evaluates the account's tier under the (new) settings, at its clock.
    pub fn retier(&mut self, user_id: u32) -> Result<()> {
        self.with(user_id, |ctx, w| {
            if w.account == Account::default() && w.entries.is_empty() {
                return Ok(());
            }
            let clock = w.account.clock_ms;
            ctx.evaluate_tier(w, clock)
        })
    }
}
