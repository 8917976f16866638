//! What people wrote to the OA (or in a village group), kept for staff, and the confirmations a
//! head's reply makes.

use jiff::Timestamp;
use sqlx::Row as _;

use super::{Store, micros};

/// How old a request a head's reply may still confirm: Zalo's window for replies to reach the OA
/// is 7 days, and an "ok" weeks later is about something else.
const REPLY_REACH: jiff::SignedDuration = jiff::SignedDuration::from_hours(7 * 24);

impl Store {
    /// Something a person wrote to the OA: its row, and the confirmation it already made when the
    /// same message (by Zalo's id) was kept before — an event applied again after a crash must
    /// not confirm a second request.
    pub async fn record_inbound(
        &self,
        commune: &str,
        user_id: &str,
        msg_id: Option<&str>,
        text: &str,
        at: Timestamp,
    ) -> sqlx::Result<(i64, Option<i64>)> {
        let mut tx = self.write().await?;
        let inserted = sqlx::query(
            "INSERT INTO inbound_messages (commune_id, user_id, msg_id, text, at) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT DO NOTHING RETURNING id",
        )
        .bind(commune)
        .bind(user_id)
        .bind(msg_id)
        // PostgreSQL's text cannot hold NUL, and a reply carrying one must not fail for ever.
        .bind(text.replace('\0', ""))
        .bind(micros(at))
        .fetch_optional(&mut *tx)
        .await?;
        let out = match inserted {
            Some(r) => (r.try_get("id")?, None),
            None => {
                let r = sqlx::query(
                    "SELECT id, confirms FROM inbound_messages WHERE commune_id = $1 AND msg_id = $2",
                )
                .bind(commune)
                .bind(msg_id)
                .fetch_one(&mut *tx)
                .await?;
                (r.try_get("id")?, r.try_get("confirms")?)
            }
        };
        tx.commit().await?;
        Ok(out)
    }

    /// A head's reply confirms their latest request (the one that last asked them before the
    /// reply: sent, or reminded; every village's, when they head several), if it is still
    /// pending and asked at most `REPLY_REACH` before. Never an older request: a head who tapped
    /// the link of today's message and also replied "đã nhận" did not confirm last week's, which
    /// stays pending until they answer its reminder. A closed request (its announcement deleted
    /// or expired) is not asking any more. Returns one confirmation's id and announcement, if
    /// there was one to confirm.
    pub async fn confirm_by_reply(
        &self,
        commune: &str,
        user_id: &str,
        inbound_id: i64,
        at: Timestamp,
    ) -> sqlx::Result<Option<(i64, String)>> {
        let mut tx = self.write().await?;
        let rows = sqlx::query(
            "UPDATE confirmations SET state = 'confirmed', confirmed_at = $3, via = 'reply', inbound_id = $4
             WHERE commune_id = $1 AND user_id = $2 AND state = 'pending' AND closed_at IS NULL
               AND COALESCE(reminded_at, requested_at) >= $5
               AND COALESCE(reminded_at, requested_at) = (
                 SELECT MAX(COALESCE(reminded_at, requested_at)) FROM confirmations
                 WHERE commune_id = $1 AND user_id = $2 AND closed_at IS NULL
                   AND COALESCE(reminded_at, requested_at) <= $3)
             RETURNING id, announcement_id",
        )
        .bind(commune)
        .bind(user_id)
        .bind(micros(at))
        .bind(inbound_id)
        .bind(micros(at - REPLY_REACH))
        .fetch_all(&mut *tx)
        .await?;
        let mut row = None;
        for r in rows {
            let id: i64 = r.try_get("id")?;
            if row.as_ref().is_none_or(|(first, _)| id < *first) {
                row = Some((id, r.try_get::<String, _>("announcement_id")?));
            }
        }
        if let Some((id, _)) = &row {
            sqlx::query("UPDATE inbound_messages SET confirms = $2 WHERE id = $1")
                .bind(inbound_id)
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(row)
    }
}
