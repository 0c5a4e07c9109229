//! The demo shop's coupons and loyalty spending: a welcome coupon in the
//! new-member gift pack (issued by the write that records each signup),
//! redeemed by a third of the new users on their next day; a
//! spend-threshold coupon for loyal customers; points some of them spend at
//! checkout (a hold, then a capture). What is left expires with the period.

use super::{Persona, SimUser, START_MS};
use crate::time::DAY_MS;
use crate::{CouponOp, CouponTemplate, Db, Error};

/// The welcome coupon: 10.00 off, 14 days.
const WELCOME: &str = "WELCOME10";
/// The loyal customers' 满减: 15.00 off 100.00, until the period ends.
const LOYAL: &str = "LOYAL15";

/// The templates, and the gift pack that issues the welcome coupon with
/// every signup (set before the events are recorded).
pub(super) fn setup(db: &Db, users: usize, end_ms: i64) -> Result<(), Error> {
    let welcome = CouponTemplate::fixed(WELCOME, 1_000).valid_days(14);
    db.add_coupon_template(&welcome.per_user(1))?;
    let loyal = CouponTemplate::threshold(LOYAL, 10_000, 1_500)
        .valid_until_ms(end_ms)
        .per_user(1)
        .stock(users as u64 / 20 + 1);
    db.add_coupon_template(&loyal)?;
    db.set_gift_pack(Some(&crate::GiftPack::new("signup", [WELCOME])))
}

/// Redeems and spends; settles what falls due by `end_ms`.
pub(super) fn run(db: &Db, sim: &[SimUser], end_ms: i64) -> Result<(), Error> {
    for (i, u) in sim.iter().enumerate() {
        let signup_ms = START_MS + i64::from(u.signup_day) * DAY_MS + 2;
        let Some(coupon) = db.coupons(&u.name)?.into_iter().next().map(|c| c.id) else {
            continue;
        };
        if i % 3 == 0 && signup_ms + DAY_MS < end_ms {
            let redeem = CouponOp::Redeem {
                coupon,
                order_minor: 4_000 + (i as i64 % 7) * 1_000,
            };
            db.coupon(&u.name, "welcome-order", signup_ms + DAY_MS, &redeem)?;
        }
    }
    for (i, u) in sim
        .iter()
        .filter(|u| matches!(u.persona, Persona::Loyal))
        .enumerate()
    {
        let at = end_ms - 2 * DAY_MS;
        let issue = CouponOp::Issue {
            template: LOYAL.into(),
        };
        // (the stock runs out for the last of them: refused, as a shop's is)
        let Ok(out) = db.coupon(&u.name, "loyal", at, &issue) else {
            continue;
        };
        if i % 2 == 0 {
            let redeem = CouponOp::Redeem {
                coupon: out.coupon,
                order_minor: 12_000,
            };
            db.coupon(&u.name, "loyal-order", at + 60_000, &redeem)?;
        }
        if i % 3 == 0 {
            spend_points(db, &u.name, end_ms - DAY_MS)?;
        }
    }
    db.expire_points(end_ms)?;
    Ok(())
}

/// A checkout spending 200 points: a hold, then a capture.
fn spend_points(db: &Db, user: &str, at: i64) -> Result<(), Error> {
    if db.account(user)?.map_or(0, |a| a.available()) < 200 {
        return Ok(());
    }
    let hold = crate::PointsOp::Hold {
        points: 200,
        timeout_ms: 15 * 60_000,
    };
    db.points(user, "checkout-hold", at, &hold)?;
    let capture = crate::PointsOp::Capture {
        hold_txn: "checkout-hold".into(),
    };
    db.points(user, "checkout-pay", at + 60_000, &capture)?;
    Ok(())
}

/// The coupons' counts at the end of the simulation.
pub(super) fn summary(db: &Db) -> Result<(), Error> {
    outln!("\ncoupons at the end of the simulation:");
    for id in [WELCOME, LOYAL] {
        let s = db.coupon_stats(id)?;
        let rate = s.redeemed as f64 / s.issued.max(1) as f64;
        outln!(
            "  {id:<10} issued {:>7}  redeemed {:>7} ({:.0} %)  expired {:>7}  outstanding {:>6}",
            s.issued,
            s.redeemed,
            rate * 100.0,
            s.expired,
            s.outstanding
        );
    }
    Ok(())
}
