//! The OA's followers, as last synced from Zalo: who they are, which village tag they carry,
//! which village groups reach them already, and when they last interacted with the OA (which
//! decides whether the OA may still write to them).

use jiff::Timestamp;
use sqlx::Row as _;

use super::{Placeholders, Store, from_micros, micros};
use crate::deliver::targets::Follower;

/// Rows per multi-row statement (10 values each, well under SQLite's limit).
const ROWS: usize = 200;

impl Store {
    /// Every current follower of the commune's OA.
    pub async fn followers(&self, commune: &str) -> sqlx::Result<Vec<Follower>> {
        let rows = sqlx::query(
            "SELECT user_id, village_id, in_group, group_ids, last_interaction, display_name FROM followers
             WHERE commune_id = $1 AND following = 1 ORDER BY user_id",
        )
        .bind(commune)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|r| {
                Ok(Follower {
                    user_id: r.try_get("user_id")?,
                    village_id: r.try_get("village_id")?,
                    in_group: r.try_get::<i64, _>("in_group")? != 0,
                    groups: r
                        .try_get::<Option<String>, _>("group_ids")?
                        .map(|g| g.split(',').map(str::to_string).collect())
                        .unwrap_or_default(),
                    last_interaction: r
                        .try_get::<Option<i64>, _>("last_interaction")?
                        .map(from_micros),
                    display_name: r.try_get("display_name")?,
                })
            })
            .collect()
    }

    /// Records a full sync: these are the followers now; anyone not among them has unfollowed.
    /// A known last interaction is kept when the sync did not learn a newer one.
    pub async fn record_follower_sync(
        &self,
        commune: &str,
        followers: &[Follower],
        now: Timestamp,
    ) -> sqlx::Result<()> {
        const COLS: usize = 10;
        let mut tx = self.write().await?;
        let now_us = micros(now);
        for chunk in followers.chunks(ROWS) {
            let values = Placeholders::new(self.dialect).rows(chunk.len(), COLS, |_| None);
            let sql = format!(
                "INSERT INTO followers (commune_id, user_id, village_id, in_group, group_ids, last_interaction, display_name,
                   synced_at, updated_at, following)
                 VALUES {values}
                 ON CONFLICT (commune_id, user_id) DO UPDATE SET village_id = excluded.village_id,
                   in_group = excluded.in_group, group_ids = excluded.group_ids, following = 1, display_name = COALESCE(excluded.display_name, followers.display_name),
                   last_interaction = CASE WHEN excluded.last_interaction IS NULL THEN followers.last_interaction
                     WHEN followers.last_interaction IS NULL OR excluded.last_interaction > followers.last_interaction
                     THEN excluded.last_interaction ELSE followers.last_interaction END,
                   synced_at = excluded.synced_at, updated_at = excluded.updated_at"
            );
            let mut q = sqlx::query(&sql);
            for f in chunk {
                q = q
                    .bind(commune)
                    .bind(&f.user_id)
                    .bind(f.village_id.as_deref())
                    .bind(i64::from(f.in_group))
                    .bind((!f.groups.is_empty()).then(|| f.groups.join(",")))
                    .bind(f.last_interaction.map(micros))
                    .bind(f.display_name.as_deref())
                    .bind(now_us)
                    .bind(now_us)
                    .bind(1i64);
            }
            q.execute(&mut *tx).await?;
        }
        sqlx::query(
            "UPDATE followers SET following = 0, updated_at = $2
             WHERE commune_id = $1 AND following = 1 AND synced_at < $2",
        )
        .bind(commune)
        .bind(now_us)
        .execute(&mut *tx)
        .await?;
        tx.commit().await
    }

    /// Up to `limit` followers without a Zalo name, those outside village groups first.
    pub async fn followers_without_name(
        &self,
        commune: &str,
        limit: i64,
    ) -> sqlx::Result<Vec<String>> {
        sqlx::query_scalar(
            "SELECT user_id FROM followers
             WHERE commune_id = $1 AND following = 1 AND display_name IS NULL
             ORDER BY in_group, user_id LIMIT $2",
        )
        .bind(commune)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
    }

    /// Followers' names as Zalo shows them (`user/detail`); an empty one records that Zalo has
    /// none, so the follower is not asked again.
    pub async fn record_follower_names(
        &self,
        commune: &str,
        names: &[(String, String)],
        now: Timestamp,
    ) -> sqlx::Result<()> {
        if names.is_empty() {
            return Ok(());
        }
        let mut tx = self.write().await?;
        for (user_id, name) in names {
            sqlx::query(
                "UPDATE followers SET display_name = $3, updated_at = $4
                 WHERE commune_id = $1 AND user_id = $2",
            )
            .bind(commune)
            .bind(user_id)
            .bind(name)
            .bind(micros(now))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await
    }

    /// A follow or unfollow learnt between syncs (webhooks).
    pub async fn set_following(
        &self,
        commune: &str,
        user_id: &str,
        following: bool,
        now: Timestamp,
    ) -> sqlx::Result<()> {
        let mut tx = self.write().await?;
        sqlx::query(
            "INSERT INTO followers (commune_id, user_id, in_group, following, last_interaction, synced_at, updated_at)
             VALUES ($1, $2, 0, $3, $4, $4, $4)
             ON CONFLICT (commune_id, user_id) DO UPDATE SET following = $3, updated_at = $4,
               last_interaction = CASE WHEN $3 = 1 THEN $4 ELSE followers.last_interaction END",
        )
        .bind(commune)
        .bind(user_id)
        .bind(i64::from(following))
        .bind(micros(now))
        .execute(&mut *tx)
        .await?;
        tx.commit().await
    }

    /// A person wrote to the OA (or otherwise interacted): the 7-day window opens again.
    pub async fn touch_interaction(
        &self,
        commune: &str,
        user_id: &str,
        at: Timestamp,
    ) -> sqlx::Result<()> {
        let mut tx = self.write().await?;
        sqlx::query(
            "UPDATE followers SET last_interaction = $3, updated_at = $3
             WHERE commune_id = $1 AND user_id = $2 AND (last_interaction IS NULL OR last_interaction < $3)",
        )
        .bind(commune)
        .bind(user_id)
        .bind(micros(at))
        .execute(&mut *tx)
        .await?;
        tx.commit().await
    }
}
