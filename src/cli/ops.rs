//! Operations an operator runs on one user or one question, each one
//! library call with `--json` equal to its result: `erase`, `tags
//! set|remove`, `activation`, `repurchase` (docs/cli.md).

use serde_json::json;

use super::args::{DayRange, PeriodArg};
use super::{answer, open_existing, print_json, query, ranged, Cli};
use crate::{Error, EventKind, InputError, Problem, ProfileUpdate, TagSource};

/// `erase USER --yes`.
#[derive(Debug, clap::Args)]
pub struct EraseArgs {
    /// The user (an alias erases the user it names).
    pub user: String,
    /// Confirm: the user's profile, tags, events, ledger and every
    /// aggregate contribution go for good (SPEC §5).
    #[arg(long)]
    pub yes: bool,
}

/// `tags` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum TagsCommand {
    /// Give USER tag TAG (or refresh it: its source, time and expiry).
    Set {
        /// The user.
        user: String,
        /// The tag.
        tag: String,
        /// Who assigns it.
        #[arg(long, value_enum, default_value = "manual")]
        source: SourceArg,
        /// When it stops holding: an instant (RFC 3339 or ms).
        #[arg(long)]
        expires: Option<String>,
    },
    /// Take tag TAG from USER.
    Remove {
        /// The user.
        user: String,
        /// The tag.
        tag: String,
    },
}

/// A tag source argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SourceArg {
    /// An operator.
    Manual,
    /// A rule.
    Rule,
    /// A model.
    Model,
}

/// `activation …`.
#[derive(Debug, clap::Args)]
pub struct ActivationArgs {
    /// Cohorts by the first event of this kind.
    #[arg(long)]
    pub start_kind: String,
    /// Activated: an event of this kind within the window.
    #[arg(long)]
    pub kind: String,
    /// The window after the first start event, like 7d.
    #[arg(long)]
    pub within: String,
    /// Cohort period.
    #[arg(long, value_enum, default_value = "day")]
    pub period: PeriodArg,
    /// The local days asked about.
    #[command(flatten)]
    pub range: DayRange,
    /// Restrict to a segment.
    #[arg(long)]
    pub segment: Option<String>,
}

/// `repurchase …`.
#[derive(Debug, clap::Args)]
pub struct RepurchaseArgs {
    /// The local days asked about.
    #[command(flatten)]
    pub range: DayRange,
    /// Restrict to a segment.
    #[arg(long)]
    pub segment: Option<String>,
}

/// `stickydb erase`.
pub(super) fn erase_cmd(cli: &Cli, a: &EraseArgs) -> Result<(), Error> {
    if !a.yes {
        return Err(InputError::new(
            "yes",
            Problem::Unparsable {
                reason: format!("erasing {:?} cannot be undone: add --yes", a.user),
            },
        )
        .into());
    }
    let db = open_existing(cli, false)?;
    let erased = db.erase_user(&a.user)?;
    if cli.wants_json() {
        return print_json(&json!({ "user": a.user, "erased": erased }));
    }
    match erased {
        true => outln!("{} erased", a.user),
        false => outln!("{} was not in the store", a.user),
    }
    Ok(())
}

/// `stickydb tags`.
pub(super) fn tags_cmd(cli: &Cli, command: &TagsCommand, now: i64) -> Result<(), Error> {
    let db = open_existing(cli, false)?;
    let (user, tag, update) = match command {
        TagsCommand::Set {
            user,
            tag,
            source,
            expires,
        } => {
            let source = match source {
                SourceArg::Manual => TagSource::Manual,
                SourceArg::Rule => TagSource::Rule,
                SourceArg::Model => TagSource::Model,
            };
            let expires = expires
                .as_deref()
                .map(|e| super::points::time_arg("expires", Some(e), now))
                .transpose()?;
            (
                user,
                tag,
                ProfileUpdate::new().tag(tag, source, now, expires),
            )
        }
        TagsCommand::Remove { user, tag } => (user, tag, ProfileUpdate::new().untag(tag)),
    };
    db.update_profile(user, &update)?;
    let held = db
        .profile(user, crate::Sensitive::Exclude)?
        .and_then(|p| p.tags.get(tag.as_str()).copied());
    let v = json!({
        "user": user,
        "tag": tag,
        "held": held.is_some(),
        "source": held.map(|t| format!("{:?}", t.source).to_lowercase()),
        "updated_at_ms": held.map(|t| t.updated_at_ms),
        "expires_at_ms": held.and_then(|t| t.expires_at_ms),
    });
    if cli.wants_json() {
        return print_json(&v);
    }
    match held {
        Some(_) => outln!("{user} holds {tag}"),
        None => outln!("{user} does not hold {tag}"),
    }
    Ok(())
}

/// `stickydb activation`.
pub(super) fn activation_cmd(cli: &Cli, a: &ActivationArgs) -> Result<(), Error> {
    let (db, from, to, filter) = ranged(cli, &a.range, a.segment.as_deref())?;
    let within = a
        .within
        .strip_suffix('d')
        .and_then(|n| n.parse::<u32>().ok())
        .filter(|n| *n >= 1)
        .ok_or_else(|| {
            InputError::new(
                "within",
                Problem::Unparsable {
                    reason: format!("{:?} is not a day count like 7d", a.within),
                },
            )
        })?;
    let start = query::known_kind(&db, &a.start_kind)?;
    let kind = EventKind::from_name(&a.kind);
    let rows = db.metrics().activation(
        &start,
        &kind,
        within,
        a.period.into(),
        from,
        to,
        filter.as_ref(),
    )?;
    let rows: Vec<_> = rows
        .iter()
        .map(|r| {
            json!({
                "cohort": crate::time::format_day(r.cohort),
                "size": r.size,
                "activated": r.activated,
                "rate": r.rate,
            })
        })
        .collect();
    answer(cli, &json!({ "rows": rows }))
}

/// `stickydb repurchase`.
pub(super) fn repurchase_cmd(cli: &Cli, a: &RepurchaseArgs) -> Result<(), Error> {
    let (db, from, to, filter) = ranged(cli, &a.range, a.segment.as_deref())?;
    let r = db.metrics().repurchase_rate(from, to, filter.as_ref())?;
    if cli.wants_json() {
        return print_json(&r);
    }
    answer(
        cli,
        &json!({ "rows": [{
            "purchasers": r.purchasers,
            "repeat_purchasers": r.repeat_purchasers,
            "rate": r.rate,
        }] }),
    )
}
