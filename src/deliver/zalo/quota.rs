//! The OA's ZNS quota, as Zalo reports it with each phone message it accepts: how many a day and
//! how many are left today. Once it is spent, Zalo refuses phone messages until midnight (`-144`),
//! and a head outside Zalo's 7-day window has no other way to get a storm warning; so the
//! operator is told ahead: a warning in the log when a tenth or less is left, and the latest
//! report kept in the database for `loa zalo status`, the dashboard and `/metrics`.
//!
//! The send that brought the report does not wait for the database: a task of the channel's
//! writes the latest report whenever there is a new one (reports that come while it writes are
//! folded into the next write, so a burst of phone messages costs a write or two).

use jiff::Timestamp;
use tokio::sync::watch;

use super::sent_id::Quota;
use crate::ledger::{Store, StoredQuota};

/// Left at or below this share of the day's quota, the log warns (once as it falls there).
const LOW_SHARE: u64 = 10;

/// Takes the reports of one channel and has them written.
pub struct QuotaWatch {
    latest: watch::Sender<Option<(Quota, Timestamp)>>,
}

impl QuotaWatch {
    /// Starts the writer task; it ends when the watch is dropped with its channel.
    pub fn start(store: Store, commune: &str, node: &str) -> QuotaWatch {
        let (latest, mut seen) = watch::channel::<Option<(Quota, Timestamp)>>(None);
        let (commune, node) = (commune.to_string(), node.to_string());
        tokio::spawn(async move {
            while seen.changed().await.is_ok() {
                let Some((quota, at)) = *seen.borrow_and_update() else {
                    continue;
                };
                let stored = StoredQuota {
                    daily: i64::try_from(quota.daily).unwrap_or(i64::MAX),
                    remaining: i64::try_from(quota.remaining).unwrap_or(i64::MAX),
                    seen_at: at,
                    node: node.clone(),
                };
                if let Err(e) = store.put_zns_quota(&commune, &stored).await {
                    tracing::warn!(error = %e, "cannot record the ZNS quota Zalo reported");
                }
            }
        });
        QuotaWatch { latest }
    }

    /// A report that came with an accepted phone message at `at`. Answers to sends made at the
    /// same time come in any order: of one day's reports, the fewest left stands.
    pub fn seen(&self, quota: Quota, at: Timestamp) {
        self.latest.send_modify(|latest| {
            let before = latest.map(|(q, _)| q);
            if newly_low(before, quota) {
                tracing::warn!(
                    remaining = quota.remaining,
                    daily = quota.daily,
                    "the OA's ZNS quota for today is nearly spent: once it is, heads outside Zalo's 7-day window cannot be reached by phone until midnight"
                );
            }
            let quota = match *latest {
                Some((b, seen)) if b.daily == quota.daily && of_today(seen, at) => Quota {
                    remaining: quota.remaining.min(b.remaining),
                    ..quota
                },
                _ => quota,
            };
            *latest = Some((quota, at));
        });
    }
}

/// What a stored report says at `now`: how many are left today, and whether that is low. None when
/// it is of an earlier day: Zalo has renewed the quota since, and the whole day's is left.
pub fn today(q: &StoredQuota, now: Timestamp) -> Option<(u64, bool)> {
    let (daily, left) = (q.daily.max(0) as u64, q.remaining.max(0) as u64);
    of_today(q.seen_at, now).then(|| (left, is_low(daily, left)))
}

/// Whether a report seen at `seen_at` is of `now`'s day: Zalo renews the quota at Vietnamese
/// midnight.
fn of_today(seen_at: Timestamp, now: Timestamp) -> bool {
    match jiff::tz::TimeZone::get(super::errors::ZALO_TZ) {
        Ok(tz) => seen_at.to_zoned(tz.clone()).date() == now.to_zoned(tz).date(),
        Err(_) => false,
    }
}

/// Whether a quota is low: a tenth or less of the day's left.
fn is_low(daily: u64, remaining: u64) -> bool {
    remaining.saturating_mul(LOW_SHARE) <= daily
}

/// Whether `now` is the report that finds the quota low: the first that is, or the first again
/// after a new day's quota (more left than before) was not.
fn newly_low(before: Option<Quota>, now: Quota) -> bool {
    let low = |q: Quota| is_low(q.daily, q.remaining);
    low(now) && before.is_none_or(|b| !low(b) || now.remaining > b.remaining)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(daily: u64, remaining: u64) -> Quota {
        Quota { daily, remaining }
    }

    #[test]
    fn the_log_warns_once_as_the_quota_falls_to_a_tenth() {
        assert!(!newly_low(None, q(500, 51)));
        assert!(newly_low(Some(q(500, 51)), q(500, 50)));
        // Already low: not again for each message after it.
        assert!(!newly_low(Some(q(500, 50)), q(500, 49)));
        assert!(!newly_low(Some(q(500, 1)), q(500, 0)));
        // Found low at the first report (a restart, or several daemons).
        assert!(newly_low(None, q(500, 3)));
        // A new day's quota, low from the start (a tiny quota): warned again.
        assert!(newly_low(Some(q(20, 0)), q(20, 1)));
        // No quota at all is as low as it gets.
        assert!(newly_low(None, q(0, 0)));
    }

    #[test]
    fn of_one_days_reports_the_fewest_left_stands() {
        let at = |s: &str| s.parse::<Timestamp>().expect("time");
        // No writer task: only what the watch keeps.
        let (latest, _) = watch::channel(None);
        let watch = QuotaWatch { latest };
        watch.seen(q(500, 40), at("2026-11-25T02:00:00Z"));
        // An answer to an earlier send, come late.
        watch.seen(q(500, 41), at("2026-11-25T02:00:01Z"));
        let latest = |w: &QuotaWatch| w.latest.borrow().map(|(q, _)| q);
        assert_eq!(latest(&watch), Some(q(500, 40)));
        // The next day (Vietnamese), or a new daily quota: the report as it is.
        watch.seen(q(500, 499), at("2026-11-25T17:00:01Z"));
        assert_eq!(latest(&watch), Some(q(500, 499)));
        watch.seen(q(1000, 900), at("2026-11-25T17:00:02Z"));
        assert_eq!(latest(&watch), Some(q(1000, 900)));
        // What a stored report says: left today and low, or nothing once a day has passed.
        let stored = StoredQuota {
            daily: 500,
            remaining: 37,
            seen_at: at("2026-11-25T02:13:00Z"),
            node: "n1".into(),
        };
        assert_eq!(today(&stored, at("2026-11-25T03:00:00Z")), Some((37, true)));
        let plenty = StoredQuota {
            remaining: 51,
            ..stored.clone()
        };
        assert_eq!(
            today(&plenty, at("2026-11-25T03:00:00Z")),
            Some((51, false))
        );
        assert_eq!(today(&stored, at("2026-11-25T17:30:00Z")), None);
    }

    #[test]
    fn a_report_is_of_today_until_vietnamese_midnight() {
        let at = |s: &str| s.parse::<Timestamp>().expect("time");
        // 23:50 and 23:59 in Vietnam (16:50, 16:59 UTC): the same day; 00:01 the next.
        assert!(of_today(
            at("2026-11-24T16:50:00Z"),
            at("2026-11-24T16:59:00Z")
        ));
        assert!(!of_today(
            at("2026-11-24T16:50:00Z"),
            at("2026-11-24T17:01:00Z")
        ));
        // 06:00 in Vietnam is 23:00 UTC the day before: the same Vietnamese day as 09:00.
        assert!(of_today(
            at("2026-11-24T23:00:00Z"),
            at("2026-11-25T02:00:00Z")
        ));
    }
}
