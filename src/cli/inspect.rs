//! Looking at users: one user's profile, metrics and events; segments.

use super::{open_existing, print_json, query, Cli};
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
    let Some(profile) = db.profile(id, sensitive)? else {
        return Err(Error::UnknownUser {
            user: id.to_owned(),
        });
    };
    let newest = db.newest(id, *events)?;
    let account = db.account(id)?;
    let as_of = match as_of {
        Some(d) => query::day_arg("as_of", d)?,
        None => db.local_day(now),
    };
    let metrics = match db.user_id(id)? {
        Some(uid) => db.metrics().user(uid, as_of)?,
        None => None,
    };
    // the stage on each of the last 180 days, as runs
    let stage_history = match db.user_id(id)? {
        Some(uid) => db.metrics().stage_history(uid, as_of - 179, as_of)?,
        None => Vec::new(),
    };
    // an alias shows the user it was merged into
    let alias_of = match db.resolve(id)? {
        Some(crate::users::NameEntry::Alias { into, .. }) => Some(into),
        _ => None,
    };
    let merges = db.merges(id)?;
    if cli.wants_json() {
        let v = serde_json::json!({
            "stage_history": stage_history,
            "alias_of": alias_of,
            "merges": merges,
            "account": account,
            "metrics": metrics,
            "user": id,
            "attributes": profile.attributes.iter().map(|(k, v)| (k.clone(), format!("{v:?}"))).collect::<std::collections::BTreeMap<_, _>>(),
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
        Some(into) => println!("user {id} (an alias of {into}, merged into it)"),
        None => println!("user {id}"),
    }
    for m in &merges {
        println!(
            "  alias {} (merge {}: {} events moved)",
            m.from, m.merge_id, m.events_moved
        );
    }
    for (k, v) in &profile.attributes {
        println!("  {k} = {v:?}");
    }
    for k in &profile.withheld {
        println!("  {k} = (sensitive; --show-sensitive to see)");
    }
    for (k, t) in &profile.tags {
        println!("  tag {k} ({:?}, updated {})", t.source, t.updated_at_ms);
    }
    if let Some(m) = &metrics {
        println!(
            "  stage {}, active days {}, purchases {} ({} minor units), first seen {}, last seen {}",
            m.stage.as_deref().unwrap_or("-"),
            m.active_days,
            m.purchase_count,
            m.total_spend_minor,
            m.first_seen_day.map(crate::time::format_day).unwrap_or_default(),
            m.last_seen_day.map(crate::time::format_day).unwrap_or_default(),
        );
    }
    if !stage_history.is_empty() {
        let runs: Vec<String> = stage_history
            .iter()
            .map(|r| {
                format!(
                    "{} {}..{}",
                    r.stage,
                    crate::time::format_day(r.from_day),
                    crate::time::format_day(r.to_day)
                )
            })
            .collect();
        println!("  stages (last 180 days): {}", runs.join(", "));
    }
    if let Some(a) = &account {
        println!(
            "  points: balance {}, held {}, tier {}",
            a.balance,
            a.held,
            a.tier.as_deref().unwrap_or("-")
        );
    }
    for e in &newest {
        println!(
            "  {} {:<12} {}",
            crate::time::format_day(db.local_day(e.event.ts_ms)),
            e.event.kind.as_str(),
            e.event
                .amount_minor
                .map(|a| a.to_string())
                .unwrap_or_default()
        );
    }
    Ok(())
}

/// `stickydb segment`.
pub(super) fn segment(
    cli: &Cli,
    expr: &str,
    list: &Option<usize>,
    as_of: &Option<String>,
    now: i64,
) -> Result<(), Error> {
    let db = open_existing(cli, true)?;
    let seg = crate::Segment::parse(expr)?;
    let at = match as_of {
        Some(d) => query::day_end_ms(&db, query::day_arg("as_of", d)?),
        None => now,
    };
    let users = db.segment(&seg, at)?;
    let mut names = Vec::new();
    if let Some(n) = list {
        for id in users.iter().take(*n) {
            names.push(db.user_name(id)?.unwrap_or_default());
        }
    }
    match cli.output() {
        super::OutputFormat::Json | super::OutputFormat::Jsonl => {
            return print_json(&serde_json::json!({"count": users.len(), "users": names}));
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
        super::OutputFormat::Table => {}
    }
    println!("{} users", users.len());
    for n in names {
        println!("  {n}");
    }
    Ok(())
}
