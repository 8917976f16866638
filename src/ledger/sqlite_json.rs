//! The send loop's claim and record on SQLite, each as one JSON value each way.

use jiff::Timestamp;
use sqlx::Row as _;

use super::{Claim, ClaimedDelivery, DeliveryState, Outcome, micros};

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

pub(super) async fn claim_json(
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

pub(super) async fn record_json(
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
            && !o.not_an_attempt
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
                i64::from(o.not_an_attempt),
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
                  value ->> 4 AS reason, value ->> 5 AS next_at, value ->> 6 AS in_doubt,
                  value ->> 7 AS not_attempt
           FROM json_each($1))
         UPDATE deliveries SET state = v.state, provider_message_id = COALESCE(v.message_id, deliveries.provider_message_id),
           attempts = deliveries.attempts - v.not_attempt,
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
