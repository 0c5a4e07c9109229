//! `stickydb features define|list|drop|get|backfill` (docs/features.md).

use std::io::Read;
use std::path::PathBuf;

use serde_json::Value;

use super::points::time_arg;
use super::{open_existing, print_json, Cli};
use crate::features::json;
use crate::{Error, InputError, Problem};

/// What `stickydb features` does.
#[derive(Debug, clap::Subcommand)]
pub enum FeaturesCommand {
    /// Add or replace definitions and tag rules from FILE (`-`: standard
    /// input): a JSON array or JSON lines of objects; an object with `tag`
    /// is a rule. Then computes every user's features under them.
    Define {
        /// The file.
        file: PathBuf,
        /// Leave the users' features to be computed when each is next
        /// written or read.
        #[arg(long)]
        no_backfill: bool,
    },
    /// The definitions and rules in force.
    List,
    /// Drop a definition, or the rule of a tag.
    Drop {
        /// The definition's name or the rule's tag.
        name: String,
    },
    /// A user's features and rule tags at an instant.
    Get {
        /// The user.
        user: String,
        /// The instant (RFC 3339 or ms; default now).
        #[arg(long)]
        at: Option<String>,
    },
    /// Compute now the features of every user computed under older
    /// definitions (resumable: run again after a kill).
    Backfill,
}

/// Runs one `features` subcommand.
pub(super) fn features_cmd(cli: &Cli, cmd: &FeaturesCommand, now_ms: i64) -> Result<(), Error> {
    match cmd {
        FeaturesCommand::Define { file, no_backfill } => {
            let text = read_input(file)?;
            let (defs, rules) = json::parse(&text)?;
            let db = open_existing(cli, false)?;
            let version = db.define_features(&defs, &rules)?;
            let users = if *no_backfill {
                0
            } else {
                db.backfill_features()?
            };
            report(
                cli,
                serde_json::json!({
                    "version": version, "definitions": defs.len(), "rules": rules.len(), "users_computed": users,
                }),
            )
        }
        FeaturesCommand::List => {
            let db = open_existing(cli, true)?;
            let set = db.feature_set();
            let v = serde_json::json!({
                "version": set.version(),
                "definitions": set.defs().iter().map(json::definition_json).collect::<Vec<_>>(),
                "rules": set.rules().iter().map(|r| serde_json::json!({"tag": r.tag, "when": r.when})).collect::<Vec<_>>(),
            });
            if cli.wants_json() {
                return print_json(&v);
            }
            outln!("version {}", set.version());
            for d in set.defs() {
                outln!("{}", json::definition_json(d));
            }
            for r in set.rules() {
                outln!("tag {} when {}", r.tag, r.when);
            }
            Ok(())
        }
        FeaturesCommand::Drop { name } => {
            let db = open_existing(cli, false)?;
            let version = db.drop_feature(name)?;
            // (what it gave ends in the feed; the states follow the set)
            let users = db.backfill_features()?;
            report(
                cli,
                serde_json::json!({ "dropped": name, "version": version, "users_computed": users }),
            )
        }
        FeaturesCommand::Get { user, at } => {
            let db = open_existing(cli, true)?;
            let at_ms = time_arg("at", at.as_deref(), now_ms)?;
            let f = db.features(user, at_ms)?;
            let v = json::features_json(&f);
            if cli.wants_json() {
                return print_json(&v);
            }
            outln!(
                "user {} at {}",
                f.user,
                super::human::local_time(&db, at_ms)
            );
            for (name, value) in &f.values {
                let cut = if f.truncated.contains(name) {
                    " (truncated)"
                } else {
                    ""
                };
                outln!("  {name}: {}{cut}", json::value_json(value));
            }
            outln!("  tags: {}", f.tags.join(", "));
            Ok(())
        }
        FeaturesCommand::Backfill => {
            let db = open_existing(cli, false)?;
            let users = db.backfill_features()?;
            report(cli, serde_json::json!({ "users_computed": users }))
        }
    }
}

fn report(cli: &Cli, v: Value) -> Result<(), Error> {
    if cli.wants_json() {
        return print_json(&v);
    }
    outln!("{v}");
    Ok(())
}

fn read_input(file: &PathBuf) -> Result<String, Error> {
    let mut text = String::new();
    if file.as_os_str() == "-" {
        std::io::stdin().read_to_string(&mut text)?;
    } else {
        text = std::fs::read_to_string(file).map_err(|e| {
            InputError::new(
                "file",
                Problem::Unparsable {
                    reason: format!("{}: {e}", file.display()),
                },
            )
        })?;
    }
    Ok(text)
}
