//! Follow-ups for village heads who have not confirmed: once `within` has passed each is sent a
//! reminder (by Zalo inside the 7-day window, else by phone), and after as long again the
//! announcement's `escalate_to` leaders get the list of villages still missing. Both are written
//! to the ledger as sends of their own (see `ledger::follow_ups`), then go out with the other
//! due deliveries of the same tick.

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};

use super::Daemon;
use crate::announce::model::Person;
use crate::confirm::follow_up::{Missing, escalation_text, reminder_text};
use crate::deliver::{Channel, targets};
use crate::ledger::{FollowUp, Late, NewDelivery, Stage};

/// How long a follow-up may still go out (after quiet hours, retries, downtime).
const FOLLOW_UP_DEADLINE: SignedDuration = SignedDuration::from_hours(24);

impl<C: Channel> Daemon<C> {
    /// Writes the reminders and escalations due at `now`; returns how many were written.
    pub(super) async fn follow_up(&self, now: Timestamp) -> anyhow::Result<usize> {
        let commune = &self.settings.commune_id;
        let late = self.store.late_confirmations(commune, now).await?;
        if late.is_empty() {
            return Ok(0);
        }
        let followers = targets::Followers::new(self.store.followers(commune).await?);
        let mut by_send: BTreeMap<i64, Vec<&Late>> = BTreeMap::new();
        for l in &late {
            by_send.entry(l.occurrence_id).or_default().push(l);
        }
        let mut written = 0;
        for rows in by_send.values() {
            let first = rows[0];
            let Some((ann, model)) = self.version(&first.announcement_id, first.revision).await?
            else {
                // Not closed: the version may only fail against this commune.yaml (an older one in
                // the checkout `loa send` runs from), and read again once it is fixed.
                tracing::warn!(announcement = %first.announcement_id, "cannot follow up: announcement version not available");
                continue;
            };
            // A routine announcement's follow-ups wait for the end of quiet hours, like its send,
            // and are written only then: written now, they would say at 06:00 what was true at
            // 21:30, reminding a head who confirmed in the night and reporting them missing.
            let send_at = match (&model.quiet_hours, first.urgent) {
                (Some(q), false) => {
                    crate::schedule::quiet::quiet_end(q, now, &model.tz).unwrap_or(now)
                }
                _ => now,
            };
            if send_at > now {
                continue;
            }
            // Past its `expires` (the storm has passed) nothing more is said about it: no
            // reminder, no escalation, and none that would go out after it.
            if ann.expires.is_some_and(|e| send_at >= e) {
                self.store
                    .close_confirmations(first.occurrence_id, now)
                    .await?;
                continue;
            }
            let deadline =
                (send_at + FOLLOW_UP_DEADLINE).min(ann.expires.unwrap_or(Timestamp::MAX));
            let village_name =
                |id: &str| model.village(id).map_or(id.to_string(), |v| v.name.clone());
            for stage in [Stage::Remind, Stage::Escalate] {
                let due: Vec<&Late> = rows
                    .iter()
                    .copied()
                    .filter(|r| r.stages(now).contains(&stage))
                    .collect();
                if due.is_empty() {
                    continue;
                }
                let deliveries: Vec<NewDelivery> = match stage {
                    Stage::Remind => due
                        .iter()
                        .filter_map(|r| {
                            let head = Person {
                                id: None,
                                name: r.person.clone(),
                                phone: r.phone.clone(),
                                zalo_user: r.user_id.clone(),
                            };
                            let (kind, target, fallback) =
                                targets::person(&head, &followers, send_at)?;
                            let url = self
                                .links
                                .as_ref()
                                .zip(r.link_key.as_deref())
                                // Valid for as long from the reminder as the first link was
                                // from the send: `within` may be longer than a link lives.
                                .map(|(l, k)| l.url(k, send_at.max(r.sent_at) + l.valid));
                            Some(NewDelivery {
                                village_id: Some(r.village_id.clone()),
                                target_kind: kind.as_str(),
                                target,
                                person: Some(r.person.clone()),
                                fallback,
                                text: reminder_text(&ann.title, r.text.as_deref(), url.as_deref()),
                            })
                        })
                        .collect(),
                    Stage::Escalate => {
                        let missing: Vec<Missing> = due
                            .iter()
                            .map(|r| Missing {
                                village: village_name(&r.village_id),
                                person: r.person.clone(),
                                reminded_at: r.reminded_at,
                            })
                            .collect();
                        let text = escalation_text(&ann.title, first.sent_at, &missing, &model.tz);
                        let leaders = ann
                            .confirm
                            .as_ref()
                            .map(|c| c.escalate_to.clone())
                            .unwrap_or_default();
                        if leaders.is_empty() {
                            tracing::warn!(announcement = %ann.id, "heads have not confirmed and nobody is named in escalate_to");
                        }
                        leaders
                            .iter()
                            .filter_map(|id| model.leader(id))
                            .filter_map(|p| {
                                let (kind, target, fallback) =
                                    targets::person(p, &followers, send_at)?;
                                Some(NewDelivery {
                                    village_id: None,
                                    target_kind: kind.as_str(),
                                    target,
                                    person: Some(p.name.clone()),
                                    fallback,
                                    text: text.clone(),
                                })
                            })
                            .collect()
                    }
                };
                let ids: Vec<i64> = due.iter().map(|r| r.id).collect();
                let follow_up = FollowUp {
                    parent: first,
                    stage,
                    confirmations: &ids,
                    deliveries: &deliveries,
                    send_at,
                    deadline,
                };
                if self
                    .store
                    .record_follow_up(commune, &follow_up, &self.settings.node, now)
                    .await?
                {
                    tracing::info!(announcement = %ann.id, ?stage, heads = ids.len(), recipients = deliveries.len(), "follow-up written");
                    let label = match stage {
                        Stage::Remind => "reminder",
                        Stage::Escalate => "escalation",
                    };
                    metrics::counter!("loa_follow_ups_total", "stage" => label).increment(1);
                    written += 1;
                }
            }
        }
        Ok(written)
    }
}
