//! `stickydb points …`: the ledger from the command line. Each subcommand is
//! one library call; times default to now.

use clap::Subcommand;
use serde_json::{json, Value};

use crate::ledger::PointsOp;
use crate::{Db, Error};

/// A ledger operation.
#[derive(Debug, Subcommand)]
pub enum PointsCommand {
    /// Credit points as a new lot.
    Earn {
        /// External user id.
        user: String,
        /// Transaction id (a retry with the same id is answered, not redone).
        #[arg(long)]
        txn: String,
        /// Points to credit.
        #[arg(long)]
        points: i64,
        /// When the lot expires: RFC 3339 or ms.
        #[arg(long)]
        expires_at: Option<String>,
        /// Why.
        #[arg(long, default_value = "")]
        reason: String,
        /// The operation's time (default now): RFC 3339 or ms.
        #[arg(long)]
        at: Option<String>,
    },
    /// Debit points, soonest-expiring lots first.
    Redeem {
        /// External user id.
        user: String,
        /// Transaction id.
        #[arg(long)]
        txn: String,
        /// Points to debit.
        #[arg(long)]
        points: i64,
        /// Why.
        #[arg(long, default_value = "")]
        reason: String,
        /// The operation's time (default now).
        #[arg(long)]
        at: Option<String>,
    },
    /// Reserve points until captured, released or timed out.
    Hold {
        /// External user id.
        user: String,
        /// Transaction id.
        #[arg(long)]
        txn: String,
        /// Points to reserve.
        #[arg(long)]
        points: i64,
        /// Timeout, e.g. 15m, 2h, 1d.
        #[arg(long)]
        timeout: String,
        /// The operation's time (default now).
        #[arg(long)]
        at: Option<String>,
    },
    /// Debit the points of an open hold.
    Capture {
        /// External user id.
        user: String,
        /// Transaction id.
        #[arg(long)]
        txn: String,
        /// The hold's transaction id.
        #[arg(long)]
        hold: String,
        /// The operation's time (default now).
        #[arg(long)]
        at: Option<String>,
    },
    /// Return the points of an open hold.
    Release {
        /// External user id.
        user: String,
        /// Transaction id.
        #[arg(long)]
        txn: String,
        /// The hold's transaction id.
        #[arg(long)]
        hold: String,
        /// The operation's time (default now).
        #[arg(long)]
        at: Option<String>,
    },
    /// Correct the balance (±points, reason required).
    Adjust {
        /// External user id.
        user: String,
        /// Transaction id.
        #[arg(long)]
        txn: String,
        /// Points, negative to debit.
        #[arg(long, allow_hyphen_values = true)]
        points: i64,
        /// Why.
        #[arg(long)]
        reason: String,
        /// The operation's time (default now).
        #[arg(long)]
        at: Option<String>,
    },
    /// Undo an earn, redeem or capture.
    Reverse {
        /// External user id.
        user: String,
        /// Transaction id of the reversal.
        #[arg(long)]
        txn: String,
        /// The transaction to undo.
        #[arg(long)]
        target: String,
        /// The operation's time (default now).
        #[arg(long)]
        at: Option<String>,
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

fn time_arg(field: &'static str, text: Option<&str>, now_ms: i64) -> Result<i64, Error> {
    match text {
        None => Ok(now_ms),
        Some(t) => super::import::parse_ts(&Value::from(t))
            .map_err(|e| crate::InputError { field, ..e }.into()),
    }
}

/// Runs one subcommand; returns its JSON answer.
pub fn run(db: &Db, cmd: &PointsCommand, now_ms: i64) -> Result<Value, Error> {
    let at = |t: &Option<String>| time_arg("at", t.as_deref(), now_ms);
    let (user, txn, at_ms, op) = match cmd {
        PointsCommand::Earn {
            user,
            txn,
            points,
            expires_at,
            reason,
            at: t,
        } => {
            let expires_at_ms = match expires_at {
                None => None,
                Some(e) => Some(time_arg("expires_at", Some(e), now_ms)?),
            };
            let op = PointsOp::Earn {
                points: *points,
                expires_at_ms,
                reason: reason.clone(),
            };
            (user, txn, at(t)?, op)
        }
        PointsCommand::Redeem {
            user,
            txn,
            points,
            reason,
            at: t,
        } => (user, txn, at(t)?, PointsOp::redeem(*points, reason.clone())),
        PointsCommand::Hold {
            user,
            txn,
            points,
            timeout,
            at: t,
        } => {
            let op = PointsOp::Hold {
                points: *points,
                timeout_ms: super::query::duration_ms("timeout", timeout)?,
            };
            (user, txn, at(t)?, op)
        }
        PointsCommand::Capture {
            user,
            txn,
            hold,
            at: t,
        } => (
            user,
            txn,
            at(t)?,
            PointsOp::Capture {
                hold_txn: hold.clone(),
            },
        ),
        PointsCommand::Release {
            user,
            txn,
            hold,
            at: t,
        } => (
            user,
            txn,
            at(t)?,
            PointsOp::Release {
                hold_txn: hold.clone(),
            },
        ),
        PointsCommand::Adjust {
            user,
            txn,
            points,
            reason,
            at: t,
        } => {
            let op = PointsOp::Adjust {
                points: *points,
                reason: reason.clone(),
            };
            (user, txn, at(t)?, op)
        }
        PointsCommand::Reverse {
            user,
            txn,
            target,
            at: t,
        } => (
            user,
            txn,
            at(t)?,
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
    let out = db.points(user, txn, at_ms, &op)?;
    Ok(json!(out))
}
