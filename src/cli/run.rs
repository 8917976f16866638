//! `loa run`: the daemon. Reads loa.toml (defaults → file → LOA_* environment), opens the store,
//! watches the announcement directory, and runs until SIGTERM or Ctrl-C.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::mpsc;

use anyhow::Context as _;

use crate::clock::Clock;
use crate::config::Config;
use crate::daemon::{self, Daemon, Settings, Signals};
use crate::deliver::select::AnyChannel;
use crate::deliver::zalo::config::Secret;
use crate::ledger::{Store, redact};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The configuration file (default: loa.toml when it exists).
    #[arg(long, short, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Overrides `database`: sqlite://FILE or postgres://…
    #[arg(long, value_name = "URL")]
    pub database: Option<String>,
    /// Overrides `announcements`.
    #[arg(long, value_name = "DIR")]
    pub announcements: Option<PathBuf>,
}

impl Args {
    /// The configuration with these flags applied.
    pub fn config(&self) -> anyhow::Result<Config> {
        let mut config = Config::load(self.config.as_deref())?;
        if let Some(db) = &self.database {
            config.database = db.clone();
        }
        if let Some(dir) = &self.announcements {
            config.announcements = dir.clone();
        }
        Ok(config)
    }
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let config = args.config()?;
    init_logging(&config.log_format);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    // On a worker thread, not on this one: the send loop is woken once per answered request, and
    // waking the thread that blocks here costs a system call each time, a worker does not.
    runtime.block_on(async { tokio::spawn(serve(config)).await? })?;
    Ok(ExitCode::SUCCESS)
}

pub(super) fn init_logging(format: &str) {
    let filter =
        tracing_subscriber::EnvFilter::try_from_env("LOA_LOG").unwrap_or_else(|_| "info".into());
    // Colours only on a terminal, and not when NO_COLOR is set (no-color.org): under systemd or
    // redirected to a file, escape codes would be written into the journal and split the fields
    // that `grep` looks for ("planned files=").
    let colour = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour)
        .with_writer(std::io::stderr);
    let _ = if format == "json" {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

pub(super) async fn serve(config: Config) -> anyhow::Result<()> {
    let settings = Settings::from_config(&config);
    tracing::info!(database = %redact(&config.database), dir = %settings.dir.display(), node = %settings.node, "starting");
    let store = Store::open(&config.database).await?;
    let channel = AnyChannel::open(&config, &store, &settings.node, Clock::System).await?;
    let links = confirm_links(&config, &store).await?;
    let mut daemon = Daemon::new(store.clone(), channel, settings.clone());
    if let Some(l) = &links {
        daemon = daemon.with_links(l.clone());
    }
    let daemon = Arc::new(daemon);
    if let Some(zalo) = daemon.channel.zalo() {
        let minutes = config.zalo.sync_minutes;
        tokio::spawn(sync_followers(daemon.clone(), minutes));
        tokio::spawn(zalo.tokens.clone().keep_alive(TOKEN_KEEP_ALIVE));
    }
    let web = start_web(&config, &settings, &store, &daemon, links).await?;
    let (tx, rx) = mpsc::channel(64);
    let shutdown = Arc::new(AtomicBool::new(false));
    let wake = Arc::new(tokio::sync::Notify::new());
    let _watcher = watch(&settings, tx.clone())?;
    spawn_signals(tx, shutdown.clone(), wake.clone())?;
    let result = daemon::run(daemon, rx, shutdown, wake).await;
    if let Some(web) = web {
        web.abort();
    }
    store.close().await;
    result
}

/// Watches the announcement and template directories. Only content changes count: inotify also
/// reports files being opened, and the daemon opens them itself when it reloads.
fn watch(
    settings: &Settings,
    tx: mpsc::Sender<Signals>,
) -> anyhow::Result<notify::RecommendedWatcher> {
    use notify::{EventKind, RecursiveMode, Watcher as _, event::ModifyKind};
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        let Ok(event) = res else { return };
        // The kernel's queue overflowed (events were lost): everything is read again.
        if event.need_rescan() {
            let _ = tx.blocking_send(Signals::ReloadAll);
            return;
        }
        let content = match event.kind {
            EventKind::Create(_) | EventKind::Remove(_) => true,
            EventKind::Modify(ModifyKind::Metadata(_)) => false,
            EventKind::Modify(_) => true,
            _ => false,
        };
        if content {
            let _ = tx.blocking_send(Signals::Changed(event.paths));
        }
    })?;
    watcher.watch(&settings.dir, RecursiveMode::Recursive)?;
    if settings.templates.is_dir() {
        watcher.watch(&settings.templates, RecursiveMode::Recursive)?;
    }
    Ok(watcher)
}

fn spawn_signals(
    tx: mpsc::Sender<Signals>,
    shutdown: Arc<AtomicBool>,
    wake: Arc<tokio::sync::Notify>,
) -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = term.recv() => break,
                _ = int.recv() => break,
                // Sent from a task of its own: during a long fan-out the channel may be full of
                // file events, and this task must stay free to see SIGTERM.
                _ = hup.recv() => {
                    let tx = tx.clone();
                    tokio::spawn(async move { let _ = tx.send(Signals::ReloadAll).await; });
                }
            }
        }
        tracing::info!("shutting down");
        shutdown.store(true, Ordering::SeqCst);
        wake.notify_one();
    });
    Ok(())
}

/// How often the Zalo token is asked for when nothing else asks: well within its 25-hour life.
const TOKEN_KEEP_ALIVE: Duration = Duration::from_secs(6 * 3600);

/// Syncs the OA's followers once the files are loaded, then every `minutes` (0: only at start).
/// A failed sync is logged and tried again at the next turn; sends use the last synced list.
async fn sync_followers(daemon: Arc<Daemon<AnyChannel>>, minutes: u32) {
    let Some(zalo) = daemon.channel.zalo() else {
        return;
    };
    loop {
        match daemon.commune().await {
            None => tokio::time::sleep(Duration::from_millis(200)).await,
            Some(commune) => {
                let commune_id = &daemon.settings.commune_id;
                match zalo
                    .sync_followers(&daemon.store, commune_id, &commune, daemon.clock.now())
                    .await
                {
                    Ok(r) => tracing::info!(
                        followers = r.followers,
                        tagged = r.tagged,
                        in_groups = r.in_groups,
                        disabled_groups = r.disabled_groups,
                        names = r.names,
                        requests = r.requests,
                        "followers synced"
                    ),
                    Err(e) => tracing::error!(error = %e, "follower sync failed"),
                }
                if minutes == 0 {
                    return;
                }
                tokio::time::sleep(Duration::from_secs(u64::from(minutes) * 60)).await;
            }
        }
    }
}

/// Confirm links, when the daemon is reachable (`confirm.public_url`): signed with a key the
/// commune's daemons share in the database.
pub(super) async fn confirm_links(
    config: &Config,
    store: &Store,
) -> anyhow::Result<Option<crate::confirm::link::Links>> {
    let url = config.confirm.public_url.trim();
    if url.is_empty() {
        return Ok(None);
    }
    if config.web.listen.is_empty() {
        tracing::warn!(
            "confirm.public_url is set but web.listen is not: links would not open; no links"
        );
        return Ok(None);
    }
    let secret = store
        .shared_secret(&config.commune_id, "confirm_link")
        .await?;
    let hours = i64::from(config.confirm.link_valid_hours.max(1));
    Ok(Some(crate::confirm::link::Links::new(
        secret.as_bytes(),
        url,
        jiff::SignedDuration::from_hours(hours),
    )))
}

/// The HTTP server (when `web.listen` is set) and the processor that applies stored webhook events.
async fn start_web(
    config: &Config,
    settings: &Settings,
    store: &Store,
    daemon: &Daemon<AnyChannel>,
    links: Option<crate::confirm::link::Links>,
) -> anyhow::Result<Option<tokio::task::JoinHandle<()>>> {
    let channel = daemon.channel.clone();
    if config.web.listen.is_empty() {
        return Ok(None);
    }
    let zalo = if config.zalo.app_id.is_empty() {
        None
    } else {
        let z = config.zalo.clone().resolve()?;
        Some(crate::web::ZaloKeys {
            app_id: z.app_id,
            oa_secret: z.oa_secret,
        })
    };
    if zalo.is_none() {
        tracing::warn!("no Zalo app configured: webhooks will be refused");
    }
    crate::web::metrics::install();
    // Names for pages; the daemon itself reports problems in the files.
    let commune = crate::announce::load_commune(&settings.dir).ok();
    let wake = Arc::new(tokio::sync::Notify::new());
    let state = Arc::new(crate::web::WebState {
        store: store.clone(),
        commune: config.commune_id.clone(),
        zalo,
        max_age: Duration::from_secs(u64::from(config.web.webhook_max_age_secs)),
        wake: wake.clone(),
        links,
        health: daemon.health.clone(),
        villages: commune
            .as_ref()
            .map(|c| {
                c.villages
                    .iter()
                    .map(|v| (v.id.clone(), v.name.clone()))
                    .collect()
            })
            .unwrap_or_default(),
        tz: commune.map(|c| c.tz).unwrap_or_else(|| {
            jiff::tz::TimeZone::get("Asia/Ho_Chi_Minh").unwrap_or(jiff::tz::TimeZone::UTC)
        }),
        dashboard: match config.web.dashboard_token()? {
            Some(token) => {
                let key = store
                    .shared_secret(&config.commune_id, "dashboard_cookie")
                    .await?;
                Some(crate::web::dashboard::Dashboard::new(
                    token,
                    Secret::new(key),
                    crate::clock::Clock::System,
                ))
            }
            None => None,
        },
    });
    let mut ctx = crate::confirm::events::Context::new(&config.confirm, Some(channel));
    ctx.seen_opens_window = config.zalo.seen_opens_window;
    tokio::spawn(crate::confirm::events::process(
        store.clone(),
        config.commune_id.clone(),
        Arc::new(ctx),
        wake,
    ));
    let listener = crate::listen::bind(&config.web.listen)
        .await
        .with_context(|| format!("listening on {}", config.web.listen))?;
    tracing::info!(address = %config.web.listen, webhook = crate::web::WEBHOOK_PATH, dashboard = state.dashboard.is_some(), "HTTP server listening");
    let router = crate::web::router(state, config.web.max_body_bytes as usize);
    Ok(Some(tokio::spawn(async move {
        if let Err(e) = crate::web::serve(listener, router, std::future::pending()).await {
            tracing::error!(error = %e, "HTTP server stopped");
        }
    })))
}
