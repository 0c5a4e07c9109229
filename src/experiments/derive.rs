//! The one definition of an assignment: what a user's events say about
//! one experiment. The write path keeps assignments incrementally and
//! falls back to this whenever a first exposure is new or moves earlier;
//! erasure, rebuilds, migrations and `verify` use it whole.

use std::collections::{BTreeMap, BTreeSet};

use super::Assignment;
use crate::timeline::Fact;

/// The assignment in `experiment` that `facts` (any order) give: the
/// variant of the earliest exposure (ties: the first recorded), whether
/// another variant was seen, and the first instant of each kind at or
/// after that exposure. `None` without an exposure to it.
pub(crate) fn derive_one(experiment: &str, facts: &[Fact]) -> Option<Assignment> {
    let exposures = || {
        facts.iter().filter_map(move |f| match &f.exposure {
            Some((e, v)) if e == experiment => Some((f, v)),
            _ => None,
        })
    };
    let (first, variant) = exposures().min_by_key(|(f, _)| (f.ts_ms, f.seq))?;
    let other = exposures().map(|(_, v)| v).find(|v| *v != variant).cloned();
    let mut firsts: BTreeMap<u32, i64> = BTreeMap::new();
    for f in facts.iter().filter(|f| f.ts_ms >= first.ts_ms) {
        let at = firsts.entry(f.kind_id).or_insert(f.ts_ms);
        *at = (*at).min(f.ts_ms);
    }
    Some(Assignment {
        first_ms: first.ts_ms,
        first_seq: first.seq,
        variant: variant.clone(),
        other,
        firsts,
    })
}

/// Every assignment a user's whole history gives, by experiment.
pub(crate) fn derive_all(facts: &[Fact]) -> BTreeMap<String, Assignment> {
    let names: BTreeSet<&str> = facts
        .iter()
        .filter_map(|f| f.exposure.as_ref().map(|(e, _)| e.as_str()))
        .collect();
    names
        .into_iter()
        .filter_map(|e| derive_one(e, facts).map(|a| (e.to_owned(), a)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fact(ts_ms: i64, seq: u32, kind_id: u32, exposure: Option<(&str, &str)>) -> Fact {
        Fact {
            ts_ms,
            seq,
            kind_id,
            amount_minor: 0,
            exposure: exposure.map(|(e, v)| (e.to_owned(), v.to_owned())),
        }
    }

    #[test]
    fn the_earliest_exposure_assigns_and_later_ones_contaminate() {
        let facts = vec![
            fact(50, 0, 5, None),                      // a purchase before exposure
            fact(100, 1, 1000, Some(("e", "b"))),      // later exposure, other variant
            fact(80, 2, 1000, Some(("e", "control"))), // late, but first
            fact(80, 3, 1000, Some(("e", "b"))),       // same instant, recorded after
            fact(90, 4, 5, None),                      // purchase after exposure
            fact(70, 5, 1000, Some(("f", "x"))),       // another experiment
        ];
        let a = derive_one("e", &facts).unwrap();
        assert_eq!(
            (a.first_ms, a.first_seq, a.variant.as_str()),
            (80, 2, "control")
        );
        assert_eq!(a.other.as_deref(), Some("b"));
        assert_eq!(a.firsts, BTreeMap::from([(5, 90), (1000, 80)]));
        let all = derive_all(&facts);
        assert_eq!(all.len(), 2);
        assert_eq!(all["f"].firsts, BTreeMap::from([(5, 90), (1000, 70)]));
        assert!(all["f"].other.is_none());
        assert!(derive_one("g", &facts).is_none());
    }
}
