//! Confirmations after the send: by link, and the follow-ups for heads who stay silent. A
//! reminder or an escalation is an occurrence of its own (rule -1 or -2, `parent_id` naming the
//! send), written with its deliveries and the confirmations' `reminded_at`/`escalated_at` in one
//! transaction: it is then sent, retried and recorded like any send, a crash repeats nothing, and
//! of several daemons only one writes it (the follow-up is unique per send and stage). The same
//! kind of occurrence (rule -3) carries a send's message to heads whose village group Zalo
//! refused after they had been asked to confirm it (`ledger::failover`).

use jiff::Timestamp;
use sqlx::Row as _;

use super::{ClaimedOccurrence, NewDelivery, OccurrenceState, Store, from_micros, micros};
use crate::ledger::Expansion;

/// What follows a send whose heads have not confirmed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Once `within` has passed: the head is sent a reminder.
    Remind,
    /// After as long again: the leaders are told which villages have not confirmed.
    Escalate,
}

/// The occurrence `rule` of the message itself sent to the heads who had only been asked to
/// confirm it when Zalo then refused their village group (see `ledger::failover`).
pub const DIRECT_RULE: i64 = -3;

impl Stage {
    /// The occurrence `rule` a follow-up is stored under.
    pub fn rule(self) -> i64 {
        match self {
            Stage::Remind => -1,
            Stage::Escalate => -2,
        }
    }

    fn column(self) -> &'static str {
        match self {
            Stage::Remind => "reminded_at",
            Stage::Escalate => "escalated_at",
        }
    }
}

/// A head's confirmation that is late for a reminder or an escalation.
#[derive(Clone, Debug)]
pub struct Late {
    pub id: i64,
    pub occurrence_id: i64,
    pub announcement_id: String,
    pub revision: i64,
    pub urgent: bool,
    /// When the send went out (its `send_at`).
    pub sent_at: Timestamp,
    pub village_id: String,
    pub person: String,
    pub user_id: Option<String>,
    pub phone: Option<String>,
    pub link_key: Option<String>,
    pub due_at: Timestamp,
    pub escalate_at: Timestamp,
    pub reminded_at: Option<Timestamp>,
    pub escalated_at: Option<Timestamp>,
    /// The text the village was sent, to quote in the reminder.
    pub text: Option<String>,
}

impl Late {
    /// The stages due at `now` and not yet done. The escalation comes as long after the reminder
    /// as the reminder came after its due time was set (`within` again), counted from when the
    /// reminder was actually written: one held by quiet hours or downtime still leaves the head
    /// that long before the leaders hear.
    pub fn stages(&self, now: Timestamp) -> Vec<Stage> {
        let mut out = Vec::new();
        if self.reminded_at.is_none() && self.due_at <= now {
            out.push(Stage::Remind);
        }
        let again = self.escalate_at.duration_since(self.due_at);
        if self.escalated_at.is_none()
            && self.escalate_at <= now
            && self.reminded_at.is_some_and(|r| r + again <= now)
        {
            out.push(Stage::Escalate);
        }
        out
    }
}

/// One follow-up to write.
pub struct FollowUp<'a> {
    pub parent: &'a Late,
    pub stage: Stage,
    /// The confirmations it follows up (all of one send).
    pub confirmations: &'a [i64],
    pub deliveries: &'a [NewDelivery],
    /// When it goes out (after quiet hours for routine sends) and its last moment.
    pub send_at: Timestamp,
    pub deadline: Timestamp,
}

impl Store {
    /// Pending confirmations that are due for a reminder or an escalation at `now`. Not those of a
    /// deleted announcement: a notice withdrawn by deleting its file is not followed up.
    pub async fn late_confirmations(
        &self,
        commune: &str,
        now: Timestamp,
    ) -> sqlx::Result<Vec<Late>> {
        let rows = sqlx::query(
            "SELECT c.id, c.occurrence_id, c.announcement_id, o.revision, o.urgent, c.requested_at, c.village_id, c.person,
                    c.user_id, c.phone, c.link_key, c.due_at, c.escalate_at, c.reminded_at, c.escalated_at,
                    (SELECT d.text FROM deliveries d WHERE d.occurrence_id = c.occurrence_id AND d.village_id = c.village_id
                     ORDER BY CASE WHEN d.target_kind = 'group' THEN 0 ELSE 1 END, d.id LIMIT 1) AS text
             FROM confirmations c JOIN occurrences o ON o.id = c.occurrence_id
             WHERE c.commune_id = $1 AND c.state = 'pending' AND c.closed_at IS NULL
               AND ((c.reminded_at IS NULL AND c.due_at <= $2) OR (c.escalated_at IS NULL AND c.escalate_at <= $2))
               AND NOT EXISTS (SELECT 1 FROM announcements a
                               WHERE a.commune_id = c.commune_id AND a.id = c.announcement_id AND a.status = 'deleted')
             ORDER BY c.occurrence_id, c.village_id, c.id",
        )
        .bind(commune)
        .bind(micros(now))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let opt = |c: &str| -> sqlx::Result<Option<Timestamp>> {
                    Ok(r.try_get::<Option<i64>, _>(c)?.map(from_micros))
                };
                Ok(Late {
                    id: r.try_get("id")?,
                    occurrence_id: r.try_get("occurrence_id")?,
                    announcement_id: r.try_get("announcement_id")?,
                    revision: r.try_get("revision")?,
                    urgent: r.try_get::<i64, _>("urgent")? != 0,
                    // When the request went (a late send: when it went, not when it was due).
                    sent_at: from_micros(r.try_get("requested_at")?),
                    village_id: r.try_get("village_id")?,
                    person: r.try_get("person")?,
                    user_id: r.try_get("user_id")?,
                    phone: r.try_get("phone")?,
                    link_key: r.try_get("link_key")?,
                    due_at: from_micros(r.try_get("due_at")?),
                    // Rows from before follow-ups existed: escalate when they are reminded.
                    escalate_at: opt("escalate_at")?.unwrap_or(Timestamp::MAX),
                    reminded_at: opt("reminded_at")?,
                    escalated_at: opt("escalated_at")?,
                    text: r.try_get("text")?,
                })
            })
            .collect()
    }

    /// Stops following up the confirmations of send `occurrence` still pending: its announcement
    /// expired, or its version is gone. They stay unconfirmed in reports.
    pub async fn close_confirmations(&self, occurrence: i64, now: Timestamp) -> sqlx::Result<u64> {
        let mut tx = self.write().await?;
        let n = sqlx::query(
            "UPDATE confirmations SET closed_at = $2
             WHERE occurrence_id = $1 AND state = 'pending' AND closed_at IS NULL",
        )
        .bind(occurrence)
        .bind(micros(now))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(n)
    }

    /// Writes one follow-up with its deliveries and marks its confirmations. False when it was
    /// written before (by this daemon before a crash, or by another): nothing is written twice.
    /// False too when a head it names confirmed meanwhile (by reply or link, between reading the
    /// late confirmations and this write): the next turn builds it again from those still late,
    /// so a head who just confirmed is neither reminded nor reported to the leaders.
    pub async fn record_follow_up(
        &self,
        commune: &str,
        f: &FollowUp<'_>,
        node: &str,
        now: Timestamp,
    ) -> sqlx::Result<bool> {
        let mut tx = self.write().await?;
        let exists = sqlx::query("SELECT 1 FROM occurrences WHERE parent_id = $1 AND rule = $2")
            .bind(f.parent.occurrence_id)
            .bind(f.stage.rule())
            .fetch_optional(&mut *tx)
            .await?;
        if exists.is_some() {
            return Ok(false);
        }
        // A no-op update: on PostgreSQL it locks each row, so no confirmation lands between this
        // check and the commit.
        let mut still = 0;
        for c in f.confirmations {
            still += sqlx::query(
                "UPDATE confirmations SET state = state
                 WHERE id = $1 AND state = 'pending' AND closed_at IS NULL",
            )
            .bind(*c)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        }
        if still < f.confirmations.len() as u64 {
            return Ok(false);
        }
        let trigger = match f.stage {
            Stage::Remind => r#"{"type":"reminder"}"#,
            Stage::Escalate => r#"{"type":"escalation"}"#,
        };
        let of = FollowUpOf {
            parent: f.parent.occurrence_id,
            announcement_id: &f.parent.announcement_id,
            revision: f.parent.revision,
            urgent: f.parent.urgent,
        };
        let times = (f.send_at, f.deadline);
        let Some(occurrence) = self
            .insert_follow_up(&mut tx, commune, &of, f.stage.rule(), trigger, times, now)
            .await?
        else {
            return Ok(false);
        };
        for c in f.confirmations {
            sqlx::query(&format!(
                "UPDATE confirmations SET {col} = $2 WHERE id = $1 AND {col} IS NULL",
                col = f.stage.column()
            ))
            .bind(*c)
            .bind(micros(now))
            .execute(&mut *tx)
            .await?;
        }
        let expansion = Expansion {
            occurrence: &occurrence,
            deliveries: f.deliveries,
            confirmations: &[],
            missed: None,
            start: f.send_at,
        };
        self.expand_in(&mut tx, commune, &[expansion], node, now)
            .await?;
        tx.commit().await?;
        Ok(true)
    }
}

/// The send a follow-up follows.
pub(super) struct FollowUpOf<'a> {
    pub parent: i64,
    pub announcement_id: &'a str,
    pub revision: i64,
    pub urgent: bool,
}

impl Store {
    /// Writes a follow-up occurrence of a send under `rule`, expanded (its deliveries are the
    /// caller's to write), going out and due by `(send_at, deadline)`. None when none could be
    /// written: the send has one under that rule already.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn insert_follow_up(
        &self,
        tx: &mut super::Tx,
        commune: &str,
        of: &FollowUpOf<'_>,
        rule: i64,
        trigger: &str,
        (send_at, deadline): (Timestamp, Timestamp),
        now: Timestamp,
    ) -> sqlx::Result<Option<ClaimedOccurrence>> {
        // Under the send's own due time, so (announcement, revision, rule, due) stays unique; two
        // sends due at the same instant (two rules) move over by a microsecond.
        let parent_due: i64 = sqlx::query("SELECT due FROM occurrences WHERE id = $1")
            .bind(of.parent)
            .fetch_one(&mut **tx)
            .await?
            .try_get("due")?;
        for shift in 0..16 {
            let id = sqlx::query(
                "INSERT INTO occurrences (commune_id, announcement_id, revision, rule, due, send_at, deadline, trigger,
                   urgent, state, created_at, updated_at, parent_id)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11, $12)
                 ON CONFLICT DO NOTHING RETURNING id",
            )
            .bind(commune)
            .bind(of.announcement_id)
            .bind(of.revision)
            .bind(rule)
            .bind(parent_due + shift)
            .bind(micros(send_at))
            .bind(micros(deadline))
            .bind(trigger)
            .bind(i64::from(of.urgent))
            .bind(OccurrenceState::Expanded.as_str())
            .bind(micros(now))
            .bind(of.parent)
            .fetch_optional(&mut **tx)
            .await?
            .map(|r| r.try_get::<i64, _>("id"))
            .transpose()?;
            if let Some(id) = id {
                return Ok(Some(ClaimedOccurrence {
                    id,
                    announcement_id: of.announcement_id.to_string(),
                    revision: of.revision,
                    rule,
                    due: from_micros(parent_due),
                    send_at,
                    deadline,
                    trigger: trigger.to_string(),
                    urgent: of.urgent,
                }));
            }
        }
        Ok(None)
    }

    /// Deliveries due and unsent at `now`, and confirmations still pending: for `/metrics`.
    pub async fn backlog(&self, commune: &str, now: Timestamp) -> sqlx::Result<(i64, i64)> {
        let due: i64 = sqlx::query(
            "SELECT COUNT(*) AS n FROM deliveries
             WHERE commune_id = $1 AND state IN ('planned', 'retrying') AND next_attempt_at <= $2",
        )
        .bind(commune)
        .bind(micros(now))
        .fetch_one(&self.pool)
        .await?
        .try_get("n")?;
        let pending: i64 = sqlx::query(
            "SELECT COUNT(*) AS n FROM confirmations WHERE commune_id = $1 AND state = 'pending' AND closed_at IS NULL",
        )
        .bind(commune)
        .fetch_one(&self.pool)
        .await?
        .try_get("n")?;
        Ok((due, pending))
    }
}
