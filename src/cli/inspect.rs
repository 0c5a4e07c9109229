//! Looking at users: one user's profile, metrics and events; segments.

use super::{human, open_existing, print_json, query, Cli};
use crate::{Error, Sensitive};

/// `stickydb user`.
pub(super) fn user(
    cli: &Cli,
    id: &str,
    events: &usize,
    show_sensitive: &bool,
    as_of: &Option<String>,
    now: i64,
) -> Result<(), Error> {
    let db = open_existing(cli, true)?;
    let sensitive = if *show_sensitive {
        Sensitive::Include
    } else {
        Sensitive::Exclude
    };
    let at = human::as_of(&db, as_of.as_deref(), now)?;
    show_user(&db, id, *events, sensitive, &at, cli.wants_json())
}

/// One user as `stickydb user` shows it (JSON with `json`); the demo
/// shows its loyal user the same way.
pub(super) fn show_user(
    db: &crate::Db,
    id: &str,
    events: usize,
    sensitive: Sensitive,
    at: &human::AsOf,
    json: bool,
) -> Result<(), Error> {
    // every part of the page as of one instant, while writers run
    let snap = db.snapshot();
    let Some(profile) = snap.profile(id, sensitive)? else {
        return Err(Error::UnknownUser {
            user: id.to_owned(),
        });
    };
    let newest = snap.newest(id, events)?;
    let account = snap.account(id)?;
    let uid = snap.user_id(id)?;
    let metrics = match uid {
        Some(uid) => snap.metrics().user(uid, at.day)?,
        None => None,
    };
    // the stage on each of the last 180 days, as runs
    let stage_history = match uid {
        Some(uid) => snap.metrics().stage_history(uid, at.day - 179, at.day)?,
        None => Vec::new(),
    };
    // an alias shows the user it was merged into
    let alias_of = match snap.resolve(id)? {
        Some(crate::users::NameEntry::Alias { into, .. }) => Some(into),
        _ => None,
    };
    let merges = snap.merges(id)?;
    let coupons = snap.coupons(id)?;
    // (none defined: no section)
    let features = match db.feature_set().is_empty() {
        true => None,
        false => Some(snap.features(id, at.at_ms)?),
    };
    if json {
        let v = serde_json::json!({
            "as_of": crate::time::format_day(at.day),
            "stage_history": stage_history,
            "alias_of": alias_of,
            "merges": merges,
            "features": features.as_ref().map(crate::features::json::features_json),
            "account": account,
            "coupons": coupons,
            "metrics": metrics,
            "user": id,
            "attributes": profile.attributes.iter().map(|(k, v)| (k.clone(), human::attr_json(v))).collect::<serde_json::Map<_, _>>(),
            "withheld": profile.withheld,
            "tags": profile.tags.keys().collect::<Vec<_>>(),
            "events": newest.iter().map(|e| serde_json::json!({
                "kind": e.event.kind.as_str(), "ts_ms": e.event.ts_ms,
                "event_id": e.event.event_id, "amount_minor": e.event.amount_minor,
            })).collect::<Vec<_>>(),
        });
        return print_json(&v);
    }
    match &alias_of {
        Some(into) => outln!("user {id} (an alias of {into}, merged into it)"),
        None => outln!("user {id}"),
    }
    outln!("{}", at.line());
    let merged: Vec<(String, String)> = merges
        .iter()
        .map(|m| {
            let what = format!("merge {}: {} events moved", m.merge_id, m.events_moved);
            (format!("alias {}", m.from), what)
        })
        .collect();
    human::section("identity", &merged);
    let mut attrs: Vec<(String, String)> = profile
        .attributes
        .iter()
        .map(|(k, v)| (k.clone(), human::attr(db, v)))
        .collect();
    for k in &profile.withheld {
        attrs.push((k.clone(), "(sensitive; --show-sensitive to see)".into()));
    }
    human::section("profile", &attrs);
    let tags: Vec<(String, String)> = profile
        .tags
        .iter()
        .map(|(k, t)| {
            let source = format!("{:?}", t.source).to_lowercase();
            let mut v = format!("{source}, {}", human::ago(t.updated_at_ms, at.at_ms));
            if let Some(e) = t.expires_at_ms {
                let verb = if e <= at.at_ms { "expired" } else { "expires" };
                v.push_str(&format!(", {verb} {}", human::local_time(db, e)));
            }
            (k.clone(), v)
        })
        .collect();
    human::section("tags", &tags);
    if let Some(f) = &features {
        let mut rows: Vec<(String, String)> = f
            .values
            .iter()
            .map(|(n, v)| (n.clone(), crate::features::json::value_json(v).to_string()))
            .collect();
        rows.push(("rule tags".into(), f.tags.join(", ")));
        human::section("features", &rows);
    }
    if let Some(m) = &metrics {
        let day = |d: Option<i32>| d.map(crate::time::format_day).unwrap_or_default();
        human::section(
            "activity",
            &[
                (
                    "stage".into(),
                    m.stage.clone().unwrap_or_else(|| "-".into()),
                ),
                ("active days".into(), m.active_days.to_string()),
                ("first seen".into(), day(m.first_seen_day)),
                ("last seen".into(), day(m.last_seen_day)),
                (
                    "purchases".into(),
                    format!(
                        "{} ({} spent)",
                        m.purchase_count,
                        human::money(m.total_spend_minor)
                    ),
                ),
            ],
        );
    }
    let runs: Vec<(String, String)> = stage_history
        .iter()
        .map(|r| {
            let span = format!(
                "{} .. {}",
                crate::time::format_day(r.from_day),
                crate::time::format_day(r.to_day)
            );
            (r.stage.clone(), span)
        })
        .collect();
    human::section("stages (last 180 days)", &runs);
    if let Some(a) = &account {
        human::section(
            "points",
            &[
                ("balance".into(), a.balance.to_string()),
                ("held".into(), a.held.to_string()),
                ("tier".into(), a.tier.clone().unwrap_or_else(|| "-".into())),
            ],
        );
    }
    human::section("coupons", &human::coupon_rows(db, &coupons));
    let evs: Vec<(String, String)> = newest
        .iter()
        .map(|e| {
            let amount = e.event.amount_minor.map(human::money).unwrap_or_default();
            (
                human::local_time(db, e.event.ts_ms),
                format!("{:<12} {amount}", e.event.kind.as_str())
                    .trim_end()
                    .to_owned(),
            )
        })
        .collect();
    human::section("newest events", &evs);
    Ok(())
}

/// `stickydb segment`.
pub(super) fn segment(
    cli: &Cli,
    expr: &str,
    list: &Option<usize>,
    as_of: &Option<String>,
    show_sensitive: bool,
    now: i64,
) -> Result<(), Error> {
    let db = open_existing(cli, true)?;
    let seg = crate::Segment::parse(expr)?;
    let at = human::as_of(&db, as_of.as_deref(), now)?;
    let sensitive = if show_sensitive {
        crate::Sensitive::Include
    } else {
        crate::Sensitive::Exclude
    };
    let users = db.segment_with(&seg, at.at_ms, sensitive)?;
    let mut names = Vec::new();
    if let Some(n) = list {
        for id in users.iter().take(*n) {
            names.push(db.user_name(id)?.unwrap_or_default());
        }
    }
    match cli.output() {
        super::OutputFormat::Json | super::OutputFormat::Jsonl => {
            return print_json(&serde_json::json!({
                "as_of": crate::time::format_day(at.day), "count": users.len(), "users": names,
            }));
        }
        // one user a line with --list, else the count
        super::OutputFormat::Csv if list.is_some() => {
            let rows: Vec<_> = names
                .iter()
                .map(|n| serde_json::json!({ "user": n }))
                .collect();
            return query::print_csv(&serde_json::json!({ "rows": rows }));
        }
        super::OutputFormat::Csv => {
            return query::print_csv(&serde_json::json!({ "rows": [{ "count": users.len() }] }));
        }
        super::OutputFormat::Table | super::OutputFormat::Parquet => {}
    }
    outln!("{}", at.line());
    outln!("{} users", users.len());
    for n in names {
        outln!("  {n}");
    }
    Ok(())
}
