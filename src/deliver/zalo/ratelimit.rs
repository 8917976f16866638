//! The app's request budget (Zalo: 4,000 requests per minute per app, `-32` past it), spent with
//! urgent announcements first. A `governor` limiter paces every call evenly, a little under the
//! limit and with almost no burst, so that no fixed one-minute window on Zalo's side ever counts
//! more than the limit; routine calls step aside while an urgent one is waiting, and spare calls
//! (looking up followers' names) while any other is. After a `-32` everything pauses until the
//! next window.

use std::num::NonZeroU32;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tokio::sync::Notify;

/// The share of the limit actually used: pacing on the client and counting on the server do not
/// see the same instants.
const HEADROOM: f64 = 0.98;

pub struct Limiter {
    inner: Option<DefaultDirectRateLimiter>,
    window: Duration,
    urgent_waiting: AtomicUsize,
    urgent_done: Notify,
    /// Urgent and routine callers inside `acquire`: spare calls wait while there are any.
    waiting: AtomicUsize,
    none_waiting: Notify,
    gate: tokio::sync::Mutex<()>,
    paused_until: Mutex<Option<Instant>>,
}

impl Limiter {
    /// `limit` requests per `window`; 0: unlimited.
    pub fn new(limit: u32, window: Duration) -> Limiter {
        let inner = (limit > 0).then(|| {
            let per_window = (f64::from(limit) * HEADROOM).floor().max(1.0);
            let period = window.div_f64(per_window).max(Duration::from_nanos(1));
            let burst =
                NonZeroU32::new((per_window as u32 / 100).max(1)).unwrap_or(NonZeroU32::MIN);
            let quota = Quota::with_period(period)
                .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
                .allow_burst(burst);
            RateLimiter::direct(quota)
        });
        Limiter {
            inner,
            window,
            urgent_waiting: AtomicUsize::new(0),
            urgent_done: Notify::new(),
            waiting: AtomicUsize::new(0),
            none_waiting: Notify::new(),
            gate: tokio::sync::Mutex::new(()),
            paused_until: Mutex::new(None),
        }
    }

    /// Waits for a turn to call the API. One caller at a time waits on the pacer (the gate is a
    /// fair mutex), so a routine call queued earlier cannot overtake an urgent one already waiting
    /// by more than one turn.
    pub async fn acquire(&self, urgent: bool) {
        self.wait_pause().await;
        let Some(limiter) = &self.inner else { return };
        let _waiting = Waiting::count(self);
        if urgent {
            self.urgent_waiting.fetch_add(1, Ordering::SeqCst);
            let _turn = self.gate.lock().await;
            limiter.until_ready().await;
            if self.urgent_waiting.fetch_sub(1, Ordering::SeqCst) == 1 {
                self.urgent_done.notify_waiters();
            }
            return;
        }
        self.turn_after(&self.urgent_waiting, &self.urgent_done, limiter)
            .await;
    }

    /// Waits for a turn that no urgent or routine call is waiting for: work that can wait for a
    /// quiet moment (followers' names) never delays a send by more than one turn. Unlimited:
    /// at once.
    pub async fn acquire_spare(&self) {
        self.wait_pause().await;
        let Some(limiter) = &self.inner else { return };
        self.turn_after(&self.waiting, &self.none_waiting, limiter)
            .await;
    }

    /// The pacer's next turn once none of `ahead` (callers counted there) is waiting, and none
    /// has come meanwhile. `cleared` is notified when their count falls to zero.
    async fn turn_after(
        &self,
        ahead: &AtomicUsize,
        cleared: &Notify,
        limiter: &DefaultDirectRateLimiter,
    ) {
        loop {
            while ahead.load(Ordering::SeqCst) > 0 {
                // Bounded wait: a notification between the check and the wait is not lost for long.
                let _ = tokio::time::timeout(Duration::from_millis(20), cleared.notified()).await;
            }
            let _turn = self.gate.lock().await;
            if ahead.load(Ordering::SeqCst) == 0 {
                limiter.until_ready().await;
                return;
            }
        }
    }

    /// Zalo said `-32`: nothing more until the window has turned. Returns how long that is.
    pub fn pause(&self) -> Duration {
        let until = Instant::now() + self.window.min(Duration::from_secs(60));
        if let Ok(mut p) = self.paused_until.lock() {
            *p = Some(p.map_or(until, |t| t.max(until)));
        }
        self.window.min(Duration::from_secs(60))
    }

    async fn wait_pause(&self) {
        let until = self.paused_until.lock().ok().and_then(|p| *p);
        if let Some(t) = until
            && t > Instant::now()
        {
            tokio::time::sleep_until(t.into()).await;
        }
    }
}

/// Counts an urgent or routine caller while it waits for its turn (also when its future is
/// dropped halfway), and wakes the spare callers when the last one has it.
struct Waiting<'a>(&'a Limiter);

impl<'a> Waiting<'a> {
    fn count(limiter: &'a Limiter) -> Waiting<'a> {
        limiter.waiting.fetch_add(1, Ordering::SeqCst);
        Waiting(limiter)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        if self.0.waiting.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.none_waiting.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test]
    async fn paces_evenly_under_the_limit() {
        let l = Limiter::new(100, Duration::from_millis(500));
        let start = Instant::now();
        for _ in 0..50 {
            l.acquire(false).await;
        }
        let took = start.elapsed();
        // 50 calls at 98 per 500 ms: about 250 ms, never much faster.
        assert!(took >= Duration::from_millis(230), "{took:?}");
        assert!(took < Duration::from_millis(600), "{took:?}");
    }

    /// Starts `n` callers waiting for an urgent or routine turn (`Some(urgent)`) or a spare one
    /// (None); each answers when it got its turn, counted from `start`.
    fn callers(
        l: &Arc<Limiter>,
        n: usize,
        start: Instant,
        urgent: Option<bool>,
    ) -> Vec<tokio::task::JoinHandle<Duration>> {
        (0..n)
            .map(|_| {
                let l = l.clone();
                tokio::spawn(async move {
                    match urgent {
                        Some(urgent) => l.acquire(urgent).await,
                        None => l.acquire_spare().await,
                    }
                    start.elapsed()
                })
            })
            .collect()
    }

    /// When the last of `callers` got its turn.
    async fn last(callers: Vec<tokio::task::JoinHandle<Duration>>) -> Duration {
        let mut last = Duration::ZERO;
        for c in callers {
            last = last.max(c.await.unwrap());
        }
        last
    }

    #[tokio::test]
    async fn urgent_calls_go_first() {
        let l = Arc::new(Limiter::new(50, Duration::from_secs(1)));
        let start = Instant::now();
        let routine = callers(&l, 25, start, Some(false));
        tokio::time::sleep(Duration::from_millis(60)).await;
        let last_urgent = last(callers(&l, 5, start, Some(true))).await;
        let last_routine = last(routine).await;
        // 25 routine calls take ~500 ms; the urgent ones, queued after, finish well before.
        assert!(
            last_urgent + Duration::from_millis(200) < last_routine,
            "urgent {last_urgent:?}, routine {last_routine:?}"
        );
    }

    #[tokio::test]
    async fn spare_calls_wait_until_no_other_call_is_waiting() {
        let l = Arc::new(Limiter::new(50, Duration::from_secs(1)));
        let start = Instant::now();
        let early = callers(&l, 5, start, Some(false));
        tokio::time::sleep(Duration::from_millis(30)).await;
        let spare = callers(&l, 1, start, None);
        tokio::time::sleep(Duration::from_millis(30)).await;
        let late = callers(&l, 15, start, Some(false));
        let last_routine = last(early).await.max(last(late).await);
        let spare = last(spare).await;
        // 20 routine calls at 49 a second take ~400 ms; the spare one goes after the last, also
        // after those that asked after it (a routine call would have gone sixth).
        assert!(
            spare >= last_routine,
            "spare {spare:?}, routine {last_routine:?}"
        );
        assert!(
            last_routine >= Duration::from_millis(300),
            "{last_routine:?}"
        );
        // With nobody else waiting, a spare call takes the next turn.
        let quiet = Instant::now();
        l.acquire_spare().await;
        assert!(
            quiet.elapsed() < Duration::from_millis(100),
            "{:?}",
            quiet.elapsed()
        );
    }

    #[tokio::test]
    async fn unlimited_is_free() {
        let l = Limiter::new(0, Duration::from_secs(60));
        let start = Instant::now();
        for _ in 0..10_000 {
            l.acquire(false).await;
        }
        assert!(start.elapsed() < Duration::from_millis(200));
    }
}
