//! Refreshing the token pair. The refresh token is single-use, so one refresher at a time: a
//! mutex within the process and a lease row in the database across daemons; the others wait for
//! the new generation the winner writes. The new pair is written before its access token is used
//! (and written again while the database refuses: the old refresh token is spent by then), and a
//! refused refresh keeps the stored tokens.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

use super::{Access, AuthError, Tokens};
use crate::deliver::zalo::api::{ApiError, TokenError};
use crate::deliver::zalo::wire::TokenGrant;

/// How long a refresher's claim holds: longer than one token call can take.
const REFRESH_LEASE: SignedDuration = SignedDuration::from_secs(60);

impl Tokens {
    /// Replaces `seen` (a generation) with a fresh token: ours if we win the lease, else the
    /// one the winner writes.
    pub(super) async fn refresh(&self, seen: i64) -> Result<Access, AuthError> {
        let _one_at_a_time = self.refreshing.lock().await;
        self.refresh_locked(seen).await
    }

    /// `refresh()` with `refreshing` held by the caller.
    pub(super) async fn refresh_locked(&self, seen: i64) -> Result<Access, AuthError> {
        let deadline = std::time::Instant::now() + Duration::from_secs(90);
        loop {
            let now = self.clock.now();
            let stored = self
                .store
                .zalo_tokens(&self.commune)
                .await?
                .ok_or(AuthError::NoTokens)?;
            if stored.generation != seen && !stored.access_token.is_empty() {
                let fresh = Access::new(
                    stored.access_token,
                    stored.generation,
                    stored.access_expires_at,
                    self.margin,
                    now,
                );
                *self.current.write().await = Some(fresh.clone());
                return Ok(fresh);
            }
            // Its refresh was just refused (a spent or revoked refresh token): asking Zalo again
            // for every send would only repeat the refusal.
            if self.waiting_after_failure(Some(stored.generation), now) {
                return Err(AuthError::RefreshFailedRecently {
                    refused: self.refused(),
                });
            }
            let won = self
                .store
                .begin_token_refresh(
                    &self.commune,
                    &self.node,
                    stored.generation,
                    now + REFRESH_LEASE,
                    now,
                )
                .await?;
            if won {
                return self
                    .refresh_now(&stored.refresh_token, stored.generation)
                    .await;
            }
            if std::time::Instant::now() > deadline {
                return Err(AuthError::Stuck);
            }
            // Another daemon holds the lease: its new pair will show up as a new generation.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn refresh_now(&self, refresh_token: &str, generation: i64) -> Result<Access, AuthError> {
        let grant = TokenGrant::RefreshToken {
            app_id: self.api.app_id().to_string(),
            refresh_token: refresh_token.to_string(),
        };
        match self.api.token(&grant).await {
            Ok(reply) => {
                let now = self.clock.now();
                let expires_at =
                    now + SignedDuration::from_secs(reply.expires_in_secs().unwrap_or(3600));
                // Written before use: if we die now, the database still has the one good pair.
                let generation = self
                    .keep_new_pair(&reply.access_token, &reply.refresh_token, expires_at)
                    .await?;
                tracing::info!(generation, expires = %expires_at, "Zalo access token refreshed");
                let fresh =
                    Access::new(reply.access_token, generation, expires_at, self.margin, now);
                *self.current.write().await = Some(fresh.clone());
                self.set_failed_refresh(None);
                Ok(fresh)
            }
            Err(e) => {
                let refused = matches!(e, TokenError::Refused(_));
                self.set_failed_refresh(Some((generation, self.clock.now(), refused)));
                if matches!(e, TokenError::Transport(ApiError::Timeout)) {
                    tracing::error!(
                        "Zalo did not answer the token refresh in time; it may have rotated the pair anyway: if the next refresh is refused (-14002), authorise the OA again with `loa zalo auth`"
                    );
                }
                tracing::error!(error = %e, "Zalo token refresh failed; the stored tokens are kept");
                self.store
                    .fail_token_refresh(&self.commune, &self.node, &e.to_string(), self.clock.now())
                    .await?;
                Err(e.into())
            }
        }
    }

    /// Writes a new pair, trying again while the database refuses (locked, disk full, failing
    /// over): Zalo has spent the old refresh token already, so this pair, held only here, is the
    /// OA's one way back short of a new consent. The sends wait meanwhile, since the new access
    /// token is used only once stored.
    async fn keep_new_pair(
        &self,
        access_token: &str,
        refresh_token: &str,
        expires_at: Timestamp,
    ) -> Result<i64, AuthError> {
        let started = std::time::Instant::now();
        let mut wait = KEEP_FIRST_WAIT;
        loop {
            let now = self.clock.now();
            let written = self
                .store
                .finish_token_refresh(&self.commune, access_token, refresh_token, expires_at, now)
                .await;
            match written {
                Ok(generation) => return Ok(generation),
                Err(e) if started.elapsed() < KEEP_TRYING => {
                    tracing::error!(error = %e, retry_in_ms = wait.as_millis() as u64,
                        "cannot store the new Zalo tokens (the old refresh token is spent); trying again");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(KEEP_MAX_WAIT);
                }
                Err(e) => {
                    tracing::error!(error = %e,
                        "the new Zalo tokens could not be stored: authorise the OA again with `loa zalo auth`");
                    return Err(e.into());
                }
            }
        }
    }
}

/// How long a new token pair's write is tried, and the waits between tries (doubling).
const KEEP_TRYING: Duration = Duration::from_secs(15 * 60);
const KEEP_FIRST_WAIT: Duration = Duration::from_millis(200);
const KEEP_MAX_WAIT: Duration = Duration::from_secs(10);
