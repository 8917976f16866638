//! What Zalo's webhooks tell: the events as received (deduplicated, kept raw, applied once), and
//! the receipts that move a sent delivery to delivered and seen. What people wrote is in `replies`.

use jiff::Timestamp;
use sqlx::Row as _;

use super::{Store, micros};

/// A receipt's new state, and the states it may move a delivery from: receipts only move forward,
/// so a late or reordered `user_received_message` never undoes a `seen`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Receipt {
    Delivered,
    Seen,
}

impl Receipt {
    fn state(self) -> &'static str {
        match self {
            Receipt::Delivered => "delivered",
            Receipt::Seen => "seen",
        }
    }

    fn earlier_states(self) -> &'static str {
        match self {
            Receipt::Delivered => "'sent'",
            Receipt::Seen => "'sent', 'delivered'",
        }
    }
}

/// Which deliveries a receipt names.
#[derive(Clone, Copy)]
enum Which<'a> {
    /// Zalo's message id, and the person the event names as its recipient.
    Message(&'a str, Option<&'a str>),
    /// Our delivery id (from a ZNS tracking id).
    Delivery(i64),
}

/// A webhook event received and not yet applied.
#[derive(Clone, Debug)]
pub struct PendingEvent {
    pub id: i64,
    pub body: String,
    pub received_at: Timestamp,
}

/// How far back a receipt's send is looked for. Zalo retries a webhook for about an hour; a
/// message read a month after it was sent no longer tells anyone anything.
const RECEIPT_WINDOW: jiff::SignedDuration = jiff::SignedDuration::from_hours(30 * 24);

impl Store {
    /// Keeps a webhook event. None when the same event (by key) was received before: Zalo
    /// retries, and a retry must change nothing.
    pub async fn store_webhook(
        &self,
        commune: &str,
        key: &str,
        name: &str,
        body: &str,
        now: Timestamp,
    ) -> sqlx::Result<Option<i64>> {
        let mut tx = self.write().await?;
        let row = sqlx::query(
            "INSERT INTO webhook_events (commune_id, event_key, event_name, body, received_at)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (commune_id, event_key) DO NOTHING RETURNING id",
        )
        .bind(commune)
        .bind(key)
        .bind(name)
        .bind(body)
        .bind(micros(now))
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        row.map(|r| r.try_get::<i64, _>("id")).transpose()
    }

    /// Claims events received but not yet applied (after a crash, or queued), oldest first,
    /// without those put off until after `now`: each is held until `lease_until` (`retry_at`), so
    /// daemons sharing the database apply disjoint events and a head is confirmed and thanked
    /// once. Finishing or deferring an event ends its hold; a daemon that dies holding some leaves
    /// them to whoever claims after the lease.
    pub async fn claim_webhooks(
        &self,
        commune: &str,
        limit: i64,
        now: Timestamp,
        lease_until: Timestamp,
    ) -> sqlx::Result<Vec<PendingEvent>> {
        let sql = format!(
            "UPDATE webhook_events SET retry_at = $4
             WHERE id IN (
               SELECT id FROM webhook_events
               WHERE commune_id = $1 AND processed_at IS NULL AND (retry_at IS NULL OR retry_at <= $3)
               ORDER BY id LIMIT $2 {})
             RETURNING id, body, received_at",
            self.skip_locked()
        );
        let mut tx = self.write().await?;
        let rows = sqlx::query(&sql)
            .bind(commune)
            .bind(limit)
            .bind(micros(now))
            .bind(micros(lease_until))
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        let mut events = rows
            .into_iter()
            .map(|r| {
                Ok(PendingEvent {
                    id: r.try_get("id")?,
                    body: r.try_get("body")?,
                    received_at: super::from_micros(r.try_get("received_at")?),
                })
            })
            .collect::<sqlx::Result<Vec<_>>>()?;
        events.sort_unstable_by_key(|e| e.id);
        Ok(events)
    }

    /// Makes every unapplied event of the commune due now: at the start of the one daemon a
    /// SQLite file serves, the events a crashed run held are nobody's, and waiting out their hold
    /// would apply heads' replies minutes late. Events put off for a reason are only tried early.
    pub async fn release_webhook_claims(&self, commune: &str) -> sqlx::Result<u64> {
        let mut tx = self.write().await?;
        let n = sqlx::query(
            "UPDATE webhook_events SET retry_at = NULL
             WHERE commune_id = $1 AND processed_at IS NULL AND retry_at IS NOT NULL",
        )
        .bind(commune)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(n)
    }

    /// Puts an event off until `retry_at`, with what applying it found so far.
    pub async fn defer_webhook(
        &self,
        id: i64,
        retry_at: Timestamp,
        outcome: &str,
    ) -> sqlx::Result<()> {
        let mut tx = self.write().await?;
        sqlx::query("UPDATE webhook_events SET retry_at = $2, outcome = $3 WHERE id = $1")
            .bind(id)
            .bind(micros(retry_at))
            .bind(outcome)
            .execute(&mut *tx)
            .await?;
        tx.commit().await
    }

    /// Whether a receipt that moved nothing may have come before its send's outcome was written:
    /// the delivery it names (a ZNS tracking id), or one of the person's recent deliveries or a
    /// village group's (a group's receipt names a member), is still being sent.
    pub async fn receipt_may_be_early(
        &self,
        commune: &str,
        recipient: Option<&str>,
        delivery: Option<i64>,
        now: Timestamp,
    ) -> sqlx::Result<bool> {
        let row = match delivery {
            Some(id) => {
                sqlx::query(
                    "SELECT 1 AS one FROM deliveries WHERE id = $2 AND commune_id = $1 AND state = 'sending'",
                )
                .bind(commune)
                .bind(id)
                .fetch_optional(&self.pool)
                .await?
            }
            None => {
                sqlx::query(
                    "SELECT 1 AS one FROM deliveries g
                     WHERE g.commune_id = $1 AND g.state = 'sending' AND g.target_kind = 'group'
                     UNION ALL
                     SELECT 1 FROM occurrences o JOIN deliveries d
                       ON d.occurrence_id = o.id AND d.target_kind IN ('user', 'phone') AND d.target = $2
                     WHERE o.commune_id = $1 AND o.state = 'expanded' AND o.send_at >= CAST($3 AS BIGINT) AND d.state = 'sending'
                     LIMIT 1",
                )
                .bind(commune)
                .bind(recipient)
                .bind(micros(now - RECEIPT_WINDOW))
                .fetch_optional(&self.pool)
                .await?
            }
        };
        Ok(row.is_some())
    }

    pub async fn finish_webhook(&self, id: i64, outcome: &str, now: Timestamp) -> sqlx::Result<()> {
        let mut tx = self.write().await?;
        sqlx::query("UPDATE webhook_events SET processed_at = $2, outcome = $3 WHERE id = $1")
            .bind(id)
            .bind(micros(now))
            .bind(outcome)
            .execute(&mut *tx)
            .await?;
        tx.commit().await
    }

    /// Moves the deliveries Zalo sent as `message_id` forward to `receipt`. A text sent in parts
    /// stores its ids comma-separated; a receipt for its first part counts for the message.
    /// `recipient` is the person the event names: their own deliveries are found through each
    /// recent send's (occurrence, kind, target) index; a village group's by the message id alone.
    pub async fn apply_receipt(
        &self,
        commune: &str,
        message_id: &str,
        recipient: Option<&str>,
        receipt: Receipt,
        now: Timestamp,
    ) -> sqlx::Result<u64> {
        self.move_forward(commune, Which::Message(message_id, recipient), receipt, now)
            .await
    }

    /// A receipt for a ZNS message, which names our own tracking id (`loa-<delivery>-<part>`).
    pub async fn apply_receipt_by_delivery(
        &self,
        commune: &str,
        delivery_id: i64,
        receipt: Receipt,
        now: Timestamp,
    ) -> sqlx::Result<u64> {
        self.move_forward(commune, Which::Delivery(delivery_id), receipt, now)
            .await
    }

    async fn move_forward(
        &self,
        commune: &str,
        which: Which<'_>,
        receipt: Receipt,
        now: Timestamp,
    ) -> sqlx::Result<u64> {
        // `,` and `-` are adjacent bytes: the range is every id list starting "<id>,". Compared
        // byte by byte: PostgreSQL's usual collations (en_US, ICU) order punctuation otherwise,
        // and the range would be empty there. SQLite compares bytes already.
        let bytes = match self.dialect {
            super::Dialect::Sqlite => "",
            _ => r#" COLLATE "C""#,
        };
        let names = |t: &str| {
            format!(
                "({t}.provider_message_id = $4 OR ({t}.provider_message_id{bytes} >= $4 || ',' AND {t}.provider_message_id{bytes} < $4 || '-'))"
            )
        };
        let (matching, key, recipient) = match which {
            Which::Message(id, recipient) => (
                format!(
                    "id IN (
                       SELECT d.id FROM occurrences o JOIN deliveries d
                         ON d.occurrence_id = o.id AND d.target_kind IN ('user', 'phone') AND d.target = $5
                       WHERE o.commune_id = $1 AND o.state = 'expanded' AND o.send_at >= CAST($6 AS BIGINT) AND {}
                       UNION ALL
                       SELECT g.id FROM deliveries g
                       WHERE g.target_kind = 'group' AND g.provider_message_id IS NOT NULL AND g.commune_id = $1 AND {})",
                    names("d"),
                    names("g")
                ),
                id.to_string(),
                recipient,
            ),
            Which::Delivery(id) => ("id = CAST($4 AS BIGINT)".to_string(), id.to_string(), None),
        };
        let sql = format!(
            "UPDATE deliveries SET state = $2, updated_at = $3
             WHERE commune_id = $1 AND state IN ({}) AND {matching}",
            receipt.earlier_states()
        );
        let mut tx = self.write().await?;
        let query = sqlx::query(&sql)
            .bind(commune)
            .bind(receipt.state())
            .bind(micros(now))
            .bind(key);
        let query = if matches!(which, Which::Message(..)) {
            query.bind(recipient).bind(micros(now - RECEIPT_WINDOW))
        } else {
            query
        };
        let done = query.execute(&mut *tx).await?.rows_affected();
        tx.commit().await?;
        Ok(done)
    }
}
