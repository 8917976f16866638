//! The loop: plan at start, then sleep until the next due time (capped, so work added by other
//! daemons or a clock jump is seen), do what is due, and react to file changes, SIGHUP and
//! shutdown. Shutdown is graceful: the chunk in flight finishes and is recorded first.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::mpsc;

use super::Daemon;
use crate::deliver::Channel;

/// How far ahead the versions of due sends are parsed.
const READ_AHEAD: jiff::SignedDuration = jiff::SignedDuration::from_secs(60);

/// How long file events must pause before the files are re-read.
const DEBOUNCE: Duration = Duration::from_millis(250);

/// Events from outside the loop.
#[derive(Debug)]
pub enum Signals {
    /// Files changed (debounced).
    Changed(Vec<PathBuf>),
    /// Re-read everything (SIGHUP).
    ReloadAll,
}

/// Runs the daemon until `shutdown` is set (and notified through `wake`).
pub async fn run<C: Channel>(
    daemon: Arc<Daemon<C>>,
    mut events: mpsc::Receiver<Signals>,
    shutdown: Arc<AtomicBool>,
    wake: Arc<tokio::sync::Notify>,
) -> anyhow::Result<()> {
    let now = daemon.clock.now();
    let (resent, unknown) = daemon.recover(now, true).await?;
    if resent + unknown > 0 {
        tracing::warn!(
            resent,
            unknown,
            "deliveries were in flight when the last run stopped"
        );
    }
    daemon.load_all(now).await?;
    let mut next_extend = now + daemon.settings.horizon / 4;
    let stop = || shutdown.load(Ordering::SeqCst);
    while !stop() {
        let now = daemon.clock.now();
        if now >= next_extend {
            daemon.extend_horizon(now).await?;
            next_extend = now + daemon.settings.horizon / 4;
        }
        let report = daemon.tick(now, &stop).await?;
        if report != Default::default() {
            tracing::info!(?report, "tick");
        }
        if stop() {
            break;
        }
        let commune = daemon.settings.commune_id.clone();
        let next_due = daemon.store.next_due(&commune).await?;
        // While waiting, parse what falls due in the next minute: the due moment then only renders.
        if let Some(due) = next_due {
            let now = daemon.clock.now();
            if due <= now + READ_AHEAD {
                daemon.read_ahead(now + READ_AHEAD).await?;
            }
        }
        let now = daemon.clock.now();
        let cap = now + daemon.settings.max_sleep;
        let wake_at = next_due.map_or(cap, |d| d.min(cap)).min(next_extend);
        let sleep = Duration::try_from(wake_at.duration_since(now)).unwrap_or(Duration::ZERO);
        tokio::select! {
            _ = tokio::time::sleep(sleep) => {}
            _ = wake.notified() => {}
            event = events.recv() => match event {
                Some(Signals::Changed(mut paths)) => {
                    // Debounce: an editor's save is several events; wait for a quiet moment.
                    while let Ok(Some(more)) = tokio::time::timeout(DEBOUNCE, events.recv()).await {
                        match more {
                            Signals::Changed(p) => paths.extend(p),
                            Signals::ReloadAll => paths.push(daemon.settings.dir.join(crate::announce::COMMUNE_FILE)),
                        }
                    }
                    paths.sort();
                    paths.dedup();
                    let started = std::time::Instant::now();
                    match daemon.load_files(&paths, daemon.clock.now()).await {
                        Ok(s) => tracing::info!(files = paths.len(), revisions = s.revisions, ms = started.elapsed().as_millis() as u64, "re-planned changed files"),
                        Err(e) => tracing::error!(error = %format!("{e:#}"), "re-planning failed"),
                    }
                }
                Some(Signals::ReloadAll) => {
                    if let Err(e) = daemon.load_all(daemon.clock.now()).await {
                        tracing::error!(error = %format!("{e:#}"), "reload failed; keeping the last good files");
                    }
                }
                None => {}
            },
        }
    }
    tracing::info!("stopped: in-flight sends recorded");
    Ok(())
}
