//! Webhooks: signed, retried with `num_retry`, duplicated on demand, and a head's reply that
//! reopens their 7-day window.

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use loa::deliver::zalo::wire::{WebhookEvent, verify_signature};
use loa::sim::{Faults, People};

use super::*;

#[derive(Clone, Debug)]
struct Delivery {
    num_retry: Option<String>,
    body: Bytes,
    event: WebhookEvent,
}

#[derive(Clone, Default)]
struct Receiver {
    got: Arc<Mutex<Vec<Delivery>>>,
    bad_signatures: Arc<Mutex<usize>>,
}

impl Receiver {
    fn all(&self) -> Vec<Delivery> {
        self.got.lock().unwrap().clone()
    }

    fn named(&self, name: &str) -> Vec<WebhookEvent> {
        self.all()
            .into_iter()
            .map(|d| d.event)
            .filter(|e| e.event_name == name)
            .collect()
    }
}

/// A receiver that checks every signature and answers 500 to the very first delivery.
async fn receiver() -> (Receiver, String) {
    let r = Receiver::default();
    let state = r.clone();
    let app = axum::Router::new().route(
        "/webhook",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let r = state.clone();
            async move {
                let defaults = SimConfig::default();
                let sig = headers
                    .get(header::SIGNATURE)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                if !sig.starts_with("mac=")
                    || !verify_signature(sig, &defaults.app_id, &body, &defaults.oa_secret)
                {
                    *r.bad_signatures.lock().unwrap() += 1;
                }
                let event: WebhookEvent = serde_json::from_slice(&body).unwrap();
                let num_retry = headers
                    .get(header::NUM_RETRY)
                    .map(|v| v.to_str().unwrap().to_string());
                let mut got = r.got.lock().unwrap();
                got.push(Delivery {
                    num_retry,
                    body,
                    event,
                });
                if got.len() == 1 {
                    StatusCode::INTERNAL_SERVER_ERROR
                } else {
                    StatusCode::OK
                }
            }
        }),
    );
    let listener = loa::listen::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/webhook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (r, url)
}

fn quick_people() -> People {
    People {
        receive_delay: Duration::from_millis(20),
        seen_delay: Duration::from_millis(40),
        seen_share: 1.0,
        head_reply_share: 1.0,
        reply_delay: Duration::from_millis(60),
        ..People::default()
    }
}

#[tokio::test]
async fn receipts_seen_replies_retries_and_duplicates() {
    let (rx, url) = receiver().await;
    let h = start(SimConfig {
        webhook_url: Some(url),
        webhook_retry_delays: vec![Duration::from_millis(30), Duration::from_millis(30)],
        people: quick_people(),
        faults: Faults {
            duplicate_webhook_share: 1.0,
            ..Faults::default()
        },
        ..config()
    })
    .await;
    // The head last interacted six days ago; their reply must reopen the window.
    let six_days = Timestamp::now() - SignedDuration::from_hours(6 * 24);
    h.sim.set_interaction(HEAD, six_days);
    let r = h.cs(HEAD, "Mời trưởng thôn họp lúc 8 giờ").await;
    let msg_id = r.data()["message_id"].as_str().unwrap().to_string();
    let z = h
        .post(
            path::ZNS_TEMPLATE,
            json!({"phone": HEAD_PHONE, "template_id": "loa-announcement",
                   "template_data": {"content": "b"}, "tracking_id": "trk-9"}),
        )
        .await;
    let zns_id = z.data()["msg_id"].as_str().unwrap().to_string();

    eventually("two replies, the retry and the ZNS receipt", || {
        rx.named("user_send_text").len() >= 4
            && rx.all().iter().any(|d| d.num_retry.as_deref() == Some("1"))
            && rx.named("user_received_message").len() >= 4
            && rx.named("user_seen_message").len() >= 2
    })
    .await;
    assert_eq!(
        *rx.bad_signatures.lock().unwrap(),
        0,
        "every signature verifies"
    );
    let all = rx.all();
    // The first delivery failed and came again, same bytes, with num_retry: 1.
    let first = &all[0];
    assert!(first.num_retry.is_none());
    assert!(
        all.iter()
            .any(|d| d.num_retry.as_deref() == Some("1") && d.body == first.body)
    );
    // Duplicates: every event body arrives at least twice.
    for d in &all {
        assert!(
            all.iter().filter(|o| o.body == d.body).count() >= 2,
            "{:?}",
            d.event
        );
    }
    let oa = SimConfig::default().oa_id;
    let received = rx.named("user_received_message");
    let cs_receipt = received
        .iter()
        .find(|e| e.recipient.as_ref().unwrap().id == HEAD)
        .unwrap();
    assert_eq!(cs_receipt.sender.as_ref().unwrap().id, oa);
    assert_eq!(
        cs_receipt.message.as_ref().unwrap().msg_id.as_deref(),
        Some(msg_id.as_str())
    );
    assert_eq!(cs_receipt.app_id, SimConfig::default().app_id);
    assert_eq!(cs_receipt.oa_id.as_deref(), Some(oa.as_str()));
    assert!(cs_receipt.timestamp.parse::<i64>().is_ok());
    let zns_receipt = received
        .iter()
        .find(|e| e.recipient.as_ref().unwrap().id == HEAD_PHONE)
        .unwrap();
    let m = zns_receipt.message.as_ref().unwrap();
    assert_eq!(
        (m.msg_id.as_deref(), m.tracking_id.as_deref()),
        (Some(zns_id.as_str()), Some("trk-9"))
    );
    assert!(m.delivery_time.as_deref().unwrap().parse::<i64>().is_ok());
    let seen = rx.named("user_seen_message");
    // Only the `cs` message is seen: Zalo documents no "seen" for ZNS (and the head's reply to
    // the ZNS, which comes after the seen would, is in).
    assert!(
        seen.iter().all(|e| {
            let m = e.message.as_ref().unwrap();
            !m.msg_ids.as_ref().unwrap().contains(&zns_id)
                && e.recipient.as_ref().unwrap().id == HEAD
        }),
        "{seen:?}"
    );
    assert!(seen.iter().any(|e| {
        e.message
            .as_ref()
            .unwrap()
            .msg_ids
            .as_ref()
            .unwrap()
            .contains(&msg_id)
    }));
    let reply = &rx.named("user_send_text")[0];
    assert_eq!(reply.sender.as_ref().unwrap().id, HEAD);
    assert_eq!(reply.recipient.as_ref().unwrap().id, oa);
    let text = reply.message.as_ref().unwrap().text.clone().unwrap();
    assert!(
        ["đã nhận", "Đã nhận ạ", "ok", "da nhan", "1"].contains(&text.as_str()),
        "{text}"
    );
    assert_eq!(
        reply
            .message
            .as_ref()
            .unwrap()
            .msg_id
            .as_ref()
            .unwrap()
            .len(),
        20
    );
    assert!(h.sim.user(HEAD).unwrap().last_interaction > six_days + SignedDuration::from_hours(24));
    let stats = h.sim.stats();
    assert!(stats.webhooks_retried >= 1 && stats.webhooks_failed >= 1);
    assert!(stats.webhooks_duplicated >= 1 && stats.replies >= 2);
}

#[tokio::test]
async fn head_replies_without_a_webhook_and_group_receipts() {
    let (rx, url) = receiver().await;
    let h = start(SimConfig {
        people: People {
            group_receipts: true,
            ..quick_people()
        },
        ..config()
    })
    .await;
    let stale = Timestamp::now() - SignedDuration::from_hours(6 * 24);
    h.sim.set_interaction(HEAD, stale);
    let group = json!({"recipient": {"group_id": GROUP}, "message": {"text": "Họp"}});
    assert_eq!(h.post(path::GROUP_MESSAGE, group.clone()).await.error(), 0);
    eventually("the head's reply, with no webhook set", || {
        h.sim.user(HEAD).unwrap().last_interaction > stale
    })
    .await;
    // Now with a webhook: per-member receipts for the group's two members.
    h.sim.set_webhook_url(Some(url));
    assert_eq!(h.post(path::GROUP_MESSAGE, group).await.error(), 0);
    eventually("receipts for both members", || {
        let to: Vec<String> = rx
            .named("user_received_message")
            .iter()
            .map(|e| e.recipient.as_ref().unwrap().id.clone())
            .collect();
        to.contains(&FRESH.to_string()) && to.contains(&HEAD.to_string())
    })
    .await;
}

/// Webhooks to `url`, retried after `delays`, from people who receive but never read.
fn unread(url: String, delays: Vec<Duration>) -> SimConfig {
    SimConfig {
        webhook_url: Some(url),
        webhook_retry_delays: delays,
        people: People {
            seen_share: 0.0,
            ..quick_people()
        },
        ..config()
    }
}

#[tokio::test]
async fn failed_webhooks_are_given_up_after_the_last_retry() {
    // Nothing listens on this port (bound then dropped).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let h = start(unread(
        format!("http://127.0.0.1:{port}/webhook"),
        vec![Duration::from_millis(10), Duration::from_millis(10)],
    ))
    .await;
    assert_eq!(h.cs(FRESH, "x").await.error(), 0);
    eventually("given up", || h.sim.stats().webhooks_given_up == 1).await;
    let stats = h.sim.stats();
    assert_eq!(
        (
            stats.webhooks_failed,
            stats.webhooks_retried,
            stats.webhooks_sent
        ),
        (3, 2, 0)
    );
}

#[tokio::test]
async fn an_answer_later_than_two_seconds_counts_as_failed_and_is_retried() {
    // A receiver that takes 2.5 s to answer the first delivery, then answers at once.
    let answers = Arc::new(Mutex::new(0usize));
    let seen = answers.clone();
    let app = axum::Router::new().route(
        "/webhook",
        axum::routing::post(move || {
            let seen = seen.clone();
            async move {
                let first = {
                    let mut n = seen.lock().unwrap();
                    *n += 1;
                    *n == 1
                };
                if first {
                    tokio::time::sleep(Duration::from_millis(2_500)).await;
                }
                StatusCode::OK
            }
        }),
    );
    let listener = loa::listen::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/webhook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let h = start(unread(url, vec![Duration::from_millis(10)])).await;
    assert_eq!(h.cs(FRESH, "x").await.error(), 0);
    eventually("retried after the slow answer", || {
        h.sim.stats().webhooks_sent == 1
    })
    .await;
    let stats = h.sim.stats();
    assert_eq!((stats.webhooks_failed, stats.webhooks_retried), (1, 1));
}

#[tokio::test]
async fn churn_follows_and_unfollows() {
    let (rx, url) = receiver().await;
    let h = start(SimConfig {
        webhook_url: Some(url),
        people: People {
            churn_per_minute: 6000.0,
            seen_share: 0.0,
            ..quick_people()
        },
        ..config()
    })
    .await;
    eventually("churn events", || rx.all().len() >= 5).await;
    let e = &rx.all()[1].event;
    assert!(e.event_name == "follow" || e.event_name == "unfollow");
    assert_eq!(e.source.as_deref(), Some("oa_profile"));
    let who = &e.follower.as_ref().unwrap().id;
    assert!(h.sim.user(who).is_some());
    assert!(h.sim.stats().churn_events >= 5);
}

#[tokio::test]
async fn a_read_reopens_the_window_only_where_configured() {
    for opens in [true, false] {
        let (rx, url) = receiver().await;
        let h = start(SimConfig {
            webhook_url: Some(url),
            people: People {
                head_reply_share: 0.0,
                ..quick_people()
            },
            seen_opens_window: opens,
            ..config()
        })
        .await;
        let six_days = Timestamp::now() - SignedDuration::from_hours(6 * 24);
        h.sim.set_interaction(FRESH, six_days);
        assert_eq!(h.cs(FRESH, "Thông báo mất điện").await.error(), 0);
        // The webhook goes out after the read is applied to the population.
        eventually("the read", || !rx.named("user_seen_message").is_empty()).await;
        let last = h.sim.user(FRESH).expect("user").last_interaction;
        assert_eq!(last > six_days, opens, "seen_opens_window = {opens}");
    }
}
