//! The OA's tokens. The access token (25 h) is refreshed well before it expires and whenever Zalo
//! calls it invalid (`-216`, `-220`, `-124`); the refresh token is single-use, so exactly one
//! daemon refreshes at a time (a lease row in the database, and a mutex within the process), and
//! the new pair is written to the database before the new access token is used. An error body
//! never replaces good tokens (the refresh itself: `refresh.rs`). Also the PKCE pieces of the consent exchange (`loa zalo auth`).

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use jiff::{SignedDuration, Timestamp};
use sha2::{Digest, Sha256};
use tokio::sync::{Mutex, RwLock};

use super::api::{Api, TokenError};
use crate::clock::Clock;
use crate::ledger::Store;

mod refresh;

/// After a refresh failed, the next try waits this long: otherwise every send (each asks for the
/// token) would try again, one after another. Meanwhile a token that still works is used, and a
/// newer pair in the database (another daemon's, or `loa zalo auth`) is taken at once.
const REFRESH_RETRY: SignedDuration = SignedDuration::from_secs(60);

/// An access token and the generation it belongs to.
#[derive(Clone)]
pub struct Access {
    pub token: String,
    pub generation: i64,
    pub expires_at: Timestamp,
    /// When to refresh it: the margin before expiry, but never before half the time it had
    /// left when this process got it, so that a token shorter-lived than the margin is not
    /// refreshed on every use.
    refresh_at: Timestamp,
}

impl Access {
    fn new(
        token: String,
        generation: i64,
        expires_at: Timestamp,
        margin: SignedDuration,
        now: Timestamp,
    ) -> Access {
        let left = expires_at.duration_since(now).max(SignedDuration::ZERO);
        Access {
            token,
            generation,
            expires_at,
            refresh_at: expires_at - margin.min(left / 2),
        }
    }
}

impl std::fmt::Debug for Access {
    /// The token never prints.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Access")
            .field("generation", &self.generation)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("no Zalo tokens yet: run `loa zalo auth` or set zalo.refresh_token")]
    NoTokens,
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error("database: {0}")]
    Store(#[from] sqlx::Error),
    #[error("another daemon has been refreshing the token for too long")]
    Stuck,
    /// `refused`: Zalo refused the refresh token itself (spent or revoked), which only the
    /// operator can mend; otherwise the failure was transient (a timeout, a server error).
    #[error("the Zalo token refresh failed less than a minute ago; see the log")]
    RefreshFailedRecently { refused: bool },
}

impl AuthError {
    /// Whether only the operator can mend it: no tokens yet, or Zalo refused the refresh token
    /// itself (spent by another integration, or revoked). The others pass by themselves.
    pub fn needs_operator(&self) -> bool {
        matches!(
            self,
            AuthError::NoTokens
                | AuthError::Token(TokenError::Refused(_))
                | AuthError::RefreshFailedRecently { refused: true }
        )
    }
}

pub struct Tokens {
    store: Store,
    api: Arc<Api>,
    commune: String,
    node: String,
    clock: Clock,
    margin: SignedDuration,
    current: RwLock<Option<Access>>,
    refreshing: Mutex<()>,
    /// The generation whose refresh failed last and when, if none has succeeded since.
    /// Its third field: whether Zalo refused the refresh token itself.
    failed_refresh: std::sync::Mutex<Option<(i64, Timestamp, bool)>>,
}

impl Tokens {
    pub fn new(
        store: Store,
        api: Arc<Api>,
        commune: &str,
        node: &str,
        clock: Clock,
        margin: SignedDuration,
    ) -> Tokens {
        Tokens {
            store,
            api,
            commune: commune.to_string(),
            node: node.to_string(),
            clock,
            margin,
            current: RwLock::new(None),
            refreshing: Mutex::new(()),
            failed_refresh: std::sync::Mutex::new(None),
        }
    }

    /// Seeds the database with a refresh token from the configuration, once: after that the
    /// database owns the rotating token. The pair is marked expired so the first use refreshes.
    pub async fn seed(&self, refresh_token: &str) -> Result<bool, AuthError> {
        if refresh_token.is_empty() {
            return Ok(false);
        }
        let now = self.clock.now();
        Ok(self
            .store
            .put_zalo_tokens(
                &self.commune,
                "",
                refresh_token,
                Timestamp::UNIX_EPOCH,
                true,
                now,
            )
            .await?)
    }

    /// A usable access token: the cached one, or the database's, refreshed first when it is
    /// within the margin of expiry. A failed early refresh keeps using a token that still works.
    pub async fn access(&self) -> Result<Access, AuthError> {
        let cached = self.current.read().await.clone();
        match cached {
            Some(a) if self.fresh(&a) => Ok(a),
            // Boxed: every send awaits `access()`, and the database and token calls of this
            // path would otherwise make each send's future (one per delivery in flight) about
            // twice as large, copied around with it.
            cached => Box::pin(self.access_slow(cached)).await,
        }
    }

    /// Whether a token is not yet due for its refresh.
    fn fresh(&self, access: &Access) -> bool {
        access.refresh_at > self.clock.now() && !access.token.is_empty()
    }

    /// `access()` when nothing is cached or the cached token is near its expiry.
    async fn access_slow(&self, cached: Option<Access>) -> Result<Access, AuthError> {
        let now = self.clock.now();
        let access = match cached {
            Some(a) => a,
            None => {
                let stored = self
                    .store
                    .zalo_tokens(&self.commune)
                    .await?
                    .ok_or(AuthError::NoTokens)?;
                let a = Access::new(
                    stored.access_token,
                    stored.generation,
                    stored.access_expires_at,
                    self.margin,
                    now,
                );
                *self.current.write().await = Some(a.clone());
                a
            }
        };
        if self.fresh(&access) {
            return Ok(access);
        }
        let works = access.expires_at > now && !access.token.is_empty();
        if works && self.waiting_after_failure(None, now) {
            return Ok(access);
        }
        let _one_at_a_time = self.refreshing.lock().await;
        // While this call waited, another may have refreshed, or failed to.
        if let Some(a) = self.current.read().await.clone()
            && self.fresh(&a)
        {
            return Ok(a);
        }
        if works && self.waiting_after_failure(None, self.clock.now()) {
            return Ok(access);
        }
        match self.refresh_locked(access.generation).await {
            Ok(fresh) => Ok(fresh),
            Err(e) if works => {
                tracing::warn!(error = %e, retry_in_secs = REFRESH_RETRY.as_secs(), "early token refresh failed; the current token still works");
                Ok(access)
            }
            Err(e) => Err(e),
        }
    }

    /// Whether a refresh (of `generation`, or of any) failed less than `REFRESH_RETRY` before
    /// `now`.
    fn waiting_after_failure(&self, generation: Option<i64>, now: Timestamp) -> bool {
        let failed = *self
            .failed_refresh
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        failed.is_some_and(|(g, t, _)| {
            generation.is_none_or(|want| want == g) && now < t + REFRESH_RETRY
        })
    }

    /// Whether the last failed refresh was Zalo refusing the refresh token itself.
    fn refused(&self) -> bool {
        self.failed_refresh
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .is_some_and(|(_, _, refused)| refused)
    }

    fn set_failed_refresh(&self, failed: Option<(i64, Timestamp, bool)>) {
        *self
            .failed_refresh
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = failed;
    }

    /// Asks for the token every `every`, so that it is refreshed when due even while nothing is
    /// sent nor synced: a refresh token unused for three months expires, and the OA would need
    /// `loa zalo auth` again after a quiet season.
    pub async fn keep_alive(self: Arc<Self>, every: Duration) {
        loop {
            tokio::time::sleep(every).await;
            if let Err(e) = self.access().await {
                tracing::warn!(error = %e, "keeping the Zalo token alive failed; tried again later");
            }
        }
    }

    /// Zalo refused `generation`'s access token: get a newer one (refreshing if nobody has).
    pub async fn rejected(&self, generation: i64) -> Result<Access, AuthError> {
        // Not used again: while the refresh is failing, each send would otherwise make one
        // refused request with it before learning that (`access()` finds no token and waits
        // for the refresh instead).
        if let Some(a) = self.current.write().await.as_mut()
            && a.generation == generation
        {
            a.token.clear();
        }
        // Boxed for the same reason as `access_slow`: a rare path inside every send's future.
        Box::pin(self.refresh(generation)).await
    }
}

/// A PKCE verifier: base64url without padding of 32 random bytes.
pub fn pkce_verifier() -> String {
    let bytes: [u8; 32] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The challenge for a verifier: base64url-nopad(SHA-256(verifier)).
pub fn pkce_challenge(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_rfc7636_example() {
        // RFC 7636, appendix B.
        assert_eq!(
            pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        assert_eq!(pkce_verifier().len(), 43);
    }

    /// Every send in flight holds an `access()` future; the database reads and the token call
    /// of the refresh path must not be part of it (they are boxed on the way in).
    #[tokio::test]
    async fn the_access_future_leaves_the_refresh_path_boxed() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let store = Store::open(&format!("sqlite://{}/t.db", dir.path().display())).await?;
        let api = Arc::new(Api::new(&super::super::config::ZaloConfig::default())?);
        let clock = Clock::manual(Timestamp::UNIX_EPOCH);
        let tokens = Tokens::new(store, api, "xa", "n1", clock, SignedDuration::from_mins(5));
        let access = std::mem::size_of_val(&tokens.access());
        let rejected = std::mem::size_of_val(&tokens.rejected(1));
        let slow = std::mem::size_of_val(&tokens.access_slow(None));
        assert!(
            access * 4 < slow && rejected * 4 < slow,
            "access() {access} B, rejected() {rejected} B, the refresh path {slow} B"
        );
        Ok(())
    }
}
