//! A real `loa run` killed with SIGKILL at random moments while 10,000 deliveries fall due,
//! restarted on the same SQLite file, ten times. In the end every delivery is in a final state,
//! none is lost, and duplicates happen only where the guarantee allows them: urgent deliveries in
//! flight at the kill are sent again and flagged (at least once); normal ones are never sent twice
//! (at most once: in doubt, they are marked unknown).

mod support;

use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_during_a_fan_out_loses_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    support::fanout_repo(dir.path(), 20, 500, &support::local_in(3));
    let db = format!("sqlite://{}", dir.path().join("loa.db").display());
    let log = dir.path().join("sent.jsonl");
    let env = vec![
        ("LOA_DATABASE", db.clone()),
        ("LOA_COMMUNE_ID", "crash".to_string()),
        ("LOA_LOG_CHANNEL_PATH", log.display().to_string()),
        ("LOA_LOG_CHANNEL_DELAY_MS", "15".to_string()),
        ("LOA_CONCURRENCY", "16".to_string()),
    ];
    let started = Instant::now();
    for kill in 0..10 {
        let mut child = support::spawn_daemon(dir.path(), &env);
        // The first run plans and waits for the due time; the others land anywhere in the fan-out.
        let wait = if kill == 0 {
            3_200
        } else {
            150 + rand::random::<u64>() % 600
        };
        tokio::time::sleep(Duration::from_millis(wait)).await;
        child.kill().expect("SIGKILL");
        child.wait().expect("reaped");
    }
    let mut child = support::spawn_daemon(dir.path(), &env);
    let store = loa::ledger::Store::open(&db).await.expect("open");
    support::wait_until_final(&store, 10_000, dir.path()).await;
    support::stop_daemon(&mut child);
    let rows = support::delivery_rows(&store).await;
    let sends = support::sends_per_delivery(&[log]);
    let (sent, duplicates, unknown) = support::assert_guarantees(&rows, &sends, 10_000);
    // The documented bound: a kill leaves at most two chunks (`concurrency` each) in doubt: the
    // one on the wire and the one answered but not yet written.
    let bound = 10 * 2 * 16;
    println!(
        "reliability (SIGKILL ×10 during a 10,000-recipient fan-out): lost 0, duplicates {duplicates} (bound {bound}, urgent and flagged), non-final 0; {sent} sent, {unknown} unknown (normal, in doubt); {:?}",
        started.elapsed()
    );
    assert_eq!(sent + unknown, 10_000, "lost: {}", 10_000 - sent - unknown);
    assert!(
        duplicates + unknown <= bound,
        "in doubt beyond the bound: {duplicates} + {unknown}"
    );
}
