//! The report in words a commune clerk understands: why a message did not reach someone, what a
//! delivery state means, how a head confirmed. Vietnamese by default, English with `--lang en`.
//! The codes are Zalo's (src/deliver/zalo/errors.rs); the stored English meaning is kept for the
//! operator, these words are for people.

use crate::announce::problem::Lang;

/// Why a delivery did not reach its recipient, from its state, code and stored reason.
pub fn failure(state: &str, code: Option<&str>, reason: Option<&str>, lang: Lang) -> String {
    let vi = lang == Lang::Vi;
    let fixed = match state {
        "expired" => Some(if vi {
            "quá hạn gửi trong lúc đang thử lại"
        } else {
            "its deadline passed while retrying"
        }),
        "missed" => Some(if vi {
            "bị lỡ: hệ thống không chạy trước hạn chót"
        } else {
            "missed: the daemon was not running before the deadline"
        }),
        "unknown" => Some(if vi {
            "không rõ đã đến chưa: hệ thống dừng giữa lúc gửi"
        } else {
            "in doubt: the daemon stopped during the request"
        }),
        _ => None,
    };
    if let Some(words) = fixed {
        return words.to_string();
    }
    match code.and_then(zalo_code) {
        Some((vi_words, en_words)) => (if vi { vi_words } else { en_words }).to_string(),
        None => {
            let code = code.unwrap_or("?");
            let reason = reason.unwrap_or("");
            if vi {
                format!("lỗi khác ({code}): {reason}")
            } else {
                format!("other error ({code}): {reason}")
            }
        }
    }
}

/// Plain words for a Zalo error code, in Vietnamese and English.
fn zalo_code(code: &str) -> Option<(&'static str, &'static str)> {
    Some(match code {
        "-230" | "-232" => (
            "quá 7 ngày người nhận chưa nhắn tin cho OA (Zalo chỉ cho gửi trong 7 ngày)",
            "outside Zalo's 7-day window: no interaction with the OA in the last 7 days",
        ),
        "-213" => (
            "người nhận chưa quan tâm OA",
            "the recipient does not follow the OA",
        ),
        "-217" => ("người nhận đã chặn OA", "the recipient blocked the OA"),
        "-227" => (
            "tài khoản bị khóa hoặc không dùng quá 45 ngày",
            "account banned or inactive for more than 45 days",
        ),
        "-237" => ("nhóm Zalo đã bị tắt", "the Zalo group is disabled"),
        "-403" => ("OA không có trong nhóm này", "the OA is not in this group"),
        "-244" => (
            "người nhận đã chặn loại tin này",
            "the recipient restricted this kind of message",
        ),
        "-108" => ("số điện thoại không hợp lệ", "invalid phone number"),
        "-109" => ("mẫu tin ZNS không hợp lệ", "invalid ZNS template"),
        "-111" | "-112" => (
            "nội dung không khớp mẫu tin ZNS (thiếu tham số hoặc quá dài; báo kỹ thuật)",
            "the text does not fit the ZNS template (a parameter missing or too long; tell the operator)",
        ),
        "-114" => (
            "số điện thoại này không nhận được tin ZNS",
            "this phone cannot receive ZNS messages",
        ),
        "-201" => ("tin gửi có tham số sai", "invalid parameter"),
        "-204" => ("OA đã bị vô hiệu hóa", "the OA is disabled"),
        "-240" | "-242" => (
            "lỗi cấu hình kết nối Zalo (báo kỹ thuật)",
            "Zalo connection misconfigured (tell the operator)",
        ),
        "-32" => ("gửi quá nhanh, Zalo tạm chặn", "Zalo's rate limit"),
        "-200" => ("Zalo gửi không thành công", "Zalo could not send it"),
        "-211" | "-115" | "-144" => ("hết hạn mức gửi tin", "out of sending quota"),
        "-234" | "-133" => (
            "Zalo không cho gửi ban đêm (22:00–06:00)",
            "Zalo does not allow sending at night (22:00–06:00)",
        ),
        "-216" | "-220" | "-124" => ("mã truy cập Zalo hết hạn", "the Zalo access token expired"),
        _ => return None,
    })
}

/// A delivery state in words.
pub fn state(state: &str, lang: Lang) -> &'static str {
    let (vi, en) = match state {
        "planned" => ("chờ gửi", "waiting"),
        "sending" => ("đang gửi", "sending"),
        "sent" => ("đã gửi", "sent"),
        "delivered" => ("đã đến máy", "delivered"),
        "seen" => ("đã xem", "seen"),
        "confirmed" => ("đã xác nhận", "confirmed"),
        "retrying" => ("đang thử lại", "retrying"),
        "failed" => ("không gửi được", "failed"),
        "expired" => ("quá hạn", "expired"),
        "missed" => ("bị lỡ", "missed"),
        "unknown" => ("không rõ", "unknown"),
        "pending" => ("chưa xác nhận", "not confirmed"),
        _ => ("?", "?"),
    };
    if lang == Lang::Vi { vi } else { en }
}

/// Is this delivery state a failure to reach (one that has a reason to show)?
pub fn is_failure(state: &str) -> bool {
    matches!(state, "failed" | "expired" | "missed" | "unknown")
}

/// How a head confirmed.
pub fn via(via: Option<&str>, lang: Lang) -> &'static str {
    match (via, lang) {
        (Some("reply"), Lang::Vi) => "trả lời tin nhắn",
        (Some("reply"), Lang::En) => "by reply",
        (Some("link"), Lang::Vi) => "bấm đường dẫn",
        (Some("link"), Lang::En) => "by link",
        (_, Lang::Vi) => "khác",
        (_, Lang::En) => "other",
    }
}

/// A target kind in words.
pub fn kind(kind: &str, lang: Lang) -> &'static str {
    match (kind, lang) {
        ("group", Lang::Vi) => "nhóm Zalo",
        ("group", Lang::En) => "Zalo group",
        ("user", Lang::Vi) => "Zalo cá nhân",
        ("user", Lang::En) => "Zalo user",
        ("phone", Lang::Vi) => "tin ZNS (số điện thoại)",
        ("phone", Lang::En) => "ZNS (phone)",
        (_, _) => "?",
    }
}

/// A follow-up in words.
pub fn follow_up(kind: super::FollowUpKind, lang: Lang) -> &'static str {
    match (kind, lang) {
        (super::FollowUpKind::Reminder, Lang::Vi) => "nhắc xác nhận",
        (super::FollowUpKind::Reminder, Lang::En) => "reminder",
        (super::FollowUpKind::Escalation, Lang::Vi) => "báo lãnh đạo",
        (super::FollowUpKind::Escalation, Lang::En) => "escalation",
        (super::FollowUpKind::Direct, Lang::Vi) => "gửi riêng trưởng thôn",
        (super::FollowUpKind::Direct, Lang::En) => "direct to heads",
    }
}

/// Followers outside any village.
pub fn no_village(lang: Lang) -> &'static str {
    if lang == Lang::Vi {
        "(ngoài thôn)"
    } else {
        "(no village)"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_final_zalo_code_has_plain_words() {
        use crate::deliver::zalo::errors::{CODES, Class};
        for c in CODES.iter().filter(|c| c.class == Class::Final) {
            assert!(
                zalo_code(&c.code.to_string()).is_some(),
                "{} has no words",
                c.code
            );
        }
        assert!(failure("failed", Some("-230"), None, Lang::Vi).contains("7 ngày"));
        assert!(failure("failed", Some("-9"), Some("boom"), Lang::En).contains("boom"));
    }
}
