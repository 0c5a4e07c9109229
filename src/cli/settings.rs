//! `settings show|apply`: every setting an operator changes after
//! creation as one document, JSON or TOML (docs/cli.md, "settings").

use std::io::Read;
use std::path::{Path, PathBuf};

use serde_json::json;

use super::{open_existing, print_json, Cli};
use crate::{Error, InputError, Problem, SettingsDocument};

/// `settings` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum SettingsCommand {
    /// Print the settings in force as one document (JSON; TOML with
    /// --toml), in the shape `settings apply` takes.
    Show {
        /// Print TOML instead of JSON.
        #[arg(long)]
        toml: bool,
    },
    /// Apply a settings document (missing sections stay as they are) as
    /// one job: a killed apply is finished by running it again.
    Apply {
        /// The document: JSON, or TOML when it ends in .toml or with
        /// --toml; `-` reads standard input.
        file: PathBuf,
        /// Read TOML whatever the file's name.
        #[arg(long)]
        toml: bool,
    },
}

/// `stickydb settings`.
pub(super) fn settings_cmd(cli: &Cli, command: &SettingsCommand) -> Result<(), Error> {
    match command {
        SettingsCommand::Show { toml } => {
            let doc = open_existing(cli, true)?.settings_document();
            if !*toml {
                return print_json(&doc);
            }
            let text =
                toml::to_string_pretty(&doc).map_err(|e| Error::Io(std::io::Error::other(e)))?;
            outln!("{}", text.trim_end());
            Ok(())
        }
        SettingsCommand::Apply { file, toml } => {
            let toml = *toml || file.extension().is_some_and(|e| e == "toml");
            let doc = read_document(file, toml)?;
            let db = open_existing(cli, false)?;
            let applied = db.apply_settings(&doc)?;
            if cli.wants_json() {
                return print_json(&json!({
                    "changed": applied.changed,
                    "rederived": applied.rederived,
                }));
            }
            match applied.changed.is_empty() {
                true => outln!("nothing changed"),
                false if applied.rederived.is_empty() => {
                    outln!("changed: {}", applied.changed.join(", "))
                }
                false => outln!(
                    "changed: {}; re-derived: {}",
                    applied.changed.join(", "),
                    applied.rederived.join(", ")
                ),
            }
            Ok(())
        }
    }
}

/// Reads and parses the document at `file`, naming the file and where in
/// it a parse failed.
fn read_document(file: &Path, toml: bool) -> Result<SettingsDocument, Error> {
    let mut text = String::new();
    if file == Path::new("-") {
        std::io::stdin().read_to_string(&mut text)?;
    } else {
        text = std::fs::read_to_string(file)?;
    }
    let parsed = match toml {
        true => toml::from_str(&text).map_err(|e| e.to_string()),
        false => serde_json::from_str(&text).map_err(|e| e.to_string()),
    };
    parsed.map_err(|reason| {
        InputError::new(
            "settings",
            Problem::Unparsable {
                reason: format!("{}: {}", file.display(), reason.trim_end()),
            },
        )
        .into()
    })
}
