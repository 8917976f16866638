//! One storage story, run on SQLite and on PostgreSQL: planning never duplicates, claims are
//! exclusive and expire, expansion is idempotent, outcomes and in-doubt recovery follow the
//! documented guarantees, and every change lands in the event log.
//!
//! One test binary: this file holds what the tests share (a commune's announcements, sends and
//! recipients), `ledger/` the tests by subject.

#[path = "ledger/confirmations.rs"]
mod confirmations;
#[path = "ledger/events.rs"]
mod events;
#[path = "ledger/follow_ups.rs"]
mod follow_ups;
#[path = "ledger/followers.rs"]
mod followers;
#[path = "ledger/receipts.rs"]
mod receipts;
#[path = "ledger/sending.rs"]
mod sending;
#[path = "ledger/story.rs"]
mod story;
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

/// Stores a webhook event as Zalo sent it (`body` names the event); returns its row id.
async fn webhook(store: &Store, key: String, body: serde_json::Value, at: Timestamp) -> i64 {
    let name = body["event_name"].as_str().unwrap_or_default().to_string();
    store
        .store_webhook(C, &key, &name, &body.to_string(), at)
        .await
        .expect("store")
        .expect("new")
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

/// Expands a claimed send into `deliveries` and the heads' `confirmations`, as node n1 at `at`,
/// on time (nothing missed).
async fn expand_with(
    store: &Store,
    occurrence: &ClaimedOccurrence,
    deliveries: &[NewDelivery],
    confirmations: &[NewConfirmation],
    at: Timestamp,
) {
    let expansion = Expansion {
        occurrence,
        deliveries,
        confirmations,
        missed: None,
        start: occurrence.send_at,
    };
    store
        .expand_many(C, &[expansion], "n1", at)
        .await
        .expect("expand");
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
