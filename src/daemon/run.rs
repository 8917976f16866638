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

/// Whether the run loop's turns work. Read by `/healthz`, so that a failure that does not clear
/// is seen by the operator's monitoring although the process keeps running.
#[derive(Debug, Default)]
pub struct Health {
    /// Since when (epoch seconds) every turn has failed; 0 while they work.
    failing_since: std::sync::atomic::AtomicI64,
}

impl Health {
    pub fn working(&self) {
        self.failing_since.store(0, Ordering::Relaxed);
    }

    /// A turn failed at `now` (epoch seconds); the first of a run of failures is kept.
    pub fn failed(&self, now: i64) {
        let _ = self
            .failing_since
            .compare_exchange(0, now, Ordering::Relaxed, Ordering::Relaxed);
    }

    /// For how many seconds every turn has failed, at `now`; None while they work.
    pub fn failing_for(&self, now: i64) -> Option<i64> {
        let since = self.failing_since.load(Ordering::Relaxed);
        (since != 0).then(|| now - since)
    }
}

/// How long the loop waits after a failed turn (the database is down or failing over): doubling
/// from the first to the last, and back to the first after a turn that works.
const RETRY_FIRST: Duration = Duration::from_secs(1);
const RETRY_LAST: Duration = Duration::from_secs(30);

/// Runs the daemon until `shutdown` is set (and notified through `wake`). Fails only when it
/// cannot start (the ledger or the files cannot be read at all); once running, a failing database
/// is logged and waited out, and a re-plan it refused is done again in full once it answers.
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
    let (mut retry, mut reload_owed, mut events_open) = (RETRY_FIRST, false, true);
    while !stop() {
        if reload_owed {
            match daemon.load_all(daemon.clock.now()).await {
                Ok(_) => reload_owed = false,
                Err(e) => {
                    tracing::error!(error = %format!("{e:#}"), "re-planning failed again; will retry")
                }
            }
        }
        let sleep = match turn(&daemon, &mut next_extend, &stop).await {
            Ok(sleep) => {
                retry = RETRY_FIRST;
                daemon.health.working();
                sleep
            }
            Err(e) => {
                metrics::counter!("loa_run_errors_total").increment(1);
                daemon.health.failed(jiff::Timestamp::now().as_second());
                tracing::error!(error = %format!("{e:#}"), retry_secs = retry.as_secs(), "the run loop failed; will retry");
                let wait = retry;
                retry = (retry * 2).min(RETRY_LAST);
                wait
            }
        };
        if stop() {
            break;
        }
        tokio::select! {
            _ = tokio::time::sleep(sleep) => {}
            _ = wake.notified() => {}
            event = events.recv(), if events_open => match event {
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
                        Err(e) => {
                            // The change must not be forgotten: everything is read again once the
                            // database answers.
                            tracing::error!(error = %format!("{e:#}"), "re-planning failed; will retry");
                            reload_owed = true;
                        }
                    }
                }
                Some(Signals::ReloadAll) => {
                    if let Err(e) = daemon.load_all(daemon.clock.now()).await {
                        tracing::error!(error = %format!("{e:#}"), "reload failed; will retry");
                        reload_owed = true;
                    }
                }
                // No more file events or signals (the watcher is gone): keep sending.
                None => events_open = false,
            },
        }
    }
    tracing::info!("stopped: in-flight sends recorded");
    Ok(())
}

/// One turn: extend the plan when due, send what is due, parse what falls due next; returns how
/// long to sleep.
async fn turn<C: Channel>(
    daemon: &Daemon<C>,
    next_extend: &mut jiff::Timestamp,
    stop: &(dyn Fn() -> bool + Sync),
) -> anyhow::Result<Duration> {
    let now = daemon.clock.now();
    if now >= *next_extend {
        daemon.extend_horizon(now).await?;
        *next_extend = now + daemon.settings.horizon / 4;
    }
    let report = daemon.tick(now, stop).await?;
    if report != Default::default() {
        tracing::info!(?report, "tick");
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
    let wake_at = wake_at(
        now,
        next_due,
        daemon.channel.paused_until(),
        now + daemon.settings.max_sleep,
        *next_extend,
    );
    Ok(Duration::try_from(wake_at.duration_since(now)).unwrap_or(Duration::ZERO))
}

/// When the loop turns next: at the next due time, at the latest at `cap` and when the plan is
/// to be extended. While the channel is paused, the messages already due wait for its next
/// probe (`paused`): waking for them at once would only turn the loop without sending.
fn wake_at(
    now: jiff::Timestamp,
    next_due: Option<jiff::Timestamp>,
    paused: Option<jiff::Timestamp>,
    cap: jiff::Timestamp,
    next_extend: jiff::Timestamp,
) -> jiff::Timestamp {
    let next_due = match (next_due, paused) {
        (Some(due), Some(paused)) if due <= now => Some(paused),
        (due, _) => due,
    };
    next_due.map_or(cap, |d| d.min(cap)).min(next_extend)
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::{SignedDuration, Timestamp};

    #[test]
    fn a_paused_channel_wakes_the_loop_for_its_probe_not_for_what_is_already_due() {
        let now = Timestamp::from_second(1_800_000_000).expect("time");
        let secs = |s: i64| now + SignedDuration::from_secs(s);
        let (cap, extend) = (secs(5), secs(3600));
        // Sending: what is due wakes the loop at once, what falls due later at its time.
        assert_eq!(wake_at(now, Some(secs(-30)), None, cap, extend), secs(-30));
        assert_eq!(wake_at(now, Some(secs(2)), None, cap, extend), secs(2));
        assert_eq!(wake_at(now, None, None, cap, extend), cap);
        // Paused until a probe in 2 s: not before it, although messages are overdue.
        assert_eq!(
            wake_at(now, Some(secs(-30)), Some(secs(2)), cap, extend),
            secs(2)
        );
        // A probe minutes away, or one on the wire: at the cap, for what else falls due.
        assert_eq!(
            wake_at(now, Some(secs(-30)), Some(secs(600)), cap, extend),
            cap
        );
        assert_eq!(
            wake_at(now, Some(now), Some(Timestamp::MAX), cap, extend),
            cap
        );
        // Something due later than now still wakes the loop at its time (an occurrence to
        // expand, a lease to take over).
        assert_eq!(
            wake_at(now, Some(secs(1)), Some(secs(600)), cap, extend),
            secs(1)
        );
        assert_eq!(
            wake_at(now, Some(secs(-30)), Some(secs(600)), cap, secs(3)),
            secs(3)
        );
    }
}
