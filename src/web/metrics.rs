//! `/metrics` in Prometheus' text format. Counters and histograms are recorded where things
//! happen (sends in the daemon's worker, webhook refusals, confirmations, follow-ups) through the
//! `metrics` facade; the backlog of due work, the pending confirmations and the ZNS quota Zalo
//! last reported are read from the ledger at scrape time, so every daemon sharing a database
//! reports the same truth.

use std::sync::{Arc, OnceLock};

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use super::WebState;
use crate::deliver::zalo::quota;

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the process-wide recorder (once; later calls reuse it). None if another recorder was
/// installed first: metrics are then not exported.
pub fn install() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let buckets = [
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ];
            let handle = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    metrics_exporter_prometheus::Matcher::Suffix("_seconds".into()),
                    &buckets,
                )
                .ok()?
                .install_recorder()
                .map_err(|e| tracing::warn!(error = %e, "metrics recorder not installed"))
                .ok()?;
            describe();
            Some(handle)
        })
        .as_ref()
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        "loa_sends_total",
        "Send attempts by channel and outcome (sent, retrying, failed, expired)."
    );
    describe_histogram!(
        "loa_send_seconds",
        "Time from handing a message to the channel to its answer."
    );
    describe_gauge!(
        "loa_due_backlog",
        "Deliveries due now and not yet sent (planned or retrying)."
    );
    describe_gauge!(
        "loa_confirmations_pending",
        "Village heads asked to confirm who have not yet."
    );
    describe_counter!(
        "loa_confirmations_total",
        "Confirmations by village heads, by how (reply, link)."
    );
    describe_counter!(
        "loa_follow_ups_total",
        "Reminders and escalations written, by stage."
    );
    describe_counter!(
        "loa_webhook_events_total",
        "Webhook events accepted, by event name."
    );
    describe_counter!(
        "loa_webhook_rejections_total",
        "Webhook requests refused, by reason."
    );
    describe_gauge!(
        crate::deliver::zalo::halt::GAUGE,
        "1 while nothing can be sent from the Zalo OA until the operator mends it (disabled, a wrong app secret, no token to be had)."
    );
    describe_gauge!(
        "loa_zalo_zns_quota_daily",
        "Phone messages (ZNS) the OA may send a day, as Zalo last reported it."
    );
    describe_gauge!(
        "loa_zalo_zns_quota_remaining",
        "Phone messages (ZNS) left today, as Zalo last reported it (the whole day's when none went today)."
    );
    describe_counter!(
        "loa_run_errors_total",
        "Turns of the run loop that failed (the database did not answer); each is retried."
    );
}

pub async fn serve(State(state): State<Arc<WebState>>) -> Response {
    let Some(handle) = install() else {
        return (StatusCode::NOT_FOUND, "metrics are not enabled").into_response();
    };
    match state.store.backlog(&state.commune, Timestamp::now()).await {
        Ok((due, pending)) => {
            metrics::gauge!("loa_due_backlog").set(due as f64);
            metrics::gauge!("loa_confirmations_pending").set(pending as f64);
        }
        Err(e) => tracing::warn!(error = %e, "cannot read the backlog for /metrics"),
    }
    match state.store.zns_quota(&state.commune).await {
        Ok(Some(q)) => {
            // Zalo renews the quota at Vietnamese midnight: a report from before today leaves
            // the whole day's quota.
            let left = quota::today(&q, Timestamp::now()).map_or(q.daily, |(left, _)| left as i64);
            metrics::gauge!("loa_zalo_zns_quota_daily").set(q.daily as f64);
            metrics::gauge!("loa_zalo_zns_quota_remaining").set(left as f64);
        }
        Ok(None) => {}
        Err(e) => tracing::warn!(error = %e, "cannot read the ZNS quota for /metrics"),
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        handle.render(),
    )
        .into_response()
}
