//! Reach over time after one send: how many of its deliveries had reached `sent`, `delivered` and
//! `seen` at each moment (from `delivery_events`, with the same cumulative reading as the counts),
//! and how many heads had confirmed (from `confirmations`). The last point equals the report.

use jiff::Timestamp;
use serde::Serialize;
use sqlx::Row as _;

use crate::ledger::{Store, from_micros};

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ReachPoint {
    pub at: Timestamp,
    pub sent: i64,
    pub delivered: i64,
    pub seen: i64,
    pub confirmed: i64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Timeline {
    pub send_at: Timestamp,
    pub targeted: i64,
    pub heads_asked: i64,
    /// One point per moment something changed, in time order.
    pub points: Vec<ReachPoint>,
}

/// The level a delivery state stands for: 1 sent, 2 delivered, 3 seen, 4 confirmed.
fn level(state: &str) -> usize {
    match state {
        "sent" => 1,
        "delivered" => 2,
        "seen" => 3,
        "confirmed" => 4,
        _ => 0,
    }
}

impl Store {
    pub async fn timeline(&self, commune: &str, send: i64) -> sqlx::Result<Option<Timeline>> {
        let Some(head) = sqlx::query(
            "SELECT o.send_at, (SELECT COUNT(*) FROM deliveries d WHERE d.occurrence_id = o.id) AS targeted,
                    (SELECT COUNT(*) FROM confirmations c WHERE c.occurrence_id = o.id) AS asked
             FROM occurrences o WHERE o.commune_id = $1 AND o.id = $2",
        )
        .bind(commune)
        .bind(send)
        .fetch_optional(&self.pool)
        .await?
        else {
            return Ok(None);
        };
        // The first time each delivery entered each state; a delivery reached level L at the
        // earliest time it entered any state of level L or above.
        let rows = sqlx::query(
            "SELECT e.delivery_id, e.state, MIN(e.at) AS at FROM delivery_events e
             WHERE e.occurrence_id = $1 AND e.state IN ('sent', 'delivered', 'seen', 'confirmed')
             GROUP BY e.delivery_id, e.state ORDER BY e.delivery_id",
        )
        .bind(send)
        .fetch_all(&self.pool)
        .await?;
        // (time, level index 0..3, +1)
        let mut steps: Vec<(i64, usize)> = Vec::new();
        let mut current: Option<(i64, [Option<i64>; 3])> = None;
        let flush = |c: Option<(i64, [Option<i64>; 3])>, steps: &mut Vec<(i64, usize)>| {
            if let Some((_, reached)) = c {
                for (i, at) in reached.iter().enumerate() {
                    if let Some(at) = at {
                        steps.push((*at, i));
                    }
                }
            }
        };
        for r in &rows {
            let id: i64 = r.try_get("delivery_id")?;
            let state: String = r.try_get("state")?;
            let at: i64 = r.try_get("at")?;
            if current.is_none_or(|(cur, _)| cur != id) {
                flush(current.take(), &mut steps);
                current = Some((id, [None; 3]));
            }
            if let Some((_, reached)) = current.as_mut() {
                for slot in reached.iter_mut().take(level(&state).min(3)) {
                    *slot = Some(slot.map_or(at, |t| t.min(at)));
                }
            }
        }
        flush(current, &mut steps);
        let confirmed = sqlx::query(
            "SELECT confirmed_at FROM confirmations WHERE occurrence_id = $1 AND confirmed_at IS NOT NULL",
        )
        .bind(send)
        .fetch_all(&self.pool)
        .await?;
        for r in &confirmed {
            steps.push((r.try_get("confirmed_at")?, 3));
        }
        steps.sort_unstable();
        let mut points: Vec<ReachPoint> = Vec::new();
        let mut now = [0i64; 4];
        for (at, i) in steps {
            now[i] += 1;
            let point = ReachPoint {
                at: from_micros(at),
                sent: now[0],
                delivered: now[1],
                seen: now[2],
                confirmed: now[3],
            };
            match points.last_mut() {
                Some(last) if last.at == point.at => *last = point,
                _ => points.push(point),
            }
        }
        Ok(Some(Timeline {
            send_at: from_micros(head.try_get("send_at")?),
            targeted: head.try_get("targeted")?,
            heads_asked: head.try_get("asked")?,
            points,
        }))
    }
}
