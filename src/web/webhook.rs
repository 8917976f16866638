//! `POST /zalo/webhook`. The signature is checked over the raw bytes before anything else is
//! read (401, nothing recorded, when it is missing or wrong); stale events are refused; the body
//! size is limited by the router (413). A good event is stored — deduplicated by its key — and
//! acknowledged at once; it is applied afterwards by `confirm::events::process`, well inside the
//! 2 seconds Zalo waits.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use jiff::{SignedDuration, Timestamp};

use super::WebState;
use crate::confirm::events::{event_key, event_time};
use crate::deliver::zalo::wire::{WebhookEvent, header, verify_signature};

pub async fn receive(
    State(state): State<Arc<WebState>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match body {
        Ok(b) => b,
        Err(e) => {
            let status = e.status();
            let why = if status == StatusCode::PAYLOAD_TOO_LARGE {
                "body too large"
            } else {
                "unreadable body"
            };
            return refuse(status, why);
        }
    };
    let Some(keys) = &state.zalo else {
        return refuse(StatusCode::SERVICE_UNAVAILABLE, "no Zalo app configured");
    };
    let Some(signature) = headers.get(header::SIGNATURE).and_then(|v| v.to_str().ok()) else {
        return refuse(StatusCode::UNAUTHORIZED, "missing signature");
    };
    if !verify_signature(signature, &keys.app_id, &body, keys.oa_secret.expose()) {
        return refuse(StatusCode::UNAUTHORIZED, "bad signature");
    }
    let event: WebhookEvent = match serde_json::from_slice(&body) {
        Ok(e) => e,
        Err(_) => return refuse(StatusCode::BAD_REQUEST, "not a Zalo event"),
    };
    let now = Timestamp::now();
    let max_age = SignedDuration::try_from(state.max_age).unwrap_or(SignedDuration::from_mins(10));
    match event_time(&event) {
        Some(t) if now.duration_since(t).abs() <= max_age => {}
        _ => return refuse(StatusCode::UNAUTHORIZED, "stale or missing timestamp"),
    }
    let key = event_key(&event, &body);
    let text = String::from_utf8_lossy(&body);
    match state
        .store
        .store_webhook(&state.commune, &key, &event.event_name, &text, now)
        .await
    {
        Ok(Some(_)) => {
            metrics::counter!("loa_webhook_events_total", "event" => event.event_name.clone())
                .increment(1);
            state.wake.notify_one();
            (StatusCode::OK, "ok").into_response()
        }
        Ok(None) => (StatusCode::OK, "duplicate").into_response(),
        Err(e) => {
            // Zalo retries a non-200: nothing is lost.
            tracing::error!(error = %e, "cannot store a webhook event");
            refuse(StatusCode::INTERNAL_SERVER_ERROR, "try again")
        }
    }
}

fn refuse(status: StatusCode, why: &'static str) -> Response {
    metrics::counter!("loa_webhook_rejections_total", "reason" => why).increment(1);
    if status == StatusCode::UNAUTHORIZED {
        tracing::warn!(why, "webhook refused");
    }
    (status, why).into_response()
}
