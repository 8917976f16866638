//! One storage story, run on SQLite and on PostgreSQL: planning never duplicates, claims are
//! exclusive and expire, expansion is idempotent, outcomes and in-doubt recovery follow the
//! documented guarantees, and every change lands in the event log.

mod support;

use jiff::{SignedDuration, Timestamp};
use loa::ledger::*;
use sqlx::Row as _;

const C: &str = "long-mon";

fn t(s: &str) -> Timestamp {
    s.parse().expect("timestamp")
}

fn occ(id: &str, rule: i64, due: &str, urgent: bool) -> NewOccurrence {
    NewOccurrence {
        announcement_id: id.into(),
        rule,
        due: t(due),
        send_at: t(due),
        deadline: t(due) + SignedDuration::from_hours(6),
        trigger: r#"{"type":"once"}"#.into(),
        urgent,
    }
}

fn rev(id: &str, hash: &str) -> NewRevision {
    NewRevision {
        announcement_id: id.into(),
        content_hash: hash.into(),
        git_commit: None,
        path: format!("{id}.yaml"),
        source: format!("title: {id}\n"),
    }
}

fn target(n: usize) -> NewDelivery {
    NewDelivery {
        village_id: Some("lang-tre".into()),
        target_kind: "group",
        target: format!("g{n}"),
        person: None,
        text: "Xin chào".into(),
        fallback: None,
    }
}

/// The state of the confirmation a link's key names.
async fn link_state(store: &Store, key: &str) -> String {
    store
        .link_target(C, key)
        .await
        .expect("target")
        .expect("found")
        .state
}

async fn count(store: &Store, sql: &str) -> i64 {
    sqlx::query(sql)
        .fetch_one(store.pool())
        .await
        .expect("count")
        .try_get(0)
        .expect("i64")
}

/// A commune with the given announcements (id, urgent) planned at 02:00 and claimed by `node` at
/// that time; returns the claimed sends and their due time.
async fn claimed_at_two(
    store: &Store,
    node: &str,
    sends: &[(&str, bool)],
) -> (Vec<ClaimedOccurrence>, Timestamp) {
    let now = t("2026-11-24T01:00:00Z");
    store
        .upsert_commune(C, "Xã Long Môn", now)
        .await
        .expect("commune");
    let change = PlanChange {
        revisions: sends
            .iter()
            .enumerate()
            .map(|(i, (id, _))| rev(id, &format!("h{i}")))
            .collect(),
        occurrences: sends
            .iter()
            .map(|(id, urgent)| occ(id, 0, "2026-11-24T02:00:00Z", *urgent))
            .collect(),
        ..Default::default()
    };
    store.apply_plan(C, &change, now).await.expect("plan");
    let at = t("2026-11-24T02:00:00Z");
    let claimed = store
        .claim_occurrences(C, node, at, at + SignedDuration::from_secs(30), 10)
        .await
        .expect("claim");
    (claimed, at)
}

/// One routine send ("hop") planned at 02:00, claimed by `node` and expanded into `groups` group
/// deliveries (`target(0..groups)`); returns the send and its time.
async fn expanded_at_two(
    store: &Store,
    node: &str,
    groups: usize,
) -> (ClaimedOccurrence, Timestamp) {
    let (claimed, at) = claimed_at_two(store, node, &[("hop", false)]).await;
    let targets: Vec<NewDelivery> = (0..groups).map(target).collect();
    store
        .expand(C, &claimed[0], &targets, None, node, at)
        .await
        .expect("expand");
    (claimed[0].clone(), at)
}

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
        Outcome {
            id: d[0].id,
            state: DeliveryState::Sent,
            provider_message_id: Some("m1".into()),
            error_code: None,
            error_reason: None,
            next_attempt_at: None,
            in_doubt: false,
            not_an_attempt: false,
        },
        Outcome {
            id: d[1].id,
            state: DeliveryState::Retrying,
            provider_message_id: None,
            error_code: Some("-32".into()),
            error_reason: Some("rate limit".into()),
            next_attempt_at: Some(at + SignedDuration::from_mins(5)),
            in_doubt: false,
            not_an_attempt: true,
        },
        Outcome {
            id: d[2].id,
            state: DeliveryState::Failed,
            provider_message_id: None,
            error_code: Some("-213".into()),
            error_reason: Some("not a follower".into()),
            next_attempt_at: None,
            in_doubt: false,
            not_an_attempt: false,
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

/// Regression: a daemon and another process opening a new SQLite file at the same moment raced
/// on the first migration and the daemon exited.
#[tokio::test(flavor = "multi_thread")]
async fn opening_a_new_sqlite_file_from_several_places_at_once() {
    for _ in 0..5 {
        let db = support::sqlite();
        let opens: Vec<_> = (0..4)
            .map(|_| {
                let url = db.url.clone();
                tokio::spawn(async move { Store::open(&url).await.map(|_| ()) })
            })
            .collect();
        for open in opens {
            open.await.expect("task").expect("every opener succeeds");
        }
    }
}

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
        let expansion = Expansion {
            occurrence: &claimed[0],
            deliveries: &[target(1)],
            confirmations: &confirmations,
            missed: None,
            start: claimed[0].send_at,
        };
        store
            .expand_many(C, &[expansion], "n1", at)
            .await
            .expect("expand");

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
        let expansion = Expansion {
            occurrence: &claimed[0],
            deliveries: &[target(2)],
            confirmations: &second,
            missed: None,
            start: claimed[0].send_at,
        };
        store
            .expand_many(C, &[expansion], "n1", at4)
            .await
            .expect("expand");
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
                Outcome {
                    id: d.id,
                    state: DeliveryState::Sent,
                    provider_message_id: Some(ids[i].into()),
                    error_code: None,
                    error_reason: None,
                    next_attempt_at: None,
                    in_doubt: false,
                    not_an_attempt: false,
                }
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
async fn a_chunk_claimed_ahead_that_never_left_is_released_not_in_doubt() {
    for db in support::databases().await {
        let store = db.store().await;
        let (claimed, at) = claimed_at_two(&store, "dead", &[("bao", true), ("hop", false)]).await;
        let lease = at + SignedDuration::from_secs(30);
        for o in &claimed {
            let targets: Vec<NewDelivery> = (0..4).map(target).collect();
            store
                .expand(C, o, &targets, None, "dead", at)
                .await
                .expect("expand");
        }
        let claim = |limit, chunk| Claim {
            now: at,
            lease_until: lease,
            limit,
            chunk: Some(chunk),
        };
        // Chunk 7 went out (marked); chunk 8 was claimed ahead, then the daemon died.
        let (_, on_wire) = store
            .record_and_claim(C, "dead", &[], at, claim(4, 7))
            .await
            .expect("claim 7");
        store.mark_on_wire("dead", 7).await.expect("mark");
        let (_, ahead) = store
            .record_and_claim(C, "dead", &[], at, claim(4, 8))
            .await
            .expect("claim 8");
        assert_eq!((on_wire.len(), ahead.len()), (4, 4), "{}", db.name);
        assert!(on_wire.iter().all(|d| d.urgent), "urgent first");

        let (resend, unknown) = store
            .recover_in_doubt(C, "new", lease + SignedDuration::from_secs(1), false)
            .await
            .expect("recover");
        // The urgent chunk on the wire is sent again, flagged; the normal chunk claimed ahead is
        // not in doubt at all: it waits to be sent, attempts as before, not flagged.
        assert_eq!((resend, unknown), (4, 0), "{}", db.name);
        let rows = sqlx::query(
            "SELECT state, attempts, possible_duplicate FROM deliveries WHERE urgent = 0 ORDER BY id",
        )
        .fetch_all(store.pool())
        .await
        .expect("rows");
        for r in rows {
            let state: String = r.try_get(0).expect("state");
            let attempts: i64 = r.try_get(1).expect("attempts");
            let flagged: i64 = r.try_get(2).expect("flag");
            assert_eq!(
                (state.as_str(), attempts, flagged),
                ("planned", 0, 0),
                "{}",
                db.name
            );
        }
        let again = store
            .claim_deliveries(
                C,
                "new",
                lease + SignedDuration::from_secs(2),
                lease + SignedDuration::from_secs(60),
                10,
            )
            .await
            .expect("claim again");
        assert_eq!(again.len(), 8, "{}", db.name);
    }
}

#[tokio::test]
async fn a_wire_mark_never_moves_back() {
    // Two processes under one node name: one marks chunk 7 as it goes out, the other then marks
    // an older number. Chunk 7 was on the wire: after a crash it is in doubt, not released.
    for db in support::databases().await {
        let store = db.store().await;
        let (claimed, at) = claimed_at_two(&store, "dead", &[("bao", true)]).await;
        let lease = at + SignedDuration::from_secs(30);
        let targets: Vec<NewDelivery> = (0..4).map(target).collect();
        store
            .expand(C, &claimed[0], &targets, None, "dead", at)
            .await
            .expect("expand");
        let claim = Claim {
            now: at,
            lease_until: lease,
            limit: 4,
            chunk: Some(7),
        };
        let (_, on_wire) = store
            .record_and_claim(C, "dead", &[], at, claim)
            .await
            .expect("claim 7");
        assert_eq!(on_wire.len(), 4, "{}", db.name);
        store.mark_on_wire("dead", 7).await.expect("mark");
        store.mark_on_wire("dead", 5).await.expect("older mark");
        let (resend, unknown) = store
            .recover_in_doubt(C, "new", lease + SignedDuration::from_secs(1), false)
            .await
            .expect("recover");
        assert_eq!((resend, unknown), (4, 0), "{}", db.name);
        let flagged = count(
            &store,
            "SELECT COUNT(*) FROM deliveries WHERE possible_duplicate = 1",
        )
        .await;
        assert_eq!(flagged, 4, "{}", db.name);
    }
}

#[tokio::test]
async fn a_delivery_past_its_deadline_is_not_claimed() {
    // A long send loop claims chunk after chunk; a delivery whose deadline passed meanwhile
    // (a reminder, worthless once the meeting started) is left for the next tick to expire.
    for db in support::databases().await {
        let store = db.store().await;
        let (_, at) = expanded_at_two(&store, "n1", 3).await;
        sqlx::query("UPDATE deliveries SET deadline = $1 WHERE target = $2")
            .bind(at.as_microsecond() - 1)
            .bind(target(1).target)
            .execute(store.pool())
            .await
            .expect("deadline");
        let got = store
            .claim_deliveries(C, "n1", at, at + SignedDuration::from_secs(30), 10)
            .await
            .expect("claim");
        let mut names: Vec<String> = got.into_iter().map(|d| d.target).collect();
        names.sort();
        let mut want = vec![target(0).target, target(2).target];
        want.sort();
        assert_eq!(names, want, "{}", db.name);
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
            let store = store.clone();
            let body = format!(
                r#"{{"event_name":"user_received_message","timestamp":"{}","recipient":{{"id":"{user}"}},"message":{{"msg_id":"{msg}"}}}}"#,
                at.as_millisecond()
            );
            let key = key.to_string();
            async move {
                store
                    .store_webhook(C, &key, "user_received_message", &body, at)
                    .await
                    .expect("store")
                    .expect("new")
            }
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
        let outcome = Outcome {
            id: u1.id,
            state: DeliveryState::Sent,
            provider_message_id: Some("a1".into()),
            error_code: None,
            error_reason: None,
            next_attempt_at: None,
            in_doubt: false,
            not_an_attempt: false,
        };
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
async fn an_event_the_database_refuses_does_not_hold_up_the_others() {
    for db in support::databases().await {
        let store = db.store().await;
        let at = t("2026-11-24T02:00:00Z");
        store
            .upsert_commune(C, "Xã Long Môn", at)
            .await
            .expect("commune");
        let text_event = |key: &str, text: &str| {
            let store = store.clone();
            let body = serde_json::json!({
                "event_name": "user_send_text",
                "timestamp": at.as_millisecond().to_string(),
                "sender": {"id": "u1"},
                "message": {"msg_id": key, "text": text},
            })
            .to_string();
            let key = key.to_string();
            async move {
                store
                    .store_webhook(C, &key, "user_send_text", &body, at)
                    .await
                    .expect("store")
                    .expect("new")
            }
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
async fn a_reply_confirms_the_heads_latest_request_never_an_older_one() {
    for db in support::databases().await {
        let store = db.store().await;
        let (claimed, at) = claimed_at_two(
            &store,
            "n1",
            &[("hop", false), ("bao", false), ("cu", false)],
        )
        .await;
        let occurrence = |id: &str, days_ago: i64| {
            let mut o = claimed
                .iter()
                .find(|o| o.announcement_id == id)
                .expect("claimed")
                .clone();
            o.send_at = at - SignedDuration::from_hours(24 * days_ago);
            o
        };
        let head = |village: &str, user: &str, key: &str| NewConfirmation {
            village_id: village.into(),
            person: format!("Trưởng {village}"),
            user_id: Some(user.into()),
            phone: None,
            within: SignedDuration::from_hours(1),
            link_key: Some(key.into()),
        };
        // u1: a meeting request two days ago, still pending; today's storm warning, as head of
        // two villages. u2: a request three weeks ago.
        let (hop, bao, cu) = (
            occurrence("hop", 2),
            occurrence("bao", 0),
            occurrence("cu", 21),
        );
        let sets = [
            (&hop, vec![head("lang-tre", "u1", "k-hop")]),
            (
                &bao,
                vec![
                    head("lang-tre", "u1", "k-bao-1"),
                    head("mit", "u1", "k-bao-2"),
                ],
            ),
            (&cu, vec![head("mit", "u2", "k-cu")]),
        ];
        let expansions: Vec<Expansion> = sets
            .iter()
            .map(|(o, heads)| Expansion {
                occurrence: o,
                deliveries: &[],
                confirmations: heads,
                missed: None,
                start: o.send_at,
            })
            .collect();
        store
            .expand_many(C, &expansions, "n1", at)
            .await
            .expect("expand");
        let reply = |user: &'static str, msg: &'static str, when: Timestamp| {
            let store = store.clone();
            async move {
                let (inbound, _) = store
                    .record_inbound(C, user, Some(msg), "đã nhận", when)
                    .await
                    .expect("inbound");
                store
                    .confirm_by_reply(C, user, inbound, when)
                    .await
                    .expect("reply")
                    .map(|(_, announcement)| announcement)
            }
        };
        let pending = |key: &'static str| {
            let store = store.clone();
            async move { link_state(&store, key).await == "pending" }
        };
        // The head replies to today's message: both villages are confirmed, and a second reply
        // confirms nothing; the meeting stays pending.
        let minute = SignedDuration::from_mins(1);
        assert_eq!(
            reply("u1", "r1", at + minute).await.as_deref(),
            Some("bao"),
            "{}",
            db.name
        );
        assert!(!pending("k-bao-1").await && !pending("k-bao-2").await);
        assert_eq!(
            reply("u1", "r2", at + minute * 2).await,
            None,
            "{}",
            db.name
        );
        assert!(pending("k-hop").await, "{}", db.name);
        // Reminded of the meeting an hour later, the head answers the reminder: that confirms it.
        sqlx::query("UPDATE confirmations SET reminded_at = $1 WHERE link_key = 'k-hop'")
            .bind(loa::ledger::micros(at + minute * 60))
            .execute(store.pool())
            .await
            .expect("reminded");
        assert_eq!(
            reply("u1", "r4", at + minute * 61).await.as_deref(),
            Some("hop"),
            "{}",
            db.name
        );
        // An "ok" three weeks after a request is about something else.
        assert_eq!(reply("u2", "r3", at).await, None, "{}", db.name);
        assert!(pending("k-cu").await, "{}", db.name);
    }
}

#[tokio::test]
async fn a_head_of_two_villages_confirms_both_with_the_one_link_they_got() {
    for db in support::databases().await {
        let store = db.store().await;
        let (claimed, at) = claimed_at_two(&store, "n1", &[("bao", false), ("hop", false)]).await;
        let head = |village: &str, user: &str, key: &str| NewConfirmation {
            village_id: village.into(),
            person: "Trưởng hai thôn".into(),
            user_id: Some(user.into()),
            phone: None,
            within: SignedDuration::from_hours(1),
            link_key: Some(key.into()),
        };
        // One person heads two villages: one message reaches them, with the first village's link.
        let (bao, hop) = (&claimed[0], &claimed[1]);
        let two = [head("lang-tre", "u1", "k-1"), head("mit", "u1", "k-2")];
        let other = [head("lang-tre", "u1", "k-3")];
        let expansions = [
            Expansion {
                occurrence: bao,
                deliveries: &[],
                confirmations: &two,
                missed: None,
                start: at,
            },
            Expansion {
                occurrence: hop,
                deliveries: &[],
                confirmations: &other,
                missed: None,
                start: at,
            },
        ];
        store
            .expand_many(C, &expansions, "n1", at)
            .await
            .expect("expand");
        assert!(store.confirm_by_link(C, "k-1", at).await.expect("link"));
        let state = |key: &'static str| {
            let store = store.clone();
            async move { link_state(&store, key).await }
        };
        assert_eq!(state("k-2").await, "confirmed", "{}", db.name);
        assert_eq!(
            state("k-3").await,
            "pending",
            "another send is not confirmed"
        );
        assert!(!store.confirm_by_link(C, "k-1", at).await.expect("again"));
    }
}

#[tokio::test]
async fn migration_14_closes_what_announcements_deleted_before_it_left_pending() {
    for db in support::databases().await {
        let store = db.store().await;
        let (claimed, at) = claimed_at_two(&store, "n1", &[("cu", false), ("con", false)]).await;
        let head = |key: &str| NewConfirmation {
            village_id: "mit".into(),
            person: "Trưởng mit".into(),
            user_id: Some("u1".into()),
            phone: None,
            within: SignedDuration::from_hours(1),
            link_key: Some(key.into()),
        };
        let (old, live) = ([head("k-cu")], [head("k-con")]);
        let by = |id: &str| {
            claimed
                .iter()
                .find(|o| o.announcement_id == id)
                .expect("claimed")
        };
        let expansions: Vec<Expansion> = [(by("cu"), &old), (by("con"), &live)]
            .into_iter()
            .map(|(o, heads)| Expansion {
                occurrence: o,
                deliveries: &[],
                confirmations: heads.as_slice(),
                missed: None,
                start: at,
            })
            .collect();
        store
            .expand_many(C, &expansions, "n1", at)
            .await
            .expect("expand");
        // Deleted by a version before this one: its confirmations were left open.
        sqlx::query("UPDATE announcements SET status = 'deleted' WHERE id = 'cu'")
            .execute(store.pool())
            .await
            .expect("deleted");
        let dialect = if db.name == "sqlite" {
            "sqlite"
        } else {
            "postgres"
        };
        let migration = std::fs::read_to_string(format!(
            "migrations/{dialect}/0014_close_deleted_confirmations.sql"
        ))
        .expect("migration file");
        sqlx::raw_sql(&migration)
            .execute(store.pool())
            .await
            .expect("migration");
        let open = |id: &'static str| {
            let sql = format!(
                "SELECT COUNT(*) FROM confirmations WHERE announcement_id = '{id}' AND closed_at IS NULL"
            );
            let store = store.clone();
            async move { count(&store, &sql).await }
        };
        assert_eq!((open("cu").await, open("con").await), (0, 1), "{}", db.name);
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
    let expansion = Expansion {
        occurrence: &claimed[0],
        deliveries: &[],
        confirmations: std::slice::from_ref(&head),
        missed: None,
        start: claimed[0].send_at,
    };
    store
        .expand_many(C, &[expansion], "n1", at)
        .await
        .expect("expand");
    let event = |key: &str, body: serde_json::Value| {
        let store = store.clone();
        let key = key.to_string();
        async move {
            let name = body["event_name"].as_str().unwrap_or_default().to_string();
            store
                .store_webhook(C, &key, &name, &body.to_string(), at)
                .await
                .expect("store")
                .expect("new")
        }
    };
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

#[tokio::test]
async fn a_send_not_yet_expanded_is_pending_not_done() {
    for db in support::databases().await {
        let store = db.store().await;
        // Claimed by a daemon that has not written its deliveries yet (as beside `loa send`).
        let (claimed, at) = claimed_at_two(&store, "n1", &[("bao", true)]).await;
        let p = store.progress(claimed[0].id).await.expect("progress");
        assert_eq!((p.total, p.pending), (0, 1), "{}", db.name);
        store
            .expand(C, &claimed[0], &[target(1)], None, "n1", at)
            .await
            .expect("expand");
        let p = store.progress(claimed[0].id).await.expect("progress");
        assert_eq!((p.total, p.pending), (1, 1), "{}", db.name);
    }
}

#[tokio::test]
async fn a_refused_group_is_failed_over_once_whichever_daemon_comes_first() {
    for db in support::databases().await {
        let store = db.store().await;
        let (send, at) = expanded_at_two(&store, "n1", 2).await;
        // g0's members; u3 is in g0 and g1; u10 is in g00 only (its id contains g0's).
        let member = |id: &str, groups: &[&str]| loa::deliver::targets::Follower {
            user_id: id.into(),
            village_id: Some("lang-tre".into()),
            in_group: true,
            groups: groups.iter().map(|g| g.to_string()).collect(),
            last_interaction: None,
            display_name: None,
        };
        let followers = [
            member("u1", &["g0"]),
            member("u2", &["g0"]),
            member("u3", &["g0", "g1"]),
            member("u10", &["g00"]),
        ];
        store
            .record_follower_sync(C, &followers, at)
            .await
            .expect("sync");
        assert!(
            store
                .refused_groups(C, at)
                .await
                .expect("refused")
                .is_empty()
        );
        // Zalo refused g0 (disabled since the sync).
        sqlx::query(
            "UPDATE deliveries SET state = 'failed', error_code = '-237' WHERE target = 'g0'",
        )
        .execute(store.pool())
        .await
        .expect("refuse");
        let refused = store.refused_groups(C, at).await.expect("refused");
        assert_eq!(refused.len(), 1, "{}", db.name);
        assert_eq!(refused[0].group_id, "g0");
        let sent = store.send_targets(send.id).await.expect("targets");
        assert_eq!(sent.iter().filter(|s| s.refused).count(), 1);
        let members: Vec<NewDelivery> = ["u1", "u2"]
            .iter()
            .map(|u| NewDelivery {
                target_kind: "user",
                target: u.to_string(),
                text: refused[0].text.clone(),
                ..target(0)
            })
            .collect();
        // Two daemons at once: one writes, the other finds it done.
        let other = db.store().await;
        let (a, b) = tokio::join!(
            store.fail_over_group(C, &refused[0], &members, "n1", at, at),
            other.fail_over_group(C, &refused[0], &members, "n2", at, at)
        );
        let mut got = [a.expect("n1"), b.expect("n2")];
        got.sort();
        assert_eq!(got, [None, Some(2)], "{}", db.name);
        assert_eq!(
            count(
                &store,
                "SELECT COUNT(*) FROM deliveries WHERE target_kind = 'user' AND state = 'planned'"
            )
            .await,
            2
        );
        assert_eq!(
            count(&store, "SELECT members FROM group_failovers").await,
            2
        );
        assert!(
            store
                .refused_groups(C, at)
                .await
                .expect("refused")
                .is_empty()
        );
        // The record no longer counts g0 for anyone; u3 is still reached by g1.
        let mut record: Vec<(String, bool, Vec<String>)> = store
            .followers(C)
            .await
            .expect("followers")
            .into_iter()
            .map(|f| (f.user_id, f.in_group, f.groups))
            .collect();
        record.sort();
        assert_eq!(
            record,
            vec![
                ("u1".into(), false, vec![]),
                ("u10".into(), true, vec!["g00".into()]),
                ("u2".into(), false, vec![]),
                ("u3".into(), true, vec!["g1".into()]),
            ],
            "{}",
            db.name
        );
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

#[tokio::test]
async fn the_latest_zns_quota_report_stands_whichever_daemon_writes_last() {
    for db in support::databases().await {
        let store = db.store().await;
        assert_eq!(store.zns_quota(C).await.expect("read"), None, "{}", db.name);
        let report = |remaining: i64, at: &str, node: &str| StoredQuota {
            daily: 500,
            remaining,
            seen_at: t(at),
            node: node.into(),
        };
        let latest = report(37, "2026-12-01T02:13:00Z", "n1");
        store.put_zns_quota(C, &latest).await.expect("write");
        // Another daemon's report from before it, written late: it does not put back what
        // was spent since.
        let late = report(40, "2026-12-01T02:12:00Z", "n2");
        store.put_zns_quota(C, &late).await.expect("write");
        assert_eq!(
            store.zns_quota(C).await.expect("read").as_ref(),
            Some(&latest),
            "{}",
            db.name
        );
        // A later one replaces it, the next day's renewed quota too.
        let next_day = report(499, "2026-12-02T01:00:00Z", "n2");
        store.put_zns_quota(C, &next_day).await.expect("write");
        assert_eq!(
            store.zns_quota(C).await.expect("read"),
            Some(next_day),
            "{}",
            db.name
        );
    }
}
