//! Reading per-user state back: assembling a user's [`UserActivity`] from its
//! head, day masks and money days, one user or every user of an id range
//! (three family scans merged by user id).

use std::collections::BTreeMap;
use std::iter::Peekable;

use super::days::DaySet;
use super::state::{add_mask_days, BlockMasks, DayMoney, UserActivity, UserHead};
use crate::error::{CorruptionError, Result};
use crate::keys::activity::{self, ActivityKey};
use crate::store::{decode_value, Cf, KeyValue, Snapshot};

fn bad_key(k: &[u8]) -> CorruptionError {
    CorruptionError {
        cf: Cf::Activity.name(),
        what: "key",
        key: k.to_vec(),
        reason: "not an activity key layout".into(),
    }
}

/// The key range `[family ‖ lo, family ‖ hi)` (`hi = None`: to the family's end).
fn family_range(fam: u8, lo: u32, hi: Option<u32>) -> (Vec<u8>, Option<Vec<u8>>) {
    let start = activity::family(fam, lo);
    let end = match hi {
        Some(h) => Some(activity::family(fam, h)),
        None => Some(vec![fam + 1]),
    };
    (start, end)
}

/// One user's state as stored, assembled; `None` without events.
pub(crate) fn load_user(view: &Snapshot<'_>, user_id: u32) -> Result<Option<UserActivity>> {
    let head_key = activity::head(user_id);
    let Some(head) = view.get::<UserHead>(Cf::Activity, &head_key)? else {
        return Ok(None);
    };
    let mut days: BTreeMap<u32, DaySet> = BTreeMap::new();
    let (s, e) = family_range(activity::DAYS, user_id, user_id.checked_add(1));
    for item in view.range(Cf::Activity, &s, e)? {
        let (k, v) = item?;
        add_days(&mut days, &k, &v)?;
    }
    let mut money = BTreeMap::new();
    let (s, e) = family_range(activity::MONEY, user_id, user_id.checked_add(1));
    for item in view.range(Cf::Activity, &s, e)? {
        let (k, v) = item?;
        add_money(&mut money, &k, &v)?;
    }
    Ok(Some(assemble(head, days, money)))
}

fn assemble(
    head: UserHead,
    days: BTreeMap<u32, DaySet>,
    money: BTreeMap<i32, DayMoney>,
) -> UserActivity {
    UserActivity {
        money,
        days,
        hours: head.hours,
        weekdays: head.weekdays,
    }
}

fn add_days(days: &mut BTreeMap<u32, DaySet>, k: &[u8], v: &[u8]) -> Result<()> {
    match ActivityKey::parse(k) {
        Some(ActivityKey::Days { block, .. }) => {
            let masks: BlockMasks = decode_value(Cf::Activity, k, v)?;
            for (kind, mask) in masks {
                add_mask_days(days.entry(kind).or_default(), block, mask);
            }
            Ok(())
        }
        _ => Err(bad_key(k).into()),
    }
}

fn add_money(money: &mut BTreeMap<i32, DayMoney>, k: &[u8], v: &[u8]) -> Result<()> {
    match ActivityKey::parse(k) {
        Some(ActivityKey::Money { day, .. }) => {
            money.insert(day, decode_value(Cf::Activity, k, v)?);
            Ok(())
        }
        _ => Err(bad_key(k).into()),
    }
}

fn user_of(k: &[u8]) -> Result<u32> {
    ActivityKey::parse(k)
        .map(|p| p.user_id())
        .ok_or_else(|| bad_key(k).into())
}

type Rows<'v> = Peekable<Box<dyn Iterator<Item = Result<KeyValue>> + 'v>>;

fn rows<'v>(view: &'v Snapshot<'_>, fam: u8, lo: u32, hi: Option<u32>) -> Result<Rows<'v>> {
    let (s, e) = family_range(fam, lo, hi);
    let it: Box<dyn Iterator<Item = Result<KeyValue>> + 'v> =
        Box::new(view.range(Cf::Activity, &s, e)?);
    Ok(it.peekable())
}

/// Takes the rows of `user` off the front of `rows` (skipping rows of users
/// before it, which have no head: damage that `verify` reports).
fn take_user(
    rows: &mut Rows<'_>,
    user: u32,
    mut f: impl FnMut(&[u8], &[u8]) -> Result<()>,
) -> Result<()> {
    loop {
        let next_user = match rows.peek() {
            None => return Ok(()),
            Some(Err(_)) => {
                return match rows.next() {
                    Some(Err(e)) => Err(e),
                    _ => Ok(()),
                }
            }
            Some(Ok((k, _))) => user_of(k)?,
        };
        if next_user > user {
            return Ok(());
        }
        let Some(Ok((k, v))) = rows.next() else {
            return Ok(());
        };
        if next_user == user {
            f(&k, &v)?;
        }
    }
}

/// Calls `f` with the assembled state of every user with events whose id
/// is in `lo..hi` (`hi = None`: no upper bound), in id order.
pub(crate) fn for_each_user(
    view: &Snapshot<'_>,
    lo: u32,
    hi: Option<u32>,
    mut f: impl FnMut(u32, UserActivity) -> Result<()>,
) -> Result<()> {
    let mut days_rows = rows(view, activity::DAYS, lo, hi)?;
    let mut money_rows = rows(view, activity::MONEY, lo, hi)?;
    let (s, e) = family_range(activity::HEAD, lo, hi);
    for item in view.range(Cf::Activity, &s, e)? {
        let (k, v) = item?;
        let user = user_of(&k)?;
        let head: UserHead = decode_value(Cf::Activity, &k, &v)?;
        let mut days = BTreeMap::new();
        take_user(&mut days_rows, user, |k, v| add_days(&mut days, k, v))?;
        let mut money = BTreeMap::new();
        take_user(&mut money_rows, user, |k, v| add_money(&mut money, k, v))?;
        f(user, assemble(head, days, money))?;
    }
    Ok(())
}

/// Calls `f` with the money days of every user with any, whose id is in
/// `lo..hi`, in id order: one scan of the money family alone (RFM).
pub(crate) fn for_each_money(
    view: &Snapshot<'_>,
    lo: u32,
    hi: Option<u32>,
    mut f: impl FnMut(u32, &BTreeMap<i32, DayMoney>),
) -> Result<()> {
    let (s, e) = family_range(activity::MONEY, lo, hi);
    let mut current: Option<(u32, BTreeMap<i32, DayMoney>)> = None;
    for item in view.range(Cf::Activity, &s, e)? {
        let (k, v) = item?;
        let user = user_of(&k)?;
        if current.as_ref().is_some_and(|(u, _)| *u != user) {
            if let Some((u, m)) = current.take() {
                f(u, &m);
            }
        }
        let (_, money) = current.get_or_insert_with(|| (user, BTreeMap::new()));
        add_money(money, &k, &v)?;
    }
    if let Some((u, m)) = current {
        f(u, &m);
    }
    Ok(())
}

/// Calls `f` with the head of every user with events in `lo..hi`.
pub(crate) fn for_each_head(
    view: &Snapshot<'_>,
    lo: u32,
    hi: Option<u32>,
    mut f: impl FnMut(u32, &UserHead),
) -> Result<()> {
    let (s, e) = family_range(activity::HEAD, lo, hi);
    for item in view.range(Cf::Activity, &s, e)? {
        let (k, v) = item?;
        f(user_of(&k)?, &decode_value(Cf::Activity, &k, &v)?);
    }
    Ok(())
}
