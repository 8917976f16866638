//! The simulated people: what each person a message reached does (receive, read, and for
//! village heads answer), random follows and unfollows, and what an event changes in the
//! population when it fires (a head's reply reopens their 7-day window; follow/unfollow flips
//! the follower flag). Decisions draw from the state's seeded generator.

use std::time::Duration;

use jiff::Timestamp;
use rand::Rng;
use tokio::time::Instant;

use super::Sim;
use super::state::{Kind, Reached};
use super::webhook::{Action, Job, Queue};
use crate::deliver::zalo::wire::{EventId, EventMessage, WebhookEvent};

/// What village heads answer, as people really type it (with and without diacritics).
const REPLIES: &[&str] = &["đã nhận", "Đã nhận ạ", "ok", "da nhan", "1"];

/// An event from this OA with everything but the timestamp, which is set when it fires.
pub(crate) fn event(sim: &Sim, name: &str) -> WebhookEvent {
    WebhookEvent {
        event_name: name.into(),
        app_id: sim.config().app_id.clone(),
        oa_id: Some(sim.config().oa_id.clone()),
        timestamp: String::new(),
        ..WebhookEvent::default()
    }
}

fn id(s: &str) -> Option<EventId> {
    Some(EventId { id: s.to_string() })
}

/// Decides, once, what the people an accepted message reached will do, and queues it.
pub(crate) fn plan(sim: &Sim, queue: &mut Queue, seq: u64, accepted: Instant) {
    let people = &sim.config().people;
    let oa = sim.config().oa_id.clone();
    let mut st = sim.state();
    let Some(record) = st.record_at(seq) else {
        return;
    };
    let (kind, reached, msg_id) = (record.kind, record.reached, record.message_id.clone());
    let (to, tracking_id) = (record.to.clone(), record.tracking_id.clone());
    let webhooks = st.webhook_url.is_some();
    let jitter_max = if st.faults.reorder_webhooks {
        people.seen_delay.max(Duration::from_millis(1))
    } else {
        Duration::ZERO
    };
    let users: Vec<u32> = match reached {
        Reached::User(u) => vec![u],
        Reached::Group(g) => st.groups[g as usize]
            .members
            .iter()
            .filter_map(|m| st.user_at(m))
            .collect(),
        Reached::Nobody => Vec::new(),
    };
    let mut planned = Vec::new();
    // A ZNS receipt names the phone, known owner or not.
    if webhooks && kind == Kind::Zns {
        let mut e = event(sim, "user_received_message");
        e.sender = id(&oa);
        e.recipient = id(&to);
        e.message = Some(EventMessage {
            msg_id: Some(msg_id.clone()),
            tracking_id: tracking_id.clone(),
            delivery_time: Some(String::new()),
            ..EventMessage::default()
        });
        planned.push((people.receive_delay, e));
    }
    for u in users {
        let user = &st.users[u as usize];
        let (user_id, head) = (user.user_id.clone(), user.head && !user.silent);
        let personal = kind != Kind::Group || people.group_receipts;
        if webhooks && personal && kind != Kind::Zns {
            let mut e = event(sim, "user_received_message");
            e.sender = id(&oa);
            e.recipient = id(&user_id);
            e.message = Some(EventMessage {
                msg_id: Some(msg_id.clone()),
                ..EventMessage::default()
            });
            planned.push((people.receive_delay, e));
        }
        // Zalo documents no "seen" for ZNS: its only receipt is the one above, naming the phone.
        if webhooks
            && personal
            && kind != Kind::Zns
            && st.rng.random_bool(people.seen_share.clamp(0.0, 1.0))
        {
            let mut e = event(sim, "user_seen_message");
            e.sender = id(&oa);
            e.recipient = id(&user_id);
            e.message = Some(EventMessage {
                msg_ids: Some(vec![msg_id.clone()]),
                ..EventMessage::default()
            });
            planned.push((people.seen_delay, e));
        }
        if head && st.rng.random_bool(people.head_reply_share.clamp(0.0, 1.0)) {
            let in_group = matches!(reached, Reached::Group(_))
                && st
                    .rng
                    .random_bool(people.in_group_reply_share.clamp(0.0, 1.0));
            let (name, recipient) = if in_group {
                ("user_send_group_text", &to)
            } else {
                ("user_send_text", &oa)
            };
            let mut e = event(sim, name);
            e.sender = id(&user_id);
            e.recipient = id(recipient);
            let text = REPLIES[st.rng.random_range(0..REPLIES.len())];
            e.message = Some(EventMessage {
                text: Some(text.into()),
                msg_id: Some(st.message_id()),
                ..EventMessage::default()
            });
            planned.push((people.reply_delay, e));
        }
    }
    let jitters: Vec<Duration> = planned
        .iter()
        .map(|_| jitter_max.mul_f64(st.rng.random::<f64>()))
        .collect();
    drop(st);
    for ((delay, e), jitter) in planned.into_iter().zip(jitters) {
        queue.push(accepted + delay + jitter, Action::Emit(Box::new(e)));
    }
}

/// An event's effect on the population; returns the webhook URL and whether to send it twice.
pub(crate) fn apply(sim: &Sim, e: &WebhookEvent) -> (Option<String>, bool) {
    let mut st = sim.state();
    match e.event_name.as_str() {
        "user_send_text" => {
            if let Some(sender) = &e.sender {
                st.set_interaction(&sender.id, Timestamp::now());
                st.counters.stats.replies += 1;
            }
        }
        // Written in the group, not to the OA: whether that opens the 7-day window is not
        // documented, so it does not here.
        "user_send_group_text" => st.counters.stats.replies += 1,
        // Nor is whether reading does: configured (`seen_opens_window`), as in loa.
        "user_seen_message" if sim.config().seen_opens_window => {
            if let Some(reader) = &e.recipient {
                st.set_interaction(&reader.id, Timestamp::now());
            }
        }
        "follow" | "unfollow" => {
            if let Some(at) = e.follower.as_ref().and_then(|f| st.user_at(&f.id)) {
                st.users[at as usize].follower = e.event_name == "follow";
                if e.event_name == "follow" {
                    st.users[at as usize].last_interaction = Timestamp::now();
                }
            }
        }
        _ => {}
    }
    let share = st.faults.duplicate_webhook_share.clamp(0.0, 1.0);
    let duplicate = st.rng.random_bool(share);
    (st.webhook_url.clone(), duplicate)
}

/// One random follow or unfollow.
pub(crate) fn churn(sim: &Sim) -> Option<WebhookEvent> {
    let mut st = sim.state();
    if st.users.is_empty() {
        return None;
    }
    let len = st.users.len();
    let i = st.rng.random_range(0..len);
    let user = &st.users[i];
    let name = if user.follower { "unfollow" } else { "follow" };
    let user_id = user.user_id.clone();
    st.counters.stats.churn_events += 1;
    drop(st);
    let mut e = event(sim, name);
    e.follower = id(&user_id);
    e.source = Some("oa_profile".into());
    Some(e)
}

/// Queues the next churn event after an exponential wait (a Poisson process).
pub(crate) fn schedule_churn(sim: &Sim, queue: &mut Queue) {
    if let Some(wait) = churn_wait(sim) {
        queue.push(Instant::now() + wait, Action::Churn);
    }
}

fn churn_wait(sim: &Sim) -> Option<Duration> {
    let per_minute = sim.config().people.churn_per_minute;
    if per_minute <= 0.0 || !per_minute.is_finite() {
        return None;
    }
    let u: f64 = sim.state().rng.random_range(f64::EPSILON..1.0);
    Some(Duration::from_secs_f64(
        (-u.ln() * 60.0 / per_minute).min(86_400.0),
    ))
}

/// Starts churn, if configured.
pub(crate) fn start_churn(sim: &Sim) {
    if let Some(wait) = churn_wait(sim) {
        let _ = sim
            .state()
            .jobs
            .send(Job::At(Instant::now() + wait, Action::Churn));
    }
}
