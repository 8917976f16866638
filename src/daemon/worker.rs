//! The due loop's work at one instant: take over what dead daemons left, claim due occurrences and
//! expand them into deliveries (or record them missed past their deadline), then hand over to the
//! send loop (`sending`).

use std::collections::HashMap;

use jiff::Timestamp;

use super::Daemon;
use super::catch_up::Decision;
use crate::deliver::{Channel, TargetKind, targets};
use crate::ledger::{ClaimedOccurrence, Expansion, NewConfirmation, NewDelivery, OccurrenceState};
use crate::schedule::Trigger;

/// What one tick did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct TickReport {
    pub occurrences: usize,
    pub missed: usize,
    pub sent: usize,
    pub retrying: usize,
    pub failed: usize,
    pub expired: usize,
    pub resent_in_doubt: usize,
    pub unknown_in_doubt: usize,
}

/// Occurrences claimed per round trip.
const OCCURRENCE_BATCH: i64 = 1000;

impl<C: Channel> Daemon<C> {
    /// Takes over deliveries left in flight by a dead daemon: all of them at start on SQLite (one
    /// daemon per file), otherwise those whose lease has expired.
    ///
    /// At start, the deliveries that wait for the operator to mend the OA (Zalo refused it, or
    /// there was no token) are also due at once: a restart is how an operator puts in a
    /// corrected app secret (an earlier version put them off to its next probe, up to 10 minutes
    /// away). The channel then starts with a probe: still refused, they cost one request.
    pub async fn recover(&self, now: Timestamp, at_start: bool) -> anyhow::Result<(usize, usize)> {
        let commune = &self.settings.commune_id;
        if at_start {
            let woken = self.store.wake_after_oa_refusal(commune, now).await?;
            if woken > 0 {
                tracing::info!(
                    woken,
                    "messages that waited for the operator to mend the OA are tried again now"
                );
            }
        }
        let all = at_start && self.single_node();
        Ok(self
            .store
            .recover_in_doubt(commune, &self.settings.node, now, all)
            .await?)
    }

    /// Does everything due at `now`. `stop` is checked between chunks: a chunk in flight always
    /// finishes and is recorded.
    pub async fn tick(
        &self,
        now: Timestamp,
        stop: &(dyn Fn() -> bool + Sync),
    ) -> anyhow::Result<TickReport> {
        let commune = self.settings.commune_id.clone();
        let node = self.settings.node.clone();
        let mut report = TickReport::default();
        let (resent, unknown) = self.recover(now, false).await?;
        report.resent_in_doubt = resent;
        report.unknown_in_doubt = unknown;
        report.expired += self.store.expire_overdue(&commune, &node, now).await?;
        let started = std::time::Instant::now();
        let mut claimed = Vec::new();
        loop {
            let lease = now + self.settings.lease;
            let batch = self
                .store
                .claim_occurrences(&commune, &node, now, lease, OCCURRENCE_BATCH)
                .await?;
            if batch.is_empty() {
                break;
            }
            claimed.extend(batch);
        }
        let latest = super::catch_up::latest(&claimed, now);
        let claimed_at = started.elapsed();
        // Followers outside the village groups are targets too; read once for the whole batch.
        let followers = if claimed.is_empty() {
            targets::Followers::default()
        } else {
            targets::Followers::new(self.store.followers(&commune).await?)
        };
        let quiet = self
            .commune()
            .await
            .and_then(|c| c.quiet_hours.map(|q| (q, c.tz)));
        let mut prepared = Vec::with_capacity(claimed.len());
        for occ in &claimed {
            report.occurrences += 1;
            let missed = match self.decide(occ, now, &latest, quiet.as_ref()).await? {
                Decision::Send => None,
                Decision::Missed(reason) => Some(reason),
                Decision::Held => {
                    report.occurrences -= 1;
                    continue;
                }
            };
            match self.prepare(occ, &followers, now).await? {
                Some(p) => prepared.push((occ, p, missed)),
                None => report.missed += 1,
            }
        }
        let rendered_at = started.elapsed();
        // One write for the whole batch: a fan-out due at once starts sending sooner.
        for group in prepared.chunks(OCCURRENCE_BATCH as usize) {
            let expansions: Vec<Expansion<'_>> = group
                .iter()
                .map(|(occ, p, missed)| Expansion {
                    occurrence: occ,
                    deliveries: &p.deliveries,
                    confirmations: &p.confirmations,
                    missed: missed.as_deref(),
                    start: p.start,
                })
                .collect();
            for (occ, _, missed) in group {
                if let Some(reason) = missed {
                    tracing::warn!(announcement = %occ.announcement_id, due = %occ.send_at, %reason, "missed");
                    report.missed += 1;
                }
            }
            self.store
                .expand_many(&commune, &expansions, &node, now)
                .await?;
        }
        if !claimed.is_empty() {
            tracing::debug!(
                occurrences = claimed.len(),
                claim_ms = claimed_at.as_secs_f64() * 1e3,
                render_ms = (rendered_at - claimed_at).as_secs_f64() * 1e3,
                write_ms = (started.elapsed() - rendered_at).as_secs_f64() * 1e3,
                "expanded"
            );
        }
        // Heads late to confirm: reminders and escalations go out with this tick's sends.
        self.follow_up(now).await?;
        self.send_due(now, stop, &mut report).await?;
        // Members of a village group Zalo refused in these sends go out at once, one by one.
        if self.fail_over_groups(now).await? > 0 && !stop() {
            self.send_due(now, stop, &mut report).await?;
        }
        Ok(report)
    }

    /// The deliveries of one claimed occurrence, rendered per village. None when it cannot expand
    /// at all (its version is gone or does not render): it is recorded as missed, with the reason.
    async fn prepare(
        &self,
        occ: &ClaimedOccurrence,
        followers: &targets::Followers,
        now: Timestamp,
    ) -> anyhow::Result<Option<Prepared>> {
        let Some((ann, commune_model)) = self.version(&occ.announcement_id, occ.revision).await?
        else {
            tracing::error!(announcement = %occ.announcement_id, revision = occ.revision, "no version to render");
            self.store
                .fail_occurrence(
                    occ.id,
                    OccurrenceState::Missed,
                    "announcement version not available",
                    &self.settings.node,
                    now,
                )
                .await?;
            return Ok(None);
        };
        let trigger: Trigger = serde_json::from_str(&occ.trigger).unwrap_or(Trigger::Once);
        // Heads get their full `within` from when it goes, not from when it was due.
        let start = now.max(occ.send_at);
        // Render once per village: everyone in a village gets the same text.
        let mut texts: HashMap<Option<String>, String> = HashMap::new();
        let mut deliveries = Vec::new();
        for t in targets::expand(&ann.audience, &commune_model, followers, occ.send_at) {
            let village_id = t.village.map(|v| v.id.clone());
            if !texts.contains_key(&village_id) {
                let rendered = self
                    .with_templates(|tpl| {
                        tpl.render(&ann, &commune_model, t.village, occ.send_at, &trigger)
                    })
                    .await
                    .unwrap_or_else(|| Err("templates not loaded".into()));
                match rendered {
                    Ok(text) => texts.insert(village_id.clone(), text),
                    Err(e) => {
                        tracing::error!(announcement = %occ.announcement_id, error = %e, "cannot render");
                        self.store
                            .fail_occurrence(
                                occ.id,
                                OccurrenceState::Missed,
                                &format!("render failed: {e}"),
                                &self.settings.node,
                                now,
                            )
                            .await?;
                        return Ok(None);
                    }
                };
            }
            deliveries.push(NewDelivery {
                text: texts.get(&village_id).cloned().unwrap_or_default(),
                village_id,
                target_kind: t.kind.as_str(),
                target: t.address,
                person: t.person,
                fallback: t.fallback,
            });
        }
        // Every head of every village the send reaches is asked to confirm, however the message
        // reached them (in the village group, or one by one).
        let mut confirmations = Vec::new();
        if let Some(confirm) = &ann.confirm {
            for v in ann
                .audience
                .villages
                .iter()
                .filter_map(|id| commune_model.village(id))
            {
                for h in &v.heads {
                    let link_key = self
                        .links
                        .as_ref()
                        .map(|_| crate::confirm::link::Links::new_key());
                    if let (Some(links), Some(key)) = (&self.links, &link_key) {
                        let url = links.url(key, start + links.valid);
                        add_link(&mut deliveries, v, h, &url, &ann.title, followers, start);
                    }
                    confirmations.push(NewConfirmation {
                        village_id: v.id.clone(),
                        person: h.name.clone(),
                        user_id: h.zalo_user.clone(),
                        phone: h.phone.clone(),
                        within: confirm.within,
                        link_key,
                    });
                }
            }
        }
        Ok(Some(Prepared {
            deliveries,
            confirmations,
            start,
        }))
    }
}

/// One occurrence ready to expand.
struct Prepared {
    deliveries: Vec<NewDelivery>,
    confirmations: Vec<NewConfirmation>,
    /// See `Expansion::start`.
    start: Timestamp,
}

/// Gives a head their confirm link: appended to their own copy of the message, or, when the
/// message reached them only in the village group, in a short request of its own.
fn add_link(
    deliveries: &mut Vec<NewDelivery>,
    village: &crate::announce::model::Village,
    head: &crate::announce::model::Person,
    url: &str,
    title: &str,
    followers: &targets::Followers,
    at: Timestamp,
) {
    use crate::confirm::follow_up::{link_line, request_text};
    // Their own copy: written to them as a head, or as a follower outside the village's group
    // (then under the name Zalo shows, not theirs). Found by address, never by name: a follower
    // may carry the same name as the head.
    let own = deliveries.iter_mut().find(|d| match d.target_kind {
        k if k == TargetKind::User.as_str() => head.zalo_user.as_deref() == Some(&d.target),
        k if k == TargetKind::Phone.as_str() => head.phone.as_deref() == Some(&d.target),
        _ => false,
    });
    match own {
        Some(d) => d.text.push_str(&link_line(url)),
        None => {
            if let Some((kind, target, fallback)) = targets::person(head, followers, at) {
                deliveries.push(NewDelivery {
                    village_id: Some(village.id.clone()),
                    target_kind: kind.as_str(),
                    target,
                    person: Some(head.name.clone()),
                    fallback,
                    text: request_text(title, url),
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::announce::model::{Person, Village};

    fn head(name: &str, user: &str) -> Person {
        Person {
            id: None,
            name: name.into(),
            phone: None,
            zalo_user: Some(user.into()),
        }
    }

    fn delivery(kind: TargetKind, target: &str, person: Option<&str>) -> NewDelivery {
        NewDelivery {
            village_id: Some("a".into()),
            target_kind: kind.as_str(),
            target: target.into(),
            person: person.map(str::to_string),
            fallback: None,
            text: "Họp thôn A".into(),
        }
    }

    #[test]
    fn a_head_gets_their_link_in_their_own_copy_or_in_a_request() {
        let (chief, deputy) = (head("Trưởng thôn", "u-t"), head("Phó thôn", "u-p"));
        let village = Village {
            id: "a".into(),
            name: "Thôn A".into(),
            zalo_group: Some("ga".into()),
            zalo_tag: None,
            heads: vec![chief.clone(), deputy.clone()],
        };
        // The chief is not in the village's group: the send writes to them as a follower,
        // under the name Zalo shows. Another follower outside it is the deputy's namesake.
        let mut deliveries = vec![
            delivery(TargetKind::Group, "ga", None),
            delivery(TargetKind::User, "u-t", Some("Ba Tâm")),
            delivery(TargetKind::User, "u-x", Some("Phó thôn")),
        ];
        let followers = targets::Followers::new(Vec::new());
        let at = Timestamp::from_second(1_800_000_000).expect("time");
        add_link(
            &mut deliveries,
            &village,
            &chief,
            "https://x/c/t",
            "Họp",
            &followers,
            at,
        );
        add_link(
            &mut deliveries,
            &village,
            &deputy,
            "https://x/c/p",
            "Họp",
            &followers,
            at,
        );
        let texts: Vec<(&str, &str)> = deliveries
            .iter()
            .map(|d| (d.target.as_str(), d.text.as_str()))
            .collect();
        assert_eq!(
            texts,
            vec![
                ("ga", "Họp thôn A"),
                (
                    "u-t",
                    "Họp thôn A\n\nBấm để xác nhận đã nhận: https://x/c/t"
                ),
                ("u-x", "Họp thôn A"),
                (
                    "u-p",
                    "Thông báo “Họp” đã được gửi vào nhóm Zalo của thôn. Xin ông/bà xác nhận đã nhận: trả lời “đã nhận” hoặc bấm https://x/c/p"
                ),
            ]
        );
    }
}
