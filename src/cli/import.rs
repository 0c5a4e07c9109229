//! `stickydb import`: events or profile records from JSON-lines or CSV files.
//!
//! Parsing only: every record becomes an [`Event`] or a [`ProfileUpdate`] and
//! goes through the library's batch calls, which validate it again. A bad
//! record is reported with its file and line. In strict mode (the default)
//! the first bad record stops the import and nothing of its batch is
//! written; with `--skip-bad N` up to N bad records are reported and left out.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Deserialize;
use serde_json::Value;

use super::{open_existing, parse_utc_offset, print_json, Cli};
use crate::{
    AttrValue, Db, Error, Event, InputError, Options, Problem, ProfileUpdate, RecordOutcome,
    TagSource,
};

/// Records per write batch.
pub const IMPORT_BATCH: usize = 1_000;
/// Longest accepted input line.
pub const MAX_LINE_BYTES: usize = 1 << 20;

/// File format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One JSON object per line.
    Jsonl,
    /// A header line, then one record per line.
    Csv,
}

/// What the records are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Records {
    /// Events: user, kind, ts, event_id, session_id, amount, properties,
    /// share_id, via, group_id, group_target, group_deadline.
    Events,
    /// Profiles: user, attributes, tags.
    Profiles,
    /// Identity merges: from, into, id, force (applied in file order, each
    /// one atomic write).
    Merges,
}

/// The closing summary.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Summary {
    /// Records written.
    pub imported: u64,
    /// Events already in the store (same user and event id).
    pub duplicates: u64,
    /// Bad records left out (`--skip-bad`).
    pub rejected: u64,
    /// Each rejected record: `file:line: why`.
    pub problems: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProfile {
    user: String,
    #[serde(default)]
    attributes: BTreeMap<String, Value>,
    #[serde(default)]
    tags: Vec<String>,
}

/// One parsed record.
enum Record {
    Event(Event),
    Profile(String, ProfileUpdate),
    Merge(super::identity::MergeRecord),
}

fn unparsable(field: &'static str, reason: impl Into<String>) -> InputError {
    InputError::new(
        field,
        Problem::Unparsable {
            reason: reason.into(),
        },
    )
}

fn profile(raw: RawProfile, now_ms: i64) -> Result<(String, ProfileUpdate), InputError> {
    let mut u = ProfileUpdate::new();
    for (k, v) in raw.attributes {
        // `{"value": V, "sensitive": true}` marks an attribute sensitive
        let (v, sensitive) = match v {
            Value::Object(mut o) if o.contains_key("sensitive") => {
                let sensitive = o.remove("sensitive").and_then(|s| s.as_bool());
                match (o.remove("value"), sensitive) {
                    (Some(v), Some(s)) if o.is_empty() => (v, s),
                    _ => {
                        let why = "a sensitive attribute is {\"value\": …, \"sensitive\": true}";
                        return Err(unparsable("attributes", format!("{k}: {why}")));
                    }
                }
            }
            v => (v, false),
        };
        u = match attr_value(&k, v)? {
            None => u.unset(k),
            Some(value) if sensitive => u.set_sensitive(k, value),
            Some(value) => u.set(k, value),
        };
    }
    for t in raw.tags {
        u = u.tag(t, TagSource::Manual, now_ms, None);
    }
    u.validate()?;
    Ok((raw.user, u))
}

/// A profile attribute's JSON as a typed value (`None`: null, unset):
/// scalars as themselves, `{"date": "YYYY-MM-DD"}` a calendar date,
/// `{"timestamp_ms": N}` an instant — as `user --json` prints them.
fn attr_value(name: &str, v: Value) -> Result<Option<AttrValue>, InputError> {
    let bad = |why: String| Err(unparsable("attributes", format!("{name}: {why}")));
    Ok(Some(match v {
        Value::Null => return Ok(None),
        Value::Bool(b) => AttrValue::Bool(b),
        Value::String(s) => AttrValue::Str(s),
        Value::Number(n) => match n.as_i64() {
            Some(i) => AttrValue::Int(i),
            None => AttrValue::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::Object(o) if o.len() == 1 => match o.iter().next() {
            Some((k, Value::String(d))) if k == "date" => match crate::time::parse_day(d) {
                Ok(day) => AttrValue::Date(day),
                Err(p) => return bad(p.to_string()),
            },
            Some((k, Value::Number(n))) if k == "timestamp_ms" => match n.as_i64() {
                Some(ms) => AttrValue::Timestamp(ms),
                None => return bad(format!("timestamp_ms {n} is not an integer")),
            },
            _ => return bad("an object must be {\"date\": …} or {\"timestamp_ms\": …}".into()),
        },
        other => return bad(format!("{other} is not a scalar, a date or a timestamp_ms")),
    }))
}

fn from_json(records: Records, v: Value, now_ms: i64) -> Result<Record, InputError> {
    let bad = |e: serde_json::Error| unparsable("record", e.to_string());
    match records {
        Records::Events => Ok(Record::Event(crate::timeline::json::event(v)?)),
        Records::Profiles => {
            let (user, update) = profile(serde_json::from_value(v).map_err(bad)?, now_ms)?;
            Ok(Record::Profile(user, update))
        }
        Records::Merges => Ok(Record::Merge(serde_json::from_value(v).map_err(bad)?)),
    }
}

/// A CSV row as the JSON object it stands for: empty cells are absent;
/// `amount` is an integer; `ts` an integer when it looks like one;
/// `properties`, `attributes` and `tags` hold JSON text.
fn csv_row(header: &csv::StringRecord, row: &csv::StringRecord) -> Result<Value, InputError> {
    let mut obj = serde_json::Map::new();
    for (name, cell) in header.iter().zip(row.iter()) {
        if cell.is_empty() {
            continue;
        }
        let v = match name {
            "amount" => Value::from(
                cell.parse::<i64>()
                    .map_err(|e| unparsable("amount", format!("{cell:?}: {e}")))?,
            ),
            "group_target" => Value::from(
                cell.parse::<u32>()
                    .map_err(|e| unparsable("group_target", format!("{cell:?}: {e}")))?,
            ),
            "properties" | "attributes" | "tags" => crate::timeline::json::parse_value(cell)
                .map_err(|e| unparsable("record", format!("{name}: {e}")))?,
            "force" => Value::from(
                cell.parse::<bool>()
                    .map_err(|e| unparsable("force", format!("{cell:?}: {e}")))?,
            ),
            _ => Value::from(cell),
        };
        obj.insert(name.to_owned(), v);
    }
    if row.len() != header.len() {
        return Err(unparsable(
            "record",
            format!("{} cells for {} columns", row.len(), header.len()),
        ));
    }
    Ok(Value::Object(obj))
}

/// Reads `path` and calls `each(line, parsed)` per record.
fn read_file(
    path: &Path,
    format: Format,
    records: Records,
    now_ms: i64,
    bar: &ProgressBar,
    each: &mut dyn FnMut(u64, Result<Record, InputError>) -> Result<(), Error>,
) -> Result<(), Error> {
    // `-` is standard input (`… | stickydb import -`).
    let input: Box<dyn Read> = if path == Path::new("-") {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(std::fs::File::open(path)?)
    };
    let reader = BufReader::new(bar.wrap_read(input));
    match format {
        Format::Jsonl => {
            let mut reader = reader;
            let mut buf = Vec::new();
            let mut n = 0u64;
            // A line is read to its end but kept only up to the limit: an
            // endless line costs bounded memory and is reported, not loaded.
            while let Some(len) = read_line_bounded(&mut reader, &mut buf, MAX_LINE_BYTES)? {
                n += 1;
                let parsed = if len > MAX_LINE_BYTES {
                    Err(InputError::new(
                        "record",
                        Problem::TooLong {
                            len_bytes: len,
                            max_bytes: MAX_LINE_BYTES,
                        },
                    ))
                } else {
                    match std::str::from_utf8(&buf) {
                        Ok(line) if line.trim().is_empty() => continue,
                        Ok(line) => crate::timeline::json::parse_value(line)
                            .map_err(|e| unparsable("record", e.to_string()))
                            .and_then(|v| from_json(records, v, now_ms)),
                        Err(e) => Err(unparsable(
                            "record",
                            format!("not UTF-8 (byte {})", e.valid_up_to()),
                        )),
                    }
                };
                each(n, parsed)?;
            }
        }
        Format::Csv => {
            let limited = LineLimit {
                inner: reader,
                run_bytes: 0,
            };
            let mut rdr = csv::ReaderBuilder::new()
                .flexible(true)
                .from_reader(Box::new(limited) as Box<dyn Read>);
            let header = rdr
                .headers()
                .map_err(|e| Error::Io(std::io::Error::other(e)))?
                .clone();
            for row in rdr.records() {
                let (n, parsed) = match row {
                    Ok(row) => {
                        let n = row.position().map_or(0, |p| p.line());
                        (
                            n,
                            csv_row(&header, &row).and_then(|v| from_json(records, v, now_ms)),
                        )
                    }
                    // A quoted CSV field may span lines, so after an
                    // over-long line no later line can be trusted: stop.
                    Err(e) if matches!(e.kind(), csv::ErrorKind::Io(_)) => {
                        return Err(Error::Io(std::io::Error::other(e)));
                    }
                    Err(e) => {
                        let n = e.position().map_or(0, |p| p.line());
                        (n, Err(unparsable("record", e.to_string())))
                    }
                };
                each(n, parsed)?;
            }
        }
    }
    Ok(())
}

/// Reads one line (without its `\n` or `\r\n`) into `buf`, keeping at most
/// `max_bytes + 1` bytes of it; returns the line's whole length, or `None`
/// at the end of the input.
fn read_line_bounded(
    r: &mut impl BufRead,
    buf: &mut Vec<u8>,
    max_bytes: usize,
) -> std::io::Result<Option<usize>> {
    buf.clear();
    let mut len = 0usize;
    let mut any = false;
    loop {
        let avail = r.fill_buf()?;
        if avail.is_empty() {
            break;
        }
        any = true;
        let (part, used, done) = match avail.iter().position(|&b| b == b'\n') {
            Some(i) => (&avail[..i], i + 1, true),
            None => (avail, avail.len(), false),
        };
        let keep = part.len().min((max_bytes + 1).saturating_sub(buf.len()));
        buf.extend_from_slice(&part[..keep]);
        len += part.len();
        r.consume(used);
        if done {
            break;
        }
    }
    if !any {
        return Ok(None);
    }
    if len <= max_bytes && buf.last() == Some(&b'\r') {
        buf.pop();
        len -= 1;
    }
    Ok(Some(len))
}

/// A reader that fails once a line grows past [`MAX_LINE_BYTES`], so the CSV
/// parser never holds more than that of one record in memory.
struct LineLimit<R> {
    inner: R,
    /// Bytes since the last `\n`.
    run_bytes: usize,
}

impl<R: Read> Read for LineLimit<R> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(out)?;
        let got = &out[..n];
        let first = got.iter().position(|&b| b == b'\n').unwrap_or(n);
        let last = got.iter().rposition(|&b| b == b'\n');
        let longest = (self.run_bytes + first).max(match last {
            Some(l) => n - l - 1,
            None => 0,
        });
        if longest > MAX_LINE_BYTES {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("a line longer than {MAX_LINE_BYTES} bytes"),
            ));
        }
        self.run_bytes = match last {
            Some(l) => n - l - 1,
            None => self.run_bytes + n,
        };
        Ok(n)
    }
}

/// A pending record with where it came from.
struct Pending {
    at: String,
    record: Record,
}

struct Importer<'a> {
    db: &'a Db,
    skip_bad: u64,
    summary: Summary,
    batch: Vec<Pending>,
}

impl Importer<'_> {
    /// A bad record: reported and left out while `--skip-bad` allows, else
    /// the import stops with nothing of the current batch written.
    fn bad(&mut self, at: &str, why: &dyn std::fmt::Display) -> Result<(), Error> {
        let text = format!("{at}: {why}");
        if self.summary.rejected >= self.skip_bad {
            return Err(unparsable("import", text).into());
        }
        eprintln!("skipped {text}");
        self.summary.rejected += 1;
        self.summary.problems.push(text);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), Error> {
        let pending = std::mem::take(&mut self.batch);
        let (events, profiles): (Vec<Pending>, Vec<Pending>) = pending
            .into_iter()
            .partition(|p| matches!(p.record, Record::Event(_)));
        let mut events: Vec<(String, Event)> = events
            .into_iter()
            .filter_map(|p| match p.record {
                Record::Event(e) => Some((p.at, e)),
                Record::Profile(..) | Record::Merge(..) => None,
            })
            .collect();
        // The library validates the whole batch before writing; a record it
        // refuses is reported by its position and the rest is retried.
        loop {
            let list: Vec<Event> = events.iter().map(|(_, e)| e.clone()).collect();
            match self.db.record_batch(&list) {
                Ok(outcomes) => {
                    for o in outcomes {
                        match o {
                            RecordOutcome::Duplicate => self.summary.duplicates += 1,
                            RecordOutcome::Recorded { .. } => self.summary.imported += 1,
                        }
                    }
                    break;
                }
                Err(Error::Input(e)) if e.index.is_some_and(|i| i < events.len()) => {
                    let i = e.index.unwrap_or(0);
                    let (at, _) = events.remove(i);
                    self.bad(&at, &InputError { index: None, ..e })?;
                }
                Err(e) => return Err(e),
            }
        }
        for p in profiles {
            match p.record {
                Record::Profile(user, update) => match self.db.update_profile(&user, &update) {
                    Ok(()) => self.summary.imported += 1,
                    Err(Error::Input(e)) => self.bad(&p.at, &e)?,
                    Err(e) => return Err(e),
                },
                Record::Merge(m) => match m.apply(self.db) {
                    Ok(out) if out.replayed => self.summary.duplicates += 1,
                    Ok(_) => self.summary.imported += 1,
                    Err(e @ (Error::Input(_) | Error::Merge(_) | Error::UnknownUser { .. })) => {
                        self.bad(&p.at, &e)?
                    }
                    Err(e) => return Err(e),
                },
                Record::Event(_) => {}
            }
        }
        Ok(())
    }
}

fn progress(total_bytes: u64) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(total_bytes), ProgressDrawTarget::stderr());
    if let Ok(style) =
        ProgressStyle::with_template("{bar:30} {bytes}/{total_bytes} {bytes_per_sec} {msg} ({eta})")
    {
        bar.set_style(style);
    }
    bar
}

/// Imports `files`; returns the summary.
pub fn run(
    db: &Db,
    files: &[PathBuf],
    format: Option<Format>,
    records: Records,
    skip_bad: u64,
    now_ms: i64,
) -> Result<Summary, Error> {
    let total: u64 = files
        .iter()
        .map(|f| std::fs::metadata(f).map(|m| m.len()).unwrap_or(0))
        .sum();
    let bar = progress(total);
    let started = std::time::Instant::now();
    let mut imp = Importer {
        db,
        skip_bad,
        summary: Summary::default(),
        batch: Vec::new(),
    };
    for path in files {
        let format = format.unwrap_or_else(|| {
            if path
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("csv"))
            {
                Format::Csv
            } else {
                Format::Jsonl
            }
        });
        let name = if path == Path::new("-") {
            "stdin".to_owned()
        } else {
            path.display().to_string()
        };
        let read = read_file(path, format, records, now_ms, &bar, &mut |line, parsed| {
            let at = format!("{name}:{line}");
            match parsed {
                Ok(record) => {
                    imp.batch.push(Pending { at, record });
                    if imp.batch.len() >= IMPORT_BATCH {
                        imp.flush()?;
                        let secs = started.elapsed().as_secs_f64().max(1e-3);
                        bar.set_message(format!(
                            "{:.0} records/s",
                            imp.summary.imported as f64 / secs
                        ));
                    }
                    Ok(())
                }
                Err(e) => imp.bad(&at, &e),
            }
        });
        // An unreadable file (or a CSV line past the limit) ends the import
        // with the file named; the records read since the last write are
        // left out, as in strict mode.
        if let Err(Error::Io(e)) = read {
            return Err(unparsable("import", format!("{name}: {e}")).into());
        }
        read?;
    }
    imp.flush()?;
    bar.finish_and_clear();
    Ok(imp.summary)
}

// ---- the command ----

/// `stickydb import`.
pub(super) fn import_cmd(
    cli: &Cli,
    files: &[PathBuf],
    records: &Records,
    skip_bad: &Option<u64>,
    utc_offset: &Option<String>,
    now: i64,
) -> Result<(), Error> {
    let db = match utc_offset {
        Some(o) => Db::open(
            &cli.db,
            Options {
                utc_offset_minutes: Some(parse_utc_offset(o)?),
                create_if_missing: true,
                ..Options::default()
            },
        )?,
        None => open_existing(cli, false)?,
    };
    let format = match cli.format {
        None => None,
        Some(super::OutputFormat::Csv) => Some(Format::Csv),
        Some(super::OutputFormat::Jsonl | super::OutputFormat::Json) => Some(Format::Jsonl),
        Some(super::OutputFormat::Table | super::OutputFormat::Parquet) => {
            return Err(unparsable("format", "import reads jsonl or csv").into())
        }
    };
    let summary = run(&db, files, format, *records, skip_bad.unwrap_or(0), now)?;
    if cli.wants_json() {
        return print_json(&summary);
    }
    outln!(
        "imported {}, duplicates {}, rejected {}",
        summary.imported,
        summary.duplicates,
        summary.rejected
    );
    Ok(())
}
