//! Village groups Zalo refused in a send (`-237`: the group is disabled; `-403`: the OA is not in
//! it). Such a group reached none of its members, whom the send counted on it to reach: they are
//! written to one by one in the same send, once for each refused group delivery, whichever daemon
//! sees it first. The followers' record then stops counting them as reached by that group, so the
//! sends before the next follower sync go to them one by one from the start.
//!
//! A head of that village who was sent only a request to confirm (the message was to reach them
//! in the group) is sent the message itself: in place of the request if it has not gone out yet,
//! else in a follow-up of the send (rule -3, one per send, see `ledger::follow_ups`).

use jiff::Timestamp;
use sqlx::Row as _;

use super::follow_ups::{DIRECT_RULE, FollowUpOf};
use super::{ClaimedOccurrence, Expansion, NewDelivery, Store, from_micros, micros};

/// Zalo's answers to a group message that mean it reached nobody.
pub const GROUP_REFUSED: [&str; 2] = ["-237", "-403"];

/// A group delivery Zalo refused whose members have not been written to yet.
#[derive(Clone, Debug)]
pub struct RefusedGroup {
    pub delivery_id: i64,
    /// The send it belonged to, with the group delivery's own due time and deadline.
    pub occurrence: ClaimedOccurrence,
    pub village_id: Option<String>,
    pub group_id: String,
    pub error_code: String,
    /// What the group was sent: its members get the same text.
    pub text: String,
}

/// A delivery already in a send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SendTarget {
    pub kind: String,
    pub target: String,
    /// A group Zalo refused (see [`GROUP_REFUSED`]): it reaches nobody.
    pub refused: bool,
}

/// The message itself for a head of a refused group's village whom the send asked only to
/// confirm it.
#[derive(Clone, Debug)]
pub struct HeadCopy {
    /// The request's (kind, target) in the send.
    pub request: (String, String),
    /// The head's copy of the message, addressed as a head is now.
    pub copy: NewDelivery,
}

impl Store {
    /// The refused group deliveries whose members are still to be written to, in sends not past
    /// their deadline.
    pub async fn refused_groups(
        &self,
        commune: &str,
        now: Timestamp,
    ) -> sqlx::Result<Vec<RefusedGroup>> {
        let rows = sqlx::query(
            "SELECT d.id, d.occurrence_id, d.announcement_id, d.village_id, d.target, d.error_code, d.text,
                    d.urgent, d.due, d.deadline, o.revision, o.rule, o.trigger
             FROM deliveries d JOIN occurrences o ON o.id = d.occurrence_id
             WHERE d.commune_id = $1 AND d.target_kind = 'group' AND d.state = 'failed' AND d.deadline > $2
               AND d.error_code IN ($3, $4)
               AND NOT EXISTS (SELECT 1 FROM group_failovers f WHERE f.delivery_id = d.id)
             ORDER BY d.id",
        )
        .bind(commune)
        .bind(micros(now))
        .bind(GROUP_REFUSED[0])
        .bind(GROUP_REFUSED[1])
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|r| {
                let due = from_micros(r.try_get("due")?);
                Ok(RefusedGroup {
                    delivery_id: r.try_get("id")?,
                    occurrence: ClaimedOccurrence {
                        id: r.try_get("occurrence_id")?,
                        announcement_id: r.try_get("announcement_id")?,
                        revision: r.try_get("revision")?,
                        rule: r.try_get("rule")?,
                        due,
                        send_at: due,
                        deadline: from_micros(r.try_get("deadline")?),
                        trigger: r.try_get("trigger")?,
                        urgent: r.try_get::<i64, _>("urgent")? != 0,
                    },
                    village_id: r.try_get("village_id")?,
                    group_id: r.try_get("target")?,
                    error_code: r
                        .try_get::<Option<String>, _>("error_code")?
                        .unwrap_or_default(),
                    text: r.try_get("text")?,
                })
            })
            .collect()
    }

    /// Every delivery of a send, whatever its state.
    pub async fn send_targets(&self, occurrence_id: i64) -> sqlx::Result<Vec<SendTarget>> {
        let rows = sqlx::query(
            "SELECT target_kind, target, state, error_code FROM deliveries WHERE occurrence_id = $1",
        )
        .bind(occurrence_id)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|r| {
                let kind: String = r.try_get("target_kind")?;
                let state: String = r.try_get("state")?;
                let code: Option<String> = r.try_get("error_code")?;
                Ok(SendTarget {
                    refused: kind == "group"
                        && state == "failed"
                        && code.is_some_and(|c| GROUP_REFUSED.contains(&c.as_str())),
                    kind,
                    target: r.try_get("target")?,
                })
            })
            .collect()
    }

    /// The text of what a send wrote to `target`; None when it wrote nothing there.
    pub async fn sent_text(
        &self,
        occurrence_id: i64,
        kind: &str,
        target: &str,
    ) -> sqlx::Result<Option<String>> {
        sqlx::query(
            "SELECT text FROM deliveries WHERE occurrence_id = $1 AND target_kind = $2 AND target = $3",
        )
        .bind(occurrence_id)
        .bind(kind)
        .bind(target)
        .fetch_optional(&self.pool)
        .await?
        .map(|r| r.try_get("text"))
        .transpose()
    }

    /// A head's request to confirm a send: its link key, and whether it still waits for them.
    pub async fn head_request(
        &self,
        occurrence_id: i64,
        village_id: &str,
        person: &str,
    ) -> sqlx::Result<Option<(Option<String>, bool)>> {
        let row = sqlx::query(
            "SELECT link_key, state, closed_at FROM confirmations
             WHERE occurrence_id = $1 AND village_id = $2 AND person = $3",
        )
        .bind(occurrence_id)
        .bind(village_id)
        .bind(person)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            let state: String = r.try_get("state")?;
            let closed: Option<i64> = r.try_get("closed_at")?;
            Ok((
                r.try_get("link_key")?,
                state == "pending" && closed.is_none(),
            ))
        })
        .transpose()
    }

    /// Writes a refused group's members into its send as deliveries of their own, due at `start`
    /// (now, or the end of quiet hours), sends `heads` the message itself, and takes the group
    /// out of its members' record. None when another daemon has done it already (nothing is
    /// written then); else how many deliveries were added or rewritten.
    #[allow(clippy::too_many_arguments)]
    pub async fn fail_over_group(
        &self,
        commune: &str,
        group: &RefusedGroup,
        members: &[NewDelivery],
        heads: &[HeadCopy],
        node: &str,
        start: Timestamp,
        now: Timestamp,
    ) -> sqlx::Result<Option<usize>> {
        let mut tx = self.write().await?;
        // First, so that of two daemons doing this at once the second waits here (PostgreSQL)
        // or for the write lock (SQLite), then finds the row and writes nothing.
        let ours = sqlx::query(
            "INSERT INTO group_failovers (delivery_id, commune_id, members, at) VALUES ($1, $2, 0, $3)
             ON CONFLICT DO NOTHING",
        )
        .bind(group.delivery_id)
        .bind(commune)
        .bind(micros(now))
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if !ours {
            tx.rollback().await?;
            return Ok(None);
        }
        // The send's occurrence is expanded already; expanding it again with these rows adds
        // them (a target it has is skipped) and leaves it expanded.
        let expansion = Expansion {
            occurrence: &group.occurrence,
            deliveries: members,
            confirmations: &[],
            missed: None,
            start,
        };
        let added = self
            .expand_in(&mut tx, commune, &[expansion], node, now)
            .await?;
        sqlx::query("UPDATE group_failovers SET members = $2 WHERE delivery_id = $1")
            .bind(group.delivery_id)
            .bind(added as i64)
            .execute(&mut *tx)
            .await?;
        let copies = self
            .copy_to_heads(&mut tx, commune, group, heads, node, start, now)
            .await?;
        self.leave_group_in(&mut tx, commune, &group.group_id, now)
            .await?;
        tx.commit().await?;
        Ok(Some(added + copies))
    }

    /// The message itself for heads who were sent only a request: the request becomes the
    /// message where it has not gone out yet (waiting for its time or a retry); the others get it in the send's rule -3 follow-up,
    /// written by the first of its refused groups and added to by the next.
    #[allow(clippy::too_many_arguments)]
    async fn copy_to_heads(
        &self,
        tx: &mut super::Tx,
        commune: &str,
        group: &RefusedGroup,
        heads: &[HeadCopy],
        node: &str,
        start: Timestamp,
        now: Timestamp,
    ) -> sqlx::Result<usize> {
        let mut rewritten = 0;
        let mut late = Vec::new();
        for h in heads {
            let n = sqlx::query(
                "UPDATE deliveries SET text = $4, updated_at = $6,
                   next_attempt_at = CASE WHEN next_attempt_at < $5 THEN $5 ELSE next_attempt_at END
                 WHERE occurrence_id = $1 AND target_kind = $2 AND target = $3
                   AND state IN ('planned', 'retrying')",
            )
            .bind(group.occurrence.id)
            .bind(&h.request.0)
            .bind(&h.request.1)
            .bind(&h.copy.text)
            .bind(micros(start))
            .bind(micros(now))
            .execute(&mut **tx)
            .await?
            .rows_affected();
            rewritten += n as usize;
            if n == 0 {
                late.push(h.copy.clone());
            }
        }
        if late.is_empty() {
            return Ok(rewritten);
        }
        let of = FollowUpOf {
            parent: group.occurrence.id,
            announcement_id: &group.occurrence.announcement_id,
            revision: group.occurrence.revision,
            urgent: group.occurrence.urgent,
        };
        let times = (start, group.occurrence.deadline);
        const TRIGGER: &str = r#"{"type":"group_refused"}"#;
        let mut occurrence = None;
        // Another refused group of the send may have written it, here or in another daemon
        // (which PostgreSQL makes this insert wait for): then it is read.
        for _ in 0..2 {
            let existing =
                sqlx::query("SELECT id FROM occurrences WHERE parent_id = $1 AND rule = $2")
                    .bind(group.occurrence.id)
                    .bind(DIRECT_RULE)
                    .fetch_optional(&mut **tx)
                    .await?;
            if let Some(r) = existing {
                occurrence = Some(ClaimedOccurrence {
                    id: r.try_get("id")?,
                    announcement_id: group.occurrence.announcement_id.clone(),
                    revision: group.occurrence.revision,
                    rule: DIRECT_RULE,
                    due: group.occurrence.due,
                    send_at: start,
                    deadline: group.occurrence.deadline,
                    trigger: TRIGGER.into(),
                    urgent: group.occurrence.urgent,
                });
                break;
            }
            occurrence = self
                .insert_follow_up(tx, commune, &of, DIRECT_RULE, TRIGGER, times, now)
                .await?;
            if occurrence.is_some() {
                break;
            }
        }
        let Some(occurrence) = occurrence else {
            tracing::warn!(
                send = group.occurrence.id,
                "no follow-up could be written for the heads of a refused group"
            );
            return Ok(rewritten);
        };
        let expansion = Expansion {
            occurrence: &occurrence,
            deliveries: &late,
            confirmations: &[],
            missed: None,
            start,
        };
        Ok(rewritten + self.expand_in(tx, commune, &[expansion], node, now).await?)
    }

    /// Takes `group` out of the village groups each follower is recorded in, until a follower
    /// sync says otherwise.
    async fn leave_group_in(
        &self,
        tx: &mut super::Tx,
        commune: &str,
        group: &str,
        now: Timestamp,
    ) -> sqlx::Result<()> {
        // LIKE narrows the rows down; the exact match is made on the list itself.
        let rows = sqlx::query(
            "SELECT user_id, group_ids FROM followers
             WHERE commune_id = $1 AND group_ids LIKE '%' || CAST($2 AS TEXT) || '%'",
        )
        .bind(commune)
        .bind(group)
        .fetch_all(&mut **tx)
        .await?;
        for r in rows {
            let user: String = r.try_get("user_id")?;
            let ids: Option<String> = r.try_get("group_ids")?;
            let ids = ids.unwrap_or_default();
            let rest: Vec<&str> = ids.split(',').filter(|g| *g != group).collect();
            if rest.len() == ids.split(',').count() {
                continue;
            }
            sqlx::query(
                "UPDATE followers SET group_ids = $3, in_group = $4, updated_at = $5
                 WHERE commune_id = $1 AND user_id = $2",
            )
            .bind(commune)
            .bind(&user)
            .bind((!rest.is_empty()).then(|| rest.join(",")))
            .bind(i64::from(!rest.is_empty()))
            .bind(micros(now))
            .execute(&mut **tx)
            .await?;
        }
        Ok(())
    }
}
