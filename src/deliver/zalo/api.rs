//! The HTTP client: one reqwest client (HTTP keep-alive, rustls with ring), three base URLs, the
//! `access_token` header, JSON bodies for POST and `data=<JSON>` for GET, every reply read as the
//! `{error, message, data}` envelope with the rate headers. Transport failures are told apart
//! from Zalo's answers, because a timeout may have delivered the message and a refusal did not.

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::config::{Secret, ZaloConfig};
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
}

/// `X-RateLimit-Limit` / `X-RateLimit-Remain`, when present.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RateInfo {
    pub limit: Option<u64>,
    pub remain: Option<u64>,
}

pub struct Api {
    http: reqwest::Client,
    oauth: String,
    api: String,
    zns: String,
    app_id: String,
    app_secret: Secret,
    proof: bool,
    urls: std::sync::RwLock<std::collections::HashMap<(Base, &'static str), reqwest::Url>>,
}

impl Api {
    pub fn new(config: &ZaloConfig) -> anyhow::Result<Api> {
        // One process-wide rustls provider: ring (no C toolchain needed beyond cc, no aws-lc).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_millis(u64::from(config.timeout_ms.max(100))))
            .connect_timeout(Duration::from_secs(5))
            .pool_max_idle_per_host(1024)
            .tcp_nodelay(true)
            // The API answers where it is asked; a redirect would be a misconfigured base URL,
            // better refused than followed with the access token.
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        let trim = |s: &str| s.trim_end_matches('/').to_string();
        Ok(Api {
            http,
            oauth: trim(&config.oauth_url),
            api: trim(&config.api_url),
            zns: trim(&config.zns_url),
            app_id: config.app_id.clone(),
            app_secret: config.app_secret.clone(),
            proof: config.appsecret_proof,
            urls: Default::default(),
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

    /// The parsed URL of a path, parsed once: a fan-out calls the same three URLs a hundred
    /// thousand times, and parsing (with IDNA) showed in its profile.
    fn parsed(&self, base: Base, path: &'static str) -> Result<reqwest::Url, ApiError> {
        if let Some(u) = self
            .urls
            .read()
            .ok()
            .and_then(|m| m.get(&(base, path)).cloned())
        {
            return Ok(u);
        }
        let url = reqwest::Url::parse(&self.url(base, path))
            .map_err(|e| ApiError::Connect(format!("bad URL: {e}")))?;
        if let Ok(mut m) = self.urls.write() {
            m.insert((base, path), url.clone());
        }
        Ok(url)
    }

    fn authorise(&self, req: reqwest::RequestBuilder, token: &str) -> reqwest::RequestBuilder {
        let req = req.header(header::ACCESS_TOKEN, token);
        if self.proof {
            req.header(
                header::APPSECRET_PROOF,
                appsecret_proof(self.app_secret.expose(), token),
            )
        } else {
            req
        }
    }

    /// POST a JSON body; the `data` of a successful reply.
    pub async fn post<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        base: Base,
        path: &'static str,
        token: &str,
        body: &B,
    ) -> Result<(T, RateInfo), ApiError> {
        let req = self
            .authorise(self.http.post(self.parsed(base, path)?), token)
            .json(body);
        self.call(req).await
    }

    /// GET with the parameters as one `data=<JSON>` query parameter (the OA API's way).
    pub async fn get_data<Q: Serialize, T: DeserializeOwned>(
        &self,
        path: &'static str,
        token: &str,
        query: &Q,
    ) -> Result<(T, RateInfo), ApiError> {
        let data = serde_json::to_string(query).map_err(|e| ApiError::Body(e.to_string()))?;
        let req = self
            .authorise(self.http.get(self.parsed(Base::Api, path)?), token)
            .query(&[("data", data)]);
        self.call(req).await
    }

    /// GET with plain query parameters (the group endpoints).
    pub async fn get_plain<T: DeserializeOwned>(
        &self,
        path: &'static str,
        token: &str,
        query: &[(&str, String)],
    ) -> Result<(T, RateInfo), ApiError> {
        let req = self
            .authorise(self.http.get(self.parsed(Base::Api, path)?), token)
            .query(query);
        self.call(req).await
    }

    async fn call<T: DeserializeOwned>(
        &self,
        req: reqwest::RequestBuilder,
    ) -> Result<(T, RateInfo), ApiError> {
        let resp = req.send().await.map_err(transport)?;
        let status = resp.status().as_u16();
        let number = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|s| s.trim().parse().ok())
        };
        let rate = RateInfo {
            limit: number(header::RATE_LIMIT),
            remain: number(header::RATE_REMAIN),
        };
        if status != 200 {
            return Err(ApiError::Http { status });
        }
        let bytes = resp.bytes().await.map_err(transport)?;
        let envelope: Envelope<T> =
            serde_json::from_slice(&bytes).map_err(|e| ApiError::Body(e.to_string()))?;
        match (envelope.error, envelope.data) {
            (0, Some(data)) => Ok((data, rate)),
            (0, None) => Err(ApiError::Body("success without data".into())),
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
        let resp = self
            .http
            .post(self.url(Base::OAuth, wire::path::ACCESS_TOKEN))
            .header(header::SECRET_KEY, self.app_secret.expose())
            .form(grant)
            .send()
            .await
            .map_err(|e| TokenError::Transport(transport(e)))?;
        let status = resp.status().as_u16();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| TokenError::Transport(transport(e)))?;
        if status >= 500 {
            return Err(TokenError::Transport(ApiError::Http { status }));
        }
        wire::parse_token_reply(&bytes).map_err(TokenError::Refused)
    }
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

fn transport(e: reqwest::Error) -> ApiError {
    if e.is_timeout() {
        ApiError::Timeout
    } else if e.is_connect() {
        ApiError::Connect(e.to_string())
    } else if e.is_body() || e.is_decode() {
        ApiError::Body(e.to_string())
    } else {
        // A reset after the request was written: treat like a timeout (it may have arrived).
        ApiError::Timeout
    }
}
