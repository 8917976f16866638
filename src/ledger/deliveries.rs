//! Deliveries: one row per recipient of one occurrence, with its state and every change appended
//! to `delivery_events`. A delivery is claimed into `sending` only in small chunks right before the
//! provider call, and its outcome is written after the provider answered — never per batch before
//! sending — so a crash leaves at most one chunk in doubt.

use jiff::Timestamp;
use sqlx::Row as _;

use super::{DeliveryState, OccurrenceState, Store, Tx, micros, values_list};

/// A delivery to create when an occurrence expands.
#[derive(Clone, Debug)]
pub struct NewDelivery {
    pub village_id: Option<String>,
    pub target_kind: &'static str,
    pub target: String,
    pub person: Option<String>,
    pub text: String,
}

/// A delivery this daemon is now sending.
#[derive(Clone, Debug)]
pub struct ClaimedDelivery {
    pub id: i64,
    pub occurrence_id: i64,
    pub announcement_id: String,
    pub village_id: Option<String>,
    pub target_kind: String,
    pub target: String,
    pub text: String,
    pub urgent: bool,
    pub due: Timestamp,
    pub deadline: Timestamp,
    pub attempts: i64,
    pub possible_duplicate: bool,
}

/// What became of one attempt.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub id: i64,
    pub state: DeliveryState,
    pub provider_message_id: Option<String>,
    pub error_code: Option<String>,
    pub error_reason: Option<String>,
    /// For `Retrying`: when to try again.
    pub next_attempt_at: Option<Timestamp>,
}

/// Rows per multi-row insert: SQLite allows 32,766 bound values per statement.
const CHUNK: usize = 500;

impl Store {
    /// Expands a claimed occurrence into its deliveries — planned, or all missed with the reason
    /// when `missed` gives one (its deadline passed while nobody could send it) — and marks the
    /// occurrence. Idempotent: a second expansion after a crash inserts nothing new.
    pub async fn expand(
        &self,
        commune: &str,
        occurrence: &super::ClaimedOccurrence,
        deliveries: &[NewDelivery],
        missed: Option<&str>,
        node: &str,
        now: Timestamp,
    ) -> sqlx::Result<usize> {
        let (state, reason) = match missed {
            Some(r) => (DeliveryState::Missed, Some(r)),
            None => (DeliveryState::Planned, None),
        };
        let mut tx = self.write().await?;
        let now_us = micros(now);
        let mut inserted = 0;
        for chunk in deliveries.chunks(CHUNK / 2) {
            const COLS: usize = 14;
            let sql = format!(
                "INSERT INTO deliveries (occurrence_id, commune_id, announcement_id, village_id, target_kind, target, person,
                   text, urgent, due, deadline, state, next_attempt_at, updated_at)
                 VALUES {} ON CONFLICT DO NOTHING RETURNING id",
                values_list(chunk.len(), COLS)
            );
            let mut q = sqlx::query(&sql);
            for d in chunk {
                q = q
                    .bind(occurrence.id)
                    .bind(commune)
                    .bind(&occurrence.announcement_id)
                    .bind(d.village_id.as_deref())
                    .bind(d.target_kind)
                    .bind(&d.target)
                    .bind(d.person.as_deref())
                    .bind(&d.text)
                    .bind(i64::from(occurrence.urgent))
                    .bind(micros(occurrence.send_at))
                    .bind(micros(occurrence.deadline))
                    .bind(state.as_str())
                    .bind(micros(occurrence.send_at))
                    .bind(now_us);
            }
            let ids: Vec<i64> = q
                .fetch_all(&mut *tx)
                .await?
                .iter()
                .map(|r| r.try_get(0))
                .collect::<Result<_, _>>()?;
            inserted += ids.len();
            let events: Vec<(i64, DeliveryState, Option<&str>)> =
                ids.iter().map(|id| (*id, state, reason)).collect();
            append_events(&mut tx, commune, &events, node, now).await?;
        }
        let occ_state = if state == DeliveryState::Missed {
            OccurrenceState::Missed
        } else {
            OccurrenceState::Expanded
        };
        sqlx::query(
            "UPDATE occurrences SET state = $2, reason = $3, claimed_by = NULL, lease_until = NULL, updated_at = $4 WHERE id = $1",
        )
        .bind(occurrence.id)
        .bind(occ_state.as_str())
        .bind(reason)
        .bind(now_us)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(inserted)
    }

    /// Marks a claimed occurrence that cannot expand (its file is gone, its text cannot render).
    pub async fn fail_occurrence(
        &self,
        id: i64,
        state: OccurrenceState,
        reason: &str,
        now: Timestamp,
    ) -> sqlx::Result<()> {
        let mut tx = self.write().await?;
        sqlx::query("UPDATE occurrences SET state = $2, reason = $3, claimed_by = NULL, lease_until = NULL, updated_at = $4 WHERE id = $1")
            .bind(id)
            .bind(state.as_str())
            .bind(reason)
            .bind(micros(now))
            .execute(&mut *tx)
            .await?;
        tx.commit().await
    }

    /// Claims up to `limit` deliveries that are due, urgent first, moving them to `sending`.
    pub async fn claim_deliveries(
        &self,
        commune: &str,
        node: &str,
        now: Timestamp,
        lease_until: Timestamp,
        limit: i64,
    ) -> sqlx::Result<Vec<ClaimedDelivery>> {
        let sql = format!(
            "UPDATE deliveries SET state = 'sending', claimed_by = $2, lease_until = $3, attempts = attempts + 1, updated_at = $4
             WHERE id IN (
               SELECT id FROM deliveries
               WHERE commune_id = $1 AND state IN ('planned', 'retrying') AND next_attempt_at <= $4
               ORDER BY urgent DESC, next_attempt_at, id LIMIT $5 {})
             RETURNING id, occurrence_id, announcement_id, village_id, target_kind, target, text, urgent, due, deadline,
                       attempts, possible_duplicate",
            self.skip_locked()
        );
        let mut tx = self.write().await?;
        let rows = sqlx::query(&sql)
            .bind(commune)
            .bind(node)
            .bind(micros(lease_until))
            .bind(micros(now))
            .bind(limit)
            .fetch_all(&mut *tx)
            .await?;
        let claimed: Vec<ClaimedDelivery> = rows
            .into_iter()
            .map(|r| {
                Ok(ClaimedDelivery {
                    id: r.try_get("id")?,
                    occurrence_id: r.try_get("occurrence_id")?,
                    announcement_id: r.try_get("announcement_id")?,
                    village_id: r.try_get("village_id")?,
                    target_kind: r.try_get("target_kind")?,
                    target: r.try_get("target")?,
                    text: r.try_get("text")?,
                    urgent: r.try_get::<i64, _>("urgent")? != 0,
                    due: super::from_micros(r.try_get("due")?),
                    deadline: super::from_micros(r.try_get("deadline")?),
                    attempts: r.try_get("attempts")?,
                    possible_duplicate: r.try_get::<i64, _>("possible_duplicate")? != 0,
                })
            })
            .collect::<sqlx::Result<_>>()?;
        let events: Vec<_> = claimed
            .iter()
            .map(|d| (d.id, DeliveryState::Sending, None))
            .collect();
        append_events(&mut tx, commune, &events, node, now).await?;
        tx.commit().await?;
        Ok(claimed)
    }

    /// Records what the provider answered, one row per recipient, in one transaction. Only rows
    /// this node still holds are changed: a node whose lease ran out has lost them to another.
    pub async fn record_outcomes(
        &self,
        commune: &str,
        node: &str,
        outcomes: &[Outcome],
        now: Timestamp,
    ) -> sqlx::Result<usize> {
        let mut tx = self.write().await?;
        let now_us = micros(now);
        let mut recorded = Vec::with_capacity(outcomes.len());
        for o in outcomes {
            let done = sqlx::query(
                "UPDATE deliveries SET state = $3, provider_message_id = COALESCE($4, provider_message_id),
                   error_code = $5, error_reason = $6, next_attempt_at = COALESCE($7, next_attempt_at),
                   claimed_by = NULL, lease_until = NULL, updated_at = $8
                 WHERE id = $1 AND claimed_by = $2 AND state = 'sending'",
            )
            .bind(o.id)
            .bind(node)
            .bind(o.state.as_str())
            .bind(o.provider_message_id.as_deref())
            .bind(o.error_code.as_deref())
            .bind(o.error_reason.as_deref())
            .bind(o.next_attempt_at.map(micros))
            .bind(now_us)
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() == 1 {
                let detail = o
                    .error_reason
                    .as_deref()
                    .or(o.provider_message_id.as_deref());
                recorded.push((o.id, o.state, detail));
            }
        }
        append_events(&mut tx, commune, &recorded, node, now).await?;
        tx.commit().await?;
        Ok(recorded.len())
    }

    /// Deliveries left in `sending` by a node that died (lease expired, or every one of them when
    /// `all` — a SQLite database has one daemon, so at start nothing can still be in flight). The
    /// guarantee is chosen per announcement: urgent ones are sent again and flagged as possible
    /// duplicates (at least once); the others become `unknown` for the operator (at most once).
    /// Returns (to resend, unknown).
    pub async fn recover_in_doubt(
        &self,
        commune: &str,
        node: &str,
        now: Timestamp,
        all: bool,
    ) -> sqlx::Result<(usize, usize)> {
        let cutoff = if all { i64::MAX } else { micros(now) };
        let mut tx = self.write().await?;
        let resend: Vec<i64> = sqlx::query(
            "UPDATE deliveries SET state = 'retrying', possible_duplicate = 1, next_attempt_at = $3, claimed_by = NULL,
               lease_until = NULL, updated_at = $3
             WHERE commune_id = $1 AND state = 'sending' AND lease_until < $2 AND urgent = 1 RETURNING id",
        )
        .bind(commune)
        .bind(cutoff)
        .bind(micros(now))
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|r| r.try_get(0))
        .collect::<Result<_, _>>()?;
        let unknown: Vec<i64> = sqlx::query(
            "UPDATE deliveries SET state = 'unknown', error_reason = 'in doubt: the process stopped during the request',
               claimed_by = NULL, lease_until = NULL, updated_at = $3
             WHERE commune_id = $1 AND state = 'sending' AND lease_until < $2 AND urgent = 0 RETURNING id",
        )
        .bind(commune)
        .bind(cutoff)
        .bind(micros(now))
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|r| r.try_get(0))
        .collect::<Result<_, _>>()?;
        let mut events: Vec<(i64, DeliveryState, Option<&str>)> = resend
            .iter()
            .map(|id| {
                (
                    *id,
                    DeliveryState::Retrying,
                    Some("in doubt: sending again (possible duplicate)"),
                )
            })
            .collect();
        events.extend(unknown.iter().map(|id| {
            (
                *id,
                DeliveryState::Unknown,
                Some("in doubt: the process stopped during the request"),
            )
        }));
        append_events(&mut tx, commune, &events, node, now).await?;
        tx.commit().await?;
        Ok((resend.len(), unknown.len()))
    }

    /// Planned or retrying deliveries whose deadline has passed become `expired`.
    pub async fn expire_overdue(
        &self,
        commune: &str,
        node: &str,
        now: Timestamp,
    ) -> sqlx::Result<usize> {
        let mut tx = self.write().await?;
        let ids: Vec<i64> = sqlx::query(
            "UPDATE deliveries SET state = 'expired', error_reason = COALESCE(error_reason, 'deadline passed'), updated_at = $2
             WHERE commune_id = $1 AND state IN ('planned', 'retrying') AND deadline < $2 RETURNING id",
        )
        .bind(commune)
        .bind(micros(now))
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|r| r.try_get(0))
        .collect::<Result<_, _>>()?;
        let events: Vec<_> = ids
            .iter()
            .map(|id| (*id, DeliveryState::Expired, Some("deadline passed")))
            .collect();
        append_events(&mut tx, commune, &events, node, now).await?;
        tx.commit().await?;
        Ok(ids.len())
    }

    /// How many deliveries are in each state.
    pub async fn delivery_counts(&self, commune: &str) -> sqlx::Result<Vec<(DeliveryState, i64)>> {
        let rows = sqlx::query("SELECT state, COUNT(*) FROM deliveries WHERE commune_id = $1 GROUP BY state ORDER BY state")
            .bind(commune)
            .fetch_all(&self.pool)
            .await?;
        let mut out = Vec::new();
        for r in rows {
            let state: String = r.try_get(0)?;
            if let Some(s) = DeliveryState::parse(&state) {
                out.push((s, r.try_get(1)?));
            }
        }
        Ok(out)
    }
}

async fn append_events(
    tx: &mut Tx,
    commune: &str,
    events: &[(i64, DeliveryState, Option<&str>)],
    node: &str,
    now: Timestamp,
) -> sqlx::Result<()> {
    for chunk in events.chunks(CHUNK) {
        if chunk.is_empty() {
            continue;
        }
        let sql = format!(
            "INSERT INTO delivery_events (delivery_id, commune_id, at, state, detail, node) VALUES {}",
            values_list(chunk.len(), 6)
        );
        let mut q = sqlx::query(&sql);
        for (id, state, detail) in chunk {
            q = q
                .bind(*id)
                .bind(commune)
                .bind(micros(now))
                .bind(state.as_str())
                .bind(*detail)
                .bind(node);
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}
