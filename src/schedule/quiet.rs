//! Quiet hours: a daily local time range in which non-urgent sends wait for its end.

use jiff::Timestamp;
use jiff::tz::TimeZone;

use crate::announce::values::QuietHours;

/// If `t` falls inside the quiet hours, the instant they end; otherwise None.
pub fn quiet_end(quiet: &QuietHours, t: Timestamp, tz: &TimeZone) -> Option<Timestamp> {
    let local = t.to_zoned(tz.clone());
    let (time, date) = (local.time(), local.date());
    let end_date = if quiet.start < quiet.end {
        (quiet.start <= time && time < quiet.end).then_some(date)?
    } else if time >= quiet.start {
        date.tomorrow().ok()?
    } else if time < quiet.end {
        date
    } else {
        return None;
    };
    let end = end_date.to_datetime(quiet.end);
    tz.to_ambiguous_zoned(end)
        .compatible()
        .ok()
        .map(|z| z.timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::announce::values::{parse_datetime, parse_quiet_hours};

    fn at(s: &str, tz: &TimeZone) -> Timestamp {
        parse_datetime(s, tz, false).expect("valid test time")
    }

    #[test]
    fn across_midnight() {
        let tz = TimeZone::get("Asia/Ho_Chi_Minh").expect("tz");
        let q = parse_quiet_hours("21:30-06:00").expect("valid");
        assert_eq!(quiet_end(&q, at("2026-11-30 21:29", &tz), &tz), None);
        assert_eq!(
            quiet_end(&q, at("2026-11-30 21:30", &tz), &tz),
            Some(at("2026-12-01 06:00", &tz))
        );
        assert_eq!(
            quiet_end(&q, at("2026-11-30 23:59", &tz), &tz),
            Some(at("2026-12-01 06:00", &tz))
        );
        // Month and year ends roll over correctly.
        assert_eq!(
            quiet_end(&q, at("2026-12-31 22:00", &tz), &tz),
            Some(at("2027-01-01 06:00", &tz))
        );
        assert_eq!(
            quiet_end(&q, at("2027-01-01 05:59", &tz), &tz),
            Some(at("2027-01-01 06:00", &tz))
        );
        assert_eq!(quiet_end(&q, at("2027-01-01 06:00", &tz), &tz), None);
    }

    #[test]
    fn within_one_day() {
        let tz = TimeZone::get("Asia/Ho_Chi_Minh").expect("tz");
        let q = parse_quiet_hours("11:30-13:30").expect("valid");
        assert_eq!(
            quiet_end(&q, at("2026-11-30 12:00", &tz), &tz),
            Some(at("2026-11-30 13:30", &tz))
        );
        assert_eq!(quiet_end(&q, at("2026-11-30 13:30", &tz), &tz), None);
        assert_eq!(quiet_end(&q, at("2026-11-30 22:00", &tz), &tz), None);
    }
}
