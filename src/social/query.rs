//! Reading the figures: top sharers, one sharer's figures, per-day totals
//! and the referred-user sets.

use crate::store::Reader;
use std::collections::BTreeMap;

use roaring::RoaringBitmap;
use rustc_hash::FxHashMap;
use serde::Serialize;

use super::Figures;
use crate::error::{CorruptionError, Result};
use crate::keys::social as k;
use crate::store::{decode_value, Cf, Store};

/// What top sharers are ranked by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SharerRank {
    /// Users first reached.
    Reached,
    /// First signups attributed.
    Signups,
    /// Attributed GMV.
    Gmv,
}

impl SharerRank {
    fn score(self, f: &Figures) -> i64 {
        match self {
            SharerRank::Reached => f.reached,
            SharerRank::Signups => f.signups,
            SharerRank::Gmv => f.gmv_minor,
        }
    }
}

/// One sharer's figures over a range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SharerRow {
    /// The sharer's internal id.
    pub user_id: u32,
    /// Summed over the range.
    pub figures: Figures,
}

/// The viral coefficient of one period.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ViralPeriod {
    /// First local day of the period.
    pub from_day: i32,
    /// Last local day of the period.
    pub to_day: i32,
    /// Users with a `share` event in the period.
    pub sharing_users: u64,
    /// First signups in the period attributed to a sharer.
    pub attributed_signups: i64,
    /// `attributed_signups ÷ sharing_users`; `None` when nobody shared.
    pub coefficient: Option<f64>,
}

fn corrupt(key: &[u8]) -> crate::error::Error {
    CorruptionError {
        cf: Cf::Social.name(),
        what: "key",
        key: key.to_vec(),
        reason: "not a figures key".to_owned(),
    }
    .into()
}

/// The records of a day-first `family` on the local days
/// `from_day..=to_day` (none when the range is empty).
fn days_of(
    store: &Store,
    family: u8,
    from_day: i32,
    to_day: i32,
) -> Result<impl Iterator<Item = Result<crate::store::KeyValue>> + '_> {
    let from = k::day_prefix(family, from_day);
    let until = match to_day.checked_add(1) {
        _ if from_day > to_day => from.clone(),
        Some(d) => k::day_prefix(family, d),
        None => vec![family + 1],
    };
    store.range(Cf::Social, &from, Some(until))
}

/// Calls `f(day, sharer, figures)` for every per-sharer figures record of
/// the days `from_day..=to_day`.
fn for_each_sharer_day(
    store: &Store,
    from_day: i32,
    to_day: i32,
    mut f: impl FnMut(i32, u32, Figures),
) -> Result<()> {
    for item in days_of(store, k::SHARER_DAY, from_day, to_day)? {
        let (key, value) = item?;
        let (day, sharer) = k::parse_sharer_day(&key).ok_or_else(|| corrupt(&key))?;
        f(day, sharer, decode_value(Cf::Social, &key, &value)?);
    }
    Ok(())
}

/// The `top` sharers of `from_day..=to_day` by `by` (ties: lower id
/// first), only sharers in `filter` when given; sharers scoring 0 are left
/// out.
pub(crate) fn top_sharers(
    store: &Store,
    from_day: i32,
    to_day: i32,
    by: SharerRank,
    top: usize,
    filter: Option<&RoaringBitmap>,
) -> Result<Vec<SharerRow>> {
    let mut sums: FxHashMap<u32, Figures> = FxHashMap::default();
    for_each_sharer_day(store, from_day, to_day, |_, sharer, f| {
        if filter.is_none_or(|s| s.contains(sharer)) {
            let e = sums.entry(sharer).or_default();
            *e = e.plus(&f);
        }
    })?;
    let mut rows: Vec<SharerRow> = sums
        .into_iter()
        .filter(|(_, f)| by.score(f) > 0)
        .map(|(user_id, figures)| SharerRow { user_id, figures })
        .collect();
    let order = |a: &SharerRow, b: &SharerRow| {
        by.score(&b.figures)
            .cmp(&by.score(&a.figures))
            .then(a.user_id.cmp(&b.user_id))
    };
    if rows.len() > top {
        rows.select_nth_unstable_by(top, order);
        rows.truncate(top);
    }
    rows.sort_unstable_by(order);
    Ok(rows)
}

/// `sharer`'s figures summed over `from_day..=to_day`.
pub(crate) fn sharer_figures(
    store: &Store,
    sharer: u32,
    from_day: i32,
    to_day: i32,
) -> Result<Figures> {
    let mut sum = Figures::default();
    for_each_sharer_day(store, from_day, to_day, |_, s, f| {
        if s == sharer {
            sum = sum.plus(&f);
        }
    })?;
    Ok(sum)
}

/// Per-day figures of `from_day..=to_day`: the store's, or summed over the
/// sharers in `filter`.
pub(crate) fn figures_by_day(
    store: &Store,
    from_day: i32,
    to_day: i32,
    filter: Option<&RoaringBitmap>,
) -> Result<BTreeMap<i32, Figures>> {
    let mut out: BTreeMap<i32, Figures> = BTreeMap::new();
    if let Some(filter) = filter {
        for_each_sharer_day(store, from_day, to_day, |day, sharer, f| {
            if filter.contains(sharer) {
                let e = out.entry(day).or_default();
                *e = e.plus(&f);
            }
        })?;
        return Ok(out);
    }
    for item in days_of(store, k::DAY, from_day, to_day)? {
        let (key, value) = item?;
        let day = k::parse_day(&key).ok_or_else(|| corrupt(&key))?;
        out.insert(day, decode_value(Cf::Social, &key, &value)?);
    }
    Ok(out)
}

/// The users whose first signup is attributed to `sharer` (to anyone, for
/// `None`).
pub(crate) fn referred(store: &impl Reader, sharer: Option<u32>) -> Result<RoaringBitmap> {
    let mut out = RoaringBitmap::new();
    for item in store.read_prefix(Cf::Social, &k::referred_prefix(sharer))? {
        let (key, _) = item?;
        out.insert(k::referred_user(&key).ok_or_else(|| corrupt(&key))?);
    }
    Ok(out)
}

/// The group buys opened on one local day, as of an instant.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupDay {
    /// The local day they were opened on.
    pub day: i32,
    /// Groups opened.
    pub opened: u64,
    /// Of them, completed (target reached before the deadline).
    pub completed: u64,
    /// Of them, expired (deadline passed, target not reached).
    pub expired: u64,
    /// Of them, still open.
    pub open: u64,
    /// `completed ÷ (completed + expired)`: of the groups decided, the
    /// share that completed; `None` while none is decided.
    pub completion_rate: Option<f64>,
    /// Mean of completion − opening over the completed groups, ms.
    pub mean_time_to_complete_ms: Option<f64>,
}

/// One group buy with its members.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupInfo {
    /// The group id.
    pub group_id: String,
    /// Opener, instants, target, completion.
    pub head: super::GroupHead,
    /// As of the instant asked about.
    pub state: super::GroupState,
    /// `(user, joined_ms)`: the opener at the opening, then every member
    /// in the order they joined (the first `target` made it complete).
    pub members: Vec<(u32, i64)>,
    /// Joins that do not count (before the opening or at or after the
    /// deadline, or repeats), with their users.
    pub other_joins: u64,
}

/// Per opening day of `from_day..=to_day`, the group buys as of `as_of_ms`;
/// with `filter`, only groups whose opener is in it.
pub(crate) fn group_days(
    store: &Store,
    from_day: i32,
    to_day: i32,
    as_of_ms: i64,
    filter: Option<&RoaringBitmap>,
) -> Result<Vec<GroupDay>> {
    let mut days: BTreeMap<i32, (GroupDay, i64)> = BTreeMap::new();
    for item in days_of(store, k::GROUP_DAY, from_day, to_day)? {
        let (key, value) = item?;
        let (day, _) = k::parse_group_day(&key).ok_or_else(|| corrupt(&key))?;
        let head: super::GroupHead = decode_value(Cf::Social, &key, &value)?;
        if filter.is_some_and(|f| !f.contains(head.opener)) {
            continue;
        }
        let (d, spent) = days.entry(day).or_insert_with(|| {
            (
                GroupDay {
                    day,
                    opened: 0,
                    completed: 0,
                    expired: 0,
                    open: 0,
                    completion_rate: None,
                    mean_time_to_complete_ms: None,
                },
                0,
            )
        });
        d.opened += 1;
        match head.state(as_of_ms) {
            super::GroupState::Completed => {
                d.completed += 1;
                let took = head.completed_ms.unwrap_or(head.opened_ms) - head.opened_ms;
                *spent = spent.saturating_add(took);
            }
            super::GroupState::Expired => d.expired += 1,
            super::GroupState::Open => d.open += 1,
        }
    }
    Ok(days
        .into_values()
        .map(|(mut d, spent)| {
            let decided = d.completed + d.expired;
            d.completion_rate = (decided > 0).then(|| d.completed as f64 / decided as f64);
            d.mean_time_to_complete_ms =
                (d.completed > 0).then(|| spent as f64 / d.completed as f64);
            d
        })
        .collect())
}

/// Group `group_id` as of `as_of_ms`, with its members; `None` when no
/// opening of it is stored.
pub(crate) fn group_info(
    store: &Store,
    group_id: &str,
    as_of_ms: i64,
) -> Result<Option<GroupInfo>> {
    let Some(head) = store.get::<super::GroupHead>(Cf::Social, &k::group(group_id))? else {
        return Ok(None);
    };
    let mut joins = Vec::new();
    for item in store.prefix(Cf::Social, &k::joins_prefix(group_id))? {
        let (key, _) = item?;
        joins.push(k::parse_join(&key).ok_or_else(|| corrupt(&key))?);
    }
    let (joined, other_joins) = head.members(joins);
    let mut members = vec![(head.opener, head.opened_ms)];
    members.extend(joined);
    Ok(Some(GroupInfo {
        group_id: group_id.to_owned(),
        head,
        state: head.state(as_of_ms),
        members,
        other_joins,
    }))
}

/// The groups opened on the days `from_day..=to_day`, in opening-day order
/// (then by id), with their state as of `as_of_ms`; only those in `state`
/// when given and opened by users in `filter` when given; at most `limit`.
pub(crate) fn group_list(
    store: &Store,
    from_day: i32,
    to_day: i32,
    as_of_ms: i64,
    state: Option<super::GroupState>,
    filter: Option<&RoaringBitmap>,
    limit: usize,
) -> Result<Vec<(String, super::GroupHead, super::GroupState)>> {
    let mut out = Vec::new();
    if limit == 0 {
        return Ok(out);
    }
    for item in days_of(store, k::GROUP_DAY, from_day, to_day)? {
        let (key, value) = item?;
        let (_, id) = k::parse_group_day(&key).ok_or_else(|| corrupt(&key))?;
        let head: super::GroupHead = decode_value(Cf::Social, &key, &value)?;
        let now = head.state(as_of_ms);
        if state.is_some_and(|s| s != now) || filter.is_some_and(|f| !f.contains(head.opener)) {
            continue;
        }
        out.push((id.to_owned(), head, now));
        if out.len() == limit {
            break;
        }
    }
    Ok(out)
}
