//! Audiences out (`Db::export_users`): the users of a segment, one row
//! each, in pages of [`EXPORT_PAGE_USERS`] handed to a [`UserSink`], so
//! memory stays bounded whatever the store's size; every row read at one
//! instant (one snapshot). The CLI's CSV, JSON-lines and Parquet writers
//! are sinks (docs/cli.md, "users export").

use std::collections::HashMap;

use roaring::RoaringBitmap;

use super::Snapshot;
use crate::error::{InputError, Problem, Result};
use crate::profiles::{self, AttrValue, Sensitive};
use crate::segments::Segment;
use crate::store::{Cf, Reader, Seeker};

/// Users per page handed to a sink (below the metrics' point-read limit,
/// so a sparse page reads its users one by one, never every user).
pub const EXPORT_PAGE_USERS: usize = 2048;

/// A group of columns an export writes (`--columns`), after `user`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExportGroup {
    /// Every profile attribute, each its own typed column.
    Attributes,
    /// `tags`: the live tags, sorted, comma-separated.
    Tags,
    /// The per-user metrics: first and last seen, active days, purchases,
    /// spend, the CLV summary and the lifecycle stage.
    Metrics,
    /// `r_score`, `f_score`, `m_score`, `rfm_segment`.
    Rfm,
    /// `tier`.
    Tier,
    /// `points_balance`.
    Points,
}

impl ExportGroup {
    /// Parses a `--columns` name (`id` is the user column, always first:
    /// `None`).
    pub fn parse(name: &str) -> std::result::Result<Option<Self>, InputError> {
        Ok(Some(match name {
            "id" | "user" => return Ok(None),
            "attributes" => ExportGroup::Attributes,
            "tags" => ExportGroup::Tags,
            "metrics" => ExportGroup::Metrics,
            "rfm" => ExportGroup::Rfm,
            "tier" => ExportGroup::Tier,
            "points" => ExportGroup::Points,
            other => {
                return Err(InputError::new(
                    "columns",
                    Problem::Unparsable {
                        reason: format!(
                            "{other:?} is not one of id, attributes, tags, metrics, rfm, tier, \
                             points"
                        ),
                    },
                ))
            }
        }))
    }
}

/// The type of an exported column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ColumnType {
    /// Text.
    Text,
    /// A signed integer.
    Int,
    /// A float.
    Float,
    /// A boolean.
    Bool,
    /// An instant, ms since the epoch.
    Timestamp,
    /// A calendar date, days since 1970-01-01.
    Date,
}

/// One exported column.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExportColumn {
    /// Its name (an attribute's own name; `attr.NAME` where that is taken
    /// by a fixed column).
    pub name: String,
    /// Its type: every cell is of it or null.
    pub ty: ColumnType,
}

/// One cell of an exported row.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Cell {
    /// No value.
    Null,
    /// Text.
    Text(String),
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A boolean.
    Bool(bool),
    /// An instant, ms since the epoch.
    Timestamp(i64),
    /// A calendar date, days since 1970-01-01.
    Date(i32),
}

/// Where exported rows go: the columns once, then pages of rows (each as
/// many cells as columns, in their order), then `finish`.
pub trait UserSink {
    /// The columns, before any row.
    fn columns(&mut self, columns: &[ExportColumn]) -> Result<()>;
    /// One page of rows.
    fn rows(&mut self, rows: &[Vec<Cell>]) -> Result<()>;
    /// After the last page.
    fn finish(&mut self) -> Result<()>;
}

/// What an export writes and as of when ([`ExportOptions::new`], then set
/// the fields to change).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ExportOptions {
    /// The column groups, in order, after `user`.
    pub groups: Vec<ExportGroup>,
    /// Whether sensitive attributes are exported (and match the segment).
    pub sensitive: Sensitive,
    /// The instant of the segment's time-relative atoms and of live tags.
    pub now_ms: i64,
    /// The local day of the metrics, RFM and stage columns.
    pub as_of_day: i32,
}

impl ExportOptions {
    /// The default columns (metrics, RFM, tier, points) as of `now_ms` and
    /// its local day `as_of_day`, without sensitive attributes.
    pub fn new(now_ms: i64, as_of_day: i32) -> Self {
        ExportOptions {
            groups: vec![
                ExportGroup::Metrics,
                ExportGroup::Rfm,
                ExportGroup::Tier,
                ExportGroup::Points,
            ],
            sensitive: Sensitive::Exclude,
            now_ms,
            as_of_day,
        }
    }
}

const METRIC_COLUMNS: [(&str, ColumnType); 13] = [
    ("first_seen_day", ColumnType::Date),
    ("last_seen_day", ColumnType::Date),
    ("active_days", ColumnType::Int),
    ("purchase_count", ColumnType::Int),
    ("purchase_days", ColumnType::Int),
    ("total_spend_minor", ColumnType::Int),
    ("first_purchase_day", ColumnType::Date),
    ("last_purchase_day", ColumnType::Date),
    ("frequency", ColumnType::Int),
    ("recency", ColumnType::Int),
    ("T", ColumnType::Int),
    ("monetary_value", ColumnType::Float),
    ("stage", ColumnType::Text),
];

impl Snapshot<'_> {
    /// Writes the users of `segment` (every user when `None`) to `sink`,
    /// one row each in internal id order (see [`crate::Db::export_users`]);
    /// returns how many.
    pub fn export_users(
        &self,
        segment: Option<&Segment>,
        options: &ExportOptions,
        sink: &mut dyn UserSink,
    ) -> Result<u64> {
        let users = match segment {
            Some(s) => self.segment_with(s, options.now_ms, options.sensitive)?,
            None => self.all_users()?,
        };
        let include = options.sensitive == Sensitive::Include;
        let mut attrs: Vec<(String, ColumnType)> = Vec::new();
        if options.groups.contains(&ExportGroup::Attributes) {
            let types = profiles::attribute_types(&self.view, include)?;
            attrs.extend(
                types
                    .into_iter()
                    .map(|(name, kinds)| (name, column_type(kinds))),
            );
            // (the index orders names by length first)
            attrs.sort_by(|a, b| a.0.cmp(&b.0));
        }
        let columns = columns(&options.groups, &attrs);
        sink.columns(&columns)?;
        let rfm = if options.groups.contains(&ExportGroup::Rfm) {
            let report = self.metrics().rfm(options.as_of_day, Some(&users))?;
            report.users.into_iter().map(|r| (r.user_id, r)).collect()
        } else {
            HashMap::new()
        };
        let ctx = PageCtx {
            options,
            attrs: &attrs,
            rfm: &rfm,
        };
        let mut page: Vec<u32> = Vec::with_capacity(EXPORT_PAGE_USERS);
        let mut ids = users.iter().peekable();
        while ids.peek().is_some() {
            page.clear();
            page.extend(ids.by_ref().take(EXPORT_PAGE_USERS));
            let rows = self.page_rows(&page, &ctx)?;
            sink.rows(&rows)?;
        }
        sink.finish()?;
        Ok(users.len())
    }

    /// A page's rows: each family read through one cursor walking the
    /// page's ascending ids (a seek per user, never an iterator or a point
    /// read per user), the metrics by one range scan.
    fn page_rows(&self, page: &[u32], ctx: &PageCtx<'_>) -> Result<Vec<Vec<Cell>>> {
        let o = ctx.options;
        let metrics: HashMap<u32, crate::metrics::UserMetrics> =
            if o.groups.contains(&ExportGroup::Metrics) {
                self.page_metrics(page, o.as_of_day)?
            } else {
                HashMap::new()
            };
        let mut c = Cursors {
            names: self.view.seeker(Cf::UserById)?.stepping(),
            profiles: self.view.seeker(Cf::Profiles)?.stepping(),
            tags: self.view.seeker(Cf::Tags)?.stepping(),
            ledger: self.view.seeker(Cf::Ledger)?.stepping(),
        };
        let mut rows = Vec::with_capacity(page.len());
        for &id in page {
            let key = crate::keys::user(id);
            let name = match c.names.value_of(&key)? {
                Some(bytes) => Cell::Text(crate::users::decode_record(&key, bytes)?.name),
                None => Cell::Null,
            };
            let mut row = vec![name];
            let account = match o
                .groups
                .iter()
                .any(|g| matches!(g, ExportGroup::Tier | ExportGroup::Points))
            {
                true => crate::ledger::read::account_at(&mut c.ledger, id)?,
                false => None,
            };
            for group in &o.groups {
                let user = UserCtx {
                    id,
                    metrics: metrics.get(&id),
                    account: account.as_ref(),
                };
                group_cells(&user, *group, ctx, &mut c, &mut row)?;
            }
            rows.push(row);
        }
        Ok(rows)
    }

    /// The per-user metrics of a page: one range scan of its stretch of
    /// ids when they lie close together, else a point read each (a sparse
    /// segment's page).
    fn page_metrics(
        &self,
        page: &[u32],
        as_of_day: i32,
    ) -> Result<HashMap<u32, crate::metrics::UserMetrics>> {
        let (Some(&lo), Some(&hi)) = (page.first(), page.last()) else {
            return Ok(HashMap::new());
        };
        let set: RoaringBitmap = page.iter().copied().collect();
        let m = self.metrics();
        let rows = if u64::from(hi - lo) <= 4 * set.len() {
            m.users_between(as_of_day, lo, hi.checked_add(1), &set)?
        } else {
            m.users(as_of_day, Some(&set))?
        };
        Ok(rows.into_iter().map(|u| (u.user_id, u)).collect())
    }
}

/// One cursor per family a page reads.
struct Cursors<'s> {
    names: Seeker<'s>,
    profiles: Seeker<'s>,
    tags: Seeker<'s>,
    ledger: Seeker<'s>,
}

/// What a row's cells read of one user, besides the cursors.
struct UserCtx<'a> {
    id: u32,
    metrics: Option<&'a crate::metrics::UserMetrics>,
    account: Option<&'a crate::ledger::Account>,
}

fn group_cells(
    user: &UserCtx<'_>,
    group: ExportGroup,
    ctx: &PageCtx<'_>,
    c: &mut Cursors<'_>,
    row: &mut Vec<Cell>,
) -> Result<()> {
    match group {
        ExportGroup::Attributes => {
            let include = ctx.options.sensitive == Sensitive::Include;
            let values = profiles::attributes_at(&mut c.profiles, user.id, include)?;
            for (name, ty) in ctx.attrs {
                row.push(values.get(name).map_or(Cell::Null, |v| cell_of(v, *ty)));
            }
        }
        ExportGroup::Tags => {
            let tags = profiles::live_tags_at(&mut c.tags, user.id, ctx.options.now_ms)?;
            row.push(Cell::Text(tags.join(",")));
        }
        ExportGroup::Metrics => metric_cells(user.metrics, row),
        ExportGroup::Rfm => {
            let r = ctx.rfm.get(&user.id);
            row.push(r.map_or(Cell::Null, |r| Cell::Int(i64::from(r.r_score))));
            row.push(r.map_or(Cell::Null, |r| Cell::Int(i64::from(r.f_score))));
            row.push(r.map_or(Cell::Null, |r| Cell::Int(i64::from(r.m_score))));
            row.push(r.map_or(Cell::Null, |r| Cell::Text(r.segment.to_owned())));
        }
        ExportGroup::Tier => row.push(
            user.account
                .and_then(|a| a.tier.clone())
                .map_or(Cell::Null, Cell::Text),
        ),
        ExportGroup::Points => row.push(Cell::Int(user.account.map_or(0, |a| a.balance))),
    }
    Ok(())
}

struct PageCtx<'a> {
    options: &'a ExportOptions,
    attrs: &'a [(String, ColumnType)],
    rfm: &'a HashMap<u32, crate::metrics::UserRfm>,
}

fn columns(groups: &[ExportGroup], attrs: &[(String, ColumnType)]) -> Vec<ExportColumn> {
    let col = |name: &str, ty| ExportColumn {
        name: name.to_owned(),
        ty,
    };
    let mut fixed: Vec<ExportColumn> = vec![col("user", ColumnType::Text)];
    let mut out_groups: Vec<Vec<ExportColumn>> = Vec::new();
    for g in groups {
        out_groups.push(match g {
            ExportGroup::Attributes => Vec::new(),
            ExportGroup::Tags => vec![col("tags", ColumnType::Text)],
            ExportGroup::Metrics => METRIC_COLUMNS.iter().map(|(n, t)| col(n, *t)).collect(),
            ExportGroup::Rfm => vec![
                col("r_score", ColumnType::Int),
                col("f_score", ColumnType::Int),
                col("m_score", ColumnType::Int),
                col("rfm_segment", ColumnType::Text),
            ],
            ExportGroup::Tier => vec![col("tier", ColumnType::Text)],
            ExportGroup::Points => vec![col("points_balance", ColumnType::Int)],
        });
    }
    let taken: Vec<String> = out_groups
        .iter()
        .flatten()
        .map(|c| c.name.clone())
        .collect();
    let mut out = Vec::new();
    out.append(&mut fixed);
    for (g, cols) in groups.iter().zip(out_groups) {
        if *g == ExportGroup::Attributes {
            for (name, ty) in attrs {
                let clash = name == "user" || taken.contains(name);
                let name = if clash {
                    format!("attr.{name}")
                } else {
                    name.clone()
                };
                out.push(ExportColumn { name, ty: *ty });
            }
        } else {
            out.extend(cols);
        }
    }
    out
}

fn metric_cells(m: Option<&crate::metrics::UserMetrics>, row: &mut Vec<Cell>) {
    let day = |d: Option<i32>| d.map_or(Cell::Null, Cell::Date);
    let int = |n: Option<i64>| n.map_or(Cell::Null, Cell::Int);
    let count = |n: u64| Cell::Int(i64::try_from(n).unwrap_or(i64::MAX));
    let clv = m.and_then(|u| u.clv);
    row.extend([
        day(m.and_then(|u| u.first_seen_day)),
        day(m.and_then(|u| u.last_seen_day)),
        count(m.map_or(0, |u| u.active_days)),
        count(m.map_or(0, |u| u.purchase_count)),
        count(m.map_or(0, |u| u.purchase_days)),
        Cell::Int(m.map_or(0, |u| u.total_spend_minor)),
        day(m.and_then(|u| u.first_purchase_day)),
        day(m.and_then(|u| u.last_purchase_day)),
        int(clv.map(|c| i64::try_from(c.frequency).unwrap_or(i64::MAX))),
        int(clv.map(|c| c.recency)),
        int(clv.map(|c| c.t)),
        clv.map_or(Cell::Null, |c| Cell::Float(c.monetary_value)),
        m.and_then(|u| u.stage.clone())
            .map_or(Cell::Null, Cell::Text),
    ]);
}

/// The column type of an attribute whose values have the types in `kinds`
/// (one bit per [`profiles::AttrKind`]): one type as itself, integers with
/// floats as floats, any other mix as text.
fn column_type(kinds: u8) -> ColumnType {
    use profiles::AttrKind as K;
    let only = |k: K| kinds == k.bit();
    if only(K::Int) {
        ColumnType::Int
    } else if only(K::Float) || kinds == K::Int.bit() | K::Float.bit() {
        ColumnType::Float
    } else if only(K::Bool) {
        ColumnType::Bool
    } else if only(K::Timestamp) {
        ColumnType::Timestamp
    } else if only(K::Date) {
        ColumnType::Date
    } else {
        ColumnType::Text
    }
}

/// An attribute value as a cell of a column of type `ty` (a text column
/// holds the value as printed).
fn cell_of(v: &AttrValue, ty: ColumnType) -> Cell {
    match (v, ty) {
        (AttrValue::Int(n), ColumnType::Int) => Cell::Int(*n),
        (AttrValue::Int(n), ColumnType::Float) => Cell::Float(*n as f64),
        (AttrValue::Float(x), ColumnType::Float) => Cell::Float(*x),
        (AttrValue::Bool(b), ColumnType::Bool) => Cell::Bool(*b),
        (AttrValue::Timestamp(t), ColumnType::Timestamp) => Cell::Timestamp(*t),
        (AttrValue::Date(d), ColumnType::Date) => Cell::Date(*d),
        (v, _) => Cell::Text(v.to_string()),
    }
}
