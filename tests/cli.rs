//! The `loa` binary's plan, preview and schema output on the shipped example commune, pinned by
//! snapshot files in `tests/snapshots/`. After an intended change, regenerate them with
//! `UPDATE_SNAPSHOTS=1 cargo test --test cli` and review the diff.

use std::path::Path;
use std::process::{Command, Output};

const NOW: &str = "2026-11-22 12:00";

fn loa(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_loa"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(args)
        .arg(format!("--now={NOW}"))
        .output()
        .expect("run loa")
}

fn snapshot(name: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/snapshots")
        .join(name);
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&path, actual).expect("write snapshot");
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        expected == actual,
        "{name} differs from its snapshot.\n--- expected\n{expected}\n--- actual\n{actual}"
    );
}

fn stdout(out: &Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).expect("utf-8")
}

#[test]
fn plan_of_the_example_commune() {
    let out = loa(&[
        "plan",
        "announcements",
        "--from",
        "2026-11-22",
        "--days",
        "21",
    ]);
    snapshot("plan-vi.txt", &stdout(&out));
    let out = loa(&[
        "plan",
        "announcements",
        "--from",
        "2026-11-22",
        "--days",
        "21",
        "--lang",
        "en",
    ]);
    snapshot("plan-en.txt", &stdout(&out));
}

#[test]
fn plan_as_json_lists_fates_and_local_times() {
    let out = loa(&[
        "plan",
        "announcements",
        "--from",
        "2026-11-22",
        "--days",
        "21",
        "--format",
        "json",
    ]);
    let rows: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("json");
    let rows = rows.as_array().expect("array");
    assert!(rows.len() > 20);
    let moved = rows
        .iter()
        .find(|r| r["fate"]["type"] == "moved_quiet_hours")
        .expect("a moved send");
    assert_eq!(moved["announcement"], "cccd/lang-tre");
    assert_eq!(moved["due"], "2026-12-01T05:30:00+07:00");
    assert_eq!(moved["send_at"], "2026-12-01T06:00:00+07:00");
    assert!(
        rows.iter()
            .any(|r| r["fate"]["type"] == "after_expiry" && r["announcement"] == "bao-so-13")
    );
}

#[test]
fn preview_prints_the_exact_text() {
    let out = loa(&[
        "preview",
        "announcements/cccd/go-da-yen-ngua.yaml",
        "--at",
        "2026-12-02 07:30",
        "--village",
        "go-da",
    ]);
    snapshot("preview-cccd-go-da-1d.txt", &stdout(&out));
    let out = loa(&[
        "preview",
        "announcements/bao-so-13.yaml",
        "--village",
        "lang-tre",
    ]);
    let text = stdout(&out);
    snapshot("preview-storm-next.txt", &text);
    assert!(text.starts_with("🔴 KHẨN"), "{text}");
}

#[test]
fn preview_refuses_a_village_outside_the_audience() {
    let out = loa(&[
        "preview",
        "announcements/cccd/lang-tre.yaml",
        "--village",
        "go-da",
    ]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn shipped_schemas_are_current() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = loa(&["schema", "--out", dir.path().to_str().expect("utf-8 path")]);
    assert!(out.status.success());
    for name in [
        "commune.schema.json",
        "announcement.schema.json",
        "loa.schema.json",
    ] {
        let fresh = std::fs::read_to_string(dir.path().join(name)).expect("generated");
        let shipped = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("schemas")
                .join(name),
        )
        .unwrap_or_default();
        assert!(
            fresh == shipped,
            "schemas/{name} is stale: run `cargo run -- schema --out schemas`"
        );
    }
}

#[test]
fn schema_knows_every_field_the_parser_knows() {
    let out = loa(&["schema", "announcement"]);
    let schema: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("json");
    let props = schema["properties"].as_object().expect("properties");
    for field in [
        "title", "kind", "priority", "audience", "template", "event", "send", "expires", "confirm",
        "data",
    ] {
        assert!(props.contains_key(field), "{field} missing from the schema");
    }
    assert_eq!(
        schema["additionalProperties"], false,
        "unknown fields must be flagged by editors too"
    );
    let required: Vec<&str> = schema["required"]
        .as_array()
        .expect("required")
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    assert_eq!(required, ["title", "send"]);
    let combined: serde_json::Value =
        serde_json::from_str(&stdout(&loa(&["schema"]))).expect("json");
    assert_eq!(combined["oneOf"].as_array().map(Vec::len), Some(2));
}
