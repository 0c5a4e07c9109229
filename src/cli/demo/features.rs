//! The demo's features and interest tags (docs/features.md): what the
//! simulated shoppers browse, and the definitions that follow it.

use rand::rngs::StdRng;
use rand::RngExt;

use crate::features::json;
use crate::{Db, Error, Event, PropValue, Segment};

/// The categories shoppers browse; each has a favourite.
pub(super) const CATEGORIES: [&str; 5] = ["shoes", "bags", "beauty", "electronics", "home"];

/// The demo's definitions and rules, as `stickydb features define` reads
/// them.
const DEFINITIONS: &str = r#"[
{"name":"views_7d","kinds":["view"],"op":"count","window":"7d"},
{"name":"views_by_category_30d","kinds":["view"],"op":"count","key":"category","window":"30d"},
{"name":"top_categories_30d","kinds":["view","purchase"],"op":"top_k","key":"category","k":3,"window":"30d"},
{"name":"spend_30d","kinds":["purchase"],"op":"sum","field":"amount","window":"30d"},
{"name":"orders_lifetime","kinds":["purchase"],"op":"count"},
{"name":"last_order_at","kinds":["purchase"],"op":"last_at"},
{"tag":"interest:{key}","when":"views_by_category_30d[key] >= 15"},
{"tag":"big_spender","when":"spend_30d >= 50000"},
{"tag":"window_shopper","when":"views_7d >= 15 and orders_lifetime == 0"}
]"#;

/// Defines the demo's features and rules (before any event: kept on write).
pub(super) fn define(db: &Db) -> Result<(), Error> {
    let (defs, rules) = json::parse(DEFINITIONS)?;
    db.define_features(&defs, &rules)?;
    Ok(())
}

/// A category for the next view: the favourite two times in three.
pub(super) fn pick(rng: &mut StdRng, favourite: usize) -> &'static str {
    match rng.random_bool(0.66) {
        true => CATEGORIES[favourite % CATEGORIES.len()],
        false => CATEGORIES[rng.random_range(0..CATEGORIES.len())],
    }
}

/// Puts `category` on the event just pushed.
pub(super) fn label(out: &mut [Event], category: &str) {
    if let Some(e) = out.last_mut() {
        e.properties
            .insert("category".into(), PropValue::Str(category.into()));
    }
}

/// The rule tags' holders at the end of the simulation.
pub(super) fn summary(db: &Db, end_ms: i64) -> Result<(), Error> {
    println!("\nrule tags at the end of the simulation (docs/features.md):");
    let mut tags: Vec<String> = CATEGORIES.iter().map(|c| format!("interest:{c}")).collect();
    tags.extend(["big_spender".into(), "window_shopper".into()]);
    for tag in tags {
        let n = db.segment(&Segment::tag(&tag), end_ms)?.len();
        println!("  {tag:<22} {n:>8} users");
    }
    Ok(())
}
