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
use axum::extract::{DefaultBodyLimit, State};
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
    /// The run loop's, for `/healthz`.
    pub health: Arc<crate::daemon::Health>,
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
        .route("/healthz", get(healthz))
        .merge(dashboard::routes(state.clone()))
        .with_state(state)
}

/// Serves until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // With each request's peer address: the dashboard counts wrong tokens by client.
    let service = router.into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, service)
        .with_graceful_shutdown(shutdown)
        .await
}

/// How long the run loop may fail before `/healthz` says so: a fail-over or a restart of the
/// database is waited out without alarm.
const UNHEALTHY_AFTER_SECS: i64 = 120;

/// `ok`, or 503 when every turn of the run loop has failed for `UNHEALTHY_AFTER_SECS`.
async fn healthz(State(state): State<Arc<WebState>>) -> axum::response::Response {
    health_answer(&state.health, jiff::Timestamp::now().as_second())
}

fn health_answer(health: &crate::daemon::Health, now: i64) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    match health.failing_for(now) {
        Some(secs) if secs >= UNHEALTHY_AFTER_SECS => (
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            format!("the run loop has failed for {secs} s; see the log"),
        )
            .into_response(),
        _ => "ok".into_response(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn healthz_says_when_the_run_loop_keeps_failing() {
        let health = crate::daemon::Health::default();
        let status = |now| super::health_answer(&health, now).status().as_u16();
        assert_eq!(status(1_000), 200);
        health.failed(1_000);
        assert_eq!(status(1_030), 200, "a short outage is waited out");
        health.failed(1_100);
        assert_eq!(status(1_300), 503, "timed from the first failure");
        health.working();
        assert_eq!(status(1_300), 200);
    }
}
