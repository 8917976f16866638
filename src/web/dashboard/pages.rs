//! The two pages. Each reads the ledger through `ledger::report` (the functions `loa report`
//! uses), turns the result into a view (`view.rs`) and renders it. A database error is logged and
//! shown as a short Vietnamese page with status 500.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use jiff::SignedDuration;
use serde::Serialize;

use super::{chart, message, render, view, zalo};
use crate::ledger::report::Selection;
use crate::web::WebState;

/// How far back the overview looks, and ahead.
const RECENT: SignedDuration = SignedDuration::from_hours(24 * 7);
const AHEAD: SignedDuration = SignedDuration::from_hours(48);
/// The most rows of each list the overview shows.
const LIST: usize = 50;

fn unavailable(e: &dyn std::fmt::Display) -> Response {
    tracing::error!(error = %e, "dashboard cannot read the ledger");
    message(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Lỗi",
        "Không đọc được cơ sở dữ liệu. Vui lòng thử lại sau.",
    )
}

#[derive(Serialize)]
struct FileProblem {
    announcement: String,
    place: String,
    message: String,
}

/// Each stored problem (JSON objects with path, line, column, field, message) as one line.
fn problems(stored: Vec<(String, String)>) -> Vec<FileProblem> {
    let mut out = Vec::new();
    for (id, json) in stored {
        let list: Vec<serde_json::Value> = serde_json::from_str(&json).unwrap_or_default();
        for p in list {
            let text = |k: &str| p[k].as_str().unwrap_or("").to_string();
            out.push(FileProblem {
                announcement: id.clone(),
                place: format!("{}:{}:{}", text("path"), p["line"], p["column"]),
                message: text("message"),
            });
        }
    }
    out
}

#[derive(Serialize)]
struct InboundView {
    when: String,
    who: String,
    text: String,
}

pub async fn overview(State(state): State<Arc<WebState>>) -> Response {
    let Some(dashboard) = &state.dashboard else {
        return super::auth::off();
    };
    let (store, commune, tz) = (&state.store, state.commune.as_str(), state.tz.clone());
    let now = dashboard.clock.now();
    let sel = Selection {
        since: Some(now - RECENT),
        ..Selection::default()
    };
    let data = async {
        let report = store.report(commune, &sel).await?;
        let people = store.report_people(commune, &sel).await?;
        let upcoming = store
            .upcoming(commune, now, now + AHEAD, LIST as i64)
            .await?;
        let inbound = store.inbound_texts(commune, LIST as i64).await?;
        let problems = store.file_problems(commune).await?;
        let waiting = store.waiting_for_the_operator(commune).await?;
        let quota = store.zns_quota(commune).await?;
        Ok::<_, sqlx::Error>((report, people, upcoming, inbound, problems, waiting, quota))
    };
    let (report, people, upcoming, inbound, stored_problems, waiting, quota) = match data.await {
        Ok(d) => d,
        Err(e) => return unavailable(&e),
    };
    let sends: Vec<view::SendView> = report
        .sends
        .iter()
        .map(|s| view::send(s, &tz, &state.villages))
        .collect();
    let confirmations: Vec<&view::ConfirmationView> =
        sends.iter().flat_map(|s| &s.confirmations).collect();
    let mut failures = view::failed_people(&people, &tz, &state.villages);
    failures.truncate(LIST);
    let inbound: Vec<InboundView> = inbound
        .iter()
        .map(|i| InboundView {
            when: view::when(i.at, &tz),
            who: i.name.clone().unwrap_or_else(|| i.user_id.clone()),
            text: i.text.clone(),
        })
        .collect();
    let page = serde_json::json!({
        "title": "Tổng quan",
        "now": view::when(now, &tz),
        "zalo": zalo::view(waiting.as_deref(), quota.as_ref(), now, &tz),
        "upcoming": upcoming.iter().map(|u| view::upcoming(u, &tz)).collect::<Vec<_>>(),
        "sends": sends.iter().take(LIST).collect::<Vec<_>>(),
        // The totals cover every send of the period, not only the ones listed.
        "send_count": sends.len(),
        "total": view::counts_row("total", "Tổng", &report.total),
        "confirmations": confirmations.iter().take(LIST).collect::<Vec<_>>(),
        "failures": failures,
        "problems": problems(stored_problems),
        "inbound": inbound,
    });
    render(StatusCode::OK, "overview.html", &page)
}

pub async fn send(State(state): State<Arc<WebState>>, Path(id): Path<String>) -> Response {
    let not_found = || {
        message(
            StatusCode::NOT_FOUND,
            "Không tìm thấy",
            "Không có lần gửi này.",
        )
    };
    // Ids start at 1; 0 would select every send (`Selection` reads 0 as "any").
    let Some(id) = id.parse::<i64>().ok().filter(|id| *id > 0) else {
        return not_found();
    };
    let (store, commune, tz) = (&state.store, state.commune.as_str(), state.tz.clone());
    let sel = Selection {
        send: Some(id),
        ..Selection::default()
    };
    let data = async {
        let report = store.report(commune, &sel).await?;
        let people = store.report_people(commune, &sel).await?;
        let timeline = store.timeline(commune, id).await?;
        Ok::<_, sqlx::Error>((report, people, timeline))
    };
    let (report, people, timeline) = match data.await {
        Ok(d) => d,
        Err(e) => return unavailable(&e),
    };
    let Some(s) = report.sends.first() else {
        return not_found();
    };
    let page = serde_json::json!({
        "title": format!("Lần gửi #{id}"),
        "send": view::send(s, &tz, &state.villages),
        "failures": view::failed_people(&people, &tz, &state.villages),
        "chart": timeline.as_ref().and_then(chart::svg),
    });
    render(StatusCode::OK, "send.html", &page)
}
