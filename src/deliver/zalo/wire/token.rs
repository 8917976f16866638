//! The token endpoint's bodies. A reply is a success only when it carries an `access_token`: Zalo
//! sometimes answers an OAuth error with HTTP 200, and reading that as success is how other
//! integrations overwrote good tokens. `expires_in` is a string in Zalo's own example; numbers are
//! accepted too.

use serde::{Deserialize, Serialize};

/// The form body sent to `POST /v4/oa/access_token` (with the `secret_key` header).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "grant_type", rename_all = "snake_case")]
pub enum TokenGrant {
    AuthorizationCode {
        app_id: String,
        code: String,
        code_verifier: String,
    },
    RefreshToken {
        app_id: String,
        refresh_token: String,
    },
}

/// A successful token reply.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenReply {
    pub access_token: String,
    pub refresh_token: String,
    /// Seconds; a string on the wire.
    pub expires_in: String,
}

/// The longest life a token reply is believed to give (Zalo's access tokens live 25 hours).
const MAX_EXPIRES_IN: i64 = 30 * 24 * 3600;

impl TokenReply {
    /// `expires_in` in seconds, within 0 to 30 days; None when it is not a number. A reply is
    /// believed only that far: a value past jiff's range would otherwise panic where it is added
    /// to the clock, after Zalo had already spent the old refresh token.
    pub fn expires_in_secs(&self) -> Option<i64> {
        let text = self.expires_in.trim();
        let secs = text.parse::<i64>().ok().or_else(|| {
            text.parse::<f64>()
                .ok()
                .filter(|f| f.is_finite())
                .map(|f| f.clamp(0.0, MAX_EXPIRES_IN as f64) as i64)
        })?;
        Some(secs.clamp(0, MAX_EXPIRES_IN))
    }
}

/// An OAuth-style error body: `{"error":-14002,"error_name":…,"error_reason":…,"error_description":…}`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OAuthError {
    pub error: i64,
    #[serde(default)]
    pub error_name: String,
    #[serde(default)]
    pub error_reason: String,
    #[serde(default)]
    pub error_description: String,
}

impl std::fmt::Display for OAuthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {} {}",
            self.error, self.error_name, self.error_reason, self.error_description
        )
    }
}

/// The optional `appsecret_proof` header: lowercase hex of HMAC-SHA256(key = app secret,
/// message = access token). HMAC is built on `sha2` by hand (RFC 2104) rather than adding a crate.
pub fn appsecret_proof(app_secret: &str, access_token: &str) -> String {
    use sha2::{Digest, Sha256};
    const BLOCK: usize = 64;
    let mut key = [0u8; BLOCK];
    if app_secret.len() > BLOCK {
        key[..32].copy_from_slice(&Sha256::digest(app_secret.as_bytes()));
    } else {
        key[..app_secret.len()].copy_from_slice(app_secret.as_bytes());
    }
    let pad = |byte: u8| key.map(|k| k ^ byte);
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(access_token.as_bytes())
        .finalize();
    let outer = Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize();
    outer.iter().map(|b| format!("{b:02x}")).collect()
}

/// Reads a token endpoint reply, whatever its HTTP status.
pub fn parse_token_reply(body: &[u8]) -> Result<TokenReply, OAuthError> {
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|e| OAuthError {
        error: 0,
        error_name: "invalid_json".into(),
        error_reason: e.to_string(),
        error_description: String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned(),
    })?;
    let text = |key: &str| match value.get(key) {
        Some(serde_json::Value::String(s)) if !s.is_empty() => Some(s.clone()),
        Some(serde_json::Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    // Both tokens make a success whatever `expires_in` says: Zalo has spent the old refresh
    // token by then, so dropping the new pair would leave the OA to be authorised again. An
    // unreadable expiry counts as short (callers refresh after an hour).
    match (text("access_token"), text("refresh_token")) {
        (Some(access_token), Some(refresh_token)) => Ok(TokenReply {
            access_token,
            refresh_token,
            expires_in: text("expires_in").unwrap_or_default(),
        }),
        _ => Err(
            serde_json::from_value::<OAuthError>(value.clone()).unwrap_or_else(|_| OAuthError {
                error: 0,
                error_name: "no_access_token".into(),
                error_reason: "the reply has no access_token, refresh_token and expires_in".into(),
                error_description: value.to_string().chars().take(200).collect(),
            }),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_and_number_expiry() {
        let r =
            parse_token_reply(br#"{"access_token":"a","refresh_token":"r","expires_in":"90000"}"#)
                .unwrap();
        assert_eq!(r.expires_in_secs(), Some(90000));
        let r =
            parse_token_reply(br#"{"access_token":"a","refresh_token":"r","expires_in":90000}"#)
                .unwrap();
        assert_eq!(r.expires_in, "90000");
    }

    #[test]
    fn a_new_pair_is_kept_whatever_its_expiry_says() {
        let reply = |expires: &str| {
            parse_token_reply(
                format!(r#"{{"access_token":"a","refresh_token":"r"{expires}}}"#).as_bytes(),
            )
            .expect("both tokens: a success")
        };
        assert_eq!(reply("").expires_in_secs(), None);
        assert_eq!(reply(r#","expires_in":"soon""#).expires_in_secs(), None);
        assert_eq!(
            reply(r#","expires_in":90000.0"#).expires_in_secs(),
            Some(90000)
        );
        let huge = reply(r#","expires_in":"99999999999999""#);
        assert_eq!(huge.expires_in_secs(), Some(MAX_EXPIRES_IN));
        assert_eq!(reply(r#","expires_in":"-5""#).expires_in_secs(), Some(0));
        assert_eq!(
            reply(r#","expires_in":1e300"#).expires_in_secs(),
            Some(MAX_EXPIRES_IN)
        );
    }

    #[test]
    fn error_bodies_are_never_success() {
        let e = parse_token_reply(
            br#"{"error":-14002,"error_name":"Invalid refresh token","error_reason":"used","error_description":"x"}"#,
        )
        .unwrap_err();
        assert_eq!(e.error, -14002);
        // An empty token, a missing refresh token or garbage: failures too.
        assert!(
            parse_token_reply(br#"{"access_token":"","refresh_token":"r","expires_in":"1"}"#)
                .is_err()
        );
        assert!(parse_token_reply(br#"{"access_token":"a","expires_in":"1"}"#).is_err());
        assert!(parse_token_reply(b"<html>").is_err());
    }

    #[test]
    fn appsecret_proof_is_hmac_sha256() {
        // RFC 4231, test case 2.
        assert_eq!(
            appsecret_proof("Jefe", "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn grants_are_form_encoded_with_grant_type() {
        let body = serde_urlencoded::to_string(TokenGrant::RefreshToken {
            app_id: "1".into(),
            refresh_token: "r t".into(),
        })
        .unwrap();
        assert_eq!(body, "grant_type=refresh_token&app_id=1&refresh_token=r+t");
    }
}
