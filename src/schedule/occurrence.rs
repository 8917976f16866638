//! Occurrences: one-shot times, cron times and event reminders, with quiet hours, expiry, past
//! times and same-time duplicates applied, in that order.

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use super::quiet::quiet_end;
use crate::announce::model::{Announcement, Commune, RuleKind};

/// A half-open time window `[start, end)`.
#[derive(Clone, Copy, Debug)]
pub struct Window {
    pub start: Timestamp,
    pub end: Timestamp,
}

impl Window {
    pub fn contains(&self, t: Timestamp) -> bool {
        self.start <= t && t < self.end
    }
}

/// What produced an occurrence.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Trigger {
    Once,
    Cron { expr: String },
    BeforeEvent { offset: String },
}

/// What happens to an occurrence.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Fate {
    /// Sent at its due time.
    Send,
    /// Due inside quiet hours: sent when they end (`send_at`).
    MovedQuietHours,
    /// Due (or moved to) after the announcement's expiry: not sent.
    AfterExpiry,
    /// Due before now: not sent by this plan.
    Past,
    /// Would go out at the same moment as an earlier occurrence of the same announcement (often
    /// several night-time sends moved to the end of quiet hours): sent once, not twice.
    Merged,
    /// A reminder before the event that quiet hours would hold until the event has started (a
    /// 1-hour reminder at 04:30 for a 05:30 start, held to 06:00): a reminder of something
    /// already under way is not sent.
    AfterEventStart,
}

impl Fate {
    pub fn is_sent(&self) -> bool {
        matches!(self, Fate::Send | Fate::MovedQuietHours)
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Occurrence {
    pub announcement: String,
    /// Index of the send rule in the file.
    pub rule: usize,
    pub trigger: Trigger,
    /// The time the rule names.
    pub due: Timestamp,
    /// When it actually goes out (after quiet hours); equal to `due` unless moved.
    pub send_at: Timestamp,
    pub fate: Fate,
}

/// How far before a window to look for sends that quiet hours hold into it: quiet hours are
/// shorter than a day.
const HELD_LOOKBACK: SignedDuration = SignedDuration::from_hours(24);

/// The sends of one announcement whose due time lies in `window`, in time order, and those due
/// before it that quiet hours hold until inside it. The latter are looked for so that a window
/// starting in the night (a reload, an edit, the next day's planning) gives the same one morning
/// send as the plan made before the night: otherwise its first send in the night would be a
/// second morning send, and an edit would drop the send held from before it. Reminders whose
/// time has already passed (before `now` and before the window) are listed too, as `Past`, as
/// long as their event is still ahead: the people who wrote the file need to see that they won't
/// go out.
pub fn occurrences(
    ann: &Announcement,
    commune: &Commune,
    window: Window,
    now: Timestamp,
) -> Vec<Occurrence> {
    let search = Window {
        start: window
            .start
            .checked_sub(HELD_LOOKBACK)
            .unwrap_or(window.start),
        end: window.end,
    };
    // Each with whether it belongs to the window itself (or is a passed reminder to show).
    let mut out: Vec<(Occurrence, bool)> = Vec::new();
    let mut push = |rule: usize, trigger: Trigger, due: Timestamp, listed: bool| {
        out.push((fate(ann, commune, rule, trigger, due, now), listed));
    };
    for rule in &ann.rules {
        match &rule.kind {
            RuleKind::Once { at } => {
                if search.contains(*at) {
                    push(rule.index, Trigger::Once, *at, window.contains(*at));
                }
            }
            RuleKind::Cron { expr, from, until } => {
                let start = from.map_or(search.start, |f| f.max(search.start));
                let trigger = Trigger::Cron {
                    expr: expr.source.clone(),
                };
                for t in expr.cron.iter_from(
                    start.to_zoned(commune.tz.clone()),
                    croner::Direction::Forward,
                ) {
                    let t = t.timestamp();
                    if t >= window.end || until.is_some_and(|u| t > u) {
                        break;
                    }
                    push(rule.index, trigger.clone(), t, window.contains(t));
                    // One dropped occurrence says it all; the rest would only repeat it.
                    if ann.expires.is_some_and(|e| t > e) {
                        break;
                    }
                }
            }
            RuleKind::BeforeEvent { offsets } => {
                let Some(event) = &ann.event else { continue };
                for offset in offsets {
                    let Ok(t) = event.starts.checked_sub(*offset) else {
                        continue;
                    };
                    let passed_unseen = t < window.start && t < now && event.starts >= window.start;
                    if search.contains(t) || passed_unseen {
                        let offset = crate::announce::values::format_duration(*offset);
                        let listed = window.contains(t) || passed_unseen;
                        push(rule.index, Trigger::BeforeEvent { offset }, t, listed);
                    }
                }
            }
        }
    }
    out.sort_by_key(|(a, _)| (a.send_at, a.due, a.rule));
    let (mut all, listed): (Vec<Occurrence>, Vec<bool>) = out.into_iter().unzip();
    // Merged with the sends held from before the window, then those left out unless held into it.
    merge_same_time(&mut all);
    all.into_iter()
        .zip(listed)
        .filter(|(o, listed)| {
            *listed || (o.fate == Fate::MovedQuietHours && o.send_at >= window.start)
        })
        .map(|(o, _)| o)
        .collect()
}

fn fate(
    ann: &Announcement,
    commune: &Commune,
    rule: usize,
    trigger: Trigger,
    due: Timestamp,
    now: Timestamp,
) -> Occurrence {
    let expired = |t: Timestamp| ann.expires.is_some_and(|e| t > e);
    let moved = match (&commune.quiet_hours, ann.is_urgent()) {
        (Some(q), false) => quiet_end(q, due, &commune.tz),
        _ => None,
    };
    let send_at = moved.unwrap_or(due);
    // A night-time send moved to 06:00 is still ahead at 05:00: what counts is when it goes out.
    let fate = if send_at < now {
        Fate::Past
    } else if expired(send_at) {
        Fate::AfterExpiry
    } else if moved.is_some()
        && matches!(trigger, Trigger::BeforeEvent { .. })
        && ann.event.as_ref().is_some_and(|e| send_at >= e.starts)
    {
        Fate::AfterEventStart
    } else if moved.is_some() {
        Fate::MovedQuietHours
    } else {
        Fate::Send
    };
    Occurrence {
        announcement: ann.id.clone(),
        rule,
        trigger,
        due,
        send_at,
        fate,
    }
}

/// Occurrences of one announcement that would go out at the same instant (or within a minute)
/// are sent once: the later ones are marked `Merged`.
fn merge_same_time(out: &mut [Occurrence]) {
    let mut last_sent: Option<Timestamp> = None;
    for o in out.iter_mut() {
        if !o.fate.is_sent() {
            continue;
        }
        if last_sent.is_some_and(|t| o.send_at.duration_since(t) < SignedDuration::from_mins(1)) {
            o.fate = Fate::Merged;
        } else {
            last_sent = Some(o.send_at);
        }
    }
}

/// Every announcement's occurrences in the window, in time order.
pub fn plan<'a>(
    announcements: impl IntoIterator<Item = &'a Announcement>,
    commune: &Commune,
    window: Window,
    now: Timestamp,
) -> Vec<Occurrence> {
    let mut all: Vec<Occurrence> = announcements
        .into_iter()
        .flat_map(|a| occurrences(a, commune, window, now))
        .collect();
    all.sort_by(|a, b| {
        (a.send_at, &a.announcement, a.rule, a.due).cmp(&(
            b.send_at,
            &b.announcement,
            b.rule,
            b.due,
        ))
    });
    all
}
