//! `stickydb sharers`, `sharer` and `viral` (SPEC §4b, docs/social.md).

use serde_json::{json, Value};

use super::args::{Cli, DayRange};
use super::{answer, open_existing, query, ranged};
use crate::social::Figures;
use crate::time::format_day;
use crate::{Db, Error};

fn figures_json(f: &Figures) -> Value {
    json!({
        "shares": f.shares,
        "reached": f.reached,
        "signups": f.signups,
        "first_purchases": f.first_purchases,
        "orders": f.orders,
        "gmv_minor": f.gmv_minor,
    })
}

/// `stickydb sharers`: the top sharers of a range.
pub(super) fn sharers_cmd(
    cli: &Cli,
    range: &DayRange,
    top: usize,
    by: RankArg,
    segment: &Option<String>,
) -> Result<(), Error> {
    let (db, from, to, filter) = ranged(cli, range, segment.as_deref())?;
    answer(cli, &sharers(&db, from, to, top, by, filter.as_ref())?)
}

/// The top sharers as the CLI and the report print them.
pub fn sharers(
    db: &Db,
    from: i32,
    to: i32,
    top: usize,
    by: RankArg,
    filter: Option<&roaring::RoaringBitmap>,
) -> Result<Value, Error> {
    let rows = db.top_sharers(from, to, by.into(), top, filter)?;
    let mut out = Vec::with_capacity(rows.len());
    for (i, r) in rows.iter().enumerate() {
        let mut row = figures_json(&r.figures);
        row["rank"] = json!(i + 1);
        row["user"] = json!(db.user_name(r.user_id)?);
        out.push(row);
    }
    Ok(json!({
        "from": format_day(from),
        "to": format_day(to),
        "by": format!("{by:?}").to_lowercase(),
        "rows": out,
    }))
}

/// `stickydb sharer USER`: one sharer's funnel.
pub(super) fn sharer_cmd(
    cli: &Cli,
    user: &str,
    from: &Option<String>,
    to: &Option<String>,
) -> Result<(), Error> {
    let db = open_existing(cli, true)?;
    let from = match from {
        Some(d) => query::day_arg("from", d)?,
        None => i32::MIN + 1,
    };
    let to = match to {
        Some(d) => query::day_arg("to", d)?,
        None => i32::MAX - 1,
    };
    let Some(f) = db.sharer_figures(user, from, to)? else {
        return Err(crate::InputError::new(
            "user",
            crate::Problem::Unparsable {
                reason: format!("no user {user:?}"),
            },
        )
        .into());
    };
    let rate = |num: i64, den: i64| (den > 0).then(|| query::round4(num as f64 / den as f64));
    let referred = db.referred_users(Some(user))?.len();
    let v = json!({
        "user": user,
        "referred_by": db.referrer(user)?,
        "figures": figures_json(&f),
        "referred_users": referred,
        "rows": [
            {"step": "reached", "users": f.reached, "of_previous": Value::Null},
            {"step": "signed_up", "users": f.signups, "of_previous": rate(f.signups, f.reached)},
            {"step": "first_purchase", "users": f.first_purchases, "of_previous": rate(f.first_purchases, f.signups)},
        ],
    });
    answer(cli, &v)
}

/// `stickydb viral`: the viral coefficient per period.
pub(super) fn viral_cmd(
    cli: &Cli,
    range: &DayRange,
    period_days: u32,
    segment: &Option<String>,
) -> Result<(), Error> {
    let (db, from, to, filter) = ranged(cli, range, segment.as_deref())?;
    let rows: Vec<Value> = db
        .viral_coefficient(from, to, period_days, filter.as_ref())?
        .iter()
        .map(|p| {
            json!({
                "from": format_day(p.from_day),
                "to": format_day(p.to_day),
                "sharing_users": p.sharing_users,
                "attributed_signups": p.attributed_signups,
                "coefficient": p.coefficient.map(query::round4),
            })
        })
        .collect();
    answer(cli, &json!({ "period_days": period_days, "rows": rows }))
}

/// The arguments of `stickydb groups`.
pub(super) struct GroupsArgs<'a> {
    pub from: &'a Option<String>,
    pub to: &'a Option<String>,
    pub id: &'a Option<String>,
    pub as_of: &'a Option<String>,
    pub segment: &'a Option<String>,
    pub list: Option<usize>,
    pub state: Option<crate::social::GroupState>,
}

/// `stickydb groups`: group buys per opening day, a list of them, or one
/// group.
pub(super) fn groups_cmd(cli: &Cli, args: &GroupsArgs<'_>, now_ms: i64) -> Result<(), Error> {
    let db = open_existing(cli, true)?;
    let default_as_of = db.clock_ms().unwrap_or(now_ms);
    let as_of = super::points::time_arg("as_of", args.as_of.as_deref(), default_as_of)?;
    if let Some(id) = args.id {
        return group_cmd(cli, &db, id, as_of);
    }
    let from = query::day_arg("from", args.from.as_deref().unwrap_or_default())?;
    let to = query::day_arg("to", args.to.as_deref().unwrap_or_default())?;
    let filter = query::segment_filter(&db, args.segment.as_deref(), to)?;
    let Some(limit) = args.list else {
        return answer(cli, &groups(&db, from, to, as_of, filter.as_ref())?);
    };
    let mut rows = Vec::new();
    for (id, head, state) in db.group_list(from, to, as_of, args.state, filter.as_ref(), limit)? {
        rows.push(json!({
            "group": id,
            "opener": db.user_name(head.opener)?,
            "opened": crate::time::format_day(db.local_day(head.opened_ms)),
            "target": head.target,
            "deadline_ms": head.deadline_ms,
            "completed_ms": head.completed_ms,
            "state": state,
        }));
    }
    answer(cli, &json!({ "as_of_ms": as_of, "rows": rows }))
}

/// `stickydb groups --id G`.
fn group_cmd(cli: &Cli, db: &Db, id: &str, as_of: i64) -> Result<(), Error> {
    let Some(g) = db.group(id, as_of)? else {
        return Err(crate::InputError::new(
            "id",
            crate::Problem::Unparsable {
                reason: format!("no group {id:?} was opened"),
            },
        )
        .into());
    };
    let mut rows = Vec::with_capacity(g.members.len());
    for (i, (user, at)) in g.members.iter().enumerate() {
        rows.push(json!({
            "member": i + 1,
            "user": db.user_name(*user)?,
            "joined_ms": at,
        }));
    }
    answer(
        cli,
        &json!({
            "group": g.group_id,
            "opener": db.user_name(g.head.opener)?,
            "opened_ms": g.head.opened_ms,
            "target": g.head.target,
            "deadline_ms": g.head.deadline_ms,
            "completed_ms": g.head.completed_ms,
            "state": g.state,
            "as_of_ms": as_of,
            "other_joins": g.other_joins,
            "rows": rows,
        }),
    )
}

/// Group buys per opening day as the CLI and the report print them.
pub fn groups(
    db: &Db,
    from: i32,
    to: i32,
    as_of_ms: i64,
    filter: Option<&roaring::RoaringBitmap>,
) -> Result<Value, Error> {
    let rows: Vec<Value> = db
        .group_days(from, to, as_of_ms, filter)?
        .iter()
        .map(|d| {
            json!({
                "day": format_day(d.day),
                "opened": d.opened,
                "completed": d.completed,
                "expired": d.expired,
                "open": d.open,
                "completion_rate": d.completion_rate.map(query::round4),
                "mean_minutes_to_complete": d.mean_time_to_complete_ms.map(|ms| (ms / 60_000.0 * 10.0).round() / 10.0),
            })
        })
        .collect();
    Ok(json!({ "as_of_ms": as_of_ms, "rows": rows }))
}

/// A group buy's state argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum GroupStateArg {
    /// Target reached before the deadline.
    Completed,
    /// Deadline passed without the target.
    Expired,
    /// Neither yet.
    Open,
}

impl From<GroupStateArg> for crate::social::GroupState {
    fn from(s: GroupStateArg) -> Self {
        match s {
            GroupStateArg::Completed => Self::Completed,
            GroupStateArg::Expired => Self::Expired,
            GroupStateArg::Open => Self::Open,
        }
    }
}

/// What top sharers are ranked by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RankArg {
    /// Users first reached.
    Reached,
    /// First signups attributed.
    Signups,
    /// Attributed GMV.
    Gmv,
}

impl From<RankArg> for crate::social::SharerRank {
    fn from(r: RankArg) -> Self {
        match r {
            RankArg::Reached => Self::Reached,
            RankArg::Signups => Self::Signups,
            RankArg::Gmv => Self::Gmv,
        }
    }
}
