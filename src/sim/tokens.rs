//! OAuth v4 for OA as Zalo runs it: the consent page (which consents at once), the token
//! endpoint (exchange with PKCE, refresh with single-use refresh tokens), and the access-token
//! check every API call starts with.
//!
//! OAuth error codes (Zalo publishes only `-14002`; the others are plausible stand-ins):
//! `-14001` invalid parameter (unparsable form, unknown grant) · `-14002` invalid refresh token
//! (unknown, already used, expired) · `-14003` invalid app id · `-14004` invalid secret key ·
//! `-14005` invalid authorization code (unknown, used, older than 10 minutes) · `-14006` invalid
//! code verifier (PKCE mismatch; the code is spent all the same).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::Sim;
use crate::deliver::zalo::wire::{self, OAuthError, TokenGrant, TokenReply};

const CODE_TTL: Duration = Duration::from_secs(600);

pub(crate) struct Tokens {
    rng: StdRng,
    access: HashMap<String, Access>,
    refresh: HashMap<String, Refresh>,
    codes: HashMap<String, Code>,
}

struct Access {
    expires: Instant,
    /// Revoked tokens answer -216 (as if unknown), voided ones -220.
    revoked: bool,
}

struct Refresh {
    expires: Instant,
    used: bool,
    /// The access token issued with it, voided on refresh when so configured.
    access: String,
}

struct Code {
    challenge: String,
    expires: Instant,
}

impl Tokens {
    pub fn new(seed: u64) -> Tokens {
        Tokens {
            rng: StdRng::seed_from_u64(seed),
            access: HashMap::new(),
            refresh: HashMap::new(),
            codes: HashMap::new(),
        }
    }

    fn random(&mut self, len: usize) -> String {
        const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        (0..len)
            .map(|_| CHARS[self.rng.random_range(0..CHARS.len())] as char)
            .collect()
    }

    pub fn issue(&mut self, access_ttl: Duration, refresh_ttl: Duration) -> TokenReply {
        let now = Instant::now();
        let access_token = self.random(64);
        let refresh_token = self.random(64);
        self.access.insert(
            access_token.clone(),
            Access {
                expires: now + access_ttl,
                revoked: false,
            },
        );
        self.refresh.insert(
            refresh_token.clone(),
            Refresh {
                expires: now + refresh_ttl,
                used: false,
                access: access_token.clone(),
            },
        );
        TokenReply {
            access_token,
            refresh_token,
            expires_in: access_ttl.as_secs().to_string(),
        }
    }

    /// `Err(-216)` for a missing, unknown or revoked token, `Err(-220)` for an expired or voided one.
    pub fn check(&self, token: &str, now: Instant) -> Result<(), i64> {
        match self.access.get(token) {
            None => Err(-216),
            Some(a) if a.revoked => Err(-216),
            Some(a) if a.expires <= now => Err(-220),
            Some(_) => Ok(()),
        }
    }

    pub fn revoke_all(&mut self) {
        self.access.values_mut().for_each(|a| a.revoked = true);
    }

    pub fn expire_all(&mut self) {
        let now = Instant::now();
        self.access.values_mut().for_each(|a| a.expires = now);
    }

    fn new_code(&mut self, challenge: String) -> String {
        let code = self.random(48);
        self.codes.insert(
            code.clone(),
            Code {
                challenge,
                expires: Instant::now() + CODE_TTL,
            },
        );
        code
    }
}

fn oauth_error(code: i64, name: &str, reason: &str) -> OAuthError {
    OAuthError {
        error: code,
        error_name: name.into(),
        error_reason: reason.into(),
        error_description: format!("{name}: {reason}"),
    }
}

/// base64url-nopad(SHA-256(verifier)), the PKCE S256 challenge.
pub fn pkce_challenge(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// `POST /v4/oa/access_token`.
pub(crate) async fn access_token(
    State(sim): State<Sim>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let config = sim.config();
    let grant = serde_urlencoded::from_bytes::<TokenGrant>(&body);
    let secret_ok = headers
        .get(wire::header::SECRET_KEY)
        .is_some_and(|v| v.as_bytes() == config.app_secret.as_bytes());
    let mut st = sim.state();
    st.counters.request(wire::path::ACCESS_TOKEN);
    let result = (|| {
        let grant = grant.map_err(|e| oauth_error(-14001, "Invalid parameter", &e.to_string()))?;
        if !secret_ok {
            return Err(oauth_error(
                -14004,
                "Invalid secret key",
                "secret_key header",
            ));
        }
        let app_id = match &grant {
            TokenGrant::AuthorizationCode { app_id, .. }
            | TokenGrant::RefreshToken { app_id, .. } => app_id,
        };
        if *app_id != config.app_id {
            return Err(oauth_error(-14003, "Invalid app id", "unknown app_id"));
        }
        let now = Instant::now();
        match grant {
            TokenGrant::AuthorizationCode {
                code,
                code_verifier,
                ..
            } => {
                // Codes are single-use: spent by any attempt, right or wrong.
                let Some(c) = st.tokens.codes.remove(&code) else {
                    return Err(oauth_error(
                        -14005,
                        "Invalid authorization code",
                        "unknown or used",
                    ));
                };
                if c.expires <= now {
                    return Err(oauth_error(-14005, "Invalid authorization code", "expired"));
                }
                if pkce_challenge(&code_verifier) != c.challenge {
                    return Err(oauth_error(
                        -14006,
                        "Invalid code verifier",
                        "PKCE mismatch",
                    ));
                }
                st.counters.stats.token_exchanges += 1;
                Ok(st.tokens.issue(config.access_ttl, config.refresh_ttl))
            }
            TokenGrant::RefreshToken { refresh_token, .. } => {
                let Some(r) = st.tokens.refresh.get_mut(&refresh_token) else {
                    return Err(oauth_error(-14002, "Invalid refresh token", "unknown"));
                };
                if r.used {
                    st.counters.stats.refresh_reuse_rejections += 1;
                    return Err(oauth_error(-14002, "Invalid refresh token", "already used"));
                }
                if r.expires <= now {
                    return Err(oauth_error(-14002, "Invalid refresh token", "expired"));
                }
                r.used = true;
                let old_access = r.access.clone();
                if config.void_access_on_refresh
                    && let Some(a) = st.tokens.access.get_mut(&old_access)
                {
                    a.expires = now;
                }
                st.counters.stats.token_refreshes += 1;
                Ok(st.tokens.issue(config.access_ttl, config.refresh_ttl))
            }
        }
    })();
    let code = result.as_ref().map_or_else(|e| e.error, |_| 0);
    st.counters.answer(code);
    drop(st);
    match result {
        Ok(reply) => axum::Json(reply).into_response(),
        Err(e) => {
            let status = if config.oauth_errors_http_200 {
                StatusCode::OK
            } else {
                StatusCode::BAD_REQUEST
            };
            (status, axum::Json(e)).into_response()
        }
    }
}

#[derive(Deserialize)]
struct PermissionQuery {
    app_id: String,
    redirect_uri: String,
    code_challenge: String,
    #[serde(default)]
    state: Option<String>,
}

/// `GET /v4/oa/permission`: the admin "consents" at once; 302 back with a fresh code.
pub(crate) async fn permission(State(sim): State<Sim>, RawQuery(query): RawQuery) -> Response {
    let q = match serde_urlencoded::from_str::<PermissionQuery>(query.as_deref().unwrap_or("")) {
        Ok(q) => q,
        Err(e) => {
            return (StatusCode::BAD_REQUEST, format!("bad consent request: {e}")).into_response();
        }
    };
    if q.app_id != sim.config().app_id {
        return (StatusCode::BAD_REQUEST, "unknown app_id").into_response();
    }
    let code = sim.state().tokens.new_code(q.code_challenge);
    let mut params = vec![
        ("code", code.as_str()),
        ("oa_id", sim.config().oa_id.as_str()),
    ];
    if let Some(s) = &q.state {
        params.push(("state", s));
    }
    let Ok(encoded) = serde_urlencoded::to_string(&params) else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let sep = if q.redirect_uri.contains('?') {
        '&'
    } else {
        '?'
    };
    let location = format!("{}{sep}{encoded}", q.redirect_uri);
    (StatusCode::FOUND, [(header::LOCATION, location)]).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_checks() {
        let mut t = Tokens::new(1);
        let pair = t.issue(Duration::from_secs(60), Duration::from_secs(600));
        let now = Instant::now();
        assert_eq!(t.check(&pair.access_token, now), Ok(()));
        assert_eq!(t.check("nope", now), Err(-216));
        assert_eq!(
            t.check(&pair.access_token, now + Duration::from_secs(61)),
            Err(-220)
        );
        t.revoke_all();
        assert_eq!(t.check(&pair.access_token, now), Err(-216));
    }

    #[test]
    fn pkce_rfc7636_example() {
        assert_eq!(
            pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }
}
