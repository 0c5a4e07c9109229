//! The module map of docs/architecture.md, checked on the sources: every
//! module imports only modules below it (so no two modules import each
//! other), key bytes are spelled only in `keys`, and every file stays small
//! enough to read in one sitting.

use std::path::{Path, PathBuf};

/// The dependency order, lowest first: a module may name only modules
/// before it in this list (and itself).
const ORDER: [&str; 26] = [
    "error",
    "order",
    "time",
    "codec",
    "partition",
    "keys",
    "store",
    "users",
    "kinds",
    "feed",
    "profiles",
    "timeline",
    "features",
    "metrics",
    "ledger",
    "social",
    "experiments",
    "dims",
    "segments",
    "write",
    "verify",
    "db",
    "cluster",
    "clickhouse",
    "kafka",
    "cli",
];

/// Longest file in `src/`, in lines.
const MAX_FILE_LINES: usize = 600;

fn sources() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("read src") {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    walk(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut out);
    out.sort();
    out
}

/// The top-level module a source file belongs to (`None`: the crate root).
fn module_of(path: &Path) -> Option<String> {
    let rel = path
        .strip_prefix(Path::new(env!("CARGO_MANIFEST_DIR")).join("src"))
        .expect("under src");
    let first = rel.components().next()?.as_os_str().to_str()?.to_owned();
    let name = first.trim_end_matches(".rs").to_owned();
    (name != "lib" && name != "main").then_some(name)
}

/// Every top-level module a source text names through `crate::`, including
/// grouped imports (`use crate::{a, b::c}`).
fn named_modules(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                let name: String = item
                    .trim()
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                out.push(name);
            }
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            out.push(name);
        }
    }
    out.retain(|n| ORDER.contains(&n.as_str()));
    out
}

#[test]
fn modules_import_only_modules_below_them() {
    let mut violations = Vec::new();
    for path in sources() {
        let Some(module) = module_of(&path) else {
            continue;
        };
        let rank = ORDER
            .iter()
            .position(|m| *m == module)
            .unwrap_or_else(|| panic!("module {module} missing from ORDER"));
        let text = std::fs::read_to_string(&path).expect("read source");
        for named in named_modules(&text) {
            let named_rank = ORDER.iter().position(|m| *m == named).expect("filtered");
            if named_rank > rank {
                violations.push(format!("{} ({module}) names {named}", path.display()));
            }
        }
    }
    assert!(
        violations.is_empty(),
        "imports against the dependency order:\n{}",
        violations.join("\n")
    );
}

#[test]
fn the_checker_sees_grouped_and_plain_imports() {
    let names =
        named_modules("use crate::{keys, store::Cf};\nlet x = crate::metrics::state::apply;");
    assert_eq!(names, ["keys", "store", "metrics"]);
}

#[test]
fn key_bytes_are_spelled_only_in_keys() {
    // Byte literals are how a key layout gets written by hand; outside the
    // key registry (and the CLI, which parses files) there must be none.
    let mut found = Vec::new();
    for path in sources() {
        let module = module_of(&path);
        if matches!(module.as_deref(), Some("keys") | Some("cli")) {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("read source");
        for (n, line) in text.lines().enumerate() {
            if has_byte_literal(line) {
                found.push(format!("{}:{}: {}", path.display(), n + 1, line.trim()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "byte literals outside src/keys:\n{}",
        found.join("\n")
    );
}

/// Whether a line of code (comments and string contents aside) holds a
/// byte literal `b'…'` or `b"…"`.
fn has_byte_literal(line: &str) -> bool {
    let chars: Vec<char> = line.chars().collect();
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '/' && chars.get(i + 1) == Some(&'/') {
            return false;
        }
        let byte_prefix = i >= 1 && chars[i - 1] == 'b' && (i < 2 || !ident(chars[i - 2]));
        if c == '"' {
            if byte_prefix {
                return true;
            }
            // skip the string's contents
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                i += if chars[i] == '\\' { 2 } else { 1 };
            }
        } else if c == '\'' && byte_prefix {
            return true;
        }
        i += 1;
    }
    false
}

#[test]
fn the_byte_literal_finder_skips_strings_and_comments() {
    assert!(has_byte_literal("let k = b\"kind:\";"));
    assert!(has_byte_literal("vec![COUNTER, b'h', hour]"));
    assert!(!has_byte_literal("Segment::tag(\"b\").or(x) // b\"x\""));
    assert!(!has_byte_literal("\"tag:a tag:b\", fn f<'a>(x: &'a str)"));
}

#[test]
fn files_stay_readable() {
    let long: Vec<String> = sources()
        .into_iter()
        .filter_map(|p| {
            let lines = std::fs::read_to_string(&p).expect("read").lines().count();
            (lines > MAX_FILE_LINES).then(|| format!("{}: {lines} lines", p.display()))
        })
        .collect();
    assert!(
        long.is_empty(),
        "files over {MAX_FILE_LINES} lines:\n{}",
        long.join("\n")
    );
}
