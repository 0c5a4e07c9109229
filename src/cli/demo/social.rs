//! The demo's social commerce: friends coming through shares, group buys
//! opened by buyers and joined by others, and the summary of both.

use rand::rngs::StdRng;
use rand::RngExt;

use super::{Persona, SimUser, DAY_MS, START_MS};
use crate::{Db, Error, Event};

/// A share code of 11 base-36 characters derived from the session id
/// (the unseeded Fx hash: the same for the same seed; unique enough for a
/// demo).
pub(super) fn share_code(session_id: &str) -> String {
    use std::hash::BuildHasher;
    let mut h = rustc_hash::FxBuildHasher.hash_one(session_id);
    let mut code = String::with_capacity(11);
    for _ in 0..11 {
        code.push(char::from_digit((h % 36) as u32, 36).unwrap_or('0'));
        h /= 36;
    }
    code
}

/// Shares friends may come through, and group buys still open.
#[derive(Default)]
pub(super) struct Social {
    /// `(day, share id, sharer index)` of the last week's shares.
    shares: std::collections::VecDeque<(u32, String, usize)>,
    /// `(group id, opener index, deadline)`.
    groups: Vec<(String, usize, i64)>,
    opened: u64,
}

impl Social {
    /// Remembers the shares and group openings of `events` (user `who`).
    fn note(&mut self, day: u32, who: usize, events: &[Event]) {
        for e in events {
            if let Some(id) = &e.share_id {
                self.shares.push_back((day, id.clone(), who));
            }
            if let (Some(id), Some(deadline)) = (&e.group_id, e.group_deadline_ms) {
                self.groups.push((id.clone(), who, deadline));
            }
        }
    }

    /// A share of the last week by someone other than `who`, if any.
    pub(super) fn pick_share(&self, rng: &mut StdRng, who: usize) -> Option<String> {
        if self.shares.is_empty() {
            return None;
        }
        let (_, id, by) = &self.shares[rng.random_range(0..self.shares.len())];
        (*by != who).then(|| id.clone())
    }

    /// Forgets shares older than a week and groups past their deadline.
    pub(super) fn age(&mut self, day: u32, now_ms: i64) {
        while self.shares.front().is_some_and(|s| s.0 + 7 < day) {
            self.shares.pop_front();
        }
        self.groups.retain(|g| g.2 > now_ms);
    }
}

/// Social behaviour of user `who` (index `i`) on `day` after its sessions
/// (`from` = where they start in `out`): the first visit may come through a
/// friend's share; a buyer may open a group buy; anyone may join one.
pub(super) fn social_day(
    rng: &mut StdRng,
    social: &mut Social,
    u: &SimUser,
    i: usize,
    day: u32,
    from: usize,
    out: &mut Vec<Event>,
) {
    if out.len() > from && rng.random_bool(0.05) {
        if let Some(share) = social.pick_share(rng, i) {
            out[from].via = Some(share);
        }
    }
    let bought = out[from..]
        .iter()
        .find(|e| e.kind.as_str() == "purchase")
        .map(|e| e.ts_ms);
    if let Some(t) = bought {
        if !matches!(u.persona, Persona::Browser) && rng.random_bool(0.15) {
            social.opened += 1;
            let id = format!("g{}", social.opened);
            let target = rng.random_range(2..=3);
            out.push(
                Event::new(u.name.as_str(), "group_open", t + 1_000)
                    .with_group_open(id, target, t + DAY_MS)
                    .with_id(format!("{}-{day}-open", u.name)),
            );
        }
    }
    if !social.groups.is_empty() && rng.random_bool(0.03) {
        let (id, by, deadline) = social.groups[rng.random_range(0..social.groups.len())].clone();
        let at = START_MS + i64::from(day) * DAY_MS + rng.random_range(8..22) * 3_600_000;
        // mostly in time; a few arrive after the deadline and do not count
        if by != i && at < deadline + 3_600_000 {
            out.push(
                Event::new(u.name.as_str(), "group_join", at)
                    .with_group(id)
                    .with_id(format!("{}-{day}-join", u.name)),
            );
        }
    }
    social.note(day, i, &out[from..]);
}

/// Shares, referrals and group buys of the last 30 simulated days.
pub(super) fn summary(db: &Db, days: u32, end_ms: i64) -> Result<(), Error> {
    let to = db.local_day(end_ms - 1);
    let from = to - (days.min(30) as i32 - 1);
    let total = db
        .social_by_day(from, to, None)?
        .values()
        .fold(crate::Figures::default(), |a, f| a.plus(f));
    outln!(
        "\nsocial commerce, last {} days (docs/social.md):",
        to - from + 1
    );
    outln!(
        "  {} shares; {} users reached through them, {} signed up and {} bought first through a share ({:.2} attributed GMV)",
        total.shares,
        total.reached,
        total.signups,
        total.first_purchases,
        total.gmv_minor as f64 / 100.0
    );
    let viral = db.viral_coefficient(from, to, (to - from + 1) as u32, None)?;
    if let Some(c) = viral.first().and_then(|p| p.coefficient) {
        outln!("  viral coefficient {c:.3} (attributed signups ÷ users who shared)");
    }
    for r in db.top_sharers(from, to, crate::SharerRank::Signups, 3, None)? {
        outln!(
            "  top sharer {}: {} reached, {} signups, {:.2} GMV",
            db.user_name(r.user_id)?.unwrap_or_default(),
            r.figures.reached,
            r.figures.signups,
            r.figures.gmv_minor as f64 / 100.0
        );
    }
    let groups = db.group_days(from, to, end_ms, None)?;
    let sum = |f: fn(&crate::GroupDay) -> u64| groups.iter().map(f).sum::<u64>();
    let (opened, completed, expired) =
        (sum(|d| d.opened), sum(|d| d.completed), sum(|d| d.expired));
    let spent: f64 = groups
        .iter()
        .filter_map(|d| d.mean_time_to_complete_ms.map(|m| m * d.completed as f64))
        .sum();
    if opened > 0 {
        outln!(
            "  group buys: {opened} opened, {completed} completed, {expired} expired — completion rate {:.0} %, {:.1} h to complete on average",
            100.0 * completed as f64 / (completed + expired).max(1) as f64,
            spent / completed.max(1) as f64 / 3_600_000.0
        );
    }
    Ok(())
}
