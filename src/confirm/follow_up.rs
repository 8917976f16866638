//! The words of confirmation requests, reminders and escalations: pure functions, so what a head
//! or a leader reads is tested here and the daemon only decides when and to whom.

use jiff::Timestamp;
use jiff::tz::TimeZone;

use crate::render::vi_time;

/// Appended to a head's own copy of a message that asks for confirmation.
pub const LINK_PREFIX: &str = "\n\nBấm để xác nhận đã nhận: ";

/// The line that carries a head's confirm link.
pub fn link_line(url: &str) -> String {
    format!("{LINK_PREFIX}{url}")
}

/// A message without its confirm link (to quote it in a reminder).
pub fn without_link(text: &str) -> &str {
    text.rsplit_once(LINK_PREFIX).map_or(text, |(t, _)| t)
}

/// For a head who got the message only in the village group: their own request, with their link.
pub fn request_text(title: &str, url: &str) -> String {
    format!(
        "Thông báo “{title}” đã được gửi vào nhóm Zalo của thôn. Xin ông/bà xác nhận đã nhận: \
         trả lời “đã nhận” hoặc bấm {url}"
    )
}

/// For a head who was sent only a request (the message was in the village group) when Zalo then
/// refused that group: the message itself, saying why it comes one by one, with their link while
/// they have not confirmed.
pub fn group_refused_text(message: &str, url: Option<&str>) -> String {
    let mut out = format!(
        "Nhóm Zalo của thôn không nhận được thông báo này, nên xin gửi riêng ông/bà:\n\n{}",
        without_link(message).trim()
    );
    if let Some(url) = url {
        out.push_str(&link_line(url));
    }
    out
}

/// The reminder for a head who has not confirmed in time: what to do, then the message again.
pub fn reminder_text(title: &str, message: Option<&str>, url: Option<&str>) -> String {
    let how = match url {
        Some(url) => format!("trả lời “đã nhận” hoặc bấm {url}"),
        None => "trả lời “đã nhận”".to_string(),
    };
    let mut out = format!("Nhắc lại: ông/bà chưa xác nhận đã nhận thông báo “{title}”. Xin {how}.");
    if let Some(m) = message.map(without_link).filter(|m| !m.trim().is_empty()) {
        out.push_str("\n\n");
        out.push_str(m.trim());
    }
    out
}

/// One village that has not confirmed, for the leaders.
#[derive(Clone, Debug)]
pub struct Missing {
    pub village: String,
    pub person: String,
    pub reminded_at: Option<Timestamp>,
}

/// The escalation to the commune's leaders: which villages have not confirmed, and since when.
pub fn escalation_text(
    title: &str,
    sent_at: Timestamp,
    missing: &[Missing],
    tz: &TimeZone,
) -> String {
    let mut out = format!(
        "Báo cáo xác nhận: thông báo “{title}” gửi {}. {} thôn chưa xác nhận đã nhận:",
        vi_time::datetime(sent_at, tz),
        distinct_villages(missing)
    );
    for m in missing {
        out.push_str(&format!("\n- {}: {}", m.village, m.person));
        // With the date: with `within: 1d`, or a reminder before midnight, the time alone reads
        // as the wrong day.
        if let Some(t) = m.reminded_at {
            let p = vi_time::parts(t, tz);
            out.push_str(&format!(" (đã nhắc lúc {} ngày {})", p.time, p.date));
        }
    }
    out
}

fn distinct_villages(missing: &[Missing]) -> usize {
    let mut v: Vec<&str> = missing.iter().map(|m| m.village.as_str()).collect();
    v.sort_unstable();
    v.dedup();
    v.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reminders_quote_the_message_without_its_old_link() {
        let sent = format!("Bão số 13 sắp vào.{}", link_line("https://x/c/old"));
        let r = reminder_text("Cảnh báo bão", Some(&sent), Some("https://x/c/new"));
        assert_eq!(
            r,
            "Nhắc lại: ông/bà chưa xác nhận đã nhận thông báo “Cảnh báo bão”. \
             Xin trả lời “đã nhận” hoặc bấm https://x/c/new.\n\nBão số 13 sắp vào."
        );
        assert!(!r.contains("/c/old"));
        let plain = reminder_text("Họp", None, None);
        assert_eq!(
            plain,
            "Nhắc lại: ông/bà chưa xác nhận đã nhận thông báo “Họp”. Xin trả lời “đã nhận”."
        );
    }

    #[test]
    fn a_head_whose_village_group_was_refused_gets_the_message_itself() {
        assert_eq!(
            group_refused_text("Bão số 13 sắp vào.", Some("https://x/c/k")),
            "Nhóm Zalo của thôn không nhận được thông báo này, nên xin gửi riêng ông/bà:\n\n\
             Bão số 13 sắp vào.\n\nBấm để xác nhận đã nhận: https://x/c/k"
        );
        assert_eq!(
            group_refused_text("Bão số 13 sắp vào.", None),
            "Nhóm Zalo của thôn không nhận được thông báo này, nên xin gửi riêng ông/bà:\n\n\
             Bão số 13 sắp vào."
        );
    }

    #[test]
    fn escalations_list_the_villages() {
        let tz = TimeZone::get("Asia/Ho_Chi_Minh").expect("tz");
        let sent: Timestamp = "2026-11-24T01:00:00Z".parse().expect("valid");
        let reminded: Timestamp = "2026-11-24T02:00:00Z".parse().expect("valid");
        let missing = [
            Missing {
                village: "Thôn Đông".into(),
                person: "Ông Lê Văn Ba".into(),
                reminded_at: Some(reminded),
            },
            Missing {
                village: "Thôn Tây".into(),
                person: "Bà Phạm Thị Tư".into(),
                reminded_at: None,
            },
        ];
        assert_eq!(
            escalation_text("Cảnh báo bão", sent, &missing, &tz),
            "Báo cáo xác nhận: thông báo “Cảnh báo bão” gửi Thứ Ba, 24/11/2026 lúc 08:00. \
             2 thôn chưa xác nhận đã nhận:\n- Thôn Đông: Ông Lê Văn Ba (đã nhắc lúc 09:00 ngày 24/11/2026)\n- Thôn Tây: Bà Phạm Thị Tư"
        );
    }
}
