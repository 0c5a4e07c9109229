//! The demo's features and interest tags (docs/features.md): what the
//! simulated shoppers browse, and the definitions that follow it.

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

/// Defines the demo's features and rules on the loaded store and computes
/// every user's (the backfill), saying how fast.
pub(super) fn define(db: &Db, events: u64) -> Result<(), Error> {
    let (defs, rules) = json::parse(DEFINITIONS)?;
    db.define_features(&defs, &rules)?;
    let started = std::time::Instant::now();
    let users = super::super::human::working("computing features", || db.backfill_features())?;
    let secs = started.elapsed().as_secs_f64();
    outln!(
        "features: {} definitions and {} rules; {users} users computed from their events in {secs:.1} s ({:.0} events/s)",
        defs.len(),
        rules.len(),
        events as f64 / secs.max(1e-9)
    );
    Ok(())
}

/// A category for a view of session `sid` at `ts`: the favourite two
/// times in three. Drawn from a hash, not the simulation's generator, so
/// the rest of the simulation is the one it was before categories.
pub(super) fn pick(favourite: usize, sid: &str, ts: i64) -> &'static str {
    let mut h = (ts as u64) ^ 0x9e37_79b9_7f4a_7c15;
    for b in sid.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    h ^= h >> 29;
    let n = CATEGORIES.len() as u64;
    match h % 3 {
        0 => CATEGORIES[((h >> 8) % n) as usize],
        _ => CATEGORIES[favourite % CATEGORIES.len()],
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
    outln!("\nrule tags at the end of the simulation (docs/features.md):");
    let mut tags: Vec<String> = CATEGORIES.iter().map(|c| format!("interest:{c}")).collect();
    tags.extend(["big_spender".into(), "window_shopper".into()]);
    for tag in tags {
        let n = db.segment(&Segment::tag(&tag), end_ms)?.len();
        outln!("  {tag:<22} {n:>8} users");
    }
    Ok(())
}
