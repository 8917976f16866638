//! The commune dashboard: server-rendered Vietnamese pages for staff, readable on a phone, no
//! JavaScript, no external resources. Its numbers come from `ledger::report`, the functions
//! `loa report` prints, so both always agree.
//!
//! - `auth.rs`: the token (Bearer header or a cookie set by `/login`), compared in constant time.
//! - `pages.rs`: the handlers, `/` (overview) and `/sends/{id}`.
//! - `view.rs`: report structs → what the templates show (times in Asia/Ho_Chi_Minh, words).
//! - `chart.rs`: reach over time as inline SVG.
//! - `templates/`: one base layout and the pages, embedded in the binary (never the commune's
//!   templates directory).

mod auth;
mod chart;
mod pages;
mod view;
mod zalo;

use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;

use super::WebState;
use crate::clock::Clock;
use crate::deliver::zalo::config::Secret;

/// What the dashboard needs besides the store.
pub struct Dashboard {
    /// Opens the dashboard; never printed.
    pub token: Secret,
    /// Keys the login cookie (shared by the commune's daemons through the database), so a cookie
    /// cannot be made, or its token found, without it.
    pub cookie_key: Secret,
    /// "Now" for the upcoming sends and the recent window; replaceable in tests.
    pub clock: Clock,
    /// Wrong tokens of the last minute: past a few, tokens are not even compared.
    guesses: auth::Guesses,
}

impl Dashboard {
    pub fn new(token: Secret, cookie_key: Secret, clock: Clock) -> Dashboard {
        Dashboard {
            token,
            cookie_key,
            clock,
            guesses: auth::Guesses::default(),
        }
    }
}

/// The dashboard's routes. `/login` and `/logout` are open; the pages need the token.
pub fn routes(state: Arc<WebState>) -> Router<Arc<WebState>> {
    let pages = Router::new()
        .route("/", get(pages::overview))
        .route("/sends/{id}", get(pages::send))
        .route_layer(axum::middleware::from_fn_with_state(state, auth::require));
    Router::new()
        .route("/login", get(auth::login_page).post(auth::login_form))
        .route("/logout", get(auth::logout))
        .merge(pages)
}

const TEMPLATES: [(&str, &str); 5] = [
    ("base.html", include_str!("templates/base.html")),
    ("overview.html", include_str!("templates/overview.html")),
    ("send.html", include_str!("templates/send.html")),
    ("login.html", include_str!("templates/login.html")),
    ("message.html", include_str!("templates/message.html")),
];

/// The templates, parsed once. They are part of the binary, so a broken one is a bug that the
/// tests catch (`templates_parse`), not something a deployment can cause.
fn tera() -> Result<&'static tera::Tera, String> {
    static TERA: OnceLock<Result<tera::Tera, String>> = OnceLock::new();
    TERA.get_or_init(|| {
        let mut tera = tera::Tera::new();
        tera.autoescape_on([".html"]);
        tera.add_raw_templates(TEMPLATES)
            .map_err(|e| format!("{e:?}"))?;
        Ok(tera)
    })
    .as_ref()
    .map_err(Clone::clone)
}

/// Renders a page; a failure is logged and answered with a generic 500.
fn render(status: StatusCode, name: &str, view: &impl serde::Serialize) -> Response {
    let out = tera().and_then(|t| {
        let ctx = tera::Context::from_serialize(view).map_err(|e| format!("{e:?}"))?;
        t.render(name, &ctx).map_err(|e| format!("{e:?}"))
    });
    match out {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!(template = name, error = %e, "cannot render a dashboard page");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
    }
}

/// A page with a title and one sentence (dashboard off, not found, database error).
fn message(status: StatusCode, title: &str, text: &str) -> Response {
    render(
        status,
        "message.html",
        &serde_json::json!({ "title": title, "text": text }),
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn templates_parse() {
        if let Err(e) = super::tera() {
            panic!("{e}");
        }
    }
}
