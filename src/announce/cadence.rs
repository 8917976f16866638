//! How often a cron expression fires: the shortest gap between two of its sends, found exactly
//! rather than by sampling, so `loa check` refuses every expression that can send twice within a
//! quarter of an hour, however rarely it does.

use croner::Cron;
use jiff::civil::Date;
use jiff::{SignedDuration, Zoned};

use super::values::CronExpr;

/// The expression never fires from the reference on.
#[derive(Debug, PartialEq, Eq)]
pub struct NeverFires;

/// How many days the calendar takes to repeat itself (400 Gregorian years, a whole number of
/// weeks): whatever pair of consecutive days can both match does so within this span.
const CALENDAR_CYCLE_DAYS: i64 = 146_097;

/// Two consecutive sends too close together: the first example found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TooClose {
    pub gap: SignedDuration,
    pub first: Zoned,
    pub then: Zoned,
}

impl CronExpr {
    /// The closest pair of consecutive sends from `reference` on, if they are less than `limit`
    /// apart. Every day that matches fires at the same times (the hour, minute and second sets do
    /// not depend on the day; summer time aside, which the commune's zone does not have), so the
    /// closest pair is either within one such day or across the midnight between two consecutive
    /// days that both match: `0,50 0,23 1,28 * *` sends ten minutes apart only on the night from
    /// 28 February to 1 March of a common year.
    pub fn too_close(
        &self,
        reference: &Zoned,
        limit: SignedDuration,
    ) -> Result<Option<TooClose>, NeverFires> {
        let first = self
            .cron
            .find_next_occurrence(reference, false)
            .map_err(|_| NeverFires)?;
        let day = first.date();
        let start = first.start_of_day().map_err(|_| NeverFires)?;
        let mut times = self
            .cron
            .iter_from(start, croner::Direction::Forward)
            .take_while(|t| t.date() == day);
        let earliest = times.next().unwrap_or_else(|| first.clone());
        let mut latest = earliest.clone();
        let mut closest: Option<TooClose> = None;
        for t in times {
            let gap = t.duration_since(&latest);
            if gap < closest.as_ref().map_or(limit, |c| c.gap) {
                closest = Some(TooClose {
                    gap,
                    first: latest.clone(),
                    then: t.clone(),
                });
            }
            latest = t;
            if closest
                .as_ref()
                .is_some_and(|c| c.gap <= SignedDuration::from_secs(1))
            {
                return Ok(closest);
            }
        }
        let across = SignedDuration::from_hours(24) - latest.time().duration_since(earliest.time());
        if across < closest.as_ref().map_or(limit, |c| c.gap)
            && let Some(before) = consecutive_days(&self.cron, day, &first)
            && let (Ok(first), Ok(then)) = (
                before
                    .to_datetime(latest.time())
                    .to_zoned(first.time_zone().clone()),
                before
                    .tomorrow()
                    .map(|d| d.to_datetime(earliest.time()))
                    .and_then(|d| d.to_zoned(first.time_zone().clone())),
            )
        {
            closest = Some(TooClose {
                gap: across,
                first,
                then,
            });
        }
        Ok(closest)
    }
}

/// The first of two consecutive days that both match, from `day` (which does) through one
/// calendar cycle. Walks from one matching day to the next, so it stops early for every
/// expression that matches on most days.
fn consecutive_days(cron: &Cron, mut day: Date, zoned: &Zoned) -> Option<Date> {
    let end = day
        .checked_add(SignedDuration::from_hours(24 * CALENDAR_CYCLE_DAYS))
        .ok()?;
    while day < end {
        let next_day = day.tomorrow().ok()?;
        let from = next_day.to_zoned(zoned.time_zone().clone()).ok()?;
        let next = cron.find_next_occurrence(&from, true).ok()?;
        if next.date() == next_day {
            return Some(day);
        }
        day = next.date();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::announce::values::parse_cron;
    use jiff::tz::TimeZone;

    fn gap(expr: &str) -> Result<Option<i64>, NeverFires> {
        let tz = TimeZone::get("Asia/Ho_Chi_Minh").expect("bundled tzdb");
        let reference = jiff::Timestamp::constant(1_767_225_600, 0).to_zoned(tz);
        let cron = parse_cron(expr).expect("valid");
        cron.too_close(&reference, SignedDuration::from_mins(15))
            .map(|c| c.map(|c| c.gap.as_secs() / 60))
    }

    #[test]
    fn gaps_within_a_day_are_found() {
        assert_eq!(gap("*/10 * * * *"), Ok(Some(10)));
        assert_eq!(gap("0,5 7 * * 1"), Ok(Some(5)));
        assert_eq!(gap("0 */2 * * *"), Ok(None));
        assert_eq!(gap("0,15,30,45 * * * *"), Ok(None));
        assert_eq!(gap("0,30 * * * * *"), Ok(Some(0)), "30 seconds");
    }

    #[test]
    fn gaps_across_midnight_count_only_between_days_that_both_match() {
        // Every night: 23:50 then 00:00.
        assert_eq!(gap("0,50 0,23 * * *"), Ok(Some(10)));
        // Only from 28 February to 1 March in a common year: a dozen sampled sends missed it.
        assert_eq!(gap("0,50 0,23 1,28 * *"), Ok(Some(10)));
        let tz = TimeZone::get("Asia/Ho_Chi_Minh").expect("bundled tzdb");
        let reference = jiff::Timestamp::constant(1_767_225_600, 0).to_zoned(tz);
        let close = parse_cron("0,50 0,23 1,28 * *")
            .expect("valid")
            .too_close(&reference, SignedDuration::from_mins(15))
            .expect("fires")
            .expect("too close");
        assert_eq!(
            (close.first.to_string(), close.then.to_string()),
            (
                "2026-02-28T23:50:00+07:00[Asia/Ho_Chi_Minh]".to_string(),
                "2026-03-01T00:00:00+07:00[Asia/Ho_Chi_Minh]".to_string()
            )
        );
        // Only from 29 February to 1 March, in leap years.
        assert_eq!(gap("0,50 0,23 1,29 2,3 *"), Ok(Some(10)));
        // Sunday night into Monday.
        assert_eq!(gap("0,55 0,23 * * 0,1"), Ok(Some(5)));
        assert_eq!(gap("55 23 * * *"), Ok(None), "once a day");
        // Mondays, Wednesdays and Fridays never follow each other.
        assert_eq!(gap("0,55 0,23 * * 1,3,5"), Ok(None));
        // The 1st and the 15th never follow each other either.
        assert_eq!(gap("0,55 0,23 1,15 * *"), Ok(None));
    }

    #[test]
    fn an_expression_that_never_fires_says_so() {
        assert_eq!(gap("0 7 30 2 *"), Err(NeverFires));
    }
}
