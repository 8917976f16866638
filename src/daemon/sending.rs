//! The send loop: claims due deliveries a chunk at a time, sends each chunk concurrently and
//! records every outcome after the provider answered. The database and the network work at the
//! same time: while one chunk is on the wire, the outcomes of the one before are written and the
//! next one is claimed, in one transaction. A crash therefore leaves at most two chunks in doubt:
//! the one on the wire and the one answered but not yet written. Each claim is numbered and the
//! number is written before its chunk goes out, so the chunk claimed ahead is released by recovery
//! as never sent instead of counted in doubt.

use futures_util::future::join_all;
use jiff::{SignedDuration, Timestamp};

use super::ledger_thread::LedgerThread;
use super::{Daemon, TickReport};
use crate::deliver::{Channel, Outgoing, SendError, TargetKind};
use crate::ledger::{Claim, ClaimedDelivery, DeliveryState, Outcome};

impl<C: Channel> Daemon<C> {
    /// Sends everything due, chunk after chunk, until nothing is due or `stop()` says so. `stop`
    /// is checked before each claim: what is claimed is always sent and recorded.
    pub(super) async fn send_due(
        &self,
        now: Timestamp,
        stop: &(dyn Fn() -> bool + Sync),
        report: &mut TickReport,
    ) -> anyhow::Result<()> {
        let commune = self.settings.commune_id.as_str();
        let node = self.settings.node.as_str();
        let limit = self.settings.concurrency as i64;
        // Re-read the clock for each claim: sending takes time, and due times are compared with
        // the moment of the send.
        let claim = |limit: i64, chunk: i64| {
            let now = self.clock.now().max(now);
            Claim {
                now,
                lease_until: now + self.settings.lease,
                limit,
                chunk: Some(chunk),
            }
        };
        let mut number = self.next_chunk();
        let (_, mut chunk) = self
            .store
            .record_and_claim(commune, node, &[], now, claim(limit, number))
            .await?;
        let mut answered: Vec<Outcome> = Vec::new();
        let mut answered_at = now;
        let ledger = match self.ledger_thread.get() {
            Some(t) => t,
            None => {
                let started = LedgerThread::start()?;
                self.ledger_thread.get_or_init(|| started)
            }
        };
        let timer = metrics::histogram!("loa_send_seconds", "channel" => self.channel.name());
        while !chunk.is_empty() {
            // Written before the chunk goes out, so that after a crash the chunk claimed ahead
            // (numbered after this one) is known never to have left.
            {
                let store = self.store.clone();
                let node = node.to_string();
                ledger
                    .run(move || async move { store.mark_on_wire(&node, number).await })
                    .await??;
            }
            let next_number = self.next_chunk();
            // Requests and the write each run as tasks of their own, so the runtime's threads
            // share them; polled together from here, the database's replies would wait for the
            // requests to be built and read, and the other way round.
            let sends: Vec<_> = std::mem::take(&mut chunk)
                .into_iter()
                .map(|d| {
                    let channel = self.channel.clone();
                    let timer = timer.clone();
                    tokio::spawn(async move {
                        let result = send_one(&*channel, &d, &timer).await;
                        (d, result)
                    })
                })
                .collect();
            let write = {
                let store = self.store.clone();
                let (commune, node) = (commune.to_string(), node.to_string());
                let next = claim(if stop() { 0 } else { limit }, next_number);
                let answered = std::mem::take(&mut answered);
                ledger.run(move || async move {
                    store
                        .record_and_claim(&commune, &node, &answered, answered_at, next)
                        .await
                        .map_err(|e| (e, answered))
                })
            };
            let (results, written) = tokio::join!(join_all(sends), write);
            let earlier_at = answered_at;
            answered_at = self.clock.now().max(now);
            answered = results
                .into_iter()
                .filter_map(|r| match r {
                    Ok((d, result)) => Some(self.outcome(&d, result, answered_at)),
                    // A send that panicked may or may not have reached Zalo: its lease runs out
                    // and it is recovered as in doubt, as after a crash.
                    Err(e) => {
                        tracing::error!(error = %e, "a send task failed");
                        None
                    }
                })
                .collect();
            self.count(&answered, report);
            match written? {
                Ok((_, next)) => {
                    chunk = next;
                    number = next_number;
                }
                Err((e, earlier)) => {
                    // Both answered chunks are still written if the database lets us (each at
                    // its own time); what cannot be written is recovered as in doubt when its
                    // lease runs out, as after a crash.
                    let mut again = self
                        .store
                        .record_outcomes(commune, node, &earlier, earlier_at)
                        .await;
                    if again.is_ok() {
                        again = self
                            .store
                            .record_outcomes(commune, node, &answered, answered_at)
                            .await;
                    }
                    if let Err(again) = again {
                        tracing::error!(error = %again, "cannot record outcomes; they will be recovered as in doubt");
                    }
                    return Err(e.into());
                }
            }
        }
        if !answered.is_empty() {
            self.store
                .record_outcomes(commune, node, &answered, answered_at)
                .await?;
        }
        Ok(())
    }

    /// A claim number above every earlier one of this node, even across a restart under the same
    /// node name: microseconds of the system clock, or one more than the last.
    fn next_chunk(&self) -> i64 {
        let wall = jiff::Timestamp::now().as_microsecond();
        let mut last = self.chunks.load(std::sync::atomic::Ordering::Relaxed);
        loop {
            let next = wall.max(last + 1);
            match self.chunks.compare_exchange(
                last,
                next,
                std::sync::atomic::Ordering::Relaxed,
                std::sync::atomic::Ordering::Relaxed,
            ) {
                Ok(_) => return next,
                Err(seen) => last = seen,
            }
        }
    }

    /// Adds a chunk's outcomes to the tick's report and to `loa_sends_total` (one increment
    /// per outcome kind: the registry lookup is per call, not per delivery).
    fn count(&self, outcomes: &[Outcome], report: &mut TickReport) {
        let before = report.clone();
        for o in outcomes {
            match o.state {
                DeliveryState::Sent => report.sent += 1,
                DeliveryState::Retrying => report.retrying += 1,
                DeliveryState::Expired => report.expired += 1,
                _ => report.failed += 1,
            }
        }
        let channel = self.channel.name();
        for (label, n) in [
            ("sent", report.sent - before.sent),
            ("retrying", report.retrying - before.retrying),
            ("expired", report.expired - before.expired),
            ("failed", report.failed - before.failed),
        ] {
            if n > 0 {
                metrics::counter!("loa_sends_total", "channel" => channel, "outcome" => label)
                    .increment(n as u64);
            }
        }
    }

    /// Classifies a result into the delivery's next state.
    fn outcome(
        &self,
        d: &ClaimedDelivery,
        result: Result<crate::deliver::Sent, SendError>,
        now: Timestamp,
    ) -> Outcome {
        let base = Outcome {
            id: d.id,
            state: DeliveryState::Sent,
            provider_message_id: None,
            error_code: None,
            error_reason: None,
            next_attempt_at: None,
            in_doubt: false,
        };
        match result {
            Ok(sent) => Outcome {
                provider_message_id: Some(sent.message_id),
                error_reason: sent.note,
                ..base
            },
            Err(SendError::Final { code, reason }) => Outcome {
                state: DeliveryState::Failed,
                error_code: Some(code),
                error_reason: Some(reason),
                ..base
            },
            Err(e) => {
                let hint = match &e {
                    SendError::RetryLater { after: Some(a), .. } => {
                        SignedDuration::try_from(*a).unwrap_or_default()
                    }
                    _ => SignedDuration::ZERO,
                };
                let next = now + self.backoff(d.attempts).max(hint);
                let state = if d.attempts >= self.settings.max_attempts {
                    DeliveryState::Failed
                } else if next > d.deadline {
                    DeliveryState::Expired
                } else {
                    DeliveryState::Retrying
                };
                Outcome {
                    state,
                    error_code: Some(e.code().to_string()),
                    error_reason: Some(e.reason().to_string()),
                    next_attempt_at: Some(next),
                    in_doubt: matches!(e, SendError::RetryLater { in_doubt: true, .. }),
                    ..base
                }
            }
        }
    }

    /// Exponential backoff with jitter: base, 4×base, 16×base… ±20%.
    fn backoff(&self, attempts: i64) -> SignedDuration {
        let base =
            self.settings.retry_base.as_secs_f64() * 4f64.powi((attempts - 1).clamp(0, 8) as i32);
        let jitter = 0.8 + rand::random::<f64>() * 0.4;
        SignedDuration::from_secs_f64(base * jitter)
    }
}

/// One delivery through the channel, timed for `loa_send_seconds`.
async fn send_one<C: Channel>(
    channel: &C,
    d: &ClaimedDelivery,
    timer: &metrics::Histogram,
) -> Result<crate::deliver::Sent, SendError> {
    let kind = TargetKind::parse(&d.target_kind).unwrap_or(TargetKind::User);
    let msg = Outgoing {
        delivery_id: d.id,
        announcement_id: &d.announcement_id,
        kind,
        target: &d.target,
        text: &d.text,
        urgent: d.urgent,
        possible_duplicate: d.possible_duplicate,
        fallback: d.fallback.as_deref(),
    };
    let started = std::time::Instant::now();
    let result = channel.send(&msg).await;
    timer.record(started.elapsed().as_secs_f64());
    result
}
