//! A simulator of the Zalo Official Account API, for tests, benchmarks and the demo. It speaks the
//! wire format of [`crate::deliver::zalo::wire`] on one HTTP server that serves the OAuth, OA API
//! and ZNS paths alike, so pointing loa at `openapi.zalo.me` instead is a configuration change.
//!
//! # Layout
//! - this file: [`SimConfig`], [`start`] and the [`Sim`] handle tests and the CLI hold;
//! - [`population`]: the simulated users and groups (generated, from a commune, or from a file);
//! - `state`: everything that changes while the simulator runs, behind one lock;
//! - `tokens`: the OAuth endpoints (consent, exchange, refresh) and token checks;
//! - `api`: the router and the gate every OA call passes; `send` (cs, group, ZNS) and
//!   `directory` (followers, groups, tags) behind it; `templates`: the approved ZNS templates;
//!   `faults`: injected failures;
//! - `webhook`: the time-ordered event queue and the signed, retried emitter; `people`: what the
//!   simulated people do (receive, read, reply, follow, unfollow);
//! - `inspect`: `/_sim/*`, inspection and control over HTTP.
//!
//! One `std::sync::Mutex` guards the state: every request takes it once, briefly, and never across
//! an `.await`, which at the rates asked of it (tens of thousands of requests a second on two cores)
//! costs less than anything finer-grained would.

mod api;
mod directory;
mod faults;
mod inspect;
mod people;
pub mod population;
mod send;
mod state;
mod templates;
mod tokens;
mod webhook;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use anyhow::Context as _;
use serde::Serialize;
use tokio::sync::{mpsc, watch};

use crate::deliver::zalo::wire;

pub use faults::Faults;
pub use population::{GenerateSpec, Population, SimGroup, SimUser};
pub use state::{SimMessage, SimStats};
pub use templates::{ZnsParam, ZnsTemplate};

/// Everything the simulator is told at start; faults and the webhook URL can change later.
#[derive(Clone, Debug)]
pub struct SimConfig {
    pub app_id: String,
    /// The `secret_key` header the token endpoint expects; also the appsecret_proof key.
    pub app_secret: String,
    pub oa_id: String,
    /// Signs webhooks (which secret Zalo uses is unconfirmed, hence its own setting).
    pub oa_secret: String,
    /// Requests per window across all OA API calls; 0 turns the limit off.
    pub rate_limit: u32,
    pub rate_window: Duration,
    pub access_ttl: Duration,
    pub refresh_ttl: Duration,
    /// A refresh also voids the access token issued with the refresh token used (reported).
    pub void_access_on_refresh: bool,
    /// OAuth errors come with HTTP 200, as Zalo sometimes does, rather than 400.
    pub oauth_errors_http_200: bool,
    /// A read (`user_seen_message`) counts as an interaction with the OA and reopens the 7-day
    /// window for `cs`. Zalo does not document which events count; loa's `seen_opens_window`
    /// says the same of its own record, and the two should agree.
    pub seen_opens_window: bool,
    /// The approved ZNS templates, with their parameters (`templates`).
    pub zns_templates: Vec<ZnsTemplate>,
    /// ZNS messages accepted a day (commune time) before -144.
    pub zns_daily_quota: u64,
    pub webhook_url: Option<String>,
    /// Delay before each retry of a failed webhook; after the last one the event is given up.
    pub webhook_retry_delays: Vec<Duration>,
    pub people: People,
    pub faults: Faults,
    pub population: Population,
    pub seed: u64,
}

impl Default for SimConfig {
    fn default() -> SimConfig {
        let min = |m: u64| Duration::from_secs(60 * m);
        SimConfig {
            app_id: "3304985733420011111".into(),
            app_secret: "sim-app-secret".into(),
            oa_id: "1032900368129101010".into(),
            oa_secret: "sim-oa-secret".into(),
            rate_limit: 4000,
            rate_window: Duration::from_secs(60),
            access_ttl: Duration::from_secs(25 * 3600),
            refresh_ttl: Duration::from_secs(90 * 24 * 3600),
            void_access_on_refresh: false,
            seen_opens_window: true,
            oauth_errors_http_200: true,
            zns_templates: vec![ZnsTemplate::announcement()],
            zns_daily_quota: 1_000_000,
            webhook_url: None,
            webhook_retry_delays: vec![Duration::from_secs(30), min(5), min(15), min(30), min(60)],
            people: People::default(),
            faults: Faults::default(),
            population: Population::default(),
            seed: 1,
        }
    }
}

/// How the simulated people behave after a message reaches them.
#[derive(Clone, Debug, Serialize)]
pub struct People {
    /// From acceptance to `user_received_message`.
    pub receive_delay: Duration,
    /// From acceptance to `user_seen_message`, for the `seen_share` who read it.
    pub seen_delay: Duration,
    pub seen_share: f64,
    /// Share of village heads who answer (`user_send_text`) after `reply_delay`.
    pub head_reply_share: f64,
    pub reply_delay: Duration,
    /// Of those answers to a message in their village's group, the share written in the group
    /// (`user_send_group_text`, the group as recipient) rather than to the OA.
    pub in_group_reply_share: f64,
    /// Whether a group send yields a `user_received_message` per member (unconfirmed in Zalo).
    pub group_receipts: bool,
    /// Expected follow/unfollow events per minute.
    pub churn_per_minute: f64,
}

impl Default for People {
    fn default() -> People {
        People {
            receive_delay: Duration::from_secs(1),
            seen_delay: Duration::from_secs(5),
            seen_share: 0.7,
            head_reply_share: 0.8,
            reply_delay: Duration::from_secs(10),
            in_group_reply_share: 0.0,
            group_receipts: false,
            churn_per_minute: 0.0,
        }
    }
}

/// A running simulator. Cheap to clone; [`Sim::shutdown`] stops the server and the event queue.
#[derive(Clone)]
pub struct Sim {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) config: SimConfig,
    pub(crate) state: Mutex<state::State>,
    /// Set when any fault share is non-zero, so the common path skips the fault lock entirely.
    pub(crate) faults_on: std::sync::atomic::AtomicBool,
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

/// Starts the simulator on `listener` and returns at once; it serves until [`Sim::shutdown`].
pub async fn start(config: SimConfig, listener: tokio::net::TcpListener) -> anyhow::Result<Sim> {
    let client = webhook::client().context("simulator webhook client")?;
    let addr = listener
        .local_addr()
        .context("simulator listener address")?;
    let (jobs, queue) = mpsc::unbounded_channel();
    let (stop, stopped) = watch::channel(false);
    let state = state::State::new(&config, jobs);
    let faults_on = faults::any(&config.faults);
    let sim = Sim {
        inner: Arc::new(Inner {
            config,
            state: Mutex::new(state),
            faults_on: std::sync::atomic::AtomicBool::new(faults_on),
            addr,
            stop,
            tasks: Mutex::new(Vec::new()),
        }),
    };
    let router = api::router(sim.clone());
    let mut server_stop = stopped.clone();
    let server = tokio::spawn(async move {
        let shutdown = async move {
            let _ = server_stop.wait_for(|s| *s).await;
        };
        if let Err(e) = axum::serve(listener, router)
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::error!(error = %e, "simulator server stopped");
        }
    });
    let events = tokio::spawn(webhook::run(sim.clone(), client, queue, stopped));
    sim.inner.lock_tasks().extend([server, events]);
    people::start_churn(&sim);
    Ok(sim)
}

impl Inner {
    fn lock_tasks(&self) -> MutexGuard<'_, Vec<tokio::task::JoinHandle<()>>> {
        self.tasks.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Sim {
    /// The state, even if a panicking holder poisoned the lock: the simulator's state is always
    /// consistent between statements, and a test should see the panic, not a second one.
    pub(crate) fn state(&self) -> MutexGuard<'_, state::State> {
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn config(&self) -> &SimConfig {
        &self.inner.config
    }

    pub fn addr(&self) -> SocketAddr {
        self.inner.addr
    }

    /// `http://127.0.0.1:PORT`: the base for the OAuth, OA API and ZNS paths alike.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.inner.addr)
    }

    /// A fresh valid token pair, as if the OA admin had just consented.
    pub fn issue_tokens(&self) -> wire::TokenReply {
        let ttl = self.config().access_ttl;
        let refresh_ttl = self.config().refresh_ttl;
        self.state().tokens.issue(ttl, refresh_ttl)
    }

    /// Every current access token answers `-216` from now on.
    pub fn revoke_access_tokens(&self) {
        self.state().tokens.revoke_all();
    }

    /// Every current access token answers `-220` from now on.
    pub fn expire_access_tokens(&self) {
        self.state().tokens.expire_all();
    }

    pub fn set_faults(&self, f: Faults) {
        let on = faults::any(&f);
        self.state().faults = f;
        self.inner
            .faults_on
            .store(on, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn set_webhook_url(&self, url: Option<String>) {
        self.state().webhook_url = url;
    }

    /// Every message accepted, in order.
    pub fn messages(&self) -> Vec<SimMessage> {
        self.state().messages(&state::MessageFilter::default())
    }

    pub fn stats(&self) -> SimStats {
        self.state().stats()
    }

    /// A user as the simulator currently sees them.
    pub fn user(&self, user_id: &str) -> Option<SimUser> {
        self.state().user(user_id).cloned()
    }

    /// Adds a user, or replaces the one with the same `user_id` (e.g. to block or ban them).
    pub fn set_user(&self, user: SimUser) {
        self.state().set_user(user);
    }

    /// Adds a group, or replaces the one with the same `group_id`.
    pub fn set_group(&self, group: SimGroup) {
        self.state().set_group(group);
    }

    /// Moves a user's last interaction (to make them stale, or fresh again); false if unknown.
    pub fn set_interaction(&self, user_id: &str, at: jiff::Timestamp) -> bool {
        self.state().set_interaction(user_id, at)
    }

    /// The whole population as it stands (followers and tags change while the simulator runs).
    pub fn population(&self) -> Population {
        self.state().population(usize::MAX)
    }

    /// Stops serving and drops pending webhook events. Requests held by a timeout fault are cut.
    pub async fn shutdown(self) {
        let _ = self.inner.stop.send(true);
        let tasks = std::mem::take(&mut *self.inner.lock_tasks());
        for mut task in tasks {
            // Graceful shutdown waits for connections to finish; a hung timeout fault would hold
            // it for `timeout_hang`, so give it a moment and then cut it.
            if tokio::time::timeout(Duration::from_secs(1), &mut task)
                .await
                .is_err()
            {
                task.abort();
            }
        }
    }
}
