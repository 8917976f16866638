//! Three daemons on one PostgreSQL database share a fan-out; one is killed mid-send. Each delivery
//! is attempted by one daemon at a time: a second attempt happens only to an urgent delivery left
//! in flight by the dead daemon (taken over after its lease, flagged as a possible duplicate).

mod support;

use std::time::Duration;

use sqlx::Row as _;

#[tokio::test(flavor = "multi_thread")]
async fn two_daemons_share_the_work() {
    share(2, false).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn three_daemons_share_the_work_and_take_over_a_dead_one() {
    share(3, true).await;
}

async fn share(daemons: usize, kill_one: bool) {
    let Some(db) = support::postgres().await else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must set LOA_TEST_DATABASE_URL"
        );
        eprintln!("skipped: LOA_TEST_DATABASE_URL is not set");
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    support::fanout_repo(dir.path(), 5, 300, &support::local_in(4));
    let logs: Vec<_> = (0..3)
        .map(|i| dir.path().join(format!("sent-{i}.jsonl")))
        .collect();
    let mut children: Vec<_> = (0..daemons)
        .map(|i| {
            support::spawn_daemon(
                dir.path(),
                &[
                    ("LOA_DATABASE", db.url.clone()),
                    ("LOA_COMMUNE_ID", format!("multi-{daemons}")),
                    ("LOA_NODE_ID", format!("node-{i}")),
                    ("LOA_LOG_CHANNEL_PATH", logs[i].display().to_string()),
                    ("LOA_LOG_CHANNEL_DELAY_MS", "20".to_string()),
                    ("LOA_CONCURRENCY", "8".to_string()),
                    ("LOA_LEASE_SECS", "5".to_string()),
                    ("LOA_MAX_SLEEP_MS", "500".to_string()),
                ],
            )
        })
        .collect();
    // Kill one daemon in the middle of the fan-out.
    tokio::time::sleep(Duration::from_millis(4_600)).await;
    if kill_one {
        children[0].kill().expect("SIGKILL");
        children[0].wait().expect("reaped");
    }
    let store = db.store().await;
    support::wait_until_final(&store, 1500, dir.path()).await;
    for child in &mut children[usize::from(kill_one)..] {
        support::stop_daemon(child);
    }
    let rows = support::delivery_rows(&store).await;
    let sends = support::sends_per_delivery(&logs);
    let (sent, duplicates, unknown) = support::assert_guarantees(&rows, &sends, 1500);
    // Attempts per delivery, from the event log: a second `sending` only after a takeover, and
    // then either flagged (it was on the wire) or released first (claimed ahead, never sent:
    // back to `planned`, a second `planned` event).
    let attempts = sqlx::query(
        "SELECT d.id, d.possible_duplicate,
                SUM(CASE WHEN e.state = 'sending' THEN 1 ELSE 0 END) AS sending,
                SUM(CASE WHEN e.state = 'planned' THEN 1 ELSE 0 END) AS planned
         FROM deliveries d JOIN delivery_events e ON e.delivery_id = d.id
         GROUP BY d.id, d.possible_duplicate HAVING SUM(CASE WHEN e.state = 'sending' THEN 1 ELSE 0 END) > 1",
    )
    .fetch_all(store.pool())
    .await
    .expect("attempts");
    let mut released = 0;
    for r in &attempts {
        let dup: i64 = r.try_get(1).expect("dup");
        let planned: i64 = r.try_get(3).expect("planned");
        released += usize::from(dup == 0);
        assert!(
            dup == 1 || planned >= 2,
            "delivery {:?} attempted twice outside the in-flight window",
            r.try_get::<i64, _>(0)
        );
    }
    let per_node = sqlx::query("SELECT node, COUNT(*) FROM delivery_events WHERE state = 'sent' GROUP BY node ORDER BY node")
        .fetch_all(store.pool())
        .await
        .expect("per node");
    let nodes: Vec<(String, i64)> = per_node
        .iter()
        .map(|r| (r.try_get(0).expect("node"), r.try_get(1).expect("n")))
        .collect();
    // The documented bound: the killed daemon's chunk on the wire and the one answered but not
    // yet written (`LOA_CONCURRENCY` each) are in doubt.
    let bound = 2 * 8;
    println!(
        "reliability ({daemons} daemons on PostgreSQL, one killed: {kill_one}): lost 0, duplicates {duplicates} (bound {bound}, urgent and flagged), non-final 0; {sent} sent, {unknown} unknown, {} re-attempted ({released} claimed ahead and released unsent), sent per node {nodes:?}",
        attempts.len()
    );
    assert!(duplicates + unknown <= bound, "in doubt beyond the bound");
    assert!(nodes.len() >= 2, "the work was shared: {nodes:?}");
}
