//! Who may read the dashboard: whoever shows the configured token, as `Authorization: Bearer
//! <token>` or through `/login` (a link `/login?token=…` or the form), which sets an HttpOnly,
//! SameSite=Strict cookie. The cookie holds an HMAC of the token under a key kept in the
//! database, not the token: it cannot be forged, nor the token guessed from it offline. Every
//! comparison is of two SHA-256 digests in constant time, so the answer time reveals nothing.
//! Past `GUESSES` wrong tokens in a minute from one client (`ALL_GUESSES` from all), its tokens
//! are refused without being compared, so a short token cannot be guessed online either. Without a configured token the dashboard is off
//! (404).

use std::sync::Arc;

use axum::Form;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use sha2::{Digest as _, Sha256};

use super::{Dashboard, message, render};
use crate::deliver::zalo::config::Secret;
use crate::web::WebState;

const COOKIE: &str = "loa_dashboard";
/// 30 days.
const COOKIE_AGE_SECS: u32 = 30 * 24 * 3600;

/// The cookie's value for a token: its HMAC under the dashboard's key.
fn cookie_value(key: &Secret, token: &str) -> String {
    use hmac::{Hmac, Mac as _};
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key.expose().as_bytes()) else {
        return String::new();
    };
    mac.update(b"loa-dashboard-cookie:");
    mac.update(token.as_bytes());
    let digest = mac.finalize().into_bytes();
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Wrong tokens allowed from one client in a minute before its tokens are refused unseen.
const GUESSES: usize = 20;
/// Wrong tokens allowed from all clients together in a minute: many addresses guessing at once
/// are stopped too, and the memory kept for them stays bounded.
const ALL_GUESSES: usize = 200;
const GUESS_WINDOW: std::time::Duration = std::time::Duration::from_secs(60);

/// When the last wrong tokens were shown, by client and in all. Counted by client so that one
/// address guessing does not lock the operator out of logging in from another.
#[derive(Default)]
pub(super) struct Guesses(std::sync::Mutex<Seen>);

#[derive(Default)]
struct Seen {
    all: std::collections::VecDeque<std::time::Instant>,
    by_client: std::collections::HashMap<String, std::collections::VecDeque<std::time::Instant>>,
}

impl Guesses {
    /// Whether `client`'s tokens are being refused unseen: too many wrong ones of late, from it
    /// or from everyone.
    fn locked(&self, client: &str) -> bool {
        let Ok(mut seen) = self.0.lock() else {
            return true;
        };
        let fresh = |t: &std::time::Instant| t.elapsed() <= GUESS_WINDOW;
        while seen.all.front().is_some_and(|t| !fresh(t)) {
            seen.all.pop_front();
        }
        seen.by_client.retain(|_, times| {
            times.retain(fresh);
            !times.is_empty()
        });
        seen.all.len() >= ALL_GUESSES
            || seen
                .by_client
                .get(client)
                .is_some_and(|t| t.len() >= GUESSES)
    }

    fn wrong(&self, client: &str) {
        if let Ok(mut seen) = self.0.lock() {
            let now = std::time::Instant::now();
            seen.all.push_back(now);
            if seen.all.len() > ALL_GUESSES {
                seen.all.pop_front();
            }
            let times = seen.by_client.entry(client.to_string()).or_default();
            times.push_back(now);
            if times.len() > GUESSES {
                times.pop_front();
            }
        }
    }
}

/// Who shows a token, for counting wrong ones: the peer's address, or, when the peer is this
/// machine itself (the TLS proxy in front of loa, as the README advises), the address that proxy
/// put last in `X-Forwarded-For`, the one it saw. A header from anyone else is not believed.
/// Behind a proxy on another machine every client is that proxy, and they are counted together.
fn client(headers: &HeaderMap, peer: Option<std::net::SocketAddr>) -> String {
    let Some(peer) = peer else {
        return String::new();
    };
    // Canonical: on a dual-stack listener (`[::]:8080`) a proxy at 127.0.0.1 arrives as
    // `::ffff:127.0.0.1`, which is not a loopback address as it stands.
    let ip = peer.ip().to_canonical();
    let forwarded = ip
        .is_loopback()
        .then(|| headers.get_all("x-forwarded-for").iter().next_back())
        .flatten()
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.rsplit(',').next())
        .and_then(|v| v.trim().parse::<std::net::IpAddr>().ok());
    forwarded.unwrap_or(ip).to_string()
}

/// The peer's address, when the server was started with it (`web::serve`).
fn peer(extensions: &axum::http::Extensions) -> Option<std::net::SocketAddr> {
    extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0)
}

fn too_many() -> Response {
    let mut resp = message(
        StatusCode::TOO_MANY_REQUESTS,
        "Thử sai quá nhiều lần",
        "Đã có quá nhiều lần nhập sai mã truy cập. Xin thử lại sau một phút.",
    );
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("60"));
    resp
}

/// Equal in constant time: both sides are hashed to 32 bytes first, so neither the length nor
/// the first differing byte of the candidate shows in the time taken.
fn same(candidate: &str, expected: &str) -> bool {
    let (a, b) = (Sha256::digest(candidate), Sha256::digest(expected));
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

enum Access {
    Granted,
    /// A token was shown and it is wrong.
    Refused,
    /// Nothing shown.
    Missing,
}

fn access(headers: &HeaderMap, token: &Secret, key: &Secret) -> Access {
    if let Some(auth) = headers.get(header::AUTHORIZATION) {
        // Bytes, not `to_str`: a token may hold non-ASCII letters (sent as UTF-8).
        let shown = std::str::from_utf8(auth.as_bytes())
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        return if same(shown.trim(), token.expose()) {
            Access::Granted
        } else {
            Access::Refused
        };
    }
    let expected = cookie_value(key, token.expose());
    let cookie = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE);
    match cookie {
        Some((_, v)) if same(v, &expected) => Access::Granted,
        Some(_) => Access::Refused,
        None => Access::Missing,
    }
}

pub(super) fn off() -> Response {
    message(
        StatusCode::NOT_FOUND,
        "Bảng theo dõi chưa bật",
        "Bảng theo dõi chỉ mở khi có mã truy cập: đặt [web] dashboard_token (hoặc dashboard_token_file, hoặc biến môi trường LOA_WEB_DASHBOARD_TOKEN) rồi khởi động lại loa.",
    )
}

/// The middleware in front of the pages: off, the page, a 401 for a wrong Bearer token, or the
/// login page for a browser without a valid cookie.
pub async fn require(State(state): State<Arc<WebState>>, req: Request, next: Next) -> Response {
    let Some(dashboard) = &state.dashboard else {
        return off();
    };
    let bearer = req.headers().contains_key(header::AUTHORIZATION);
    let client = client(req.headers(), peer(req.extensions()));
    if bearer && dashboard.guesses.locked(&client) {
        return too_many();
    }
    match access(req.headers(), &dashboard.token, &dashboard.cookie_key) {
        Access::Granted => next.run(req).await,
        Access::Refused if bearer => {
            dashboard.guesses.wrong(&client);
            let mut resp = message(
                StatusCode::UNAUTHORIZED,
                "Mã truy cập không đúng",
                "Mã truy cập không đúng.",
            );
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            resp
        }
        Access::Refused | Access::Missing => Redirect::to("/login").into_response(),
    }
}

#[derive(Deserialize)]
pub struct TokenParam {
    token: Option<String>,
}

/// `GET /login`: the form, or with `?token=…` the same as posting it.
pub async fn login_page(
    State(state): State<Arc<WebState>>,
    parts: axum::http::request::Parts,
    Query(q): Query<TokenParam>,
) -> Response {
    let Some(dashboard) = &state.dashboard else {
        return off();
    };
    match q.token {
        Some(token) => log_in(dashboard, &parts, &token),
        None => login_form_page(StatusCode::OK, None),
    }
}

/// `POST /login` from the form.
pub async fn login_form(
    State(state): State<Arc<WebState>>,
    parts: axum::http::request::Parts,
    Form(q): Form<TokenParam>,
) -> Response {
    let Some(dashboard) = &state.dashboard else {
        return off();
    };
    log_in(dashboard, &parts, q.token.as_deref().unwrap_or(""))
}

fn log_in(dashboard: &Dashboard, parts: &axum::http::request::Parts, shown: &str) -> Response {
    let client = client(&parts.headers, peer(&parts.extensions));
    if dashboard.guesses.locked(&client) {
        return too_many();
    }
    if !same(shown.trim(), dashboard.token.expose()) {
        dashboard.guesses.wrong(&client);
        tracing::warn!("dashboard login with a wrong token");
        return login_form_page(StatusCode::UNAUTHORIZED, Some("Mã truy cập không đúng."));
    }
    let cookie = format!(
        "{COOKIE}={}; HttpOnly; SameSite=Strict; Path=/; Max-Age={COOKIE_AGE_SECS}",
        cookie_value(&dashboard.cookie_key, dashboard.token.expose())
    );
    set_cookie(Redirect::to("/").into_response(), &cookie)
}

fn set_cookie(mut resp: Response, cookie: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(cookie) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    resp
}

fn login_form_page(status: StatusCode, error: Option<&str>) -> Response {
    render(
        status,
        "login.html",
        &serde_json::json!({ "title": "Đăng nhập", "error": error }),
    )
}

/// `GET /logout`: forgets the cookie.
pub async fn logout() -> Response {
    let cookie = format!("{COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0");
    set_cookie(Redirect::to("/login").into_response(), &cookie)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrong_tokens_are_counted_by_client_and_forwarded_addresses_only_from_this_machine() {
        let mut h = HeaderMap::new();
        h.insert(
            "x-forwarded-for",
            HeaderValue::from_static("10.0.0.1, 203.0.113.7"),
        );
        let local: std::net::SocketAddr = "127.0.0.1:4000".parse().expect("addr");
        let remote: std::net::SocketAddr = "198.51.100.1:4000".parse().expect("addr");
        assert_eq!(client(&h, Some(local)), "203.0.113.7");
        assert_eq!(client(&h, Some(remote)), "198.51.100.1", "not believed");
        assert_eq!(client(&HeaderMap::new(), Some(local)), "127.0.0.1");
        let mapped: std::net::SocketAddr = "[::ffff:127.0.0.1]:4000".parse().expect("addr");
        assert_eq!(
            client(&h, Some(mapped)),
            "203.0.113.7",
            "a dual-stack listener"
        );
        let g = Guesses::default();
        for _ in 0..GUESSES {
            assert!(!g.locked("a"));
            g.wrong("a");
        }
        assert!(g.locked("a") && !g.locked("b"));
        // Many clients at once lock everyone out, and are not remembered beyond that.
        for i in 0..ALL_GUESSES {
            g.wrong(&format!("c{i}"));
        }
        assert!(g.locked("b"));
        assert!(g.0.lock().expect("lock").by_client.len() <= ALL_GUESSES + 1);
    }

    #[test]
    fn tokens_compare_by_value_only() {
        assert!(same("abc", "abc"));
        assert!(!same("abc", "abd"));
        assert!(!same("", "abc"));
        let (token, key) = (Secret::new("s3cret"), Secret::new("khoa"));
        let mut h = HeaderMap::new();
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer s3cret"),
        );
        assert!(matches!(access(&h, &token, &key), Access::Granted));
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer nope"),
        );
        assert!(matches!(access(&h, &token, &key), Access::Refused));
        let mut c = HeaderMap::new();
        let v = format!("a=b; {COOKIE}={}", cookie_value(&key, "s3cret"));
        c.insert(header::COOKIE, HeaderValue::from_str(&v).expect("header"));
        assert!(matches!(access(&c, &token, &key), Access::Granted));
        // The same cookie under another key (another commune's database) opens nothing.
        assert!(matches!(
            access(&c, &token, &Secret::new("khac")),
            Access::Refused
        ));
        assert!(matches!(
            access(&HeaderMap::new(), &token, &key),
            Access::Missing
        ));
    }
}
