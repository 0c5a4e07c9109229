//! `stickydb sharers`, `sharer` and `viral` (SPEC §4b, docs/social.md).

use serde_json::{json, Value};

use super::args::{Cli, DayRange, RankArg};
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
    let rate = |num: i64, den: i64| (den > 0).then(|| num as f64 / den as f64);
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
                "coefficient": p.coefficient,
            })
        })
        .collect();
    answer(cli, &json!({ "period_days": period_days, "rows": rows }))
}
