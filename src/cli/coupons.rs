//! `stickydb coupons …`: coupon templates and the coupon lifecycle from the
//! command line (docs/coupons.md). Each operation is one library call;
//! times default to now; a refusal exits non-zero naming the rule.

use std::io::Read;
use std::path::{Path, PathBuf};

use clap::Subcommand;
use serde_json::{json, Value};

use super::points::time_arg;
use super::{open_existing, print_json, Cli};
use crate::ledger::{CouponOp, CouponTemplate};
use crate::{Db, Error, InputError, Problem};

/// Longest template file read, in bytes (1 024 templates of a few hundred
/// bytes each fit many times over).
pub const MAX_TEMPLATE_FILE_BYTES: usize = 4 << 20;

/// Whose coupon, which transaction, when.
#[derive(Debug, clap::Args)]
pub struct CouponArgs {
    /// External user id.
    pub user: String,
    /// The coupon's id (`TEMPLATE-N`, as `issue` answered).
    #[arg(long)]
    pub coupon: String,
    /// Transaction id (a retry with the same id is answered, not redone).
    #[arg(long)]
    pub txn: String,
    /// The operation's time (default now): RFC 3339 or ms.
    #[arg(long)]
    pub at: Option<String>,
}

/// `coupons template` subcommands.
#[derive(Debug, Subcommand)]
pub enum TemplateCommand {
    /// Add templates from a JSON file (one object, an array, or JSON
    /// lines; `-` reads standard input). An equal template again is a
    /// no-op; other terms under an existing id are refused.
    Add {
        /// The file.
        file: PathBuf,
    },
    /// Every template.
    List,
}

/// `coupons gift-pack` subcommands.
#[derive(Debug, Subcommand)]
pub enum GiftCommand {
    /// The pack in force.
    Show,
    /// Issue a coupon of each TEMPLATE in the write that records a user's
    /// first event of KIND (once per user).
    Set {
        /// The templates.
        #[arg(required = true)]
        templates: Vec<String>,
        /// The event kind that gives the pack.
        #[arg(long, default_value = "signup")]
        kind: String,
    },
    /// No pack.
    Clear,
}

/// A coupon command.
#[derive(Debug, Subcommand)]
pub enum CouponsCommand {
    /// The new-member gift pack.
    GiftPack {
        /// What to do.
        #[command(subcommand)]
        command: GiftCommand,
    },
    /// Coupon templates.
    Template {
        /// What to do.
        #[command(subcommand)]
        command: TemplateCommand,
    },
    /// Issue a coupon of a template to a user (stock and per-user limit
    /// checked).
    Issue {
        /// External user id.
        user: String,
        /// The template's id.
        #[arg(long)]
        template: String,
        /// Transaction id.
        #[arg(long)]
        txn: String,
        /// The operation's time (default now): RFC 3339 or ms.
        #[arg(long)]
        at: Option<String>,
    },
    /// Use a coupon on an order.
    Redeem {
        /// Whose coupon, which transaction, when.
        #[command(flatten)]
        op: CouponArgs,
        /// The order's amount, minor units.
        #[arg(long)]
        order_minor: i64,
        /// The order's event kind, for a template limited to some kinds
        /// (default `purchase` when `--prop` is given).
        #[arg(long)]
        kind: Option<String>,
        /// A string property of the order, NAME=VALUE (repeatable), for a
        /// template limited to some properties.
        #[arg(long = "prop", value_name = "NAME=VALUE")]
        props: Vec<String>,
    },
    /// Reserve a coupon at a checkout.
    Hold {
        /// Whose coupon, which transaction, when.
        #[command(flatten)]
        op: CouponArgs,
        /// Timeout, e.g. 15m, 2h, 1d.
        #[arg(long, default_value = "15m")]
        timeout: String,
    },
    /// Make a held coupon available again.
    Release {
        /// Whose coupon, which transaction, when.
        #[command(flatten)]
        op: CouponArgs,
    },
    /// Give a redeemed coupon back (a refund).
    Reverse {
        /// Whose coupon, which transaction, when.
        #[command(flatten)]
        op: CouponArgs,
    },
    /// A user's coupons.
    List {
        /// External user id.
        user: String,
    },
    /// A template's counts as of the store's clock.
    Stats {
        /// The template's id.
        #[arg(long)]
        template: String,
    },
}

/// Runs one subcommand; returns its JSON answer.
pub fn run(db: &Db, cmd: &CouponsCommand, now_ms: i64) -> Result<Value, Error> {
    let (args, op) = match cmd {
        CouponsCommand::Template { command } => return template(db, command),
        CouponsCommand::GiftPack { command } => {
            match command {
                GiftCommand::Show => {}
                GiftCommand::Clear => db.set_gift_pack(None)?,
                GiftCommand::Set { templates, kind } => {
                    let pack = crate::GiftPack::new(kind, templates.iter().map(String::as_str));
                    db.set_gift_pack(Some(&pack))?;
                }
            }
            return Ok(json!({ "gift_pack": db.gift_pack() }));
        }
        CouponsCommand::Issue {
            user,
            template,
            txn,
            at,
        } => {
            let at_ms = time_arg("at", at.as_deref(), now_ms)?;
            let op = CouponOp::Issue {
                template: template.clone(),
            };
            let out = db.coupon(user, txn, at_ms, &op)?;
            return Ok(json!({
                "coupon": out.coupon,
                "template": out.template,
                "user": user,
                "expires_ms": out.expires_at_ms,
                "replayed": out.replayed,
            }));
        }
        CouponsCommand::Redeem {
            op,
            order_minor,
            kind,
            props,
        } => (
            op,
            redeem_op(&op.coupon, *order_minor, kind.as_deref(), props)?,
        ),
        CouponsCommand::Hold { op, timeout } => (
            op,
            CouponOp::Hold {
                coupon: op.coupon.clone(),
                timeout_ms: super::query::duration_ms("timeout", timeout)?,
            },
        ),
        CouponsCommand::Release { op } => (
            op,
            CouponOp::Release {
                coupon: op.coupon.clone(),
            },
        ),
        CouponsCommand::Reverse { op } => (
            op,
            CouponOp::Reverse {
                coupon: op.coupon.clone(),
            },
        ),
        CouponsCommand::List { user } => {
            return Ok(json!({ "user": user, "coupons": db.coupons(user)? }));
        }
        CouponsCommand::Stats { template } => return Ok(json!(db.coupon_stats(template)?)),
    };
    let at_ms = time_arg("at", args.at.as_deref(), now_ms)?;
    let out = db.coupon(&args.user, &args.txn, at_ms, &op)?;
    let mut v = json!({
        "coupon": out.coupon,
        "state": out.state,
        "replayed": out.replayed,
    });
    if matches!(op, CouponOp::Redeem { .. } | CouponOp::RedeemOrder { .. }) {
        v["off_minor"] = json!(out.off_minor);
    }
    Ok(v)
}

/// A plain redeem, or one describing the order when `--kind` or `--prop`
/// says what it is (docs/coupons.md#eligibility).
fn redeem_op(
    coupon: &str,
    order_minor: i64,
    kind: Option<&str>,
    props: &[String],
) -> Result<CouponOp, Error> {
    if kind.is_none() && props.is_empty() {
        return Ok(CouponOp::Redeem {
            coupon: coupon.to_owned(),
            order_minor,
        });
    }
    let mut properties = std::collections::BTreeMap::new();
    for (i, p) in props.iter().enumerate() {
        let Some((name, value)) = p.split_once('=') else {
            let reason = format!("--prop {p:?} is not NAME=VALUE");
            return Err(InputError::new("prop", Problem::Unparsable { reason })
                .at(i)
                .into());
        };
        properties.insert(name.to_owned(), value.to_owned());
    }
    Ok(CouponOp::RedeemOrder {
        coupon: coupon.to_owned(),
        order_minor,
        kind: kind.unwrap_or("purchase").to_owned(),
        properties,
    })
}

fn template(db: &Db, command: &TemplateCommand) -> Result<Value, Error> {
    match command {
        TemplateCommand::List => Ok(json!({ "templates": db.coupon_templates()? })),
        TemplateCommand::Add { file } => {
            let templates = read_templates(file)?;
            // every template checked before any is added
            for (i, t) in templates.iter().enumerate() {
                t.validate().map_err(|e| e.at(i))?;
            }
            let (mut added, mut unchanged) = (Vec::new(), Vec::new());
            for t in &templates {
                match db.add_coupon_template(t)? {
                    true => added.push(t.id.clone()),
                    false => unchanged.push(t.id.clone()),
                }
            }
            Ok(json!({ "added": added, "unchanged": unchanged }))
        }
    }
}

/// Reads templates: one JSON object, an array of them, or JSON lines.
fn read_templates(file: &Path) -> Result<Vec<CouponTemplate>, Error> {
    let source: Box<dyn Read> = match file == Path::new("-") {
        true => Box::new(std::io::stdin()),
        false => Box::new(std::fs::File::open(file)?),
    };
    let mut text = String::new();
    source
        .take(MAX_TEMPLATE_FILE_BYTES as u64 + 1)
        .read_to_string(&mut text)?;
    if text.len() > MAX_TEMPLATE_FILE_BYTES {
        let p = Problem::TooLong {
            len_bytes: text.len(),
            max_bytes: MAX_TEMPLATE_FILE_BYTES,
        };
        return Err(InputError::new("templates", p).into());
    }
    let bad = |line: Option<usize>, e: serde_json::Error| -> Error {
        let at = line.map_or(String::new(), |l| format!(" line {l}"));
        InputError::new(
            "templates",
            Problem::Unparsable {
                reason: format!("{}{at}: {e}", file.display()),
            },
        )
        .into()
    };
    let trimmed = text.trim_start();
    if trimmed.starts_with('[') {
        return serde_json::from_str(trimmed).map_err(|e| bad(None, e));
    }
    if let Ok(one) = serde_json::from_str::<CouponTemplate>(trimmed) {
        return Ok(vec![one]);
    }
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| serde_json::from_str(l).map_err(|e| bad(Some(i + 1), e)))
        .collect()
}

/// `stickydb coupons`.
pub(super) fn coupons_cmd(cli: &Cli, command: &CouponsCommand, now: i64) -> Result<(), Error> {
    let read_only = matches!(
        command,
        CouponsCommand::List { .. }
            | CouponsCommand::Stats { .. }
            | CouponsCommand::Template {
                command: TemplateCommand::List
            }
            | CouponsCommand::GiftPack {
                command: GiftCommand::Show
            }
    );
    let db = open_existing(cli, read_only)?;
    let v = run(&db, command, now)?;
    if cli.wants_json() {
        return print_json(&v);
    }
    if let CouponsCommand::List { user } = command {
        let rows = super::human::coupon_rows(&db, &db.coupons(user)?);
        super::human::section(&format!("coupons of {user}"), &rows);
        return Ok(());
    }
    super::human::outcome(&v);
    Ok(())
}
