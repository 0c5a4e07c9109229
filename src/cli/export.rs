//! `stickydb users export`: the users of a segment as CSV, JSON lines or
//! Parquet, streamed page by page from [`crate::Db::export_users`] (bounded
//! memory). Sensitive attributes leave only with `--show-sensitive`
//! (SPEC §5).

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use arrow_array::builder::{
    BooleanBuilder, Date32Builder, Float64Builder, Int64Builder, StringBuilder,
    TimestampMillisecondBuilder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, TimeUnit};

use super::{open_existing, Cli};
use crate::db::{Cell, ColumnType, ExportColumn, ExportGroup, ExportOptions, UserSink};
use crate::time::format_day;
use crate::{Error, InputError, Problem, Segment, Sensitive};

/// Rows per Parquet row group: what the writer holds in memory at most.
pub const PARQUET_ROW_GROUP_ROWS: usize = 65_536;

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// Comma-separated with a header line.
    Csv,
    /// One JSON object per line.
    Jsonl,
    /// Apache Parquet, typed columns (to a file).
    Parquet,
}

fn io(e: impl std::fmt::Display) -> Error {
    Error::Io(std::io::Error::other(e.to_string()))
}

/// A cell as CSV text (null: empty; a date `YYYY-MM-DD`; an instant in ms;
/// a float always with its point or exponent, `3.0`, so a reader types the
/// column as it is typed).
fn text(cell: &Cell) -> String {
    match cell {
        Cell::Text(s) => s.clone(),
        Cell::Int(n) | Cell::Timestamp(n) => n.to_string(),
        Cell::Float(x) => format!("{x:?}"),
        Cell::Bool(b) => b.to_string(),
        Cell::Date(d) => format_day(*d),
        _ => String::new(),
    }
}

fn json(cell: &Cell) -> serde_json::Value {
    match cell {
        Cell::Text(s) => serde_json::json!(s),
        Cell::Int(n) | Cell::Timestamp(n) => serde_json::json!(n),
        Cell::Float(x) => serde_json::json!(x),
        Cell::Bool(b) => serde_json::json!(b),
        Cell::Date(d) => serde_json::json!(format_day(*d)),
        _ => serde_json::Value::Null,
    }
}

/// CSV with a header line.
pub struct CsvSink<W: Write> {
    w: csv::Writer<W>,
}

impl<W: Write> CsvSink<W> {
    /// A sink writing to `out`.
    pub fn new(out: W) -> Self {
        CsvSink {
            w: csv::Writer::from_writer(out),
        }
    }
}

impl<W: Write> UserSink for CsvSink<W> {
    fn columns(&mut self, columns: &[ExportColumn]) -> Result<(), Error> {
        self.w
            .write_record(columns.iter().map(|c| c.name.as_str()))
            .map_err(io)
    }
    fn rows(&mut self, rows: &[Vec<Cell>]) -> Result<(), Error> {
        for row in rows {
            self.w.write_record(row.iter().map(text)).map_err(io)?;
        }
        Ok(())
    }
    fn finish(&mut self) -> Result<(), Error> {
        Ok(self.w.flush()?)
    }
}

/// One JSON object per line, keys in column order.
pub struct JsonlSink<W: Write> {
    out: W,
    names: Vec<String>,
}

impl<W: Write> JsonlSink<W> {
    /// A sink writing to `out`.
    pub fn new(out: W) -> Self {
        JsonlSink {
            out,
            names: Vec::new(),
        }
    }
}

impl<W: Write> UserSink for JsonlSink<W> {
    fn columns(&mut self, columns: &[ExportColumn]) -> Result<(), Error> {
        self.names = columns.iter().map(|c| c.name.clone()).collect();
        Ok(())
    }
    fn rows(&mut self, rows: &[Vec<Cell>]) -> Result<(), Error> {
        for row in rows {
            let obj: serde_json::Map<String, serde_json::Value> = self
                .names
                .iter()
                .cloned()
                .zip(row.iter().map(json))
                .collect();
            let line = serde_json::to_string(&obj).map_err(io)?;
            writeln!(self.out, "{line}")?;
        }
        Ok(())
    }
    fn finish(&mut self) -> Result<(), Error> {
        Ok(self.out.flush()?)
    }
}

/// Apache Parquet through the `arrow`/`parquet` crates: a record batch per
/// page, row groups of [`PARQUET_ROW_GROUP_ROWS`], Snappy pages.
pub struct ParquetSink<W: Write + Send> {
    out: Option<W>,
    writer: Option<parquet::arrow::ArrowWriter<W>>,
    schema: Option<Arc<Schema>>,
    columns: Vec<ExportColumn>,
}

impl<W: Write + Send> ParquetSink<W> {
    /// A sink writing to `out`.
    pub fn new(out: W) -> Self {
        ParquetSink {
            out: Some(out),
            writer: None,
            schema: None,
            columns: Vec::new(),
        }
    }
}

fn data_type(ty: ColumnType) -> DataType {
    match ty {
        ColumnType::Int => DataType::Int64,
        ColumnType::Float => DataType::Float64,
        ColumnType::Bool => DataType::Boolean,
        ColumnType::Timestamp => DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
        ColumnType::Date => DataType::Date32,
        _ => DataType::Utf8,
    }
}

/// Column `i` of `rows` as an Arrow array of the column's type.
fn array(ty: ColumnType, rows: &[Vec<Cell>], i: usize) -> ArrayRef {
    let cells = rows.iter().map(|r| r.get(i).unwrap_or(&Cell::Null));
    macro_rules! build {
        ($builder:expr, $pat:pat => $v:expr) => {{
            let mut b = $builder;
            for c in cells {
                match c {
                    $pat => b.append_value($v),
                    _ => b.append_null(),
                }
            }
            Arc::new(b.finish()) as ArrayRef
        }};
    }
    match ty {
        ColumnType::Int => build!(Int64Builder::new(), Cell::Int(n) => *n),
        ColumnType::Float => build!(Float64Builder::new(), Cell::Float(x) => *x),
        ColumnType::Bool => build!(BooleanBuilder::new(), Cell::Bool(b) => *b),
        ColumnType::Timestamp => build!(
            TimestampMillisecondBuilder::new().with_timezone("UTC"),
            Cell::Timestamp(t) => *t
        ),
        ColumnType::Date => build!(Date32Builder::new(), Cell::Date(d) => *d),
        _ => build!(StringBuilder::new(), Cell::Text(s) => s.as_str()),
    }
}

impl<W: Write + Send> UserSink for ParquetSink<W> {
    fn columns(&mut self, columns: &[ExportColumn]) -> Result<(), Error> {
        let fields: Vec<Field> = columns
            .iter()
            .enumerate()
            .map(|(i, c)| Field::new(&c.name, data_type(c.ty), i > 0))
            .collect();
        let props = parquet::file::properties::WriterProperties::builder()
            .set_compression(parquet::basic::Compression::SNAPPY)
            .set_max_row_group_row_count(Some(PARQUET_ROW_GROUP_ROWS))
            .build();
        let out = self.out.take().ok_or_else(|| io("columns given twice"))?;
        let schema = Arc::new(Schema::new(fields));
        self.writer = Some(
            parquet::arrow::ArrowWriter::try_new(out, schema.clone(), Some(props)).map_err(io)?,
        );
        self.schema = Some(schema);
        self.columns = columns.to_vec();
        Ok(())
    }
    fn rows(&mut self, rows: &[Vec<Cell>]) -> Result<(), Error> {
        let (Some(writer), Some(schema)) = (self.writer.as_mut(), &self.schema) else {
            return Err(io("rows before columns"));
        };
        let arrays: Vec<ArrayRef> = self
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| array(c.ty, rows, i))
            .collect();
        let batch = RecordBatch::try_new(schema.clone(), arrays).map_err(io)?;
        writer.write(&batch).map_err(io)
    }
    fn finish(&mut self) -> Result<(), Error> {
        if let Some(w) = self.writer.take() {
            w.close().map_err(io)?;
        }
        Ok(())
    }
}

/// The flags of `users export`.
#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// Only the users of this segment (default: every user).
    #[arg(long)]
    pub segment: Option<String>,
    /// Column groups after `user`, comma-separated: id, attributes, tags,
    /// metrics, rfm, tier, points (default: metrics,rfm,tier,points).
    #[arg(long, value_delimiter = ',')]
    pub columns: Vec<String>,
    /// Export (and match) attributes marked sensitive too.
    #[arg(long)]
    pub show_sensitive: bool,
    /// The day, YYYY-MM-DD, or `now` (default: the last day with data).
    #[arg(long)]
    pub as_of: Option<String>,
    /// Output file (default: standard output; Parquet needs a file); the
    /// global `--format csv|jsonl|parquet` names its format (default csv).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// `stickydb users export`.
pub(super) fn export_cmd(cli: &Cli, args: &ExportArgs, now: i64) -> Result<(), Error> {
    let format = match cli.output() {
        super::OutputFormat::Jsonl | super::OutputFormat::Json => ExportFormat::Jsonl,
        super::OutputFormat::Parquet => ExportFormat::Parquet,
        _ => ExportFormat::Csv,
    };
    let mut groups = Vec::new();
    for name in &args.columns {
        groups.extend(ExportGroup::parse(name.trim())?);
    }
    let db = open_existing(cli, true)?;
    let at = super::human::as_of(&db, args.as_of.as_deref(), now)?;
    eprintln!("{}", at.line());
    let mut options = ExportOptions::new(at.at_ms, at.day);
    if !args.columns.is_empty() {
        options.groups = groups;
    }
    if args.show_sensitive {
        options.sensitive = Sensitive::Include;
    }
    let segment = args.segment.as_deref().map(Segment::parse).transpose()?;
    let run = |sink: &mut dyn UserSink| {
        super::human::working("exporting users", || {
            db.export_users(segment.as_ref(), &options, sink)
        })
    };
    let n = match (&args.out, format) {
        (None, ExportFormat::Parquet) => {
            return Err(InputError::new(
                "out",
                Problem::Unparsable {
                    reason: "--format parquet writes a file: give --out FILE".into(),
                },
            )
            .into())
        }
        (None, ExportFormat::Csv) => run(&mut CsvSink::new(std::io::stdout().lock()))?,
        (None, ExportFormat::Jsonl) => run(&mut JsonlSink::new(std::io::stdout().lock()))?,
        (Some(path), format) => {
            let f = std::io::BufWriter::new(std::fs::File::create(path)?);
            let n = match format {
                ExportFormat::Csv => run(&mut CsvSink::new(f))?,
                ExportFormat::Jsonl => run(&mut JsonlSink::new(f))?,
                ExportFormat::Parquet => run(&mut ParquetSink::new(f))?,
            };
            eprintln!("{n} users written to {}", path.display());
            n
        }
    };
    debug_assert!(n <= u64::from(u32::MAX), "user ids are u32");
    Ok(())
}
