//! The router and the gate every OA API call passes: count it in the rate window, check the
//! access token (and `appsecret_proof` when given), answer -32 past the limit, then run the
//! endpoint under the state lock and answer HTTP 200 with Zalo's envelope and rate headers.
//! Bodies are parsed before the lock; a parse failure becomes -201 after the token checks.

use std::time::Instant;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header as http_header};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use jiff::Timestamp;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::state::State as SimState;
use super::{Sim, directory, faults, inspect, send, tokens};
use crate::deliver::zalo::errors;
use crate::deliver::zalo::wire::{Envelope, appsecret_proof, header, path};

/// Every route: the faulty ones (OA API, ZNS, token endpoint), the consent page and `/_sim`.
pub(crate) fn router(sim: Sim) -> Router {
    let faulty = Router::new()
        .route(path::ACCESS_TOKEN, post(tokens::access_token))
        .route(path::MESSAGE_CS, post(message_cs))
        .route(path::GROUP_MESSAGE, post(group_message))
        .route(path::ZNS_TEMPLATE, post(zns_template))
        .route(path::LEGACY_MESSAGE, post(legacy_message))
        .route(path::USER_LIST, get(user_list))
        .route(path::USER_DETAIL, get(user_detail))
        .route(path::GROUPS_OF_OA, get(groups_of_oa))
        .route(path::GROUP_MEMBERS, get(group_members))
        .route(path::TAGS_OF_OA, get(tags_of_oa))
        .route(path::TAG_FOLLOWER, post(tag_follower))
        .route(path::UNTAG_FOLLOWER, post(untag_follower))
        .route(path::REMOVE_TAG, post(remove_tag))
        .layer(middleware::from_fn_with_state(sim.clone(), faults::layer));
    Router::new()
        .merge(faulty)
        .route(path::PERMISSION, get(tokens::permission))
        .merge(inspect::router())
        .with_state(sim)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Api {
    Oa,
    /// ZNS answers -124 where the OA API answers -216.
    Zns,
}

/// Runs `f` behind the gate and answers in Zalo's envelope.
fn call<T: Serialize>(
    sim: &Sim,
    headers: &HeaderMap,
    path: &'static str,
    api: Api,
    f: impl FnOnce(&mut SimState, Timestamp) -> Result<T, i64>,
) -> Response {
    let config = sim.config();
    let token = headers
        .get(header::ACCESS_TOKEN)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    // The HMAC is computed before taking the lock, and only when a proof is offered.
    let proof_ok = headers.get(header::APPSECRET_PROOF).is_none_or(|v| {
        v.to_str()
            .is_ok_and(|p| p.eq_ignore_ascii_case(&appsecret_proof(&config.app_secret, token)))
    });
    let instant = Instant::now();
    let now = Timestamp::now();
    let mut st = sim.state();
    st.counters.request(path);
    let count = st.rate.hit(instant, config.rate_window);
    let result = gate(
        &mut st,
        token,
        proof_ok,
        count,
        config.rate_limit,
        instant,
        api,
    )
    .and_then(|()| f(&mut st, now));
    let error = result.as_ref().err().copied().unwrap_or(0);
    st.counters.answer(error);
    if error == -32 {
        st.counters.stats.rate_limited += 1;
    }
    drop(st);
    let envelope = match result {
        Ok(data) => Envelope {
            error: 0,
            message: "Success".into(),
            data: Some(data),
        },
        Err(code) => Envelope {
            error: code,
            message: errors::lookup(code).meaning.into(),
            data: None,
        },
    };
    // With the limit off, the headers still come, with a limit no client will reach.
    let limit = if config.rate_limit == 0 {
        u32::MAX
    } else {
        config.rate_limit
    };
    json(&envelope, limit, limit.saturating_sub(count))
}

fn gate(
    st: &mut SimState,
    token: &str,
    proof_ok: bool,
    count: u32,
    limit: u32,
    now: Instant,
    api: Api,
) -> Result<(), i64> {
    st.tokens
        .check(token, now)
        .map_err(|code| match (api, code) {
            (Api::Zns, -216) => -124,
            _ => code,
        })?;
    if !proof_ok {
        return Err(-242);
    }
    if st.faults.oa_disabled {
        return Err(-204);
    }
    if st.faults.rate_limit_burst > 0 {
        st.faults.rate_limit_burst -= 1;
        return Err(-32);
    }
    if limit > 0 && count > limit {
        return Err(-32);
    }
    Ok(())
}

fn json<T: Serialize>(body: &T, limit: u32, remain: u32) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => {
            let mut response = Response::new(Body::from(bytes));
            let h = response.headers_mut();
            h.insert(
                http_header::CONTENT_TYPE,
                HeaderValue::from_static("application/json; charset=utf-8"),
            );
            h.insert(header::RATE_LIMIT, HeaderValue::from(limit));
            h.insert(header::RATE_REMAIN, HeaderValue::from(remain));
            response
        }
        Err(e) => {
            tracing::error!(error = %e, "simulator reply did not serialize");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

fn parse<T: DeserializeOwned>(body: &[u8]) -> Option<T> {
    serde_json::from_slice(body).ok()
}

/// The JSON in a `data=` query parameter.
fn data_param<T: DeserializeOwned>(query: Option<&str>) -> Option<T> {
    #[derive(serde::Deserialize)]
    struct Data {
        data: String,
    }
    let data: Data = serde_urlencoded::from_str(query?).ok()?;
    serde_json::from_str(&data.data).ok()
}

fn page(query: Option<&str>) -> Option<directory::Page> {
    serde_urlencoded::from_str(query.unwrap_or("")).ok()
}

async fn message_cs(State(sim): State<Sim>, headers: HeaderMap, body: Bytes) -> Response {
    let body = parse(&body);
    call(&sim, &headers, path::MESSAGE_CS, Api::Oa, |st, now| {
        faults::send_error(st)?;
        send::cs(st, body, now)
    })
}

async fn group_message(State(sim): State<Sim>, headers: HeaderMap, body: Bytes) -> Response {
    let body = parse(&body);
    call(&sim, &headers, path::GROUP_MESSAGE, Api::Oa, |st, now| {
        faults::send_error(st)?;
        send::group(st, body, now)
    })
}

async fn zns_template(State(sim): State<Sim>, headers: HeaderMap, body: Bytes) -> Response {
    let body = parse(&body);
    let templates = &sim.config().zns_templates;
    call(&sim, &headers, path::ZNS_TEMPLATE, Api::Zns, |st, now| {
        faults::send_error(st)?;
        send::zns(st, body, templates, now)
    })
}

async fn legacy_message(State(sim): State<Sim>, headers: HeaderMap) -> Response {
    call(&sim, &headers, path::LEGACY_MESSAGE, Api::Oa, |_, _| {
        Err::<(), i64>(-240)
    })
}

async fn user_list(State(sim): State<Sim>, headers: HeaderMap, RawQuery(q): RawQuery) -> Response {
    let q = data_param(q.as_deref());
    call(&sim, &headers, path::USER_LIST, Api::Oa, |st, now| {
        directory::user_list(st, q, now)
    })
}

async fn user_detail(
    State(sim): State<Sim>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    let q = data_param(q.as_deref());
    call(&sim, &headers, path::USER_DETAIL, Api::Oa, |st, _| {
        directory::user_detail(st, q)
    })
}

async fn groups_of_oa(
    State(sim): State<Sim>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    let p = page(q.as_deref());
    call(&sim, &headers, path::GROUPS_OF_OA, Api::Oa, |st, _| {
        Ok(directory::groups(st, p.ok_or(-201)?))
    })
}

async fn group_members(
    State(sim): State<Sim>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    let p = page(q.as_deref());
    call(&sim, &headers, path::GROUP_MEMBERS, Api::Oa, |st, _| {
        directory::members(st, p.ok_or(-201)?)
    })
}

async fn tags_of_oa(State(sim): State<Sim>, headers: HeaderMap) -> Response {
    call(&sim, &headers, path::TAGS_OF_OA, Api::Oa, |st, _| {
        Ok(st.tags.clone())
    })
}

async fn tag_follower(State(sim): State<Sim>, headers: HeaderMap, body: Bytes) -> Response {
    let body = parse(&body);
    call(&sim, &headers, path::TAG_FOLLOWER, Api::Oa, |st, _| {
        directory::tag_follower(st, body)
    })
}

async fn untag_follower(State(sim): State<Sim>, headers: HeaderMap, body: Bytes) -> Response {
    let body = parse(&body);
    call(&sim, &headers, path::UNTAG_FOLLOWER, Api::Oa, |st, _| {
        directory::untag_follower(st, body)
    })
}

async fn remove_tag(State(sim): State<Sim>, headers: HeaderMap, body: Bytes) -> Response {
    let body = parse(&body);
    call(&sim, &headers, path::REMOVE_TAG, Api::Oa, |st, _| {
        directory::remove_tag(st, body)
    })
}
