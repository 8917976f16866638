//! Occurrences: one planned send of one announcement. Planning writes them (never twice: a unique
//! key and a same-time check across revisions); the due loop claims them when due and expands them
//! into deliveries, or records them as missed.

use std::collections::HashMap;

use jiff::Timestamp;
use sqlx::Row as _;

use super::{Store, micros};

/// An occurrence to materialise; the store fills in the announcement's revision.
#[derive(Clone, Debug)]
pub struct NewOccurrence {
    pub announcement_id: String,
    pub rule: i64,
    pub due: Timestamp,
    pub send_at: Timestamp,
    pub deadline: Timestamp,
    /// The trigger, as JSON.
    pub trigger: String,
    pub urgent: bool,
}

/// A new good version of a file.
#[derive(Clone, Debug)]
pub struct NewRevision {
    pub announcement_id: String,
    pub content_hash: String,
    pub git_commit: Option<String>,
    pub path: String,
    pub source: String,
}

/// Everything one planning pass changes, applied in one transaction.
#[derive(Default, Debug)]
pub struct PlanChange {
    pub revisions: Vec<NewRevision>,
    pub deleted: Vec<String>,
    /// Files whose problems changed: Some(JSON) while broken, None once they validate again.
    pub problems: Vec<(String, Option<String>)>,
    pub occurrences: Vec<NewOccurrence>,
    /// Announcements whose `occurrences` above are their whole plan over a window: what is still
    /// planned there under another time is moved to it, or cancelled if the plan no longer has it.
    pub replans: Vec<super::Replan>,
    /// Advance the commune's materialised horizon to this.
    pub planned_until: Option<Timestamp>,
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct PlanResult {
    pub revisions: usize,
    pub inserted: usize,
    pub cancelled: usize,
    /// Planned sends given a new time (new quiet hours in commune.yaml).
    pub moved: usize,
    /// The revision now current for each announcement touched by the change.
    pub current: HashMap<String, i64>,
}

/// A due occurrence this daemon now holds.
#[derive(Clone, Debug)]
pub struct ClaimedOccurrence {
    pub id: i64,
    pub announcement_id: String,
    pub revision: i64,
    pub rule: i64,
    pub due: Timestamp,
    pub send_at: Timestamp,
    pub deadline: Timestamp,
    pub trigger: String,
    pub urgent: bool,
}

impl Store {
    /// The commune's materialised horizon, if planning ever ran.
    pub async fn planned_until(&self, commune: &str) -> sqlx::Result<Option<Timestamp>> {
        let row = sqlx::query("SELECT planned_until FROM communes WHERE id = $1")
            .bind(commune)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row
            .and_then(|r| r.try_get::<Option<i64>, _>(0).ok().flatten())
            .map(super::from_micros))
    }

    pub async fn apply_plan(
        &self,
        commune: &str,
        change: &PlanChange,
        now: Timestamp,
    ) -> sqlx::Result<PlanResult> {
        let mut tx = self.write().await?;
        self.planning_lock(&mut tx, commune).await?;
        let now_us = micros(now);
        let mut result = PlanResult::default();
        for rev in &change.revisions {
            // Only the revision of an active announcement is reused. A file deleted and restored
            // unchanged gets a new one: the deletion cancelled the old revision's sends, and
            // those rows would keep the same sends from being planned again.
            let latest = sqlx::query(
                "SELECT r.revision, r.content_hash, COALESCE(a.status, '') FROM revisions r
                 LEFT JOIN announcements a ON a.commune_id = r.commune_id AND a.id = r.announcement_id
                 WHERE r.commune_id = $1 AND r.announcement_id = $2
                 ORDER BY r.revision DESC LIMIT 1",
            )
            .bind(commune)
            .bind(&rev.announcement_id)
            .fetch_optional(&mut *tx)
            .await?;
            let (last, same) = match latest {
                Some(r) => (
                    r.try_get::<i64, _>(0)?,
                    r.try_get::<String, _>(1)? == rev.content_hash
                        && r.try_get::<String, _>(2)? == "active",
                ),
                None => (0, false),
            };
            // Another daemon may have recorded this very content already: then it is current.
            let revision = if same { last } else { last + 1 };
            if !same {
                sqlx::query(
                    "INSERT INTO revisions (commune_id, announcement_id, revision, content_hash, git_commit, path, source, loaded_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(commune)
                .bind(&rev.announcement_id)
                .bind(revision)
                .bind(&rev.content_hash)
                .bind(rev.git_commit.as_deref())
                .bind(&rev.path)
                .bind(&rev.source)
                .bind(now_us)
                .execute(&mut *tx)
                .await?;
                result.revisions += 1;
            }
            sqlx::query(
                "INSERT INTO announcements (commune_id, id, revision, status, problems, updated_at)
                 VALUES ($1, $2, $3, 'active', NULL, $4)
                 ON CONFLICT (commune_id, id) DO UPDATE SET revision = $3, status = 'active', problems = NULL, updated_at = $4",
            )
            .bind(commune)
            .bind(&rev.announcement_id)
            .bind(revision)
            .bind(now_us)
            .execute(&mut *tx)
            .await?;
            // Future sends of older revisions give way to this one; what was sent stays sent, and
            // what fell due while the daemon was down still gets its catch-up decision.
            let cancelled = sqlx::query(
                "UPDATE occurrences SET state = 'cancelled', reason = 'superseded', updated_at = $4
                 WHERE commune_id = $1 AND announcement_id = $2 AND revision <> $3 AND state = 'planned'
                   AND send_at >= $4",
            )
            .bind(commune)
            .bind(&rev.announcement_id)
            .bind(revision)
            .bind(now_us)
            .execute(&mut *tx)
            .await?;
            result.cancelled += cancelled.rows_affected() as usize;
            result.current.insert(rev.announcement_id.clone(), revision);
        }
        for id in &change.deleted {
            sqlx::query("UPDATE announcements SET status = 'deleted', updated_at = $3 WHERE commune_id = $1 AND id = $2")
                .bind(commune)
                .bind(id)
                .bind(now_us)
                .execute(&mut *tx)
                .await?;
            let cancelled = sqlx::query(
                "UPDATE occurrences SET state = 'cancelled', reason = 'deleted', updated_at = $3
                 WHERE commune_id = $1 AND announcement_id = $2 AND state = 'planned'",
            )
            .bind(commune)
            .bind(id)
            .bind(now_us)
            .execute(&mut *tx)
            .await?;
            result.cancelled += cancelled.rows_affected() as usize;
            // Its heads are not followed up any more, even if the file comes back: a restored
            // file plans new sends, and last week's requests would only bring stale reminders.
            sqlx::query(
                "UPDATE confirmations SET closed_at = $3
                 WHERE commune_id = $1 AND announcement_id = $2 AND state = 'pending' AND closed_at IS NULL",
            )
            .bind(commune)
            .bind(id)
            .bind(now_us)
            .execute(&mut *tx)
            .await?;
        }
        for (id, problems) in &change.problems {
            sqlx::query("UPDATE announcements SET problems = $3, updated_at = $4 WHERE commune_id = $1 AND id = $2")
                .bind(commune)
                .bind(id)
                .bind(problems.as_deref())
                .bind(now_us)
                .execute(&mut *tx)
                .await?;
        }
        // Before the new sends are written: a send cancelled here frees its time for them (a cron
        // time in a new time zone).
        let replanned =
            super::replan::replan(&mut tx, commune, &change.replans, &change.occurrences, now)
                .await?;
        result.moved = replanned.moved;
        result.cancelled += replanned.cancelled;
        // Revisions of announcements not touched above, for the occurrences below.
        let mut revision_of: HashMap<String, i64> = result.current.clone();
        for o in &change.occurrences {
            if !revision_of.contains_key(&o.announcement_id) {
                let r = sqlx::query("SELECT revision FROM announcements WHERE commune_id = $1 AND id = $2 AND status = 'active'")
                    .bind(commune)
                    .bind(&o.announcement_id)
                    .fetch_optional(&mut *tx)
                    .await?;
                revision_of.insert(
                    o.announcement_id.clone(),
                    r.map(|r| r.try_get(0)).transpose()?.unwrap_or(-1),
                );
            }
        }
        for o in &change.occurrences {
            let revision = revision_of.get(&o.announcement_id).copied().unwrap_or(-1);
            if revision < 0 {
                continue;
            }
            // The same send of the same rule is never planned twice, whatever the revision: an
            // edit that keeps a time does not send it again. A send a re-plan cancelled (other
            // quiet hours or time zone, then back) is planned again in its own row.
            let inserted = sqlx::query(
                "INSERT INTO occurrences
                   (commune_id, announcement_id, revision, rule, due, send_at, deadline, trigger, urgent, state, created_at, updated_at)
                 SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, 'planned', $10, $10
                 WHERE NOT EXISTS (
                   SELECT 1 FROM occurrences
                   WHERE commune_id = $1 AND announcement_id = $2 AND rule = $4 AND due = $5 AND state <> 'cancelled')
                 ON CONFLICT (commune_id, announcement_id, revision, rule, due) DO UPDATE
                   SET state = 'planned', reason = NULL, send_at = excluded.send_at, deadline = excluded.deadline,
                       trigger = excluded.trigger, urgent = excluded.urgent, updated_at = excluded.updated_at
                   WHERE occurrences.state = 'cancelled' AND occurrences.reason = 'replanned'",
            )
            .bind(commune)
            .bind(&o.announcement_id)
            .bind(revision)
            .bind(o.rule)
            .bind(micros(o.due))
            .bind(micros(o.send_at))
            .bind(micros(o.deadline))
            .bind(&o.trigger)
            .bind(i64::from(o.urgent))
            .bind(now_us)
            .execute(&mut *tx)
            .await?;
            result.inserted += inserted.rows_affected() as usize;
        }
        if let Some(until) = change.planned_until {
            sqlx::query("UPDATE communes SET planned_until = $2, updated_at = $3 WHERE id = $1")
                .bind(commune)
                .bind(micros(until))
                .bind(now_us)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(result)
    }

    /// Claims due occurrences (and ones whose claimant died: lease expired) for `node`.
    pub async fn claim_occurrences(
        &self,
        commune: &str,
        node: &str,
        now: Timestamp,
        lease_until: Timestamp,
        limit: i64,
    ) -> sqlx::Result<Vec<ClaimedOccurrence>> {
        let sql = format!(
            "UPDATE occurrences SET state = 'claimed', claimed_by = $2, lease_until = $3, updated_at = $4
             WHERE id IN (
               SELECT id FROM occurrences
               WHERE commune_id = $1 AND state IN ('planned', 'claimed') AND send_at <= $4
                 AND (state = 'planned' OR lease_until < $4)
               ORDER BY send_at LIMIT $5 {})
             RETURNING id, announcement_id, revision, rule, due, send_at, deadline, trigger, urgent",
            self.skip_locked()
        );
        let rows = self
            .claim_rows(&sql, commune, node, now, lease_until, limit)
            .await?;
        rows.into_iter()
            .map(|r| {
                Ok(ClaimedOccurrence {
                    id: r.try_get("id")?,
                    announcement_id: r.try_get("announcement_id")?,
                    revision: r.try_get("revision")?,
                    rule: r.try_get("rule")?,
                    due: super::from_micros(r.try_get("due")?),
                    send_at: super::from_micros(r.try_get("send_at")?),
                    deadline: super::from_micros(r.try_get("deadline")?),
                    trigger: r.try_get("trigger")?,
                    urgent: r.try_get::<i64, _>("urgent")? != 0,
                })
            })
            .collect()
    }

    /// The earliest time anything becomes due: a planned occurrence, a delivery to (re)try, or a
    /// lease to take over.
    pub async fn next_due(&self, commune: &str) -> sqlx::Result<Option<Timestamp>> {
        let row = sqlx::query(
            "SELECT MIN(t) FROM (
               SELECT MIN(send_at) AS t FROM occurrences WHERE commune_id = $1 AND state = 'planned'
               UNION ALL SELECT MIN(lease_until) FROM occurrences WHERE commune_id = $1 AND state = 'claimed'
               UNION ALL SELECT MIN(next_attempt_at) FROM deliveries WHERE commune_id = $1 AND state IN ('planned', 'retrying')
               UNION ALL SELECT MIN(lease_until) FROM deliveries WHERE commune_id = $1 AND state = 'sending'
             ) due",
        )
        .bind(commune)
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get::<Option<i64>, _>(0)?.map(super::from_micros))
    }
}
