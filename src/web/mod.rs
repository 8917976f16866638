//! The daemon's HTTP side: one `router(state)` with every route: Zalo's webhooks, the confirm
//! links heads open (public, signed), the dashboard (behind its token), `/metrics` and `/healthz`.

pub mod confirm;
pub mod dashboard;
pub mod metrics;
pub mod webhook;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};

use crate::deliver::zalo::config::Secret;
use crate::ledger::Store;

/// What the handlers share.
pub struct WebState {
    pub store: Store,
    pub commune: String,
    /// Webhooks are checked against these; None: webhooks are refused (no Zalo app configured).
    pub zalo: Option<ZaloKeys>,
    /// Events older (or newer) than this are refused as stale.
    pub max_age: Duration,
    /// Wakes the event processor.
    pub wake: Arc<tokio::sync::Notify>,
    /// Confirm links; None: `/c/…` answers 404.
    pub links: Option<crate::confirm::link::Links>,
    /// Village id → name, for pages.
    pub villages: HashMap<String, String>,
    /// The commune's time zone, for times on pages.
    pub tz: jiff::tz::TimeZone,
    /// The dashboard's token and clock; None: the dashboard is off.
    pub dashboard: Option<dashboard::Dashboard>,
}

pub struct ZaloKeys {
    pub app_id: String,
    pub oa_secret: Secret,
}

/// The path Zalo posts events to (set it as the webhook URL in the Zalo app's settings).
pub const WEBHOOK_PATH: &str = "/zalo/webhook";

pub fn router(state: Arc<WebState>, max_body: usize) -> Router {
    Router::new()
        .route(
            WEBHOOK_PATH,
            post(webhook::receive).layer(DefaultBodyLimit::max(max_body)),
        )
        .route(
            &format!("{}/{{token}}", crate::confirm::link::PATH),
            get(confirm::show).post(confirm::confirm),
        )
        .route("/metrics", get(metrics::serve))
        .route("/healthz", get(|| async { "ok" }))
        .merge(dashboard::routes(state.clone()))
        .with_state(state)
}

/// Serves until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}
