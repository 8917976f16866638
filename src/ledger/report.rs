//! What a send reached, read from the ledger: per send, per village and in total. `loa report`
//! and the dashboard both call these functions, so their numbers are always the same.
//!
//! A *send* is a normal occurrence (no `parent_id`, `rule >= 0`) that expanded or was missed.
//! Reminders and escalations (`rule -1`, `-2`), and the message sent to heads whose village group
//! Zalo refused (`rule -3`), are shown under the send they follow up.
//!
//! Counts are cumulative, because a delivery only moves forward: `sent` counts every delivery that
//! reached at least `sent` (sent + delivered + seen + confirmed), `delivered` = delivered + seen +
//! confirmed, `seen` = seen + confirmed. The rest partition what never went out: `failed`,
//! `pending` (planned, sending, retrying), `expired`, `missed`, `unknown`; so `targeted = sent +
//! failed + pending + expired + missed + unknown`. Village heads' confirmations come from
//! `confirmations`: `heads_confirmed` of `heads_asked`.

mod counts;
mod people;
mod timeline;
pub mod words;

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::Serialize;
use sqlx::Row as _;
use sqlx::any::AnyRow;

use super::{Store, from_micros, micros};

pub use counts::{Counts, Failure};
pub use people::{Inbound, PersonRow, Upcoming};
pub use timeline::{ReachPoint, Timeline};

/// Which sends a report covers.
#[derive(Clone, Debug, Default)]
pub struct Selection {
    /// Only this announcement.
    pub announcement: Option<String>,
    /// Sends whose time is at or after this.
    pub since: Option<Timestamp>,
    /// Sends whose time is before this.
    pub until: Option<Timestamp>,
    /// Only this send (occurrence id).
    pub send: Option<i64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct VillageCounts {
    /// None: followers outside any village.
    pub village_id: Option<String>,
    #[serde(flatten)]
    pub counts: Counts,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FollowUpKind {
    Reminder,
    Escalation,
    /// The message itself, to heads asked to confirm it whose village group Zalo refused.
    Direct,
}

impl FollowUpKind {
    fn from_rule(rule: i64) -> Option<FollowUpKind> {
        match rule {
            -1 => Some(FollowUpKind::Reminder),
            -2 => Some(FollowUpKind::Escalation),
            super::follow_ups::DIRECT_RULE => Some(FollowUpKind::Direct),
            _ => None,
        }
    }
}

/// A reminder, escalation or direct message of one send.
#[derive(Clone, Debug, Serialize)]
pub struct FollowUp {
    pub id: i64,
    pub kind: FollowUpKind,
    pub send_at: Timestamp,
    pub state: String,
    pub total: Counts,
}

/// One head asked to confirm one send.
#[derive(Clone, Debug, Serialize)]
pub struct ConfirmationRow {
    pub village_id: String,
    pub person: String,
    pub user_id: Option<String>,
    pub phone: Option<String>,
    /// `pending` or `confirmed`.
    pub state: String,
    pub requested_at: Timestamp,
    pub due_at: Timestamp,
    pub confirmed_at: Option<Timestamp>,
    /// `reply` or `link`.
    pub via: Option<String>,
    pub reminded_at: Option<Timestamp>,
    pub escalated_at: Option<Timestamp>,
}

#[derive(Clone, Debug, Serialize)]
pub struct SendReport {
    pub id: i64,
    pub announcement_id: String,
    pub rule: i64,
    pub due: Timestamp,
    pub send_at: Timestamp,
    /// `expanded` or `missed`.
    pub state: String,
    pub urgent: bool,
    /// Why it was missed, when it was.
    pub reason: Option<String>,
    pub total: Counts,
    pub villages: Vec<VillageCounts>,
    pub confirmations: Vec<ConfirmationRow>,
    pub follow_ups: Vec<FollowUp>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// Newest send first.
    pub sends: Vec<SendReport>,
    pub total: Counts,
}

/// The sends a selection names, as a condition on `occurrences` aliased `s`. Binds: $1 commune,
/// $2 since, $3 until, $4 announcement ('' for any), $5 send id (0 for any).
const SENDS: &str = "s.commune_id = $1 AND s.parent_id IS NULL AND s.rule >= 0
    AND s.state IN ('expanded', 'missed') AND s.send_at >= $2 AND s.send_at < $3
    AND ($4 = '' OR s.announcement_id = $4) AND ($5 = 0 OR s.id = $5)";

/// Binds a selection's five parameters to a query using `SENDS`.
fn bind<'q>(
    q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    commune: &str,
    sel: &Selection,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    q.bind(commune.to_string())
        .bind(sel.since.map_or(i64::MIN, micros))
        .bind(sel.until.map_or(i64::MAX, micros))
        .bind(sel.announcement.clone().unwrap_or_default())
        .bind(sel.send.unwrap_or(0))
}

fn time(r: &AnyRow, col: &str) -> sqlx::Result<Timestamp> {
    Ok(from_micros(r.try_get(col)?))
}

fn opt_time(r: &AnyRow, col: &str) -> sqlx::Result<Option<Timestamp>> {
    Ok(r.try_get::<Option<i64>, _>(col)?.map(from_micros))
}

impl Store {
    /// Every selected send with its reach per village, confirmations and follow-ups.
    pub async fn report(&self, commune: &str, sel: &Selection) -> sqlx::Result<Report> {
        let sql = format!(
            "SELECT s.id, s.announcement_id, s.rule, s.due, s.send_at, s.state, s.urgent, s.reason
             FROM occurrences s WHERE {SENDS} ORDER BY s.send_at DESC, s.id DESC"
        );
        let mut sends = Vec::new();
        for r in bind(sqlx::query(&sql), commune, sel)
            .fetch_all(&self.pool)
            .await?
        {
            sends.push(SendReport {
                id: r.try_get("id")?,
                announcement_id: r.try_get("announcement_id")?,
                rule: r.try_get("rule")?,
                due: time(&r, "due")?,
                send_at: time(&r, "send_at")?,
                state: r.try_get("state")?,
                urgent: r.try_get::<i64, _>("urgent")? != 0,
                reason: r.try_get("reason")?,
                total: Counts::default(),
                villages: Vec::new(),
                confirmations: Vec::new(),
                follow_ups: Vec::new(),
            });
        }
        let mut villages = self.village_counts(commune, sel).await?;
        let mut confirmations = self.confirmation_rows(commune, sel).await?;
        let mut follow_ups = self.follow_ups(commune, sel).await?;
        let mut total = Counts::default();
        for send in &mut sends {
            let per_village = villages.remove(&send.id).unwrap_or_default();
            send.villages = per_village
                .into_iter()
                .map(|(village_id, mut counts)| {
                    counts.sort();
                    VillageCounts { village_id, counts }
                })
                .collect();
            for v in &send.villages {
                send.total.merge(&v.counts);
            }
            send.total.sort();
            send.confirmations = confirmations.remove(&send.id).unwrap_or_default();
            send.follow_ups = follow_ups.remove(&send.id).unwrap_or_default();
            total.merge(&send.total);
        }
        total.sort();
        Ok(Report { sends, total })
    }

    /// Per send, per village: the delivery counts and the heads asked and confirmed.
    async fn village_counts(
        &self,
        commune: &str,
        sel: &Selection,
    ) -> sqlx::Result<BTreeMap<i64, BTreeMap<Option<String>, Counts>>> {
        let mut out: BTreeMap<i64, BTreeMap<Option<String>, Counts>> = BTreeMap::new();
        let sql = format!(
            "SELECT d.occurrence_id, d.village_id, d.state, d.error_code, MIN(d.error_reason) AS reason, COUNT(*) AS n
             FROM deliveries d WHERE d.occurrence_id IN (SELECT s.id FROM occurrences s WHERE {SENDS})
             GROUP BY d.occurrence_id, d.village_id, d.state, d.error_code"
        );
        for r in bind(sqlx::query(&sql), commune, sel)
            .fetch_all(&self.pool)
            .await?
        {
            let state: String = r.try_get("state")?;
            let code: Option<String> = r.try_get("error_code")?;
            let reason: Option<String> = r.try_get("reason")?;
            out.entry(r.try_get("occurrence_id")?)
                .or_default()
                .entry(r.try_get("village_id")?)
                .or_default()
                .add(&state, code.as_deref(), reason.as_deref(), r.try_get("n")?);
        }
        let sql = format!(
            "SELECT c.occurrence_id, c.village_id, COUNT(*) AS asked,
                    SUM(CASE WHEN c.state = 'confirmed' THEN 1 ELSE 0 END) AS confirmed
             FROM confirmations c WHERE c.occurrence_id IN (SELECT s.id FROM occurrences s WHERE {SENDS})
             GROUP BY c.occurrence_id, c.village_id"
        );
        for r in bind(sqlx::query(&sql), commune, sel)
            .fetch_all(&self.pool)
            .await?
        {
            let village: String = r.try_get("village_id")?;
            let counts = out
                .entry(r.try_get("occurrence_id")?)
                .or_default()
                .entry(Some(village))
                .or_default();
            counts.heads_asked += r.try_get::<i64, _>("asked")?;
            counts.heads_confirmed += r.try_get::<Option<i64>, _>("confirmed")?.unwrap_or(0);
        }
        Ok(out)
    }

    async fn confirmation_rows(
        &self,
        commune: &str,
        sel: &Selection,
    ) -> sqlx::Result<BTreeMap<i64, Vec<ConfirmationRow>>> {
        let sql = format!(
            "SELECT c.occurrence_id, c.village_id, c.person, c.user_id, c.phone, c.state, c.requested_at,
                    c.due_at, c.confirmed_at, c.via, c.reminded_at, c.escalated_at
             FROM confirmations c WHERE c.occurrence_id IN (SELECT s.id FROM occurrences s WHERE {SENDS})
             ORDER BY c.village_id, c.person, c.id"
        );
        let mut out: BTreeMap<i64, Vec<ConfirmationRow>> = BTreeMap::new();
        for r in bind(sqlx::query(&sql), commune, sel)
            .fetch_all(&self.pool)
            .await?
        {
            out.entry(r.try_get("occurrence_id")?)
                .or_default()
                .push(ConfirmationRow {
                    village_id: r.try_get("village_id")?,
                    person: r.try_get("person")?,
                    user_id: r.try_get("user_id")?,
                    phone: r.try_get("phone")?,
                    state: r.try_get("state")?,
                    requested_at: time(&r, "requested_at")?,
                    due_at: time(&r, "due_at")?,
                    confirmed_at: opt_time(&r, "confirmed_at")?,
                    via: r.try_get("via")?,
                    reminded_at: opt_time(&r, "reminded_at")?,
                    escalated_at: opt_time(&r, "escalated_at")?,
                });
        }
        Ok(out)
    }

    /// The reminders and escalations of the selected sends, with their own delivery counts.
    async fn follow_ups(
        &self,
        commune: &str,
        sel: &Selection,
    ) -> sqlx::Result<BTreeMap<i64, Vec<FollowUp>>> {
        let sql = format!(
            "SELECT f.id, f.parent_id, f.rule, f.send_at, f.state, d.state AS dstate, d.error_code,
                    MIN(d.error_reason) AS reason, COUNT(d.id) AS n
             FROM occurrences f LEFT JOIN deliveries d ON d.occurrence_id = f.id
             WHERE f.parent_id IN (SELECT s.id FROM occurrences s WHERE {SENDS})
             GROUP BY f.id, f.parent_id, f.rule, f.send_at, f.state, d.state, d.error_code
             ORDER BY f.send_at, f.id"
        );
        let mut out: BTreeMap<i64, Vec<FollowUp>> = BTreeMap::new();
        for r in bind(sqlx::query(&sql), commune, sel)
            .fetch_all(&self.pool)
            .await?
        {
            let Some(kind) = FollowUpKind::from_rule(r.try_get("rule")?) else {
                continue;
            };
            let id: i64 = r.try_get("id")?;
            let list = out.entry(r.try_get("parent_id")?).or_default();
            if list.last().is_none_or(|f| f.id != id) {
                list.push(FollowUp {
                    id,
                    kind,
                    send_at: time(&r, "send_at")?,
                    state: r.try_get("state")?,
                    total: Counts::default(),
                });
            }
            if let (Some(f), Some(state)) =
                (list.last_mut(), r.try_get::<Option<String>, _>("dstate")?)
            {
                let code: Option<String> = r.try_get("error_code")?;
                let reason: Option<String> = r.try_get("reason")?;
                f.total
                    .add(&state, code.as_deref(), reason.as_deref(), r.try_get("n")?);
            }
        }
        Ok(out)
    }
}
