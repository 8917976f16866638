//! `loa check` on the fixture corpus. Every file under `fixtures/invalid/announcements` (and every
//! template under `fixtures/invalid/templates`) holds exactly one mistake and names the exact line
//! `loa check` must print for it, in a comment: `# expect: …` (YAML) or `{# expect: … #}` (Tera).
//! One run over the whole directory must print exactly the union of those lines — which also
//! proves that no bad file hides the problems of another.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

fn loa() -> Command {
    Command::new(env!("CARGO_BIN_EXE_loa"))
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("fixture dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            files(&path, out);
        } else {
            out.push(path);
        }
    }
}

/// The expected lines written in the fixture files, by marker (`expect` or `expect-en`).
fn expectations(root: &Path, marker: &str) -> (BTreeSet<String>, usize) {
    let mut all = Vec::new();
    files(root, &mut all);
    let mut expected = BTreeSet::new();
    let mut cases = 0;
    for path in all {
        // Lossy: a non-UTF-8 file is itself a case, and its comment line is still ASCII.
        let text =
            String::from_utf8_lossy(&std::fs::read(&path).expect("read fixture")).into_owned();
        let mut found = 0;
        for line in text.lines() {
            let line = line
                .trim_start_matches(['#', '{', ' '])
                .trim_end_matches(['#', '}', ' ']);
            if let Some(e) = line.strip_prefix(&format!("{marker}: ")) {
                expected.insert(e.trim().to_string());
                found += 1;
            }
        }
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        // Every announcement file is a case and must say what it expects; templates are cases
        // only when they carry an expectation (the others are the shared, good ones).
        let is_announcement = path.components().any(|c| c.as_os_str() == "announcements");
        if marker == "expect"
            && is_announcement
            && name != "commune.yaml"
            && !name.starts_with("ok-")
        {
            assert!(found > 0, "{} has no `# expect:` line", path.display());
        }
        if marker == "expect" && found > 0 {
            cases += 1;
        }
    }
    (expected, cases)
}

fn check(dir: &str, args: &[&str]) -> (BTreeSet<String>, i32) {
    let out = loa()
        .current_dir(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures")
                .join(dir),
        )
        .args(["check", "announcements"])
        .args(args)
        .output()
        .expect("run loa");
    let stdout = String::from_utf8(out.stdout).expect("utf-8 output");
    (
        stdout.lines().map(str::to_string).collect(),
        out.status.code().unwrap_or(-1),
    )
}

fn assert_same(dir: &str, got: &BTreeSet<String>, expected: &BTreeSet<String>) {
    let missing: Vec<_> = expected.difference(got).collect();
    let extra: Vec<_> = got.difference(expected).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{dir}: lines expected but not printed:\n{}\n\nlines printed but not expected:\n{}",
        missing
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("\n"),
        extra
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("\n"),
    );
}

#[test]
fn every_invalid_fixture_reports_exactly_its_problem() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/invalid");
    let (expected, cases) = expectations(&root, "expect");
    assert!(
        cases >= 30,
        "the corpus should hold at least 30 invalid cases, found {cases}"
    );
    let (got, code) = check("invalid", &[]);
    assert_eq!(code, 1, "problems exit with 1");
    assert_same("invalid", &got, &expected);
}

#[test]
fn english_messages_where_fixtures_give_them() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/invalid");
    let (expected, _) = expectations(&root, "expect-en");
    assert!(!expected.is_empty());
    let (got, _) = check("invalid", &["--lang", "en"]);
    let missing: Vec<_> = expected.difference(&got).collect();
    assert!(
        missing.is_empty(),
        "English lines not printed: {missing:#?}"
    );
}

#[test]
fn a_broken_commune_file_does_not_stop_the_announcements() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bad-commune");
    let (expected, _) = expectations(&root, "expect");
    let (got, code) = check("bad-commune", &[]);
    assert_eq!(code, 1);
    assert_same("bad-commune", &got, &expected);
}

#[test]
fn json_format_carries_the_same_problems() {
    let out = loa()
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/invalid"))
        .args(["check", "announcements", "--format", "json"])
        .output()
        .expect("run loa");
    assert_eq!(out.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("valid JSON");
    let items = json.as_array().expect("an array");
    let (text, _) = check("invalid", &[]);
    assert_eq!(items.len(), text.len());
    for item in items {
        for key in ["path", "line", "column", "field", "code", "message"] {
            assert!(item.get(key).is_some(), "missing {key} in {item}");
        }
        let line = format!(
            "{}:{}:{}: {}{}",
            item["path"].as_str().unwrap_or_default(),
            item["line"],
            item["column"],
            match item["field"].as_str().unwrap_or_default() {
                "" => String::new(),
                f => format!("{f}: "),
            },
            item["message"].as_str().unwrap_or_default()
        );
        assert!(
            text.contains(&line),
            "JSON item does not match a text line: {line}"
        );
    }
}

/// `loa check announcements`, run in `dir`, must find nothing.
fn assert_clean(dir: &Path) {
    let out = loa()
        .current_dir(dir)
        .args(["check", "announcements"])
        .output()
        .expect("run loa");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn the_shipped_example_commune_is_clean() {
    assert_clean(Path::new(env!("CARGO_MANIFEST_DIR")));
}

#[test]
fn valid_fixtures_are_clean() {
    assert_clean(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/valid"));
}

#[test]
fn a_missing_directory_cannot_run() {
    let out = loa()
        .args(["check", "/nonexistent/loa-dir"])
        .output()
        .expect("run loa");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read announcement directory"));
}
