//! Confirm links: `/c/<token>`, one per village head and send. The token names the confirmation
//! by a random key, carries its expiry, and is signed with HMAC-SHA256 under a key the commune's
//! daemons share (kept in the database), so a link cannot be forged, altered or extended, and one
//! head's link never confirms for another.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac as _};
use jiff::{SignedDuration, Timestamp};
use sha2::Sha256;

/// The path confirm links live under.
pub const PATH: &str = "/c";

/// Why a token was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    #[error("not a confirm link")]
    Malformed,
    #[error("the signature does not match")]
    Forged,
    #[error("the link has expired")]
    Expired,
}

/// Makes and checks confirm links.
#[derive(Clone)]
pub struct Links {
    secret: Vec<u8>,
    /// Where people reach the daemon, without a trailing slash.
    base_url: String,
    /// How long a link works after the send.
    pub valid: SignedDuration,
}

impl std::fmt::Debug for Links {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Links")
            .field("base_url", &self.base_url)
            .field("valid", &self.valid)
            .finish_non_exhaustive()
    }
}

impl Links {
    pub fn new(secret: &[u8], base_url: &str, valid: SignedDuration) -> Links {
        Links {
            secret: secret.to_vec(),
            base_url: base_url.trim_end_matches('/').to_string(),
            valid,
        }
    }

    /// A new random key for one confirmation (96 bits).
    pub fn new_key() -> String {
        let bytes: [u8; 12] = rand::random();
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// The token for `key`, working until `expires`.
    pub fn token(&self, key: &str, expires: Timestamp) -> String {
        let payload = format!("{key}.{}", expires.as_second());
        format!("{payload}.{}", self.sign(&payload))
    }

    /// The whole link for `key`.
    pub fn url(&self, key: &str, expires: Timestamp) -> String {
        format!("{}{}", prefix(&self.base_url), self.token(key, expires))
    }

    /// The confirmation key a token names, if it is genuine and not expired at `now`. The
    /// signature is checked first: a forged token learns nothing about keys or expiry.
    pub fn verify(&self, token: &str, now: Timestamp) -> Result<String, LinkError> {
        let (payload, signature) = token.rsplit_once('.').ok_or(LinkError::Malformed)?;
        let (key, expires) = payload.split_once('.').ok_or(LinkError::Malformed)?;
        if key.is_empty() || signature.is_empty() {
            return Err(LinkError::Malformed);
        }
        let given = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| LinkError::Forged)?;
        if given.len() != TAG_BYTES {
            return Err(LinkError::Forged);
        }
        let mut mac = self.mac();
        mac.update(payload.as_bytes());
        // Constant time, on the truncated tag we hand out.
        mac.verify_truncated_left(&given)
            .map_err(|_| LinkError::Forged)?;
        let expires = expires
            .parse::<i64>()
            .ok()
            .and_then(|s| Timestamp::from_second(s).ok())
            .ok_or(LinkError::Malformed)?;
        if now > expires {
            return Err(LinkError::Expired);
        }
        Ok(key.to_string())
    }

    fn mac(&self) -> Hmac<Sha256> {
        // HMAC takes keys of any length; this cannot fail.
        Hmac::<Sha256>::new_from_slice(&self.secret).unwrap_or_else(|_| unreachable!())
    }

    fn sign(&self, payload: &str) -> String {
        let mut mac = self.mac();
        mac.update(payload.as_bytes());
        let tag = mac.finalize().into_bytes();
        URL_SAFE_NO_PAD.encode(&tag[..TAG_BYTES])
    }
}

/// 128 bits of the tag: short enough for a text message, far beyond guessing.
const TAG_BYTES: usize = 16;

/// What every link under `base_url` starts with, before the token.
fn prefix(base_url: &str) -> String {
    format!("{}{PATH}/", base_url.trim_end_matches('/'))
}

/// The first confirm link under `base_url` in a message as the recipient sees it, without what
/// follows it: a reminder ends the sentence with a period after the link, and a ZNS message is
/// kept as its template's JSON, where a quote and a brace follow. A token is only unpadded
/// base64url and dots, so the link ends where those end (a dot at the very end is the sentence's).
pub fn find_url<'a>(text: &'a str, base_url: &str) -> Option<&'a str> {
    let prefix = prefix(base_url);
    let start = text.find(&prefix)?;
    let rest = &text[start + prefix.len()..];
    let len = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
        .unwrap_or(rest.len());
    let token = rest[..len].trim_end_matches('.');
    (!token.is_empty()).then(|| &text[start..start + prefix.len() + token.len()])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn links() -> Links {
        Links::new(
            b"commune secret",
            "https://loa.example.vn/",
            SignedDuration::from_hours(72),
        )
    }

    fn t(s: i64) -> Timestamp {
        Timestamp::from_second(s).expect("valid")
    }

    #[test]
    fn a_token_verifies_until_it_expires() {
        let l = links();
        let token = l.token("k3y", t(2_000));
        assert_eq!(l.verify(&token, t(1_000)), Ok("k3y".into()));
        assert_eq!(l.verify(&token, t(2_000)), Ok("k3y".into()));
        assert_eq!(l.verify(&token, t(2_001)), Err(LinkError::Expired));
        assert!(
            l.url("k3y", t(2_000))
                .starts_with("https://loa.example.vn/c/k3y.2000.")
        );
    }

    #[test]
    fn tampered_tokens_are_refused() {
        let l = links();
        let token = l.token("k3y", t(2_000));
        let later = token.replace(".2000.", ".9000.");
        assert_eq!(l.verify(&later, t(1_000)), Err(LinkError::Forged));
        let other = token.replacen("k3y", "k3z", 1);
        assert_eq!(l.verify(&other, t(1_000)), Err(LinkError::Forged));
        let (head, _) = token.rsplit_once('.').expect("dotted");
        assert_eq!(
            l.verify(&format!("{head}.AAAA"), t(1_000)),
            Err(LinkError::Forged)
        );
        assert_eq!(
            l.verify(&format!("{head}."), t(1_000)),
            Err(LinkError::Malformed)
        );
        assert_eq!(l.verify("garbage", t(1_000)), Err(LinkError::Malformed));
        assert_eq!(l.verify("", t(1_000)), Err(LinkError::Malformed));
        // Another commune's key signs differently.
        let theirs = Links::new(b"other", "https://x", SignedDuration::from_hours(1));
        assert_eq!(theirs.verify(&token, t(1_000)), Err(LinkError::Forged));
        // A shorter prefix of the right tag is not enough.
        let (_, sig) = token.rsplit_once('.').expect("dotted");
        let short = format!("{head}.{}", &sig[..8]);
        assert_eq!(l.verify(&short, t(1_000)), Err(LinkError::Forged));
    }

    #[test]
    fn links_are_found_in_every_kind_of_message() {
        let l = links();
        let url = l.url("k3y", t(2_000));
        let site = "https://loa.example.vn";
        // At the end of a head's copy, inside a sentence, at a sentence's end, in ZNS's JSON.
        for text in [
            format!("Bão số 13.\n\nBấm để xác nhận đã nhận: {url}"),
            format!("Xin trả lời “đã nhận” hoặc bấm {url}\n\nBão"),
            format!("Nhắc lại: … Xin trả lời “đã nhận” hoặc bấm {url}."),
            serde_json::json!({ "content": format!("Bấm: {url}") }).to_string(),
        ] {
            let found = find_url(&text, site).expect("found");
            assert_eq!(found, url, "{text}");
            let token = found.rsplit_once('/').expect("slash").1;
            assert_eq!(l.verify(token, t(1_000)), Ok("k3y".into()), "{text}");
        }
        assert_eq!(find_url("no link here", site), None);
        assert_eq!(find_url(&format!("{site}/c/."), site), None);
        assert_eq!(find_url(&url, "https://other.example.vn"), None);
    }

    #[test]
    fn keys_are_random_and_url_safe() {
        let (a, b) = (Links::new_key(), Links::new_key());
        assert_ne!(a, b);
        assert_eq!(a.len(), 16);
        assert!(
            a.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
    }
}
