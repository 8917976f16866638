//! Applying one webhook event. Events are stored before they are applied (see `web::webhook`), so
//! this runs after Zalo has had its answer, and again after a crash for whatever was not finished.

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;

use crate::deliver::select::AnyChannel;
use crate::deliver::zalo::wire::WebhookEvent;
use crate::deliver::{Channel, Outgoing, TargetKind};
use crate::ledger::{Receipt, Store};

/// What applying events needs besides the ledger.
pub struct Context {
    /// Replies that confirm (folded: case and diacritics do not matter).
    pub phrases: Vec<String>,
    /// The short reply that thanks a head for confirming.
    pub thanks: String,
    /// Where the thanks go; None: no reply is sent.
    pub channel: Option<Arc<AnyChannel>>,
    /// Whether a read reopens the reader's 7-day window (`zalo.seen_opens_window`).
    pub seen_opens_window: bool,
}

impl Context {
    pub fn new(config: &crate::config::ConfirmConfig, channel: Option<Arc<AnyChannel>>) -> Context {
        let phrases = if config.phrases.is_empty() {
            super::phrases::DEFAULT_PHRASES
                .iter()
                .map(|s| s.to_string())
                .collect()
        } else {
            config.phrases.clone()
        };
        Context {
            phrases,
            thanks: config.thanks.clone(),
            channel,
            seen_opens_window: true,
        }
    }
}

/// The key that makes Zalo's retries of one event the same event: its message id when it has one
/// (as Zalo's documentation advises), with who sent and received it, else a hash of the whole
/// body. The people matter for a message to a village group: each member's receipt carries the
/// same message id, and is a receipt of its own.
pub fn event_key(event: &WebhookEvent, body: &[u8]) -> String {
    let id = event.message.as_ref().and_then(|m| {
        m.msg_id
            .clone()
            .or_else(|| m.msg_ids.as_ref().map(|ids| ids.join(",")))
    });
    let who = |p: &Option<crate::deliver::zalo::wire::EventId>| {
        p.as_ref().map_or("", |p| p.id.as_str()).to_string()
    };
    match id {
        Some(id) => format!(
            "{}:{id}:{}>{}",
            event.event_name,
            who(&event.sender),
            who(&event.recipient)
        ),
        None => {
            use sha2::Digest as _;
            let digest = sha2::Sha256::digest(body);
            let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
            format!("{}:sha256:{hex}", event.event_name)
        }
    }
}

/// The event's own time (epoch milliseconds), if it is one.
pub fn event_time(event: &WebhookEvent) -> Option<Timestamp> {
    event
        .timestamp
        .trim()
        .parse::<i64>()
        .ok()
        .and_then(|ms| Timestamp::from_millisecond(ms).ok())
}

/// What applying an event did.
#[derive(Debug)]
pub struct Applied {
    /// For the record (`webhook_events.outcome`).
    pub outcome: String,
    /// A receipt that moved nothing while its send is still going out: Zalo told before loa
    /// wrote the outcome, so it is applied again shortly.
    pub early: bool,
}

/// How long after its arrival a receipt that matched nothing is applied again, and how often.
const EARLY_FOR: jiff::SignedDuration = jiff::SignedDuration::from_mins(10);
const EARLY_EVERY: jiff::SignedDuration = jiff::SignedDuration::from_secs(5);

/// How long a batch of events is held by the daemon that claimed it: far longer than applying 200
/// events takes, and the delay before another daemon applies what a dead one held.
const CLAIM_FOR: jiff::SignedDuration = jiff::SignedDuration::from_mins(5);

/// How long an event the database refuses is tried again, and how often.
const FAILING_FOR: jiff::SignedDuration = jiff::SignedDuration::from_hours(24);
const FAILING_EVERY: jiff::SignedDuration = jiff::SignedDuration::from_mins(1);

/// Applies one event; returns what it did.
pub async fn apply(
    store: &Store,
    commune: &str,
    ctx: &Context,
    event: &WebhookEvent,
    now: Timestamp,
) -> sqlx::Result<Applied> {
    let at = event_time(event).unwrap_or(now);
    let message = event.message.clone().unwrap_or_default();
    // The person a receipt is about: a follower's Zalo id, or the phone of a ZNS message.
    let recipient = event.recipient.as_ref().map(|r| r.id.as_str());
    let mut early = false;
    let outcome = match event.event_name.as_str() {
        "user_received_message" => {
            // ZNS receipts carry our tracking id, which names the delivery.
            let ours = message
                .tracking_id
                .as_deref()
                .and_then(|t| t.strip_prefix("loa-"))
                .and_then(|t| t.split('-').next())
                .and_then(|d| d.parse::<i64>().ok());
            let n = match (ours, &message.msg_id) {
                (Some(delivery), _) => {
                    store
                        .apply_receipt_by_delivery(commune, delivery, Receipt::Delivered, now)
                        .await?
                }
                (None, Some(id)) => {
                    store
                        .apply_receipt(commune, id, recipient, Receipt::Delivered, now)
                        .await?
                }
                (None, None) => 0,
            };
            if n == 0 && (ours.is_some() || message.msg_id.is_some()) {
                early = store
                    .receipt_may_be_early(commune, recipient, ours, now)
                    .await?;
            }
            format!("delivered: {n}")
        }
        "user_seen_message" => {
            let ids = message
                .msg_ids
                .clone()
                .unwrap_or_default()
                .into_iter()
                .chain(message.msg_id.clone());
            let mut n = 0;
            let mut named = false;
            for id in ids {
                named = true;
                n += store
                    .apply_receipt(commune, &id, recipient, Receipt::Seen, now)
                    .await?;
            }
            if n == 0 && named {
                early = store
                    .receipt_may_be_early(commune, recipient, None, now)
                    .await?;
            }
            if ctx.seen_opens_window
                && let Some(user) = &event.recipient
            {
                store.touch_interaction(commune, &user.id, at).await?;
            }
            format!("seen: {n}")
        }
        "follow" | "unfollow" => match &event.follower {
            Some(f) => {
                let following = event.event_name == "follow";
                store.set_following(commune, &f.id, following, at).await?;
                event.event_name.clone()
            }
            None => "no follower".into(),
        },
        // A head may answer in the village group instead of to the OA: the same reply, from the
        // same person (Zalo names the group as the recipient). Only a text to the OA reopens
        // the 7-day window; for one in a group that is not documented.
        "user_send_text" | "user_send_group_text" => match &event.sender {
            Some(sender) => {
                if event.event_name == "user_send_text" {
                    store.touch_interaction(commune, &sender.id, at).await?;
                }
                let text = message.text.clone().unwrap_or_default();
                let (inbound, confirmed_before) = store
                    .record_inbound(commune, &sender.id, message.msg_id.as_deref(), &text, at)
                    .await?;
                if let Some(id) = confirmed_before {
                    format!("already applied: confirmed #{id}")
                } else if !super::phrases::is_confirmation(&text, &ctx.phrases) {
                    "inbound text".to_string()
                } else {
                    match store
                        .confirm_by_reply(commune, &sender.id, inbound, at)
                        .await?
                    {
                        Some((id, announcement)) => {
                            metrics::counter!("loa_confirmations_total", "via" => "reply")
                                .increment(1);
                            let thanked = thank(ctx, &sender.id, &announcement);
                            format!("confirmed #{id} ({announcement}){thanked}")
                        }
                        None => "inbound text: a confirmation with nothing pending".to_string(),
                    }
                }
            }
            None => "no sender".into(),
        },
        other => format!("ignored: {other}"),
    };
    Ok(Applied { outcome, early })
}

/// Thanks a head for confirming, best effort, in a task of its own: the thank-you waits its turn
/// behind any fan-out on the rate limiter (an urgent one first), and the receipts and replies
/// after this event must not wait with it. A failed thank-you is logged, never retried.
fn thank(ctx: &Context, user: &str, announcement: &str) -> &'static str {
    let Some(channel) = ctx.channel.clone() else {
        return "";
    };
    let (user, announcement, text) = (
        user.to_string(),
        announcement.to_string(),
        ctx.thanks.clone(),
    );
    tokio::spawn(async move {
        let msg = Outgoing {
            delivery_id: 0,
            announcement_id: &announcement,
            kind: TargetKind::User,
            target: &user,
            text: &text,
            urgent: false,
            possible_duplicate: false,
            fallback: None,
            sent_parts: None,
        };
        if let Err(e) = channel.send(&msg).await {
            tracing::warn!(error = %e, user, "could not thank a head for confirming");
        }
    });
    "; thanks on their way"
}

/// Applies stored events as they arrive (woken by the webhook handler) and, at start, whatever a
/// previous run left unapplied. Runs until the process stops.
pub async fn process(
    store: Store,
    commune: String,
    ctx: Arc<Context>,
    wake: Arc<tokio::sync::Notify>,
) {
    // One daemon per SQLite file: what a crashed run held is applied now, not after its hold.
    if store.dialect() == crate::ledger::Dialect::Sqlite {
        match store.release_webhook_claims(&commune).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(events = n, "webhook events left by the last run"),
            Err(e) => tracing::error!(error = %e, "cannot release the last run's webhook events"),
        }
    }
    loop {
        match apply_pending(&store, &commune, &ctx, Timestamp::now()).await {
            Ok(0) => {}
            Ok(_) => continue,
            Err(e) => {
                tracing::error!(error = %e, "cannot apply pending webhook events; will retry");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
        let _ = tokio::time::timeout(Duration::from_secs(5), wake.notified()).await;
    }
}

/// Applies the events waiting at `now` (up to a batch), each finished or, if it is a receipt
/// ahead of its send's outcome, put off for a few seconds (for up to `EARLY_FOR` after it came).
/// An event the database refuses is put off a minute and the others go on: one bad event must not
/// hold up every receipt and reply behind it; after `FAILING_FOR` it is given up, its error kept.
/// Returns how many were taken; an error when every one of them failed.
pub async fn apply_pending(
    store: &Store,
    commune: &str,
    ctx: &Context,
    now: Timestamp,
) -> sqlx::Result<usize> {
    let batch = store
        .claim_webhooks(commune, 200, now, now + CLAIM_FOR)
        .await?;
    let (mut failed, mut last_error) = (0, None);
    for pending in &batch {
        let applied = match serde_json::from_str::<WebhookEvent>(&pending.body) {
            Ok(event) => apply(store, commune, ctx, &event, now).await,
            Err(e) => Ok(Applied {
                outcome: format!("unreadable: {e}"),
                early: false,
            }),
        };
        let kept = match applied {
            Ok(applied) if applied.early && now < pending.received_at + EARLY_FOR => {
                let outcome = format!("{}; its send is still going out", applied.outcome);
                store
                    .defer_webhook(pending.id, now + EARLY_EVERY, &outcome)
                    .await
            }
            Ok(applied) => {
                store
                    .finish_webhook(pending.id, &applied.outcome, now)
                    .await
            }
            Err(e) => {
                tracing::error!(error = %e, id = pending.id, "cannot apply webhook event; will retry");
                let outcome = format!("error: {e}");
                let kept = if now < pending.received_at + FAILING_FOR {
                    store
                        .defer_webhook(pending.id, now + FAILING_EVERY, &outcome)
                        .await
                } else {
                    store.finish_webhook(pending.id, &outcome, now).await
                };
                failed += 1;
                last_error = Some(e);
                kept
            }
        };
        if let Err(e) = kept {
            tracing::error!(error = %e, id = pending.id, "cannot mark webhook event applied");
        }
    }
    // When nothing went through (the database is down), the caller waits before trying again.
    match last_error {
        Some(e) if failed == batch.len() => Err(e),
        _ => Ok(batch.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_message_ids_and_fall_back_to_the_body() {
        let e: WebhookEvent = serde_json::from_str(
            r#"{"event_name":"user_received_message","timestamp":"1","message":{"msg_id":"m1"}}"#,
        )
        .unwrap();
        assert_eq!(event_key(&e, b"x"), "user_received_message:m1:>");
        // Two members of a village group seeing the same message: two receipts, not a retry.
        let seen = |user: &str| -> WebhookEvent {
            serde_json::from_str(&format!(
                r#"{{"event_name":"user_seen_message","timestamp":"1","sender":{{"id":"{user}"}},"recipient":{{"id":"oa"}},"message":{{"msg_ids":["m2"]}}}}"#
            ))
            .unwrap()
        };
        assert_ne!(event_key(&seen("u1"), b"a"), event_key(&seen("u2"), b"b"));
        assert_eq!(event_key(&seen("u1"), b"a"), event_key(&seen("u1"), b"c"));
        let f: WebhookEvent = serde_json::from_str(
            r#"{"event_name":"follow","timestamp":"1","follower":{"id":"u"}}"#,
        )
        .unwrap();
        assert_ne!(event_key(&f, b"one"), event_key(&f, b"two"));
        assert_eq!(event_key(&f, b"one"), event_key(&f, b"one"));
        assert_eq!(event_time(&f), Timestamp::from_millisecond(1).ok());
    }
}
