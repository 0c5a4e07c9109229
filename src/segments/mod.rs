//! Segments: boolean expressions over user sets, evaluated by bitmap algebra.
//!
//! Owns the segment expression type, its text grammar and its evaluation.
//! Atoms are resolved to user sets by the caller ([`crate::Db::segment`]),
//! which evaluates time-relative atoms as of the local day of its `now`.
//! Must not write anything.
//!
//! Grammar (case-sensitive keywords, whitespace-separated):
//!
//! ```text
//! expr   := or
//! or     := and ("or" and)*
//! and    := unary ("and" unary)*
//! unary  := "not" unary | atom
//! atom   := "(" expr ")" | "all"
//!         | "tag:" NAME                  live tag
//!         | "attr:" NAME "=" VALUE       attribute equals VALUE read as each type
//!                                        it parses as (text, integer, float,
//!                                        boolean, instant ms, YYYY-MM-DD date)
//!         | "attr:" NAME OP VALUE        OP one of >= > <= <: numbers compare
//!                                        with integers, floats and instants
//!                                        (ms); a YYYY-MM-DD with dates, with
//!                                        instants (its whole local day) and
//!                                        with text; an RFC 3339 instant with
//!                                        instants; anything else with text
//!         | "attr:" NAME "^=" VALUE      text attribute starts with VALUE
//!         | "has:" NAME                  the attribute is set
//!         | "birthday_within:" N "d"     = anniversary:birthday@Nd
//!         | "anniversary:" NAME "@" N "d"  date attribute's month and day fall
//!                                        on one of N local days from today
//!         | "stage:" NAME                lifecycle stage as of today
//!         | "rfm:" NAME                  RFM segment as of today
//!         | "tier:" NAME                 loyalty tier (as last recorded)
//!         | "active_within:" N "d"       ≥ 1 activity in the last N days
//!         | "inactive_for:" N "d"        no activity in the last N days
//!         | "contacted_within:" N "d"    ≥ 1 `contacted` event in the last N days
//!         | MEASURE OP NUMBER ["@" N "d"]  a per-user value compared, OP one of
//!                                        >= > <= <: spend (net, minor units)
//!                                        and orders over the N days ending
//!                                        today (lifetime without @), points,
//!                                        rfm.r / rfm.f / rfm.m (scores 1..5),
//!                                        stickiness (active days ÷ N; @Nd
//!                                        required)
//!         | "tier" OP TIER               the tier compared in the tiers' order
//!         | "feature:" NAME ["[" KEY "]"] OP NUMBER  a numeric feature (one key
//!                                        of a keyed or top_k one) at the
//!                                        segment's instant
//!         | "did:" KIND                  ≥ 1 event of KIND, ever
//!         | "did:" KIND "@" DAY ".." DAY ≥ 1 event of KIND in [DAY, DAY]
//!         | "entered:" STAGE             stage became STAGE today
//!         | "entered:" STAGE "@" DAY ".." DAY  … on a day in [DAY, DAY]
//!         | "shared"                     ≥ 1 share event, ever
//!         | "referred"                   first signup attributed to a sharer
//!         | "referred_by:" USER          … attributed to USER
//!         | "variant:" EXPERIMENT "=" VARIANT  assigned VARIANT in EXPERIMENT
//! ```
//!
//! Tokens are whitespace-separated, so names and values cannot hold spaces.
//!
//! `not` binds tightest, then `and`, then `or`.

mod parse;

use roaring::RoaringBitmap;

pub use crate::profiles::AttrOp;

use parse::Parser;

use crate::error::{InputError, Problem};

/// An optional inclusive local-day range of an atom.
type DayRange = Option<(i32, i32)>;

/// The event kind of a message sent to a user (push, SMS, e-mail), read by
/// `contacted_within:Nd`; a new store counts it as non-activity.
pub const CONTACT_KIND: &str = "contacted";

/// Longest accepted segment expression, in bytes.
pub const MAX_EXPR_BYTES: usize = 4096;
/// Deepest accepted nesting of a segment expression.
pub const MAX_EXPR_DEPTH: usize = 64;

/// A per-user value a threshold atom compares (`spend>=50000@90d`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Measure {
    /// Net spend (purchases − refunds), minor units, in a window or ever.
    Spend,
    /// Purchase events, in a window or ever.
    Orders,
    /// The points balance.
    Points,
    /// The recorded tier, in the tiers' order.
    Tier,
    /// The RFM recency score (1..=5; users who never bought have none).
    RfmR,
    /// The RFM frequency score.
    RfmF,
    /// The RFM monetary score.
    RfmM,
    /// Active days ÷ days of the window.
    Stickiness,
}

impl Measure {
    /// Every measure, as written in atoms.
    pub const ALL: [Measure; 8] = [
        Measure::Spend,
        Measure::Orders,
        Measure::Points,
        Measure::Tier,
        Measure::RfmR,
        Measure::RfmF,
        Measure::RfmM,
        Measure::Stickiness,
    ];

    /// The measure's name in atoms.
    pub fn name(self) -> &'static str {
        match self {
            Measure::Spend => "spend",
            Measure::Orders => "orders",
            Measure::Points => "points",
            Measure::Tier => "tier",
            Measure::RfmR => "rfm.r",
            Measure::RfmF => "rfm.f",
            Measure::RfmM => "rfm.m",
            Measure::Stickiness => "stickiness",
        }
    }

    /// Whether the measure takes a window (`@Nd`): required for
    /// stickiness, optional for spend and orders.
    pub fn windowed(self) -> bool {
        matches!(self, Measure::Spend | Measure::Orders | Measure::Stickiness)
    }
}

/// A set of users described by a boolean expression.
///
/// ```
/// use stickydb::Segment;
/// let s = Segment::tag("vip").and(Segment::tag("trial").not());
/// assert_eq!(Segment::parse("tag:vip and not tag:trial").unwrap(), s);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Segment {
    /// Every user in the store.
    All,
    /// Users holding a live tag.
    Tag(String),
    /// Users whose profile attribute `name` equals `value` read as each
    /// type it parses as (`EU`, `42`, `true`, `1990-02-28`).
    Attr {
        /// Attribute name.
        name: String,
        /// Expected value, as written.
        value: String,
    },
    /// Users whose attribute `name` compares with `value` as `op` says
    /// (module docs: which types a literal compares with).
    AttrCompare {
        /// Attribute name.
        name: String,
        /// The comparison.
        op: AttrOp,
        /// The literal, as written.
        value: String,
    },
    /// Users who have attribute `name` set (`has:phone`).
    Has(String),
    /// Users whose date attribute `name` has its next anniversary on one of
    /// `days` local days starting with the as-of day (29 February on 28
    /// February in common years; `birthday_within:7d` for `birthday`).
    Anniversary {
        /// Attribute name.
        name: String,
        /// The window's length, 1..=3660.
        days: u32,
    },
    /// Users in a lifecycle stage.
    Stage(String),
    /// Users in an RFM segment.
    Rfm(String),
    /// Users whose recorded loyalty tier is this one.
    Tier(String),
    /// Users with activity in the last N days (today included).
    ActiveWithin(u32),
    /// Users without activity in the last N days (today included).
    InactiveFor(u32),
    /// Users with a [`CONTACT_KIND`] event in the last N days (today
    /// included): a campaign excludes users messaged recently.
    ContactedWithin(u32),
    /// Users with an event of a kind, ever or in a local-day range.
    Did {
        /// The kind's name.
        kind: String,
        /// Inclusive local-day range; `None` = ever.
        days: Option<(i32, i32)>,
    },
    /// Users with an event of `kind` (empty: any activity kind) carrying
    /// value `value` of dimension `dim`, ever or in a local-day range
    /// (`did:view[category=shoes]@D..D`; docs/metrics.md, "Dimensions").
    DidWith {
        /// The kind's name (empty: any activity).
        kind: String,
        /// The dimension.
        dim: String,
        /// The value (`(other)`: the values past the cap).
        value: String,
        /// Inclusive local-day range; `None` = ever.
        days: Option<(i32, i32)>,
    },
    /// Users whose first (`last`: most recent) event carrying dimension
    /// `dim` carried `value` (`first:channel=ads`, `last:channel=ads`).
    Touch {
        /// Last touch (else first).
        last: bool,
        /// The dimension.
        dim: String,
        /// The value (`(other)`: the values past the cap).
        value: String,
    },
    /// Users whose lifecycle stage became `stage` on a day of the range
    /// (recomputed from their activity, like `stage_history`).
    Entered {
        /// The stage entered.
        stage: String,
        /// Inclusive local-day range; `None` = the as-of day.
        days: Option<(i32, i32)>,
    },
    /// Users with at least one `share` event.
    Shared,
    /// Users whose first signup is attributed to a sharer (docs/social.md).
    Referred,
    /// Users whose first signup is attributed to this user (external id).
    ReferredBy(String),
    /// Users assigned `variant` in `experiment` (their first exposure's).
    Variant {
        /// The experiment.
        experiment: String,
        /// The variant.
        variant: String,
    },
    /// Users whose per-user `measure` compares with `value` as `op` says,
    /// as of the segment's day (docs/metrics.md, "Targeting").
    Threshold {
        /// What is compared.
        measure: Measure,
        /// How (`>=`, `>`, `<=`, `<`).
        op: AttrOp,
        /// The literal: a number, or a tier's name.
        value: String,
        /// The window's days ending with the as-of day, where the measure
        /// has one (`None`: lifetime).
        window_days: Option<u32>,
    },
    /// Users whose numeric feature `name` (with `key`: a keyed feature's
    /// value, or a `top_k` count, for that key) compares with `value` as
    /// `op` says at the segment's instant (`feature:NAME>=x`,
    /// `feature:NAME[KEY]>=x`); a user without a value matches nothing.
    Feature {
        /// The feature definition's name.
        name: String,
        /// The key value of a keyed or `top_k` feature.
        key: Option<String>,
        /// How (`>=`, `>`, `<=`, `<`).
        op: AttrOp,
        /// The number compared with.
        value: String,
    },
    /// Users in both.
    And(Box<Segment>, Box<Segment>),
    /// Users in either.
    Or(Box<Segment>, Box<Segment>),
    /// Users not in it (relative to every user).
    Not(Box<Segment>),
}

impl Segment {
    /// Users holding tag `name`.
    pub fn tag(name: impl Into<String>) -> Self {
        Segment::Tag(name.into())
    }

    /// Users in `self` and in `other`.
    pub fn and(self, other: Segment) -> Self {
        Segment::And(Box::new(self), Box::new(other))
    }

    /// Users in `self` or in `other`.
    pub fn or(self, other: Segment) -> Self {
        Segment::Or(Box::new(self), Box::new(other))
    }

    /// Users not in `self`.
    #[allow(clippy::should_implement_trait)]
    pub fn not(self) -> Self {
        Segment::Not(Box::new(self))
    }

    /// Parses the text grammar of the module docs.
    pub fn parse(text: &str) -> Result<Self, InputError> {
        if text.len() > MAX_EXPR_BYTES {
            return Err(InputError::new(
                "segment",
                Problem::TooLong {
                    len_bytes: text.len(),
                    max_bytes: MAX_EXPR_BYTES,
                },
            ));
        }
        // (parentheses group, except inside `[DIM=VALUE]` and right after
        // `=`: `(other)` is a value there)
        let mut spaced = String::with_capacity(text.len() + 16);
        let (mut in_brackets, mut in_value, mut prev) = (false, false, ' ');
        for c in text.chars() {
            match c {
                '[' => in_brackets = true,
                ']' => in_brackets = false,
                '(' if prev == '=' => in_value = true,
                ')' if in_value => in_value = false,
                '(' | ')' if !in_brackets && !in_value => {
                    spaced.extend([' ', c, ' ']);
                    prev = c;
                    continue;
                }
                _ => {}
            }
            spaced.push(c);
            prev = c;
        }
        let tokens: Vec<&str> = spaced.split_whitespace().collect();
        let mut p = Parser { tokens, pos: 0 };
        let expr = p.or(0)?;
        if let Some(t) = p.tokens.get(p.pos) {
            return Err(p.error(format!("unexpected {t:?}")));
        }
        Ok(expr)
    }

    /// Evaluates against atom sets provided by `atoms`; `universe` is every user.
    pub(crate) fn eval<E>(
        &self,
        universe: &RoaringBitmap,
        atoms: &mut impl FnMut(&Segment) -> Result<RoaringBitmap, E>,
    ) -> Result<RoaringBitmap, E> {
        Ok(match self {
            Segment::All => universe.clone(),
            Segment::And(a, b) => a.eval(universe, atoms)? & b.eval(universe, atoms)?,
            Segment::Or(a, b) => a.eval(universe, atoms)? | b.eval(universe, atoms)?,
            Segment::Not(a) => universe - a.eval(universe, atoms)?,
            _ => atoms(self)? & universe,
        })
    }
}

impl std::fmt::Display for Segment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Segment::All => write!(f, "all"),
            Segment::Tag(t) => write!(f, "tag:{t}"),
            Segment::Attr { name, value } => write!(f, "attr:{name}={value}"),
            Segment::AttrCompare { name, op, value } => {
                write!(f, "attr:{name}{}{value}", op.as_str())
            }
            Segment::Has(name) => write!(f, "has:{name}"),
            Segment::Anniversary { name, days } => write!(f, "anniversary:{name}@{days}d"),
            Segment::Stage(s) => write!(f, "stage:{s}"),
            Segment::Rfm(s) => write!(f, "rfm:{s}"),
            Segment::Tier(s) => write!(f, "tier:{s}"),
            Segment::ActiveWithin(n) => write!(f, "active_within:{n}d"),
            Segment::InactiveFor(n) => write!(f, "inactive_for:{n}d"),
            Segment::ContactedWithin(n) => write!(f, "contacted_within:{n}d"),
            Segment::Threshold {
                measure,
                op,
                value,
                window_days,
            } => {
                write!(f, "{}{}{value}", measure.name(), op.as_str())?;
                match window_days {
                    Some(n) => write!(f, "@{n}d"),
                    None => Ok(()),
                }
            }
            Segment::Feature {
                name,
                key,
                op,
                value,
            } => match key {
                Some(k) => write!(f, "feature:{name}[{k}]{}{value}", op.as_str()),
                None => write!(f, "feature:{name}{}{value}", op.as_str()),
            },
            Segment::Did { kind, days: None } => write!(f, "did:{kind}"),
            Segment::Touch { last, dim, value } => {
                let which = if *last { "last" } else { "first" };
                write!(f, "{which}:{dim}={value}")
            }
            Segment::DidWith {
                kind,
                dim,
                value,
                days,
            } => {
                write!(f, "did:{kind}[{dim}={value}]")?;
                match days {
                    Some((a, b)) => write!(
                        f,
                        "@{}..{}",
                        crate::time::format_day(*a),
                        crate::time::format_day(*b)
                    ),
                    None => Ok(()),
                }
            }
            Segment::Entered { stage, days: None } => write!(f, "entered:{stage}"),
            Segment::Shared => write!(f, "shared"),
            Segment::Referred => write!(f, "referred"),
            Segment::ReferredBy(u) => write!(f, "referred_by:{u}"),
            Segment::Variant {
                experiment,
                variant,
            } => write!(f, "variant:{experiment}={variant}"),
            Segment::Entered {
                stage,
                days: Some((a, b)),
            } => write!(
                f,
                "entered:{stage}@{}..{}",
                crate::time::format_day(*a),
                crate::time::format_day(*b)
            ),
            Segment::Did {
                kind,
                days: Some((a, b)),
            } => write!(
                f,
                "did:{kind}@{}..{}",
                crate::time::format_day(*a),
                crate::time::format_day(*b)
            ),
            Segment::And(a, b) => write!(f, "({a} and {b})"),
            Segment::Or(a, b) => write!(f, "({a} or {b})"),
            Segment::Not(a) => write!(f, "not {a}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precedence_not_and_or() {
        let s = Segment::parse("tag:a or not tag:b and tag:c").unwrap_or(Segment::All);
        let want = Segment::tag("a").or(Segment::tag("b").not().and(Segment::tag("c")));
        assert_eq!(s, want);
        let p = Segment::parse("(tag:a or tag:b) and all").unwrap_or(Segment::All);
        assert_eq!(p, Segment::tag("a").or(Segment::tag("b")).and(Segment::All));
    }

    #[test]
    fn errors_name_the_token() {
        // (input, the field its error names; `None`: an empty name)
        for (bad, field, empty) in [
            ("", "segment", false),
            ("tag:", "segment.tag", true),
            ("tag:a and", "segment", false),
            ("(tag:a", "segment", false),
            ("tag:a)", "segment", false),
            ("stage:", "segment.stage", true),
            ("active_within:0d", "segment", false),
            ("active_within:30", "segment", false),
            ("did:view@2024-01-01", "segment", false),
            ("referred_by:", "segment.referred_by", true),
            ("entered:declining@2024-01-01", "segment", false),
            ("attr:region", "segment", false),
            ("tag:a tag:b", "segment", false),
            ("variant:checkout", "segment", false),
            ("variant:=b", "segment.variant", true),
        ] {
            let e = match Segment::parse(bad) {
                Err(e) => e,
                Ok(s) => panic!("{bad:?} parsed as {s:?}"),
            };
            assert_eq!(e.field, field, "{bad:?}: {e}");
            if empty {
                assert_eq!(e.problem, Problem::Empty, "{bad:?}");
            } else {
                assert!(
                    matches!(&e.problem, Problem::Unparsable { reason } if reason.contains(" at token ")),
                    "{bad:?}: {e}"
                );
            }
        }
        for good in [
            "stage:new and rfm:champions",
            "tier:gold or tier:platinum",
            "active_within:30d or inactive_for:7d",
            "did:purchase@2024-01-01..2024-01-31 and attr:region=EU",
            "shared or referred and referred_by:ann",
            "variant:checkout=b and not variant:checkout=control",
        ] {
            let s = Segment::parse(good);
            assert!(s.is_ok(), "{good:?} should parse: {s:?}");
            let again = Segment::parse(&s.map(|s| s.to_string()).unwrap_or_default());
            assert!(again.is_ok(), "display of {good:?} should parse back");
        }
        let deep = format!("{}tag:a{}", "(".repeat(200), ")".repeat(200));
        assert!(matches!(
            Segment::parse(&deep),
            Err(InputError { field: "segment", problem: Problem::Unparsable { ref reason }, .. })
                if reason.contains("nesting deeper than 64")
        ));
    }
}
