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

/// Longest settings document read, in bytes: far above the largest valid
/// one (64 rules, 16 tiers, 32 stage rules, 16 prefixes), so a wrong file
/// is refused before it is held in memory.
pub const MAX_DOCUMENT_BYTES: usize = 1 << 20;

/// Reads and parses the document at `file`, naming the file and where in
/// it a parse failed.
fn read_document(file: &Path, toml: bool) -> Result<SettingsDocument, Error> {
    let source: Box<dyn Read> = match file == Path::new("-") {
        true => Box::new(std::io::stdin()),
        false => Box::new(std::fs::File::open(file)?),
    };
    let mut bytes = Vec::new();
    let limit = MAX_DOCUMENT_BYTES as u64 + 1;
    source.take(limit).read_to_end(&mut bytes)?;
    if bytes.len() > MAX_DOCUMENT_BYTES {
        let p = Problem::TooLong {
            len_bytes: bytes.len(),
            max_bytes: MAX_DOCUMENT_BYTES,
        };
        return Err(InputError::new("settings", p).into());
    }
    let text = String::from_utf8(bytes).map_err(|e| {
        let reason = format!("{}: not UTF-8 ({e})", file.display());
        InputError::new("settings", Problem::Unparsable { reason })
    })?;
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
