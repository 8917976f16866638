//! Confirmations, confirm links, reminders and escalations on both backends.

use super::*;

/// Confirmations, confirm links, reminders and escalations on both backends: a follow-up is
/// written once however often it is attempted, and marks only its own confirmations.
#[tokio::test]
async fn follow_ups_on_every_backend() {
    for db in support::databases().await {
        let store = db.store().await;
        let (claimed, at) = claimed_at_two(&store, "n1", &[("bao", true)]).await;
        assert_eq!(claimed.len(), 1, "{}", db.name);
        let head = |village: &str, user: &str| NewConfirmation {
            village_id: village.into(),
            person: format!("Trưởng {village}"),
            user_id: Some(user.into()),
            phone: None,
            within: SignedDuration::from_hours(1),
            link_key: Some(format!("key-{village}")),
        };
        let confirmations = vec![head("lang-tre", "u1"), head("mit", "u2")];
        expand_with(&store, &claimed[0], &[target(1)], &confirmations, at).await;

        // Nothing is late before `within`; both heads are at `within`.
        assert!(
            store
                .late_confirmations(C, at)
                .await
                .expect("late")
                .is_empty()
        );
        let one_hour = at + SignedDuration::from_hours(1);
        // One head confirms by link: once; the second tap changes nothing.
        assert!(
            store
                .confirm_by_link(C, "key-lang-tre", at)
                .await
                .expect("link")
        );
        assert!(
            !store
                .confirm_by_link(C, "key-lang-tre", one_hour)
                .await
                .expect("again")
        );
        assert!(
            !store
                .confirm_by_link(C, "key-none", at)
                .await
                .expect("unknown")
        );
        let target_row = store
            .link_target(C, "key-lang-tre")
            .await
            .expect("target")
            .expect("found");
        assert_eq!(
            (
                target_row.state.as_str(),
                target_row.via.as_deref(),
                target_row.confirmed_at
            ),
            ("confirmed", Some("link"), Some(at))
        );
        assert_eq!(target_row.text.as_deref(), Some("Xin chào"));

        let late = store.late_confirmations(C, one_hour).await.expect("late");
        assert_eq!(late.len(), 1, "{}", db.name);
        assert_eq!(late[0].village_id, "mit");
        assert_eq!(late[0].stages(one_hour), vec![Stage::Remind]);
        let reminder = NewDelivery {
            village_id: Some("mit".into()),
            target_kind: "user",
            target: "u2".into(),
            person: Some("Trưởng mit".into()),
            text: "Nhắc lại".into(),
            fallback: None,
        };
        let follow_up = FollowUp {
            parent: &late[0],
            stage: Stage::Remind,
            confirmations: &[late[0].id],
            deliveries: std::slice::from_ref(&reminder),
            send_at: one_hour,
            deadline: one_hour + SignedDuration::from_hours(24),
        };
        // Built while a head was late, written after they confirmed (here: the head of
        // lang-tre, by link): nothing is written, and the next turn builds it from those still
        // late.
        let stale = FollowUp {
            parent: &late[0],
            stage: Stage::Remind,
            confirmations: &[late[0].id, target_row.id],
            deliveries: std::slice::from_ref(&reminder),
            send_at: one_hour,
            deadline: one_hour + SignedDuration::from_hours(24),
        };
        assert!(
            !store
                .record_follow_up(C, &stale, "n1", one_hour)
                .await
                .expect("stale"),
            "{}",
            db.name
        );
        assert!(
            store
                .record_follow_up(C, &follow_up, "n1", one_hour)
                .await
                .expect("remind")
        );
        assert!(
            !store
                .record_follow_up(C, &follow_up, "n2", one_hour)
                .await
                .expect("twice"),
            "{}: a second daemon writes nothing",
            db.name
        );
        assert_eq!(
            count(
                &store,
                "SELECT COUNT(*) FROM deliveries WHERE target = 'u2' AND state = 'planned'"
            )
            .await,
            1
        );
        assert!(
            store
                .late_confirmations(C, one_hour)
                .await
                .expect("late")
                .is_empty()
        );
        let two_hours = at + SignedDuration::from_hours(2);
        let late = store.late_confirmations(C, two_hours).await.expect("late");
        assert_eq!(late[0].stages(two_hours), vec![Stage::Escalate]);
        assert_eq!(late[0].reminded_at, Some(one_hour));
        let escalation = FollowUp {
            stage: Stage::Escalate,
            confirmations: &[late[0].id],
            deliveries: &[],
            send_at: two_hours,
            deadline: two_hours + SignedDuration::from_hours(24),
            parent: &late[0],
        };
        assert!(
            store
                .record_follow_up(C, &escalation, "n1", two_hours)
                .await
                .expect("escalate")
        );
        assert!(
            store
                .late_confirmations(C, two_hours)
                .await
                .expect("late")
                .is_empty()
        );
        assert_eq!(
            count(
                &store,
                "SELECT COUNT(*) FROM occurrences WHERE parent_id IS NOT NULL"
            )
            .await,
            2
        );
        // The reminder is due; one head still pending.
        assert_eq!(store.backlog(C, two_hours).await.expect("backlog"), (2, 1));

        // Regression: a reply applied again (after a crash between applying it and marking it
        // applied) was kept twice and confirmed a second, older request of the same head.
        let later = PlanChange {
            occurrences: vec![occ("bao", 0, "2026-11-24T04:00:00Z", true)],
            ..Default::default()
        };
        store
            .apply_plan(C, &later, t("2026-11-24T01:00:00Z"))
            .await
            .expect("plan");
        let at4 = t("2026-11-24T04:00:00Z");
        let claimed = store
            .claim_occurrences(C, "n1", at4, at4 + SignedDuration::from_secs(30), 10)
            .await
            .expect("claim");
        let again = vec![head("mit", "u2")];
        let mut second = again.clone();
        second[0].link_key = Some("key-mit-2".into());
        expand_with(&store, &claimed[0], &[target(2)], &second, at4).await;
        let ctx = loa::confirm::events::Context::new(&loa::config::ConfirmConfig::default(), None);
        let reply: loa::deliver::zalo::wire::WebhookEvent = serde_json::from_str(&format!(
            r#"{{"event_name":"user_send_text","timestamp":"{}","sender":{{"id":"u2"}},"message":{{"msg_id":"r1","text":"Đã nhận ạ"}}}}"#,
            (at4 + SignedDuration::from_mins(5)).as_millisecond()
        ))
        .expect("event");
        for _ in 0..2 {
            loa::confirm::events::apply(&store, C, &ctx, &reply, at4)
                .await
                .expect("apply");
        }
        assert_eq!(
            count(
                &store,
                "SELECT COUNT(*) FROM inbound_messages WHERE msg_id = 'r1'"
            )
            .await,
            1,
            "{}",
            db.name
        );
        assert_eq!(
            count(
                &store,
                "SELECT COUNT(*) FROM confirmations WHERE user_id = 'u2' AND state = 'confirmed'"
            )
            .await,
            1,
            "{}: one reply confirms one request",
            db.name
        );

        // The link key is made once and shared.
        let s1 = store
            .shared_secret(C, "confirm_link")
            .await
            .expect("secret");
        let s2 = store
            .shared_secret(C, "confirm_link")
            .await
            .expect("secret");
        assert_eq!(s1, s2);
        assert_eq!(s1.len(), 64);
    }
}

/// Heads asked only to confirm a send (the message was to reach them in their village group) are
/// sent the message itself when Zalo refuses the group: a request still waiting becomes the
/// message; for requests that went out, the send gets one follow-up (rule -3), which the next
/// refused group of the send, seen by another daemon, adds to.
#[tokio::test]
async fn heads_asked_only_to_confirm_get_the_message_when_their_group_is_refused() {
    for db in support::databases().await {
        let store = db.store().await;
        let (claimed, at) = claimed_at_two(&store, "n1", &[("hop", false)]).await;
        let send = &claimed[0];
        let request = |to: &str| NewDelivery {
            target_kind: "user",
            target: to.into(),
            person: Some(format!("Trưởng {to}")),
            text: "Thông báo “hop” đã được gửi vào nhóm Zalo của thôn.".into(),
            ..target(0)
        };
        let deliveries = [
            target(0),
            target(1),
            request("h0"),
            request("h1"),
            request("h2"),
        ];
        expand_with(&store, send, &deliveries, &[], at).await;
        // h0's and h2's requests went out; h1's waits for a retry.
        sqlx::query(
            "UPDATE deliveries SET state = CASE WHEN target = 'h1' THEN 'retrying' ELSE 'sent' END
             WHERE target_kind = 'user'",
        )
        .execute(store.pool())
        .await
        .expect("sent");
        sqlx::query("UPDATE deliveries SET state = 'failed', error_code = '-237' WHERE target_kind = 'group'")
            .execute(store.pool())
            .await
            .expect("refuse");
        let refused = store.refused_groups(C, at).await.expect("refused");
        assert_eq!(refused.len(), 2, "{}", db.name);
        let copy = |to: &str| HeadCopy {
            request: ("user".into(), to.into()),
            copy: NewDelivery {
                text: format!("Nhóm Zalo của thôn không nhận được thông báo này: {to}"),
                ..request(to)
            },
        };
        let later = at + SignedDuration::from_secs(5);
        let written = store
            .fail_over_group(
                C,
                &refused[0],
                &[],
                &[copy("h0"), copy("h1")],
                "n1",
                later,
                later,
            )
            .await
            .expect("fail over");
        assert_eq!(written, Some(2), "{}", db.name);
        let text_to = |to: &'static str, rule: i64| {
            let store = store.clone();
            async move {
                let rows: Vec<(String, String)> = sqlx::query_as(
                    "SELECT d.state, d.text FROM deliveries d JOIN occurrences o ON o.id = d.occurrence_id
                     WHERE d.target = $1 AND o.rule = $2",
                )
                .bind(to)
                .bind(rule)
                .fetch_all(store.pool())
                .await
                .expect("deliveries");
                rows
            }
        };
        // h1's request is now the message, still waiting for its retry; h0 gets it in the follow-up.
        assert_eq!(
            text_to("h1", 0).await,
            vec![(
                "retrying".into(),
                "Nhóm Zalo của thôn không nhận được thông báo này: h1".into()
            )],
            "{}",
            db.name
        );
        assert!(text_to("h1", -3).await.is_empty(), "{}", db.name);
        assert_eq!(
            text_to("h0", -3).await,
            vec![(
                "planned".into(),
                "Nhóm Zalo của thôn không nhận được thông báo này: h0".into()
            )],
            "{}",
            db.name
        );
        // The second group, failed over by another daemon: the same follow-up, one more head.
        let other = db.store().await;
        let written = other
            .fail_over_group(C, &refused[1], &[], &[copy("h2")], "n2", later, later)
            .await
            .expect("fail over");
        assert_eq!(written, Some(1), "{}", db.name);
        assert_eq!(
            count(
                &store,
                &format!(
                    "SELECT COUNT(*) FROM occurrences WHERE parent_id = {} AND rule = -3",
                    send.id
                )
            )
            .await,
            1,
            "{}",
            db.name
        );
        assert_eq!(text_to("h2", -3).await.len(), 1, "{}", db.name);
        // Due with the failover, and shown under the send in its report.
        let due: Vec<(String, i64)> = sqlx::query_as(
            "SELECT d.target, d.next_attempt_at FROM deliveries d JOIN occurrences o ON o.id = d.occurrence_id
             WHERE o.rule = -3 ORDER BY d.target",
        )
        .fetch_all(store.pool())
        .await
        .expect("due");
        let later_us = later.as_microsecond();
        assert_eq!(
            due,
            vec![("h0".into(), later_us), ("h2".into(), later_us)],
            "{}",
            db.name
        );
        let report = store
            .report(
                C,
                &report::Selection {
                    send: Some(send.id),
                    ..Default::default()
                },
            )
            .await
            .expect("report");
        let follow_ups: Vec<_> = report.sends[0]
            .follow_ups
            .iter()
            .map(|f| (f.kind, f.total.targeted))
            .collect();
        assert_eq!(
            follow_ups,
            vec![(report::FollowUpKind::Direct, 2)],
            "{}",
            db.name
        );
    }
}
