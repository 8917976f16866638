//! An OA that Zalo refuses outright (`-204` disabled, `-242` a wrong app secret behind
//! `appsecret_proof`), or one without a token to be had (none yet, or its refresh token refused):
//! every send would get the same answer until the operator mends it. The channel then stops
//! sending (the follower sync still calls). Sends are refused here, without a request, as
//! refusals for now: never counted as attempts, so nobody's message is given up; each waits for the OA or for its
//! deadline. One send every `HALT_RETRY` goes out as a probe (a minute after one that got no
//! answer), and the sends that come while it is on the wire wait for its answer. When a probe
//! gets through, sends flow again. Each process keeps its own: several daemons sharing a
//! database each probe. Meanwhile the send loop claims nothing (`paused_until`), and what was
//! refused is due again at once: another daemon whose calls Zalo takes (one with the right app
//! secret, or whose probe got through first) sends it, instead of it waiting for this one's probe.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use jiff::Timestamp;
use tokio::sync::watch;

use crate::clock::Clock;

/// How often a refused OA is tried again, with one request.
pub const HALT_RETRY: Duration = Duration::from_secs(10 * 60);

/// After a probe that got no answer (a timeout, a gateway's status), the next one: soon, but
/// not at once, or each send waiting for the probe would probe in turn, one request at a time.
pub const NO_VERDICT_RETRY: Duration = Duration::from_secs(60);

/// 1 while nothing can be sent from the OA until the operator mends it, for monitoring to alert
/// on (the process itself is well: `/healthz` stays `ok`).
pub const GAUGE: &str = "loa_zalo_oa_blocked";

/// The longest a send waits for a probe's answer before looking again (a probe's request has
/// its own timeout; this only bounds a lost wake-up).
const PROBE_WAIT: Duration = Duration::from_secs(5);

pub struct Halt {
    /// Set while the OA is refused: the sends' fast path reads this alone.
    active: AtomicBool,
    state: Mutex<State>,
    /// Bumped when a probe ends, so that the sends waiting for it look again.
    ended: watch::Sender<u64>,
}

#[derive(Default)]
struct State {
    refused: Option<Refused>,
    probing: bool,
}

struct Refused {
    code: i64,
    reason: String,
    probe_at: Timestamp,
}

/// What a send may do now.
pub enum Gate<'a> {
    /// Call Zalo as usual.
    Open,
    /// Call Zalo: this send is the probe. Dropping the probe ends it.
    Probe(Probe<'a>),
    /// Do not call: the OA is refused, and the next probe is `after` this.
    Closed {
        code: i64,
        reason: String,
        after: Duration,
    },
}

/// The one send on the wire while the OA is refused. Only a probe's answer clears the
/// refusal: a success from a request that left before the refusal says nothing of now.
pub struct Probe<'a> {
    halt: &'a Halt,
}

impl Probe<'_> {
    /// Zalo took the probe (or answered it as it answers an OA it takes): sends flow again.
    pub fn through(self) {
        if let Ok(mut st) = self.halt.state.lock() {
            st.refused = None;
            self.halt.active.store(false, Ordering::Release);
            metrics::gauge!(GAUGE).set(0.0);
        }
    }

    /// No answer to go by: the next probe in `NO_VERDICT_RETRY`.
    pub fn no_verdict(self, now: Timestamp) {
        if let Ok(mut st) = self.halt.state.lock()
            && let Some(r) = st.refused.as_mut()
        {
            let next = now + jiff::SignedDuration::try_from(NO_VERDICT_RETRY).unwrap_or_default();
            r.probe_at = r.probe_at.max(next);
        }
    }
}

impl Drop for Probe<'_> {
    fn drop(&mut self) {
        if let Ok(mut st) = self.halt.state.lock() {
            st.probing = false;
        }
        self.halt.ended.send_modify(|n| *n = n.wrapping_add(1));
    }
}

impl Default for Halt {
    fn default() -> Self {
        Halt {
            active: AtomicBool::new(false),
            state: Mutex::new(State::default()),
            ended: watch::Sender::new(0),
        }
    }
}

impl Halt {
    /// Whether a send may call Zalo now. While another send probes, waits for its answer.
    pub async fn gate(&self, clock: &Clock) -> Gate<'_> {
        if !self.active.load(Ordering::Acquire) {
            return Gate::Open;
        }
        loop {
            let mut ended = {
                let Ok(mut st) = self.state.lock() else {
                    return Gate::Open;
                };
                let probing = st.probing;
                let Some(r) = &st.refused else {
                    return Gate::Open;
                };
                if !probing {
                    let now = clock.now();
                    if now >= r.probe_at {
                        st.probing = true;
                        return Gate::Probe(Probe { halt: self });
                    }
                    return Gate::Closed {
                        code: r.code,
                        reason: r.reason.clone(),
                        after: Duration::try_from(now.duration_until(r.probe_at))
                            .unwrap_or(HALT_RETRY),
                    };
                }
                // Subscribed under the lock: a probe ending after it is seen.
                self.ended.subscribe()
            };
            let _ = tokio::time::timeout(PROBE_WAIT, ended.changed()).await;
        }
    }

    /// While the OA is refused, when the next probe may go: the send loop claims nothing before
    /// then, and one delivery (the probe) at that time. `Timestamp::MAX` while a probe is on the
    /// wire: nothing more is claimed until its answer.
    pub fn paused_until(&self) -> Option<Timestamp> {
        if !self.active.load(Ordering::Acquire) {
            return None;
        }
        let st = self.state.lock().ok()?;
        let r = st.refused.as_ref()?;
        Some(if st.probing {
            Timestamp::MAX
        } else {
            r.probe_at
        })
    }

    /// Zalo refused the OA: no call until a probe in `HALT_RETRY`. True when it was not
    /// refused before (the operator is told once, not for every send).
    pub fn refused(&self, code: i64, reason: &str, now: Timestamp) -> bool {
        let Ok(mut st) = self.state.lock() else {
            return false;
        };
        let probe_at = now + jiff::SignedDuration::try_from(HALT_RETRY).unwrap_or_default();
        let news = st.refused.is_none();
        st.refused = Some(Refused {
            code,
            reason: reason.to_string(),
            probe_at: st
                .refused
                .as_ref()
                .map_or(probe_at, |r| r.probe_at.max(probe_at)),
        });
        self.active.store(true, Ordering::Release);
        metrics::gauge!(GAUGE).set(1.0);
        news
    }

    /// The ledger holds messages that waited for the OA when this process started: the first
    /// send probes, and the others wait for its answer, instead of a whole chunk of requests
    /// each meeting the same refusal (a daemon restarted in a loop would make them each time).
    pub fn probe_first(&self, code: i64, reason: &str) {
        if let Ok(mut st) = self.state.lock() {
            st.refused = Some(Refused {
                code,
                reason: reason.to_string(),
                probe_at: Timestamp::MIN,
            });
            self.active.store(true, Ordering::Release);
            metrics::gauge!(GAUGE).set(1.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::SignedDuration;

    fn closed_after(g: Gate<'_>) -> Option<Duration> {
        match g {
            Gate::Closed { after, .. } => Some(after),
            _ => None,
        }
    }

    #[tokio::test]
    async fn one_probe_each_interval_and_the_others_wait_for_its_answer() {
        let t0 = Timestamp::from_second(1_800_000_000).expect("time");
        let clock = Clock::manual(t0);
        let halt = Halt::default();
        assert!(matches!(halt.gate(&clock).await, Gate::Open));
        assert_eq!(halt.paused_until(), None);
        assert!(halt.refused(-204, "OA disabled", t0));
        assert!(!halt.refused(-204, "OA disabled", t0), "told once");
        // The send loop claims nothing until the probe's time.
        assert_eq!(
            halt.paused_until(),
            Some(t0 + SignedDuration::from_mins(10))
        );
        clock.set(t0 + SignedDuration::from_mins(4));
        assert_eq!(
            closed_after(halt.gate(&clock).await),
            Some(Duration::from_secs(6 * 60))
        );
        clock.set(t0 + SignedDuration::from_mins(10));
        let Gate::Probe(probe) = halt.gate(&clock).await else {
            panic!("the first send after the interval probes");
        };
        // Nor while the probe is on the wire.
        assert_eq!(halt.paused_until(), Some(Timestamp::MAX));
        // A send while the probe is on the wire waits for its answer: refused again, it is
        // closed for another interval.
        // (Within a second: a lost wake-up would wait out PROBE_WAIT.)
        let waiter = tokio::time::timeout(Duration::from_secs(1), halt.gate(&clock));
        let (waiter, ()) = tokio::join!(waiter, async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            halt.refused(-204, "OA disabled", clock.now());
            drop(probe);
        });
        assert_eq!(closed_after(waiter.expect("woken")), Some(HALT_RETRY));
        // The next probe gets through: everyone may call again.
        clock.set(t0 + SignedDuration::from_mins(20));
        let Gate::Probe(probe) = halt.gate(&clock).await else {
            panic!("probe");
        };
        let waiter = tokio::time::timeout(Duration::from_secs(1), halt.gate(&clock));
        let (waiter, ()) = tokio::join!(waiter, async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            probe.through();
        });
        assert!(matches!(waiter.expect("woken"), Gate::Open));
        assert!(matches!(halt.gate(&clock).await, Gate::Open));
        assert_eq!(halt.paused_until(), None);
    }

    #[tokio::test]
    async fn a_probe_that_meets_another_error_hands_the_probe_on() {
        let t0 = Timestamp::from_second(1_800_000_000).expect("time");
        let clock = Clock::manual(t0);
        let halt = Halt::default();
        halt.refused(-242, "appsecret_proof invalid", t0);
        clock.set(t0 + SignedDuration::from_mins(11));
        let Gate::Probe(probe) = halt.gate(&clock).await else {
            panic!("probe");
        };
        // A timeout, say: neither refused nor through. The sends waiting for it do not probe
        // in turn, one request at a time: the next probe is in a minute.
        probe.no_verdict(clock.now());
        assert_eq!(
            closed_after(halt.gate(&clock).await),
            Some(NO_VERDICT_RETRY)
        );
        clock.set(clock.now() + SignedDuration::from_secs(60));
        let Gate::Probe(probe) = halt.gate(&clock).await else {
            panic!("probe");
        };
        // Dropped without a word (its send cancelled, or panicked): the next send probes.
        drop(probe);
        assert!(matches!(halt.gate(&clock).await, Gate::Probe(_)));
    }

    #[tokio::test]
    async fn messages_waiting_at_start_make_the_first_send_a_probe() {
        let clock = Clock::manual(Timestamp::from_second(1_800_000_000).expect("time"));
        let halt = Halt::default();
        halt.probe_first(-204, "OA disabled");
        let Gate::Probe(probe) = halt.gate(&clock).await else {
            panic!("the first send probes");
        };
        let waiter = tokio::time::timeout(Duration::from_secs(1), halt.gate(&clock));
        let (waiter, ()) = tokio::join!(waiter, async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            probe.through();
        });
        assert!(matches!(waiter.expect("woken"), Gate::Open));
    }
}
