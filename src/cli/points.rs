//! `stickydb points …`: the ledger from the command line. Each subcommand is
//! one library call; times default to now.

use clap::Subcommand;
use serde_json::{json, Value};

use super::{open_existing, print_json, Cli};
use crate::ledger::PointsOp;
use crate::{Db, Error};

/// The arguments every operation takes.
#[derive(Debug, clap::Args)]
pub struct OpArgs {
    /// External user id.
    pub user: String,
    /// Transaction id (a retry with the same id is answered, not redone).
    #[arg(long)]
    pub txn: String,
    /// The operation's time (default now): RFC 3339 or ms.
    #[arg(long)]
    pub at: Option<String>,
}

/// A ledger operation.
#[derive(Debug, Subcommand)]
pub enum PointsCommand {
    /// Credit points as a new lot.
    Earn {
        /// Whose account, which transaction, when.
        #[command(flatten)]
        op: OpArgs,
        /// Points to credit.
        #[arg(long)]
        points: i64,
        /// When the lot expires: RFC 3339 or ms.
        #[arg(long)]
        expires_at: Option<String>,
        /// Why.
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Debit points, soonest-expiring lots first.
    Redeem {
        /// Whose account, which transaction, when.
        #[command(flatten)]
        op: OpArgs,
        /// Points to debit.
        #[arg(long)]
        points: i64,
        /// Why.
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Reserve points until captured, released or timed out.
    Hold {
        /// Whose account, which transaction, when.
        #[command(flatten)]
        op: OpArgs,
        /// Points to reserve.
        #[arg(long)]
        points: i64,
        /// Timeout, e.g. 15m, 2h, 1d.
        #[arg(long)]
        timeout: String,
    },
    /// Debit the points of an open hold.
    Capture {
        /// Whose account, which transaction, when.
        #[command(flatten)]
        op: OpArgs,
        /// The hold's transaction id.
        #[arg(long)]
        hold: String,
    },
    /// Return the points of an open hold.
    Release {
        /// Whose account, which transaction, when.
        #[command(flatten)]
        op: OpArgs,
        /// The hold's transaction id.
        #[arg(long)]
        hold: String,
    },
    /// Correct the balance (±points, reason required).
    Adjust {
        /// Whose account, which transaction, when.
        #[command(flatten)]
        op: OpArgs,
        /// Points, negative to debit.
        #[arg(long, allow_hyphen_values = true)]
        points: i64,
        /// Why.
        #[arg(long)]
        reason: String,
    },
    /// Undo an earn, redeem or capture.
    Reverse {
        /// Whose account, which transaction, when.
        #[command(flatten)]
        op: OpArgs,
        /// The transaction to undo.
        #[arg(long)]
        target: String,
    },
    /// Settle everything due: expired lots, timed-out holds, tier reviews.
    Expire {
        /// The clock (default now): RFC 3339 or ms.
        #[arg(long)]
        now: Option<String>,
    },
    /// A user's account, open lots and entries, newest first.
    History {
        /// External user id.
        user: String,
        /// Most entries.
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
}

pub(super) fn time_arg(field: &'static str, text: Option<&str>, now_ms: i64) -> Result<i64, Error> {
    match text {
        None => Ok(now_ms),
        Some(t) => crate::timeline::json::parse_ts(&Value::from(t))
            .map_err(|e| crate::InputError { field, ..e }.into()),
    }
}

/// Runs one subcommand; returns its JSON answer.
pub fn run(db: &Db, cmd: &PointsCommand, now_ms: i64) -> Result<Value, Error> {
    let (args, op) = match cmd {
        PointsCommand::Earn {
            op,
            points,
            expires_at,
            reason,
        } => {
            let expires_at_ms = match expires_at {
                None => None,
                Some(e) => Some(time_arg("expires_at", Some(e), now_ms)?),
            };
            let earn = PointsOp::Earn {
                points: *points,
                expires_at_ms,
                reason: reason.clone(),
            };
            (op, earn)
        }
        PointsCommand::Redeem { op, points, reason } => {
            (op, PointsOp::redeem(*points, reason.clone()))
        }
        PointsCommand::Hold {
            op,
            points,
            timeout,
        } => {
            let hold = PointsOp::Hold {
                points: *points,
                timeout_ms: super::query::duration_ms("timeout", timeout)?,
            };
            (op, hold)
        }
        PointsCommand::Capture { op, hold } => (
            op,
            PointsOp::Capture {
                hold_txn: hold.clone(),
            },
        ),
        PointsCommand::Release { op, hold } => (
            op,
            PointsOp::Release {
                hold_txn: hold.clone(),
            },
        ),
        PointsCommand::Adjust { op, points, reason } => (
            op,
            PointsOp::Adjust {
                points: *points,
                reason: reason.clone(),
            },
        ),
        PointsCommand::Reverse { op, target } => (
            op,
            PointsOp::Reverse {
                txn: target.clone(),
            },
        ),
        PointsCommand::Expire { now } => {
            let now = time_arg("now", now.as_deref(), now_ms)?;
            let report = db.expire_points(now)?;
            return Ok(json!(report));
        }
        PointsCommand::History { user, limit } => {
            let entries = db.ledger(user, i64::MIN, i64::MAX, *limit)?;
            let lots: Vec<_> = db.lots(user)?.into_iter().filter(|l| l.is_open()).collect();
            return Ok(json!({
                "user": user,
                "account": db.account(user)?,
                "open_lots": lots,
                "holds": db.holds(user)?,
                "tier_history": db.tier_history(user)?,
                "entries": entries,
            }));
        }
    };
    let at_ms = time_arg("at", args.at.as_deref(), now_ms)?;
    let out = db.points(&args.user, &args.txn, at_ms, &op)?;
    Ok(json!(out))
}

// ---- the command ----

/// `stickydb points`.
/// `stickydb growth USER [--at TIME]`.
pub(super) fn growth_cmd(cli: &Cli, user: &str, at: Option<&str>, now: i64) -> Result<(), Error> {
    let db = open_existing(cli, true)?;
    let at_ms = time_arg("at", at, now)?;
    let g = db.growth_value(user, at_ms)?;
    let v = json!({
        "user": user,
        "balance": g.balance,
        "in_window": g.in_window,
        "window_days": g.window_days,
        "tier_basis": g.tier_basis.name(),
        "tier": g.tier,
    });
    if cli.wants_json() {
        return print_json(&v);
    }
    println!(
        "{user}: growth value {} ({} in the {}-day tier window), tiers grow from {}, tier {}",
        g.balance,
        g.in_window,
        g.window_days,
        g.tier_basis.name(),
        g.tier.as_deref().unwrap_or("-")
    );
    Ok(())
}

pub(super) fn points_cmd(cli: &Cli, command: &PointsCommand, now: i64) -> Result<(), Error> {
    let read_only = matches!(command, PointsCommand::History { .. });
    let db = open_existing(cli, read_only)?;
    let v = run(&db, command, now)?;
    if cli.wants_json() {
        return print_json(&v);
    }
    if let PointsCommand::History { user, limit } = command {
        return history_table(&db, user, *limit);
    }
    super::human::outcome(&v);
    Ok(())
}

/// `points history` for people: the account, open lots, holds, tier
/// changes and entries as tables, times local.
fn history_table(db: &crate::Db, user: &str, limit: usize) -> Result<(), Error> {
    use super::human::local_time;
    let when = |ms: i64| local_time(db, ms);
    let signed = |n: i64| {
        if n > 0 {
            format!("+{n}")
        } else {
            n.to_string()
        }
    };
    outln!("points of {user}");
    match db.account(user)? {
        Some(a) => super::human::section(
            "account",
            &[
                ("balance".into(), a.balance.to_string()),
                ("held".into(), a.held.to_string()),
                ("available".into(), (a.balance - a.held).to_string()),
                ("tier".into(), a.tier.clone().unwrap_or_else(|| "-".into())),
            ],
        ),
        None => outln!("  no points account"),
    }
    let table = |title: &str, rows: Vec<Value>| {
        if !rows.is_empty() {
            outln!("{title}");
            super::query::print_table(&json!({ "rows": rows }));
        }
    };
    let lots: Vec<Value> = db
        .lots(user)?
        .into_iter()
        .filter(|l| l.is_open())
        .map(|l| {
            json!({ "lot": l.id, "earned": when(l.earned_at_ms), "points": l.earned,
                "remaining": l.remaining, "held": l.held,
                "expires": l.expires_at_ms.map(when).unwrap_or_else(|| "never".into()) })
        })
        .collect();
    table("open lots", lots);
    let holds: Vec<Value> = db
        .holds(user)?
        .into_iter()
        .map(|h| json!({ "txn": h.txn_id, "points": h.points, "deadline": when(h.deadline_ms) }))
        .collect();
    table("holds", holds);
    let tiers: Vec<Value> = db
        .tier_history(user)?
        .into_iter()
        .map(|t| {
            json!({ "when": when(t.at_ms), "from": t.from.unwrap_or_else(|| "-".into()),
                "to": t.to.unwrap_or_else(|| "-".into()), "growth": t.growth })
        })
        .collect();
    table("tier changes", tiers);
    let entries: Vec<Value> = db
        .ledger(user, i64::MIN, i64::MAX, limit)?
        .into_iter()
        .map(|e| {
            json!({ "when": when(e.at_ms), "kind": format!("{:?}", e.kind).to_lowercase(),
                "points": signed(e.amount), "held": signed(e.held_delta),
                "txn": e.txn_id.unwrap_or_default(), "reason": e.reason.unwrap_or_default() })
        })
        .collect();
    table("entries (newest first)", entries);
    Ok(())
}
