//! The occurrence function on a fixed clock: one-shot, cron, reminders, expiry, quiet hours across
//! midnight, month ends, leap days, reminders already in the past, and same-time merging.

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use loa::announce::{self, Catalog};
use loa::schedule::{Fate, Occurrence, Trigger, Window, occurrences};

const COMMUNE: &str = "commune: Xã Thử\nquiet_hours: \"21:30-06:00\"\nvillages:\n  - id: a\n    name: Thôn A\n    heads: [{ name: Trưởng A, phone: \"0912345678\" }]\nleaders:\n  - { id: ct, name: Chủ tịch }\n";

fn load(announcement: &str) -> (Catalog, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("commune.yaml"), COMMUNE).expect("write");
    std::fs::write(dir.path().join("a.yaml"), announcement).expect("write");
    let catalog = announce::load_dir(dir.path()).expect("load");
    assert!(catalog.problems.is_empty(), "{:#?}", catalog.problems);
    (catalog, dir)
}

fn t(s: &str) -> Timestamp {
    let tz = TimeZone::get("Asia/Ho_Chi_Minh").expect("tz");
    announce::values::parse_datetime(s, &tz, false).expect("valid time")
}

fn local(ts: Timestamp) -> String {
    let tz = TimeZone::get("Asia/Ho_Chi_Minh").expect("tz");
    ts.to_zoned(tz).strftime("%Y-%m-%d %H:%M").to_string()
}

/// Occurrences as `send_at fate` strings, for readable assertions.
fn run(announcement: &str, from: &str, days: i64, now: &str) -> Vec<String> {
    let (catalog, _dir) = load(announcement);
    let commune = catalog.commune.as_ref().expect("commune");
    let start = t(from);
    let window = Window {
        start,
        end: start + SignedDuration::from_hours(24 * days),
    };
    let occ: Vec<Occurrence> = occurrences(&catalog.announcements[0], commune, window, t(now));
    occ.iter()
        .map(|o| {
            let fate = match o.fate {
                Fate::Send => String::new(),
                Fate::MovedQuietHours => format!(" moved from {}", local(o.due)),
                Fate::AfterExpiry => " after-expiry".into(),
                Fate::Past => " past".into(),
                Fate::Merged => " merged".into(),
                Fate::AfterEventStart => format!(" after-event-start from {}", local(o.due)),
            };
            format!("{}{fate}", local(o.send_at))
        })
        .collect()
}

#[test]
fn one_shot_inside_and_outside_the_window() {
    let a = "title: T\nsend:\n  - at: 2026-12-01 08:00\n  - at: 2027-01-05 08:00\n";
    assert_eq!(
        run(a, "2026-11-22 00:00", 30, "2026-11-22 00:00"),
        ["2026-12-01 08:00"]
    );
    assert!(
        run(a, "2026-12-02 00:00", 30, "2026-11-22 00:00")
            .iter()
            .all(|s| s == "2027-01-05 08:00")
    );
}

#[test]
fn weekly_cron_from_until_inclusive() {
    let a =
        "title: T\nsend:\n  - cron: \"0 7 * * MON\"\n    from: 2026-11-23\n    until: 2026-12-14\n";
    assert_eq!(
        run(a, "2026-11-01 00:00", 60, "2026-11-01 00:00"),
        [
            "2026-11-23 07:00",
            "2026-11-30 07:00",
            "2026-12-07 07:00",
            "2026-12-14 07:00"
        ]
    );
}

#[test]
fn month_ends_and_leap_days() {
    let a = "title: T\nsend:\n  - cron: \"0 8 31 * *\"\n";
    assert_eq!(
        run(a, "2027-01-01 00:00", 365, "2027-01-01 00:00"),
        [
            "2027-01-31 08:00",
            "2027-03-31 08:00",
            "2027-05-31 08:00",
            "2027-07-31 08:00",
            "2027-08-31 08:00",
            "2027-10-31 08:00",
            "2027-12-31 08:00"
        ]
    );
    let leap = "title: T\nsend:\n  - cron: \"0 8 29 2 *\"\n";
    assert_eq!(
        run(leap, "2026-01-01 00:00", 4 * 366, "2026-01-01 00:00"),
        ["2028-02-29 08:00"]
    );
    let at_leap = "title: T\nsend:\n  - at: 2028-02-29 08:00\n";
    assert_eq!(
        run(at_leap, "2028-02-28 00:00", 2, "2028-01-01 00:00"),
        ["2028-02-29 08:00"]
    );
}

#[test]
fn day_of_month_or_day_of_week() {
    let a = "title: T\nsend:\n  - cron: \"0 8 1 * MON\"\n";
    assert_eq!(
        run(a, "2026-12-01 00:00", 14, "2026-11-01 00:00"),
        ["2026-12-01 08:00", "2026-12-07 08:00", "2026-12-14 08:00"]
    );
}

#[test]
fn reminders_before_the_event_and_those_already_past() {
    let a =
        "title: T\nevent: { starts: 2026-12-01 07:30 }\nsend:\n  - before_event: [7d, 1d, 2h]\n";
    // Planned on 27/11: the 7-day reminder (24/11) has passed and is shown as such; the 2h one
    // falls in quiet hours (05:30) and moves to 06:00.
    assert_eq!(
        run(a, "2026-11-27 00:00", 10, "2026-11-27 00:00"),
        [
            "2026-11-24 07:30 past",
            "2026-11-30 07:30",
            "2026-12-01 06:00 moved from 2026-12-01 05:30"
        ]
    );
    // Planned well before: all three ahead.
    assert_eq!(run(a, "2026-11-20 00:00", 20, "2026-11-20 00:00").len(), 3);
}

#[test]
fn a_reminder_quiet_hours_would_hold_past_the_events_start_is_dropped() {
    // A 05:30 start: the 1-hour reminder is due at 04:30, and held to 06:00 it would say "còn 1
    // giờ" half an hour into the event. The 2-hour one at 03:30 the same. The day-before one goes.
    let a = "title: T\nevent: { starts: 2026-12-01 05:30, ends: 2026-12-01 11:00 }\nsend:\n  - before_event: [1d, 2h, 1h]\n";
    assert_eq!(
        run(a, "2026-11-29 00:00", 5, "2026-11-29 00:00"),
        [
            "2026-11-30 06:00 moved from 2026-11-30 05:30",
            "2026-12-01 06:00 after-event-start from 2026-12-01 03:30",
            "2026-12-01 06:00 after-event-start from 2026-12-01 04:30"
        ]
    );
}

#[test]
fn expiry_drops_and_stops_a_cron() {
    let a =
        "title: T\npriority: urgent\nsend:\n  - cron: \"0 */6 * * *\"\nexpires: 2026-11-25 13:00\n";
    assert_eq!(
        run(a, "2026-11-25 00:00", 5, "2026-11-24 00:00"),
        [
            "2026-11-25 00:00",
            "2026-11-25 06:00",
            "2026-11-25 12:00",
            "2026-11-25 18:00 after-expiry"
        ]
    );
}

#[test]
fn quiet_hours_across_midnight_merge_night_sends_into_one() {
    // A normal two-hourly cron: 22:00, 00:00, 02:00 and 04:00 all wait for 06:00, where a send is
    // due anyway. Residents get one message at 06:00, not five.
    let a = "title: T\nsend:\n  - cron: \"0 */2 * * *\"\n";
    let out = run(a, "2026-11-30 20:00", 1, "2026-11-30 00:00");
    assert_eq!(
        out[..7],
        [
            "2026-11-30 20:00",
            "2026-12-01 06:00 moved from 2026-11-30 22:00",
            "2026-12-01 06:00 merged",
            "2026-12-01 06:00 merged",
            "2026-12-01 06:00 merged",
            "2026-12-01 06:00 merged",
            "2026-12-01 08:00",
        ]
    );
}

#[test]
fn urgent_ignores_quiet_hours() {
    let a = "title: T\npriority: urgent\nsend:\n  - at: 2026-11-30 23:00\n";
    assert_eq!(
        run(a, "2026-11-30 00:00", 2, "2026-11-30 00:00"),
        ["2026-11-30 23:00"]
    );
    let normal = "title: T\nsend:\n  - at: 2026-11-30 23:00\n";
    assert_eq!(
        run(normal, "2026-11-30 00:00", 2, "2026-11-30 00:00"),
        ["2026-12-01 06:00 moved from 2026-11-30 23:00"]
    );
}

#[test]
fn a_moved_send_past_expiry_is_dropped() {
    let a = "title: T\nsend:\n  - at: 2026-11-30 23:00\nexpires: 2026-12-01 05:00\n";
    assert_eq!(
        run(a, "2026-11-30 00:00", 2, "2026-11-30 00:00"),
        ["2026-12-01 06:00 after-expiry"]
    );
}

#[test]
fn a_night_send_moved_to_morning_is_still_ahead_during_the_night() {
    let a = "title: T\nsend:\n  - at: 2026-11-30 23:00\n";
    assert_eq!(
        run(a, "2026-11-30 00:00", 2, "2026-12-01 05:00"),
        ["2026-12-01 06:00 moved from 2026-11-30 23:00"]
    );
    assert_eq!(
        run(a, "2026-11-30 00:00", 2, "2026-12-01 06:30"),
        ["2026-12-01 06:00 past"]
    );
}

#[test]
fn default_expiry_is_the_end_of_the_event() {
    let a = "title: T\nevent: { starts: 2026-12-01 07:30, ends: 2026-12-01 11:00 }\nsend:\n  - cron: \"0 8 * * *\"\n    from: 2026-11-29\n";
    assert_eq!(
        run(a, "2026-11-29 00:00", 5, "2026-11-29 00:00"),
        [
            "2026-11-29 08:00",
            "2026-11-30 08:00",
            "2026-12-01 08:00",
            "2026-12-02 08:00 after-expiry"
        ]
    );
}

#[test]
fn triggers_name_their_rule() {
    let a = "title: T\nevent: { starts: 2026-12-01 07:30 }\nsend:\n  - at: 2026-11-25 08:00\n  - before_event: [1d]\n";
    let (catalog, _dir) = load(a);
    let commune = catalog.commune.as_ref().expect("commune");
    let window = Window {
        start: t("2026-11-22 00:00"),
        end: t("2026-12-02 00:00"),
    };
    let occ = occurrences(
        &catalog.announcements[0],
        commune,
        window,
        t("2026-11-22 00:00"),
    );
    let triggers: Vec<(usize, Trigger)> = occ.into_iter().map(|o| (o.rule, o.trigger)).collect();
    assert_eq!(
        triggers,
        [
            (0, Trigger::Once),
            (
                1,
                Trigger::BeforeEvent {
                    offset: "1d".into()
                }
            )
        ]
    );
}
