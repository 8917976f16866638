//! Is this reply a confirmation? Village heads answer "đã nhận", "Đã nhận ạ", "da nhan", "ok",
//! "nhận", "1" — with or without diacritics (many phones type without), in any case, with
//! punctuation and a polite particle at the end. The reply must be the phrase and nothing more, so
//! "ok, nhưng chưa rõ giờ họp" is kept for staff, not taken as a confirmation.

/// The phrases used when the configuration names none.
pub const DEFAULT_PHRASES: &[&str] = &["đã nhận", "nhận", "ok", "oke", "1", "đã xem", "rõ"];

/// Polite particles a reply may end with.
const PARTICLES: &[&str] = &[
    "a", "nhe", "nha", "roi", "ak", "ah", "r", "anh", "chi", "em", "xa",
];

/// Lowercase, without Vietnamese diacritics (đ → d), punctuation turned into spaces, spaces collapsed.
pub fn fold(text: &str) -> String {
    const FROM: &str = "àáảãạăằắẳẵặâầấẩẫậèéẻẽẹêềếểễệìíỉĩịòóỏõọôồốổỗộơờớởỡợùúủũụưừứửữựỳýỷỹỵđ";
    const TO: &str = "aaaaaaaaaaaaaaaaaeeeeeeeeeeeiiiiiooooooooooooooooouuuuuuuuuuuyyyyyd";
    let mut out = String::with_capacity(text.len());
    for c in text.to_lowercase().chars() {
        // Combining marks: text typed as "Unicode tổ hợp" (Unikey, EVKey) writes "ã" as "a" and
        // a tilde. Folding drops diacritics anyway, so the marks go and the letters stay.
        if ('\u{0300}'..='\u{036F}').contains(&c) {
            continue;
        }
        let c = FROM
            .chars()
            .position(|f| f == c)
            .and_then(|i| TO.chars().nth(i))
            .unwrap_or(c);
        if c.is_alphanumeric() {
            out.push(c);
        } else if !out.ends_with(' ') {
            out.push(' ');
        }
    }
    out.trim().to_string()
}

/// Whether `text` says "received", given the configured phrases.
pub fn is_confirmation(text: &str, phrases: &[String]) -> bool {
    let mut words: Vec<&str> = Vec::new();
    let folded = fold(text);
    words.extend(folded.split(' ').filter(|w| !w.is_empty()));
    while words.len() > 1 && words.last().is_some_and(|w| PARTICLES.contains(w)) {
        words.pop();
    }
    let said = words.join(" ");
    !said.is_empty() && phrases.iter().any(|p| fold(p) == said)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults() -> Vec<String> {
        DEFAULT_PHRASES.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn folds_vietnamese() {
        assert_eq!(fold("Đã NHẬN ạ!!"), "da nhan a");
        assert_eq!(fold("  Ừ,   được "), "u duoc");
        // Decomposed ("Unicode tổ hợp"): a + combining tilde, a + dot below + circumflex.
        assert_eq!(
            fold("Đa\u{0303} nha\u{0323}\u{0302}n a\u{0323}"),
            "da nhan a"
        );
        assert!(is_confirmation(
            "đa\u{0303} nha\u{0323}\u{0302}n",
            &defaults()
        ));
    }

    #[test]
    fn confirmations_with_and_without_diacritics() {
        let p = defaults();
        for yes in [
            "đã nhận",
            "Đã nhận ạ",
            "da nhan",
            "DA NHAN",
            "ok",
            "OK!",
            "Ok ạ",
            "nhận",
            "1",
            "đã nhận rồi ạ",
            "Đã nhận.",
        ] {
            assert!(is_confirmation(yes, &p), "{yes}");
        }
        for no in [
            "",
            "ok, nhưng chưa rõ giờ họp",
            "chưa nhận",
            "11",
            "a",
            "bão to không?",
            "nhận được tin chưa",
        ] {
            assert!(!is_confirmation(no, &p), "{no}");
        }
        // Configurable.
        assert!(is_confirmation("Nhất trí", &["nhất trí".to_string()]));
        assert!(!is_confirmation("ok", &["nhất trí".to_string()]));
    }
}
