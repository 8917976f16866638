//! The simulated people and the webhook emitter, run by one background task over a time-ordered
//! queue (a binary heap and one `sleep_until`), so a hundred thousand messages cost heap entries,
//! not timers or tasks.
//!
//! After a message is accepted, each person it reached receives it (`user_received_message`),
//! may read it (`user_seen_message`), and a village head may answer (`user_send_text`, which also
//! reopens their 7-day window). Events are signed as Zalo signs them, POSTed to the webhook URL,
//! and retried after each of `webhook_retry_delays` with a `num_retry` header until given up.
//! Churn adds random follow/unfollow events. An event's effect on the population is applied when
//! it fires, whether or not a webhook URL is set.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use jiff::Timestamp;
use rand::Rng;
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::time::Instant;

use super::Sim;
use super::state::{Kind, Reached};
use crate::deliver::zalo::wire::{self, EventId, EventMessage, WebhookEvent};

/// What the request path hands over; it never waits.
pub(crate) enum Job {
    /// A message was accepted at `at`: plan how the people it reached react.
    Accepted { seq: u64, at: std::time::Instant },
    /// Something to do later (retries, churn).
    At(Instant, Action),
}

pub(crate) enum Action {
    /// Apply an event's effect, then POST it (if a webhook URL is set).
    Emit(Box<WebhookEvent>),
    /// (Re)send signed bytes; `attempt` 0 is the first delivery.
    Post {
        body: Bytes,
        attempt: usize,
    },
    Churn,
}

struct Pending {
    due: Instant,
    n: u64,
    action: Action,
}

impl PartialEq for Pending {
    fn eq(&self, other: &Self) -> bool {
        (self.due, self.n) == (other.due, other.n)
    }
}
impl Eq for Pending {}
impl PartialOrd for Pending {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Pending {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.due, self.n).cmp(&(other.due, other.n))
    }
}

/// How an accepted message's people answer; also the replies heads send.
const REPLIES: &[&str] = &["đã nhận", "Đã nhận ạ", "ok", "da nhan", "1"];
/// Concurrent webhook POSTs at most; more wait their turn.
const MAX_POSTS: usize = 64;
/// How long one webhook POST may take (Zalo wants an answer within 2 s).
const POST_TIMEOUT: Duration = Duration::from_secs(5);

struct Queue {
    heap: BinaryHeap<Reverse<Pending>>,
    n: u64,
}

impl Queue {
    fn push(&mut self, due: Instant, action: Action) {
        self.n += 1;
        self.heap.push(Reverse(Pending {
            due,
            n: self.n,
            action,
        }));
    }
}

/// The event loop: until `stopped`, take jobs and fire what falls due.
pub(crate) async fn run(
    sim: Sim,
    client: reqwest::Client,
    mut jobs: mpsc::UnboundedReceiver<Job>,
    mut stopped: watch::Receiver<bool>,
) {
    let posts = Arc::new(Semaphore::new(MAX_POSTS));
    let mut queue = Queue {
        heap: BinaryHeap::new(),
        n: 0,
    };
    loop {
        let next = queue.heap.peek().map(|p| p.0.due);
        tokio::select! {
            _ = stopped.wait_for(|s| *s) => return,
            job = jobs.recv() => match job {
                Some(Job::Accepted { seq, at }) => plan(&sim, &mut queue, seq, at.into()),
                Some(Job::At(due, action)) => queue.push(due, action),
                None => return,
            },
            () = sleep_until(next) => {
                let now = Instant::now();
                while queue.heap.peek().is_some_and(|p| p.0.due <= now) {
                    let Some(Reverse(p)) = queue.heap.pop() else { break };
                    fire(&sim, &mut queue, &client, &posts, p.action);
                }
            }
        }
    }
}

/// The client webhooks are POSTed with, built at start so a failure stops `start`, not the people.
pub(crate) fn client() -> anyhow::Result<reqwest::Client> {
    // reqwest is built without a default TLS provider and refuses to build a client, even for
    // plain http://, until one is installed; installing twice is harmless.
    let _ = rustls::crypto::ring::default_provider().install_default();
    Ok(reqwest::Client::builder().timeout(POST_TIMEOUT).build()?)
}

async fn sleep_until(due: Option<Instant>) {
    match due {
        Some(due) => tokio::time::sleep_until(due).await,
        None => std::future::pending().await,
    }
}

fn now_ms() -> String {
    Timestamp::now().as_millisecond().to_string()
}

fn event(sim: &Sim, name: &str) -> WebhookEvent {
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
fn plan(sim: &Sim, queue: &mut Queue, seq: u64, accepted: Instant) {
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
        let (user_id, head) = (user.user_id.clone(), user.head);
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
        if webhooks && personal && st.rng.random_bool(people.seen_share.clamp(0.0, 1.0)) {
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
            let mut e = event(sim, "user_send_text");
            e.sender = id(&user_id);
            e.recipient = id(&oa);
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

fn fire(
    sim: &Sim,
    queue: &mut Queue,
    client: &reqwest::Client,
    posts: &Arc<Semaphore>,
    action: Action,
) {
    match action {
        Action::Emit(mut e) => {
            e.timestamp = now_ms();
            if let Some(m) = e.message.as_mut().filter(|m| m.delivery_time.is_some()) {
                m.delivery_time = Some(e.timestamp.clone());
            }
            let (url, duplicate) = apply(sim, &e);
            if url.is_none() {
                return;
            }
            let Ok(body) = serde_json::to_vec(&e) else {
                return;
            };
            let body = Bytes::from(body);
            if duplicate {
                sim.state().counters.stats.webhooks_duplicated += 1;
                post(sim, client, posts, body.clone(), 0);
            }
            post(sim, client, posts, body, 0);
        }
        Action::Post { body, attempt } => post(sim, client, posts, body, attempt),
        Action::Churn => {
            if let Some(e) = churn(sim) {
                fire(sim, queue, client, posts, Action::Emit(Box::new(e)));
            }
            schedule_churn(sim, queue);
        }
    }
}

/// An event's effect on the population; returns the webhook URL and whether to send it twice.
fn apply(sim: &Sim, e: &WebhookEvent) -> (Option<String>, bool) {
    let mut st = sim.state();
    match e.event_name.as_str() {
        "user_send_text" => {
            if let Some(sender) = &e.sender {
                st.set_interaction(&sender.id, Timestamp::now());
                st.counters.stats.replies += 1;
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

/// Sends one delivery in its own task; on failure queues the next retry or gives up.
fn post(sim: &Sim, client: &reqwest::Client, posts: &Arc<Semaphore>, body: Bytes, attempt: usize) {
    let Some(url) = sim.state().webhook_url.clone() else {
        return;
    };
    let (sim, client, posts) = (sim.clone(), client.clone(), posts.clone());
    tokio::spawn(async move {
        let Ok(_permit) = posts.acquire_owned().await else {
            return;
        };
        let config = sim.config();
        let signature = signature_of(&config.app_id, &body, &config.oa_secret);
        let mut request = client
            .post(&url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(wire::header::SIGNATURE, format!("mac={signature}"));
        if attempt > 0 {
            request = request.header(wire::header::NUM_RETRY, attempt.to_string());
        }
        let ok = matches!(request.body(body.clone()).send().await, Ok(r) if r.status() == 200);
        let mut st = sim.state();
        if ok {
            st.counters.stats.webhooks_sent += 1;
            return;
        }
        st.counters.stats.webhooks_failed += 1;
        match config.webhook_retry_delays.get(attempt) {
            Some(delay) => {
                st.counters.stats.webhooks_retried += 1;
                let due = Instant::now() + *delay;
                let _ = st.jobs.send(Job::At(
                    due,
                    Action::Post {
                        body,
                        attempt: attempt + 1,
                    },
                ));
            }
            None => st.counters.stats.webhooks_given_up += 1,
        }
    });
}

/// The signature over the exact bytes sent, with the body's own timestamp.
fn signature_of(app_id: &str, body: &[u8], secret: &str) -> String {
    #[derive(serde::Deserialize)]
    struct Stamp {
        timestamp: String,
    }
    let timestamp = serde_json::from_slice::<Stamp>(body)
        .map(|s| s.timestamp)
        .unwrap_or_default();
    wire::signature(app_id, body, &timestamp, secret)
}

/// One random follow or unfollow.
fn churn(sim: &Sim) -> Option<WebhookEvent> {
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
fn schedule_churn(sim: &Sim, queue: &mut Queue) {
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
