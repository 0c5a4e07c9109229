//! `stickydb init --strict-kinds`: a store that accepts only the listed
//! kinds refuses an import line of another kind, naming it and the list;
//! opening a missing store is refused, not created.

mod common;
use common::cli::{ok, stickydb};

#[test]
fn a_strict_store_refuses_a_mistyped_kind_from_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s");
    let out = ok(&stickydb(&db, &["init", "--strict-kinds", "view,purchase"]));
    assert!(out.contains("kinds purchase,view"), "{out}");
    let lines = dir.path().join("events.jsonl");
    std::fs::write(
        &lines,
        "{\"user\":\"a\",\"kind\":\"view\",\"ts\":1709251200000}\n\
         {\"user\":\"a\",\"kind\":\"Purchase\",\"ts\":1709251200001,\"amount\":5}\n",
    )
    .unwrap();
    let out = stickydb(&db, &["import", lines.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("\"Purchase\"") && err.contains("purchase, view"),
        "{err}"
    );
    // nothing of the refused import was written
    let count = ok(&stickydb(&db, &["--json", "stats"]));
    let v: serde_json::Value = serde_json::from_str(&count).unwrap();
    assert_eq!(v["events"], 0, "{v}");
    // a mistyped path is refused, not created
    let typo = dir.path().join("typo");
    let out = stickydb(&typo, &["--json", "stats"]);
    assert!(!out.status.success());
    assert!(!typo.exists());
}
