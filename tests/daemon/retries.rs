//! Sending through channels that fail or wait: retries that back off then succeed, fail or
//! expire, a chunk held past its lease, and an urgent send ahead of a long fan-out's rest.

use super::*;

/// A provider that fails as told: retry-later for the first `flaky` attempts of every message,
/// and finally for one target. It stands in for the provider's answers, which are what the
/// daemon's retry rules act on.
struct Scripted {
    flaky: i64,
    refuse: &'static str,
    attempts: Mutex<std::collections::HashMap<i64, i64>>,
}

impl Channel for Scripted {
    fn name(&self) -> &'static str {
        "scripted"
    }

    async fn send(&self, msg: &Outgoing<'_>) -> Result<Sent, SendError> {
        let n = {
            let mut a = self.attempts.lock().expect("lock");
            let n = a.entry(msg.delivery_id).or_insert(0);
            *n += 1;
            *n
        };
        if msg.target == self.refuse {
            return Err(SendError::Final {
                code: "-213".into(),
                reason: "user has not followed the OA".into(),
            });
        }
        if n <= self.flaky {
            return Err(SendError::RetryLater {
                code: "-32".into(),
                reason: "rate limit".into(),
                after: None,
                in_doubt: false,
            });
        }
        Ok(Sent {
            message_id: format!("m{}", msg.delivery_id),
            note: None,
        })
    }
}

#[tokio::test]
async fn retries_back_off_then_succeed_fail_or_expire() {
    let file = "title: TB\nsend:\n  - at: 2026-12-01 08:00\n";
    let dir = tempfile::tempdir().expect("tempdir");
    write_repo(dir.path(), &[("tb.yaml", file)]);
    let h = harness_with(
        dir,
        Scripted {
            flaky: 2,
            refuse: "200001",
            attempts: Mutex::default(),
        },
        "2026-12-01 07:00",
    )
    .await;
    let first = h.at("2026-12-01 08:00").await;
    assert_eq!(
        (first.sent, first.retrying, first.failed),
        (0, 2, 1),
        "{first:?}"
    );
    // Backoff: 60 s ±20% (48–72 s), then 240 s ±20% (192–288 s after 08:01:15, so by 08:06:03).
    assert_eq!(
        h.at("2026-12-01 08:00:30").await.sent,
        0,
        "not before the backoff"
    );
    assert_eq!(h.at("2026-12-01 08:01:15").await.retrying, 2);
    assert_eq!(h.at("2026-12-01 08:06:05").await.sent, 2);
    assert_eq!(
        (
            h.count(DeliveryState::Sent).await,
            h.count(DeliveryState::Failed).await
        ),
        (2, 1)
    );
    let attempts: i64 = sqlx::query("SELECT MAX(attempts) FROM deliveries")
        .fetch_one(h.daemon.store.pool())
        .await
        .expect("q")
        .try_get(0)
        .expect("n");
    assert_eq!(attempts, 3);
}

#[tokio::test]
async fn a_retry_past_the_deadline_expires() {
    let file =
        "title: TB\naudience: { villages: [a] }\ncatch_up: 2m\nsend:\n  - at: 2026-12-01 08:00\n";
    let dir = tempfile::tempdir().expect("tempdir");
    write_repo(dir.path(), &[("tb.yaml", file)]);
    let h = harness_with(
        dir,
        Scripted {
            flaky: 10,
            refuse: "",
            attempts: Mutex::default(),
        },
        "2026-12-01 07:00",
    )
    .await;
    let first = h.at("2026-12-01 08:00").await;
    assert_eq!(first.retrying, 1);
    h.at("2026-12-01 08:01:15").await;
    h.at("2026-12-01 08:10:00").await;
    assert_eq!(h.count(DeliveryState::Expired).await, 1);
}

/// Holds its first send until released; every send is written down, whichever daemon made it.
struct Gate {
    hold_first: std::sync::atomic::AtomicBool,
    release: std::sync::Arc<tokio::sync::Notify>,
    sent: std::sync::Arc<Mutex<Vec<String>>>,
}

impl Channel for Gate {
    fn name(&self) -> &'static str {
        "gate"
    }

    async fn send(&self, msg: &Outgoing<'_>) -> Result<Sent, SendError> {
        if self
            .hold_first
            .swap(false, std::sync::atomic::Ordering::SeqCst)
        {
            self.release.notified().await;
        }
        self.sent.lock().expect("lock").push(msg.target.to_string());
        Ok(Sent {
            message_id: format!("m{}", msg.delivery_id),
            note: None,
        })
    }
}

#[tokio::test]
async fn a_chunk_held_past_its_lease_is_not_sent_after_another_daemon_took_it() {
    // Daemon A's first send hangs (as behind Zalo's rate-limit pause) past the lease, with the
    // next chunk claimed ahead. Daemon B takes that chunk back and sends it. When A's send
    // returns, A must not send the chunk it no longer holds.
    let file = "title: Họp\naudience: { villages: [a, b] }\nsend:\n  - at: 2026-12-01 08:00\n";
    let h = harness(&[("hop.yaml", file)], "2026-12-01 07:00").await;
    let sent = std::sync::Arc::new(Mutex::new(Vec::new()));
    let release = std::sync::Arc::new(tokio::sync::Notify::new());
    let daemon = |node: &str, hold: bool| {
        let gate = Gate {
            hold_first: std::sync::atomic::AtomicBool::new(hold),
            release: release.clone(),
            sent: sent.clone(),
        };
        let settings = Settings {
            node: node.into(),
            concurrency: 1,
            ..settings(h.dir.path())
        };
        Daemon::new(h.daemon.store.clone(), gate, settings).with_clock(h.clock.clone())
    };
    let (a, b) = (std::sync::Arc::new(daemon("a", true)), daemon("b", false));
    a.load_all(t("2026-12-01 07:00")).await.expect("load a");
    b.load_all(t("2026-12-01 07:00")).await.expect("load b");
    let due = t("2026-12-01 08:00");
    h.clock.set(due);
    let sending = tokio::spawn({
        let a = a.clone();
        async move { a.tick(due, &|| false).await }
    });
    // A has one delivery on the wire and the next claimed ahead.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while h.count(DeliveryState::Sending).await < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "A never claimed ahead"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let later = due + jiff::SignedDuration::from_secs(31);
    h.clock.set(later);
    let report = b.tick(later, &|| false).await.expect("tick b");
    assert_eq!(report.sent, 2, "{report:?}");
    release.notify_one();
    sending.await.expect("join").expect("tick a");
    let mut targets = sent.lock().expect("lock").clone();
    let all = targets.len();
    targets.sort();
    targets.dedup();
    assert_eq!(all, targets.len(), "sent twice: {:?}", sent.lock());
    assert_eq!(all, 3, "{targets:?}");
}

#[tokio::test]
async fn an_urgent_send_due_during_a_long_fan_out_goes_ahead_of_its_rest() {
    // A routine notice to every head, one message a chunk and a budget spent by the first chunk:
    // each tick sends one chunk. A storm warning falling due after the first goes next, not
    // after the whole fan-out.
    let routine =
        "title: Thường\naudience: { roles: [village_head] }\nsend:\n  - at: 2026-12-01 08:00\n";
    let urgent = "title: Bão khẩn\npriority: urgent\naudience: { villages: [a] }\nsend:\n  - at: 2026-12-01 08:01\n";
    let h = harness(
        &[("thuong.yaml", routine), ("bao.yaml", urgent)],
        "2026-12-01 07:00",
    )
    .await;
    let log = h.dir.path().join("slow.jsonl");
    let settings = Settings {
        concurrency: 1,
        send_budget: std::time::Duration::ZERO,
        ..settings(h.dir.path())
    };
    let channel = LogChannel::open(Some(&log), std::time::Duration::ZERO).expect("log");
    let daemon = Daemon::new(h.daemon.store.clone(), channel, settings).with_clock(h.clock.clone());
    daemon.load_all(t("2026-12-01 07:00")).await.expect("load");
    for at in [
        "2026-12-01 08:00",
        "2026-12-01 08:01",
        "2026-12-01 08:01",
        "2026-12-01 08:01",
    ] {
        h.clock.set(t(at));
        daemon.tick(t(at), &|| false).await.expect("tick");
    }
    let titles: Vec<String> = std::fs::read_to_string(&log)
        .expect("sent")
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("json"))
        .map(|v| v["announcement"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(titles, ["thuong", "bao", "thuong", "thuong"], "{titles:?}");
}
