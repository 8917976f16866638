//! `loa send FILE --now`: a valid file goes out at once through the configured channel, recorded
//! in the ledger and summarised; an invalid file sends nothing and says where it is wrong.

use std::process::Command;

fn repo() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for sub in ["announcements", "templates"] {
        let from = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(sub);
        copy(&from, &dir.path().join(sub));
    }
    dir
}

fn copy(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read_dir") {
        let p = e.expect("entry").path();
        let name = p.file_name().expect("name").to_owned();
        if p.is_dir() {
            copy(&p, &to.join(name));
        } else {
            std::fs::copy(&p, to.join(name)).expect("copy");
        }
    }
}

fn loa(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_loa"))
        .args(args)
        .current_dir(dir)
        .env(
            "LOA_DATABASE",
            format!("sqlite://{}", dir.join("loa.db").display()),
        )
        .env("LOA_LOG_CHANNEL_PATH", dir.join("sends.jsonl"))
        .env("LOA_LOG", "warn")
        .env_remove("LOA_NOW")
        .output()
        .expect("loa")
}

#[test]
fn a_file_goes_out_at_once_and_its_reach_is_printed() {
    let repo = repo();
    let dir = repo.path();
    let out = loa(
        dir,
        &["send", "announcements/hop-thon-yen-ngua.yaml", "--now"],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}{stderr}");
    let sent = std::fs::read_to_string(dir.join("sends.jsonl")).expect("the log channel wrote");
    let lines = sent.lines().count();
    assert!(lines > 0);
    assert!(
        stderr.contains(&format!("{lines}/{lines}")),
        "the progress bar ends full: {stderr}"
    );
    assert!(stdout.contains("hop-thon-yen-ngua"), "{stdout}");
    assert!(stdout.contains("Tổng"), "{stdout}");
    // Sent by hand again: a second send, recorded as such, not a duplicate of the first.
    let again = loa(
        dir,
        &["send", "announcements/hop-thon-yen-ngua.yaml", "--now"],
    );
    assert!(again.status.success());
    let sent = std::fs::read_to_string(dir.join("sends.jsonl")).expect("log");
    assert_eq!(sent.lines().count(), 2 * lines);
    // Without --now nothing is sent.
    let refused = loa(dir, &["send", "announcements/hop-thon-yen-ngua.yaml"]);
    assert_eq!(refused.status.code(), Some(2));
}

#[test]
fn an_invalid_file_sends_nothing() {
    let repo = repo();
    let dir = repo.path();
    std::fs::write(
        dir.join("announcements/hong.yaml"),
        "title: Họp\nsend:\n  - at: 2026-02-30 08:00\n",
    )
    .expect("write");
    // In either order: `--now` before the file does not take the file's name for a time.
    for args in [
        ["send", "announcements/hong.yaml", "--now"],
        ["send", "--now", "announcements/hong.yaml"],
    ] {
        let out = loa(dir, &args);
        assert_eq!(out.status.code(), Some(1));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("announcements/hong.yaml:3:"), "{stderr}");
    }
    assert!(!dir.join("sends.jsonl").exists(), "nothing was sent");
}

#[test]
fn an_edit_that_fails_its_template_sends_nothing_not_the_last_good_version() {
    let repo = repo();
    let dir = repo.path();
    let file = dir.join("announcements/hop-thon-yen-ngua.yaml");
    // A first send records the meeting's good version in the ledger.
    assert!(
        loa(
            dir,
            &["send", "announcements/hop-thon-yen-ngua.yaml", "--now"]
        )
        .status
        .success()
    );
    let sent = std::fs::read_to_string(dir.join("sends.jsonl")).expect("log");
    // The edit the leader sends at once: a text over Zalo's 2,000 characters.
    let good = std::fs::read_to_string(&file).expect("read");
    let long = "Phổ biến kế hoạch phòng chống bão lũ. ".repeat(80);
    std::fs::write(
        &file,
        good.replace(
            "    - Bình xét hộ nghèo năm 2027",
            &format!("    - \"{long}\""),
        ),
    )
    .expect("write");
    let out = loa(
        dir,
        &["send", "announcements/hop-thon-yen-ngua.yaml", "--now"],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("hop-thon-yen-ngua.yaml"), "{stderr}");
    assert!(
        stderr.contains("2000") || stderr.contains("2.000"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("sends.jsonl")).expect("log"),
        sent,
        "nothing more was sent"
    );
}

#[tokio::test]
async fn ctrl_c_records_what_went_out_and_leaves_the_rest_to_the_daemon() {
    let repo = repo();
    let dir = repo.path();
    // One message at a time, a second and a half each: the send is still going when Ctrl-C comes.
    let child = Command::new(env!("CARGO_BIN_EXE_loa"))
        .args(["send", "announcements/tiem-phong-dai.yaml", "--now"])
        .current_dir(dir)
        .env(
            "LOA_DATABASE",
            format!("sqlite://{}", dir.join("loa.db").display()),
        )
        .env("LOA_LOG_CHANNEL_PATH", dir.join("sends.jsonl"))
        .env("LOA_LOG_CHANNEL_DELAY_MS", "1500")
        .env("LOA_CONCURRENCY", "1")
        .env("LOA_LOG", "warn")
        .env_remove("LOA_NOW")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("loa send");
    tokio::time::sleep(std::time::Duration::from_millis(1_800)).await;
    let interrupted = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill -INT");
    assert!(interrupted.success());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = rx
        .recv_timeout(std::time::Duration::from_secs(30))
        .expect("loa send stops")
        .expect("output");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "the rest is left: {stderr}");
    let store = loa::ledger::Store::open(&format!("sqlite://{}", dir.join("loa.db").display()))
        .await
        .expect("ledger");
    let counts = store.delivery_counts("default").await.expect("counts");
    let count =
        |s: loa::ledger::DeliveryState| counts.iter().find(|(k, _)| *k == s).map_or(0, |(_, n)| *n);
    use loa::ledger::DeliveryState::{Planned, Sending, Sent};
    assert_eq!(count(Sending), 0, "nothing left in doubt: {counts:?}");
    assert!(count(Sent) >= 1 && count(Planned) >= 1, "{counts:?}");
    assert!(
        stderr.contains("loa run"),
        "the rest is left to the daemon: {stderr}"
    );
}

#[tokio::test]
async fn only_the_named_file_is_planned_and_nothing_else_is_cancelled() {
    // Two checkouts share one ledger, as a leader's laptop beside the daemon on PostgreSQL: the
    // second lacks the meeting and holds a draft.
    let (first, second) = (repo(), repo());
    let db = first.path().join("loa.db");
    let send = |dir: &std::path::Path, file: &str| {
        Command::new(env!("CARGO_BIN_EXE_loa"))
            .args(["send", file, "--now"])
            .current_dir(dir)
            .env("LOA_DATABASE", format!("sqlite://{}", db.display()))
            .env("LOA_LOG_CHANNEL_PATH", dir.join("sends.jsonl"))
            .env("LOA_LOG", "warn")
            .env_remove("LOA_NOW")
            .output()
            .expect("loa send")
    };
    let out = send(first.path(), "announcements/hop-thon-yen-ngua.yaml");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::remove_file(second.path().join("announcements/hop-thon-yen-ngua.yaml")).expect("rm");
    std::fs::copy(
        second.path().join("announcements/cat-dien-2026-12-05.yaml"),
        second.path().join("announcements/nhap.yaml"),
    )
    .expect("draft");
    let out = send(second.path(), "announcements/tiem-phong-dai.yaml");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let store = loa::ledger::Store::open(&format!("sqlite://{}", db.display()))
        .await
        .expect("ledger");
    let stored = store.stored_announcements("default").await.expect("stored");
    let mut active: Vec<&str> = stored
        .iter()
        .filter(|(_, s)| s.active)
        .map(|(id, _)| id.as_str())
        .collect();
    active.sort_unstable();
    assert_eq!(
        active,
        ["hop-thon-yen-ngua", "tiem-phong-dai"],
        "the two files sent, nothing else planned, the meeting not cancelled"
    );
}

#[test]
fn messages_still_waiting_after_the_wait_exit_3() {
    let repo = repo();
    let dir = repo.path();
    // Every write fails (ENOSPC): each message waits for a retry past `--wait`.
    let out = Command::new(env!("CARGO_BIN_EXE_loa"))
        .args([
            "send",
            "announcements/hop-thon-yen-ngua.yaml",
            "--now",
            "--wait",
            "1",
        ])
        .current_dir(dir)
        .env(
            "LOA_DATABASE",
            format!("sqlite://{}", dir.join("loa.db").display()),
        )
        .env("LOA_LOG_CHANNEL_PATH", "/dev/full")
        .env("LOA_LOG", "warn")
        .env_remove("LOA_NOW")
        .output()
        .expect("loa send");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("loa run"), "{stderr}");
}

#[test]
fn a_file_that_is_a_symlink_keeps_its_name_and_a_hidden_draft_is_refused() {
    let repo = repo();
    let dir = repo.path();
    std::fs::create_dir_all(dir.join("thu-vien")).expect("mkdir");
    std::fs::copy(
        dir.join("announcements/tiem-phong-dai.yaml"),
        dir.join("thu-vien/tiem.yaml"),
    )
    .expect("copy");
    std::os::unix::fs::symlink(
        "../thu-vien/tiem.yaml",
        dir.join("announcements/tuan-nay.yaml"),
    )
    .expect("symlink");
    let out = loa(dir, &["send", "announcements/tuan-nay.yaml", "--now"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("tuan-nay"),
        "sent as the daemon names it: {stdout}"
    );
    // A draft under a hidden directory is not an announcement the daemon reads.
    std::fs::create_dir_all(dir.join("announcements/.nhap")).expect("mkdir");
    std::fs::copy(
        dir.join("thu-vien/tiem.yaml"),
        dir.join("announcements/.nhap/tiem.yaml"),
    )
    .expect("copy");
    let before = std::fs::read_to_string(dir.join("sends.jsonl")).expect("log");
    let out = loa(dir, &["send", "announcements/.nhap/tiem.yaml", "--now"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("sends.jsonl")).expect("log"),
        before,
        "nothing sent"
    );
}
