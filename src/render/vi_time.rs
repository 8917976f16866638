//! Vietnamese formatting of times and durations, as staff write them on the commune notice board:
//! "Thứ Hai, 01/12/2026 lúc 07:30", "2 giờ", "1 ngày 12 giờ".

use jiff::civil::Weekday;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};

pub fn weekday(w: Weekday) -> &'static str {
    match w {
        Weekday::Monday => "Thứ Hai",
        Weekday::Tuesday => "Thứ Ba",
        Weekday::Wednesday => "Thứ Tư",
        Weekday::Thursday => "Thứ Năm",
        Weekday::Friday => "Thứ Sáu",
        Weekday::Saturday => "Thứ Bảy",
        Weekday::Sunday => "Chủ Nhật",
    }
}

/// A short weekday for tables: "T2" … "T7", "CN".
pub fn weekday_short(w: Weekday) -> &'static str {
    match w {
        Weekday::Monday => "T2",
        Weekday::Tuesday => "T3",
        Weekday::Wednesday => "T4",
        Weekday::Thursday => "T5",
        Weekday::Friday => "T6",
        Weekday::Saturday => "T7",
        Weekday::Sunday => "CN",
    }
}

/// The parts of one instant, in the commune's zone.
pub struct Parts {
    pub full: String,
    pub date: String,
    pub time: String,
    pub weekday: &'static str,
}

pub fn parts(t: Timestamp, tz: &TimeZone) -> Parts {
    let z = t.to_zoned(tz.clone());
    let date = z.strftime("%d/%m/%Y").to_string();
    let time = z.strftime("%H:%M").to_string();
    let weekday = weekday(z.weekday());
    Parts {
        full: format!("{weekday}, {date} lúc {time}"),
        date,
        time,
        weekday,
    }
}

/// "Thứ Hai, 01/12/2026 lúc 07:30".
pub fn datetime(t: Timestamp, tz: &TimeZone) -> String {
    parts(t, tz).full
}

/// "2 giờ", "1 ngày 12 giờ", "1 tuần", "30 phút".
pub fn duration(d: SignedDuration) -> String {
    let mut secs = d.as_secs().abs();
    if secs > 0 && secs % (7 * 86_400) == 0 {
        return format!("{} tuần", secs / (7 * 86_400));
    }
    let mut out = Vec::new();
    for (unit, name) in [(86_400, "ngày"), (3_600, "giờ"), (60, "phút")] {
        if secs >= unit {
            out.push(format!("{} {name}", secs / unit));
            secs %= unit;
        }
    }
    if out.is_empty() {
        "0 phút".into()
    } else {
        out.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_the_notice_board() {
        let tz = TimeZone::get("Asia/Ho_Chi_Minh").expect("tz");
        let t: Timestamp = "2026-12-01T00:30:00Z".parse().expect("valid");
        assert_eq!(datetime(t, &tz), "Thứ Ba, 01/12/2026 lúc 07:30");
        let sunday: Timestamp = "2026-11-29T01:00:00Z".parse().expect("valid");
        assert_eq!(datetime(sunday, &tz), "Chủ Nhật, 29/11/2026 lúc 08:00");
        assert_eq!(duration(SignedDuration::from_hours(36)), "1 ngày 12 giờ");
        assert_eq!(duration(SignedDuration::from_hours(2)), "2 giờ");
        assert_eq!(duration(SignedDuration::from_hours(24 * 7)), "1 tuần");
        assert_eq!(duration(SignedDuration::from_mins(90)), "1 giờ 30 phút");
    }
}
