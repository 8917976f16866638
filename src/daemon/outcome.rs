//! What a provider's answer makes of a delivery: its next state (sent, failed, retried later
//! with backoff, waited out, expired), and the tick's and `loa_sends_total`'s counts of them.

use jiff::{SignedDuration, Timestamp};

use super::{Daemon, TickReport};
use crate::deliver::{Channel, SendError};
use crate::ledger::{ClaimedDelivery, DeliveryState, Outcome};

impl<C: Channel> Daemon<C> {
    /// Adds a chunk's outcomes to the tick's report and to `loa_sends_total` (one increment
    /// per outcome kind: the registry lookup is per call, not per delivery).
    pub(super) fn count(&self, outcomes: &[Outcome], report: &mut TickReport) {
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
    pub(super) fn outcome(
        &self,
        d: &ClaimedDelivery,
        result: Result<crate::deliver::Sent, SendError>,
        now: Timestamp,
    ) -> Outcome {
        // The parts of a long text accepted before the error are kept with the delivery: the
        // next attempt sends only the rest.
        let (sent_parts, result) = match result {
            Err(SendError::PartlySent { sent, then }) => (Some(sent), Err(*then)),
            result => (None, result),
        };
        let base = Outcome::sent(d.id, sent_parts);
        match result {
            Ok(sent) => Outcome {
                provider_message_id: Some(sent.message_id),
                error_reason: sent.note,
                ..base
            },
            Err(SendError::Final { code, reason }) => Outcome {
                state: DeliveryState::Failed,
                error_code: Some(code),
                error_reason: Some(match &base.provider_message_id {
                    Some(ids) => format!(
                        "{reason} (after {} part(s) were accepted)",
                        ids.split(',').count()
                    ),
                    None => reason,
                }),
                ..base
            },
            // Not counted: a night ban or a spent quota is waited out until the deadline, not
            // given up on after a few tries.
            Err(SendError::NotNow {
                code,
                reason,
                after,
            }) => {
                // At the latest at its deadline: a wait longer than the time left still leaves
                // one try (a ban answered at 06:00:05 is over by 06:01).
                let wait = SignedDuration::try_from(after).unwrap_or_default();
                let next = (now + wait).min(d.deadline);
                Outcome {
                    state: if now >= d.deadline {
                        DeliveryState::Expired
                    } else {
                        DeliveryState::Retrying
                    },
                    error_code: Some(code),
                    error_reason: Some(reason),
                    next_attempt_at: Some(next),
                    not_an_attempt: true,
                    ..base
                }
            }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deliver::log::LogChannel;

    #[tokio::test]
    async fn a_refusal_for_now_is_waited_out_however_many_attempts_were_made() {
        let dir = tempfile::tempdir().expect("dir");
        let url = format!("sqlite://{}", dir.path().join("l.db").display());
        let store = crate::ledger::Store::open(&url).await.expect("store");
        let settings = crate::daemon::Settings {
            max_attempts: 2,
            ..crate::daemon::Settings::from_config(&crate::config::Config::default())
        };
        let channel = LogChannel::open(
            Some(&dir.path().join("sent.log")),
            std::time::Duration::ZERO,
        )
        .expect("log channel");
        let daemon = Daemon::new(store, channel, settings);
        let now = Timestamp::UNIX_EPOCH + SignedDuration::from_hours(100);
        let d = ClaimedDelivery {
            attempts: 5,
            deadline: now + SignedDuration::from_hours(12),
            id: 1,
            occurrence_id: 1,
            announcement_id: "tb".into(),
            village_id: None,
            target_kind: "user".into(),
            target: "u1".into(),
            text: "Mời bà con họp.".into(),
            urgent: false,
            due: now,
            possible_duplicate: false,
            fallback: None,
            sent_parts: None,
        };
        let night = |hours: u64| SendError::NotNow {
            code: "-133".into(),
            reason: "ZNS not allowed at night".into(),
            after: std::time::Duration::from_secs(hours * 3600),
        };
        let o = daemon.outcome(&d, Err(night(8)), now);
        assert_eq!(o.state, DeliveryState::Retrying, "{o:?}");
        assert!(o.not_an_attempt);
        assert_eq!(o.next_attempt_at, Some(now + SignedDuration::from_hours(8)));
        // A wait past its deadline leaves one try at the deadline; refused then, it expires.
        let o = daemon.outcome(&d, Err(night(13)), now);
        assert_eq!(o.state, DeliveryState::Retrying);
        assert_eq!(o.next_attempt_at, Some(d.deadline));
        let o = daemon.outcome(&d, Err(night(13)), d.deadline);
        assert_eq!(o.state, DeliveryState::Expired);
        // Any other failure counts: the fifth attempt of two allowed is the last.
        let o = daemon.outcome(
            &d,
            Err(SendError::RetryLater {
                code: "http-502".into(),
                reason: "HTTP 502".into(),
                after: None,
                in_doubt: false,
            }),
            now,
        );
        assert_eq!(o.state, DeliveryState::Failed);
    }
}
