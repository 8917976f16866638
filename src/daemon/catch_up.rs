//! What becomes of a claimed send found late. After downtime several sends of one announcement can
//! be overdue at once (a storm warning every 6 hours, down for a day): residents get the latest
//! one, once, and the earlier ones are recorded as missed, never silently dropped. A routine send
//! caught up inside quiet hours waits for their end, as it would have on time.

use std::collections::HashMap;

use jiff::{SignedDuration, Timestamp};

use super::Daemon;
use crate::announce::values::QuietHours;
use crate::deliver::Channel;
use crate::ledger::ClaimedOccurrence;

/// How late an occurrence may be found before it counts as a catch-up after downtime.
const CATCH_UP_SLACK: SignedDuration = SignedDuration::from_secs(60);

/// The decision for one claimed send.
pub(super) enum Decision {
    /// Expanded now.
    Send,
    /// Recorded as missed, with the reason.
    Missed(String),
    /// Put back to planned until the end of quiet hours.
    Held,
}

/// The latest send of each announcement still within its deadline, among `claimed`.
pub(super) fn latest(claimed: &[ClaimedOccurrence], now: Timestamp) -> HashMap<&str, Timestamp> {
    let mut latest: HashMap<&str, Timestamp> = HashMap::new();
    for occ in claimed.iter().filter(|o| now <= o.deadline) {
        let t = latest
            .entry(occ.announcement_id.as_str())
            .or_insert(occ.send_at);
        *t = (*t).max(occ.send_at);
    }
    latest
}

impl<C: Channel> Daemon<C> {
    /// Decides for `occ`, found at `now`; `latest` from `latest()`, `quiet` the commune's quiet
    /// hours. A held send is put back to planned here.
    pub(super) async fn decide(
        &self,
        occ: &ClaimedOccurrence,
        now: Timestamp,
        latest: &HashMap<&str, Timestamp>,
        quiet: Option<&(QuietHours, jiff::tz::TimeZone)>,
    ) -> anyhow::Result<Decision> {
        let late = now.duration_since(occ.send_at) > CATCH_UP_SLACK;
        if now > occ.deadline {
            return Ok(Decision::Missed(format!(
                "deadline {} passed: due {}, found {} late (the daemon was not running)",
                occ.deadline,
                occ.send_at,
                crate::announce::values::format_duration(now.duration_since(occ.send_at))
            )));
        }
        let superseded = || "catch-up: a later send of the same announcement goes out instead";
        if late
            && latest
                .get(occ.announcement_id.as_str())
                .is_some_and(|t| *t > occ.send_at)
        {
            return Ok(Decision::Missed(superseded().to_string()));
        }
        // A routine send planned outside quiet hours but caught up late (after downtime) inside
        // them waits for their end, unless that is past its deadline or another send of it goes
        // by then. Urgent ones and sends by hand go now.
        let by_hand = occ.urgent || occ.rule == super::MANUAL_RULE;
        let held = match quiet {
            Some((q, tz)) if late && !by_hand => crate::schedule::quiet::quiet_end(q, now, tz),
            _ => None,
        };
        let Some(until) = held else {
            return Ok(Decision::Send);
        };
        if until > occ.deadline {
            return Ok(Decision::Missed(format!(
                "deadline {} passed: due {}, caught up in quiet hours that end {until}",
                occ.deadline, occ.send_at
            )));
        }
        let commune = self.settings.commune_id.as_str();
        if self
            .store
            .planned_by(commune, &occ.announcement_id, occ.id, until)
            .await?
        {
            return Ok(Decision::Missed(superseded().to_string()));
        }
        tracing::info!(announcement = %occ.announcement_id, due = %occ.send_at, %until, "caught up in quiet hours: held until they end");
        self.store
            .hold_occurrence(occ.id, until, &self.settings.node, now)
            .await?;
        Ok(Decision::Held)
    }
}
