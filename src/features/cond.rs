//! Tag-rule conditions: comparisons of numeric features with numbers,
//! combined with `and`, `or`, `not` and parentheses (`and` binds tighter
//! than `or`). A keyed rule compares `NAME[key]`, one key value at a time.

use super::defs::{Definition, MAX_CONDITION_BYTES};
use crate::error::Problem;

/// Deepest nesting of parentheses and `not`.
const MAX_DEPTH: usize = 32;

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CmpOp {
    Ge,
    Gt,
    Le,
    Lt,
    Eq,
    Ne,
}

/// A parsed condition; features by their definition's index.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Cond {
    Cmp {
        def: usize,
        keyed: bool,
        op: CmpOp,
        value: f64,
    },
    And(Vec<Cond>),
    Or(Vec<Cond>),
    Not(Box<Cond>),
}

impl Cond {
    /// Whether the condition holds; `value(def, key)` is a feature's
    /// number (`None`: no value, and every comparison with it is false).
    pub fn holds(
        &self,
        value: &dyn Fn(usize, Option<&str>) -> Option<f64>,
        key: Option<&str>,
    ) -> bool {
        match self {
            Cond::Cmp {
                def,
                keyed,
                op,
                value: bound,
            } => {
                let Some(v) = value(*def, if *keyed { key } else { None }) else {
                    return false;
                };
                match op {
                    CmpOp::Ge => v >= *bound,
                    CmpOp::Gt => v > *bound,
                    CmpOp::Le => v <= *bound,
                    CmpOp::Lt => v < *bound,
                    CmpOp::Eq => v == *bound,
                    CmpOp::Ne => v != *bound,
                }
            }
            Cond::And(parts) => parts.iter().all(|c| c.holds(value, key)),
            Cond::Or(parts) => parts.iter().any(|c| c.holds(value, key)),
            Cond::Not(c) => !c.holds(value, key),
        }
    }

    /// The definitions the condition reads.
    pub fn defs(&self, out: &mut Vec<usize>) {
        match self {
            Cond::Cmp { def, .. } => out.push(*def),
            Cond::And(parts) | Cond::Or(parts) => parts.iter().for_each(|c| c.defs(out)),
            Cond::Not(c) => c.defs(out),
        }
    }

    /// The keyed definitions the condition reads as `NAME[key]`.
    pub fn keyed_defs(&self, out: &mut Vec<usize>) {
        match self {
            Cond::Cmp {
                def, keyed: true, ..
            } => out.push(*def),
            Cond::Cmp { .. } => {}
            Cond::And(parts) | Cond::Or(parts) => parts.iter().for_each(|c| c.keyed_defs(out)),
            Cond::Not(c) => c.keyed_defs(out),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Name(String),
    Key,
    Op(CmpOp),
    Num(f64),
    Open,
    Close,
    And,
    Or,
    Not,
}

fn tokens(text: &str) -> Result<Vec<Token>, String> {
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(c) = text[i..].chars().next() {
        let rest = &text[i..];
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let two = rest.get(..2).unwrap_or("");
        let (token, len) = match (c, two) {
            (_, ">=") => (Token::Op(CmpOp::Ge), 2),
            (_, "<=") => (Token::Op(CmpOp::Le), 2),
            (_, "==") => (Token::Op(CmpOp::Eq), 2),
            (_, "!=") => (Token::Op(CmpOp::Ne), 2),
            ('>', _) => (Token::Op(CmpOp::Gt), 1),
            ('<', _) => (Token::Op(CmpOp::Lt), 1),
            ('(', _) => (Token::Open, 1),
            (')', _) => (Token::Close, 1),
            _ if rest.starts_with("[key]") => (Token::Key, 5),
            _ if c.is_ascii_digit() || c == '-' || c == '.' => {
                let len = rest
                    .find(|ch: char| !(ch.is_ascii_digit() || "-.eE+".contains(ch)))
                    .unwrap_or(rest.len());
                let n: f64 = rest[..len]
                    .parse()
                    .map_err(|_| format!("bad number {:?} at byte {i}", &rest[..len]))?;
                if !n.is_finite() {
                    return Err(format!("number at byte {i} is not finite"));
                }
                (Token::Num(n), len)
            }
            _ if c.is_ascii_lowercase() || c == '_' => {
                let len = rest
                    .find(|ch: char| !(ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '_'))
                    .unwrap_or(rest.len());
                let word = &rest[..len];
                let t = match word {
                    "and" => Token::And,
                    "or" => Token::Or,
                    "not" => Token::Not,
                    _ => Token::Name(word.to_owned()),
                };
                (t, len)
            }
            _ => return Err(format!("unexpected {c:?} at byte {i}")),
        };
        out.push(token);
        i += len;
    }
    Ok(out)
}

struct Parser<'a> {
    tokens: Vec<Token>,
    at: usize,
    defs: &'a [Definition],
    keyed_rule: bool,
}

impl Parser<'_> {
    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.at).cloned();
        self.at += 1;
        t
    }

    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn or(&mut self, depth: usize) -> Result<Cond, String> {
        let mut parts = vec![self.and(depth)?];
        while self.peek() == Some(&Token::Or) {
            self.at += 1;
            parts.push(self.and(depth)?);
        }
        Ok(if parts.len() == 1 {
            parts.remove(0)
        } else {
            Cond::Or(parts)
        })
    }

    fn and(&mut self, depth: usize) -> Result<Cond, String> {
        let mut parts = vec![self.factor(depth)?];
        while self.peek() == Some(&Token::And) {
            self.at += 1;
            parts.push(self.factor(depth)?);
        }
        Ok(if parts.len() == 1 {
            parts.remove(0)
        } else {
            Cond::And(parts)
        })
    }

    fn factor(&mut self, depth: usize) -> Result<Cond, String> {
        if depth > MAX_DEPTH {
            return Err(format!("nested deeper than {MAX_DEPTH}"));
        }
        match self.next() {
            Some(Token::Not) => Ok(Cond::Not(Box::new(self.factor(depth + 1)?))),
            Some(Token::Open) => {
                let inner = self.or(depth + 1)?;
                match self.next() {
                    Some(Token::Close) => Ok(inner),
                    _ => Err("a ( is not closed".into()),
                }
            }
            Some(Token::Name(name)) => self.comparison(&name),
            other => Err(format!("expected a feature, not, or (; found {other:?}")),
        }
    }

    fn comparison(&mut self, name: &str) -> Result<Cond, String> {
        let def = self
            .defs
            .iter()
            .position(|d| d.name == name)
            .ok_or_else(|| format!("no feature named {name:?}"))?;
        let d = &self.defs[def];
        if !d.op.is_numeric() {
            return Err(format!("{name} ({}) is not a number", d.op.name()));
        }
        let keyed = self.peek() == Some(&Token::Key);
        if keyed {
            self.at += 1;
            if !self.keyed_rule {
                return Err(format!("{name}[key] in a rule whose tag has no {{key}}"));
            }
        }
        if keyed != d.is_keyed() {
            return Err(match keyed {
                true => format!("{name} is not keyed"),
                false => format!("{name} is keyed: compare {name}[key]"),
            });
        }
        let op = match self.next() {
            Some(Token::Op(op)) => op,
            other => {
                return Err(format!(
                    "expected a comparison after {name}; found {other:?}"
                ))
            }
        };
        match self.next() {
            Some(Token::Num(value)) => Ok(Cond::Cmp {
                def,
                keyed,
                op,
                value,
            }),
            other => Err(format!(
                "expected a number after the comparison; found {other:?}"
            )),
        }
    }
}

/// Parses `text` against `defs`; a keyed rule must read a keyed feature.
pub(crate) fn parse(text: &str, defs: &[Definition], keyed_rule: bool) -> Result<Cond, Problem> {
    if text.len() > MAX_CONDITION_BYTES {
        return Err(Problem::TooLong {
            len_bytes: text.len(),
            max_bytes: MAX_CONDITION_BYTES,
        });
    }
    let invalid = |reason: String| Problem::Invalid { reason };
    let mut p = Parser {
        tokens: tokens(text).map_err(invalid)?,
        at: 0,
        defs,
        keyed_rule,
    };
    let cond = p.or(0).map_err(invalid)?;
    if p.at < p.tokens.len() {
        return Err(invalid(format!(
            "unexpected {:?} after the condition",
            p.tokens[p.at]
        )));
    }
    let mut keyed = Vec::new();
    cond.keyed_defs(&mut keyed);
    if keyed_rule && keyed.is_empty() {
        return Err(invalid(
            "a tag with {key} needs a NAME[key] comparison".into(),
        ));
    }
    Ok(cond)
}
