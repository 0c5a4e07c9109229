//! Ledger verification: replays every account's entries in posting order
//! with plain collections and compares what they imply with what is stored:
//! balance = sum of entries and never negative, held ≤ balance, every lot's
//! remaining and held = its earn plus every move of every entry, the open-lot
//! and due indexes, open holds, growth days, rule totals, reversal marks,
//! transaction records, tiers and the tier sets.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use roaring::RoaringBitmap;

mod rewards;

use super::VerifyReport;
use crate::error::Result;
use crate::keys::ledger as lk;
use crate::keys::{self, ledger::LedgerKey};
use crate::ledger::{
    Account, EntryKind, Hold, LedgerEntry, LedgerSettings, Lot, LotDraw, StoredTxn, TierChange,
};
use crate::store::{decode_value, Cf, Store};
use crate::time::{local_day, DAY_MS};
use crate::users::UserRecord;
use rewards::{birthday_holders, first_order_copy, live_credits};

/// One account's stored records, as read.
#[derive(Default)]
struct Stored {
    account: Option<Account>,
    /// The first-order holder's position the account keeps a copy of.
    first_order_at: Option<(i64, u32)>,
    entries: Vec<LedgerEntry>,
    lots: BTreeMap<u32, Lot>,
    open: BTreeSet<(i64, u32)>,
    holds: BTreeMap<u32, Hold>,
    txns: BTreeMap<String, StoredTxn>,
    growth: BTreeMap<i32, i64>,
    tiers: Vec<(u32, TierChange)>,
    reversed: BTreeMap<u32, String>,
    caps: BTreeMap<(i32, u16), i64>,
    coupons: super::coupons::UserCoupons,
    growth_values: BTreeMap<i32, crate::ledger::growth::GrowthDay>,
    firsts: Vec<(u16, String, crate::ledger::session::rewards::Holder)>,
    streak: Option<crate::ledger::session::streak::StreakState>,
}

impl Stored {
    /// Whether it holds points records (not only coupons).
    fn has_points(&self) -> bool {
        self.account.is_some()
            || !(self.entries.is_empty()
                && self.lots.is_empty()
                && self.open.is_empty()
                && self.holds.is_empty()
                && self.txns.is_empty()
                && self.growth.is_empty()
                && self.tiers.is_empty()
                && self.reversed.is_empty()
                && self.caps.is_empty())
    }
}

/// Checks every account; returns the tier sets the accounts imply, keyed as
/// in the metrics cf, for the metrics comparison.
pub(super) fn check(
    store: &Store,
    records: &HashMap<u32, UserRecord>,
    settings: &LedgerSettings,
    expected: super::growth::Expected,
    r: &mut VerifyReport,
) -> Result<BTreeMap<Vec<u8>, RoaringBitmap>> {
    let offset = store.settings().utc_offset_minutes;
    let super::growth::Expected {
        mut growth,
        firsts: oldest,
        paid,
        sign_in_days,
        streaks,
        birthdays,
    } = expected;
    let mut tier_sets: BTreeMap<Vec<u8>, RoaringBitmap> = BTreeMap::new();
    let mut due: BTreeSet<Vec<u8>> = BTreeSet::new();
    let mut coupons = super::coupons::Tally::default();
    let mut current: Option<(u32, Stored)> = None;
    let mut finish = |cur: Option<(u32, Stored)>,
                      r: &mut VerifyReport,
                      tier_sets: &mut BTreeMap<Vec<u8>, RoaringBitmap>,
                      due: &mut BTreeSet<Vec<u8>>| {
        if let Some((uid, mut s)) = cur {
            if !records.contains_key(&uid) {
                r.problem(format!("ledger: records of user {uid}, who does not exist"));
            }
            coupons.user(uid, std::mem::take(&mut s.coupons), due, r);
            let want = growth.remove(&uid).unwrap_or_default();
            if want != s.growth_values {
                r.problem(format!(
                    "ledger: user {uid}: growth-value days differ from what its events give"
                ));
            }
            if let Some(st) = s.streak.take().filter(|_| streaks) {
                if sign_in_days.get(&uid).map_or(&[][..], Vec::as_slice) != st.days.as_slice() {
                    r.problem(format!(
                        "ledger: user {uid}: streak days differ from its sign-in days"
                    ));
                }
                let paid = st.paid.iter().filter_map(|(_, t)| t.as_deref());
                live_credits(uid, &s, paid, r);
            }
            for (_, _, h) in &s.firsts {
                live_credits(uid, &s, h.paid.iter().map(String::as_str), r);
            }
            first_order_copy(uid, &s, r);
            if let Some(non_activity) = &birthdays {
                birthday_holders(store, uid, &s.firsts, non_activity, r);
            }
            for (reward, campaign, h) in std::mem::take(&mut s.firsts) {
                if !paid.contains(&reward) {
                    continue;
                }
                let want = oldest.get(&(uid, reward, campaign.clone()));
                if want != Some(&(h.ts_ms, h.seq)) {
                    r.problem(format!(
                        "ledger: user {uid}: reward {reward} {campaign:?} held by \
                         ({}, {}), but its oldest event is {want:?}",
                        h.ts_ms, h.seq
                    ));
                }
            }
            if s.has_points() {
                check_account(uid, s, settings, offset, r, tier_sets, due);
            }
        }
    };
    for item in store.range(Cf::Ledger, &[], None)? {
        let (k, v) = item?;
        r.count(Cf::Ledger);
        let Ok(uid) = keys::user_of(Cf::Ledger.name(), &k) else {
            r.problem(format!("ledger: key {k:?} too short"));
            continue;
        };
        if current.as_ref().is_none_or(|(u, _)| *u != uid) {
            let done = current.replace((uid, Stored::default()));
            finish(done, r, &mut tier_sets, &mut due);
        }
        let Some((_, s)) = current.as_mut() else {
            continue;
        };
        if let Err(text) = read_record(s, &k, &v) {
            r.problem(format!("ledger: user {uid}: {text}"));
        }
    }
    finish(current.take(), r, &mut tier_sets, &mut due);
    for uid in growth.keys() {
        r.problem(format!(
            "ledger: user {uid}: growth-value days its events give are missing"
        ));
    }
    coupons.check(store, r)?;

    for item in store.range(Cf::LedgerDue, &[], None)? {
        let (k, _) = item?;
        r.count(Cf::LedgerDue);
        if !due.remove(&k[..]) {
            r.problem(format!("ledger_due: entry {k:?} matches nothing open"));
        }
    }
    for k in due {
        r.problem(format!("ledger_due: entry {k:?} missing"));
    }
    Ok(tier_sets)
}

fn read_record(s: &mut Stored, k: &[u8], v: &[u8]) -> std::result::Result<(), String> {
    let decode_err = |e: crate::error::Error| e.to_string();
    let Some(key) = LedgerKey::parse(k) else {
        return Err(format!("key {k:?} in no known record family"));
    };
    match key {
        LedgerKey::Account { .. } => {
            let (account, at) =
                crate::ledger::account_value::decode_full(k, v).map_err(decode_err)?;
            s.account = Some(account);
            s.first_order_at = at;
        }
        LedgerKey::Entry { at_ms, seq, .. } => {
            let e: LedgerEntry = decode_value(Cf::Ledger, k, v).map_err(decode_err)?;
            if (e.at_ms, e.seq) != (at_ms, seq) {
                return Err(format!("entry {} filed under ({at_ms}, {seq})", e.seq));
            }
            s.entries.push(e);
        }
        LedgerKey::Lot { lot: id, .. } => {
            let lot: Lot = decode_value(Cf::Ledger, k, v).map_err(decode_err)?;
            if lot.id != id {
                return Err(format!("lot {} filed under {id}", lot.id));
            }
            s.lots.insert(id, lot);
        }
        LedgerKey::OpenLot {
            expires_at_ms, lot, ..
        } => {
            s.open.insert((expires_at_ms.unwrap_or(i64::MAX), lot));
        }
        LedgerKey::Hold { seq, .. } => {
            let h: Hold = decode_value(Cf::Ledger, k, v).map_err(decode_err)?;
            if h.seq != seq {
                return Err(format!("hold {} filed under {seq}", h.seq));
            }
            s.holds.insert(seq, h);
        }
        LedgerKey::Txn { txn_id, .. } => {
            let rec = crate::ledger::decode_txn(&txn_id, k, v).map_err(decode_err)?;
            s.txns.insert(txn_id, rec);
        }
        LedgerKey::Growth { day, .. } => {
            s.growth
                .insert(day, decode_value(Cf::Ledger, k, v).map_err(decode_err)?);
        }
        LedgerKey::Tier { seq, .. } => {
            s.tiers
                .push((seq, decode_value(Cf::Ledger, k, v).map_err(decode_err)?));
        }
        LedgerKey::Reversed { seq, .. } => {
            s.reversed
                .insert(seq, decode_value(Cf::Ledger, k, v).map_err(decode_err)?);
        }
        LedgerKey::Streak { .. } => {
            s.streak = Some(decode_value(Cf::Ledger, k, v).map_err(decode_err)?);
        }
        LedgerKey::FirstReward {
            reward, campaign, ..
        } => {
            let h = decode_value(Cf::Ledger, k, v).map_err(decode_err)?;
            s.firsts.push((reward, campaign, h));
        }
        LedgerKey::GrowthValue { day, .. } => {
            s.growth_values
                .insert(day, decode_value(Cf::Ledger, k, v).map_err(decode_err)?);
        }
        LedgerKey::Cap { day, rule, .. } => {
            s.caps.insert(
                (day, rule),
                decode_value(Cf::Ledger, k, v).map_err(decode_err)?,
            );
        }
        LedgerKey::Coupon { slot, .. } => {
            s.coupons
                .coupons
                .push((slot, decode_value(Cf::Ledger, k, v).map_err(decode_err)?));
        }
        LedgerKey::CouponTxn { txn_id, .. } => {
            let record = decode_value(Cf::Ledger, k, v).map_err(decode_err)?;
            s.coupons.txns.push((txn_id, record));
        }
        LedgerKey::CouponId { coupon, .. } => {
            let slot = decode_value(Cf::Ledger, k, v).map_err(decode_err)?;
            s.coupons.ids.push((coupon, slot));
        }
        LedgerKey::CouponHead { .. } => {
            s.coupons.head = Some(decode_value(Cf::Ledger, k, v).map_err(decode_err)?);
        }
    }
    Ok(())
}

fn check_account(
    uid: u32,
    mut s: Stored,
    settings: &LedgerSettings,
    offset: i32,
    r: &mut VerifyReport,
    tier_sets: &mut BTreeMap<Vec<u8>, RoaringBitmap>,
    due: &mut BTreeSet<Vec<u8>>,
) {
    let mut problem = |text: String| r.problem(format!("ledger: user {uid}: {text}"));
    let Some(account) = s.account.take() else {
        problem("records without an account".into());
        return;
    };
    s.entries.sort_by_key(|e| e.seq);
    let by_seq: BTreeMap<u32, &LedgerEntry> = s.entries.iter().map(|e| (e.seq, e)).collect();
    if by_seq.len() != s.entries.len() {
        problem("two entries share a sequence number".into());
    }

    // Replay.
    let (mut balance, mut held) = (0i64, 0i64);
    let mut lots: BTreeMap<u32, Lot> = BTreeMap::new();
    let mut holds: BTreeMap<u32, Hold> = BTreeMap::new();
    let mut growth: BTreeMap<i32, i64> = BTreeMap::new();
    let mut reversed: BTreeMap<u32, String> = BTreeMap::new();
    let mut caps: BTreeMap<(i32, u16), i64> = BTreeMap::new();
    for e in &s.entries {
        if e.seq >= account.next_seq {
            problem(format!(
                "entry {} at or past next_seq {}",
                e.seq, account.next_seq
            ));
        }
        let moved: i64 = e
            .lots
            .iter()
            .map(|m| m.remaining_delta + m.held_delta)
            .sum();
        let moved_held: i64 = e.lots.iter().map(|m| m.held_delta).sum();
        let created = e.new_lot.map_or(0, |n| n.points);
        if moved + created != e.amount || moved_held != e.held_delta {
            problem(format!(
                "entry {} moves {moved}+{created} ({moved_held} held) for amount {} ({} held)",
                e.seq, e.amount, e.held_delta
            ));
        }
        if matches!(
            e.kind,
            EntryKind::Redeem | EntryKind::Expire | EntryKind::Capture
        ) && e.lots.is_empty()
        {
            problem(format!("{} entry {} names no lot", e.kind.name(), e.seq));
        }
        balance += e.amount;
        held += e.held_delta;
        if e.balance_after != balance {
            problem(format!(
                "entry {} says balance {} but entries sum to {balance}",
                e.seq, e.balance_after
            ));
        }
        if balance < 0 || held < 0 || held > balance {
            problem(format!(
                "after entry {}: balance {balance}, held {held}",
                e.seq
            ));
        }
        if let Some(n) = e.new_lot {
            lots.insert(
                e.seq,
                Lot {
                    id: e.seq,
                    earned_at_ms: e.at_ms,
                    earned: n.points,
                    remaining: n.points,
                    held: 0,
                    expires_at_ms: n.expires_at_ms,
                },
            );
        }
        for m in &e.lots {
            match lots.get_mut(&m.lot) {
                Some(l) => {
                    l.remaining += m.remaining_delta;
                    l.held += m.held_delta;
                    if l.remaining < 0 || l.held < 0 {
                        problem(format!("entry {} overdraws lot {}", e.seq, m.lot));
                    }
                }
                None => problem(format!("entry {} moves unknown lot {}", e.seq, m.lot)),
            }
        }
        match e.kind {
            EntryKind::Earn => {
                if let Some(n) = e.new_lot {
                    *growth.entry(local_day(e.at_ms, offset)).or_default() += n.points;
                    if let Some(rule) = e.rule {
                        *caps.entry((local_day(e.at_ms, offset), rule)).or_default() += n.points;
                    }
                }
            }
            EntryKind::Hold => {
                holds.insert(
                    e.seq,
                    Hold {
                        seq: e.seq,
                        txn_id: e.txn_id.clone().unwrap_or_default(),
                        points: e.held_delta,
                        draws: e
                            .lots
                            .iter()
                            .map(|m| LotDraw {
                                lot: m.lot,
                                points: m.held_delta,
                            })
                            .collect(),
                        deadline_ms: e.deadline_ms.unwrap_or(i64::MIN),
                    },
                );
            }
            // The guard closes the hold; the arm reports one that was not open.
            EntryKind::Capture | EntryKind::Release | EntryKind::HoldTimeout
                if e.related.and_then(|h| holds.remove(&h)).is_none() =>
            {
                problem(format!("entry {} resolves a hold that is not open", e.seq));
            }
            EntryKind::Reverse => {
                let target = e.related.and_then(|t| by_seq.get(&t));
                match (target, &e.txn_id) {
                    (Some(t), Some(by)) if t.seq < e.seq => {
                        if reversed.insert(t.seq, by.clone()).is_some() {
                            problem(format!("entry {} reversed twice", t.seq));
                        }
                        if let (EntryKind::Earn, Some(n)) = (t.kind, t.new_lot) {
                            *growth.entry(local_day(t.at_ms, offset)).or_default() -= n.points;
                        }
                    }
                    _ => problem(format!("reversal {} names no earlier entry", e.seq)),
                }
            }
            _ => {}
        }
    }

    if (account.balance, account.held) != (balance, held) {
        problem(format!(
            "account says balance {} held {}, entries give {balance} and {held}",
            account.balance, account.held
        ));
    }
    if lots != s.lots {
        let differ = lots
            .keys()
            .chain(s.lots.keys())
            .filter(|id| lots.get(id) != s.lots.get(id))
            .count();
        problem(format!("{differ} lots differ from what the entries give"));
    }
    let open: BTreeSet<(i64, u32)> = lots
        .values()
        .filter(|l| l.is_open())
        .map(|l| (l.expires_at_ms.unwrap_or(i64::MAX), l.id))
        .collect();
    if open != s.open {
        problem(format!(
            "open-lot index has {} entries, lots give {}",
            s.open.len(),
            open.len()
        ));
    }
    if holds != s.holds {
        problem(format!(
            "{} open holds stored, entries leave {}",
            s.holds.len(),
            holds.len()
        ));
    }
    growth.retain(|_, v| *v != 0);
    if growth != s.growth {
        problem("growth days differ from the earns".into());
    }
    if reversed != s.reversed {
        problem("reversal marks differ from the reversals".into());
    }
    if caps != s.caps {
        problem("rule day totals differ from the rule credits".into());
    }
    for e in &s.entries {
        if let Some(t) = &e.txn_id {
            if s.txns
                .get(t)
                .is_none_or(|rec| rec.entry_seq() != Some(e.seq))
            {
                problem(format!("entry {} has no transaction record {t:?}", e.seq));
            }
        }
    }
    for (t, rec) in &s.txns {
        // a record moved in by a merge names an entry of the merged account
        let Some(seq) = rec.entry_seq() else {
            continue;
        };
        let ok = by_seq.get(&seq).is_some_and(|e| {
            e.txn_id.as_deref() == Some(t.as_str())
                // a compact record is a rule credit's
                && (matches!(rec, StoredTxn::Full(_)) || (e.rule.is_some() && e.new_lot.is_some()))
        });
        if !ok {
            problem(format!("transaction {t:?} names no entry of its own"));
        }
    }

    // Tiers: the chain of changes ends at the account's tier, which is the
    // tier its growth gives at its clock (reviews due later are not yet due).
    s.tiers.sort_by_key(|(seq, _)| *seq);
    let mut last: Option<String> = None;
    for (seq, t) in &s.tiers {
        if t.from != last {
            problem(format!(
                "tier change {seq} starts from {:?}, not {last:?}",
                t.from
            ));
        }
        last = t.to.clone();
    }
    if last != account.tier {
        problem(format!(
            "tier {:?} but the changes end at {last:?}",
            account.tier
        ));
    }
    let tiers = &settings.tiers;
    let day = local_day(account.clock_ms, offset);
    let lo = day.saturating_sub(tiers.window_days as i32 - 1);
    let in_window: Vec<(i32, i64)> = match settings.growth().tier_basis {
        crate::ledger::TierBasis::GrowthValue => s
            .growth_values
            .range(lo..=day)
            .map(|(d, g)| (*d, g.value))
            .filter(|(_, v)| *v != 0)
            .collect(),
        _ => s.growth.range(lo..=day).map(|(d, v)| (*d, *v)).collect(),
    };
    let g: i64 = in_window
        .iter()
        .fold(0i64, |a, (_, v)| a.saturating_add(*v))
        .max(0);
    let want_tier = tiers.tier_for(g).map(str::to_owned);
    let negative = in_window.iter().any(|(_, v)| *v < 0);
    let want_review = match (want_tier.is_some() || negative, in_window.first()) {
        (true, Some((o, _))) => Some(
            (i64::from(*o) + i64::from(tiers.window_days)) * DAY_MS - i64::from(offset) * 60_000,
        ),
        _ => None,
    };
    if account.review_at_ms.is_none_or(|r| r > account.clock_ms)
        && (want_tier != account.tier || want_review != account.review_at_ms)
    {
        problem(format!(
            "tier {:?} (review {:?}) but growth {g} gives {want_tier:?} (review {want_review:?})",
            account.tier, account.review_at_ms
        ));
    }
    if let Some(t) = &account.tier {
        tier_sets
            .entry(crate::keys::metrics::tier_users(t, uid))
            .or_default()
            .insert(uid);
    }

    for l in lots.values().filter(|l| l.is_open()) {
        if let Some(e) = l.expires_at_ms {
            due.insert(lk::due(lk::DUE_LOT, e, uid, l.id).to_vec());
        }
    }
    for h in holds.values() {
        due.insert(lk::due(lk::DUE_HOLD, h.deadline_ms, uid, h.seq).to_vec());
    }
    if let Some(rv) = account.review_at_ms {
        due.insert(lk::due(lk::DUE_REVIEW, rv, uid, 0).to_vec());
    }
}
