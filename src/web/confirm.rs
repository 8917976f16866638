//! Confirm links: `GET /c/<token>` shows a small page with the message and one button; the
//! button posts back to the same address and confirms. Links are public (a head has no account)
//! but signed and expiring: a forged, altered or expired token gets a clear page and changes
//! nothing. A second tap, or a head who already replied "đã nhận", only shows that it is done.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use jiff::Timestamp;
use serde::Serialize;

use super::WebState;
use crate::confirm::follow_up::without_link;
use crate::confirm::link::LinkError;
use crate::ledger::LinkTarget;

/// Longest part of the message quoted on the page.
const QUOTE_CHARS: usize = 600;

#[derive(Serialize, Default)]
struct Page {
    heading: String,
    tone: &'static str,
    who: Option<String>,
    message: Option<String>,
    ask: bool,
    note: Option<String>,
}

pub async fn show(State(state): State<Arc<WebState>>, Path(token): Path<String>) -> Response {
    match find(&state, &token).await {
        Err(r) => r,
        Ok(t) if t.state == "confirmed" => done_page(&state, &t, false),
        Ok(t) => render(
            StatusCode::OK,
            &Page {
                heading: "Xác nhận đã nhận thông báo".into(),
                tone: "",
                who: Some(who(&state, &t)),
                message: t.text.as_deref().map(quote),
                ask: true,
                note: Some(
                    "Bấm nút để báo cho Ủy ban xã biết ông/bà đã nhận được thông báo này.".into(),
                ),
            },
        ),
    }
}

pub async fn confirm(State(state): State<Arc<WebState>>, Path(token): Path<String>) -> Response {
    let t = match find(&state, &token).await {
        Err(r) => return r,
        Ok(t) => t,
    };
    match state
        .store
        .confirm_by_link(&state.commune, &t.id_key, Timestamp::now())
        .await
    {
        Ok(true) => {
            metrics_confirmed();
            tracing::info!(confirmation = t.target.id, village = %t.target.village_id, "confirmed by link");
            match state.store.link_target(&state.commune, &t.id_key).await {
                Ok(Some(now)) => done_page(&state, &now, true),
                _ => done_page(&state, &t.target, true),
            }
        }
        // Confirmed meanwhile (a second tap, or a reply): read again, for how and when.
        Ok(false) => match state.store.link_target(&state.commune, &t.id_key).await {
            Ok(Some(now)) => done_page(&state, &now, false),
            _ => done_page(&state, &t.target, false),
        },
        Err(e) => {
            tracing::error!(error = %e, "cannot record a confirmation by link");
            unavailable()
        }
    }
}

fn metrics_confirmed() {
    metrics::counter!("loa_confirmations_total", "via" => "link").increment(1);
}

/// A verified token's confirmation.
struct Found {
    id_key: String,
    target: LinkTarget,
}

impl std::ops::Deref for Found {
    type Target = LinkTarget;
    fn deref(&self) -> &LinkTarget {
        &self.target
    }
}

async fn find(state: &WebState, token: &str) -> Result<Found, Response> {
    let Some(links) = &state.links else {
        return Err(refused(StatusCode::NOT_FOUND, "Không có trang này", None));
    };
    let key = match links.verify(token, Timestamp::now()) {
        Ok(k) => k,
        Err(LinkError::Expired) => {
            return Err(refused(
                StatusCode::GONE,
                "Liên kết đã hết hạn",
                Some(
                    "Liên kết xác nhận này đã quá hạn. Xin trả lời “đã nhận” trong tin nhắn Zalo của xã, hoặc báo cho cán bộ xã.",
                ),
            ));
        }
        Err(e) => {
            tracing::warn!(why = %e, "confirm link refused");
            return Err(refused(
                StatusCode::BAD_REQUEST,
                "Liên kết không hợp lệ",
                Some(
                    "Liên kết này không đúng hoặc đã bị sửa. Xin mở lại liên kết trong tin nhắn của xã, hoặc trả lời “đã nhận”.",
                ),
            ));
        }
    };
    match state.store.link_target(&state.commune, &key).await {
        Ok(Some(target)) => Ok(Found {
            id_key: key,
            target,
        }),
        Ok(None) => Err(refused(
            StatusCode::NOT_FOUND,
            "Không tìm thấy yêu cầu xác nhận",
            Some("Yêu cầu xác nhận này không còn trong hệ thống. Xin liên hệ cán bộ xã."),
        )),
        Err(e) => {
            tracing::error!(error = %e, "cannot read a confirmation");
            Err(unavailable())
        }
    }
}

fn done_page(state: &WebState, t: &LinkTarget, just_now: bool) -> Response {
    let when = t
        .confirmed_at
        .map(|at| crate::render::vi_time::datetime(at, &state.tz))
        .unwrap_or_default();
    let how = match t.via.as_deref() {
        Some("reply") => "bằng tin nhắn trả lời",
        Some("link") => "bằng liên kết",
        _ => "",
    };
    let heading = if just_now {
        "Đã xác nhận. Cảm ơn ông/bà!".to_string()
    } else {
        "Thông báo này đã được xác nhận".to_string()
    };
    render(
        StatusCode::OK,
        &Page {
            heading,
            tone: "ok",
            who: Some(who(state, t)),
            message: None,
            ask: false,
            note: note(how, &when),
        },
    )
}

/// "Đã xác nhận bằng liên kết — 08:15 thứ Ba…", from the parts known; none when nothing is.
fn note(how: &str, when: &str) -> Option<String> {
    match (how.is_empty(), when.is_empty()) {
        (true, true) => None,
        (false, true) => Some(format!("Đã xác nhận {how}.")),
        (true, false) => Some(format!("Đã xác nhận lúc {when}.")),
        (false, false) => Some(format!("Đã xác nhận {how} — {when}.")),
    }
}

fn who(state: &WebState, t: &LinkTarget) -> String {
    let village = state
        .villages
        .get(&t.village_id)
        .cloned()
        .unwrap_or_else(|| t.village_id.clone());
    format!("{village} — {}", t.person)
}

fn quote(text: &str) -> String {
    let text = without_link(text).trim();
    let mut out: String = text.chars().take(QUOTE_CHARS).collect();
    if text.chars().count() > QUOTE_CHARS {
        out.push('…');
    }
    out
}

fn refused(status: StatusCode, heading: &str, note: Option<&str>) -> Response {
    render(
        status,
        &Page {
            heading: heading.into(),
            tone: "bad",
            note: note.map(str::to_string),
            ..Page::default()
        },
    )
}

fn unavailable() -> Response {
    refused(
        StatusCode::SERVICE_UNAVAILABLE,
        "Chưa ghi nhận được",
        Some("Hệ thống đang bận. Xin thử lại sau ít phút."),
    )
}

fn render(status: StatusCode, page: &Page) -> Response {
    static TEMPLATE: std::sync::OnceLock<Option<tera::Tera>> = std::sync::OnceLock::new();
    let tera = TEMPLATE.get_or_init(|| {
        let mut t = tera::Tera::new();
        t.autoescape_on(vec![".html"]);
        t.add_raw_template("confirm.html", include_str!("confirm.html"))
            .map_err(|e| tracing::error!(error = %e, "confirm page template"))
            .ok()?;
        Some(t)
    });
    let html = tera.as_ref().and_then(|t| {
        let ctx = tera::Context::from_serialize(page).ok()?;
        t.render("confirm.html", &ctx).ok()
    });
    match html {
        Some(h) => (status, Html(h)).into_response(),
        None => (StatusCode::INTERNAL_SERVER_ERROR, "error").into_response(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_note_says_only_what_is_known() {
        assert_eq!(super::note("", ""), None);
        assert_eq!(
            super::note("bằng liên kết", "").as_deref(),
            Some("Đã xác nhận bằng liên kết.")
        );
        assert_eq!(
            super::note("", "08:15").as_deref(),
            Some("Đã xác nhận lúc 08:15.")
        );
    }
}
