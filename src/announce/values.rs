//! Parsers for the scalar values of the file format: local date-times, durations, quiet hours, phone
//! numbers, Zalo ids and cron expressions. Each returns the `ProblemKind` that names the mistake, so
//! `validate` can collect them all.

use std::fmt;

use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};
use jiff::civil::{Date, Time};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};

use super::problem::{CronFault, CronField, ProblemKind};

/// Parses `YYYY-MM-DD HH:MM[:SS]` (space or `T`), optionally with an offset (`+07:00`, `Z`); times
/// without an offset are in the commune's zone. With `date_end_of_day`, a bare date means the end
/// of that day (for `until`), otherwise its start.
pub fn parse_datetime(
    value: &str,
    tz: &TimeZone,
    date_end_of_day: bool,
) -> Result<Timestamp, ProblemKind> {
    let v = value.trim();
    let invalid = || ProblemKind::InvalidDateTime {
        value: v.to_string(),
    };
    let impossible = || ProblemKind::ImpossibleDateTime {
        value: v.to_string(),
    };
    if !looks_like_date(v) {
        return Err(invalid());
    }
    // By bytes, and only from a char boundary: a value may hold any character (found by fuzzing).
    let offset = v.get(16..).is_some_and(|rest| rest.contains(['+', '-']));
    if v.len() > 16 && (v.ends_with('Z') || offset) {
        return v
            .replace(' ', "T")
            .parse::<Timestamp>()
            .map_err(|_| impossible());
    }
    let civil = if v.len() == 10 {
        let date: Date = v.parse().map_err(|_| impossible())?;
        if date_end_of_day {
            date.to_datetime(Time::MAX)
        } else {
            date.to_datetime(Time::midnight())
        }
    } else {
        let (date, time) = v.split_at(10);
        let time = time.trim_start_matches([' ', 'T']);
        if !looks_like_time(time) {
            return Err(invalid());
        }
        let date: Date = date.parse().map_err(|_| impossible())?;
        date.to_datetime(parse_time(time).ok_or_else(impossible)?)
    };
    tz.to_ambiguous_zoned(civil)
        .compatible()
        .map(|z| z.timestamp())
        .map_err(|_| impossible())
}

fn looks_like_date(v: &str) -> bool {
    let b = v.as_bytes();
    b.len() >= 10
        && b[..4].iter().all(u8::is_ascii_digit)
        && b[4] == b'-'
        && b[5..7].iter().all(u8::is_ascii_digit)
        && b[7] == b'-'
        && b[8..10].iter().all(u8::is_ascii_digit)
        && (b.len() == 10 || b[10] == b' ' || b[10] == b'T')
}

fn looks_like_time(t: &str) -> bool {
    let digits_colons = |s: &str| s.bytes().all(|c| c.is_ascii_digit() || c == b':');
    let t = t.split(['+', 'Z']).next().unwrap_or(t);
    (t.len() == 5 || t.len() == 8) && digits_colons(t) && t.as_bytes()[2] == b':'
}

/// `HH:MM` or `HH:MM:SS`, 24-hour.
fn parse_time(t: &str) -> Option<Time> {
    let mut parts = t.split(':').map(|p| p.parse::<i8>().ok());
    let hour = parts.next()??;
    let minute = parts.next()??;
    let second = parts.next().unwrap_or(Some(0))?;
    Time::new(hour, minute, second, 0).ok()
}

/// A duration written as `30m`, `2h`, `1d`, `1w` or combinations like `1d12h`. Days are 24 hours:
/// Viet Nam has no daylight saving time, and the commune's zone is fixed per deployment.
pub fn parse_duration(value: &str) -> Result<SignedDuration, ProblemKind> {
    let v = value.trim();
    let invalid = || ProblemKind::InvalidDuration {
        value: v.to_string(),
    };
    let mut total: i64 = 0;
    let mut number = String::new();
    let mut seen_unit = false;
    for c in v.chars().filter(|c| !c.is_whitespace()) {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let unit: i64 = match c {
            'm' => 60,
            'h' => 3_600,
            'd' => 86_400,
            'w' => 7 * 86_400,
            _ => return Err(invalid()),
        };
        let n: i64 = number.parse().map_err(|_| invalid())?;
        total = n
            .checked_mul(unit)
            .and_then(|s| total.checked_add(s))
            .ok_or_else(invalid)?;
        number.clear();
        seen_unit = true;
    }
    if !number.is_empty() || !seen_unit {
        return Err(invalid());
    }
    if total == 0 || total > 366 * 86_400 {
        return Err(ProblemKind::DurationOutOfRange {
            value: v.to_string(),
        });
    }
    Ok(SignedDuration::from_secs(total))
}

/// Writes a duration the way it is written in files: `1d`, `2h`, `1d12h`, `30m`.
pub fn format_duration(d: SignedDuration) -> String {
    let mut secs = d.as_secs();
    let mut out = String::new();
    for (unit, name) in [(86_400, 'd'), (3_600, 'h'), (60, 'm')] {
        if secs >= unit {
            out.push_str(&format!("{}{}", secs / unit, name));
            secs %= unit;
        }
    }
    if out.is_empty() { "0m".into() } else { out }
}

/// Quiet hours: a daily local time range, which may cross midnight.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QuietHours {
    pub start: Time,
    pub end: Time,
}

impl fmt::Display for QuietHours {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}-{}",
            self.start.strftime("%H:%M"),
            self.end.strftime("%H:%M")
        )
    }
}

pub fn parse_quiet_hours(value: &str) -> Result<QuietHours, ProblemKind> {
    let invalid = || ProblemKind::InvalidQuietHours {
        value: value.to_string(),
    };
    let (a, b) = value.trim().split_once('-').ok_or_else(invalid)?;
    let time = |s: &str| {
        let s = s.trim();
        let padded = if s.len() == 4 {
            format!("0{s}")
        } else {
            s.to_string()
        };
        if padded.len() != 5 {
            None
        } else {
            parse_time(&padded)
        }
    };
    let (start, end) = (time(a).ok_or_else(invalid)?, time(b).ok_or_else(invalid)?);
    if start == end {
        return Err(invalid());
    }
    Ok(QuietHours { start, end })
}

/// Normalises a Vietnamese mobile number to the `84…` form that ZNS expects.
pub fn parse_phone(value: &str) -> Result<String, ProblemKind> {
    let digits: String = value
        .chars()
        .filter(|c| !matches!(c, ' ' | '.' | '-'))
        .collect();
    let national = if let Some(rest) = digits.strip_prefix("+84").or(digits.strip_prefix("84")) {
        rest.to_string()
    } else if let Some(rest) = digits.strip_prefix('0') {
        rest.to_string()
    } else {
        String::new()
    };
    if national.len() == 9
        && national.bytes().all(|c| c.is_ascii_digit())
        && !national.starts_with('0')
    {
        Ok(format!("84{national}"))
    } else {
        Err(ProblemKind::InvalidPhone {
            value: value.to_string(),
        })
    }
}

/// Zalo user, group and OA ids are long decimal or hexadecimal strings.
pub fn check_zalo_id(value: &str) -> Result<(), ProblemKind> {
    let ok = (6..=64).contains(&value.len()) && value.bytes().all(|c| c.is_ascii_hexdigit());
    if ok {
        Ok(())
    } else {
        Err(ProblemKind::InvalidZaloId {
            value: value.to_string(),
        })
    }
}

/// A parsed cron expression with its source text. Five fields as in Vixie cron (day-of-month OR
/// day-of-week when both are restricted), or six with seconds first.
#[derive(Clone, Debug)]
pub struct CronExpr {
    pub source: String,
    pub cron: Cron,
}

pub fn parse_cron(value: &str) -> Result<CronExpr, ProblemKind> {
    let source = value.split_whitespace().collect::<Vec<_>>().join(" ");
    let invalid = |fault: CronFault| ProblemKind::InvalidCron {
        value: source.clone(),
        fault,
    };
    let fields = source.split(' ').count();
    if !(5..=6).contains(&fields) {
        return Err(invalid(CronFault::FieldCount(fields)));
    }
    // Vixie cron ORs day-of-month and day-of-week only when both are restricted, and a field that
    // starts with `*` (including `*/2`) counts as unrestricted. croner ORs whenever neither is a
    // bare `*`, so `0 8 */10 * MON` would also fire on the 1st, 11th, 21st: ask it to AND instead.
    let day_fields: Vec<&str> = source.split(' ').skip(fields - 3).step_by(2).collect();
    let star_day = day_fields.iter().any(|f| f.starts_with('*'));
    let parser = CronParser::builder()
        .seconds(Seconds::Optional)
        .year(Year::Disallowed)
        .dom_and_dow(star_day)
        .build();
    // An empty item in a list (`,5` or `1,,2`) leaves croner a field that matches nothing, and
    // finding that out took it seconds (found by fuzzing): refuse it here, naming the field.
    if let Some(fault) = empty_list_item(&source) {
        return Err(invalid(fault));
    }
    let cron = parser.parse(&source).map_err(|e| {
        invalid(faulty_field(&parser, &source).unwrap_or(CronFault::Other(e.to_string())))
    })?;
    Ok(CronExpr { source, cron })
}

/// The first field with an empty item in its comma-separated list.
fn empty_list_item(source: &str) -> Option<CronFault> {
    let parts: Vec<&str> = source.split(' ').collect();
    let names = field_names(parts.len());
    parts.iter().zip(names).find_map(|(part, name)| {
        part.split(',')
            .any(str::is_empty)
            .then(|| CronFault::Field {
                field: *name,
                text: part.to_string(),
            })
    })
}

fn field_names(fields: usize) -> &'static [CronField] {
    if fields == 6 {
        &[
            CronField::Second,
            CronField::Minute,
            CronField::Hour,
            CronField::DayOfMonth,
            CronField::Month,
            CronField::DayOfWeek,
        ]
    } else {
        &[
            CronField::Minute,
            CronField::Hour,
            CronField::DayOfMonth,
            CronField::Month,
            CronField::DayOfWeek,
        ]
    }
}

/// Names the first field that is wrong on its own, by parsing it with every other field `*`.
fn faulty_field(parser: &CronParser, source: &str) -> Option<CronFault> {
    let parts: Vec<&str> = source.split(' ').collect();
    let names = field_names(parts.len());
    (0..parts.len()).find_map(|i| {
        let alone: Vec<&str> = (0..parts.len())
            .map(|j| if i == j { parts[j] } else { "*" })
            .collect();
        parser
            .parse(&alone.join(" "))
            .is_err()
            .then(|| CronFault::Field {
                field: names[i],
                text: parts[i].to_string(),
            })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vn() -> TimeZone {
        TimeZone::get("Asia/Ho_Chi_Minh").expect("bundled tzdb")
    }

    #[test]
    fn local_times_are_in_the_commune_zone() {
        let t = parse_datetime("2026-12-01 07:30", &vn(), false).expect("valid");
        assert_eq!(t.to_string(), "2026-12-01T00:30:00Z");
        let t = parse_datetime("2026-12-01T07:30:15", &vn(), false).expect("valid");
        assert_eq!(t.to_string(), "2026-12-01T00:30:15Z");
        let t = parse_datetime("2026-12-01 07:30+00:00", &vn(), false).expect("valid");
        assert_eq!(t.to_string(), "2026-12-01T07:30:00Z");
    }

    /// Regression (found by fuzzing): `, */6 * * *` (an empty minute item) made croner search
    /// for seconds before `check` could say the expression never fires.
    #[test]
    fn empty_list_items_in_cron_fields_are_refused_at_once() {
        for (v, field) in [
            (", */6 * * *", CronField::Minute),
            ("0 1,,2 * * *", CronField::Hour),
            ("0 8 * * MON,", CronField::DayOfWeek),
        ] {
            match parse_cron(v) {
                Err(ProblemKind::InvalidCron {
                    fault: CronFault::Field { field: f, .. },
                    ..
                }) => {
                    assert_eq!(f, field, "{v}")
                }
                other => panic!("{v}: {other:?}"),
            }
        }
        assert!(parse_cron("0,30 8 * * MON,FRI").is_ok());
    }

    /// Regression (found by fuzzing): a character of several bytes across byte 16 panicked.
    #[test]
    fn a_multibyte_character_in_a_time_is_a_problem_not_a_panic() {
        for v in [
            "2026-02-29 08:\u{feff}00",
            "2026-02-28 08:0\u{feff}0",
            "2026-11-23 07:3đ",
        ] {
            assert!(parse_datetime(v, &vn(), false).is_err(), "{v}");
        }
    }

    #[test]
    fn bare_dates_start_or_end_the_day() {
        let from = parse_datetime("2026-11-23", &vn(), false).expect("valid");
        let until = parse_datetime("2026-11-23", &vn(), true).expect("valid");
        assert_eq!(from.to_string(), "2026-11-22T17:00:00Z");
        assert_eq!(until.to_string(), "2026-11-23T16:59:59.999999999Z");
    }

    #[test]
    fn impossible_and_malformed_dates_are_told_apart() {
        for v in [
            "2026-02-29 07:00",
            "2026-11-31",
            "2026-12-01 24:00",
            "2026-12-01 07:60",
        ] {
            assert!(
                matches!(
                    parse_datetime(v, &vn(), false),
                    Err(ProblemKind::ImpossibleDateTime { .. })
                ),
                "{v}"
            );
        }
        assert!(
            parse_datetime("2028-02-29 07:00", &vn(), false).is_ok(),
            "leap day"
        );
        for v in ["01/12/2026", "tomorrow", "2026-12-01 7h30", "2026-12-1"] {
            assert!(
                matches!(
                    parse_datetime(v, &vn(), false),
                    Err(ProblemKind::InvalidDateTime { .. })
                ),
                "{v}"
            );
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("7d").map(|d| d.as_secs()), Ok(7 * 86_400));
        assert_eq!(parse_duration("1d12h").map(|d| d.as_secs()), Ok(36 * 3_600));
        assert_eq!(parse_duration("30m").map(|d| d.as_secs()), Ok(1_800));
        for bad in ["", "2", "2x", "h", "0h", "-1d", "400d"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        assert_eq!(
            format_duration(SignedDuration::from_secs(36 * 3_600)),
            "1d12h"
        );
    }

    #[test]
    fn quiet_hours_and_phones() {
        let q = parse_quiet_hours("21:30-6:00").expect("valid");
        assert_eq!(q.to_string(), "21:30-06:00");
        assert!(parse_quiet_hours("21:30").is_err());
        assert!(parse_quiet_hours("25:00-06:00").is_err());
        assert_eq!(parse_phone("0912 345 678"), Ok("84912345678".into()));
        assert_eq!(parse_phone("+84912345678"), Ok("84912345678".into()));
        assert!(parse_phone("091234567").is_err());
        assert!(parse_phone("1912345678").is_err());
    }

    #[test]
    fn cron_field_counts() {
        assert!(parse_cron("0 7 * * MON").is_ok());
        assert!(parse_cron("0 0 7 * * MON").is_ok());
        assert!(parse_cron("0 7 * *").is_err());
        assert!(parse_cron("0 7 * * * * 2026").is_err());
        assert!(parse_cron("0 25 * * *").is_err());
    }
}
