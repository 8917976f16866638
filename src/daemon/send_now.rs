//! A send made by hand (`loa send FILE --now`): one occurrence of the file's current revision, due
//! at once whatever its rules and quiet hours say, written to the ledger like any other so it is
//! sent, retried, recorded and reported the same way.

use jiff::Timestamp;

use super::Daemon;
use crate::deliver::Channel;
use crate::ledger::{NewOccurrence, PlanChange};
use crate::schedule::Trigger;

/// The `rule` of sends made by hand (the file's own rules count from 0).
pub const MANUAL_RULE: i64 = 1_000_000;

impl<C: Channel> Daemon<C> {
    /// Plans announcement `id` (loaded, valid) to go out at `now`; returns the occurrence.
    pub async fn send_now(&self, id: &str, now: Timestamp) -> anyhow::Result<i64> {
        let revision = {
            let guard = self.loaded.read().await;
            guard
                .as_ref()
                .and_then(|l| l.announcements.get(id).copied())
                .ok_or_else(|| anyhow::anyhow!("{id} is not loaded (does it validate?)"))?
        };
        let (ann, _) = self
            .version(id, revision)
            .await?
            .ok_or_else(|| anyhow::anyhow!("{id}: revision {revision} not available"))?;
        if ann.expires.is_some_and(|e| e <= now) {
            anyhow::bail!("{id} has expired: nothing is sent after `expires`");
        }
        let trigger = Trigger::Once;
        let deadline = crate::schedule::deadline::deadline(&ann, &trigger, now);
        let occurrence = NewOccurrence {
            announcement_id: id.to_string(),
            rule: MANUAL_RULE,
            due: now,
            send_at: now,
            deadline: ann.expires.map_or(deadline, |e| e.min(deadline)),
            trigger: serde_json::to_string(&trigger)?,
            urgent: ann.is_urgent(),
        };
        let commune = &self.settings.commune_id;
        let change = PlanChange {
            occurrences: vec![occurrence],
            ..PlanChange::default()
        };
        self.store.apply_plan(commune, &change, now).await?;
        self.store
            .occurrence_id(commune, id, MANUAL_RULE, now)
            .await?
            .ok_or_else(|| anyhow::anyhow!("{id}: the send was not planned"))
    }
}
