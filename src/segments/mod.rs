//! Segments: boolean expressions over user sets, evaluated by bitmap algebra.
//!
//! Owns the segment expression type, its text grammar and its evaluation.
//! Today the atoms are tags and "every user"; later atoms (stage, RFM, tier,
//! activity windows) plug into [`Segment`] and [`Segment::parse`]. Must not
//! write anything.
//!
//! Grammar (case-sensitive keywords, whitespace-separated):
//!
//! ```text
//! expr   := or
//! or     := and ("or" and)*
//! and    := unary ("and" unary)*
//! unary  := "not" unary | atom
//! atom   := "(" expr ")" | "all" | "tag:" NAME
//! ```
//!
//! `not` binds tightest, then `and`, then `or`.

use roaring::RoaringBitmap;

use crate::error::{InputError, Problem};

/// Longest accepted segment expression, in bytes.
pub const MAX_EXPR_BYTES: usize = 4096;
/// Deepest accepted nesting of a segment expression.
pub const MAX_EXPR_DEPTH: usize = 64;

/// A set of users described by a boolean expression.
///
/// ```
/// use stickydb::Segment;
/// let s = Segment::tag("vip").and(Segment::tag("trial").not());
/// assert_eq!(Segment::parse("tag:vip and not tag:trial").unwrap(), s);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    /// Every user in the store.
    All,
    /// Users holding a live tag.
    Tag(String),
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
        let spaced = text.replace('(', " ( ").replace(')', " ) ");
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
            Segment::Tag(_) => atoms(self)? & universe,
            Segment::And(a, b) => a.eval(universe, atoms)? & b.eval(universe, atoms)?,
            Segment::Or(a, b) => a.eval(universe, atoms)? | b.eval(universe, atoms)?,
            Segment::Not(a) => universe - a.eval(universe, atoms)?,
        })
    }
}

impl std::fmt::Display for Segment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Segment::All => write!(f, "all"),
            Segment::Tag(t) => write!(f, "tag:{t}"),
            Segment::And(a, b) => write!(f, "({a} and {b})"),
            Segment::Or(a, b) => write!(f, "({a} or {b})"),
            Segment::Not(a) => write!(f, "not {a}"),
        }
    }
}

struct Parser<'t> {
    tokens: Vec<&'t str>,
    pos: usize,
}

impl<'t> Parser<'t> {
    fn error(&self, reason: String) -> InputError {
        InputError::new(
            "segment",
            Problem::Unparsable {
                reason: format!("{reason} at token {}", self.pos + 1),
            },
        )
    }

    fn peek(&self) -> Option<&'t str> {
        self.tokens.get(self.pos).copied()
    }

    fn depth_check(&self, depth: usize) -> Result<(), InputError> {
        if depth > MAX_EXPR_DEPTH {
            Err(self.error(format!("nesting deeper than {MAX_EXPR_DEPTH}")))
        } else {
            Ok(())
        }
    }

    fn or(&mut self, depth: usize) -> Result<Segment, InputError> {
        self.depth_check(depth)?;
        let mut left = self.and(depth + 1)?;
        while self.peek() == Some("or") {
            self.pos += 1;
            left = left.or(self.and(depth + 1)?);
        }
        Ok(left)
    }

    fn and(&mut self, depth: usize) -> Result<Segment, InputError> {
        self.depth_check(depth)?;
        let mut left = self.unary(depth + 1)?;
        while self.peek() == Some("and") {
            self.pos += 1;
            left = left.and(self.unary(depth + 1)?);
        }
        Ok(left)
    }

    fn unary(&mut self, depth: usize) -> Result<Segment, InputError> {
        self.depth_check(depth)?;
        match self.peek() {
            Some("not") => {
                self.pos += 1;
                Ok(self.unary(depth + 1)?.not())
            }
            _ => self.atom(depth + 1),
        }
    }

    fn atom(&mut self, depth: usize) -> Result<Segment, InputError> {
        let Some(tok) = self.peek() else {
            return Err(self.error("expression ends early".into()));
        };
        self.pos += 1;
        if tok == "(" {
            let inner = self.or(depth + 1)?;
            if self.peek() != Some(")") {
                return Err(self.error("missing ')'".into()));
            }
            self.pos += 1;
            return Ok(inner);
        }
        if tok == "all" {
            return Ok(Segment::All);
        }
        if let Some(name) = tok.strip_prefix("tag:") {
            crate::users::check_name(name, crate::profiles::MAX_TAG_BYTES)
                .map_err(|p| InputError::new("segment.tag", p))?;
            return Ok(Segment::tag(name));
        }
        self.pos -= 1;
        Err(self.error(format!("unknown atom {tok:?}")))
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
        for bad in [
            "",
            "tag:",
            "tag:a and",
            "(tag:a",
            "tag:a)",
            "stage:new",
            "tag:a tag:b",
        ] {
            assert!(Segment::parse(bad).is_err(), "{bad:?} should not parse");
        }
        let deep = format!("{}tag:a{}", "(".repeat(200), ")".repeat(200));
        assert!(Segment::parse(&deep).is_err());
    }
}
