//! The daemon: keeps the announcement files planned into the ledger and sends what falls due.
//!
//! The database is the truth; memory holds only the last good version of each announcement (to
//! render) and the templates. `plan` and `tick` take the current time as an argument, so tests
//! drive the daemon on their own clock; `run` is the loop that feeds them the wall clock, sleeps
//! until the next due time (capped, re-reading the clock after each sleep), reloads on file changes
//! and SIGHUP, and stops gracefully on SIGTERM or Ctrl-C.

mod catch_up;
mod failover;
mod follow_up;
mod ledger_thread;
mod outcome;
mod plan_pass;
mod planner;
mod run;
mod send_now;
mod sending;
mod versions;
mod worker;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use jiff::SignedDuration;
use tokio::sync::RwLock;

use crate::announce::model::{Announcement, Commune};
use crate::config::Config;
use crate::deliver::Channel;
use crate::ledger::{Dialect, Store};
use crate::render::Templates;

pub use run::{Health, Signals, run};
pub use send_now::MANUAL_RULE;
pub use worker::TickReport;

/// What the daemon knows from the files. The announcements themselves live in the ledger (every
/// good revision with its source); memory keeps which revision is current, and a small cache of
/// parsed versions for the sends at hand.
pub struct Loaded {
    pub commune: Commune,
    pub templates: Templates,
    /// Announcement id → its current revision in the ledger.
    pub announcements: HashMap<String, i64>,
}

/// Parsed versions kept for rendering: enough for the sends due together (read ahead a minute
/// before), small for an idle daemon.
const VERSION_CACHE: usize = 2048;

/// Settings the daemon uses, from the configuration.
#[derive(Clone, Debug)]
pub struct Settings {
    pub commune_id: String,
    pub dir: PathBuf,
    pub templates: PathBuf,
    pub node: String,
    pub horizon: SignedDuration,
    pub lease: SignedDuration,
    pub max_sleep: SignedDuration,
    pub concurrency: usize,
    pub max_attempts: i64,
    pub retry_base: SignedDuration,
    /// How long one tick sends before it looks again for sends fallen due meanwhile: an urgent
    /// warning due during a long fan-out is expanded and goes ahead of the rest within this.
    pub send_budget: std::time::Duration,
}

/// See `Settings::send_budget`.
pub const SEND_BUDGET: std::time::Duration = std::time::Duration::from_secs(5);

impl Settings {
    pub fn from_config(config: &Config) -> Settings {
        let node = if config.node_id.is_empty() {
            let host = std::fs::read_to_string("/etc/hostname")
                .map(|h| h.trim().to_string())
                .unwrap_or_else(|_| "loa".into());
            format!("{host}-{}", std::process::id())
        } else {
            config.node_id.clone()
        };
        Settings {
            commune_id: config.commune_id.clone(),
            dir: absolute(config.announcements.clone()),
            templates: absolute(config.templates_dir()),
            node,
            horizon: SignedDuration::from_hours(i64::from(config.horizon_hours.max(1))),
            lease: SignedDuration::from_secs(i64::from(config.lease_secs.max(5))),
            max_sleep: SignedDuration::from_millis(i64::from(config.max_sleep_ms.max(10))),
            concurrency: config.concurrency.clamp(1, 1000) as usize,
            max_attempts: i64::from(config.max_attempts.max(1)),
            retry_base: SignedDuration::from_secs(i64::from(config.retry_base_secs.max(1))),
            send_budget: SEND_BUDGET,
        }
    }
}

/// Absolute, because the file watcher reports absolute paths and they are matched to announcement
/// ids by the directory's prefix.
pub fn absolute(p: PathBuf) -> PathBuf {
    std::fs::canonicalize(&p)
        .or_else(|_| std::path::absolute(&p))
        .unwrap_or(p)
}

pub struct Daemon<C: Channel> {
    pub store: Store,
    pub clock: crate::clock::Clock,
    pub channel: Arc<C>,
    pub settings: Settings,
    /// Confirm links for heads; None: heads confirm by reply only.
    pub links: Option<crate::confirm::link::Links>,
    /// Whether the run loop works, for `/healthz`.
    pub health: Arc<Health>,
    loaded: RwLock<Option<Loaded>>,
    versions: std::sync::Mutex<HashMap<(String, i64), Arc<Announcement>>>,
    /// Started by the first send.
    ledger_thread: std::sync::OnceLock<ledger_thread::LedgerThread>,
    /// The last claim number (`sending::next_chunk`).
    chunks: std::sync::atomic::AtomicI64,
}

impl<C: Channel> Daemon<C> {
    pub fn new(store: Store, channel: C, settings: Settings) -> Daemon<C> {
        Daemon {
            store,
            clock: crate::clock::Clock::System,
            channel: Arc::new(channel),
            settings,
            links: None,
            health: Default::default(),
            loaded: RwLock::new(None),
            versions: Default::default(),
            ledger_thread: Default::default(),
            chunks: Default::default(),
        }
    }

    /// The same daemon on another clock (tests).
    pub fn with_clock(mut self, clock: crate::clock::Clock) -> Daemon<C> {
        self.clock = clock;
        self
    }

    /// The same daemon, putting confirm links in what it asks heads to confirm.
    pub fn with_links(mut self, links: crate::confirm::link::Links) -> Daemon<C> {
        self.links = Some(links);
        self
    }

    /// The commune as last loaded from the files, once they have been.
    pub async fn commune(&self) -> Option<Commune> {
        self.loaded.read().await.as_ref().map(|l| l.commune.clone())
    }

    /// A SQLite database serves one daemon, so at start nothing of ours can still be in flight.
    fn single_node(&self) -> bool {
        self.store.dialect() == Dialect::Sqlite
    }
}
