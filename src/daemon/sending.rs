//! The send loop: claims due deliveries a chunk at a time, sends each chunk concurrently and
//! records every outcome after the provider answered. The database and the network work at the
//! same time: while one chunk is on the wire, the outcomes of the one before are written and the
//! next one is claimed, in one transaction. A crash therefore leaves at most two chunks in doubt:
//! the one on the wire and the one answered but not yet written. Each claim is numbered and the
//! number is written before its chunk goes out, so the chunk claimed ahead is released by recovery
//! as never sent instead of counted in doubt.

use futures_util::future::join_all;
use jiff::Timestamp;

use super::ledger_thread::LedgerThread;
use super::{Daemon, TickReport};
use crate::deliver::{Channel, Outgoing, SendError, TargetKind};
use crate::ledger::{Claim, ClaimedDelivery, Outcome};

impl<C: Channel> Daemon<C> {
    /// Sends everything due, chunk after chunk, until nothing is due, `stop()` says so, or the
    /// tick's `send_budget` is spent (the run loop then turns again at once, and expands what fell
    /// due meanwhile: an urgent warning goes ahead of the rest of a long fan-out). Both are
    /// checked before each claim: what is claimed is always sent and recorded. While the channel
    /// is paused (`Channel::paused_until`), nothing is claimed but its probe, when that is due.
    pub(super) async fn send_due(
        &self,
        now: Timestamp,
        stop: &(dyn Fn() -> bool + Sync),
        report: &mut TickReport,
    ) -> anyhow::Result<()> {
        // A probe that gets through opens the channel: what waited goes now, not a turn later.
        while self.send_chunks(now, stop, report).await?
            && self.channel.paused_until().is_none()
            && !stop()
        {}
        Ok(())
    }

    /// `send_due`'s chunks; true when the first was a paused channel's probe.
    async fn send_chunks(
        &self,
        now: Timestamp,
        stop: &(dyn Fn() -> bool + Sync),
        report: &mut TickReport,
    ) -> anyhow::Result<bool> {
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
        let started = std::time::Instant::now();
        // While the channel is paused (Zalo refuses the OA), nothing is claimed until its probe
        // may go, and then only the probe: the rest stay due for a daemon whose calls go through.
        let allowed_when = |paused: Option<Timestamp>| match paused {
            None => limit,
            Some(at) if at <= self.clock.now() => 1,
            Some(_) => 0,
        };
        let allowed = || allowed_when(self.channel.paused_until());
        let more = || !stop() && started.elapsed() < self.settings.send_budget;
        let paused = self.channel.paused_until();
        let first_limit = allowed_when(paused);
        if first_limit == 0 {
            return Ok(false);
        }
        let probe = paused.is_some();
        let mut number = self.next_chunk();
        let first = claim(first_limit, number);
        let mut lease_until = first.lease_until;
        let (_, mut chunk) = self
            .store
            .record_and_claim(commune, node, &[], now, first)
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
            // A chunk claimed ahead waits while the one before it is on the wire, which Zalo's
            // rate-limit pause can make longer than the lease; then another daemon may have
            // taken its deliveries back. Renewed when less than half the lease is left, and only
            // what is still ours goes out.
            let at = self.clock.now();
            if at + self.settings.lease / 2 > lease_until {
                lease_until = at + self.settings.lease;
                let ours = self
                    .store
                    .renew_claim(commune, node, number, lease_until)
                    .await?;
                let before = chunk.len();
                chunk.retain(|d| ours.contains(&d.id));
                if chunk.len() < before {
                    tracing::warn!(
                        lost = before - chunk.len(),
                        "a chunk waited past its lease; deliveries another daemon took back are left to it"
                    );
                }
                if chunk.is_empty() {
                    break;
                }
            }
            // Written before the chunk goes out, so that after a crash the chunk claimed ahead
            // (numbered after this one) is known never to have left. From this task, not through
            // the ledger thread: the chunk's sends and write are over, so nothing delays it here,
            // and the hops to that thread and back only added to the time no chunk is on the wire.
            self.store.mark_on_wire(node, number).await?;
            let next_number = self.next_chunk();
            // The requests run in a few lane tasks, one per runtime thread, so the threads share
            // them; each lane polls its deliveries' futures together. A task per delivery cost a
            // spawn and a copy of its large future each time (the README gives the figures), and
            // the write runs on the ledger thread, not among them.
            let sends: Vec<_> = lanes(std::mem::take(&mut chunk), self.lane_count())
                .into_iter()
                .map(|lane| {
                    let channel = self.channel.clone();
                    let timer = timer.clone();
                    tokio::spawn(async move { send_lane(&*channel, lane, &timer).await })
                })
                .collect();
            let earlier_count = answered.len();
            let write = {
                let store = self.store.clone();
                let (commune, node) = (commune.to_string(), node.to_string());
                let next = claim(if more() { allowed() } else { 0 }, next_number);
                lease_until = next.lease_until;
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
                .flat_map(|lane| match lane {
                    Ok(sent) => sent,
                    // Each send is caught on its own (`send_lane`); a lane that still failed
                    // leaves its deliveries to the lease, like a send that panicked.
                    Err(e) => {
                        tracing::error!(error = %e, "a send lane failed");
                        Vec::new()
                    }
                })
                .map(|(d, result)| self.outcome(&d, result, answered_at))
                .collect();
            self.count(&answered, report);
            match written? {
                Ok((recorded, next)) => {
                    if recorded < earlier_count {
                        // Their lease ran out while they were on the wire, and another daemon
                        // took them over as in doubt: its record stands.
                        tracing::warn!(
                            answered = earlier_count,
                            recorded,
                            "outcomes of deliveries no longer held were not recorded"
                        );
                    }
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
        Ok(probe)
    }

    /// How many lane tasks a chunk's requests run in: one per thread of the runtime.
    fn lane_count(&self) -> usize {
        tokio::runtime::Handle::try_current()
            .map(|h| h.metrics().num_workers())
            .unwrap_or(1)
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
}

/// Splits a chunk into `n` lanes of nearly equal length, in claim order.
fn lanes(chunk: Vec<ClaimedDelivery>, n: usize) -> Vec<Vec<ClaimedDelivery>> {
    let per = chunk.len().div_ceil(n.max(1)).max(1);
    let mut rest = chunk.into_iter().peekable();
    let mut out = Vec::new();
    while rest.peek().is_some() {
        out.push(rest.by_ref().take(per).collect());
    }
    out
}

/// Sends a lane's deliveries concurrently and returns those that were answered. A send that
/// panicked is left out: it may or may not have reached the provider, so its lease runs out and
/// it is recovered as in doubt, as after a crash.
async fn send_lane<C: Channel>(
    channel: &C,
    lane: Vec<ClaimedDelivery>,
    timer: &metrics::Histogram,
) -> Vec<(ClaimedDelivery, Result<crate::deliver::Sent, SendError>)> {
    use futures_util::FutureExt as _;
    let sends = lane.into_iter().map(|d| async move {
        let result = std::panic::AssertUnwindSafe(send_one(channel, &d, timer))
            .catch_unwind()
            .await;
        match result {
            Ok(result) => Some((d, result)),
            Err(_) => {
                tracing::error!(
                    delivery = d.id,
                    "a send panicked; left to recovery as in doubt"
                );
                None
            }
        }
    });
    join_all(sends).await.into_iter().flatten().collect()
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
        sent_parts: d.sent_parts.as_deref(),
    };
    let started = std::time::Instant::now();
    let result = channel.send(&msg).await;
    timer.record(started.elapsed().as_secs_f64());
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deliver::Sent;

    fn delivery(id: i64) -> ClaimedDelivery {
        let at = Timestamp::UNIX_EPOCH;
        ClaimedDelivery {
            id,
            occurrence_id: 1,
            announcement_id: "tb".into(),
            village_id: None,
            target_kind: "user".into(),
            target: format!("u{id}"),
            text: "Mời bà con họp.".into(),
            urgent: false,
            due: at,
            deadline: at,
            attempts: 1,
            possible_duplicate: false,
            fallback: None,
            sent_parts: None,
        }
    }

    /// Answers every delivery with its own id, refuses id 2 and panics on id 3.
    struct Picky;

    impl Channel for Picky {
        fn name(&self) -> &'static str {
            "picky"
        }

        async fn send(&self, msg: &Outgoing<'_>) -> Result<Sent, SendError> {
            tokio::task::yield_now().await;
            match msg.delivery_id {
                2 => Err(SendError::Final {
                    code: "-213".into(),
                    reason: "not a follower".into(),
                }),
                3 => panic!("a bug in a channel"),
                id => Ok(Sent {
                    message_id: format!("m{id}"),
                    note: None,
                }),
            }
        }
    }

    #[test]
    fn lanes_keep_claim_order_and_split_evenly() {
        let ids = |lanes: Vec<Vec<ClaimedDelivery>>| -> Vec<Vec<i64>> {
            lanes
                .into_iter()
                .map(|l| l.into_iter().map(|d| d.id).collect())
                .collect()
        };
        let chunk = |n: i64| (1..=n).map(delivery).collect::<Vec<_>>();
        assert_eq!(ids(lanes(chunk(5), 2)), vec![vec![1, 2, 3], vec![4, 5]]);
        assert_eq!(ids(lanes(chunk(4), 2)), vec![vec![1, 2], vec![3, 4]]);
        assert_eq!(ids(lanes(chunk(1), 4)), vec![vec![1]]);
        assert_eq!(ids(lanes(chunk(3), 0)), vec![vec![1, 2, 3]]);
        assert!(lanes(Vec::new(), 2).is_empty());
    }

    #[tokio::test]
    async fn a_lane_answers_every_send_but_one_that_panicked() {
        let timer = metrics::histogram!("loa_send_seconds_test");
        let answered = send_lane(&Picky, (1..=5).map(delivery).collect(), &timer).await;
        let seen: Vec<(i64, bool)> = answered.iter().map(|(d, r)| (d.id, r.is_ok())).collect();
        // The panicking send (3) is left out, for the lease to recover as in doubt; the others,
        // refused or sent, are all answered, in claim order.
        assert_eq!(seen, vec![(1, true), (2, false), (4, true), (5, true)]);
        let ids: Vec<String> = answered
            .into_iter()
            .filter_map(|(_, r)| r.ok().map(|s| s.message_id))
            .collect();
        assert_eq!(ids, ["m1", "m4", "m5"]);
    }
}
