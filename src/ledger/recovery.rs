//! Claims that outlive their daemon: deliveries left in flight by a node that died, leases
//! renewed while a chunk waits, the wire mark that tells a chunk that left from one claimed ahead,
//! deliveries past their deadline, and those that waited for the operator to mend the OA.

use jiff::Timestamp;
use sqlx::Row as _;

use super::{Store, micros};

impl Store {
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

    /// The deliveries that wait for the operator to mend the OA (`-204` disabled, `-242` a
    /// wrong app secret, `-216` no token to be had) are due now: at start, since a restart is how
    /// a corrected app secret is put in. Those refused now are due again at once anyway (a paused
    /// channel's daemon claims nothing: `Channel::paused_until`); this brings forward those an
    /// earlier version put off to its next probe, up to 10 minutes away. Returns how many.
    pub async fn wake_after_oa_refusal(&self, commune: &str, now: Timestamp) -> sqlx::Result<u64> {
        Ok(sqlx::query(
            "UPDATE deliveries SET next_attempt_at = $2, updated_at = $2
             WHERE commune_id = $1 AND state = 'retrying' AND error_code IN ('-204', '-242', '-216')
               AND next_attempt_at > $2",
        )
        .bind(commune)
        .bind(micros(now))
        .execute(&self.writer)
        .await?
        .rows_affected())
    }

    /// The code one of the deliveries that wait for the operator to mend the OA was refused
    /// with, if any wait: the channel then starts by probing (`halt.rs`).
    pub async fn waiting_for_the_operator(&self, commune: &str) -> sqlx::Result<Option<String>> {
        sqlx::query_scalar(
            "SELECT error_code FROM deliveries
             WHERE commune_id = $1 AND state = 'retrying' AND error_code IN ('-204', '-242', '-216')
             LIMIT 1",
        )
        .bind(commune)
        .fetch_optional(&self.writer)
        .await
    }
}
