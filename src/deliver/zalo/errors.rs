//! What each Zalo error code means for the recipient at hand: try again later, refresh the token
//! and try again, give up on this recipient with the reason recorded, or (a refusal of the OA
//! itself) pause and try everyone again later. The simulator answers
//! with the same codes and messages.

use std::time::Duration;

/// What to do after an error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// Transient: back off and retry (`after` overrides the usual backoff when set).
    RetryLater { after: Option<Duration> },
    /// The access token is invalid or expired: refresh, then retry.
    Refresh,
    /// Final for this recipient.
    Final,
    /// Refused for now, for a reason that passes by itself (Zalo's night ban, a quota, the rate
    /// limit): tried again when it has passed, and not counted as an attempt however long that
    /// takes, so that a message due at 22:30 is not given up on by morning.
    NotNow(Until),
    /// The OA itself cannot send (disabled, or a wrong app secret behind `appsecret_proof`):
    /// every recipient would get the same answer, and it takes the operator to mend it. The
    /// channel stops calling and probes with one send every 10 minutes (`halt.rs`); nobody's
    /// message is given up for it, each waits for the OA or its deadline.
    Halt,
}

/// When a refusal for now (`Class::NotNow`) has passed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Until {
    /// The end of Zalo's night ban: 06:00 in Vietnam, when refused at night. Refused by day
    /// (Zalo's clock a little behind ours at 06:00, or ban hours other than the reference's,
    /// which it calls unconfirmed for ZNS), in ten minutes instead of the next morning, which
    /// would be past most deadlines.
    Morning,
    /// Vietnamese midnight, when daily limits start again.
    NextDay,
    /// An hour: a quota the OA must buy more of, whose period the reference does not give.
    InAnHour,
    /// The end of the rate limiter's pause.
    RateWindow,
}

/// Zalo's clock: its night ban and daily limits follow Vietnamese time, whatever the commune's
/// own time zone.
pub const ZALO_TZ: &str = "Asia/Ho_Chi_Minh";

impl Until {
    /// How long from `now` until then (`RateWindow` is the limiter's to say: zero here).
    pub fn after(self, now: jiff::Timestamp) -> Duration {
        let next_at = |hour: i8| {
            let tz = jiff::tz::TimeZone::get(ZALO_TZ).ok()?;
            let local = now.to_zoned(tz);
            let today = local
                .date()
                .at(hour, 0, 0, 0)
                .to_zoned(local.time_zone().clone())
                .ok()?;
            let at = if today.timestamp() > now {
                today
            } else {
                today.tomorrow().ok()?
            };
            Duration::try_from(now.duration_until(at.timestamp())).ok()
        };
        let hour = Duration::from_secs(3600);
        let night = jiff::tz::TimeZone::get(ZALO_TZ)
            .map(|tz| now.to_zoned(tz).hour())
            .is_ok_and(|h| !(6..21).contains(&h));
        match self {
            // A minute past the hour: Zalo's clock and ours differ by a few seconds.
            Until::Morning if night => next_at(6).map_or(hour, |d| d + Duration::from_secs(60)),
            Until::Morning => Duration::from_secs(10 * 60),
            Until::NextDay => next_at(0).map_or(hour, |d| d + Duration::from_secs(60)),
            Until::InAnHour => hour,
            Until::RateWindow => Duration::ZERO,
        }
    }
}

/// A known code: its class and what it means (English, for logs and the ledger).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Code {
    pub code: i64,
    pub class: Class,
    pub meaning: &'static str,
}

/// Every code in the reference, OA API and ZNS alike.
pub const CODES: &[Code] = &[
    code(-32, Class::NotNow(Until::RateWindow), "rate limit exceeded"),
    code(-200, Class::RetryLater { after: None }, "send failed"),
    code(-201, Class::Final, "parameter invalid"),
    code(-204, Class::Halt, "OA disabled"),
    code(-211, Class::NotNow(Until::InAnHour), "out of quota"),
    code(-213, Class::Final, "user has not followed the OA"),
    code(-216, Class::Refresh, "access token invalid"),
    code(-217, Class::Final, "user blocked OA invitations"),
    code(-220, Class::Refresh, "access token expired or removed"),
    code(
        -227,
        Class::Final,
        "user banned or inactive for more than 45 days",
    ),
    code(
        -230,
        Class::Final,
        "no interaction with the OA in the last 7 days",
    ),
    code(-232, Class::Final, "the last interaction has expired"),
    code(
        -234,
        Class::NotNow(Until::Morning),
        "not allowed at night (22:00-06:00)",
    ),
    code(-237, Class::Final, "group disabled"),
    code(-240, Class::Final, "the v2 send API is shut down"),
    code(-242, Class::Halt, "appsecret_proof invalid"),
    code(-244, Class::Final, "user restricted this message type"),
    code(-403, Class::Final, "the OA is not in this group"),
    code(-108, Class::Final, "phone number invalid"),
    code(-109, Class::Final, "ZNS template invalid"),
    code(-111, Class::Final, "ZNS template data empty"),
    code(
        -112,
        Class::Final,
        "ZNS template data invalid (a parameter missing or too long)",
    ),
    code(-114, Class::Final, "user cannot receive ZNS messages"),
    code(-115, Class::NotNow(Until::InAnHour), "ZNS out of quota"),
    code(-124, Class::Refresh, "access token invalid (ZNS)"),
    code(
        -133,
        Class::NotNow(Until::Morning),
        "ZNS not allowed at night",
    ),
    code(
        -144,
        Class::NotNow(Until::NextDay),
        "ZNS daily limit reached",
    ),
];

const fn code(code: i64, class: Class, meaning: &'static str) -> Code {
    Code {
        code,
        class,
        meaning,
    }
}

/// The entry for a code. Unknown codes are final: the server answered and refused the message,
/// and retrying a refusal we cannot read only repeats it (the code is recorded for the operator).
pub fn lookup(error: i64) -> Code {
    CODES
        .iter()
        .copied()
        .find(|c| c.code == error)
        .unwrap_or(Code {
            code: error,
            class: Class::Final,
            meaning: "unknown error",
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_classified() {
        let mut seen = std::collections::HashSet::new();
        for c in CODES {
            assert!(seen.insert(c.code), "{} twice", c.code);
        }
        assert_eq!(lookup(-32).class, Class::NotNow(Until::RateWindow));
        assert_eq!(lookup(-133).class, Class::NotNow(Until::Morning));
        assert_eq!(lookup(-144).class, Class::NotNow(Until::NextDay));
        assert_eq!(lookup(-220).class, Class::Refresh);
        for final_code in [-213, -217, -227, -230] {
            assert_eq!(lookup(final_code).class, Class::Final);
        }
        assert_eq!(lookup(-99999).class, Class::Final);
        assert_eq!(lookup(-204).class, Class::Halt);
        assert_eq!(lookup(-242).class, Class::Halt);
    }

    #[test]
    fn a_refusal_for_now_waits_for_vietnamese_morning_or_midnight() {
        let at = |s: &str| s.parse::<jiff::Timestamp>().expect("time");
        // 22:30 in Vietnam (15:30 UTC): the night ban ends at 06:00, the day at midnight.
        let night = at("2026-12-01T15:30:00Z");
        assert_eq!(
            Until::Morning.after(night),
            Duration::from_secs(7 * 3600 + 30 * 60 + 60)
        );
        assert_eq!(
            Until::NextDay.after(night),
            Duration::from_secs(90 * 60 + 60)
        );
        // 05:00: the same morning, not the next.
        let dawn = at("2026-12-01T22:00:00Z");
        assert_eq!(Until::Morning.after(dawn), Duration::from_secs(3600 + 60));
        assert_eq!(Until::InAnHour.after(dawn), Duration::from_secs(3600));
        // Refused at 06:00:05, or at noon: not a whole day, ten minutes.
        let six = at("2026-12-01T23:00:05Z");
        assert_eq!(Until::Morning.after(six), Duration::from_secs(600));
        assert_eq!(
            Until::Morning.after(at("2026-12-02T05:00:00Z")),
            Duration::from_secs(600)
        );
    }
}
