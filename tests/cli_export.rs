//! `users export --segment --columns --format csv|jsonl|parquet` through the
//! real binary: the Parquet file read back by DuckDB (an independent
//! reader, from the tests' virtualenv) equals the CSV export row for row
//! and cell for cell; JSON lines equal the library's rows; and no
//! sensitive attribute leaves without `--show-sensitive` (checked on the
//! bytes of every format, a golden list of columns).

mod common;

use std::path::Path;

use common::cli::{ok, stickydb};
use serde_json::{json, Value};
use stickydb::{
    AttrValue, Cell, Db, Event, ExportColumn, ExportGroup, ExportOptions, Options, PointsOp,
    ProfileUpdate, Segment, TagSource, UserSink,
};

const DAY_MS: i64 = 86_400_000;
/// 2024-03-01 00:00 UTC.
const T0: i64 = 1_709_251_200_000;
const PHONE: &str = "+86 139 0000";

fn fill(path: &Path) {
    let db = Db::create(path, Options::default().utc_offset_minutes(480)).expect("create");
    for u in 0..60i64 {
        let user = format!("u{u}");
        let mut p = ProfileUpdate::new().set("age", 14 + u % 40).set(
            "city",
            ["Shenzhen", "Beijing", "Wu,han \"x\""][(u % 3) as usize],
        );
        if u % 4 != 0 {
            p = p.set("score", u as f64 / 3.0).set("vip", u % 5 == 0);
        }
        if u % 3 != 0 {
            let birthday = AttrValue::date(
                1980 + (u % 30) as i32,
                1 + (u % 12) as u32,
                1 + (u % 28) as u32,
            );
            p = p
                .set("birthday", birthday.expect("a date"))
                .set("last_login", AttrValue::Timestamp(T0 + u * 3_600_000));
        }
        if u % 2 == 0 {
            p = p.set_sensitive("phone", format!("{PHONE}{u:02}"));
        }
        if u % 7 == 0 {
            p = p.tag("vip", TagSource::Manual, T0, None).tag(
                "promo",
                TagSource::Rule,
                T0,
                Some(T0 + DAY_MS),
            );
        }
        // a mixed-type attribute: text for some, integers for others
        p = p.set(
            "code",
            if u % 2 == 0 {
                AttrValue::Int(u)
            } else {
                AttrValue::Str(format!("c{u}"))
            },
        );
        db.update_profile(&user, &p).expect("profile");
        let events: Vec<Event> = (0..(u % 5))
            .map(|i| {
                let kind = if i % 2 == 0 { "purchase" } else { "view" };
                Event::new(user.as_str(), kind, T0 + (u + i * 3) * DAY_MS / 4)
                    .with_amount(if kind == "purchase" {
                        1_000 + u * 10
                    } else {
                        0
                    })
                    .with_id(format!("e{u}-{i}"))
            })
            .collect();
        db.record_batch(&events).expect("events");
        if u % 6 == 0 {
            db.points(&user, "w", T0, &PointsOp::earn(50 + u, "welcome"))
                .expect("points");
        }
    }
}

const SEGMENT: &str = "attr:age>=18 and not attr:city=Beijing";
const COLUMNS: &str = "id,attributes,tags,metrics,rfm,tier,points";
const AS_OF: &str = "2024-03-20";

fn export(path: &Path, format: &str, out: &Path, sensitive: bool) -> String {
    let out_s = out.to_str().expect("utf-8 path");
    let mut args = vec![
        "users",
        "export",
        "--segment",
        SEGMENT,
        "--columns",
        COLUMNS,
        "--as-of",
        AS_OF,
        "--format",
        format,
        "--out",
        out_s,
    ];
    if sensitive {
        args.push("--show-sensitive");
    }
    ok(&stickydb(path, &args));
    std::fs::read_to_string(out).unwrap_or_default()
}

/// The Parquet file as CSV-like text cells, per row, by DuckDB.
fn parquet_rows(file: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let script = r#"
import duckdb, json, sys
f = sys.argv[1]
con = duckdb.connect()
cols = con.execute("describe select * from read_parquet(?)", [f]).fetchall()
sel = []
for c in cols:
    name, ty = c[0], c[1]
    q = '"' + name.replace('"', '""') + '"'
    if ty.startswith("TIMESTAMP"):
        sel.append("epoch_ms(" + q + ")")
    elif ty == "DATE":
        sel.append("strftime(" + q + ", '%Y-%m-%d')")
    else:
        sel.append(q)
rows = con.execute("select " + ", ".join(sel) + " from read_parquet(?)", [f]).fetchall()
def cell(v):
    if v is None: return ""
    if isinstance(v, bool): return "true" if v else "false"
    if isinstance(v, float): return repr(v)
    return str(v)
print(json.dumps({"names": [c[0] for c in cols], "rows": [[cell(v) for v in r] for r in rows]}))
"#;
    let out = std::process::Command::new(common::python())
        .args(["-c", script])
        .arg(file)
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    let names = v["names"]
        .as_array()
        .expect("names")
        .iter()
        .map(|n| n.as_str().unwrap_or("").to_owned())
        .collect();
    let rows = v["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| {
            r.as_array()
                .expect("row")
                .iter()
                .map(|c| c.as_str().unwrap_or("").to_owned())
                .collect()
        })
        .collect();
    (names, rows)
}

#[test]
fn parquet_equals_csv_and_nothing_sensitive_leaves_unasked() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let path = tmp.path().join("store");
    fill(&path);
    let csv_text = export(&path, "csv", &tmp.path().join("a.csv"), false);
    let mut csv = csv::Reader::from_reader(csv_text.as_bytes());
    let header: Vec<String> = csv
        .headers()
        .expect("header")
        .iter()
        .map(str::to_owned)
        .collect();
    let csv_rows: Vec<Vec<String>> = csv
        .records()
        .map(|r| r.expect("row").iter().map(str::to_owned).collect())
        .collect();
    // the golden columns: no `phone` without --show-sensitive
    assert_eq!(
        header,
        [
            "user",
            "age",
            "birthday",
            "city",
            "code",
            "last_login",
            "score",
            "vip",
            "tags",
            "first_seen_day",
            "last_seen_day",
            "active_days",
            "purchase_count",
            "purchase_days",
            "total_spend_minor",
            "first_purchase_day",
            "last_purchase_day",
            "frequency",
            "recency",
            "T",
            "monetary_value",
            "stage",
            "r_score",
            "f_score",
            "m_score",
            "rfm_segment",
            "tier",
            "points_balance",
        ]
    );
    let parquet = tmp.path().join("a.parquet");
    export(&path, "parquet", &parquet, false);
    let (names, rows) = parquet_rows(&parquet);
    assert_eq!(names, header);
    assert!(!rows.is_empty() && rows.len() < 60, "{} rows", rows.len());
    assert_eq!(
        rows, csv_rows,
        "Parquet read by DuckDB differs from the CSV"
    );
    let jsonl = export(&path, "jsonl", &tmp.path().join("a.jsonl"), false);
    for bytes in [
        csv_text.as_bytes(),
        jsonl.as_bytes(),
        &std::fs::read(&parquet).unwrap_or_default(),
    ] {
        let text = String::from_utf8_lossy(bytes);
        assert!(
            !text.contains(PHONE) && !text.contains("phone"),
            "a sensitive attribute left"
        );
    }
    // asked for, it is there (and `has:phone` matches only then)
    let with = export(&path, "csv", &tmp.path().join("b.csv"), true);
    assert!(
        with.lines().next().unwrap_or("").contains(",phone,"),
        "{with}"
    );
    assert!(with.contains(PHONE));
    // the JSON lines are the library's rows
    let lines: Vec<Value> = jsonl
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    assert_eq!(
        lines,
        library_rows(&path),
        "JSON lines differ from Db::export_users"
    );
}

struct Collect(Vec<ExportColumn>, Vec<Vec<Cell>>);

impl UserSink for Collect {
    fn columns(&mut self, c: &[ExportColumn]) -> Result<(), stickydb::Error> {
        self.0 = c.to_vec();
        Ok(())
    }
    fn rows(&mut self, rows: &[Vec<Cell>]) -> Result<(), stickydb::Error> {
        self.1.extend_from_slice(rows);
        Ok(())
    }
    fn finish(&mut self) -> Result<(), stickydb::Error> {
        Ok(())
    }
}

fn library_rows(path: &Path) -> Vec<Value> {
    let db = Db::open(path, Options::default()).expect("open");
    let day = stickydb::time::parse_day(AS_OF).expect("day");
    let end = stickydb::time::local_midnight_ms(day + 1, 480) - 1;
    let mut o = ExportOptions::new(end, day);
    o.groups = vec![
        ExportGroup::Attributes,
        ExportGroup::Tags,
        ExportGroup::Metrics,
        ExportGroup::Rfm,
        ExportGroup::Tier,
        ExportGroup::Points,
    ];
    let mut sink = Collect(Vec::new(), Vec::new());
    let seg = Segment::parse(SEGMENT).expect("segment");
    db.export_users(Some(&seg), &o, &mut sink).expect("export");
    sink.1
        .iter()
        .map(|row| {
            let obj: serde_json::Map<String, Value> = sink
                .0
                .iter()
                .zip(row)
                .map(|(c, cell)| {
                    let v = match cell {
                        Cell::Text(s) => json!(s),
                        Cell::Int(n) | Cell::Timestamp(n) => json!(n),
                        Cell::Float(x) => json!(x),
                        Cell::Bool(b) => json!(b),
                        Cell::Date(d) => json!(stickydb::time::format_day(*d)),
                        _ => Value::Null,
                    };
                    (c.name.clone(), v)
                })
                .collect();
            Value::Object(obj)
        })
        .collect()
}

#[test]
fn typed_profiles_import_as_user_prints_them_and_segments_read_them() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let path = tmp.path().join("store");
    let file = tmp.path().join("profiles.jsonl");
    let lines = [
        r#"{"user":"ann","attributes":{"birthday":{"date":"1992-02-29"},"seen":{"timestamp_ms":1709251200000},"phone":{"value":"+1 555","sensitive":true},"age":31}}"#,
        r#"{"user":"bob","attributes":{"birthday":{"date":"1990-03-09"},"age":17}}"#,
    ];
    std::fs::write(&file, lines.join("\n")).expect("write");
    let f = file.to_str().expect("utf-8");
    ok(&stickydb(
        &path,
        &[
            "import",
            "--records",
            "profiles",
            f,
            "--utc-offset",
            "+08:00",
        ],
    ));
    let v: Value = serde_json::from_str(&ok(&stickydb(
        &path,
        &["--json", "user", "ann", "--show-sensitive"],
    )))
    .expect("json");
    assert_eq!(
        v["attributes"]["birthday"],
        json!({ "date": "1992-02-29" }),
        "{v}"
    );
    assert_eq!(
        v["attributes"]["seen"],
        json!({ "timestamp_ms": 1_709_251_200_000i64 })
    );
    assert_eq!(v["attributes"]["phone"], json!("+1 555"));
    let count = |args: &[&str]| -> u64 {
        let mut all = vec!["--json", "segment"];
        all.extend_from_slice(args);
        let v: Value = serde_json::from_str(&ok(&stickydb(&path, &all))).expect("json");
        v["count"].as_u64().expect("count")
    };
    // 2025-02-28: ann's 29 February falls on it in a common year
    assert_eq!(count(&["birthday_within:1d", "--as-of", "2025-02-28"]), 1);
    assert_eq!(count(&["birthday_within:10d", "--as-of", "2025-03-01"]), 1);
    assert_eq!(count(&["attr:age>=18", "--as-of", "2025-03-01"]), 1);
    assert_eq!(count(&["has:phone", "--as-of", "2025-03-01"]), 0);
    assert_eq!(
        count(&["has:phone", "--as-of", "2025-03-01", "--show-sensitive"]),
        1
    );
    // a bad typed value is refused with where it is
    std::fs::write(
        &file,
        r#"{"user":"cy","attributes":{"birthday":{"date":"1990-02-30"}}}"#,
    )
    .expect("write");
    let out = stickydb(&path, &["import", "--records", "profiles", f]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("birthday"),
        "{out:?}"
    );
}
