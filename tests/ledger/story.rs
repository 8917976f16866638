//! The storage story: one commune's planning, claims, outcomes, recovery and event log, told
//! in order on each backend.

use super::*;

#[tokio::test]
async fn storage_story_on_every_backend() {
    for db in support::databases().await {
        story(&db.store().await).await;
        // Migrations are idempotent: opening again applies nothing and loses nothing.
        let again = db.store().await;
        assert!(
            count(&again, "SELECT COUNT(*) FROM deliveries").await > 0,
            "{}",
            db.name
        );
    }
}

async fn story(store: &Store) {
    let now = t("2026-11-24T01:00:00Z");
    store
        .upsert_commune(C, "Xã Long Môn", now)
        .await
        .expect("commune");

    // Planning twice inserts once.
    let change = PlanChange {
        revisions: vec![rev("bao", "h1"), rev("hop", "h1")],
        occurrences: vec![
            occ("bao", 0, "2026-11-24T02:00:00Z", true),
            occ("bao", 1, "2026-11-24T06:00:00Z", true),
            occ("hop", 0, "2026-11-24T03:00:00Z", false),
        ],
        planned_until: Some(t("2026-11-26T00:00:00Z")),
        ..Default::default()
    };
    let first = store.apply_plan(C, &change, now).await.expect("plan");
    assert_eq!((first.revisions, first.inserted), (2, 3));
    let second = store.apply_plan(C, &change, now).await.expect("plan again");
    assert_eq!(
        (second.revisions, second.inserted),
        (0, 0),
        "re-planning never duplicates"
    );
    assert_eq!(
        store.planned_until(C).await.expect("until"),
        Some(t("2026-11-26T00:00:00Z"))
    );

    // An edit is a new revision: its future sends replace the old ones, never add to them.
    let edit = PlanChange {
        revisions: vec![rev("bao", "h2")],
        occurrences: vec![
            occ("bao", 1, "2026-11-24T06:00:00Z", true),
            occ("bao", 1, "2026-11-24T12:00:00Z", true),
        ],
        ..Default::default()
    };
    let edited = store.apply_plan(C, &edit, now).await.expect("edit");
    assert_eq!(
        (edited.revisions, edited.cancelled, edited.inserted),
        (1, 2, 2)
    );
    assert_eq!(edited.current.get("bao"), Some(&2));
    assert_eq!(
        count(
            store,
            "SELECT COUNT(*) FROM occurrences WHERE state = 'planned' AND announcement_id = 'bao'"
        )
        .await,
        2
    );
    let stored = store.stored_announcements(C).await.expect("stored");
    assert_eq!(stored["bao"].revision, 2);
    assert_eq!(
        store
            .revision_source(C, "bao", 1)
            .await
            .expect("source")
            .map(|s| s.1),
        Some("title: bao\n".into())
    );

    // Claims: only what is due; exclusive; taken over after the lease.
    let at = t("2026-11-24T03:00:00Z");
    let lease = at + SignedDuration::from_secs(30);
    let claimed = store
        .claim_occurrences(C, "node-a", at, lease, 10)
        .await
        .expect("claim");
    assert_eq!(
        claimed
            .iter()
            .map(|c| c.announcement_id.as_str())
            .collect::<Vec<_>>(),
        ["hop"]
    );
    assert!(
        store
            .claim_occurrences(C, "node-b", at, lease, 10)
            .await
            .expect("claim")
            .is_empty()
    );
    let taken = store
        .claim_occurrences(
            C,
            "node-b",
            lease + SignedDuration::from_secs(1),
            lease + SignedDuration::from_secs(60),
            10,
        )
        .await
        .expect("take over");
    assert_eq!(
        taken.len(),
        1,
        "a dead claimant's occurrence is taken over after its lease"
    );

    // The daemon whose claim was taken over, still rendering, changes nothing when it is done:
    // neither its deliveries nor its decision (missed, held) are written over node-b's claim.
    let targets: Vec<NewDelivery> = (0..5).map(target).collect();
    let stale = &claimed[0];
    assert_eq!(
        store
            .expand(C, stale, &targets, None, "node-a", at)
            .await
            .expect("stale expand"),
        0
    );
    store
        .expand(C, stale, &targets, Some("deadline passed"), "node-a", at)
        .await
        .expect("stale miss");
    store
        .fail_occurrence(
            stale.id,
            loa::ledger::OccurrenceState::Missed,
            "render failed",
            "node-a",
            at,
        )
        .await
        .expect("stale fail");
    store
        .hold_occurrence(stale.id, at + SignedDuration::from_hours(3), "node-a", at)
        .await
        .expect("stale hold");
    let held_by_b = count(
        store,
        "SELECT COUNT(*) FROM occurrences WHERE state = 'claimed' AND claimed_by = 'node-b' AND reason IS NULL",
    )
    .await;
    assert_eq!(held_by_b, 1, "node-b's claim stands");
    assert_eq!(
        count(store, "SELECT COUNT(*) FROM deliveries").await,
        0,
        "nothing expanded by node-a"
    );

    // Expansion is idempotent.
    let hop = &taken[0];
    assert_eq!(
        store
            .expand(C, hop, &targets, None, "node-b", at)
            .await
            .expect("expand"),
        5
    );
    assert_eq!(
        store
            .expand(C, hop, &targets, None, "node-b", at)
            .await
            .expect("again"),
        0
    );

    // Deliveries: claimed in chunks, outcomes recorded per recipient.
    let d = store
        .claim_deliveries(C, "node-b", at, lease, 3)
        .await
        .expect("claim deliveries");
    assert_eq!(d.len(), 3);
    assert!(d.iter().all(|x| x.attempts == 1));
    let rest = store
        .claim_deliveries(C, "node-c", at, lease, 10)
        .await
        .expect("claim rest");
    assert_eq!(rest.len(), 2, "another node gets only the others");
    let sent_id = d[0].id;
    let outcomes = vec![
        Outcome::sent(d[0].id, Some("m1".into())),
        Outcome {
            state: DeliveryState::Retrying,
            error_code: Some("-32".into()),
            error_reason: Some("rate limit".into()),
            next_attempt_at: Some(at + SignedDuration::from_mins(5)),
            not_an_attempt: true,
            ..Outcome::sent(d[1].id, None)
        },
        Outcome {
            state: DeliveryState::Failed,
            error_code: Some("-213".into()),
            error_reason: Some("not a follower".into()),
            ..Outcome::sent(d[2].id, None)
        },
    ];
    assert_eq!(
        store
            .record_outcomes(C, "node-b", &outcomes, at)
            .await
            .expect("record"),
        3
    );
    // A refusal for now (the rate limit, a night ban) is not counted among the attempts.
    let attempts = |id: i64| {
        let sql = format!("SELECT attempts FROM deliveries WHERE id = {id}");
        async move { count(store, &sql).await }
    };
    assert_eq!((attempts(d[1].id).await, attempts(d[2].id).await), (0, 1));
    // Each row gets its own outcome, whichever way it travelled (a plain success and the others
    // are written by different statements on SQLite), and the claim is let go.
    for (id, want) in [
        (d[0].id, "sent m1 - - 0"),
        (d[1].id, "retrying - -32 rate limit 1"),
        (d[2].id, "failed - -213 not a follower 0"),
    ] {
        let row = sqlx::query(
            "SELECT state, provider_message_id, error_code, error_reason, next_attempt_at, claimed_by, lease_until
             FROM deliveries WHERE id = $1",
        )
        .bind(id)
        .fetch_one(store.pool())
        .await
        .expect("row");
        let text = |i: usize| {
            row.try_get::<Option<String>, _>(i)
                .expect("text")
                .unwrap_or_else(|| "-".into())
        };
        let next: i64 = row.try_get(4).expect("next");
        let got = format!(
            "{} {} {} {} {}",
            text(0),
            text(1),
            text(2),
            text(3),
            i64::from(next > loa::ledger::micros(at))
        );
        assert_eq!(got, want, "delivery {id}");
        assert_eq!(
            (text(5), row.try_get::<Option<i64>, _>(6).expect("lease")),
            ("-".to_string(), None)
        );
    }

    // A node that lost its claim cannot overwrite the outcome.
    assert_eq!(
        store
            .record_outcomes(C, "node-x", &outcomes[..1], at)
            .await
            .expect("record"),
        0
    );

    // node-c died with two in flight (normal priority): after the lease they are unknown.
    let (resend, unknown) = store
        .recover_in_doubt(C, "node-b", lease + SignedDuration::from_secs(1), false)
        .await
        .expect("recover");
    assert_eq!((resend, unknown), (0, 2));

    // Urgent in doubt is sent again, flagged.
    let bao = store
        .claim_occurrences(
            C,
            "node-a",
            t("2026-11-24T06:00:00Z"),
            t("2026-11-24T06:00:30Z"),
            10,
        )
        .await
        .expect("claim");
    let bao: Vec<_> = bao
        .into_iter()
        .filter(|o| o.announcement_id == "bao")
        .collect();
    assert_eq!(
        bao.len(),
        1,
        "only revision 2's 06:00 send: the edit superseded revision 1's 02:00"
    );
    assert_eq!(bao[0].revision, 2);
    for o in &bao {
        store
            .expand(C, o, &[target(9)], None, "node-a", o.send_at)
            .await
            .expect("expand");
    }
    // The rate-limited retry is due too, but urgent work goes first.
    let sending = store
        .claim_deliveries(
            C,
            "node-a",
            t("2026-11-24T06:00:00Z"),
            t("2026-11-24T06:00:30Z"),
            1,
        )
        .await
        .expect("claim");
    assert_eq!(sending.len(), 1);
    assert!(sending[0].urgent);
    let (resend, unknown) = store
        .recover_in_doubt(C, "node-a", t("2026-11-24T06:00:00Z"), true)
        .await
        .expect("recover all");
    assert_eq!((resend, unknown), (1, 0));
    let again = store
        .claim_deliveries(
            C,
            "node-a",
            t("2026-11-24T06:00:01Z"),
            t("2026-11-24T06:00:31Z"),
            1,
        )
        .await
        .expect("claim");
    assert_eq!(again.len(), 1);
    assert!(
        again
            .iter()
            .all(|d| d.possible_duplicate && d.attempts == 2)
    );

    // Deadlines: a retry that can no longer happen in time expires.
    assert_eq!(
        store
            .expire_overdue(C, "node-a", t("2026-11-25T00:00:00Z"))
            .await
            .expect("expire"),
        1,
        "the rate-limited retry"
    );

    // Deleting a file cancels its future sends.
    let del = PlanChange {
        deleted: vec!["bao".into()],
        ..Default::default()
    };
    assert_eq!(
        store
            .apply_plan(C, &del, now)
            .await
            .expect("delete")
            .cancelled,
        1,
        "the 12:00 send"
    );

    // Every state change is in the event log.
    let events = count(store, "SELECT COUNT(*) FROM delivery_events").await;
    assert!(
        events >= 20, // 5 planned, 5 sending, 3 outcomes, 2 unknown, 1 planned, 1 sending, 1 retrying, 1 sending, 1 expired
        "events: {events}"
    );
    let counts = store.delivery_counts(C).await.expect("counts");
    let get = |s: DeliveryState| counts.iter().find(|(k, _)| *k == s).map_or(0, |(_, n)| *n);
    assert_eq!(
        (
            get(DeliveryState::Sent),
            get(DeliveryState::Failed),
            get(DeliveryState::Unknown),
            get(DeliveryState::Expired)
        ),
        (1, 1, 2, 1)
    );
    assert!(store.next_due(C).await.expect("next").is_some());

    // A text from a person with nothing pending to confirm is kept, and confirms nothing.
    let (inbound, _) = store
        .record_inbound(C, "u1", Some("t1"), "đã nhận", at)
        .await
        .expect("inbound");
    assert_eq!(
        store
            .confirm_by_reply(C, "u1", inbound, at)
            .await
            .expect("confirm"),
        None
    );

    // Zalo's receipts move the sent one forward, never back; one for a text sent in parts (ids
    // "m1,…") names its first part; webhook events are stored once per key.
    assert_eq!(
        store
            .apply_receipt(C, "m1", None, Receipt::Delivered, at)
            .await
            .expect("receipt"),
        1
    );
    assert_eq!(
        store
            .apply_receipt(C, "m", None, Receipt::Delivered, at)
            .await
            .expect("prefix"),
        0
    );
    assert_eq!(
        store
            .apply_receipt_by_delivery(C, sent_id, Receipt::Seen, at)
            .await
            .expect("seen"),
        1
    );
    assert_eq!(
        store
            .apply_receipt(C, "m1", None, Receipt::Delivered, at)
            .await
            .expect("late"),
        0
    );
    assert_eq!(
        store
            .apply_receipt(C, "m9", None, Receipt::Seen, at)
            .await
            .expect("unknown"),
        0
    );
    let first = store
        .store_webhook(C, "k1", "follow", "{}", at)
        .await
        .expect("store");
    assert!(first.is_some());
    assert_eq!(
        store
            .store_webhook(C, "k1", "follow", "{}", at)
            .await
            .expect("again"),
        None
    );
    assert_eq!(
        store
            .claim_webhooks(C, 10, at, at + SignedDuration::from_mins(5))
            .await
            .expect("pending")
            .len(),
        1
    );
}
