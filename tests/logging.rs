//! The daemon's log, read where operators read it: through a pipe or a file (systemd's journal,
//! `2> loa.log`), it is plain text, with no terminal colour codes between a field and its value.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

mod support;

#[test]
fn a_log_that_is_not_a_terminal_has_no_colour_codes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = Command::new(env!("CARGO_BIN_EXE_loa"))
        .arg("run")
        .current_dir(dir.path())
        .env(
            "LOA_ANNOUNCEMENTS",
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("announcements"),
        )
        .env(
            "LOA_DATABASE",
            format!("sqlite://{}", dir.path().join("loa.db").display()),
        )
        .env("LOA_CHANNEL", "log")
        .env("LOA_LOG_CHANNEL_PATH", dir.path().join("sends.jsonl"))
        .env("LOA_LOG", "info")
        .env_remove("NO_COLOR")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("loa run");
    let stderr = child.stderr.take().expect("stderr");
    // Killed when this test lets go of it, even by panicking. A daemon that never logs its plan
    // would leave the read below waiting: the watchdog stops it after a minute, which ends the
    // log and fails the test instead. It holds the child weakly, so it cannot keep it alive.
    let child = std::sync::Arc::new(std::sync::Mutex::new(support::Running(child)));
    let watched = std::sync::Arc::downgrade(&child);
    std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_secs(60));
        if let Some(c) = watched.upgrade()
            && let Ok(mut c) = c.lock()
        {
            let _ = c.kill();
        }
    });
    let mut seen = Vec::new();
    for line in BufReader::new(stderr).lines() {
        let line = line.expect("a line of the log");
        let planned = line.contains("planned");
        seen.push(line);
        if planned {
            break;
        }
    }
    drop(child);
    let log = seen.join("\n");
    assert!(
        log.contains("planned files="),
        "the planner's line, with its fields: {log}"
    );
    assert!(!log.contains('\u{1b}'), "no escape codes: {log:?}");
}
