//! Aliases (identity merges): every alias mapping resolves to an existing
//! user under that user's external id, and the alias index lists exactly
//! the alias mappings, each with the record of the merge that made it.

use std::collections::{BTreeSet, HashMap};

use super::VerifyReport;
use crate::error::Result;
use crate::keys::meta;
use crate::store::{decode_value, Cf, Store};
use crate::users::{MergeOutcome, UserRecord};

/// `found`: every alias mapping of `user_by_name`, as (alias, target id,
/// target's external id).
pub(super) fn check(
    store: &Store,
    records: &HashMap<u32, UserRecord>,
    found: &[(String, u32, String)],
    r: &mut VerifyReport,
) -> Result<()> {
    let mut want: BTreeSet<(u32, String)> = BTreeSet::new();
    for (name, user_id, into) in found {
        match records.get(user_id) {
            Some(rec) if &rec.name == into => {}
            Some(rec) => r.problem(format!(
                "alias {name:?} names {into:?} for id {user_id}, whose record names {:?}",
                rec.name
            )),
            None => r.problem(format!(
                "alias {name:?} resolves to id {user_id} with no record"
            )),
        }
        want.insert((*user_id, name.clone()));
    }
    for item in store.prefix(Cf::Meta, meta::ALIAS_PREFIX)? {
        let (k, v) = item?;
        r.count(Cf::Meta);
        let Some((user_id, name)) = meta::parse_alias(&k) else {
            r.problem(format!("alias index: malformed key {k:?}"));
            continue;
        };
        let name = String::from_utf8_lossy(name).into_owned();
        if !want.remove(&(user_id, name.clone())) {
            r.problem(format!(
                "alias index lists {name:?} under id {user_id}, which user_by_name does not"
            ));
        }
        let merge_id: String = match decode_value(Cf::Meta, &k, &v) {
            Ok(m) => m,
            Err(e) => {
                r.problem(e.to_string());
                continue;
            }
        };
        match store.get::<MergeOutcome>(Cf::Meta, &meta::merge(&merge_id)) {
            Ok(Some(done)) if done.from == name => {}
            Ok(Some(done)) => r.problem(format!(
                "alias {name:?}: merge {merge_id:?} merged {:?}",
                done.from
            )),
            Ok(None) => r.problem(format!("alias {name:?}: no record of merge {merge_id:?}")),
            Err(e) => r.problem(e.to_string()),
        }
    }
    for (user_id, name) in want {
        r.problem(format!(
            "alias {name:?} of id {user_id} is missing from the alias index"
        ));
    }
    Ok(())
}
