//! Webhook events as work: claimed by one daemon at a time (a dead one's after its lease), one
//! the database refuses not holding up the others, nor a thank-you stuck behind a fan-out.

use super::*;

#[tokio::test]
async fn daemons_claim_disjoint_webhook_events_and_a_dead_ones_after_its_lease() {
    // Two daemons woken by the same burst of webhooks: each event is applied by one of them (a
    // reply applied by both thanked its head twice).
    for db in support::databases().await {
        let (a, b) = (db.store().await, db.store().await);
        let at = Timestamp::from_second(1_790_000_000).expect("at");
        for i in 0..100 {
            a.store_webhook(C, &format!("k{i}"), "follow", "{}", at)
                .await
                .expect("store");
        }
        let lease = at + SignedDuration::from_mins(5);
        let (x, y) = tokio::join!(
            a.claim_webhooks(C, 60, at, lease),
            b.claim_webhooks(C, 60, at, lease)
        );
        let (x, y) = (x.expect("claim a"), y.expect("claim b"));
        let mut ids: Vec<i64> = x.iter().chain(&y).map(|e| e.id).collect();
        let claimed = ids.len();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), claimed, "no event claimed twice: {}", db.name);
        assert_eq!(claimed, 100, "{}", db.name);
        // Still held a minute later; after the lease, whatever was not finished is claimed again.
        let later = at + SignedDuration::from_mins(1);
        let again = a.claim_webhooks(C, 200, later, later + SignedDuration::from_mins(5));
        assert!(again.await.expect("held").is_empty(), "{}", db.name);
        for e in &x {
            a.finish_webhook(e.id, "follow", later)
                .await
                .expect("finish");
        }
        let after = lease + SignedDuration::from_secs(1);
        let orphans = b
            .claim_webhooks(C, 200, after, after + SignedDuration::from_mins(5))
            .await
            .expect("after the lease");
        assert_eq!(orphans.len(), y.len(), "{}", db.name);
        assert!(
            orphans.windows(2).all(|w| w[0].id < w[1].id),
            "oldest first"
        );
        // A restarted single daemon releases what its crashed run held, without waiting.
        assert_eq!(
            b.release_webhook_claims(C).await.expect("release"),
            y.len() as u64,
            "{}",
            db.name
        );
        let again = b
            .claim_webhooks(C, 200, after, after + SignedDuration::from_mins(5))
            .await
            .expect("claim at once");
        assert_eq!(again.len(), y.len(), "{}", db.name);
    }
}

#[tokio::test]
async fn an_event_the_database_refuses_does_not_hold_up_the_others() {
    for db in support::databases().await {
        let store = db.store().await;
        let at = t("2026-11-24T02:00:00Z");
        store
            .upsert_commune(C, "Xã Long Môn", at)
            .await
            .expect("commune");
        let text_event = |key: &str, text: &str| {
            let body = serde_json::json!({
                "event_name": "user_send_text",
                "timestamp": at.as_millisecond().to_string(),
                "sender": {"id": "u1"},
                "message": {"msg_id": key, "text": text},
            });
            webhook(&store, key.to_string(), body, at)
        };
        // The database refuses one reply (as it would a reply it cannot store); a reply with a
        // NUL in it (PostgreSQL's text cannot hold one) and a follow come after it.
        let refusal: &[&str] = match db.name {
            "sqlite" => &["CREATE TRIGGER refuse BEFORE INSERT ON inbound_messages WHEN NEW.text = 'độc'
                           BEGIN SELECT RAISE(ABORT, 'refused'); END"],
            _ => &[
                "CREATE FUNCTION refuse() RETURNS trigger AS $$ BEGIN
                   IF NEW.text = 'độc' THEN RAISE EXCEPTION 'refused'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql",
                "CREATE TRIGGER refuse BEFORE INSERT ON inbound_messages FOR EACH ROW EXECUTE FUNCTION refuse()",
            ],
        };
        for sql in refusal {
            sqlx::query(sql)
                .execute(store.pool())
                .await
                .expect("refusal");
        }
        let bad = text_event("m1", "độc").await;
        let nul = text_event("m2", "ok\u{0}").await;
        let ctx = loa::confirm::events::Context::new(&loa::config::ConfirmConfig::default(), None);
        let taken = loa::confirm::events::apply_pending(&store, C, &ctx, at)
            .await
            .expect("the others went through");
        assert_eq!(taken, 2, "{}", db.name);
        let processed = |id: i64| {
            let store = store.clone();
            async move {
                sqlx::query("SELECT processed_at FROM webhook_events WHERE id = $1")
                    .bind(id)
                    .fetch_one(store.pool())
                    .await
                    .expect("event")
                    .try_get::<Option<i64>, _>("processed_at")
                    .expect("processed_at")
                    .is_some()
            }
        };
        assert!(!processed(bad).await, "kept for later: {}", db.name);
        assert!(processed(nul).await, "{}", db.name);
        assert_eq!(
            count(&store, "SELECT COUNT(*) FROM inbound_messages").await,
            1,
            "{}",
            db.name
        );
        // Tried again a minute later, and given up after a day, its error kept.
        let later = loa::confirm::events::apply_pending(
            &store,
            C,
            &ctx,
            at + SignedDuration::from_secs(30),
        )
        .await
        .expect("nothing due");
        assert_eq!(later, 0, "{}", db.name);
        assert!(
            loa::confirm::events::apply_pending(
                &store,
                C,
                &ctx,
                at + SignedDuration::from_hours(25)
            )
            .await
            .is_err(),
            "every event of that batch failed: the caller waits"
        );
        assert!(processed(bad).await, "given up: {}", db.name);
    }
}

#[tokio::test]
async fn a_thank_you_stuck_behind_a_fan_out_does_not_hold_up_the_events_after_it() {
    let db = support::sqlite();
    let store = db.store().await;
    let (claimed, at) = claimed_at_two(&store, "n1", &[("bao", true)]).await;
    let head = NewConfirmation {
        village_id: "lang-tre".into(),
        person: "Trưởng Làng Trê".into(),
        user_id: Some("u1".into()),
        phone: None,
        within: SignedDuration::from_hours(1),
        link_key: None,
    };
    expand_with(&store, &claimed[0], &[], std::slice::from_ref(&head), at).await;
    let event = |key: &str, body: serde_json::Value| webhook(&store, key.to_string(), body, at);
    let ms = at.as_millisecond().to_string();
    event(
        "r1",
        serde_json::json!({"event_name": "user_send_text", "timestamp": ms, "sender": {"id": "u1"}, "message": {"msg_id": "r1", "text": "đã nhận"}}),
    )
    .await;
    event(
        "f1",
        serde_json::json!({"event_name": "follow", "timestamp": ms, "follower": {"id": "u7"}}),
    )
    .await;
    // The thanks channel takes an hour per message (as behind a long urgent fan-out).
    let dir = tempfile::tempdir().expect("tempdir");
    let slow = loa::deliver::log::LogChannel::open(
        Some(&dir.path().join("thanks.jsonl")),
        std::time::Duration::from_secs(3600),
    )
    .expect("log");
    let ctx = loa::confirm::events::Context::new(
        &loa::config::ConfirmConfig::default(),
        Some(std::sync::Arc::new(loa::deliver::select::AnyChannel::Log(
            slow,
        ))),
    );
    let applied = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        loa::confirm::events::apply_pending(&store, C, &ctx, at),
    )
    .await
    .expect("the events after the reply were not held up")
    .expect("applied");
    assert_eq!(applied, 2);
    assert_eq!(
        count(
            &store,
            "SELECT COUNT(*) FROM webhook_events WHERE processed_at IS NOT NULL"
        )
        .await,
        2
    );
    assert_eq!(
        count(
            &store,
            "SELECT COUNT(*) FROM confirmations WHERE state = 'confirmed'"
        )
        .await,
        1
    );
}
