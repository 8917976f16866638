//! Injected failures, applied as a middleware in front of the OA API, ZNS and token endpoints:
//! added latency, HTTP 5xx, timeouts and dropped connections. Rate-limit bursts and a disabled
//! OA are answered in the API gate (they need the token checked first), a send's chosen error
//! code (`send_error`) by the send endpoints after it, and webhook faults in `webhook`.
//!
//! A dropped connection is a response whose body fails before its first byte: hyper then closes
//! the connection without flushing the head it had buffered, so the client sees the connection
//! closed with no answer at all (the tests pin this). A timeout holds the request for
//! `timeout_hang` and then drops it the same way; for half of them the request is handled (the
//! message recorded) first, as happens in reality when the answer is lost on the way back.

use std::io;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rand::Rng;
use serde::{Deserialize, Serialize};

use super::Sim;

/// Failure shares are probabilities per request (0.0–1.0); durations are milliseconds in JSON.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// Answered HTTP 500, 502 or 503; nothing recorded.
    pub server_error_share: f64,
    /// Held for `timeout_hang`, then dropped.
    pub timeout_share: f64,
    #[serde(with = "millis")]
    pub timeout_hang: Duration,
    /// Connection closed at once without an answer; nothing recorded.
    pub drop_share: f64,
    #[serde(with = "millis")]
    pub added_latency: Duration,
    /// The next N OA API calls answer -32, whatever the counter says.
    pub rate_limit_burst: u32,
    /// Share of webhook events sent twice.
    pub duplicate_webhook_share: f64,
    /// Random jitter on webhook times, so events can arrive out of order.
    pub reorder_webhooks: bool,
    /// ZNS refuses every message with -133, as Zalo does at night for some templates (which hours,
    /// and for which templates, the reference does not give: so it is switched on demand).
    pub zns_night_ban: bool,
    /// Zalo has disabled the OA: every OA API and ZNS call (a valid token's) answers -204.
    pub oa_disabled: bool,
    /// Share of sends (`message/cs`, `group/message`, ZNS) answered `send_error_code` after the
    /// token and rate checks, nothing recorded: any code of the reference on demand (`-200` send
    /// failed, `-211` out of quota, `-244` restricted, `-115` ZNS out of quota…).
    pub send_error_share: f64,
    pub send_error_code: i64,
}

impl Default for Faults {
    fn default() -> Faults {
        Faults {
            server_error_share: 0.0,
            timeout_share: 0.0,
            timeout_hang: Duration::from_secs(30),
            drop_share: 0.0,
            added_latency: Duration::ZERO,
            rate_limit_burst: 0,
            duplicate_webhook_share: 0.0,
            reorder_webhooks: false,
            zns_night_ban: false,
            oa_disabled: false,
            send_error_share: 0.0,
            send_error_code: -200,
        }
    }
}

/// Whether the middleware has anything to do (it skips the lock otherwise).
pub(crate) fn any(f: &Faults) -> bool {
    f.server_error_share > 0.0
        || f.timeout_share > 0.0
        || f.drop_share > 0.0
        || !f.added_latency.is_zero()
}

/// A send's refusal by `send_error_share`, rolled under the state lock.
pub(crate) fn send_error(st: &mut super::state::State) -> Result<(), i64> {
    let share = st.faults.send_error_share;
    if share > 0.0 && st.rng.random_bool(share.clamp(0.0, 1.0)) {
        return Err(st.faults.send_error_code);
    }
    Ok(())
}

enum Roll {
    Pass,
    ServerError(StatusCode),
    Timeout { handle_first: bool },
    Drop,
}

pub(crate) async fn layer(State(sim): State<Sim>, req: Request, next: Next) -> Response {
    if !sim.inner.faults_on.load(Ordering::Relaxed) {
        return next.run(req).await;
    }
    let (latency, hang, roll) = {
        let mut st = sim.state();
        let f = st.faults.clone();
        let r: f64 = st.rng.random();
        let roll = if r < f.server_error_share {
            st.counters.stats.server_errors += 1;
            let status = [
                StatusCode::INTERNAL_SERVER_ERROR,
                StatusCode::BAD_GATEWAY,
                StatusCode::SERVICE_UNAVAILABLE,
            ][st.rng.random_range(0..3)];
            Roll::ServerError(status)
        } else if r < f.server_error_share + f.timeout_share {
            st.counters.stats.timeouts += 1;
            Roll::Timeout {
                handle_first: st.rng.random_bool(0.5),
            }
        } else if r < f.server_error_share + f.timeout_share + f.drop_share {
            st.counters.stats.drops += 1;
            Roll::Drop
        } else {
            Roll::Pass
        };
        (f.added_latency, f.timeout_hang, roll)
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    match roll {
        Roll::Pass => next.run(req).await,
        Roll::ServerError(status) => {
            (status, "<html><body>upstream error</body></html>").into_response()
        }
        Roll::Timeout { handle_first } => {
            if handle_first {
                let _ = next.run(req).await;
            }
            tokio::time::sleep(hang).await;
            dropped()
        }
        Roll::Drop => dropped(),
    }
}

/// A response hyper cannot send: the connection is closed instead (see the module doc).
fn dropped() -> Response {
    let failing = futures_util::stream::once(async {
        Err::<Bytes, io::Error>(io::Error::other("connection dropped by fault injection"))
    });
    Response::new(Body::from_stream(failing))
}

/// `Duration` as whole milliseconds, for JSON that people type.
mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}
