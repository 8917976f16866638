//! The webhook emitter, run by one background task over a time-ordered queue (a binary heap and
//! one `sleep_until`), so a hundred thousand messages cost heap entries, not timers or tasks.
//!
//! The people (`people`) decide what happens and when; here events fire in time order, their
//! effect on the population is applied (whether or not a webhook URL is set), and they are
//! signed as Zalo signs them, POSTed, and retried after each of `webhook_retry_delays` with a
//! `num_retry` header until given up. POSTs run in their own tasks, at most `MAX_POSTS` at once.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use jiff::Timestamp;
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::time::Instant;

use super::{Sim, people};
use crate::deliver::zalo::wire::{self, WebhookEvent};

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

/// Concurrent webhook POSTs at most; more wait their turn.
const MAX_POSTS: usize = 64;
/// How long one webhook POST may take: Zalo counts an answer later than 2 s as a failure and
/// sends the event again, and so does the simulator.
const POST_TIMEOUT: Duration = Duration::from_secs(2);

pub(crate) struct Queue {
    heap: BinaryHeap<Reverse<Pending>>,
    n: u64,
}

impl Queue {
    pub(crate) fn push(&mut self, due: Instant, action: Action) {
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
                Some(Job::Accepted { seq, at }) => people::plan(&sim, &mut queue, seq, at.into()),
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
            let (url, duplicate) = people::apply(sim, &e);
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
            if let Some(e) = people::churn(sim) {
                fire(sim, queue, client, posts, Action::Emit(Box::new(e)));
            }
            people::schedule_churn(sim, queue);
        }
    }
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
