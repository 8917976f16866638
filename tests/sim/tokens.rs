//! The OAuth endpoints and the access-token checks every call starts with.

use base64::Engine as _;
use loa::deliver::zalo::wire::{
    OAuthError, TokenGrant, TokenReply, appsecret_proof, header, parse_token_reply, path,
};
use sha2::{Digest, Sha256};

use super::{FRESH, HEAD_PHONE, Harness, SimConfig, config, cs_body, start};

const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

fn challenge(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// Opens the consent page; returns the code from the redirect after checking oa_id and state.
async fn consent(h: &Harness) -> String {
    let r = h
        .http
        .get(h.url(path::PERMISSION))
        .query(&[
            ("app_id", h.sim_app_id()),
            ("redirect_uri", "http://127.0.0.1:9/cb?x=1".into()),
            ("code_challenge", challenge(VERIFIER)),
            ("state", "trạng thái".into()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    let location = r.headers()["location"].to_str().unwrap().to_string();
    let url = reqwest::Url::parse(&location).unwrap();
    assert_eq!(url.path(), "/cb");
    let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
    assert_eq!(q["x"], "1");
    assert_eq!(q["state"], "trạng thái");
    assert_eq!(q["oa_id"], SimConfig::default().oa_id);
    q["code"].clone()
}

impl Harness {
    fn sim_app_id(&self) -> String {
        SimConfig::default().app_id
    }

    /// POSTs a grant; returns the HTTP status and the raw body.
    async fn grant(&self, grant: &TokenGrant, secret: &str) -> (u16, Vec<u8>) {
        let r = self
            .http
            .post(self.url(path::ACCESS_TOKEN))
            .header(header::SECRET_KEY, secret)
            .form(grant)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.bytes().await.unwrap().to_vec())
    }

    async fn exchange(&self, code: &str, verifier: &str) -> (u16, Result<TokenReply, OAuthError>) {
        let grant = TokenGrant::AuthorizationCode {
            app_id: self.sim_app_id(),
            code: code.into(),
            code_verifier: verifier.into(),
        };
        let (status, body) = self.grant(&grant, "sim-app-secret").await;
        (status, parse_token_reply(&body))
    }

    async fn refresh(&self, refresh_token: &str) -> (u16, Result<TokenReply, OAuthError>) {
        let grant = TokenGrant::RefreshToken {
            app_id: self.sim_app_id(),
            refresh_token: refresh_token.into(),
        };
        let (status, body) = self.grant(&grant, "sim-app-secret").await;
        (status, parse_token_reply(&body))
    }
}

#[tokio::test]
async fn exchange_with_pkce_then_rotate_refresh_tokens() {
    let h = start(config()).await;
    let code = consent(&h).await;
    let grant = TokenGrant::AuthorizationCode {
        app_id: h.sim_app_id(),
        code: code.clone(),
        code_verifier: VERIFIER.into(),
    };
    let (status, body) = h.grant(&grant, "sim-app-secret").await;
    assert_eq!(status, 200);
    let raw: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(raw["expires_in"], "90000", "expires_in is a string");
    let first = parse_token_reply(&body).unwrap();
    // The new access token works.
    let r = h
        .post_with(path::MESSAGE_CS, &first.access_token, cs_body(FRESH, "a"))
        .await;
    assert_eq!(r.error(), 0);
    // The code is single-use.
    let (status, reused) = h.exchange(&code, VERIFIER).await;
    assert_eq!((status, reused.unwrap_err().error), (200, -14005));

    let (_, second) = h.refresh(&first.refresh_token).await;
    let second = second.unwrap();
    assert_ne!(second.refresh_token, first.refresh_token);
    assert_ne!(second.access_token, first.access_token);
    // Reusing the spent refresh token: an error body, with HTTP 200.
    let (status, reused) = h.refresh(&first.refresh_token).await;
    let e = reused.unwrap_err();
    assert_eq!((status, e.error), (200, -14002));
    assert_eq!(e.error_name, "Invalid refresh token");
    // The newest one still refreshes; the old access token still works (void_access_on_refresh off).
    assert!(h.refresh(&second.refresh_token).await.1.is_ok());
    let r = h
        .post_with(path::MESSAGE_CS, &first.access_token, cs_body(FRESH, "b"))
        .await;
    assert_eq!(r.error(), 0);
    let stats = h.sim.stats();
    assert_eq!(stats.token_exchanges, 1);
    assert_eq!(stats.token_refreshes, 2);
    assert_eq!(stats.refresh_reuse_rejections, 1);
}

#[tokio::test]
async fn bad_grants_are_oauth_errors() {
    let h = start(config()).await;
    let code = consent(&h).await;
    let (_, r) = h.exchange(&code, "not-the-verifier").await;
    assert_eq!(r.unwrap_err().error, -14006);
    let (_, r) = h.exchange("no-such-code", VERIFIER).await;
    assert_eq!(r.unwrap_err().error, -14005);
    let pair = h.sim.issue_tokens();
    let grant = TokenGrant::RefreshToken {
        app_id: h.sim_app_id(),
        refresh_token: pair.refresh_token.clone(),
    };
    let (status, body) = h.grant(&grant, "wrong-secret").await;
    assert_eq!(
        (status, parse_token_reply(&body).unwrap_err().error),
        (200, -14004)
    );
    let wrong_app = TokenGrant::RefreshToken {
        app_id: "1".into(),
        refresh_token: pair.refresh_token.clone(),
    };
    let (_, body) = h.grant(&wrong_app, "sim-app-secret").await;
    assert_eq!(parse_token_reply(&body).unwrap_err().error, -14003);
    // None of those spent the refresh token.
    assert!(h.refresh(&pair.refresh_token).await.1.is_ok());
}

#[tokio::test]
async fn oauth_errors_can_be_http_400_and_refresh_can_void_access() {
    let h = start(SimConfig {
        oauth_errors_http_200: false,
        void_access_on_refresh: true,
        ..config()
    })
    .await;
    let (status, r) = h.refresh("unknown").await;
    assert_eq!((status, r.unwrap_err().error), (400, -14002));
    let old = h.tokens.clone();
    assert!(h.refresh(&old.refresh_token).await.1.is_ok());
    assert_eq!(h.cs(FRESH, "x").await.error(), -220);
}

#[tokio::test]
async fn unknown_revoked_expired_tokens_and_appsecret_proof() {
    let h = start(config()).await;
    let r = h
        .post_with(path::MESSAGE_CS, "nope", cs_body(FRESH, "x"))
        .await;
    assert_eq!((r.status, r.error()), (200, -216));
    assert!(
        r.limit.is_some() && r.remain.is_some(),
        "rate headers on errors too"
    );
    let zns = serde_json::json!({"phone": HEAD_PHONE, "template_id": "loa-announcement", "template_data": {}});
    assert_eq!(
        h.post_with(path::ZNS_TEMPLATE, "nope", zns.clone())
            .await
            .error(),
        -124
    );
    let missing = h
        .http
        .post(h.url(path::MESSAGE_CS))
        .json(&cs_body(FRESH, "x"))
        .send()
        .await
        .unwrap();
    assert_eq!(super::reply(missing).await.error(), -216);

    let token = &h.tokens.access_token;
    let with_proof = |proof: String| {
        h.http
            .post(h.url(path::MESSAGE_CS))
            .header(header::ACCESS_TOKEN, token)
            .header(header::APPSECRET_PROOF, proof)
            .json(&cs_body(FRESH, "x"))
            .send()
    };
    let good = with_proof(appsecret_proof("sim-app-secret", token))
        .await
        .unwrap();
    assert_eq!(super::reply(good).await.error(), 0);
    let bad = with_proof(appsecret_proof("other", token)).await.unwrap();
    assert_eq!(super::reply(bad).await.error(), -242);

    h.sim.expire_access_tokens();
    assert_eq!(h.cs(FRESH, "x").await.error(), -220);
    assert_eq!(h.post(path::ZNS_TEMPLATE, zns).await.error(), -220);
    h.sim.revoke_access_tokens();
    assert_eq!(h.cs(FRESH, "x").await.error(), -216);
    // A fresh pair works again.
    let fresh = h.sim.issue_tokens();
    let r = h
        .post_with(path::MESSAGE_CS, &fresh.access_token, cs_body(FRESH, "x"))
        .await;
    assert_eq!(r.error(), 0);
}
