//! One row per delivery of the selected sends and their follow-ups (`loa report --people`, the
//! dashboard's failures), and the smaller lists the dashboard's overview shows: what is coming,
//! what people wrote, which files do not validate.

use jiff::Timestamp;
use serde::Serialize;
use sqlx::Row as _;

use super::{FollowUpKind, SENDS, Selection, bind, time};
use crate::ledger::{Store, micros};

#[derive(Clone, Debug, Serialize)]
pub struct PersonRow {
    pub delivery_id: i64,
    /// The send this delivery belongs to (for a follow-up: the send it follows up).
    pub send_id: i64,
    pub occurrence_id: i64,
    pub follow_up: Option<FollowUpKind>,
    pub announcement_id: String,
    pub village_id: Option<String>,
    /// `group`, `user` or `phone`.
    pub target_kind: String,
    pub target: String,
    pub person: Option<String>,
    pub state: String,
    pub error_code: Option<String>,
    pub error_reason: Option<String>,
    pub possible_duplicate: bool,
    /// When the delivery last changed.
    pub at: Timestamp,
}

/// A send still to come.
#[derive(Clone, Debug, Serialize)]
pub struct Upcoming {
    pub id: i64,
    pub announcement_id: String,
    pub send_at: Timestamp,
    pub urgent: bool,
    pub follow_up: Option<FollowUpKind>,
}

/// A text someone wrote to the OA that confirmed nothing.
#[derive(Clone, Debug, Serialize)]
pub struct Inbound {
    pub at: Timestamp,
    pub user_id: String,
    /// Their Zalo display name, when the follower sync knows it.
    pub name: Option<String>,
    pub text: String,
}

impl Store {
    /// Every delivery of the selected sends and of their follow-ups, by send, village, target.
    pub async fn report_people(
        &self,
        commune: &str,
        sel: &Selection,
    ) -> sqlx::Result<Vec<PersonRow>> {
        let sql = format!(
            "SELECT d.id, d.occurrence_id, o.parent_id, o.rule, d.announcement_id, d.village_id, d.target_kind,
                    d.target, COALESCE(d.person, NULLIF(f.display_name, '')) AS person, d.state, d.error_code,
                    d.error_reason, d.possible_duplicate, d.updated_at
             FROM deliveries d JOIN occurrences o ON o.id = d.occurrence_id
             -- A follower's name may have been learnt after the send was expanded.
             LEFT JOIN followers f ON d.target_kind = 'user' AND f.commune_id = d.commune_id AND f.user_id = d.target
             WHERE d.occurrence_id IN (SELECT s.id FROM occurrences s WHERE {SENDS})
                OR o.parent_id IN (SELECT s.id FROM occurrences s WHERE {SENDS})
             ORDER BY COALESCE(o.parent_id, o.id) DESC, o.id, d.village_id, d.target_kind, d.target"
        );
        let rows = bind(sqlx::query(&sql), commune, sel)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                let occurrence_id: i64 = r.try_get("occurrence_id")?;
                let parent: Option<i64> = r.try_get("parent_id")?;
                Ok(PersonRow {
                    delivery_id: r.try_get("id")?,
                    send_id: parent.unwrap_or(occurrence_id),
                    occurrence_id,
                    follow_up: parent
                        .and_then(|_| r.try_get("rule").ok().and_then(FollowUpKind::from_rule)),
                    announcement_id: r.try_get("announcement_id")?,
                    village_id: r.try_get("village_id")?,
                    target_kind: r.try_get("target_kind")?,
                    target: r.try_get("target")?,
                    person: r.try_get("person")?,
                    state: r.try_get("state")?,
                    error_code: r.try_get("error_code")?,
                    error_reason: r.try_get("error_reason")?,
                    possible_duplicate: r.try_get::<i64, _>("possible_duplicate")? != 0,
                    at: time(r, "updated_at")?,
                })
            })
            .collect()
    }

    /// Planned sends (and follow-ups) from `from` to `until`, soonest first.
    pub async fn upcoming(
        &self,
        commune: &str,
        from: Timestamp,
        until: Timestamp,
        limit: i64,
    ) -> sqlx::Result<Vec<Upcoming>> {
        let rows = sqlx::query(
            "SELECT id, announcement_id, send_at, urgent, rule, parent_id FROM occurrences
             WHERE commune_id = $1 AND state = 'planned' AND send_at >= $2 AND send_at < $3
             ORDER BY send_at, id LIMIT $4",
        )
        .bind(commune)
        .bind(micros(from))
        .bind(micros(until))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let parent: Option<i64> = r.try_get("parent_id")?;
                Ok(Upcoming {
                    id: r.try_get("id")?,
                    announcement_id: r.try_get("announcement_id")?,
                    send_at: time(r, "send_at")?,
                    urgent: r.try_get::<i64, _>("urgent")? != 0,
                    follow_up: parent
                        .and_then(|_| r.try_get("rule").ok().and_then(FollowUpKind::from_rule)),
                })
            })
            .collect()
    }

    /// The latest texts people wrote to the OA that were not confirmations, newest first.
    pub async fn inbound_texts(&self, commune: &str, limit: i64) -> sqlx::Result<Vec<Inbound>> {
        let rows = sqlx::query(
            "SELECT i.at, i.user_id, NULLIF(f.display_name, '') AS display_name, i.text FROM inbound_messages i
             LEFT JOIN followers f ON f.commune_id = i.commune_id AND f.user_id = i.user_id
             WHERE i.commune_id = $1 AND i.confirms IS NULL ORDER BY i.at DESC, i.id DESC LIMIT $2",
        )
        .bind(commune)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Inbound {
                    at: time(r, "at")?,
                    user_id: r.try_get("user_id")?,
                    name: r.try_get("display_name")?,
                    text: r.try_get("text")?,
                })
            })
            .collect()
    }
}
