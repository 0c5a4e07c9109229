//! A birthday reward driven the way an operator does it, through the real
//! binary: the rule in the settings document, birthdays as date attributes
//! in a profile import, events imported late and out of order — the
//! reward is paid once per birthday, on the window's oldest event, and
//! `points history` shows it (docs/ledger.md#birthday-rewards).

mod common;

use common::cli::{ok, stickydb};
use serde_json::Value;
use stickydb::{Db, Options};

#[test]
fn a_birthday_rule_from_the_settings_document_pays_imported_users_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = dir.path().join("store");
    drop(Db::create(&store, Options::default()).expect("create"));
    let file = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).expect("write");
        p.to_str().expect("utf-8").to_owned()
    };
    let settings = file(
        "settings.json",
        r#"{"earning_rules":[{"kind":"reward:birthday:7","points":{"fixed":200},
            "daily_cap_points":null,"expires_after_days":null}]}"#,
    );
    ok(&stickydb(&store, &["settings", "apply", &settings]));
    let profiles = file(
        "profiles.jsonl",
        concat!(
            r#"{"user":"ann","attributes":{"birthday":{"date":"1990-03-10"}}}"#,
            "\n",
            r#"{"user":"bob","attributes":{"birthday":{"date":"1992-02-29"}}}"#,
            "\n"
        ),
    );
    ok(&stickydb(
        &store,
        &["import", &profiles, "--records", "profiles"],
    ));
    // ann: two events in her window (4–10 March), the older one last;
    // bob: 28 February 2025 is his birthday in a common year
    let events = file(
        "events.jsonl",
        concat!(
            r#"{"user":"ann","kind":"view","ts":"2025-03-09T10:00:00Z"}"#,
            "\n",
            r#"{"user":"ann","kind":"view","ts":"2025-03-11T10:00:00Z"}"#,
            "\n",
            r#"{"user":"ann","kind":"sign_in","ts":"2025-03-05T08:00:00Z"}"#,
            "\n",
            r#"{"user":"bob","kind":"view","ts":"2025-02-28T12:00:00Z"}"#,
            "\n"
        ),
    );
    ok(&stickydb(
        &store,
        &["import", &events, "--utc-offset", "+00:00"],
    ));
    let history = |user: &str| -> Value {
        let out = ok(&stickydb(&store, &["--json", "points", "history", user]));
        serde_json::from_str(&out).expect("JSON")
    };
    let ann = history("ann");
    assert_eq!(ann["account"]["balance"], 200, "{ann}");
    assert_eq!(history("bob")["account"]["balance"], 200);
    let text = ann.to_string();
    assert!(
        text.contains("event:first:0:1:7:2025"),
        "moved to 5 March: {text}"
    );
    assert!(text.contains("event:first:0:0:7:2025:reverse"), "{text}");
    let db = Db::open(&store, Options::default()).expect("open");
    common::assert_clean(&db);
}
