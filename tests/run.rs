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

#[tokio::test(flavor = "multi_thread")]
async fn reloads_on_change_and_signal_and_stops_cleanly() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Three announcements due tomorrow: nothing is sent during the test.
    support::fanout_repo(dir.path(), 2, 3, &support::local_in(86_400));
    let db = format!("sqlite://{}", dir.path().join("loa.db").display());
    let mut child = support::spawn_daemon(
        dir.path(),
        &[
            ("LOA_DATABASE", db.clone()),
            (
                "LOA_LOG_CHANNEL_PATH",
                dir.path().join("sent.jsonl").display().to_string(),
            ),
        ],
    );
    let store = loa::ledger::Store::open(&db).await.expect("open");
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
    std::process::Command::new("kill")
        .args(["-HUP", &child.id().to_string()])
        .status()
        .expect("kill -HUP");
    eventually(&store, "SELECT COUNT(*) FROM loads", loads + 1).await;

    std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill -TERM");
    let status = child.wait().expect("exit");
    assert!(status.success(), "graceful exit on SIGTERM: {status:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_database_outage_is_waited_out_and_an_edit_made_during_it_is_planned_after() {
    let dir = tempfile::tempdir().expect("tempdir");
    support::fanout_repo(dir.path(), 2, 2, &support::local_in(86_400));
    let db = format!("sqlite://{}", dir.path().join("loa.db").display());
    let mut child = support::spawn_daemon(
        dir.path(),
        &[
            ("LOA_DATABASE", db.clone()),
            ("LOA_MAX_SLEEP_MS", "100".into()),
            (
                "LOA_LOG_CHANNEL_PATH",
                dir.path().join("sent.jsonl").display().to_string(),
            ),
        ],
    );
    let store = loa::ledger::Store::open(&db).await.expect("open");
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
    std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill -TERM");
    let status = child.wait().expect("exit");
    assert!(status.success(), "graceful exit on SIGTERM: {status:?}");
}
