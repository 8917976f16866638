//! Webhook events and their signature. Zalo signs with a plain SHA-256 (not an HMAC) of
//! `app_id + raw body + timestamp + secret`, where `timestamp` is the body's own field, and sends
//! it as `X-ZEvent-Signature: mac=<hex>` (Zalo's Java SDK, `MacUtils.buildMac`). All ids and the
//! timestamp are strings.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventId {
    pub id: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventMessage {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub msg_id: Option<String>,
    /// `user_seen_message`: several at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub msg_ids: Option<Vec<String>>,
    /// ZNS receipts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracking_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery_time: Option<String>,
}

/// One event, loosely typed: which fields are set depends on `event_name`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookEvent {
    pub event_name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub app_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oa_id: Option<String>,
    /// Epoch milliseconds, as a string; part of the signature. Read as a number too: the
    /// signature check accepts one, and an event refused after it would be retried by Zalo for
    /// hours and never applied.
    #[serde(deserialize_with = "super::string_or_number")]
    pub timestamp: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender: Option<EventId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient: Option<EventId>,
    /// `follow` / `unfollow`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub follower: Option<EventId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<EventMessage>,
}

/// The lowercase hex of SHA-256(app_id + body + timestamp + secret).
pub fn signature(app_id: &str, body: &[u8], timestamp: &str, secret: &str) -> String {
    let mut h = Sha256::new();
    h.update(app_id.as_bytes());
    h.update(body);
    h.update(timestamp.as_bytes());
    h.update(secret.as_bytes());
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Checks a `X-ZEvent-Signature` value (with or without `mac=`) against the raw body, in constant
/// time. The timestamp is read from the body itself.
pub fn verify_signature(header: &str, app_id: &str, body: &[u8], secret: &str) -> bool {
    #[derive(Deserialize)]
    struct Stamp {
        timestamp: serde_json::Value,
    }
    let Ok(stamp) = serde_json::from_slice::<Stamp>(body) else {
        return false;
    };
    let timestamp = match stamp.timestamp {
        serde_json::Value::String(s) => s,
        serde_json::Value::Number(n) => n.to_string(),
        _ => return false,
    };
    let given = header.trim();
    let given = given.strip_prefix("mac=").unwrap_or(given).trim();
    let expected = signature(app_id, body, &timestamp, secret);
    given.len() == expected.len()
        && given
            .bytes()
            .zip(expected.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a.to_ascii_lowercase() ^ b))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_answer() {
        // printf '%s' '123{"timestamp":"1700000000000"}1700000000000secret' | sha256sum
        let body = br#"{"timestamp":"1700000000000"}"#;
        let sig = signature("123", body, "1700000000000", "secret");
        let mut h = Sha256::new();
        h.update(br#"123{"timestamp":"1700000000000"}1700000000000secret"#);
        let direct: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(sig, direct);
        assert!(verify_signature(
            &format!("mac={sig}"),
            "123",
            body,
            "secret"
        ));
        assert!(verify_signature(&sig.to_uppercase(), "123", body, "secret"));
        assert!(!verify_signature(&sig, "123", body, "other"));
        assert!(!verify_signature("mac=", "123", body, "secret"));
        assert!(!verify_signature(&sig, "123", b"not json", "secret"));
    }

    #[test]
    fn a_numeric_timestamp_is_read_as_its_digits() {
        let e: WebhookEvent = serde_json::from_str(
            r#"{"event_name":"user_send_text","timestamp":1700000000000,"sender":{"id":"u"}}"#,
        )
        .expect("an event");
        assert_eq!(e.timestamp, "1700000000000");
    }
}
