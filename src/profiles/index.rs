//! The attribute index (format 11; docs/metrics.md, "Targeting"): for
//! every attribute and typed value, the set of users holding it, kept in
//! the batch that changes the attribute, so `attr:` atoms read a few
//! bitmaps instead of every profile.
//!
//! A stored attribute has two or three entries: "has it" (`has:`), its
//! typed value, and for a calendar date its month and day (birthdays,
//! anniversaries). Sensitive values have entries of their own, read only
//! when the caller may see sensitive attributes.

use roaring::RoaringBitmap;

use super::{AttrOp, AttrValue, StoredAttr};
use crate::error::Result;
use crate::keys::{self, attrs};
use crate::store::merge::BitmapDelta;
use crate::store::{Batch, Cf, Reader};

/// The entries (keys without their chunk) of attribute `name` holding `a`.
fn entries(name: &str, a: &StoredAttr) -> Vec<Vec<u8>> {
    let flag = if a.sensitive { attrs::SENSITIVE } else { 0 };
    let value = |space: u8, bytes: &[u8]| {
        let mut k = attrs::space_prefix(name, space | flag);
        k.extend_from_slice(bytes);
        k
    };
    let mut out = vec![attrs::space_prefix(name, attrs::SPACE_EXISTS | flag)];
    match &a.value {
        AttrValue::Str(s) => out.push(value(attrs::SPACE_STR, &attrs::text(s))),
        AttrValue::Int(n) => out.push(value(attrs::SPACE_INT, &attrs::int(*n))),
        // (+ 0.0 makes −0 the +0 it equals)
        AttrValue::Float(x) => out.push(value(attrs::SPACE_FLOAT, &attrs::float(x + 0.0))),
        AttrValue::Bool(b) => out.push(value(attrs::SPACE_BOOL, &[u8::from(*b)])),
        AttrValue::Timestamp(t) => out.push(value(attrs::SPACE_TIMESTAMP, &attrs::int(*t))),
        AttrValue::Date(d) => {
            out.push(value(attrs::SPACE_DATE, &attrs::date(*d)));
            if let Some((m, day)) = month_day(*d) {
                out.push(value(attrs::SPACE_MONTH_DAY, &attrs::month_day(m, day)));
            }
        }
    }
    out
}

fn month_day(day: i32) -> Option<(u8, u8)> {
    use chrono::Datelike;
    let d = crate::time::day_to_date(day)?;
    Some((d.month() as u8, d.day() as u8))
}

/// Puts into `batch` the index change of `user_id`'s attribute `name`
/// going from `old` to `new` (`None`: absent). Unchanged entries get no
/// operand.
pub(crate) fn change(
    batch: &mut Batch,
    user_id: u32,
    name: &str,
    old: Option<StoredAttr>,
    new: Option<&StoredAttr>,
) {
    let before = old.map(|a| entries(name, &a)).unwrap_or_default();
    let after = new.map(|a| entries(name, a)).unwrap_or_default();
    for e in before.iter().filter(|e| !after.contains(e)) {
        let op = BitmapDelta::remove(user_id).encode();
        batch.merge(Cf::AttrIndex, attrs::with_chunk(e, user_id), op);
    }
    for e in after.iter().filter(|e| !before.contains(e)) {
        let op = BitmapDelta::add(user_id).encode();
        batch.merge(Cf::AttrIndex, attrs::with_chunk(e, user_id), op);
    }
}

/// The index keys (with chunks) `user_id`'s attribute `name` holding `a`
/// belongs under (for rebuilding and verifying).
pub(crate) fn keys_of(user_id: u32, name: &str, a: &StoredAttr) -> Vec<Vec<u8>> {
    entries(name, a)
        .iter()
        .map(|e| attrs::with_chunk(e, user_id))
        .collect()
}

/// The type of a stored attribute value, as the index's spaces keep it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AttrKind {
    Str,
    Int,
    Float,
    Bool,
    Timestamp,
    Date,
}

impl AttrKind {
    /// Its bit in a set of kinds.
    pub(crate) fn bit(self) -> u8 {
        1 << (self as u8)
    }

    fn of_space(space: u8) -> Option<AttrKind> {
        Some(match space & !attrs::SENSITIVE {
            attrs::SPACE_STR => AttrKind::Str,
            attrs::SPACE_INT => AttrKind::Int,
            attrs::SPACE_FLOAT => AttrKind::Float,
            attrs::SPACE_BOOL => AttrKind::Bool,
            attrs::SPACE_TIMESTAMP => AttrKind::Timestamp,
            attrs::SPACE_DATE => AttrKind::Date,
            _ => return None,
        })
    }
}

/// Every attribute some user holds (sensitive values only with `include`),
/// by name, with the set of its values' kinds ([`AttrKind::bit`]): a seek
/// per (attribute, type), never a read of every entry. An entry emptied by
/// removals and not yet compacted away counts while its space has no other
/// entry (its kind may widen a column; never a wrong value).
pub(crate) fn attribute_types(reader: &impl Reader, include: bool) -> Result<Vec<(String, u8)>> {
    let mut out: Vec<(String, u8)> = Vec::new();
    let mut from: Vec<u8> = Vec::new();
    loop {
        let Some(item) = reader.read_range(Cf::AttrIndex, &from, None)?.next() else {
            break;
        };
        let (k, v) = item?;
        let (name, space, _, _) = attrs::split(Cf::AttrIndex.name(), &k)?;
        let counts = include || space & attrs::SENSITIVE == 0;
        let empty = crate::store::merge::decode_bitmap(&v).is_some_and(|s| s.is_empty());
        if counts && !empty {
            if let Some(kind) = AttrKind::of_space(space) {
                match out.last_mut() {
                    Some((n, kinds)) if *n == name => *kinds |= kind.bit(),
                    _ => out.push((name.clone(), kind.bit())),
                }
            }
        }
        // an empty entry: the next key; else past this (name, space)
        from = if empty {
            keys::prefix_successor(&k).unwrap_or_default()
        } else {
            keys::prefix_successor(&attrs::space_prefix(&name, space)).unwrap_or_default()
        };
        if from.is_empty() {
            break;
        }
    }
    Ok(out)
}

/// What an `attr:`-family atom asks of one attribute.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Cond<'a> {
    /// Equal to the literal read as each type it parses as.
    Eq(&'a str),
    /// Compared with the literal (ranges, prefix).
    Cmp(AttrOp, &'a str),
    /// Holds the attribute at all.
    Has,
    /// A date whose next anniversary falls on one of `days` local days
    /// starting with `today` (the year is not compared).
    Anniversary {
        /// The as-of local day.
        today: i32,
        /// The window's length in days.
        days: u32,
    },
}

/// How a lookup reads: whether sensitive values count, and the store's
/// offset (a date compared with an instant stands for its local day).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Lookup {
    /// Sensitive values match too.
    pub sensitive: bool,
    /// The store's UTC offset.
    pub utc_offset_minutes: i32,
}

/// Users whose attribute `name` meets `cond`.
pub(crate) fn users(
    reader: &impl Reader,
    name: &str,
    cond: Cond<'_>,
    how: Lookup,
) -> Result<RoaringBitmap> {
    let flags: &[u8] = if how.sensitive {
        &[0, attrs::SENSITIVE]
    } else {
        &[0]
    };
    let mut out = RoaringBitmap::new();
    for &flag in flags {
        for (from, until) in ranges(name, flag, cond, how.utc_offset_minutes) {
            out |= reader.read_set_range(Cf::AttrIndex, &from, until)?;
        }
    }
    Ok(out)
}

/// A key range `[from, until)` of the index.
type Range = (Vec<u8>, Option<Vec<u8>>);

fn ranges(name: &str, flag: u8, cond: Cond<'_>, offset: i32) -> Vec<Range> {
    let space = |s: u8| attrs::space_prefix(name, s | flag);
    let exact = |s: u8, bytes: &[u8]| {
        let mut k = space(s);
        k.extend_from_slice(bytes);
        let until = keys::prefix_successor(&k);
        (k, until)
    };
    match cond {
        Cond::Has => vec![exact(attrs::SPACE_EXISTS, &[])],
        Cond::Eq(v) => {
            let mut out = vec![exact(attrs::SPACE_STR, &attrs::text(v))];
            if let Ok(n) = v.parse::<i64>() {
                out.push(exact(attrs::SPACE_INT, &attrs::int(n)));
                out.push(exact(attrs::SPACE_TIMESTAMP, &attrs::int(n)));
            }
            if let Some(x) = v.parse::<f64>().ok().filter(|x| x.is_finite()) {
                out.push(exact(attrs::SPACE_FLOAT, &attrs::float(x + 0.0)));
            }
            if let Ok(b) = v.parse::<bool>() {
                out.push(exact(attrs::SPACE_BOOL, &[u8::from(b)]));
            }
            if let Ok(d) = crate::time::parse_day(v) {
                out.push(exact(attrs::SPACE_DATE, &attrs::date(d)));
            }
            out
        }
        Cond::Cmp(AttrOp::Prefix, v) => vec![exact(attrs::SPACE_STR, &attrs::text_prefix(v))],
        Cond::Cmp(op, v) => compare(&space, op, v, offset),
        Cond::Anniversary { today, days } => month_days(today, days)
            .into_iter()
            .map(|(m, d)| exact(attrs::SPACE_MONTH_DAY, &attrs::month_day(m, d)))
            .collect(),
    }
}

/// A literal of a comparison, as the first type it parses as.
enum Literal {
    Int(i64),
    Float(f64),
    Date(i32),
    Instant(i64),
    Text,
}

fn literal(v: &str) -> Literal {
    if let Ok(n) = v.parse::<i64>() {
        return Literal::Int(n);
    }
    if let Some(x) = v.parse::<f64>().ok().filter(|x| x.is_finite()) {
        return Literal::Float(x + 0.0);
    }
    if let Ok(d) = crate::time::parse_day(v) {
        return Literal::Date(d);
    }
    match chrono::DateTime::parse_from_rfc3339(v) {
        Ok(t) => Literal::Instant(t.timestamp_millis()),
        Err(_) => Literal::Text,
    }
}

fn compare(space: &impl Fn(u8) -> Vec<u8>, op: AttrOp, v: &str, offset: i32) -> Vec<Range> {
    let ints = |s: u8, bounds: Option<(i64, i64)>| {
        bounds.map(|(lo, hi)| within(&space(s), &attrs::int(lo), &attrs::int(hi)))
    };
    let ordered = |s: u8, bytes: &[u8]| Some(beyond(&space(s), op, bytes));
    let out = match literal(v) {
        Literal::Int(n) => vec![
            ints(attrs::SPACE_INT, int_bounds(op, n)),
            ints(attrs::SPACE_TIMESTAMP, int_bounds(op, n)),
            ordered(attrs::SPACE_FLOAT, &attrs::float(n as f64)),
        ],
        Literal::Float(x) => vec![
            ints(attrs::SPACE_INT, float_bounds(op, x)),
            ints(attrs::SPACE_TIMESTAMP, float_bounds(op, x)),
            ordered(attrs::SPACE_FLOAT, &attrs::float(x)),
        ],
        Literal::Date(d) => vec![
            int_bounds(op, i64::from(d)).map(|(lo, hi)| {
                let clamp = |x: i64| x.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32;
                within(
                    &space(attrs::SPACE_DATE),
                    &attrs::date(clamp(lo)),
                    &attrs::date(clamp(hi)),
                )
            }),
            ints(attrs::SPACE_TIMESTAMP, day_bounds(op, d, offset)),
            ordered(attrs::SPACE_STR, &attrs::text(v)),
        ],
        Literal::Instant(t) => vec![ints(attrs::SPACE_TIMESTAMP, int_bounds(op, t))],
        Literal::Text => vec![ordered(attrs::SPACE_STR, &attrs::text(v))],
    };
    out.into_iter().flatten().collect()
}

/// The keys of `space` whose value bytes lie in `[lo, hi]`.
fn within(space: &[u8], lo: &[u8], hi: &[u8]) -> Range {
    let mut from = space.to_vec();
    from.extend_from_slice(lo);
    let mut last = space.to_vec();
    last.extend_from_slice(hi);
    (from, keys::prefix_successor(&last))
}

/// The keys of `space` whose value bytes compare with `bytes` as `op` says.
fn beyond(space: &[u8], op: AttrOp, bytes: &[u8]) -> Range {
    let mut at = space.to_vec();
    at.extend_from_slice(bytes);
    let end = keys::prefix_successor(space);
    match op {
        AttrOp::Ge => (at, end),
        // (the space byte is below 0xff: a successor always exists)
        AttrOp::Gt => (
            keys::prefix_successor(&at).unwrap_or_else(|| at.clone()),
            end,
        ),
        AttrOp::Le => (space.to_vec(), keys::prefix_successor(&at)),
        AttrOp::Lt | AttrOp::Prefix => (space.to_vec(), Some(at)),
    }
}

/// Inclusive integer bounds of `op n`; `None` when nothing can meet it.
fn int_bounds(op: AttrOp, n: i64) -> Option<(i64, i64)> {
    match op {
        AttrOp::Ge => Some((n, i64::MAX)),
        AttrOp::Gt => Some((n.checked_add(1)?, i64::MAX)),
        AttrOp::Le => Some((i64::MIN, n)),
        AttrOp::Lt | AttrOp::Prefix => Some((i64::MIN, n.checked_sub(1)?)),
    }
}

/// Inclusive integer bounds of `op x` for a non-integer literal.
fn float_bounds(op: AttrOp, x: f64) -> Option<(i64, i64)> {
    // 2^63: at and above it no i64 lies; `as` saturates below it
    const TOP: f64 = 9_223_372_036_854_775_808.0;
    let (lo, hi) = match op {
        AttrOp::Ge => (x.ceil(), TOP),
        AttrOp::Gt => (x.floor() + 1.0, TOP),
        AttrOp::Le => (-TOP, x.floor()),
        AttrOp::Lt | AttrOp::Prefix => (-TOP, x.ceil() - 1.0),
    };
    (lo < TOP && hi >= -TOP && lo <= hi).then_some((lo as i64, hi as i64))
}

/// Inclusive instant bounds of `op D` for local day `D`: the whole day.
fn day_bounds(op: AttrOp, day: i32, offset: i32) -> Option<(i64, i64)> {
    let start = crate::time::local_midnight_ms(day, offset);
    let next = crate::time::local_midnight_ms(day + 1, offset);
    match op {
        AttrOp::Ge => Some((start, i64::MAX)),
        AttrOp::Gt => Some((next, i64::MAX)),
        AttrOp::Le => Some((i64::MIN, next - 1)),
        AttrOp::Lt | AttrOp::Prefix => Some((i64::MIN, start - 1)),
    }
}

/// The (month, day) pairs whose anniversary falls on one of `days` local
/// days from `today`: 29 February is kept on 28 February in common years.
fn month_days(today: i32, days: u32) -> Vec<(u8, u8)> {
    let mut out: Vec<(u8, u8)> = Vec::new();
    // (a year of days covers every date; more adds nothing)
    for day in today..today.saturating_add(days.min(366) as i32) {
        let Some(md) = month_day(day) else { continue };
        out.push(md);
        let common = crate::time::day_to_date(day).is_some_and(|d| {
            chrono::NaiveDate::from_ymd_opt(chrono::Datelike::year(&d), 2, 29).is_none()
        });
        if md == (2, 28) && common {
            out.push((2, 29));
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// The calendar date (days since 1970-01-01) `user_id`'s attribute `name`
/// holds, if it is a date: a birthday reward reads the user's birthday.
pub(crate) fn date_attr(
    store: &crate::store::Store,
    user_id: u32,
    name: &str,
) -> Result<Option<i32>> {
    let key = keys::user_and_name(user_id, name);
    let a: Option<StoredAttr> = store.get(Cf::Profiles, &key)?;
    Ok(a.and_then(|a| match a.value {
        AttrValue::Date(day) => Some(day),
        _ => None,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_29th_of_february_is_kept_on_the_28th_in_common_years() {
        let day = |s: &str| crate::time::parse_day(s).unwrap_or(0);
        assert_eq!(month_days(day("2025-02-28"), 1), [(2, 28), (2, 29)]);
        assert_eq!(month_days(day("2024-02-28"), 1), [(2, 28)]);
        assert_eq!(month_days(day("2024-02-28"), 2), [(2, 28), (2, 29)]);
        assert_eq!(month_days(day("2025-12-30"), 4).len(), 4);
        assert_eq!(month_days(day("2025-03-01"), 400).len(), 366);
    }

    #[test]
    fn integer_bounds_round_towards_the_literal() {
        assert_eq!(float_bounds(AttrOp::Ge, 18.5), Some((19, i64::MAX)));
        assert_eq!(float_bounds(AttrOp::Gt, 18.0), Some((19, i64::MAX)));
        assert_eq!(float_bounds(AttrOp::Le, 18.5), Some((i64::MIN, 18)));
        assert_eq!(float_bounds(AttrOp::Lt, 18.0), Some((i64::MIN, 17)));
        assert_eq!(float_bounds(AttrOp::Ge, 1e300), None);
        assert_eq!(int_bounds(AttrOp::Gt, i64::MAX), None);
    }
}
