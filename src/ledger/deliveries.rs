//! Deliveries: one row per recipient of one occurrence, with its state and every change appended
//! to `delivery_events`. A delivery is claimed into `sending` only in small chunks, at most one
//! chunk ahead of the provider call, and its outcome is written after the provider answered —
//! never per batch before sending — so a crash leaves at most the send loop's two unwritten chunks
//! in doubt (see `daemon::sending`).

use jiff::Timestamp;
use sqlx::Row as _;

use super::{DeliveryState, OccurrenceState, Placeholders, Store, micros};

/// A village head to be asked for confirmation of a send.
#[derive(Clone, Debug)]
pub struct NewConfirmation {
    pub village_id: String,
    pub person: String,
    pub user_id: Option<String>,
    pub phone: Option<String>,
    pub within: jiff::SignedDuration,
    /// The key the head's confirm link names; None without links.
    pub link_key: Option<String>,
}

/// A delivery to create when an occurrence expands.
#[derive(Clone, Debug)]
pub struct NewDelivery {
    pub village_id: Option<String>,
    pub target_kind: &'static str,
    pub target: String,
    pub person: Option<String>,
    /// Another address for the same person: a head's phone, used when their Zalo id cannot be
    /// reached (outside the 7-day window).
    pub fallback: Option<String>,
    pub text: String,
}

/// One occurrence's deliveries, for `expand_many`.
#[derive(Clone)]
pub struct Expansion<'a> {
    pub occurrence: &'a super::ClaimedOccurrence,
    pub deliveries: &'a [NewDelivery],
    /// Village heads asked to confirm this send (written in the same transaction).
    pub confirmations: &'a [NewConfirmation],
    /// Why the occurrence was missed; None: its deliveries are planned.
    pub missed: Option<&'a str>,
    /// When its deliveries may first go out, and heads are asked to confirm from: its time, or
    /// later for a send caught up after downtime (now, or when quiet hours end).
    pub start: Timestamp,
}

impl Expansion<'_> {
    fn state(&self) -> DeliveryState {
        if self.missed.is_some() {
            DeliveryState::Missed
        } else {
            DeliveryState::Planned
        }
    }
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
        let expansion = Expansion {
            occurrence,
            deliveries,
            confirmations: &[],
            missed,
            start: occurrence.send_at,
        };
        self.expand_many(commune, &[expansion], node, now).await
    }

    /// Expands several occurrences in one transaction (a fan-out due at once is one write). Only
    /// those `node` still holds: one whose lease ran out while it was rendered (a slow database,
    /// a long pause) may have been taken over by another daemon, whose expansion and decision
    /// (sent late, held, missed) stand.
    pub async fn expand_many(
        &self,
        commune: &str,
        expansions: &[Expansion<'_>],
        node: &str,
        now: Timestamp,
    ) -> sqlx::Result<usize> {
        let mut tx = self.write().await?;
        let ids: Vec<i64> = expansions.iter().map(|e| e.occurrence.id).collect();
        let ours = self.still_claimed(&mut tx, &ids, node).await?;
        let kept: Vec<Expansion<'_>> = expansions
            .iter()
            .filter(|e| ours.contains(&e.occurrence.id))
            .cloned()
            .collect();
        if kept.len() < expansions.len() {
            tracing::warn!(
                lost = expansions.len() - kept.len(),
                "occurrences another daemon took over while they were rendered are left to it"
            );
        }
        let inserted = self.expand_in(&mut tx, commune, &kept, node, now).await?;
        tx.commit().await?;
        Ok(inserted)
    }

    /// Which of `ids` are still claimed by `node`. On PostgreSQL their rows stay locked until the
    /// transaction ends, so no other daemon can take them over in between.
    async fn still_claimed(
        &self,
        tx: &mut super::Tx,
        ids: &[i64],
        node: &str,
    ) -> sqlx::Result<std::collections::HashSet<i64>> {
        let mut ours = std::collections::HashSet::new();
        for chunk in ids.chunks(CHUNK) {
            // In the order they appear: SQLite's placeholders are positional.
            let mut ph = Placeholders::new(self.dialect);
            let list: Vec<String> = chunk.iter().map(|_| ph.next()).collect();
            let by = ph.next();
            let sql = format!(
                "UPDATE occurrences SET lease_until = lease_until
                 WHERE id IN ({}) AND state = 'claimed' AND claimed_by = {by} RETURNING id",
                list.join(",")
            );
            let mut q = sqlx::query(&sql);
            for id in chunk {
                q = q.bind(*id);
            }
            q = q.bind(node);
            for row in q.fetch_all(&mut **tx).await? {
                ours.insert(row.try_get::<i64, _>(0)?);
            }
        }
        Ok(ours)
    }

    /// `expand_many` inside a transaction the caller commits (follow-ups add their own rows).
    pub(super) async fn expand_in(
        &self,
        tx: &mut super::Tx,
        commune: &str,
        expansions: &[Expansion<'_>],
        node: &str,
        now: Timestamp,
    ) -> sqlx::Result<usize> {
        const COLS: usize = 17;
        let now_us = micros(now);
        let mut inserted = 0;
        let rows: Vec<(&Expansion<'_>, &NewDelivery)> = expansions
            .iter()
            .flat_map(|e| e.deliveries.iter().map(move |d| (e, d)))
            .collect();
        for chunk in super::pow2_chunks(&rows, 128) {
            // The event log rows are written by the `deliveries_event*` trigger.
            let sql = format!(
                "INSERT INTO deliveries (occurrence_id, commune_id, announcement_id, village_id, target_kind, target, person,
                   text, urgent, due, deadline, state, next_attempt_at, updated_at, error_reason, node, fallback)
                 VALUES {} ON CONFLICT DO NOTHING",
                Placeholders::new(self.dialect).rows(chunk.len(), COLS, |_| None)
            );
            let mut q = sqlx::query(&sql);
            for (e, d) in chunk {
                let o = e.occurrence;
                q = q
                    .bind(o.id)
                    .bind(commune)
                    .bind(&o.announcement_id)
                    .bind(d.village_id.as_deref())
                    .bind(d.target_kind)
                    .bind(&d.target)
                    .bind(d.person.as_deref())
                    .bind(&d.text)
                    .bind(i64::from(o.urgent))
                    .bind(micros(o.send_at))
                    .bind(micros(o.deadline))
                    .bind(e.state().as_str())
                    .bind(micros(e.start))
                    .bind(now_us)
                    .bind(e.missed)
                    .bind(node)
                    .bind(d.fallback.as_deref());
            }
            inserted += q.execute(&mut **tx).await?.rows_affected() as usize;
        }
        // Expanded occurrences in one statement; missed ones (rare) each with their reason.
        let expanded: Vec<i64> = expansions
            .iter()
            .filter(|e| e.missed.is_none())
            .map(|e| e.occurrence.id)
            .collect();
        for chunk in expanded.chunks(CHUNK) {
            let mut ph = Placeholders::new(self.dialect);
            let (state, at) = (ph.next(), ph.next());
            let ids: Vec<String> = chunk.iter().map(|_| ph.next()).collect();
            let sql = format!(
                "UPDATE occurrences SET state = {state}, reason = NULL, claimed_by = NULL, lease_until = NULL, updated_at = {at}
                 WHERE id IN ({})",
                ids.join(",")
            );
            let mut q = sqlx::query(&sql)
                .bind(OccurrenceState::Expanded.as_str())
                .bind(now_us);
            for id in chunk {
                q = q.bind(*id);
            }
            q.execute(&mut **tx).await?;
        }
        for e in expansions.iter().filter(|e| e.missed.is_none()) {
            for c in e.confirmations {
                // Reminded when `within` has passed, reported to the leaders after as long again.
                sqlx::query(
                    "INSERT INTO confirmations (commune_id, occurrence_id, announcement_id, village_id, person, user_id, phone,
                       requested_at, due_at, state, escalate_at, link_key)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'pending', $10, $11) ON CONFLICT DO NOTHING",
                )
                .bind(commune)
                .bind(e.occurrence.id)
                .bind(&e.occurrence.announcement_id)
                .bind(&c.village_id)
                .bind(&c.person)
                .bind(c.user_id.as_deref())
                .bind(c.phone.as_deref())
                .bind(micros(e.start))
                .bind(micros(e.start + c.within))
                .bind(micros(e.start + c.within + c.within))
                .bind(c.link_key.as_deref())
                .execute(&mut **tx)
                .await?;
            }
        }
        for e in expansions.iter().filter(|e| e.missed.is_some()) {
            settle_occurrence(
                tx,
                e.occurrence.id,
                (OccurrenceState::Missed, e.missed),
                node,
                now_us,
            )
            .await?;
        }
        Ok(inserted)
    }

    /// Marks an occurrence `node` claimed that cannot expand (its file is gone, its text cannot
    /// render).
    pub async fn fail_occurrence(
        &self,
        id: i64,
        state: OccurrenceState,
        reason: &str,
        node: &str,
        now: Timestamp,
    ) -> sqlx::Result<()> {
        let mut tx = self.write().await?;
        settle_occurrence(&mut tx, id, (state, Some(reason)), node, micros(now)).await?;
        tx.commit().await
    }

    /// Puts a claimed occurrence back to `planned`, to go out at `send_at`: a routine send caught
    /// up after downtime inside quiet hours waits for their end, and until then a deletion or an
    /// edit of its file still cancels it, as for any send not yet made. Only while `node` holds it.
    pub async fn hold_occurrence(
        &self,
        id: i64,
        send_at: Timestamp,
        node: &str,
        now: Timestamp,
    ) -> sqlx::Result<()> {
        let mut tx = self.write().await?;
        sqlx::query(
            "UPDATE occurrences SET state = 'planned', send_at = $2, claimed_by = NULL, lease_until = NULL, updated_at = $3
             WHERE id = $1 AND state = 'claimed' AND claimed_by = $4",
        )
        .bind(id)
        .bind(micros(send_at))
        .bind(micros(now))
        .bind(node)
        .execute(&mut *tx)
        .await?;
        tx.commit().await
    }

    /// Whether another send of `announcement` than `id` is planned to go out by `until`: then a
    /// send caught up late and held until `until` would only repeat it.
    pub async fn planned_by(
        &self,
        commune: &str,
        announcement: &str,
        id: i64,
        until: Timestamp,
    ) -> sqlx::Result<bool> {
        let row = sqlx::query(
            "SELECT 1 AS one FROM occurrences
             WHERE commune_id = $1 AND announcement_id = $2 AND id <> $3
               AND state IN ('planned', 'claimed') AND send_at <= $4
             LIMIT 1",
        )
        .bind(commune)
        .bind(announcement)
        .bind(id)
        .bind(micros(until))
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.is_some())
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
            return claim_json(tx, commune, node, claim).await;
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
            return record_json(tx, commune, node, outcomes, now).await;
        }
        const COLS: usize = 7;
        let mut recorded = 0;
        for chunk in super::pow2_chunks(outcomes, 128) {
            // One statement for the chunk: each row's values joined in by id. The casts give the
            // VALUES columns their types on PostgreSQL; SQLite takes them as they are.
            let mut ph = Placeholders::new(self.dialect);
            let values = ph.rows(chunk.len(), COLS, |c| {
                matches!(c, 0 | 5 | 6).then_some("BIGINT")
            });
            let (at, by, within) = (ph.next(), ph.next(), ph.next());
            let sql = format!(
                "WITH v (id, state, message_id, code, reason, next_at, in_doubt) AS (VALUES {values})
                 UPDATE deliveries SET state = v.state, provider_message_id = COALESCE(v.message_id, deliveries.provider_message_id),
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
                    .bind(i64::from(o.in_doubt));
            }
            q = q.bind(micros(now)).bind(node).bind(commune);
            recorded += q.execute(&mut **tx).await?.rows_affected() as usize;
        }
        Ok(recorded)
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
        // Chunks claimed ahead that never went out (numbered after their node's last mark): back
        // to waiting, as if never claimed. The event log keeps the claim and the release.
        sqlx::query(
            "UPDATE deliveries SET state = CASE WHEN attempts > 1 THEN 'retrying' ELSE 'planned' END,
               attempts = attempts - 1, claimed_by = NULL, lease_until = NULL, updated_at = $3, node = $4
             WHERE commune_id = $1 AND state = 'sending' AND lease_until < $2 AND claim_chunk IS NOT NULL
               AND claim_chunk > COALESCE((SELECT w.chunk FROM wire_marks w WHERE w.node = deliveries.claimed_by), -1)",
        )
        .bind(commune)
        .bind(cutoff)
        .bind(micros(now))
        .bind(node)
        .execute(&mut *tx)
        .await?;
        let resend = sqlx::query(
            "UPDATE deliveries SET state = 'retrying', possible_duplicate = 1, next_attempt_at = $3, claimed_by = NULL,
               lease_until = NULL, updated_at = $3, node = $4, error_reason = 'in doubt: sending again (possible duplicate)'
             WHERE commune_id = $1 AND state = 'sending' AND lease_until < $2 AND urgent = 1",
        )
        .bind(commune)
        .bind(cutoff)
        .bind(micros(now))
        .bind(node)
        .execute(&mut *tx)
        .await?
        .rows_affected() as usize;
        let unknown = sqlx::query(
            "UPDATE deliveries SET state = 'unknown', error_reason = 'in doubt: the process stopped during the request',
               claimed_by = NULL, lease_until = NULL, updated_at = $3, node = $4
             WHERE commune_id = $1 AND state = 'sending' AND lease_until < $2 AND urgent = 0",
        )
        .bind(commune)
        .bind(cutoff)
        .bind(micros(now))
        .bind(node)
        .execute(&mut *tx)
        .await?
        .rows_affected() as usize;
        tx.commit().await?;
        Ok((resend, unknown))
    }

    /// Extends the lease of the deliveries of chunk `chunk` that `node` still holds, and returns
    /// their ids. A chunk claimed ahead can wait longer than its lease (behind a chunk held up by
    /// Zalo's rate-limit pause); by then another daemon may have taken its deliveries back, and
    /// only those still ours may go out.
    pub async fn renew_claim(
        &self,
        commune: &str,
        node: &str,
        chunk: i64,
        lease_until: Timestamp,
    ) -> sqlx::Result<Vec<i64>> {
        let rows = sqlx::query(
            "UPDATE deliveries SET lease_until = $4
             WHERE commune_id = $1 AND state = 'sending' AND claimed_by = $2 AND claim_chunk = $3
             RETURNING id",
        )
        .bind(commune)
        .bind(node)
        .bind(chunk)
        .bind(micros(lease_until))
        .fetch_all(&self.writer)
        .await?;
        rows.iter().map(|r| r.try_get(0)).collect()
    }

    /// Writes that the chunk numbered `chunk` is about to go out (see `Claim::chunk`). One
    /// statement, committed on its own: a transaction around it would add two round trips to the
    /// database before every chunk. The mark only moves up: two processes under one node name
    /// (`loa send --now` beside the daemon) must not move it below a chunk already on the wire,
    /// which recovery would then put back in the queue as never sent.
    pub async fn mark_on_wire(&self, node: &str, chunk: i64) -> sqlx::Result<()> {
        sqlx::query(
            "INSERT INTO wire_marks (node, chunk) VALUES ($1, $2)
             ON CONFLICT (node) DO UPDATE SET chunk = CASE WHEN excluded.chunk > wire_marks.chunk
               THEN excluded.chunk ELSE wire_marks.chunk END",
        )
        .bind(node)
        .bind(chunk)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// Planned or retrying deliveries whose deadline has passed become `expired`.
    pub async fn expire_overdue(
        &self,
        commune: &str,
        node: &str,
        now: Timestamp,
    ) -> sqlx::Result<usize> {
        let mut tx = self.write().await?;
        let n = sqlx::query(
            "UPDATE deliveries SET state = 'expired', error_reason = COALESCE(error_reason, 'deadline passed'), updated_at = $2, node = $3
             WHERE commune_id = $1 AND state IN ('planned', 'retrying') AND deadline < $2",
        )
        .bind(commune)
        .bind(micros(now))
        .bind(node)
        .execute(&mut *tx)
        .await?
        .rows_affected() as usize;
        tx.commit().await?;
        Ok(n)
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

// On SQLite every statement, and every row it returns, is a round trip between the async side
// and the connection's worker thread; a chunk of 256 claimed rows was hundreds of thread
// switches, and the sends waited for them. There the chunk travels as one JSON value each way:
// two statements for a claim, one for the outcomes, whatever their number.

/// The claimed columns, in the order `ClaimedDelivery` is read from JSON.
const CLAIMED_JSON: &str =
    "json_array(id, occurrence_id, announcement_id, village_id, target_kind, target, text, urgent,
    due, deadline, attempts, possible_duplicate, fallback, provider_message_id)";

#[derive(serde::Deserialize)]
struct ClaimedRow(
    i64,
    i64,
    String,
    Option<String>,
    String,
    String,
    String,
    i64,
    i64,
    i64,
    i64,
    i64,
    Option<String>,
    Option<String>,
);

fn decode_err(e: serde_json::Error) -> sqlx::Error {
    sqlx::Error::Decode(Box::new(e))
}

async fn claim_json(
    tx: &mut super::Tx,
    commune: &str,
    node: &str,
    claim: &Claim,
) -> sqlx::Result<Vec<ClaimedDelivery>> {
    // Inside the write transaction, so nothing can take these rows between the statements. The
    // rows are read in priority order as the index gives them, before the update (hence the
    // attempt counted here), instead of being looked up and sorted again after it.
    let rows: String = sqlx::query(&format!(
        "SELECT json_group_array({CLAIMED_JSON}) FROM (
           SELECT id, occurrence_id, announcement_id, village_id, target_kind, target, text, urgent, due, deadline,
                  attempts + 1 AS attempts, possible_duplicate, fallback, provider_message_id
           FROM deliveries
           WHERE commune_id = $1 AND state IN ('planned', 'retrying') AND next_attempt_at <= $2
             AND deadline >= $2
           ORDER BY urgent DESC, next_attempt_at, id LIMIT $3)"
    ))
    .bind(commune)
    .bind(micros(claim.now))
    .bind(claim.limit)
    .fetch_one(&mut **tx)
    .await?
    .try_get(0)?;
    if rows == "[]" {
        return Ok(Vec::new());
    }
    let rows: Vec<ClaimedRow> = serde_json::from_str(&rows).map_err(decode_err)?;
    let ids =
        serde_json::to_string(&rows.iter().map(|r| r.0).collect::<Vec<_>>()).map_err(decode_err)?;
    sqlx::query(
        "UPDATE deliveries SET state = 'sending', claimed_by = $1, node = $1, lease_until = $2, attempts = attempts + 1, updated_at = $3,
           claim_chunk = $5
         WHERE id IN (SELECT value FROM json_each($4))",
    )
    .bind(node)
    .bind(micros(claim.lease_until))
    .bind(micros(claim.now))
    .bind(&ids)
    .bind(claim.chunk)
    .execute(&mut **tx)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| ClaimedDelivery {
            id: r.0,
            occurrence_id: r.1,
            announcement_id: r.2,
            village_id: r.3,
            target_kind: r.4,
            target: r.5,
            text: r.6,
            urgent: r.7 != 0,
            due: super::from_micros(r.8),
            deadline: super::from_micros(r.9),
            attempts: r.10,
            possible_duplicate: r.11 != 0,
            fallback: r.12,
            sent_parts: r.13,
        })
        .collect())
}

async fn record_json(
    tx: &mut super::Tx,
    commune: &str,
    node: &str,
    outcomes: &[Outcome],
    now: Timestamp,
) -> sqlx::Result<usize> {
    // Most of a fan-out's answers are plain successes: those travel as one JSON object from
    // delivery id to message id, whose keys and values SQLite reads as they are. The nested
    // arrays the other outcomes need cost a text round trip and a parse for each of their
    // fields, which was a fifth of the send loop's database work.
    let (plain, other): (Vec<&Outcome>, Vec<&Outcome>) = outcomes.iter().partition(|o| {
        o.state == DeliveryState::Sent
            && o.provider_message_id.is_some()
            && o.error_code.is_none()
            && o.error_reason.is_none()
            && o.next_attempt_at.is_none()
            && !o.in_doubt
    });
    let mut recorded = 0;
    if !plain.is_empty() {
        let sent: serde_json::Map<String, serde_json::Value> = plain
            .iter()
            .map(|o| {
                (
                    o.id.to_string(),
                    serde_json::Value::from(o.provider_message_id.as_deref()),
                )
            })
            .collect();
        let sent = serde_json::to_string(&sent).map_err(decode_err)?;
        recorded += update_from_json(
            tx,
            "UPDATE deliveries SET state = 'sent', provider_message_id = v.value, error_code = NULL, error_reason = NULL,
               node = deliveries.claimed_by, claimed_by = NULL, lease_until = NULL, updated_at = $2
             FROM json_each($1) AS v WHERE deliveries.id = CAST(v.key AS INTEGER) AND deliveries.claimed_by = $3
               AND +deliveries.commune_id = $4 AND +deliveries.state = 'sending'",
            sent,
            (commune, node, now),
        )
        .await?;
    }
    if other.is_empty() {
        return Ok(recorded);
    }
    let values: Vec<_> = other
        .iter()
        .map(|o| {
            (
                o.id,
                o.state.as_str(),
                o.provider_message_id.as_deref(),
                o.error_code.as_deref(),
                o.error_reason.as_deref(),
                o.next_attempt_at.map(micros),
                i64::from(o.in_doubt),
            )
        })
        .collect();
    let values = serde_json::to_string(&values).map_err(decode_err)?;
    // The unary `+` keeps SQLite from walking the in-flight index and scanning the JSON for each
    // of its rows: it reads the JSON once and finds each row by its id.
    let done = update_from_json(
        tx,
        "WITH v AS (
           SELECT value ->> 0 AS id, value ->> 1 AS state, value ->> 2 AS message_id, value ->> 3 AS code,
                  value ->> 4 AS reason, value ->> 5 AS next_at, value ->> 6 AS in_doubt
           FROM json_each($1))
         UPDATE deliveries SET state = v.state, provider_message_id = COALESCE(v.message_id, deliveries.provider_message_id),
           error_code = v.code, error_reason = v.reason, next_attempt_at = COALESCE(v.next_at, deliveries.next_attempt_at),
           possible_duplicate = CASE WHEN v.in_doubt = 1 THEN 1 ELSE deliveries.possible_duplicate END,
           node = deliveries.claimed_by, claimed_by = NULL, lease_until = NULL, updated_at = $2
         FROM v WHERE deliveries.id = v.id AND deliveries.claimed_by = $3 AND +deliveries.commune_id = $4
           AND +deliveries.state = 'sending'",
        values,
        (commune, node, now),
    )
    .await?;
    Ok(recorded + done)
}

/// Runs one of `record_json`'s updates: `$1` the answers as JSON, `$2` the time they are recorded
/// at, `$3` the node that must still hold the rows, `$4` the commune. Returns the rows changed.
async fn update_from_json(
    tx: &mut super::Tx,
    sql: &str,
    json: String,
    (commune, node, now): (&str, &str, Timestamp),
) -> sqlx::Result<usize> {
    let done = sqlx::query(sql)
        .bind(json)
        .bind(micros(now))
        .bind(node)
        .bind(commune)
        .execute(&mut **tx)
        .await?;
    Ok(done.rows_affected() as usize)
}

/// Ends `node`'s claim on an occurrence with its final state and reason; nothing if another
/// daemon took it over meanwhile.
async fn settle_occurrence(
    tx: &mut super::Tx,
    id: i64,
    (state, reason): (OccurrenceState, Option<&str>),
    node: &str,
    now_us: i64,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE occurrences SET state = $2, reason = $3, claimed_by = NULL, lease_until = NULL, updated_at = $4
         WHERE id = $1 AND state = 'claimed' AND claimed_by = $5",
    )
    .bind(id)
    .bind(state.as_str())
    .bind(reason)
    .bind(now_us)
    .bind(node)
    .execute(&mut **tx)
    .await?;
    Ok(())
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
