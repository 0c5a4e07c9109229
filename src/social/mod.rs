//! Social commerce (SPEC §4b, docs/social.md): who brought whom.
//!
//! Owns the `social` column family: the share registry (share id → the
//! user whose `share` event carried it), every touch (an event that came
//! `via` a share), what each referred user contributes to which sharer,
//! the per-sharer and store-wide daily figures, group buys, and each
//! referred user's referral credit state; and the queries over them (top
//! sharers, a sharer's funnel, the viral coefficient, group outcomes). The
//! write path hands it a write's recorded events (`engine`) inside the
//! write's batch and gets back the referral credits to pay (`referral`).
//! Must not touch events, per-user activity state or the ledger (it reads
//! events and first days through `timeline` and `metrics`; the write path
//! pays the credits).

pub(crate) mod engine;
mod groups;
pub(crate) mod query;
mod rederive;
pub(crate) mod referral;
pub(crate) mod snapshot;
mod txn;

use serde::{Deserialize, Serialize};

use crate::error::{InputError, Problem, Result};
use crate::keys::meta;
use crate::store::{Cf, Store};

pub use query::{GroupDay, GroupInfo, SharerRank, SharerRow, ViralPeriod};

/// Longest accepted attribution window, in days.
pub const MAX_WINDOW_DAYS: u32 = 365;

/// How attribution is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SocialSettings {
    /// A signup or purchase is attributed to the first touch at most this
    /// many days (× 24 h, exact milliseconds) before it.
    pub window_days: u32,
}

impl SocialSettings {
    /// Attribution within `window_days` days.
    pub fn window(window_days: u32) -> Self {
        Self { window_days }
    }
}

impl Default for SocialSettings {
    fn default() -> Self {
        Self { window_days: 7 }
    }
}

impl SocialSettings {
    /// Checks the bounds.
    pub fn validate(&self) -> Result<(), InputError> {
        if !(1..=MAX_WINDOW_DAYS).contains(&self.window_days) {
            return Err(InputError::new(
                "window_days",
                Problem::OutOfRange {
                    value: i64::from(self.window_days),
                    min: 1,
                    max: i64::from(MAX_WINDOW_DAYS),
                },
            ));
        }
        Ok(())
    }
}

/// The settings stored in `meta` (the default when none were set).
pub(crate) fn load_settings(store: &Store) -> Result<SocialSettings> {
    Ok(store
        .get::<SocialSettings>(Cf::Meta, meta::SOCIAL_SETTINGS)?
        .unwrap_or_default())
}

/// The social state an open store shares between its writers.
#[derive(Debug)]
pub(crate) struct SocialState {
    /// Held by every write that changes social records, from its first
    /// social read to its commit (docs/social.md, "Concurrency").
    pub lock: crate::order::Mutex<()>,
    pub settings: crate::order::RwLock<SocialSettings>,
    /// The store holds social records: signups and purchases must be
    /// checked against touches.
    live: std::sync::atomic::AtomicBool,
}

impl SocialState {
    pub(crate) fn load(store: &Store) -> Result<Self> {
        Ok(Self {
            lock: crate::order::Mutex::new(crate::order::Level::Social, ()),
            settings: crate::order::RwLock::new(
                crate::order::Level::SocialSettings,
                load_settings(store)?,
            ),
            live: std::sync::atomic::AtomicBool::new(any_records(store)?),
        })
    }

    pub fn is_live(&self) -> bool {
        self.live.load(std::sync::atomic::Ordering::Acquire)
    }

    pub fn set_live(&self) {
        self.live.store(true, std::sync::atomic::Ordering::Release);
    }
}

/// Puts the settings into `batch` (saved in `meta`).
pub(crate) fn put_settings(
    batch: &mut crate::store::Batch,
    settings: &SocialSettings,
) -> Result<()> {
    batch.put(
        Cf::Meta,
        meta::SOCIAL_SETTINGS,
        crate::codec::encode(settings)?,
    );
    Ok(())
}

/// The owner of `share_id`, if claimed.
pub(crate) fn owner_of(store: &Store, share_id: &str) -> Result<Option<u32>> {
    let key = crate::keys::social::registry(share_id);
    Ok(store.get::<Owner>(Cf::Social, &key)?.map(|o| o.user_id))
}

/// The owners of the shares `user_id` came through (claimed ones).
pub(crate) fn touch_owners(store: &Store, user_id: u32) -> Result<Vec<u32>> {
    let mut out = Vec::new();
    for item in store.prefix(Cf::Social, &crate::keys::social::touches_prefix(user_id))? {
        let (key, _) = item?;
        if let Some(t) = crate::keys::social::parse_touch(&key) {
            if let Some(o) = owner_of(store, &t.share_id)? {
                if !out.contains(&o) {
                    out.push(o);
                }
            }
        }
    }
    Ok(out)
}

/// Whether `user_id` has any touch (an event that came through a share).
pub(crate) fn touched(store: &Store, user_id: u32) -> Result<bool> {
    let prefix = crate::keys::social::touches_prefix(user_id);
    Ok(store
        .prefix(Cf::Social, &prefix)?
        .next()
        .transpose()?
        .is_some())
}

/// Whether the store holds any social record (a write with no share, no
/// `via` and no share id skips attribution entirely while it holds none).
pub(crate) fn any_records(store: &Store) -> Result<bool> {
    Ok(store
        .range(Cf::Social, &[], None)?
        .next()
        .transpose()?
        .is_some())
}

/// One day's (or one range's) attribution figures of a sharer, or of the
/// whole store.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Figures {
    /// `share` events.
    pub shares: i64,
    /// Users whose first touch through one of the sharer's shares fell here.
    pub reached: i64,
    /// First signups attributed.
    pub signups: i64,
    /// First purchases attributed.
    pub first_purchases: i64,
    /// Purchases attributed.
    pub orders: i64,
    /// Their amounts, minor units (saturating).
    pub gmv_minor: i64,
}

impl Figures {
    /// Field-wise sum (GMV saturating, like every money sum).
    pub fn plus(&self, o: &Figures) -> Figures {
        Figures {
            shares: self.shares + o.shares,
            reached: self.reached + o.reached,
            signups: self.signups + o.signups,
            first_purchases: self.first_purchases + o.first_purchases,
            orders: self.orders + o.orders,
            gmv_minor: self.gmv_minor.saturating_add(o.gmv_minor),
        }
    }

    /// No figure below zero.
    pub(crate) fn is_valid(&self) -> bool {
        [
            self.shares,
            self.reached,
            self.signups,
            self.first_purchases,
            self.orders,
            self.gmv_minor,
        ]
        .iter()
        .all(|&v| v >= 0)
    }
}

/// Who owns a share id: the user of the first recorded `share` event
/// carrying it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Owner {
    pub user_id: u32,
    pub ts_ms: i64,
}

/// One attributed item of a referred user: the item's instant, the sharer
/// it is attributed to and (purchases) its amount.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Attr {
    pub ts_ms: i64,
    pub sharer: u32,
    pub amount_minor: i64,
}

/// Every social record as derived from the stored events alone (verify
/// compares it with the store's; rebuild writes it).
pub(crate) fn derive(store: &Store) -> Result<std::collections::BTreeMap<Vec<u8>, Vec<u8>>> {
    let settings = load_settings(store)?;
    let social_event = |e: crate::timeline::EventFacts| engine::SocialEvent {
        user_id: e.user_id,
        ts_ms: e.ts_ms,
        seq: e.seq,
        kind_id: e.kind_id,
        amount_minor: e.amount_minor.unwrap_or(0),
        share_id: e.share_id,
        via: e.via,
        group: e.group,
        index: 0,
    };
    // Two scans keep memory to the social events and the signups and
    // purchases of touched users (not every purchase of the store): the
    // first finds the social events and who was touched, the second those
    // users' signups and purchases.
    let mut events = Vec::new();
    let mut touched = roaring::RoaringBitmap::new();
    crate::timeline::for_each_event(store, |e| {
        let event = social_event(e);
        if event.opens_social() {
            if event.via.is_some() {
                touched.insert(event.user_id);
            }
            events.push(event);
        }
        Ok(())
    })?;
    if !touched.is_empty() {
        crate::timeline::for_each_event(store, |e| {
            if touched.contains(e.user_id) {
                let event = social_event(e);
                if !event.opens_social() && event.matters() {
                    events.push(event);
                }
            }
            Ok(())
        })?;
    }
    // Openings in the order they were written cannot be recovered from the
    // events; none conflicts (a conflicting one was refused), so any order
    // derives the same.
    let mut engine = engine::Engine::new(store, &settings, true);
    engine.add(&events)?;
    engine.into_records()
}

/// Records written per batch by [`rebuild`].
const REBUILD_BATCH_KEYS: usize = 10_000;

/// Replaces the `social` family with what the events derive (referral
/// credit states, the ledger's bookkeeping, and a job's snapshot of the
/// attributions before, stay). The caller holds every writer off
/// (migration, rebuild, a window change). Idempotent: a re-run after a
/// kill writes the same records.
pub(crate) fn rebuild(store: &Store) -> Result<()> {
    use crate::keys::social as k;
    let records = derive(store)?;
    for family in 1..k::REFERRAL {
        store.delete_prefix(Cf::Social, &[family], REBUILD_BATCH_KEYS)?;
    }
    let mut batch = crate::store::Batch::new();
    for (key, v) in records {
        batch.put(Cf::Social, key, v);
        if batch.len() >= REBUILD_BATCH_KEYS {
            store.write(std::mem::take(&mut batch))?;
        }
    }
    store.write(batch)
}

/// A group buy as kept: who opened it when, what it needs by when, and the
/// instant it completed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupHead {
    /// The opener's internal id (the first member).
    pub opener: u32,
    /// The opening instant (the earliest, if the opening was repeated).
    pub opened_ms: i64,
    /// Members needed, the opener included.
    pub target: u32,
    /// Joins at or after this instant do not count.
    pub deadline_ms: i64,
    /// The instant of the join that made `target` members, if any did.
    pub completed_ms: Option<i64>,
}

impl GroupHead {
    /// Whether a join at `ts_ms` counts: at or after the opening, before
    /// the deadline.
    pub fn admits(&self, ts_ms: i64) -> bool {
        self.opened_ms <= ts_ms && ts_ms < self.deadline_ms
    }

    /// The members besides the opener, from `joins` (`(user, instant)`,
    /// by user then instant: the join keys' order), each at its earliest
    /// counted join, in join order (ties by id); and how many joins do not
    /// count (the opener's, repeats, before the opening or at or after the
    /// deadline).
    pub(crate) fn members(
        &self,
        joins: impl IntoIterator<Item = (u32, i64)>,
    ) -> (Vec<(u32, i64)>, u64) {
        let mut members: Vec<(u32, i64)> = Vec::new();
        let mut others = 0u64;
        let mut last_user = None;
        for (user, ts) in joins {
            if user == self.opener || last_user == Some(user) || !self.admits(ts) {
                others += 1;
                continue;
            }
            last_user = Some(user);
            members.push((user, ts));
        }
        members.sort_by_key(|&(u, ts)| (ts, u));
        (members, others)
    }

    /// The instant the group completed, given its members besides the
    /// opener in join order: the (target − 1)-th's join.
    pub(crate) fn completion(&self, members: &[(u32, i64)]) -> Option<i64> {
        (self.target as usize)
            .checked_sub(2)
            .and_then(|i| members.get(i))
            .map(|m| m.1)
    }

    /// The group's state as of `as_of_ms`.
    pub fn state(&self, as_of_ms: i64) -> GroupState {
        match self.completed_ms {
            Some(_) => GroupState::Completed,
            None if self.deadline_ms <= as_of_ms => GroupState::Expired,
            None => GroupState::Open,
        }
    }
}

/// Where a group buy stands at an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupState {
    /// Target reached before the deadline.
    Completed,
    /// Deadline passed without reaching the target.
    Expired,
    /// Neither yet.
    Open,
}

/// Who `user_id`'s first signup is attributed to, if anyone.
pub(crate) fn referrer_of(store: &Store, user_id: u32) -> Result<Option<u32>> {
    let key = crate::keys::social::first_item(user_id, crate::keys::social::ITEM_SIGNUP);
    Ok(store.get::<Attr>(Cf::Social, &key)?.map(|a| a.sharer))
}
