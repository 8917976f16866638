//! Expansion: a claimed occurrence becomes one delivery per recipient (and the village heads'
//! confirmations), or is recorded as missed, failed or held; only by the daemon that still holds
//! its claim.

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
