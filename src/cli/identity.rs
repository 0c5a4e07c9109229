//! Identity commands: `merge`, `identity`, and the merge records of
//! `import --records merges`.

use serde::Deserialize;

use super::{open_existing, print_json, Cli};
use crate::{Db, Error, IdentitySettings, MergeOptions, MergeOutcome};

/// One merge record of an import: `{"from", "into", "id", "force"?}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct MergeRecord {
    from: String,
    into: String,
    id: String,
    #[serde(default)]
    force: bool,
}

impl MergeRecord {
    /// Merges as the record says.
    pub(super) fn apply(&self, db: &Db) -> Result<MergeOutcome, Error> {
        db.merge(
            &self.from,
            &self.into,
            &self.id,
            MergeOptions { force: self.force },
        )
    }
}

/// `stickydb merge FROM INTO --id ID [--force]`.
pub(super) fn merge_cmd(
    cli: &Cli,
    from: &str,
    into: &str,
    id: &str,
    force: bool,
) -> Result<(), Error> {
    let db = open_existing(cli, false)?;
    let out = db.merge(from, into, id, MergeOptions { force })?;
    if cli.wants_json() {
        let mut v = serde_json::to_value(&out).map_err(|e| Error::Io(std::io::Error::other(e)))?;
        v["replayed"] = serde_json::Value::Bool(out.replayed);
        return print_json(&v);
    }
    let again = if out.replayed {
        " (this merge id was done before; nothing changed now)"
    } else {
        ""
    };
    outln!(
        "merged {} into {}: {} events moved, {} duplicates dropped, {} active days added, {} earlier aliases re-pointed{again}",
        out.from, out.into, out.events_moved, out.duplicate_events, out.days_added, out.aliases_moved
    );
    Ok(())
}

/// `stickydb identity [--anonymous-prefix P]... [--clear]`.
pub(super) fn identity_cmd(cli: &Cli, prefixes: &[String], clear: bool) -> Result<(), Error> {
    let writes = clear || !prefixes.is_empty();
    let db = open_existing(cli, !writes)?;
    if writes {
        db.set_identity_settings(IdentitySettings {
            anonymous_prefixes: prefixes.to_vec(),
        })?;
    }
    let settings = db.identity_settings();
    if cli.wants_json() {
        return print_json(&settings);
    }
    if settings.anonymous_prefixes.is_empty() {
        outln!("no anonymous-id prefixes: every merge needs --force");
    } else {
        outln!(
            "anonymous ids start with: {}",
            settings.anonymous_prefixes.join(", ")
        );
    }
    Ok(())
}
