//! `stickydb experiment` and `stickydb experiments`, run as the real
//! binary on the docs' worked example imported from JSON lines: the JSON
//! answer has exactly the documented shape and figures, CSV has one row
//! per variant with its comparison, the table flags the sample ratio, a
//! bad exposure line is refused by its line, and an unknown experiment,
//! control or kind is refused naming what exists.

mod common;

use common::cli::{ok, stickydb};
use serde_json::Value;

/// The example of docs/metrics.md ("Experiments") as JSON lines.
const LINES: &str = r#"{"user":"c1","kind":"exposure","ts":"2024-03-01T10:00:00Z","properties":{"experiment":"checkout","variant":"control"}}
{"user":"c1","kind":"purchase","ts":"2024-03-01T12:00:00Z","amount":500}
{"user":"c1","kind":"view","ts":"2024-03-02T09:00:00Z"}
{"user":"c2","kind":"exposure","ts":"2024-03-01T11:00:00Z","properties":{"experiment":"checkout","variant":"control"}}
{"user":"c2","kind":"view","ts":"2024-03-03T09:00:00Z"}
{"user":"c3","kind":"exposure","ts":"2024-03-02T08:00:00Z","properties":{"experiment":"checkout","variant":"control"}}
{"user":"c3","kind":"purchase","ts":"2024-03-09T08:00:00.001Z","amount":300}
{"user":"c4","kind":"exposure","ts":"2024-03-02T09:00:00Z","properties":{"experiment":"checkout","variant":"control"}}
{"user":"b1","kind":"exposure","ts":"2024-03-01T10:00:00Z","properties":{"experiment":"checkout","variant":"b"}}
{"user":"b1","kind":"purchase","ts":"2024-03-01T10:30:00Z","amount":800}
{"user":"b1","kind":"view","ts":"2024-03-02T09:00:00Z"}
{"user":"b1","kind":"refund","ts":"2024-03-03T09:00:00Z","amount":200}
{"user":"b2","kind":"exposure","ts":"2024-03-01T13:00:00Z","properties":{"experiment":"checkout","variant":"b"}}
{"user":"b2","kind":"purchase","ts":"2024-03-08T13:00:00Z","amount":400}
{"user":"b3","kind":"exposure","ts":"2024-03-02T10:00:00Z","properties":{"experiment":"checkout","variant":"b"}}
{"user":"b3","kind":"exposure","ts":"2024-03-02T11:00:00Z","properties":{"experiment":"checkout","variant":"control"}}
{"user":"b3","kind":"view","ts":"2024-03-03T09:00:00Z"}
{"user":"b4","kind":"exposure","ts":"2024-03-03T09:00:00Z","properties":{"experiment":"checkout","variant":"control"}}
{"user":"b4","kind":"exposure","ts":"2024-03-02T09:00:00Z","properties":{"experiment":"checkout","variant":"b"}}
{"user":"b4","kind":"purchase","ts":"2024-03-02T10:00:00Z","amount":200}
"#;

fn store() -> (tempfile::TempDir, std::path::PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("s");
    let file = tmp.path().join("e.jsonl");
    std::fs::write(&file, LINES).unwrap();
    ok(&stickydb(&db, &["init"]));
    ok(&stickydb(&db, &["import", file.to_str().unwrap()]));
    (tmp, db)
}

fn json(db: &std::path::Path, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.push("--json");
    serde_json::from_str(&ok(&stickydb(db, &all))).unwrap()
}

fn keys(v: &Value) -> Vec<&str> {
    let mut k: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    k.sort_unstable();
    k
}

#[test]
fn the_answer_has_the_documented_shape_and_figures() {
    let (_tmp, db) = store();
    let v = json(
        &db,
        &[
            "experiment",
            "checkout",
            "--metric",
            "conversion:purchase:7d",
        ],
    );
    assert_eq!(
        keys(&v),
        vec![
            "comparisons",
            "contaminated_users",
            "experiment",
            "metric",
            "srm_p_value",
            "variants"
        ]
    );
    assert_eq!(v["experiment"], "checkout");
    assert_eq!(v["contaminated_users"], 2);
    assert_eq!(v["srm_p_value"], 1.0);
    let variants = v["variants"].as_array().unwrap();
    assert_eq!(
        keys(&variants[0]),
        vec!["converted", "rate", "users", "variant"]
    );
    let got: Vec<(String, u64, u64)> = variants
        .iter()
        .map(|r| {
            (
                r["variant"].as_str().unwrap().to_owned(),
                r["users"].as_u64().unwrap(),
                r["converted"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(got, vec![("control".into(), 4, 1), ("b".into(), 4, 3)]);
    let c = &v["comparisons"][0];
    assert_eq!(
        keys(c),
        vec!["ci_high", "ci_low", "control", "diff", "lift", "p_value", "variant"]
    );
    assert_eq!(
        (c["variant"].as_str(), c["control"].as_str()),
        (Some("b"), Some("control"))
    );
    assert!((c["ci_low"].as_f64().unwrap() + 0.1355).abs() < 5e-5);
    assert!((c["ci_high"].as_f64().unwrap() - 0.7891).abs() < 5e-5);
    assert!((c["p_value"].as_f64().unwrap() - 0.1573).abs() < 5e-5);
    assert_eq!(c["lift"], 2.0);

    // means carry sum and mean instead
    let v = json(&db, &["experiment", "checkout", "--metric", "revenue:7d"]);
    let r = &v["variants"][1];
    assert_eq!(
        (r["sum"].as_i64(), r["mean"].as_f64()),
        (Some(1200), Some(300.0))
    );
    assert!(r.get("converted").is_none());

    // a segment narrows every figure
    let v = json(
        &db,
        &[
            "experiment",
            "checkout",
            "--metric",
            "conversion:purchase:7d",
            "--segment",
            "did:view",
        ],
    );
    assert_eq!(v["variants"][0]["users"], 2);
    assert_eq!(v["contaminated_users"], 1);

    // the list
    let list = json(&db, &["experiments"]);
    assert_eq!(list[0]["experiment"], "checkout");
    assert_eq!(list[0]["variants"][0]["variant"], "b");
    assert_eq!(list[0]["variants"][0]["users"], 4);
}

#[test]
fn csv_and_table_read_like_the_rest() {
    let (_tmp, db) = store();
    let csv = ok(&stickydb(
        &db,
        &[
            "--format",
            "csv",
            "experiment",
            "checkout",
            "--metric",
            "retention:1",
        ],
    ));
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 3, "{csv}");
    assert!(
        lines[0].starts_with("variant,users,converted,rate"),
        "{csv}"
    );
    assert!(
        lines[0].contains("ci_low") && lines[0].contains("p_value"),
        "{csv}"
    );
    assert!(lines[1].starts_with("control,4,1,0.25"), "{csv}");
    assert!(lines[2].starts_with("b,4,2,0.5,"), "{csv}");
    let table = ok(&stickydb(
        &db,
        &[
            "experiment",
            "checkout",
            "--metric",
            "retention:1",
            "--split",
            "control=1,b=3",
        ],
    ));
    assert!(table.contains("checkout · retention:1"), "{table}");
    assert!(table.contains("sample ratio: p = 0.1025"), "{table}");
    assert!(
        table.contains("contaminated users (exposed to another variant too): 2"),
        "{table}"
    );
    let list = ok(&stickydb(&db, &["experiments"]));
    assert!(
        list.contains("checkout") && list.contains("control"),
        "{list}"
    );
}

#[test]
fn bad_lines_and_unknown_names_are_refused_by_what_they_name() {
    let (tmp, db) = store();
    let bad = tmp.path().join("bad.jsonl");
    std::fs::write(
        &bad,
        "{\"user\":\"x\",\"kind\":\"view\",\"ts\":1}\n{\"user\":\"x\",\"kind\":\"exposure\",\"ts\":2,\"properties\":{\"experiment\":\"checkout\"}}\n",
    )
    .unwrap();
    let out = stickydb(&db, &["import", bad.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.jsonl:2") && err.contains("event.properties.variant"),
        "{err}"
    );
    for (args, says) in [
        (
            vec!["experiment", "nope", "--metric", "retention:1"],
            "experiments: checkout",
        ),
        (
            vec![
                "experiment",
                "checkout",
                "--metric",
                "retention:1",
                "--control",
                "a",
            ],
            "variants: b, control",
        ),
        (
            vec![
                "experiment",
                "checkout",
                "--metric",
                "conversion:purchse:1d",
            ],
            "known kinds:",
        ),
        (
            vec!["experiment", "checkout", "--metric", "conversion:purchase"],
            "conversion:KIND:WINDOW",
        ),
        (
            vec![
                "experiment",
                "checkout",
                "--metric",
                "retention:1",
                "--split",
                "control=1",
            ],
            "no weight for variant \"b\"",
        ),
    ] {
        let out = stickydb(&db, &args);
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{args:?}: {err}");
    }
}
