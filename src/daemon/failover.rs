//! A village group Zalo refused in a send (disabled, `-237`, or the OA no longer in it, `-403`,
//! since the last follower sync) reached nobody, and the send counted on it for its members.
//! They are written to one by one in the same send: a member in another group of the send that
//! Zalo took is reached already, and a head the send writes to already is not written to twice:
//! one who was sent only a request to confirm (the message was to reach them in the group) is
//! sent the message itself, with their link. See `ledger::failover`.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};

use jiff::Timestamp;

use super::Daemon;
use crate::announce::model::{Commune, Person};
use crate::confirm::follow_up::group_refused_text;
use crate::deliver::{Channel, TargetKind, targets};
use crate::ledger::{HeadCopy, NewDelivery, RefusedGroup, SendTarget};

impl<C: Channel> Daemon<C> {
    /// Writes the members of every group refused since the last call into their sends; returns
    /// how many deliveries were added.
    pub(super) async fn fail_over_groups(&self, now: Timestamp) -> anyhow::Result<usize> {
        let commune_id = &self.settings.commune_id;
        let refused = self.store.refused_groups(commune_id, now).await?;
        if refused.is_empty() {
            return Ok(0);
        }
        let followers = targets::Followers::new(self.store.followers(commune_id).await?);
        let commune = self.commune().await;
        let mut added = 0;
        // A send's deliveries are read once, however many of its groups were refused, and
        // grow by the members written for each.
        let mut sends: HashMap<i64, Vec<SendTarget>> = HashMap::new();
        for group in &refused {
            let start = due_from(commune.as_ref(), group.occurrence.urgent, now);
            if start >= group.occurrence.deadline {
                continue;
            }
            let sent = match sends.entry(group.occurrence.id) {
                Entry::Occupied(e) => e.into_mut(),
                Entry::Vacant(e) => e.insert(self.store.send_targets(group.occurrence.id).await?),
            };
            let members = members(group, sent, &followers, commune.as_ref(), now);
            sent.extend(members.iter().map(|d| SendTarget {
                kind: d.target_kind.to_string(),
                target: d.target.clone(),
                refused: false,
            }));
            let heads = self
                .head_copies(group, commune.as_ref(), &followers, start)
                .await?;
            let node = &self.settings.node;
            match self
                .store
                .fail_over_group(commune_id, group, &members, &heads, node, start, now)
                .await?
            {
                Some(0) => tracing::info!(
                    announcement = %group.occurrence.announcement_id,
                    group = %group.group_id,
                    code = %group.error_code,
                    "Zalo refused a village group whose members the send reaches one by one already"
                ),
                Some(n) => {
                    tracing::warn!(
                        announcement = %group.occurrence.announcement_id,
                        group = %group.group_id,
                        code = %group.error_code,
                        written = n,
                        heads = heads.len(),
                        "Zalo refused a village group: its members are written to one by one, its heads sent the message"
                    );
                    added += n;
                }
                None => {
                    tracing::debug!(group = %group.group_id, "another daemon wrote to this group's members")
                }
            }
        }
        Ok(added)
    }

    /// The heads of a refused group's village whom the send asked to confirm without sending
    /// them the message (it was to reach them in the group): their copy of it, with their link
    /// while their confirmation is pending.
    async fn head_copies(
        &self,
        group: &RefusedGroup,
        commune: Option<&Commune>,
        followers: &targets::Followers,
        start: Timestamp,
    ) -> anyhow::Result<Vec<HeadCopy>> {
        let Some(village) = commune
            .zip(group.village_id.as_deref())
            .and_then(|(c, v)| c.village(v))
        else {
            return Ok(Vec::new());
        };
        let send = group.occurrence.id;
        let mut out = Vec::new();
        for head in &village.heads {
            let addresses = [
                (TargetKind::User, head.zalo_user.as_deref()),
                (TargetKind::Phone, head.phone.as_deref()),
            ];
            let mut request = None;
            for (kind, target) in addresses {
                let Some(target) = target else { continue };
                if let Some(text) = self.store.sent_text(send, kind.as_str(), target).await? {
                    request = Some((kind, target, text));
                    break;
                }
            }
            // Not written to (a member, then: see `members`), or their own copy of the message.
            let Some((kind, target, text)) = request else {
                continue;
            };
            if text.starts_with(group.text.as_str()) {
                continue;
            }
            let Some((to_kind, to, fallback)) = targets::person(head, followers, start) else {
                continue;
            };
            let url = match (
                &self.links,
                self.store
                    .head_request(send, &village.id, &head.name)
                    .await?,
            ) {
                (Some(links), Some((Some(key), true))) => {
                    Some(links.url(&key, start + links.valid))
                }
                _ => None,
            };
            out.push(HeadCopy {
                request: (kind.as_str().to_string(), target.to_string()),
                copy: NewDelivery {
                    village_id: Some(village.id.clone()),
                    target_kind: to_kind.as_str(),
                    target: to,
                    person: Some(head.name.clone()),
                    fallback,
                    text: group_refused_text(&group.text, url.as_deref()),
                },
            });
        }
        Ok(out)
    }
}

/// When the members' deliveries are due: now, or for a routine send failed over in quiet hours
/// (a daemon that was down until then), at their end, as its first send would have been.
fn due_from(commune: Option<&Commune>, urgent: bool, now: Timestamp) -> Timestamp {
    match commune.and_then(|c| c.quiet_hours.as_ref().map(|q| (q, &c.tz))) {
        Some((q, tz)) if !urgent => crate::schedule::quiet::quiet_end(q, now, tz).unwrap_or(now),
        _ => now,
    }
}

/// The deliveries for a refused group's members that the send does not have yet.
fn members(
    group: &RefusedGroup,
    sent: &[SendTarget],
    followers: &targets::Followers,
    commune: Option<&Commune>,
    now: Timestamp,
) -> Vec<NewDelivery> {
    let targeted: HashSet<(&str, &str)> = sent
        .iter()
        .map(|s| (s.kind.as_str(), s.target.as_str()))
        .collect();
    let has = |kind: TargetKind, target: &str| targeted.contains(&(kind.as_str(), target));
    let reaching: HashSet<&str> = sent
        .iter()
        .filter(|s| s.kind == TargetKind::Group.as_str() && !s.refused)
        .map(|s| s.target.as_str())
        .collect();
    let heads: HashMap<&str, &Person> = commune
        .map(|c| {
            c.villages
                .iter()
                .flat_map(|v| &v.heads)
                .chain(&c.leaders)
                .filter_map(|p| p.zalo_user.as_deref().map(|u| (u, p)))
                .collect()
        })
        .unwrap_or_default();
    let mut out = Vec::new();
    for f in followers.members_of(&group.group_id, group.village_id.as_deref()) {
        if f.groups.iter().any(|g| reaching.contains(g.as_str())) {
            continue;
        }
        let (kind, target, fallback, person) = match heads.get(f.user_id.as_str()) {
            Some(head) => {
                let written = head
                    .zalo_user
                    .as_deref()
                    .is_some_and(|u| has(TargetKind::User, u))
                    || head
                        .phone
                        .as_deref()
                        .is_some_and(|p| has(TargetKind::Phone, p));
                match targets::person(head, followers, now) {
                    Some((kind, target, fallback)) if !written => {
                        (kind, target, fallback, Some(head.name.clone()))
                    }
                    _ => continue,
                }
            }
            None => (
                TargetKind::User,
                f.user_id.clone(),
                None,
                f.display_name.clone(),
            ),
        };
        if has(kind, &target) {
            continue;
        }
        out.push(NewDelivery {
            village_id: group.village_id.clone(),
            target_kind: kind.as_str(),
            target,
            person,
            fallback,
            text: group.text.clone(),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::announce::model::Village;
    use crate::deliver::targets::Follower;
    use crate::ledger::ClaimedOccurrence;

    fn now() -> Timestamp {
        Timestamp::from_second(1_800_000_000).expect("time")
    }

    fn refused(group: &str, village: &str) -> RefusedGroup {
        RefusedGroup {
            delivery_id: 1,
            occurrence: ClaimedOccurrence {
                id: 1,
                announcement_id: "tb".into(),
                revision: 1,
                rule: 0,
                due: now(),
                send_at: now(),
                deadline: now() + jiff::SignedDuration::from_hours(1),
                trigger: "\"once\"".into(),
                urgent: false,
            },
            village_id: Some(village.into()),
            group_id: group.into(),
            error_code: "-237".into(),
            text: "Họp thôn A".into(),
        }
    }

    fn member(id: &str, village: &str, groups: &[&str]) -> Follower {
        Follower {
            user_id: id.into(),
            village_id: Some(village.into()),
            in_group: true,
            groups: groups.iter().map(|g| g.to_string()).collect(),
            last_interaction: Some(now()),
            display_name: None,
        }
    }

    fn sent(kind: TargetKind, target: &str, refused: bool) -> SendTarget {
        SendTarget {
            kind: kind.as_str().into(),
            target: target.into(),
            refused,
        }
    }

    fn head(name: &str, user: &str, phone: &str) -> Person {
        Person {
            id: None,
            name: name.into(),
            phone: Some(phone.into()),
            zalo_user: Some(user.into()),
        }
    }

    fn commune(heads: Vec<Person>) -> Commune {
        Commune {
            name: "Xã Thử".into(),
            tz: jiff::tz::TimeZone::UTC,
            quiet_hours: None,
            villages: vec![Village {
                id: "a".into(),
                name: "A".into(),
                zalo_group: Some("ga".into()),
                zalo_tag: None,
                heads,
            }],
            leaders: vec![],
        }
    }

    fn targets(d: &[NewDelivery]) -> Vec<(&str, &str, Option<&str>)> {
        d.iter()
            .map(|d| (d.target_kind, d.target.as_str(), d.fallback.as_deref()))
            .collect()
    }

    #[test]
    fn a_routine_send_failed_over_in_quiet_hours_waits_for_their_end() {
        let tz = jiff::tz::TimeZone::get("Asia/Ho_Chi_Minh").expect("tz");
        let at = |s: &str| crate::announce::values::parse_datetime(s, &tz, false).expect("time");
        let c = Commune {
            tz: tz.clone(),
            quiet_hours: Some(
                crate::announce::values::parse_quiet_hours("21:30-06:00").expect("quiet"),
            ),
            ..commune(vec![])
        };
        let night = at("2026-11-30 23:00");
        assert_eq!(due_from(Some(&c), false, night), at("2026-12-01 06:00"));
        assert_eq!(
            due_from(Some(&c), true, night),
            night,
            "urgent goes at once"
        );
        let day = at("2026-11-30 15:00");
        assert_eq!(due_from(Some(&c), false, day), day);
        assert_eq!(due_from(None, false, night), night);
    }

    #[test]
    fn only_members_no_other_group_of_the_send_reaches_are_written_to() {
        let mut legacy = member("u4", "a", &[]);
        legacy.groups.clear();
        let followers = targets::Followers::new(vec![
            member("u1", "a", &["ga"]),
            // Also in B's group, which Zalo took: reached already.
            member("u2", "a", &["ga", "gb"]),
            // Also in C's group, refused as well: not reached.
            member("u3", "a", &["ga", "gc"]),
            // In a group not known (synced before loa kept them), tagged A: counted on A's.
            legacy,
            // Another village's member.
            member("u5", "b", &["gb"]),
            // Written to already in this send (a follower in no group, as synced then).
            member("u6", "a", &["ga"]),
        ]);
        let sent = [
            sent(TargetKind::Group, "ga", true),
            sent(TargetKind::Group, "gb", false),
            sent(TargetKind::Group, "gc", true),
            sent(TargetKind::User, "u6", false),
        ];
        let out = members(&refused("ga", "a"), &sent, &followers, None, now());
        assert_eq!(
            targets(&out),
            vec![
                ("user", "u1", None),
                ("user", "u3", None),
                ("user", "u4", None)
            ]
        );
        assert!(
            out.iter()
                .all(|d| d.text == "Họp thôn A" && d.village_id.as_deref() == Some("a"))
        );
    }

    #[test]
    fn a_head_is_written_to_as_a_head_and_never_twice() {
        let mut stale = member("u-h2", "a", &["ga"]);
        stale.last_interaction = Some(now() - jiff::SignedDuration::from_hours(24 * 8));
        let followers = targets::Followers::new(vec![
            member("u-h1", "a", &["ga"]),
            stale,
            member("u-h3", "a", &["ga"]),
        ]);
        let c = commune(vec![
            head("Trưởng", "u-h1", "84900000001"),
            head("Phó", "u-h2", "84900000002"),
            // Asked for a confirmation by phone in this send already.
            head("Công an viên", "u-h3", "84900000003"),
        ]);
        let sent = [
            sent(TargetKind::Group, "ga", true),
            sent(TargetKind::Phone, "84900000003", false),
        ];
        let out = members(&refused("ga", "a"), &sent, &followers, Some(&c), now());
        // Inside Zalo's window by Zalo id with the phone as fallback; outside it by phone.
        assert_eq!(
            targets(&out),
            vec![
                ("user", "u-h1", Some("84900000001")),
                ("phone", "84900000002", None)
            ]
        );
        assert_eq!(out[0].person.as_deref(), Some("Trưởng"));
    }
}
