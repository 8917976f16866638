//! The three ways to send — to a follower (`message/cs`), to a group (`group/message`) and to a
//! phone (ZNS) — with Zalo's checks in Zalo's order, run under the state lock after the token and
//! rate checks. An accepted message is recorded and handed to the people simulation.

use std::time::Instant;

use jiff::{SignedDuration, Timestamp};

use super::state::{Kind, Reached, Record, State};
use super::templates::ZnsTemplate;
use super::webhook::Job;
use crate::deliver::zalo::wire::{SentData, TextBody, ZnsBody, ZnsQuota, ZnsSentData};

/// Text longer than this (in characters, not bytes) is refused with -201.
pub const MAX_TEXT_CHARS: usize = 2000;
/// `tracking_id` longer than this is refused with -201.
pub const MAX_TRACKING_CHARS: usize = 48;
/// cs messages need an interaction within this window.
pub const INTERACTION_WINDOW: SignedDuration = SignedDuration::from_hours(7 * 24);

fn text_ok(text: &str) -> bool {
    !text.trim().is_empty() && text.chars().nth(MAX_TEXT_CHARS).is_none()
}

fn epoch_ms(t: Timestamp) -> String {
    t.as_millisecond().to_string()
}

/// `POST /v3.0/oa/message/cs`.
pub(crate) fn cs(st: &mut State, body: Option<TextBody>, now: Timestamp) -> Result<SentData, i64> {
    let body = body.ok_or(-201)?;
    let user_id = body.recipient.user_id.ok_or(-201)?;
    if !text_ok(&body.message.text) {
        return Err(-201);
    }
    let at = st.user_at(&user_id).ok_or(-213)?;
    let user = &st.users[at as usize];
    if !user.follower {
        return Err(-213);
    }
    if user.blocked {
        return Err(-217);
    }
    if user.banned {
        return Err(-227);
    }
    if user.last_interaction < now - INTERACTION_WINDOW {
        return Err(-230);
    }
    let head = user.head;
    let message_id = st.message_id();
    let seq = st.record(Record {
        message_id: message_id.clone(),
        kind: Kind::Cs,
        to: user_id.clone(),
        text: body.message.text,
        tracking_id: None,
        at: now,
        reached: Reached::User(at),
    });
    notify(st, seq, head);
    Ok(SentData {
        message_id,
        user_id: Some(user_id),
        sent_time: Some(epoch_ms(now)),
        ..SentData::default()
    })
}

/// `POST /v3.0/oa/group/message`.
pub(crate) fn group(
    st: &mut State,
    body: Option<TextBody>,
    now: Timestamp,
) -> Result<SentData, i64> {
    let body = body.ok_or(-201)?;
    let group_id = body.recipient.group_id.ok_or(-201)?;
    let at = st.group_at(&group_id).ok_or(-403)?;
    let group = &st.groups[at as usize];
    if !group.oa_is_member {
        return Err(-403);
    }
    if group.disabled {
        return Err(-237);
    }
    if !text_ok(&body.message.text) {
        return Err(-201);
    }
    let message_id = st.message_id();
    let seq = st.record(Record {
        message_id: message_id.clone(),
        kind: Kind::Group,
        to: group_id.clone(),
        text: body.message.text,
        tracking_id: None,
        at: now,
        reached: Reached::Group(at),
    });
    // Whether any head is a member is decided later, off the request path.
    notify(st, seq, true);
    Ok(SentData {
        message_id,
        group_id: Some(group_id),
        ..SentData::default()
    })
}

/// `84` followed by nine digits.
pub fn phone_ok(phone: &str) -> bool {
    phone.len() == 11 && phone.starts_with("84") && phone.bytes().all(|b| b.is_ascii_digit())
}

/// `POST /message/template` (ZNS).
pub(crate) fn zns(
    st: &mut State,
    body: Option<ZnsBody>,
    templates: &[ZnsTemplate],
    now: Timestamp,
) -> Result<ZnsSentData, i64> {
    let body = body.ok_or(-201)?;
    let template = templates
        .iter()
        .find(|t| t.id == body.template_id)
        .ok_or(-109)?;
    if !phone_ok(&body.phone) {
        return Err(-108);
    }
    if body
        .tracking_id
        .as_ref()
        .is_some_and(|t| t.chars().count() > MAX_TRACKING_CHARS)
    {
        return Err(-201);
    }
    template.check(&body.template_data)?;
    if st.faults.zns_night_ban {
        return Err(-133);
    }
    let today = now.to_zoned(st.tz.clone()).date();
    if st.zns_day != Some(today) {
        st.zns_day = Some(today);
        st.zns_today = 0;
    }
    if st.zns_today >= st.zns_daily_quota {
        return Err(-144);
    }
    let owner = st.phone_owner(&body.phone);
    if owner.is_some_and(|o| !st.users[o as usize].zns_reachable) {
        return Err(-114);
    }
    let head = owner.is_some_and(|o| st.users[o as usize].head);
    let text = serde_json::to_string(&body.template_data).map_err(|_| -201)?;
    let msg_id = st.message_id();
    let seq = st.record(Record {
        message_id: msg_id.clone(),
        kind: Kind::Zns,
        to: body.phone,
        text,
        tracking_id: body.tracking_id,
        at: now,
        reached: owner.map_or(Reached::Nobody, Reached::User),
    });
    notify(st, seq, head);
    st.counters.stats.zns_sent += 1;
    st.zns_today += 1;
    let remaining = st.zns_daily_quota.saturating_sub(st.zns_today);
    Ok(ZnsSentData {
        msg_id,
        sent_time: Some(epoch_ms(now)),
        quota: Some(ZnsQuota {
            daily_quota: st.zns_daily_quota.to_string(),
            remaining_quota: remaining.to_string(),
        }),
    })
}

/// Hands an accepted message to the people simulation when anything will come of it: webhooks
/// are on, or a head may reply (which reopens their interaction window even with no webhook).
fn notify(st: &mut State, seq: u64, may_reach_head: bool) {
    if st.webhook_url.is_some() || may_reach_head {
        let _ = st.jobs.send(Job::Accepted {
            seq,
            at: Instant::now(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_length_counts_characters() {
        assert!(text_ok(&"ă".repeat(2000)));
        assert!(!text_ok(&"ă".repeat(2001)));
        assert!(!text_ok("   "));
    }

    #[test]
    fn phones() {
        assert!(phone_ok("84912345678"));
        assert!(!phone_ok("0912345678"));
        assert!(!phone_ok("8491234567"));
        assert!(!phone_ok("849123456789"));
        assert!(!phone_ok("8491234567x"));
    }
}
