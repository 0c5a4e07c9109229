//! One user's state as one write changes it: the parts read (head, day
//! masks, money days, sessions) and what they became, so only changed parts
//! are written back; and the move of the user's stage mark.

use std::collections::BTreeMap;

use super::sessions::SessionRec;
use super::state::{DayMoney, StageCtx, UserHead, ACTIVITY};
use super::transitions::{self, Series, StageMark, Trigger};
use crate::codec;
use crate::error::Result;
use crate::feed::Record;
use crate::keys::activity::{self, block_of, block_start};
use crate::store::{Batch, Cf, Store};

/// Bits `from..=to` of a `u64` (both in 0..64).
pub(super) fn bits_between(from: u32, to: u32) -> u64 {
    let high = if to >= 63 {
        u64::MAX
    } else {
        (1u64 << (to + 1)) - 1
    };
    high & (u64::MAX << from)
}

/// The day masks of one user in one block: kind → bit per day.
pub(crate) type BlockMasks = BTreeMap<u32, u64>;

/// One user's state as one write changes it: what was read and what it
/// became, so only changed parts are written back.
pub(super) struct UserWork<'s> {
    pub(super) store: &'s Store,
    pub(super) user_id: u32,
    /// Created by this write: nothing of it is stored yet, so nothing is read.
    pub(super) new: bool,
    pub(super) head: UserHead,
    /// block → (masks, changed by this write).
    pub(super) blocks: BTreeMap<i32, (BlockMasks, bool)>,
    /// day → (stored money, current money).
    pub(super) money: BTreeMap<i32, (Option<DayMoney>, DayMoney)>,
    /// kind → its first day before this write (for cohort moves).
    pub(super) firsts_before: BTreeMap<u32, Option<i32>>,
    /// session id → (stored record, record after this write).
    pub(super) sessions: BTreeMap<String, (Option<SessionRec>, SessionRec)>,
    /// The events of this write that can change the user's stage.
    pub(super) triggers: Vec<Trigger>,
    /// The day an `advance` settles the user's stage up to.
    pub(super) settle_to: Option<i32>,
    /// The last active day before this write.
    pub(super) last_active_before: Option<i32>,
    /// The head's `recent` days before this write.
    pub(super) recent_before: u64,
    /// The head changed (an event, or a mark moved).
    pub(super) head_changed: bool,
    /// Walk even if no due day has come (a model change).
    pub(super) resettle: bool,
}

impl<'s> UserWork<'s> {
    pub(super) fn load(store: &'s Store, user_id: u32, new: bool) -> Result<Self> {
        let head = if new {
            UserHead::default()
        } else {
            store
                .get(Cf::Activity, &activity::head(user_id))?
                .unwrap_or_default()
        };
        Ok(Self {
            store,
            user_id,
            new,
            last_active_before: head.last_active,
            recent_before: head.recent,
            head,
            blocks: BTreeMap::new(),
            money: BTreeMap::new(),
            firsts_before: BTreeMap::new(),
            sessions: BTreeMap::new(),
            triggers: Vec::new(),
            settle_to: None,
            head_changed: false,
            resettle: false,
        })
    }

    /// Notes an event of session `s` at `ts_ms` (local day `day`).
    pub(super) fn session_event(&mut self, s: &str, day: i32, ts_ms: i64) -> Result<()> {
        if let Some(entry) = self.sessions.get_mut(s) {
            entry.1.add(day, ts_ms);
            return Ok(());
        }
        let key = activity::session(self.user_id, s);
        let stored = match self.new {
            true => None,
            false => match self.store.get_raw(Cf::Activity, &key)? {
                Some(v) => Some(SessionRec::decode(&key, &v)?),
                None => None,
            },
        };
        let now = match stored {
            Some(mut rec) => {
                rec.add(day, ts_ms);
                rec
            }
            None => SessionRec::start(day, ts_ms),
        };
        self.sessions.insert(s.to_owned(), (stored, now));
        Ok(())
    }

    pub(super) fn block(&mut self, block: i32) -> Result<&mut (BlockMasks, bool)> {
        if !self.blocks.contains_key(&block) {
            let stored: BlockMasks = if self.new {
                BlockMasks::new()
            } else {
                self.store
                    .get(Cf::Activity, &activity::days(self.user_id, block))?
                    .unwrap_or_default()
            };
            self.blocks.insert(block, (stored, false));
        }
        Ok(self
            .blocks
            .entry(block)
            .or_insert_with(|| (BlockMasks::new(), false)))
    }

    pub(super) fn mask(&mut self, kind: u32, block: i32) -> Result<u64> {
        Ok(self.block(block)?.0.get(&kind).copied().unwrap_or(0))
    }

    /// Adds `day` to the days of `kind`; returns whether it was new.
    pub(super) fn insert(&mut self, kind: u32, day: i32) -> Result<bool> {
        let (block, bit) = block_of(day);
        let slot = self.block(block)?;
        let m = slot.0.entry(kind).or_insert(0);
        if *m & (1 << bit) != 0 {
            return Ok(false);
        }
        *m |= 1 << bit;
        slot.1 = true;
        Ok(true)
    }

    /// The latest day of `kind` in `day − span ..= day − 1`.
    pub(super) fn prev_within(&mut self, kind: u32, day: i32, span: i32) -> Result<Option<i32>> {
        let (lo, hi) = (day - span, day - 1);
        for block in (block_of(lo).0..=block_of(hi).0).rev() {
            let start = block_start(block);
            let from = (lo.max(start) - start) as u32;
            let to = (hi.min(start + 63) - start) as u32;
            let hits = self.mask(kind, block)? & bits_between(from, to);
            if hits != 0 {
                return Ok(Some(start + (63 - hits.leading_zeros()) as i32));
            }
        }
        Ok(None)
    }

    /// The earliest day of `kind` in `day + 1 ..= day + span`.
    pub(super) fn next_within(&mut self, kind: u32, day: i32, span: i32) -> Result<Option<i32>> {
        let (lo, hi) = (day + 1, day + span);
        for block in block_of(lo).0..=block_of(hi).0 {
            let start = block_start(block);
            let from = (lo.max(start) - start) as u32;
            let to = (hi.min(start + 63) - start) as u32;
            let hits = self.mask(kind, block)? & bits_between(from, to);
            if hits != 0 {
                return Ok(Some(start + hits.trailing_zeros() as i32));
            }
        }
        Ok(None)
    }

    pub(super) fn money_day(&mut self, day: i32) -> Result<&mut DayMoney> {
        if !self.money.contains_key(&day) {
            let stored: Option<DayMoney> = if self.new {
                None
            } else {
                self.store
                    .get(Cf::Activity, &activity::money(self.user_id, day))?
            };
            self.money.insert(day, (stored, stored.unwrap_or_default()));
        }
        Ok(&mut self
            .money
            .entry(day)
            .or_insert((None, DayMoney::default()))
            .1)
    }

    /// Moves the user's stage mark over this write's triggers (or to the
    /// day an `advance` settles it to): the records to publish, and the due
    /// index moved in `batch`. Reads only the masks of the 60 days before
    /// the walk's base, which a write on a recent day has loaded already.
    pub(super) fn move_mark(
        &mut self,
        ctx: &StageCtx<'_>,
        offset: i32,
        batch: &mut Batch,
    ) -> Result<Vec<Record>> {
        if self.triggers.is_empty() && self.settle_to.is_none() {
            return Ok(Vec::new());
        }
        let old = self.head.mark.clone();
        // An advance settles only a user whose due day has come: a re-run,
        // or a user a write already moved past it, writes nothing.
        if self.triggers.is_empty() && !self.resettle {
            let due = old.as_ref().and_then(|m| m.due);
            if due.is_none_or(|d| self.settle_to.is_none_or(|t| d > t)) {
                // Not due: its index key was a stale lower bound (writes
                // moved the due day later without touching the index), so
                // the key moves to the true due day.
                if let (Some(mut mark), Some(t)) = (old, self.settle_to) {
                    if mark.indexed.is_some_and(|i| i <= t) {
                        let due = mark.due;
                        self.reindex(&mut mark, due, batch);
                        self.head.mark = Some(mark);
                        self.head_changed = true;
                    }
                }
                return Ok(Vec::new());
            }
        }
        // The mark's stage holds up to the day before its due day, and every
        // due day lies after the clock (but while an advance is settling),
        // so the walk may start at the clock.
        let effective = old.as_ref().map(|m| {
            let held_to = m.due.map_or(i32::MAX, |d| d - 1);
            m.day.max(ctx.clock_day.map_or(m.day, |c| c.min(held_to)))
        });
        let effective = effective.or(ctx.clock_day);
        let trig_min = self.triggers.iter().map(|t| t.day).min();
        let trig_max = self.triggers.iter().map(|t| t.day).max();
        let Some(target) = effective.max(trig_max).max(self.settle_to) else {
            return Ok(Vec::new());
        };
        let base = effective.or(trig_min.map(|d| d - 1)).unwrap_or(target);
        debug_assert!(
            self.last_active_before.is_none_or(|l| l <= base),
            "a mark is at or after every earlier activity"
        );
        let mut series = Series {
            base,
            first: self.head.firsts.get(&ACTIVITY).copied(),
            last_at_base: self.last_active_before,
            purchase_days_at_base: i64::from(self.head.purchase_days),
            bought_at_base: self.head.bought_minor,
            refunded_at_base: self.head.refunded_minor,
            ..Series::default()
        };
        let mut money_after: BTreeMap<i32, (i64, i64)> = BTreeMap::new();
        for t in &self.triggers {
            if t.day <= base {
                if t.new_active {
                    series.last_at_base = series.last_at_base.max(Some(t.day));
                }
                continue;
            }
            if t.new_active {
                series.active.push(t.day);
            }
            if t.new_purchase_day {
                series.purchase_days_after.push(t.day);
                series.purchase_days_at_base -= 1;
            }
            if t.bought_minor != 0 || t.refunded_minor != 0 {
                let m = money_after.entry(t.day).or_default();
                m.0 = m.0.saturating_add(t.bought_minor);
                m.1 = m.1.saturating_add(t.refunded_minor);
            }
        }
        // Totals as of the base: what the triggers after it added comes off.
        // (Purchases and refunds after the base all come from this write.)
        for (b, r) in money_after.values() {
            series.bought_at_base = series.bought_at_base.saturating_sub(*b);
            series.refunded_at_base = series.refunded_at_base.saturating_sub(*r);
        }
        series.money_after = money_after
            .into_iter()
            .map(|(d, (b, r))| (d, b, r))
            .collect();
        // The 60 days before the base: every earlier active day lies in the
        // 64 the head kept (the base is at or after the last active day
        // before this write), and this write's days at or before the base
        // are its late triggers.
        let lo = base.saturating_sub(59);
        let mut window =
            UserHead::recent_days(self.last_active_before, self.recent_before, lo, base);
        window.extend(
            self.triggers
                .iter()
                .filter(|t| t.new_active && (lo..=base).contains(&t.day))
                .map(|t| t.day),
        );
        window.sort_unstable();
        series.active.sort_unstable();
        series.purchase_days_after.sort_unstable();
        window.append(&mut series.active);
        series.active = window;
        let correction_day = trig_min.filter(|d| *d <= base).unwrap_or(base);
        let moved = transitions::walk(
            ctx.model,
            &series,
            old.as_ref().and_then(|m| m.stage.as_deref()),
            target,
            correction_day,
            ctx.publish,
            self.user_id,
            offset,
        );
        let mut mark = moved.mark;
        mark.indexed = old.as_ref().and_then(|m| m.indexed);
        // The index key is a lower bound of the due day: a write that moves
        // the due day later (every new day of an active user does) leaves
        // it, and an advance that meets it early moves it. It moves here
        // only when the due day comes earlier, or when it was settled.
        let settled = self
            .settle_to
            .is_some_and(|t| mark.indexed.is_some_and(|i| i <= t));
        let lower_bound = match (mark.indexed, mark.due) {
            (Some(i), Some(d)) => i <= d,
            (Some(_), None) => true,
            (None, due) => due.is_none(),
        };
        if settled || !lower_bound {
            let due = mark.due;
            self.reindex(&mut mark, due, batch);
        }
        self.head_changed |= self.head.mark.as_ref() != Some(&mark);
        self.head.mark = Some(mark);
        Ok(moved.records)
    }

    /// Moves the user's due index key to `day`.
    fn reindex(&self, mark: &mut StageMark, day: Option<i32>, batch: &mut Batch) {
        if mark.indexed == day {
            return;
        }
        if let Some(i) = mark.indexed {
            batch.delete(Cf::Feed, crate::keys::feed::due(i, self.user_id));
        }
        if let Some(d) = day {
            batch.put(Cf::Feed, crate::keys::feed::due(d, self.user_id), []);
        }
        mark.indexed = day;
    }

    /// Puts the head and every changed mask and money day into `batch`.
    pub(super) fn finish(self, batch: &mut Batch) -> Result<()> {
        let u = self.user_id;
        if self.head_changed {
            batch.put(Cf::Activity, activity::head(u), codec::encode(&self.head)?);
        }
        for (block, (masks, changed)) in self.blocks {
            if changed {
                batch.put(
                    Cf::Activity,
                    activity::days(u, block),
                    codec::encode(&masks)?,
                );
            }
        }
        for (day, (stored, now)) in self.money {
            if stored != Some(now) {
                batch.put(Cf::Activity, activity::money(u, day), codec::encode(&now)?);
            }
        }
        Ok(())
    }
}
