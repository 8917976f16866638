//! Receipts and reads from Zalo's webhooks: found through the recipient's recent sends, applied
//! once the outcome they raced is written, and a read reopening the 7-day window where configured.

use super::*;

#[tokio::test]
async fn receipts_find_a_person_through_their_recent_sends() {
    let mut all = support::databases().await;
    all.extend(support::postgres_icu().await);
    for db in all {
        let store = db.store().await;
        let (claimed, at) = claimed_at_two(&store, "n1", &[("bao", true)]).await;
        let lease = at + SignedDuration::from_secs(30);
        let to = |kind: &'static str, target: &str| NewDelivery {
            village_id: Some("lang-tre".into()),
            target_kind: kind,
            target: target.into(),
            person: None,
            text: "Xin chào".into(),
            fallback: None,
        };
        let deliveries = [
            to("user", "u1"),
            to("user", "u2"),
            to("phone", "84912345678"),
            to("group", "g1"),
        ];
        store
            .expand(C, &claimed[0], &deliveries, None, "n1", at)
            .await
            .expect("expand");
        let sending = store
            .claim_deliveries(C, "n1", at, lease, 10)
            .await
            .expect("claim");
        let ids = ["a1", "b1,b2", "z1", "gm"];
        let outcomes: Vec<Outcome> = sending
            .iter()
            .map(|d| {
                let i = deliveries
                    .iter()
                    .position(|n| n.target == d.target)
                    .expect("known target");
                Outcome::sent(d.id, Some(ids[i].into()))
            })
            .collect();
        let (recorded, next) = store
            .record_and_claim(
                C,
                "n1",
                &outcomes,
                at,
                Claim {
                    now: at,
                    lease_until: lease,
                    limit: 10,
                    chunk: None,
                },
            )
            .await
            .expect("record");
        assert_eq!((recorded, next.len()), (4, 0), "{}", db.name);

        let later = at + SignedDuration::from_hours(1);
        let apply = |id: &'static str, who: Option<&'static str>, r: Receipt, when| {
            let store = store.clone();
            async move {
                store
                    .apply_receipt(C, id, who, r, when)
                    .await
                    .expect("receipt")
            }
        };
        // Another person's id with this message id is not this delivery.
        assert_eq!(apply("a1", Some("u2"), Receipt::Delivered, later).await, 0);
        assert_eq!(apply("a1", Some("u1"), Receipt::Delivered, later).await, 1);
        // A text in parts counts from its first part.
        assert_eq!(apply("b1", Some("u2"), Receipt::Seen, later).await, 1);
        // A ZNS receipt names the phone.
        assert_eq!(
            apply("z1", Some("84912345678"), Receipt::Delivered, later).await,
            1
        );
        // A member's receipt for a message to their village group moves the group's delivery.
        assert_eq!(apply("gm", Some("u9"), Receipt::Delivered, later).await, 1);
        assert_eq!(apply("gm", None, Receipt::Seen, later).await, 1);
        // A receipt more than 30 days after the send no longer finds it.
        let month = at + SignedDuration::from_hours(31 * 24);
        assert_eq!(apply("a1", Some("u1"), Receipt::Seen, month).await, 0);
        assert_eq!(apply("a1", Some("u1"), Receipt::Seen, later).await, 1);
        let states = count(
            &store,
            "SELECT COUNT(*) FROM deliveries WHERE state = 'seen'",
        )
        .await;
        assert_eq!(states, 3, "{}", db.name);
    }
}

#[tokio::test]
async fn a_receipt_ahead_of_its_outcome_is_applied_once_the_outcome_is_written() {
    for db in support::databases().await {
        let store = db.store().await;
        let (claimed, at) = claimed_at_two(&store, "n1", &[("bao", false)]).await;
        let to = |target: &str| NewDelivery {
            village_id: Some("lang-tre".into()),
            target_kind: "user",
            target: target.into(),
            person: None,
            text: "Xin chào".into(),
            fallback: None,
        };
        store
            .expand(C, &claimed[0], &[to("u1"), to("u2")], None, "n1", at)
            .await
            .expect("expand");
        let sending = store
            .claim_deliveries(C, "n1", at, at + SignedDuration::from_hours(1), 10)
            .await
            .expect("claim");
        // Zalo tells of u1's message, and of u2's, before the chunk's outcomes are written; and of
        // a message loa never sent.
        let receipt = |key: &str, msg: &str, user: &str| {
            let body = serde_json::json!({
                "event_name": "user_received_message",
                "timestamp": at.as_millisecond().to_string(),
                "recipient": {"id": user},
                "message": {"msg_id": msg},
            });
            webhook(&store, key.to_string(), body, at)
        };
        let early = receipt("k1", "a1", "u1").await;
        let never = receipt("k2", "b1", "u2").await;
        let stranger = receipt("k3", "x1", "u3").await;
        let ctx = loa::confirm::events::Context::new(&loa::config::ConfirmConfig::default(), None);
        let pass = |now: Timestamp| {
            let (store, ctx) = (store.clone(), &ctx);
            async move {
                loa::confirm::events::apply_pending(&store, C, ctx, now)
                    .await
                    .expect("apply")
            }
        };
        let event = |id: i64| {
            let store = store.clone();
            async move {
                let r =
                    sqlx::query("SELECT processed_at, outcome FROM webhook_events WHERE id = $1")
                        .bind(id)
                        .fetch_one(store.pool())
                        .await
                        .expect("event");
                let processed: Option<i64> = r.try_get("processed_at").expect("processed_at");
                let outcome: Option<String> = r.try_get("outcome").expect("outcome");
                (processed.is_some(), outcome.unwrap_or_default())
            }
        };
        assert_eq!(pass(at).await, 3, "{}", db.name);
        assert_eq!(
            event(stranger).await,
            (true, "delivered: 0".into()),
            "{}",
            db.name
        );
        assert!(!event(early).await.0, "kept for later: {}", db.name);
        assert!(!event(never).await.0, "{}", db.name);

        let u1 = sending.iter().find(|d| d.target == "u1").expect("u1");
        let outcome = Outcome::sent(u1.id, Some("a1".into()));
        store
            .record_outcomes(C, "n1", &[outcome], at)
            .await
            .expect("record");
        // Put off for a few seconds, then applied.
        assert_eq!(
            pass(at + SignedDuration::from_secs(1)).await,
            0,
            "{}",
            db.name
        );
        assert_eq!(
            pass(at + SignedDuration::from_secs(6)).await,
            2,
            "{}",
            db.name
        );
        assert_eq!(
            event(early).await,
            (true, "delivered: 1".into()),
            "{}",
            db.name
        );
        let state = |target: &'static str| {
            let store = store.clone();
            async move {
                sqlx::query("SELECT state FROM deliveries WHERE target = $1")
                    .bind(target)
                    .fetch_one(store.pool())
                    .await
                    .expect("state")
                    .try_get::<String, _>("state")
                    .expect("text")
            }
        };
        assert_eq!(state("u1").await, "delivered", "{}", db.name);
        // u2's send never records an outcome: its receipt is given up after ten minutes.
        assert!(!event(never).await.0, "{}", db.name);
        assert_eq!(
            pass(at + SignedDuration::from_mins(11)).await,
            1,
            "{}",
            db.name
        );
        assert!(event(never).await.0, "{}", db.name);
        assert_eq!(state("u2").await, "sending", "{}", db.name);
    }
}

#[tokio::test]
async fn a_read_reopens_the_window_only_where_configured() {
    for db in support::databases().await {
        let store = db.store().await;
        let followed = t("2026-11-10T04:00:00Z");
        let read_at = t("2026-11-16T04:00:00Z");
        let seen: loa::deliver::zalo::wire::WebhookEvent = serde_json::from_str(&format!(
            r#"{{"event_name":"user_seen_message","timestamp":"{}","sender":{{"id":"oa"}},"recipient":{{"id":"u1"}},"message":{{"msg_ids":["m1"]}}}}"#,
            read_at.as_millisecond()
        ))
        .expect("event");
        for opens in [false, true] {
            store
                .set_following(C, "u1", true, followed)
                .await
                .expect("follow");
            let mut ctx =
                loa::confirm::events::Context::new(&loa::config::ConfirmConfig::default(), None);
            ctx.seen_opens_window = opens;
            loa::confirm::events::apply(&store, C, &ctx, &seen, read_at)
                .await
                .expect("apply");
            let last = count(
                &store,
                "SELECT last_interaction FROM followers WHERE user_id = 'u1'",
            )
            .await;
            let expected = if opens { read_at } else { followed };
            assert_eq!(
                last,
                expected.as_microsecond(),
                "{}: seen_opens_window = {opens}",
                db.name
            );
        }
    }
}
