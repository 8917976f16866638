//! The HTTP client: hyper's HTTP/1.1 connections kept alive in our own pool (`pool/`; rustls
//! with ring and the platform's roots), three base URLs, the `access_token` header, JSON bodies
//! for POST and `data=<JSON>` for GET, every reply read as the `{error, message, data}` envelope
//! with the rate headers. Transport failures are told apart from Zalo's answers, because a
//! timeout may have delivered the message and a refusal did not.
//!
//! hyper rather than reqwest: a fan-out makes the same POST a hundred thousand times, and
//! reqwest's layers (redirect policy, retries, URL parsed twice per request) took a tenth of the
//! daemon's CPU in its profile. HTTP/1.1 only: over one multiplexed HTTP/2 connection the same
//! fan-out carried a third as many messages per second as over a pool of connections.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::body::Bytes;
use http_body_util::Full;
use hyper::http::{HeaderName, HeaderValue, Method, Request, Uri, header as http_header};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::config::{Secret, ZaloConfig};
use super::pool::{self, Answer, Failure, Pool, Req};
use super::request::appsecret_proof;
use super::wire::{self, Envelope, OAuthError, TokenGrant, TokenReply, header};

/// Which base URL a path is below.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Base {
    OAuth,
    Api,
    Zns,
}

/// What a call can end in, short of success.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// Zalo answered with a negative `error`.
    #[error("zalo error {code}: {message}")]
    Zalo {
        code: i64,
        message: String,
        rate: RateInfo,
    },
    /// Not an answer from the API: an HTTP status other than 200.
    #[error("HTTP {status}")]
    Http { status: u16 },
    /// No answer in time: the request may or may not have been acted on.
    #[error("timed out")]
    Timeout,
    /// The request may not have left (connection refused or reset).
    #[error("connection failed: {0}")]
    Connect(String),
    /// An answer we cannot read.
    #[error("unreadable reply: {0}")]
    Body(String),
    /// No token to call with (a refresh failed, or is under way elsewhere, or the OA is not
    /// authorised): nothing was sent, and the recipient is not at fault. `after`: when a token
    /// may be there.
    #[error("no Zalo token: {reason}")]
    NoToken { reason: String, after: Duration },
    /// Not called: Zalo refuses the OA itself (`halt.rs`).
    #[error("zalo error {code}: {reason} (not called until the OA is mended)")]
    Halted { code: i64, reason: String },
}

/// `X-RateLimit-Limit` / `X-RateLimit-Remain`, when present.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RateInfo {
    pub limit: Option<u64>,
    pub remain: Option<u64>,
}

pub struct Api {
    http: Arc<Pool>,
    timeout: Duration,
    oauth: String,
    api: String,
    zns: String,
    app_id: String,
    app_secret: Secret,
    proof: bool,
    uris: RwLock<HashMap<(Base, &'static str), Uri>>,
}

impl Api {
    pub fn new(config: &ZaloConfig) -> anyhow::Result<Api> {
        // No redirects are followed: the API answers where it is asked, and a redirect would be a
        // misconfigured base URL, better refused than followed with the access token.
        let http = Pool::new(pool::connector()?, 1024, Duration::from_secs(90));
        let trim = |s: &str| s.trim_end_matches('/').to_string();
        Ok(Api {
            http,
            timeout: Duration::from_millis(u64::from(config.timeout_ms.max(100))),
            oauth: trim(&config.oauth_url),
            api: trim(&config.api_url),
            zns: trim(&config.zns_url),
            app_id: config.app_id.clone(),
            app_secret: config.app_secret.clone(),
            proof: config.appsecret_proof,
            uris: Default::default(),
        })
    }

    pub fn app_id(&self) -> &str {
        &self.app_id
    }

    pub fn url(&self, base: Base, path: &str) -> String {
        let root = match base {
            Base::OAuth => &self.oauth,
            Base::Api => &self.api,
            Base::Zns => &self.zns,
        };
        format!("{root}{path}")
    }

    /// The URI of a path, parsed once: a fan-out calls the same three a hundred thousand times.
    fn uri(&self, base: Base, path: &'static str) -> Result<Uri, ApiError> {
        if let Some(u) = self
            .uris
            .read()
            .ok()
            .and_then(|m| m.get(&(base, path)).cloned())
        {
            return Ok(u);
        }
        let uri = parse_uri(&self.url(base, path))?;
        if let Ok(mut m) = self.uris.write() {
            m.insert((base, path), uri.clone());
        }
        Ok(uri)
    }

    /// A request with the `access_token` header (and `appsecret_proof` when configured).
    fn authorised(
        &self,
        method: Method,
        uri: Uri,
        token: &str,
    ) -> Result<hyper::http::request::Builder, ApiError> {
        let value = |v: &str| {
            HeaderValue::from_str(v)
                .map_err(|_| ApiError::Connect("token unfit for a header".into()))
        };
        let mut req = Request::builder()
            .method(method)
            .uri(uri)
            .header(HeaderName::from_static(header::ACCESS_TOKEN), value(token)?);
        if self.proof {
            let proof = appsecret_proof(self.app_secret.expose(), token);
            req = req.header(
                HeaderName::from_static(header::APPSECRET_PROOF),
                value(&proof)?,
            );
        }
        Ok(req)
    }

    /// POST a JSON body; the `data` of a successful reply.
    pub async fn post<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        base: Base,
        path: &'static str,
        token: &str,
        body: &B,
    ) -> Result<(T, RateInfo), ApiError> {
        let body = serde_json::to_vec(body).map_err(|e| ApiError::Body(e.to_string()))?;
        let req = self
            .authorised(Method::POST, self.uri(base, path)?, token)?
            .header(
                http_header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| ApiError::Connect(e.to_string()))?;
        self.call(Box::new(req)).await
    }

    /// GET with the parameters as one `data=<JSON>` query parameter (the OA API's way).
    pub async fn get_data<Q: Serialize, T: DeserializeOwned>(
        &self,
        path: &'static str,
        token: &str,
        query: &Q,
    ) -> Result<(T, RateInfo), ApiError> {
        let data = serde_json::to_string(query).map_err(|e| ApiError::Body(e.to_string()))?;
        self.get_plain(path, token, &[("data", data)]).await
    }

    /// GET with plain query parameters (the group endpoints).
    pub async fn get_plain<T: DeserializeOwned>(
        &self,
        path: &'static str,
        token: &str,
        query: &[(&str, String)],
    ) -> Result<(T, RateInfo), ApiError> {
        let query =
            serde_urlencoded::to_string(query).map_err(|e| ApiError::Body(e.to_string()))?;
        let uri = parse_uri(&format!("{}?{query}", self.url(Base::Api, path)))?;
        let req = self
            .authorised(Method::GET, uri, token)?
            .body(Full::default())
            .map_err(|e| ApiError::Connect(e.to_string()))?;
        self.call(Box::new(req)).await
    }

    /// Sends a request and reads the whole reply within the configured timeout: the status, the
    /// rate headers and the body.
    async fn exchange(&self, req: Req) -> Result<Reply, ApiError> {
        self.exchange_within(req, self.timeout).await
    }

    /// `exchange` within `timeout`.
    async fn exchange_within(&self, req: Req, timeout: Duration) -> Result<Reply, ApiError> {
        let exchange = async {
            let Answer { head, body } = self.http.exchange(req).await.map_err(|e| match e {
                Failure::NotSent(e) => ApiError::Connect(e),
                // A reset after the request was written: treat like a timeout (it may have
                // arrived).
                Failure::MaybeSent(e) => {
                    tracing::debug!(error = %e, "connection failed after the request was written");
                    ApiError::Timeout
                }
                Failure::Body(e) => ApiError::Body(e),
            })?;
            let number = |name: &str| {
                head.headers
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|s| s.trim().parse().ok())
            };
            let rate = RateInfo {
                limit: number(header::RATE_LIMIT),
                remain: number(header::RATE_REMAIN),
            };
            Ok(Reply {
                status: head.status.as_u16(),
                rate,
                body,
            })
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .unwrap_or(Err(ApiError::Timeout))
    }

    async fn call<T: DeserializeOwned>(&self, req: Req) -> Result<(T, RateInfo), ApiError> {
        let Reply { status, rate, body } = self.exchange(req).await?;
        if status != 200 {
            return Err(ApiError::Http { status });
        }
        let envelope: Envelope<T> = match serde_json::from_slice(&body) {
            Ok(envelope) => envelope,
            // An error reply whose `data` is not what a success carries (`{}`, `""`): the error
            // is what counts, not an unreadable reply (which would count as possibly sent).
            Err(e) => match serde_json::from_slice::<Envelope<serde::de::IgnoredAny>>(&body) {
                Ok(head) if head.error != 0 => {
                    return Err(ApiError::Zalo {
                        code: head.error,
                        message: head.message,
                        rate,
                    });
                }
                // A success whose data is not what `T` reads: a send's (`SentId`) is still a
                // success, read from nothing; anything else cannot be used.
                Ok(_) => return nothing::<T>(rate).ok_or(ApiError::Body(e.to_string())),
                Err(_) => return Err(ApiError::Body(e.to_string())),
            },
        };
        match (envelope.error, envelope.data) {
            (0, Some(data)) => Ok((data, rate)),
            (0, None) => nothing::<T>(rate).ok_or(ApiError::Body("success without data".into())),
            (code, _) => Err(ApiError::Zalo {
                code,
                message: envelope.message,
                rate,
            }),
        }
    }

    /// The token endpoint: form body, `secret_key` header. Any reply without an access token is
    /// an error, whatever its HTTP status.
    pub async fn token(&self, grant: &TokenGrant) -> Result<TokenReply, TokenError> {
        let form = serde_urlencoded::to_string(grant)
            .map_err(|e| TokenError::Transport(ApiError::Body(e.to_string())))?;
        let secret = HeaderValue::from_str(self.app_secret.expose()).map_err(|_| {
            TokenError::Transport(ApiError::Connect("app secret unfit for a header".into()))
        })?;
        let req = Request::builder()
            .method(Method::POST)
            .uri(
                self.uri(Base::OAuth, wire::path::ACCESS_TOKEN)
                    .map_err(TokenError::Transport)?,
            )
            .header(header::SECRET_KEY, secret)
            .header(
                http_header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(Full::new(Bytes::from(form)))
            .map_err(|e| TokenError::Transport(ApiError::Connect(e.to_string())))?;
        // Longer than a send's: Zalo may rotate the pair and the answer be lost to a timeout,
        // and then only `loa zalo auth` brings the OA back; a slow answer is better waited for.
        let reply = self
            .exchange_within(Box::new(req), self.timeout.max(TOKEN_TIMEOUT))
            .await
            .map_err(TokenError::Transport)?;
        if reply.status >= 500 {
            return Err(TokenError::Transport(ApiError::Http {
                status: reply.status,
            }));
        }
        wire::parse_token_reply(&reply.body).map_err(TokenError::Refused)
    }
}

/// The least a token call is given before it counts as timed out.
const TOKEN_TIMEOUT: Duration = Duration::from_secs(30);

/// A reply read whole.
struct Reply {
    status: u16,
    rate: RateInfo,
    body: Bytes,
}

fn parse_uri(url: &str) -> Result<Uri, ApiError> {
    url.parse()
        .map_err(|e| ApiError::Connect(format!("bad URL {url}: {e}")))
}

/// Why the token endpoint gave no tokens.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Try again: nothing was decided.
    #[error("token endpoint unreachable: {0}")]
    Transport(ApiError),
    /// Zalo refused (a spent refresh token, a wrong secret…): an operator must look.
    #[error("token refused: {0}")]
    Refused(OAuthError),
}

/// `T` read from no data at all, for a success that carried none `T` can read: only types that
/// accept a unit (a send's `SentId`) make anything of it.
fn nothing<T: DeserializeOwned>(rate: RateInfo) -> Option<(T, RateInfo)> {
    let unit = serde::de::value::UnitDeserializer::<serde::de::value::Error>::new();
    T::deserialize(unit).ok().map(|t| (t, rate))
}
