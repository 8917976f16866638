//! `loa run` as an operator runs it: it re-plans a saved file on its own, cancels a deleted one,
//! keeps the last good version of a broken one, re-reads everything on SIGHUP, and exits cleanly
//! on SIGTERM.

mod support;

use std::time::{Duration, Instant};

use sqlx::Row as _;

async fn scalar(store: &loa::ledger::Store, sql: &str) -> i64 {
    sqlx::query(sql)
        .fetch_one(store.pool())
        .await
        .map(|r| r.try_get::<i64, _>(0).unwrap_or(-1))
        .unwrap_or(-1)
}

async fn eventually(store: &loa::ledger::Store, sql: &str, want: i64) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let got = scalar(store, sql).await;
        if got == want {
            return;
        }
        assert!(Instant::now() < deadline, "{sql}: {got}, expected {want}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `loa run` on a new repository of `files` announcements due tomorrow (nothing is sent during a
/// test), with `env` besides its database and log channel; and its ledger.
async fn start(
    dir: &std::path::Path,
    files: usize,
    env: &[(&str, String)],
) -> (support::Running, loa::ledger::Store) {
    support::fanout_repo(dir, 2, files, &support::local_in(86_400));
    let db = format!("sqlite://{}", dir.join("loa.db").display());
    let mut all = vec![
        ("LOA_DATABASE", db.clone()),
        (
            "LOA_LOG_CHANNEL_PATH",
            dir.join("sent.jsonl").display().to_string(),
        ),
    ];
    all.extend(env.iter().cloned());
    let child = support::spawn_daemon(dir, &all);
    let store = loa::ledger::Store::open(&db).await.expect("open");
    (child, store)
}

/// Sends `signal` to the daemon.
fn kill(child: &support::Running, signal: &str) {
    std::process::Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .expect("kill");
}

/// Stops the daemon with SIGTERM and checks that it exits cleanly.
fn stop(mut child: support::Running) {
    kill(&child, "-TERM");
    let status = child.wait().expect("exit");
    assert!(status.success(), "graceful exit on SIGTERM: {status:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn reloads_on_change_and_signal_and_stops_cleanly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (child, store) = start(dir.path(), 3, &[]).await;
    eventually(&store, "SELECT COUNT(*) FROM revisions", 3).await;
    eventually(
        &store,
        "SELECT COUNT(*) FROM occurrences WHERE state = 'planned'",
        3,
    )
    .await;

    // A saved edit is a new revision, planned in place of the old one.
    let file = dir.path().join("announcements/tb-0000.yaml");
    let text = std::fs::read_to_string(&file).expect("read");
    std::fs::write(&file, text.replace("Thông báo 0", "Thông báo 0 (sửa)")).expect("write");
    eventually(&store, "SELECT COUNT(*) FROM revisions", 4).await;
    eventually(
        &store,
        "SELECT COUNT(*) FROM occurrences WHERE state = 'planned'",
        3,
    )
    .await;
    eventually(
        &store,
        "SELECT COUNT(*) FROM occurrences WHERE reason = 'superseded'",
        1,
    )
    .await;

    // A broken edit keeps the last good version and stores the problem.
    std::fs::write(
        dir.path().join("announcements/tb-0001.yaml"),
        "title: [hỏng\n",
    )
    .expect("write");
    eventually(
        &store,
        "SELECT COUNT(*) FROM announcements WHERE problems IS NOT NULL",
        1,
    )
    .await;
    eventually(
        &store,
        "SELECT COUNT(*) FROM occurrences WHERE state = 'planned'",
        3,
    )
    .await;

    // A deleted file's sends are cancelled.
    std::fs::remove_file(dir.path().join("announcements/tb-0002.yaml")).expect("remove");
    eventually(
        &store,
        "SELECT COUNT(*) FROM announcements WHERE status = 'deleted'",
        1,
    )
    .await;
    eventually(
        &store,
        "SELECT COUNT(*) FROM occurrences WHERE state = 'planned'",
        2,
    )
    .await;

    // SIGHUP re-reads everything: one more load recorded.
    let loads = scalar(&store, "SELECT COUNT(*) FROM loads").await;
    kill(&child, "-HUP");
    eventually(&store, "SELECT COUNT(*) FROM loads", loads + 1).await;
    stop(child);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_database_outage_is_waited_out_and_an_edit_made_during_it_is_planned_after() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut child, store) = start(dir.path(), 2, &[("LOA_MAX_SLEEP_MS", "100".into())]).await;
    eventually(&store, "SELECT COUNT(*) FROM revisions", 2).await;
    // The ledger fails every query the loop makes (as during a PostgreSQL fail-over), for long
    // enough that the loop runs into it several times, and a file is saved meanwhile.
    sqlx::query("ALTER TABLE occurrences RENAME TO occurrences_away")
        .execute(store.pool())
        .await
        .expect("take the table away");
    let file = dir.path().join("announcements/tb-0000.yaml");
    let text = std::fs::read_to_string(&file).expect("read");
    std::fs::write(&file, text.replace("Thông báo 0", "Thông báo 0 (sửa)")).expect("write");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        child.try_wait().expect("try_wait").is_none(),
        "the daemon waits the outage out"
    );
    sqlx::query("ALTER TABLE occurrences_away RENAME TO occurrences")
        .execute(store.pool())
        .await
        .expect("give the table back");
    // The edit refused during the outage is planned once the ledger answers.
    eventually(&store, "SELECT COUNT(*) FROM revisions", 3).await;
    eventually(
        &store,
        "SELECT COUNT(*) FROM occurrences WHERE state = 'planned'",
        2,
    )
    .await;
    stop(child);
}
