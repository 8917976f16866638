//! Deliveries: one row per recipient of one occurrence, with its state and every change appended
//! to `delivery_events`. A delivery is claimed into `sending` only in small chunks, at most one
//! chunk ahead of the provider call, and its outcome is written after the provider answered —
//! never per batch before sending — so a crash leaves at most the send loop's two unwritten chunks
//! in doubt (see `daemon::sending`).

use jiff::Timestamp;
use sqlx::Row as _;

use super::{DeliveryState, Placeholders, Store, micros};

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
    pub fallback: Option<String>,
    /// The provider's ids of the parts of a long text that an earlier attempt got accepted
    /// before a later part failed (comma-separated): this attempt sends only the rest.
    pub sent_parts: Option<String>,
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
    /// The attempt may have reached the person (a timeout): the next one is a possible duplicate.
    pub in_doubt: bool,
    /// Refused for now (a night ban, a quota): not counted among the delivery's attempts.
    pub not_an_attempt: bool,
}

impl Outcome {
    /// An attempt Zalo accepted, with its message id (or, for an attempt cut off partway, the
    /// ids of the parts accepted so far); other outcomes are built from it.
    pub fn sent(id: i64, provider_message_id: Option<String>) -> Outcome {
        Outcome {
            id,
            state: DeliveryState::Sent,
            provider_message_id,
            error_code: None,
            error_reason: None,
            next_attempt_at: None,
            in_doubt: false,
            not_an_attempt: false,
        }
    }
}

/// The next chunk to claim, for `record_and_claim`: up to `limit` deliveries due at `now`, held
/// until `lease_until`. A limit of 0 claims nothing (the loop is stopping).
#[derive(Clone, Copy, Debug)]
pub struct Claim {
    pub now: Timestamp,
    pub lease_until: Timestamp,
    pub limit: i64,
    /// The claim's number, increasing per node across restarts. The send loop writes it with
    /// `mark_on_wire` before the chunk goes out; after a crash, a chunk numbered after the last
    /// mark never left and is released instead of counted in doubt. None: always in doubt.
    pub chunk: Option<i64>,
}

impl Store {
    /// Claims up to `limit` deliveries that are due, urgent first, moving them to `sending`.
    pub async fn claim_deliveries(
        &self,
        commune: &str,
        node: &str,
        now: Timestamp,
        lease_until: Timestamp,
        limit: i64,
    ) -> sqlx::Result<Vec<ClaimedDelivery>> {
        let mut tx = self.write().await?;
        let claim = Claim {
            now,
            lease_until,
            limit,
            chunk: None,
        };
        let claimed = self.claim_in(&mut tx, commune, node, &claim).await?;
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
        let recorded = self
            .record_in(&mut tx, commune, node, outcomes, now)
            .await?;
        tx.commit().await?;
        Ok(recorded)
    }

    /// The send loop's one write per chunk: the outcomes of the chunk that was just answered
    /// (recorded at `done`), then the next chunk claimed at `now`, in one transaction. Half the
    /// commits of doing each on its own, and a page both touch is written to the log once.
    pub async fn record_and_claim(
        &self,
        commune: &str,
        node: &str,
        outcomes: &[Outcome],
        done: Timestamp,
        claim: Claim,
    ) -> sqlx::Result<(usize, Vec<ClaimedDelivery>)> {
        let mut tx = self.write().await?;
        let recorded = self
            .record_in(&mut tx, commune, node, outcomes, done)
            .await?;
        let claimed = if claim.limit > 0 {
            self.claim_in(&mut tx, commune, node, &claim).await?
        } else {
            Vec::new()
        };
        tx.commit().await?;
        Ok((recorded, claimed))
    }

    async fn claim_in(
        &self,
        tx: &mut super::Tx,
        commune: &str,
        node: &str,
        claim: &Claim,
    ) -> sqlx::Result<Vec<ClaimedDelivery>> {
        if self.dialect == super::Dialect::Sqlite {
            return super::sqlite_json::claim_json(tx, commune, node, claim).await;
        }
        let sql = format!(
            "UPDATE deliveries SET state = 'sending', claimed_by = $2, node = $2, lease_until = $3, attempts = attempts + 1, updated_at = $4,
               claim_chunk = $6
             WHERE id IN (
               SELECT id FROM deliveries
               WHERE commune_id = $1 AND state IN ('planned', 'retrying') AND next_attempt_at <= $4
                 AND deadline >= $4
               ORDER BY urgent DESC, next_attempt_at, id LIMIT $5 {})
             RETURNING id, occurrence_id, announcement_id, village_id, target_kind, target, text, urgent, due, deadline,
                       attempts, possible_duplicate, fallback, provider_message_id",
            self.skip_locked()
        );
        let rows = sqlx::query(&sql)
            .bind(commune)
            .bind(node)
            .bind(micros(claim.lease_until))
            .bind(micros(claim.now))
            .bind(claim.limit)
            .bind(claim.chunk)
            .fetch_all(&mut **tx)
            .await?;
        rows.into_iter()
            .map(|r| {
                Ok(ClaimedDelivery {
                    id: r.try_get(0)?,
                    occurrence_id: r.try_get(1)?,
                    announcement_id: r.try_get(2)?,
                    village_id: r.try_get(3)?,
                    target_kind: r.try_get(4)?,
                    target: r.try_get(5)?,
                    text: r.try_get(6)?,
                    urgent: r.try_get::<i64, _>(7)? != 0,
                    due: super::from_micros(r.try_get(8)?),
                    deadline: super::from_micros(r.try_get(9)?),
                    attempts: r.try_get(10)?,
                    possible_duplicate: r.try_get::<i64, _>(11)? != 0,
                    fallback: r.try_get(12)?,
                    sent_parts: r.try_get(13)?,
                })
            })
            .collect()
    }

    async fn record_in(
        &self,
        tx: &mut super::Tx,
        commune: &str,
        node: &str,
        outcomes: &[Outcome],
        now: Timestamp,
    ) -> sqlx::Result<usize> {
        if self.dialect == super::Dialect::Sqlite {
            return super::sqlite_json::record_json(tx, commune, node, outcomes, now).await;
        }
        const COLS: usize = 8;
        let mut recorded = 0;
        for chunk in super::pow2_chunks(outcomes, 128) {
            // One statement for the chunk: each row's values joined in by id. The casts give the
            // VALUES columns their types on PostgreSQL; SQLite takes them as they are.
            let mut ph = Placeholders::new(self.dialect);
            let values = ph.rows(chunk.len(), COLS, |c| {
                matches!(c, 0 | 5 | 6 | 7).then_some("BIGINT")
            });
            let (at, by, within) = (ph.next(), ph.next(), ph.next());
            let sql = format!(
                "WITH v (id, state, message_id, code, reason, next_at, in_doubt, not_attempt) AS (VALUES {values})
                 UPDATE deliveries SET state = v.state, provider_message_id = COALESCE(v.message_id, deliveries.provider_message_id),
                   attempts = deliveries.attempts - v.not_attempt,
                   error_code = v.code, error_reason = v.reason, next_attempt_at = COALESCE(v.next_at, deliveries.next_attempt_at),
                   possible_duplicate = CASE WHEN v.in_doubt = 1 THEN 1 ELSE deliveries.possible_duplicate END,
                   node = deliveries.claimed_by, claimed_by = NULL, lease_until = NULL, updated_at = {at}
                 FROM v WHERE deliveries.id = v.id AND deliveries.claimed_by = {by} AND deliveries.commune_id = {within}
                   AND deliveries.state = 'sending'"
            );
            let mut q = sqlx::query(&sql);
            for o in chunk {
                q = q
                    .bind(o.id)
                    .bind(o.state.as_str())
                    .bind(o.provider_message_id.as_deref())
                    .bind(o.error_code.as_deref())
                    .bind(o.error_reason.as_deref())
                    .bind(o.next_attempt_at.map(micros))
                    .bind(i64::from(o.in_doubt))
                    .bind(i64::from(o.not_an_attempt));
            }
            q = q.bind(micros(now)).bind(node).bind(commune);
            recorded += q.execute(&mut **tx).await?.rows_affected() as usize;
        }
        Ok(recorded)
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

/// How far one send has got, for a progress bar.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    pub total: i64,
    /// Reached at least `sent`.
    pub sent: i64,
    /// Final without reaching: failed, expired, missed, unknown.
    pub failed: i64,
    /// Not yet final: planned, sending, retrying.
    pub pending: i64,
}

impl Store {
    /// How far the send `occurrence` has got. A send not yet expanded into its deliveries (a
    /// daemon beside `loa send` claimed it first and is still writing them) counts as one
    /// pending, not as nothing to do.
    pub async fn progress(&self, occurrence: i64) -> sqlx::Result<Progress> {
        let rows = sqlx::query(
            "SELECT state, COUNT(*) AS n FROM deliveries WHERE occurrence_id = $1 GROUP BY state",
        )
        .bind(occurrence)
        .fetch_all(&self.pool)
        .await?;
        let mut p = Progress::default();
        if rows.is_empty() {
            let state: Option<String> = sqlx::query("SELECT state FROM occurrences WHERE id = $1")
                .bind(occurrence)
                .fetch_optional(&self.pool)
                .await?
                .map(|r| r.try_get("state"))
                .transpose()?;
            if matches!(state.as_deref(), Some("planned" | "claimed")) {
                p.pending = 1;
            }
            return Ok(p);
        }
        for r in rows {
            let (state, n): (String, i64) = (r.try_get("state")?, r.try_get("n")?);
            p.total += n;
            match state.as_str() {
                "sent" | "delivered" | "seen" | "confirmed" => p.sent += n,
                "planned" | "sending" | "retrying" => p.pending += n,
                _ => p.failed += n,
            }
        }
        Ok(p)
    }

    /// The occurrence of `announcement` by `rule` due at `due`, if planned.
    pub async fn occurrence_id(
        &self,
        commune: &str,
        announcement: &str,
        rule: i64,
        due: Timestamp,
    ) -> sqlx::Result<Option<i64>> {
        sqlx::query(
            "SELECT id FROM occurrences WHERE commune_id = $1 AND announcement_id = $2 AND rule = $3 AND due = $4
             AND state <> 'cancelled' ORDER BY id DESC LIMIT 1",
        )
        .bind(commune)
        .bind(announcement)
        .bind(rule)
        .bind(micros(due))
        .fetch_optional(&self.pool)
        .await?
        .map(|r| r.try_get("id"))
        .transpose()
    }
}
