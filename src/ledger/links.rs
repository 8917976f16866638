//! Confirm links in the ledger: what a link's key names, the confirmation a tap makes, and the
//! secrets the commune's daemons share (the links' signing key, the dashboard's cookie key).

use jiff::Timestamp;
use sqlx::Row as _;

use super::{Store, from_micros, micros};

/// What a confirm link found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkTarget {
    pub id: i64,
    pub announcement_id: String,
    pub village_id: String,
    pub person: String,
    pub state: String,
    pub confirmed_at: Option<Timestamp>,
    pub via: Option<String>,
    /// The text the village was sent (the group's, else the head's own).
    pub text: Option<String>,
}

impl Store {
    /// The confirmation a link's key names, with the text its village was sent.
    pub async fn link_target(&self, commune: &str, key: &str) -> sqlx::Result<Option<LinkTarget>> {
        let row = sqlx::query(
            "SELECT c.id, c.announcement_id, c.village_id, c.person, c.state, c.confirmed_at, c.via,
               (SELECT d.text FROM deliveries d WHERE d.occurrence_id = c.occurrence_id AND d.village_id = c.village_id
                ORDER BY CASE WHEN d.target_kind = 'group' THEN 0 ELSE 1 END, d.id LIMIT 1) AS text
             FROM confirmations c WHERE c.commune_id = $1 AND c.link_key = $2",
        )
        .bind(commune)
        .bind(key)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(LinkTarget {
                id: r.try_get("id")?,
                announcement_id: r.try_get("announcement_id")?,
                village_id: r.try_get("village_id")?,
                person: r.try_get("person")?,
                state: r.try_get("state")?,
                confirmed_at: r
                    .try_get::<Option<i64>, _>("confirmed_at")?
                    .map(from_micros),
                via: r.try_get("via")?,
                text: r.try_get("text")?,
            })
        })
        .transpose()
    }

    /// Confirms by link: the link's request, and the same person's other requests for the same
    /// send (a head of two villages gets one message, with one link, and confirms for both).
    /// False when none was pending (already confirmed): a second tap changes nothing.
    pub async fn confirm_by_link(
        &self,
        commune: &str,
        key: &str,
        at: Timestamp,
    ) -> sqlx::Result<bool> {
        let mut tx = self.write().await?;
        let n = sqlx::query(
            "UPDATE confirmations SET state = 'confirmed', confirmed_at = $3, via = 'link'
             WHERE commune_id = $1 AND state = 'pending' AND id IN (
               SELECT c.id FROM confirmations k JOIN confirmations c
                 ON c.commune_id = k.commune_id AND c.occurrence_id = k.occurrence_id
               WHERE k.commune_id = $1 AND k.link_key = $2
                 AND (c.id = k.id OR c.user_id = k.user_id OR c.phone = k.phone))",
        )
        .bind(commune)
        .bind(key)
        .bind(micros(at))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(n > 0)
    }

    /// A secret the commune's daemons share, made on first use (32 random bytes, hex).
    pub async fn shared_secret(&self, commune: &str, name: &str) -> sqlx::Result<String> {
        let fresh: String = rand::random::<[u8; 32]>()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let mut tx = self.write().await?;
        sqlx::query(
            "INSERT INTO secrets (commune_id, name, value, created_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT DO NOTHING",
        )
        .bind(commune)
        .bind(name)
        .bind(&fresh)
        .bind(micros(Timestamp::now()))
        .execute(&mut *tx)
        .await?;
        let value: String =
            sqlx::query("SELECT value FROM secrets WHERE commune_id = $1 AND name = $2")
                .bind(commune)
                .bind(name)
                .fetch_one(&mut *tx)
                .await?
                .try_get("value")?;
        tx.commit().await?;
        Ok(value)
    }
}
