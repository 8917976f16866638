//! The Zalo OA's tokens, one row per commune. The refresh token is single-use: whoever refreshes
//! writes the new pair here before using it, and a lease on the row makes one daemon the refresher
//! while the others wait for the new generation.

use jiff::Timestamp;
use sqlx::Row as _;

use super::{Store, from_micros, micros};

/// The stored tokens. `generation` counts refreshes, so a daemon can tell whether the token it
/// found invalid has already been replaced.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredTokens {
    pub access_token: String,
    pub refresh_token: String,
    pub access_expires_at: Timestamp,
    pub generation: i64,
    pub refreshing_by: Option<String>,
    pub refreshing_until: Option<Timestamp>,
    pub last_error: Option<String>,
}

impl std::fmt::Debug for StoredTokens {
    /// Tokens never print.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredTokens")
            .field("access_expires_at", &self.access_expires_at)
            .field("generation", &self.generation)
            .field("refreshing_by", &self.refreshing_by)
            .field("last_error", &self.last_error)
            .finish_non_exhaustive()
    }
}

impl Store {
    pub async fn zalo_tokens(&self, commune: &str) -> sqlx::Result<Option<StoredTokens>> {
        let row = sqlx::query(
            "SELECT access_token, refresh_token, access_expires_at, generation, refreshing_by, refreshing_until, last_error
             FROM zalo_tokens WHERE commune_id = $1",
        )
        .bind(commune)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(StoredTokens {
                access_token: r.try_get("access_token")?,
                refresh_token: r.try_get("refresh_token")?,
                access_expires_at: from_micros(r.try_get("access_expires_at")?),
                generation: r.try_get("generation")?,
                refreshing_by: r.try_get("refreshing_by")?,
                refreshing_until: r
                    .try_get::<Option<i64>, _>("refreshing_until")?
                    .map(from_micros),
                last_error: r.try_get("last_error")?,
            })
        })
        .transpose()
    }

    /// Writes a new pair. `only_if_absent` seeds a database from the configuration once; after
    /// that the database owns the (rotating) refresh token.
    pub async fn put_zalo_tokens(
        &self,
        commune: &str,
        access_token: &str,
        refresh_token: &str,
        access_expires_at: Timestamp,
        only_if_absent: bool,
        now: Timestamp,
    ) -> sqlx::Result<bool> {
        let conflict = if only_if_absent {
            "DO NOTHING"
        } else {
            "DO UPDATE SET access_token = excluded.access_token, refresh_token = excluded.refresh_token,
               access_expires_at = excluded.access_expires_at, generation = zalo_tokens.generation + 1,
               refreshing_by = NULL, refreshing_until = NULL, last_error = NULL, updated_at = excluded.updated_at"
        };
        let mut tx = self.write().await?;
        let done = sqlx::query(&format!(
            "INSERT INTO zalo_tokens (commune_id, access_token, refresh_token, access_expires_at, generation, updated_at)
             VALUES ($1, $2, $3, $4, 1, $5) ON CONFLICT (commune_id) {conflict}"
        ))
        .bind(commune)
        .bind(access_token)
        .bind(refresh_token)
        .bind(micros(access_expires_at))
        .bind(micros(now))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(done > 0)
    }

    /// Takes the refresher's lease if `generation` is still current and nobody else holds it.
    pub async fn begin_token_refresh(
        &self,
        commune: &str,
        node: &str,
        generation: i64,
        until: Timestamp,
        now: Timestamp,
    ) -> sqlx::Result<bool> {
        let mut tx = self.write().await?;
        let done = sqlx::query(
            "UPDATE zalo_tokens SET refreshing_by = $2, refreshing_until = $3, updated_at = $5
             WHERE commune_id = $1 AND generation = $4
               AND (refreshing_by IS NULL OR refreshing_until < $5 OR refreshing_by = $2)",
        )
        .bind(commune)
        .bind(node)
        .bind(micros(until))
        .bind(generation)
        .bind(micros(now))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(done == 1)
    }

    /// Ends a refresh: the new pair (a new generation) and the lease released. Written whatever
    /// the lease says: the old refresh token is spent, so this pair is the only good one.
    pub async fn finish_token_refresh(
        &self,
        commune: &str,
        access_token: &str,
        refresh_token: &str,
        access_expires_at: Timestamp,
        now: Timestamp,
    ) -> sqlx::Result<i64> {
        let mut tx = self.write().await?;
        let generation: i64 = sqlx::query(
            "UPDATE zalo_tokens SET access_token = $2, refresh_token = $3, access_expires_at = $4,
               generation = generation + 1, refreshing_by = NULL, refreshing_until = NULL, last_error = NULL, updated_at = $5
             WHERE commune_id = $1 RETURNING generation",
        )
        .bind(commune)
        .bind(access_token)
        .bind(refresh_token)
        .bind(micros(access_expires_at))
        .bind(micros(now))
        .fetch_one(&mut *tx)
        .await?
        .try_get("generation")?;
        tx.commit().await?;
        Ok(generation)
    }

    /// A refresh that failed: the tokens stay as they were, the error is kept for the operator.
    pub async fn fail_token_refresh(
        &self,
        commune: &str,
        node: &str,
        error: &str,
        now: Timestamp,
    ) -> sqlx::Result<()> {
        let mut tx = self.write().await?;
        sqlx::query(
            "UPDATE zalo_tokens SET last_error = $3, updated_at = $4,
               refreshing_by = CASE WHEN refreshing_by = $2 THEN NULL ELSE refreshing_by END,
               refreshing_until = CASE WHEN refreshing_by = $2 THEN NULL ELSE refreshing_until END
             WHERE commune_id = $1",
        )
        .bind(commune)
        .bind(node)
        .bind(error)
        .bind(micros(now))
        .execute(&mut *tx)
        .await?;
        tx.commit().await
    }
}
