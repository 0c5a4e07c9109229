//! The demo's dimensions (docs/metrics.md, "Dimensions"): every session
//! arrives through a channel (each shopper's own, one session in four
//! through another), paid channels carry a campaign, views and purchases
//! a category; all three are declared before the load, so they are kept
//! on every write.

use crate::dims::{BreakdownQuery, Dimension};
use crate::{Db, Error, Event, PropValue, Segment};

/// The acquisition channels.
const CHANNELS: [&str; 5] = ["ads", "seo", "referral", "social", "email"];

/// Declares `channel`, `campaign` and `category`.
pub(super) fn declare(db: &Db) -> Result<(), Error> {
    for name in ["channel", "campaign", "category"] {
        db.declare_dimension(&Dimension::new(name))?;
    }
    Ok(())
}

/// A hash of `text` (not the simulation's generator: the rest of the
/// simulation is the one it was before channels).
fn hash(text: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    h ^ (h >> 29)
}

/// Puts the channel (and a campaign on paid ones) of session `sid` of
/// shopper `user` on day `day` on the session's events.
pub(super) fn label(events: &mut [Event], user: &str, sid: &str, day: u32) {
    let own = CHANNELS[(hash(user) % CHANNELS.len() as u64) as usize];
    let h = hash(sid);
    let channel = match h % 4 {
        0 => CHANNELS[((h >> 8) % CHANNELS.len() as u64) as usize],
        _ => own,
    };
    let campaign = matches!(channel, "ads" | "email").then(|| format!("{channel}-w{}", day / 7));
    for e in events {
        e.properties
            .insert("channel".into(), PropValue::Str(channel.into()));
        if let Some(c) = &campaign {
            e.properties
                .insert("campaign".into(), PropValue::Str(c.clone()));
        }
    }
}

/// The last 30 days by channel, and who came through ads.
pub(super) fn summary(db: &Db, end_ms: i64) -> Result<(), Error> {
    let last = db.local_day(end_ms - 1);
    let q = BreakdownQuery::new("channel", last - 29, last).top(5);
    let b = db.breakdown(&q, None, end_ms)?;
    outln!("\nthe last 30 days by channel (docs/metrics.md, \"Dimensions\"):");
    let mut totals: Vec<(String, u64, u64, i64)> = Vec::new();
    for r in &b.rows {
        match totals.iter_mut().find(|t| t.0 == r.value) {
            Some(t) => {
                t.1 += r.events.unwrap_or(0);
                t.2 += r.orders.unwrap_or(0);
                t.3 += r.gmv_minor.unwrap_or(0);
            }
            None => totals.push((
                r.value.clone(),
                r.events.unwrap_or(0),
                r.orders.unwrap_or(0),
                r.gmv_minor.unwrap_or(0),
            )),
        }
    }
    for (value, events, orders, gmv) in totals {
        outln!("  {value:<10} {events:>9} events {orders:>7} orders  GMV {gmv:>12}");
    }
    let ads = db.segment(&Segment::parse("first:channel=ads")?, end_ms)?;
    outln!(
        "  acquired through ads (first:channel=ads): {} users",
        ads.len()
    );
    Ok(())
}
