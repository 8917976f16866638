//! Request building, pure: the body for each kind of target, long texts split into numbered parts,
//! `appsecret_proof`, ZNS tracking ids. Unit-tested here; the wire shapes are checked again
//! against the simulator in `tests/`.

use std::borrow::Cow;

pub use super::wire::appsecret_proof;
use super::wire::{Recipient, Text, TextBody, ZnsBody};

/// A text to a follower (`message/cs`) or to a group (`group/message`).
pub fn text_body(to_group: bool, target: &str, text: &str) -> TextBody {
    let recipient = if to_group {
        Recipient {
            group_id: Some(target.to_string()),
            user_id: None,
        }
    } else {
        Recipient {
            user_id: Some(target.to_string()),
            group_id: None,
        }
    };
    TextBody {
        recipient,
        message: Text {
            text: text.to_string(),
        },
    }
}

/// A ZNS template send by phone. `phone` is already `84…` (the file format normalises it).
pub fn zns_body(
    phone: &str,
    template_id: &str,
    param: &str,
    text: &str,
    tracking: &str,
) -> ZnsBody {
    let mut data = serde_json::Map::new();
    data.insert(
        param.to_string(),
        serde_json::Value::String(text.to_string()),
    );
    ZnsBody {
        phone: phone.to_string(),
        template_id: template_id.to_string(),
        template_data: data,
        tracking_id: Some(tracking_id(tracking)),
    }
}

/// Zalo allows 48 characters.
fn tracking_id(s: &str) -> String {
    s.chars().take(48).collect()
}

/// Splits a text into parts of at most `max` characters (not bytes), each after the first marked
/// `(2/3)` and so on: at a paragraph break if one is in the second half of the part, else at a
/// line break, else at a space, else anywhere.
/// A text that fits comes back borrowed, as the one part: nearly every text does, and a fan-out
/// would otherwise copy it once per recipient.
pub fn split_text(text: &str, max: usize) -> Vec<Cow<'_, str>> {
    let max = max.max(40);
    if text.chars().count() <= max {
        return vec![Cow::Borrowed(text)];
    }
    let chars: Vec<char> = text.chars().collect();
    // Room for the "(n/n) " marker: 8 characters up to 99 parts, more beyond (a 400-character
    // ZNS parameter reaches a hundred parts at 40,000 characters).
    let mut marker = 8;
    loop {
        let parts = cut(&chars, max - marker);
        let n = parts.len();
        if format!("({n}/{n}) ").chars().count() <= marker || max - marker <= 20 {
            return parts
                .into_iter()
                .enumerate()
                .map(|(i, p)| Cow::Owned(format!("({}/{n}) {p}", i + 1)))
                .collect();
        }
        marker += 2;
    }
}

/// `split_text`'s cuts into pieces of at most `room` characters.
fn cut(chars: &[char], room: usize) -> Vec<String> {
    let mut parts: Vec<String> = Vec::new();
    let mut start = 0;
    while start < chars.len() {
        let end = (start + room).min(chars.len());
        let cut = if end == chars.len() {
            end
        } else {
            let window = &chars[start..end];
            let half = window.len() / 2;
            let find = |pat: &dyn Fn(usize) -> bool| {
                (half..window.len())
                    .rev()
                    .find(|&i| pat(i))
                    .map(|i| start + i + 1)
            };
            find(&|i| window[i] == '\n' && i > 0 && window[i - 1] == '\n')
                .or_else(|| find(&|i| window[i] == '\n'))
                .or_else(|| find(&|i| window[i] == ' '))
                .unwrap_or(end)
        };
        let part: String = chars[start..cut].iter().collect();
        parts.push(part.trim_end().to_string());
        start = cut;
        while start < chars.len() && chars[start] == '\n' {
            start += 1;
        }
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_texts_are_one_part() {
        let parts = split_text("Xin chào", 2000);
        assert_eq!(parts, vec!["Xin chào"]);
        assert!(
            matches!(parts[0], Cow::Borrowed(_)),
            "a text that fits is not copied"
        );
    }

    #[test]
    fn long_texts_split_in_numbered_parts_within_the_limit() {
        let para = "Ông bà, cô chú lưu ý: ".repeat(30);
        let text = format!("{para}\n\n{para}\n\n{para}");
        let parts = split_text(&text, 1000);
        assert!(parts.len() >= 2);
        for (i, p) in parts.iter().enumerate() {
            assert!(p.chars().count() <= 1000, "part {i} too long");
            assert!(p.starts_with(&format!("({}/{}) ", i + 1, parts.len())));
        }
        // Nothing lost: the words come back in order.
        let joined: String = parts
            .iter()
            .map(|p| p.split_once(") ").map(|x| x.1).unwrap_or(p))
            .collect::<Vec<_>>()
            .join(" ");
        let words = |s: &str| s.split_whitespace().map(str::to_string).collect::<Vec<_>>();
        assert_eq!(words(&joined), words(&text));
        // One long word still splits.
        let word = "a".repeat(2500);
        let parts = split_text(&word, 2000);
        assert_eq!(parts.len(), 2);
        assert_eq!(parts.concat().matches('a').count(), 2500);
    }

    #[test]
    fn a_hundred_parts_and_more_still_fit_with_their_numbers() {
        // 120 parts of a 40-character limit: "(120/120) " is ten characters, not eight.
        let text = "mưa lớn ".repeat(500);
        let parts = split_text(&text, 40);
        assert!(parts.len() >= 100, "{}", parts.len());
        for p in &parts {
            assert!(p.chars().count() <= 40, "{p:?}");
        }
        let n = parts.len();
        assert!(parts[n - 1].starts_with(&format!("({n}/{n}) ")));
        let words: usize = parts.iter().map(|p| p.split_whitespace().count() - 1).sum();
        assert_eq!(words, 1000, "every word once");
    }

    #[test]
    fn bodies() {
        let b = serde_json::to_value(text_body(true, "g1", "hi")).unwrap();
        assert_eq!(
            b,
            serde_json::json!({"recipient":{"group_id":"g1"},"message":{"text":"hi"}})
        );
        let b = serde_json::to_value(text_body(false, "u1", "hi")).unwrap();
        assert_eq!(
            b,
            serde_json::json!({"recipient":{"user_id":"u1"},"message":{"text":"hi"}})
        );
        let z = serde_json::to_value(zns_body(
            "84912345678",
            "t",
            "content",
            "hi",
            &"x".repeat(60),
        ))
        .unwrap();
        assert_eq!(z["template_data"], serde_json::json!({"content":"hi"}));
        assert_eq!(z["tracking_id"].as_str().unwrap().len(), 48);
    }
}
