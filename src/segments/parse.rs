//! The segment grammar's parser (the grammar is in the module docs above).

use super::{AttrOp, DayRange, Measure, Segment, MAX_EXPR_DEPTH};
use crate::error::{InputError, Problem};

pub(super) struct Parser<'t> {
    pub(super) tokens: Vec<&'t str>,
    pub(super) pos: usize,
}

impl<'t> Parser<'t> {
    pub(super) fn error(&self, reason: String) -> InputError {
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

    /// `N` followed by `d`, 1..=3660.
    /// `NAME` or `NAME@DAY..DAY`.
    fn ranged<'r>(
        &self,
        tok: &str,
        rest: &'r str,
        field: &'static str,
    ) -> Result<(&'r str, DayRange), InputError> {
        match rest.split_once('@') {
            None => Ok((rest, None)),
            Some((name, range)) => {
                let Some((a, b)) = range.split_once("..") else {
                    return Err(self.error(format!("{tok:?} needs NAME@DAY..DAY")));
                };
                let a = crate::time::parse_day(a).map_err(|p| InputError::new(field, p))?;
                let b = crate::time::parse_day(b).map_err(|p| InputError::new(field, p))?;
                Ok((name, Some((a, b))))
            }
        }
    }

    /// `did:KIND[DIM=VALUE]`'s parts after the `[`.
    fn did_with(
        &self,
        tok: &str,
        kind: &str,
        filter: &str,
        days: DayRange,
    ) -> Result<Segment, InputError> {
        let Some((dim, value)) = filter.strip_suffix(']').and_then(|f| f.split_once('=')) else {
            return Err(self.error(format!("{tok:?} needs did:KIND[DIM=VALUE]")));
        };
        if !kind.is_empty() {
            crate::users::check_name(kind, crate::timeline::MAX_KIND_BYTES)
                .map_err(|p| InputError::new("segment.did", p))?;
        }
        crate::users::check_name(dim, crate::timeline::MAX_KIND_BYTES)
            .map_err(|p| InputError::new("segment.did", p))?;
        Ok(Segment::DidWith {
            kind: kind.to_owned(),
            dim: dim.to_owned(),
            value: value.to_owned(),
            days,
        })
    }

    /// `attr:NAME OP VALUE`'s parts after `attr:`: the name ends at the
    /// first operator character.
    fn attr(&self, tok: &str, rest: &str) -> Result<Segment, InputError> {
        let Some(at) = rest.find(['=', '<', '>', '^']) else {
            return Err(self.error(format!("{tok:?} needs NAME=VALUE or NAME>=VALUE …")));
        };
        let (name, tail) = rest.split_at(at);
        check_attr_name(name)?;
        let (op, value) = [
            (">=", Some(AttrOp::Ge)),
            ("<=", Some(AttrOp::Le)),
            ("^=", Some(AttrOp::Prefix)),
            (">", Some(AttrOp::Gt)),
            ("<", Some(AttrOp::Lt)),
            ("=", None),
        ]
        .into_iter()
        .find_map(|(text, op)| tail.strip_prefix(text).map(|v| (op, v)))
        .ok_or_else(|| self.error(format!("{tok:?}: no operator like >= after the name")))?;
        if value.is_empty() && op.is_some() {
            return Err(self.error(format!("{tok:?} compares with nothing")));
        }
        Ok(match op {
            None => Segment::Attr {
                name: name.to_owned(),
                value: value.to_owned(),
            },
            Some(op) => Segment::AttrCompare {
                name: name.to_owned(),
                op,
                value: value.to_owned(),
            },
        })
    }

    /// `MEASURE OP VALUE[@Nd]`, when the token starts with a measure's
    /// name and an operator.
    fn threshold(&self, tok: &str) -> Result<Option<Segment>, InputError> {
        for measure in Measure::ALL {
            let Some(rest) = tok.strip_prefix(measure.name()) else {
                continue;
            };
            let Some((op, rest)) = [
                (">=", AttrOp::Ge),
                ("<=", AttrOp::Le),
                (">", AttrOp::Gt),
                ("<", AttrOp::Lt),
            ]
            .into_iter()
            .find_map(|(text, op)| rest.strip_prefix(text).map(|r| (op, r))) else {
                continue;
            };
            let (value, window_days) = match rest.split_once('@') {
                Some((v, n)) if measure.windowed() => (v, Some(self.days(n)?)),
                Some(_) => {
                    return Err(self.error(format!("{tok:?}: {} has no window", measure.name())))
                }
                None if measure == Measure::Stickiness => {
                    return Err(self.error(format!("{tok:?} needs a window, like @30d")))
                }
                None => (rest, None),
            };
            let numeric = match measure {
                Measure::Tier => value.split_whitespace().count() == 1,
                Measure::Stickiness => value.parse::<f64>().is_ok_and(f64::is_finite),
                Measure::RfmR | Measure::RfmF | Measure::RfmM => value.parse::<u8>().is_ok(),
                _ => value.parse::<i64>().is_ok(),
            };
            if !numeric {
                return Err(self.error(format!(
                    "{tok:?}: {value:?} is not a value {} takes",
                    measure.name()
                )));
            }
            return Ok(Some(Segment::Threshold {
                measure,
                op,
                value: value.to_owned(),
                window_days,
            }));
        }
        Ok(None)
    }

    /// `feature:NAME OP NUMBER` or `feature:NAME[KEY] OP NUMBER`.
    fn feature(&self, tok: &str, rest: &str) -> Result<Segment, InputError> {
        let at = rest.find(['<', '>']).ok_or_else(|| {
            self.error(format!("{tok:?} needs feature:NAME>=NUMBER (or >, <=, <)"))
        })?;
        let (target, cmp) = rest.split_at(at);
        let (op, value) = match cmp.strip_prefix(">=").or(cmp.strip_prefix("<=")) {
            Some(v) if cmp.starts_with('>') => (AttrOp::Ge, v),
            Some(v) => (AttrOp::Le, v),
            None if cmp.starts_with('>') => (AttrOp::Gt, &cmp[1..]),
            None => (AttrOp::Lt, &cmp[1..]),
        };
        if !value.parse::<f64>().is_ok_and(f64::is_finite) {
            return Err(self.error(format!("{tok:?}: {value:?} is not a number")));
        }
        let (name, key) = match target.split_once('[') {
            Some((name, key)) => match key.strip_suffix(']') {
                Some(key) if !key.is_empty() => (name, Some(key.to_owned())),
                _ => return Err(self.error(format!("{tok:?}: a key is written NAME[KEY]"))),
            },
            None => (target, None),
        };
        crate::users::check_name(name, crate::features::MAX_NAME_BYTES)
            .map_err(|p| InputError::new("segment.feature", p))?;
        Ok(Segment::Feature {
            name: name.to_owned(),
            key,
            op,
            value: value.to_owned(),
        })
    }

    fn days(&self, text: &str) -> Result<u32, InputError> {
        let n: Option<u32> = text.strip_suffix('d').and_then(|n| n.parse().ok());
        match n {
            Some(n) if (1..=3660).contains(&n) => Ok(n),
            _ => Err(self.error(format!("{text:?} is not a day count like 30d (1..=3660)"))),
        }
    }

    pub(super) fn or(&mut self, depth: usize) -> Result<Segment, InputError> {
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
        match tok {
            "all" => return Ok(Segment::All),
            "shared" => return Ok(Segment::Shared),
            "referred" => return Ok(Segment::Referred),
            _ => {}
        }
        if let Some(user) = tok.strip_prefix("referred_by:") {
            crate::users::check_user(user)
                .map_err(|p| InputError::new("segment.referred_by", p))?;
            return Ok(Segment::ReferredBy(user.to_owned()));
        }
        if let Some(rest) = tok.strip_prefix("variant:") {
            let Some((experiment, variant)) = rest.split_once('=') else {
                return Err(self.error(format!("{tok:?} needs EXPERIMENT=VARIANT")));
            };
            for name in [experiment, variant] {
                crate::users::check_name(name, crate::experiments::MAX_NAME_BYTES)
                    .map_err(|p| InputError::new("segment.variant", p))?;
            }
            return Ok(Segment::Variant {
                experiment: experiment.to_owned(),
                variant: variant.to_owned(),
            });
        }
        if let Some(name) = tok.strip_prefix("tag:") {
            crate::users::check_name(name, crate::profiles::MAX_TAG_BYTES)
                .map_err(|p| InputError::new("segment.tag", p))?;
            return Ok(Segment::tag(name));
        }
        if let Some(rest) = tok.strip_prefix("attr:") {
            return self.attr(tok, rest);
        }
        if let Some(rest) = tok.strip_prefix("feature:") {
            return self.feature(tok, rest);
        }
        if let Some(t) = self.threshold(tok)? {
            return Ok(t);
        }
        if let Some(name) = tok.strip_prefix("has:") {
            check_attr_name(name)?;
            return Ok(Segment::Has(name.to_owned()));
        }
        if let Some(n) = tok.strip_prefix("birthday_within:") {
            return Ok(Segment::Anniversary {
                name: crate::profiles::BIRTHDAY_ATTRIBUTE.to_owned(),
                days: self.days(n)?,
            });
        }
        if let Some(rest) = tok.strip_prefix("anniversary:") {
            let Some((name, n)) = rest.split_once('@') else {
                return Err(self.error(format!("{tok:?} needs anniversary:NAME@Nd")));
            };
            check_attr_name(name)?;
            return Ok(Segment::Anniversary {
                name: name.to_owned(),
                days: self.days(n)?,
            });
        }
        if let Some(name) = tok.strip_prefix("stage:") {
            crate::users::check_name(name, crate::metrics::MAX_STAGE_NAME_BYTES)
                .map_err(|p| InputError::new("segment.stage", p))?;
            return Ok(Segment::Stage(name.to_owned()));
        }
        if let Some(name) = tok.strip_prefix("rfm:") {
            // RFM segment names are labels like stage names, with their bound.
            crate::users::check_name(name, crate::metrics::MAX_STAGE_NAME_BYTES)
                .map_err(|p| InputError::new("segment.rfm", p))?;
            return Ok(Segment::Rfm(name.to_owned()));
        }
        if let Some(name) = tok.strip_prefix("tier:") {
            crate::users::check_name(name, crate::ledger::MAX_TIER_NAME_BYTES)
                .map_err(|p| InputError::new("segment.tier", p))?;
            return Ok(Segment::Tier(name.to_owned()));
        }
        if let Some(n) = tok.strip_prefix("active_within:") {
            return Ok(Segment::ActiveWithin(self.days(n)?));
        }
        if let Some(n) = tok.strip_prefix("inactive_for:") {
            return Ok(Segment::InactiveFor(self.days(n)?));
        }
        if let Some(n) = tok.strip_prefix("contacted_within:") {
            return Ok(Segment::ContactedWithin(self.days(n)?));
        }
        if let Some(rest) = tok.strip_prefix("entered:") {
            let (stage, days) = self.ranged(tok, rest, "segment.entered")?;
            crate::users::check_name(stage, crate::metrics::MAX_STAGE_NAME_BYTES)
                .map_err(|p| InputError::new("segment.entered", p))?;
            return Ok(Segment::Entered {
                stage: stage.to_owned(),
                days,
            });
        }
        for (prefix, last) in [("first:", false), ("last:", true)] {
            if let Some(rest) = tok.strip_prefix(prefix) {
                let Some((dim, value)) = rest.split_once('=') else {
                    return Err(self.error(format!("{tok:?} needs {prefix}DIM=VALUE")));
                };
                crate::users::check_name(dim, crate::timeline::MAX_KIND_BYTES)
                    .map_err(|p| InputError::new("segment.touch", p))?;
                return Ok(Segment::Touch {
                    last,
                    dim: dim.to_owned(),
                    value: value.to_owned(),
                });
            }
        }
        if let Some(rest) = tok.strip_prefix("did:") {
            let (kind, days) = self.ranged(tok, rest, "segment.did")?;
            if let Some((kind, filter)) = kind.split_once('[') {
                return self.did_with(tok, kind, filter, days);
            }
            crate::users::check_name(kind, crate::timeline::MAX_KIND_BYTES)
                .map_err(|p| InputError::new("segment.did", p))?;
            return Ok(Segment::Did {
                kind: kind.to_owned(),
                days,
            });
        }
        self.pos -= 1;
        Err(self.error(format!("unknown atom {tok:?}")))
    }
}

fn check_attr_name(name: &str) -> Result<(), InputError> {
    crate::users::check_name(name, crate::profiles::MAX_ATTRIBUTE_NAME_BYTES)
        .map_err(|p| InputError::new("segment.attr", p))
}
