//! `/_sim/*`: inspection and control over HTTP, for the CLI, scripts and the demo. Not part of
//! Zalo's API, never faulted, and with no authentication (the simulator is a test tool).
//!
//! - `GET /_sim/messages?to=&kind=&since_seq=&limit=`: accepted messages, oldest first;
//! - `GET /_sim/stats`: counters;
//! - `POST /_sim/faults` (JSON [`Faults`], durations in ms): replace the faults;
//! - `POST /_sim/webhook` (`{"url": "…"}` or `{"url": null}`): set the webhook URL;
//! - `POST /_sim/tokens`: a fresh token pair; `POST /_sim/revoke`, `POST /_sim/expire`;
//! - `GET /_sim/people?limit=`: the population as it stands.

use axum::extract::{Query, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;

use super::state::{MessageFilter, SimMessage, SimStats};
use super::{Faults, Population, Sim};
use crate::deliver::zalo::wire::TokenReply;

pub(crate) fn router() -> Router<Sim> {
    Router::new()
        .route("/_sim/messages", get(messages))
        .route("/_sim/stats", get(stats))
        .route("/_sim/faults", post(faults).get(get_faults))
        .route("/_sim/webhook", post(webhook))
        .route("/_sim/tokens", post(tokens))
        .route("/_sim/revoke", post(revoke))
        .route("/_sim/expire", post(expire))
        .route("/_sim/people", get(people))
}

async fn messages(State(sim): State<Sim>, Query(f): Query<MessageFilter>) -> Json<Vec<SimMessage>> {
    Json(sim.state().messages(&f))
}

async fn stats(State(sim): State<Sim>) -> Json<SimStats> {
    Json(sim.stats())
}

async fn faults(State(sim): State<Sim>, Json(f): Json<Faults>) -> Json<Faults> {
    sim.set_faults(f.clone());
    Json(f)
}

async fn get_faults(State(sim): State<Sim>) -> Json<Faults> {
    Json(sim.state().faults.clone())
}

#[derive(Deserialize)]
struct WebhookBody {
    url: Option<String>,
}

async fn webhook(State(sim): State<Sim>, Json(b): Json<WebhookBody>) -> Json<serde_json::Value> {
    sim.set_webhook_url(b.url.clone());
    Json(serde_json::json!({ "url": b.url }))
}

async fn tokens(State(sim): State<Sim>) -> Json<TokenReply> {
    Json(sim.issue_tokens())
}

async fn revoke(State(sim): State<Sim>) -> Json<serde_json::Value> {
    sim.revoke_access_tokens();
    Json(serde_json::json!({ "revoked": true }))
}

async fn expire(State(sim): State<Sim>) -> Json<serde_json::Value> {
    sim.expire_access_tokens();
    Json(serde_json::json!({ "expired": true }))
}

#[derive(Deserialize)]
struct Limit {
    limit: Option<usize>,
}

async fn people(State(sim): State<Sim>, Query(l): Query<Limit>) -> Json<Population> {
    Json(sim.state().population(l.limit.unwrap_or(usize::MAX)))
}
