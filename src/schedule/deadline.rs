//! Deadlines: how late an occurrence may still go out after downtime (Kubernetes CronJob's
//! `startingDeadlineSeconds`, per announcement). Past it, the occurrence is recorded as missed,
//! never sent: yesterday's storm warning must not go out today, and a meeting reminder is worthless
//! once the meeting has started.

use jiff::{SignedDuration, Timestamp};

use super::Trigger;
use crate::announce::model::{Announcement, Kind};

const DAY: SignedDuration = SignedDuration::from_hours(24);

/// Every send may go out this long after its time, whatever its deadline: a running daemon finds
/// a send a moment after it is due, and a meeting notice at the meeting's very start (or a send
/// at the expiry) is on time then, not missed.
const ON_TIME: SignedDuration = SignedDuration::from_mins(1);

/// The latest time an occurrence sent at `send_at` may still go out.
pub fn deadline(ann: &Announcement, trigger: &Trigger, send_at: Timestamp) -> Timestamp {
    let event_start = ann.event.as_ref().map(|e| e.starts);
    let by_kind = match (ann.catch_up, ann.kind, trigger) {
        (Some(d), _, _) => send_at.checked_add(d).ok(),
        // A warning stays true until it expires (storm warnings must have `expires`).
        (None, Kind::StormWarning, _) => ann.expires.or(send_at.checked_add(DAY).ok()),
        // Reminders and meeting notices are worthless once the event starts.
        (None, _, Trigger::BeforeEvent { .. }) | (None, Kind::Meeting, _)
            if event_start.is_some() =>
        {
            event_start
        }
        (None, Kind::Meeting, _) => send_at.checked_add(SignedDuration::from_hours(12)).ok(),
        (None, _, _) => send_at.checked_add(DAY).ok(),
    };
    let mut deadline = by_kind.unwrap_or(send_at);
    if let Some(e) = ann.expires {
        deadline = deadline.min(e);
    }
    if let (Trigger::BeforeEvent { .. }, Some(start)) = (trigger, event_start) {
        deadline = deadline.min(start);
    }
    deadline.max(send_at.checked_add(ON_TIME).unwrap_or(send_at))
}
