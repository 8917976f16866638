//! Is this reply a confirmation? Village heads answer "đã nhận", "Đã nhận ạ", "da nhan", "ok",
//! "nhận", "1" — with or without diacritics (many phones type without), in any case, with
//! punctuation and a polite particle at the end. The reply must be the phrase and nothing more, so
//! "ok, nhưng chưa rõ giờ họp" is kept for staff, not taken as a confirmation.

/// The phrases used when the configuration names none.
pub const DEFAULT_PHRASES: &[&str] = &["đã nhận", "nhận", "ok", "oke", "1", "đã xem", "rõ"];

/// Words a reply may end with, folded: polite particles ("ạ", "nhé", "rồi"), "được" ("đã nhận
/// được"), and whom it is addressed to ("anh", "chị", "xã"). Never "à": "Nhận à?" asks.
const AFTER: &[&str] = &[
    "a", "nhe", "nha", "roi", "ak", "ah", "r", "duoc", "anh", "chi", "em", "xa", "co", "chu",
];

/// Words a reply may start with, folded: "dạ" and "vâng" (yes, politely), and who speaks ("em",
/// "tôi", "con", "cháu"). "đã" folds to "da" too, which is why a phrase is looked for with and
/// without them.
const BEFORE: &[&str] = &["da", "vang", "em", "toi", "con", "chau", "minh"];

/// Emoticons typed in ASCII, removed before folding (":D" would otherwise be the word "d").
const EMOTICONS: &[&str] = &[
    ":))", ":)", ":-)", ":d", ":p", ":v", ";)", "=))", "=)", "^^", "^_^", "<3", "xd",
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

/// Whether `text` says "received", given the configured phrases: one of them, alone, maybe with
/// words of politeness around it ("Dạ, đã nhận được ạ"), but not a question ("Nhận à?").
pub fn is_confirmation(text: &str, phrases: &[String]) -> bool {
    let lower = text.to_lowercase();
    if lower.contains('?') || asks(&lower) {
        return false;
    }
    let mut plain = lower;
    for e in EMOTICONS {
        plain = plain.replace(e, " ");
    }
    let folded = fold(&plain);
    let words: Vec<&str> = folded.split(' ').filter(|w| !w.is_empty()).collect();
    let phrases: Vec<String> = phrases.iter().map(|p| fold(p)).collect();
    // Every span of the reply that only politeness surrounds: the whole, then fewer words.
    let starts = words.iter().take_while(|w| BEFORE.contains(w)).count();
    let ends = words.iter().rev().take_while(|w| AFTER.contains(w)).count();
    (0..=starts.min(words.len())).any(|from| {
        (0..=ends).any(|cut| {
            let to = words.len().saturating_sub(cut);
            from < to && {
                let said = words[from..to].join(" ");
                phrases.contains(&said)
            }
        })
    })
}

/// Whether a reply ends with "à" (written precomposed or decomposed), which makes it a question.
fn asks(lower: &str) -> bool {
    let last = lower
        .trim_end_matches(|c: char| !c.is_alphanumeric() && !('\u{0300}'..='\u{036F}').contains(&c))
        .rsplit(|c: char| c.is_whitespace() || c == ',' || c == '.')
        .next()
        .unwrap_or("");
    last == "à" || last == "a\u{0300}"
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
            "Dạ, đã nhận ạ",
            "Vâng, đã nhận",
            "Em đã nhận",
            "Đã nhận được ạ",
            "OK :D",
            "ok :)",
            "Đã xem",
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
            "Nhận à?",
            "OK à",
            "ok a\u{0300}",
            "nhận chưa?",
            "dạ",
            "chưa nhận được ạ",
        ] {
            assert!(!is_confirmation(no, &p), "{no}");
        }
        // Configurable, phrases ending in a word of politeness too.
        assert!(is_confirmation("Nhất trí", &["nhất trí".to_string()]));
        assert!(is_confirmation("Nhận rồi ạ", &["nhận rồi".to_string()]));
        assert!(is_confirmation("Vâng ạ", &["vâng ạ".to_string()]));
        assert!(is_confirmation(
            "đã xem của xã",
            &["đã xem của xã".to_string()]
        ));
        assert!(!is_confirmation("ok", &["nhất trí".to_string()]));
    }
}
