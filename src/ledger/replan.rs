//! Re-planning what is already planned. A send is planned once and never again (`apply_plan`'s
//! same-time check), so without this step a planned send would keep the time it was first given.
//! The file's own text is covered by its revision (an edit supersedes the old revision's sends),
//! but commune.yaml is not: new quiet hours, or a new time zone, leave the file unchanged and
//! change when its sends go. Such a pass moves a planned send to its new time, and cancels those
//! the new plan no longer has (a cron time in the old zone, a send merged into another by the new
//! quiet hours), before the new ones are written.

use std::collections::HashMap;

use jiff::Timestamp;
use sqlx::Row as _;

use super::{NewOccurrence, Tx, from_micros, micros};

/// The occurrences of a change are the whole plan of these rules of this announcement for the
/// sends due in `[from, until)`.
#[derive(Clone, Debug)]
pub struct Replan {
    pub announcement_id: String,
    /// The file's rule indexes (sends by hand and follow-ups are not the file's plan).
    pub rules: Vec<i64>,
    pub from: Timestamp,
    pub until: Timestamp,
}

/// What a re-plan changed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Replanned {
    pub moved: usize,
    pub cancelled: usize,
}

/// Above this many announcements, their planned sends are read in one query.
const ONE_QUERY_ABOVE: usize = 16;

/// Moves or cancels the sends still planned ahead of `now` that `occurrences` plans otherwise.
/// Only what has not fallen due is touched: a send due already is the due loop's to decide, and
/// the window starts no earlier than `now`, so every send the new plan names is still ahead.
pub(super) async fn replan(
    tx: &mut Tx,
    commune: &str,
    replans: &[Replan],
    occurrences: &[NewOccurrence],
    now: Timestamp,
) -> sqlx::Result<Replanned> {
    let mut done = Replanned::default();
    if replans.is_empty() {
        return Ok(done);
    }
    let planned: HashMap<(&str, i64, i64), &NewOccurrence> = occurrences
        .iter()
        .map(|o| ((o.announcement_id.as_str(), o.rule, micros(o.due)), o))
        .collect();
    let by_id: HashMap<&str, &Replan> = replans
        .iter()
        .map(|r| (r.announcement_id.as_str(), r))
        .collect();
    let ahead = planned_ahead(tx, commune, replans, now).await?;
    for row in ahead {
        let Some(r) = by_id.get(row.announcement_id.as_str()) else {
            continue;
        };
        let due = from_micros(row.due);
        if due < r.from.max(now) || due >= r.until || !r.rules.contains(&row.rule) {
            continue;
        }
        match planned.get(&(row.announcement_id.as_str(), row.rule, row.due)) {
            None => {
                sqlx::query(
                    "UPDATE occurrences SET state = 'cancelled', reason = 'replanned', updated_at = $2
                     WHERE id = $1 AND state = 'planned'",
                )
                .bind(row.id)
                .bind(micros(now))
                .execute(&mut **tx)
                .await?;
                done.cancelled += 1;
            }
            Some(o) if micros(o.send_at) != row.send_at || micros(o.deadline) != row.deadline => {
                sqlx::query(
                    "UPDATE occurrences SET send_at = $2, deadline = $3, updated_at = $4
                     WHERE id = $1 AND state = 'planned'",
                )
                .bind(row.id)
                .bind(micros(o.send_at))
                .bind(micros(o.deadline))
                .bind(micros(now))
                .execute(&mut **tx)
                .await?;
                done.moved += 1;
            }
            Some(_) => {}
        }
    }
    Ok(done)
}

struct Ahead {
    id: i64,
    announcement_id: String,
    rule: i64,
    due: i64,
    send_at: i64,
    deadline: i64,
}

/// The sends of these announcements still planned after `now`: one query per announcement for a
/// file's change, one for the commune on a full load.
async fn planned_ahead(
    tx: &mut Tx,
    commune: &str,
    replans: &[Replan],
    now: Timestamp,
) -> sqlx::Result<Vec<Ahead>> {
    const COLUMNS: &str = "id, announcement_id, rule, due, send_at, deadline";
    let rows = if replans.len() > ONE_QUERY_ABOVE {
        sqlx::query(&format!(
            "SELECT {COLUMNS} FROM occurrences
             WHERE commune_id = $1 AND state = 'planned' AND send_at > $2 AND parent_id IS NULL"
        ))
        .bind(commune)
        .bind(micros(now))
        .fetch_all(&mut **tx)
        .await?
    } else {
        let mut rows = Vec::new();
        for r in replans {
            rows.extend(
                sqlx::query(&format!(
                    "SELECT {COLUMNS} FROM occurrences
                     WHERE commune_id = $1 AND announcement_id = $2 AND due >= $3 AND due < $4
                       AND state = 'planned' AND send_at > $5 AND parent_id IS NULL"
                ))
                .bind(commune)
                .bind(&r.announcement_id)
                .bind(micros(r.from.max(now)))
                .bind(micros(r.until))
                .bind(micros(now))
                .fetch_all(&mut **tx)
                .await?,
            );
        }
        rows
    };
    rows.into_iter()
        .map(|r| {
            Ok(Ahead {
                id: r.try_get(0)?,
                announcement_id: r.try_get(1)?,
                rule: r.try_get(2)?,
                due: r.try_get(3)?,
                send_at: r.try_get(4)?,
                deadline: r.try_get(5)?,
            })
        })
        .collect()
}
