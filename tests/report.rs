//! `loa report` on a real ledger (SQLite, and PostgreSQL when `LOA_TEST_DATABASE_URL` is set):
//! exact numbers per send, per village and in total in the JSON, the same in CSV and in the
//! Vietnamese and English tables, people rows with failure reasons in words, follow-ups under
//! their send, and exit code 2 when it cannot run.

mod report_story;
mod support;

use report_story::{NOW, Story};
use serde_json::{Value, json};

/// Runs `loa report ARGS` against `db` and returns (exit code, stdout, stderr).
fn report(db: &str, story: &Story, args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_loa"))
        .arg("report")
        .args(["--database", db])
        .args(args)
        .current_dir(story.dir.path())
        .env("LOA_NOW", NOW)
        .env("LOA_COMMUNE_ID", report_story::COMMUNE_ID)
        .env_remove("LOA_LANG")
        .output()
        .expect("run loa report");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn json_of(db: &str, story: &Story, args: &[&str]) -> Value {
    let mut all = vec!["--format", "json"];
    all.extend_from_slice(args);
    let (code, out, err) = report(db, story, &all);
    assert_eq!(code, 0, "{err}");
    serde_json::from_str(&out).expect("JSON output")
}

/// The counts of `v` that the story fixes, as one object.
fn counts(v: &Value) -> Value {
    let keys = [
        "targeted",
        "sent",
        "delivered",
        "seen",
        "failed",
        "pending",
        "expired",
        "missed",
        "unknown",
        "heads_asked",
        "heads_confirmed",
    ];
    Value::Object(keys.iter().map(|k| (k.to_string(), v[k].clone())).collect())
}

fn c(numbers: [i64; 11]) -> Value {
    let [
        targeted,
        sent,
        delivered,
        seen,
        failed,
        pending,
        expired,
        missed,
        unknown,
        asked,
        conf,
    ] = numbers;
    json!({"targeted": targeted, "sent": sent, "delivered": delivered, "seen": seen, "failed": failed,
           "pending": pending, "expired": expired, "missed": missed, "unknown": unknown,
           "heads_asked": asked, "heads_confirmed": conf})
}

#[tokio::test]
async fn report_on_every_backend() {
    for db in support::databases().await {
        let store = db.store().await;
        let story = report_story::build(&store).await;
        check(&db.url, &story, db.name);
        store.close().await;
    }
}

fn check(db: &str, story: &Story, backend: &str) {
    let all = json_of(db, story, &[]);
    let sends = all["sends"].as_array().expect("sends");
    let ids: Vec<i64> = sends.iter().filter_map(|s| s["id"].as_i64()).collect();
    assert_eq!(
        ids,
        vec![story.dien, story.hop],
        "{backend}: newest first; the reminder is not a send of its own"
    );
    let hop = &sends[1];
    let villages: Vec<(Value, Value)> = hop["villages"]
        .as_array()
        .expect("villages")
        .iter()
        .map(|v| (v["village_id"].clone(), counts(v)))
        .collect();
    assert_eq!(
        villages,
        vec![
            (json!("a"), c([1, 1, 1, 1, 0, 0, 0, 0, 0, 1, 1])),
            (json!("b"), c([2, 1, 1, 0, 1, 0, 0, 0, 0, 2, 0])),
            (json!("c"), c([1, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0])),
        ],
        "{backend}"
    );
    assert_eq!(counts(&hop["total"]), c([4, 2, 2, 1, 2, 0, 0, 0, 0, 4, 1]));
    let failures: Vec<(Value, Value)> = hop["total"]["failures"]
        .as_array()
        .expect("failures")
        .iter()
        .map(|f| (f["code"].clone(), f["count"].clone()))
        .collect();
    assert_eq!(
        failures,
        vec![(json!("-230"), json!(1)), (json!("-237"), json!(1))]
    );
    assert_eq!(
        counts(&sends[0]["total"]),
        c([1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0])
    );
    assert_eq!(counts(&all["total"]), c([5, 3, 2, 1, 2, 0, 0, 0, 0, 4, 1]));

    // Confirmations: who did (when, how), who did not (reminded when).
    let confirmations = hop["confirmations"].as_array().expect("confirmations");
    assert_eq!(confirmations.len(), 4);
    let a = confirmations
        .iter()
        .find(|c| c["person"] == "Trưởng A")
        .expect("Trưởng A");
    assert_eq!(
        (&a["state"], &a["via"], &a["confirmed_at"]),
        (
            &json!("confirmed"),
            &json!("reply"),
            &json!("2026-12-01T01:10:00Z")
        )
    );
    let b = confirmations
        .iter()
        .find(|c| c["person"] == "Trưởng B")
        .expect("Trưởng B");
    assert_eq!(
        (&b["state"], &b["reminded_at"]),
        (&json!("pending"), &json!("2026-12-01T03:00:00Z"))
    );
    let follow_ups = hop["follow_ups"].as_array().expect("follow-ups");
    assert_eq!(follow_ups.len(), 1);
    assert_eq!(follow_ups[0]["id"], json!(story.reminder));
    assert_eq!(follow_ups[0]["kind"], json!("reminder"));
    assert_eq!(
        counts(&follow_ups[0]["total"]),
        c([1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0])
    );

    // One announcement (all of its sends); a time range.
    let only = json_of(db, story, &["hop"]);
    assert_eq!(only["sends"].as_array().map(Vec::len), Some(1));
    assert_eq!(only["total"], hop["total"]);
    let later = json_of(db, story, &["--since", "2026-12-01 08:30"]);
    assert_eq!(later["sends"][0]["id"], json!(story.dien));
    assert_eq!(later["sends"].as_array().map(Vec::len), Some(1));

    // CSV: the same numbers, English keys.
    let (code, csv, _) = report(db, story, &["--format", "csv"]);
    assert_eq!(code, 0);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "send_id,announcement,send_at,village,targeted,sent,delivered,seen,confirmed,heads_asked,heads_confirmed,failed,pending,expired,missed,unknown"
    );
    let hop_id = story.hop;
    assert!(
        lines.contains(
            &format!("{hop_id},hop,2026-12-01T08:00:00+07:00,b,2,1,1,0,0,2,0,1,0,0,0,0").as_str()
        ),
        "{csv}"
    );
    assert!(
        lines.contains(
            &format!("{hop_id},hop,2026-12-01T08:00:00+07:00,total,4,2,2,1,0,4,1,2,0,0,0,0")
                .as_str()
        ),
        "{csv}"
    );
    assert_eq!(lines.last(), Some(&",,,total,5,3,2,1,0,4,1,2,0,0,0,0"));

    // The table, in Vietnamese by default and in English on request.
    let (code, table, _) = report(db, story, &[]);
    assert_eq!(code, 0);
    for expected in [
        "Lần gửi",
        "Thôn",
        "Số nhận",
        "Đã gửi",
        "Xác nhận",
        "1/4",
        "quá 7 ngày người nhận chưa nhắn tin cho OA",
        "nhóm Zalo đã bị tắt",
        "Chưa xác nhận:",
        "Trưởng B · đã nhắc lúc T3 01/12/2026 10:00",
        "Trưởng A · T3 01/12/2026 08:10 · trả lời tin nhắn",
        "nhắc xác nhận",
        "Tổng cộng 2 lần gửi",
    ] {
        assert!(
            table.contains(expected),
            "{expected:?} missing from\n{table}"
        );
    }
    let total_row = table
        .lines()
        .filter(|l| l.trim_start().starts_with("Tổng "))
        .nth(1)
        .expect("the hop send's total row");
    let cells: Vec<&str> = total_row.split_whitespace().collect();
    assert_eq!(
        cells,
        ["Tổng", "4", "2", "2", "1", "1/4", "2", "0", "0", "0", "0"]
    );
    let (_, english, _) = report(db, story, &["--lang", "en"]);
    for expected in [
        "Village",
        "Delivered",
        "outside Zalo's 7-day window",
        "by reply",
    ] {
        assert!(
            english.contains(expected),
            "{expected:?} missing from\n{english}"
        );
    }

    // People: one row per delivery, the reminder's under its send, reasons in words.
    let people = json_of(db, story, &["--people"]);
    let rows = people.as_array().expect("rows");
    assert_eq!(rows.len(), 6, "five deliveries and the reminder's one");
    let refused = rows
        .iter()
        .find(|r| r["target"] == "200001" && r["follow_up"].is_null())
        .expect("Trưởng B's row");
    assert_eq!(refused["state"], json!("failed"));
    assert_eq!(refused["error_code"], json!("-230"));
    assert!(
        refused["reason_words"]
            .as_str()
            .is_some_and(|w| w.contains("7 ngày")),
        "{refused}"
    );
    let reminder = rows
        .iter()
        .find(|r| r["follow_up"] == "reminder")
        .expect("the reminder's row");
    assert_eq!(reminder["send_id"], json!(story.hop));
    let (code, people_csv, _) = report(db, story, &["--people", "--format", "csv"]);
    assert_eq!(code, 0);
    assert!(people_csv.contains(",c,group,cccccc01,,failed,-237,nhóm Zalo đã bị tắt,"));
    let (code, people_table, _) = report(db, story, &["--people"]);
    assert_eq!(code, 0);
    assert!(people_table.contains("Người nhận") && people_table.contains("không gửi được"));
}

#[test]
fn cannot_run_exits_2() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_loa"))
        .args(["report", "--config", "/nonexistent/loa.toml"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let dir = tempfile::tempdir().expect("tempdir");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_loa"))
        .args(["report", "--database"])
        .arg(format!(
            "sqlite://{}",
            dir.path().join("missing/dir/loa.db").display()
        ))
        .output()
        .expect("run");
    assert_eq!(
        out.status.code(),
        Some(2),
        "a database that cannot be opened"
    );
    // Run from the wrong directory (or with a mistyped path): no empty ledger is made and
    // reported as empty, for `loa report` nor `loa zalo status`.
    for args in [&["report"][..], &["zalo", "status"][..]] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_loa"))
            .args(args)
            .arg("--database")
            .arg(format!("sqlite://{}", dir.path().join("loa.db").display()))
            .current_dir(dir.path())
            .output()
            .expect("run");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains("no database at"), "{stderr}");
        assert!(
            !dir.path().join("loa.db").exists(),
            "{args:?} made a database"
        );
    }
}
