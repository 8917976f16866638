//! The OA's ZNS quota as Zalo last reported it (`zns_quota`, one row per commune). Each daemon
//! writes what its latest accepted phone message said; the latest report stands, whichever daemon
//! wrote it, so a daemon whose write comes late never puts back a larger number left.

use jiff::Timestamp;
use sqlx::Row as _;

use super::{Store, from_micros, micros};

/// How many phone messages (ZNS) the OA may send a day and how many were left, when Zalo said so.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredQuota {
    pub daily: i64,
    pub remaining: i64,
    pub seen_at: Timestamp,
    /// The daemon whose send the report came with.
    pub node: String,
}

impl Store {
    /// Records a report unless a later one is already there.
    pub async fn put_zns_quota(&self, commune: &str, quota: &StoredQuota) -> sqlx::Result<()> {
        let mut tx = self.write().await?;
        sqlx::query(
            "INSERT INTO zns_quota (commune_id, daily_quota, remaining_quota, seen_at, node)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (commune_id) DO UPDATE SET daily_quota = excluded.daily_quota,
               remaining_quota = excluded.remaining_quota, seen_at = excluded.seen_at, node = excluded.node
             WHERE excluded.seen_at >= zns_quota.seen_at",
        )
        .bind(commune)
        .bind(quota.daily)
        .bind(quota.remaining)
        .bind(micros(quota.seen_at))
        .bind(&quota.node)
        .execute(&mut *tx)
        .await?;
        tx.commit().await
    }

    /// The latest report, if Zalo ever gave one.
    pub async fn zns_quota(&self, commune: &str) -> sqlx::Result<Option<StoredQuota>> {
        let row = sqlx::query(
            "SELECT daily_quota, remaining_quota, seen_at, node FROM zns_quota WHERE commune_id = $1",
        )
        .bind(commune)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(StoredQuota {
                daily: r.try_get("daily_quota")?,
                remaining: r.try_get("remaining_quota")?,
                seen_at: from_micros(r.try_get("seen_at")?),
                node: r.try_get("node")?,
            })
        })
        .transpose()
    }
}
