//! Entry points for fuzzers: arbitrary bytes into the two parsers that read what others wrote —
//! announcement files (commune leaders) and webhook requests (anyone on the internet). Each must
//! answer every input with a value or a reported problem, never a panic. Used by `tests/fuzz.rs`
//! (bounded, in CI) and by the cargo-fuzz targets in `fuzz/`.

use std::path::Path;

use crate::announce::model::Commune;
use crate::deliver::zalo::wire::{WebhookEvent, verify_signature};

/// An announcement file's bytes, parsed and validated against `commune`; every problem is
/// rendered in both languages, as `loa check` would print it. Returns how many problems.
pub fn announcement(bytes: &[u8], commune: Option<&Commune>) -> usize {
    let dir = Path::new("announcements");
    let path = dir.join("fuzz.yaml");
    let Ok(text) = std::str::from_utf8(bytes) else {
        return 1;
    };
    match crate::announce::announcement_from_text(dir, &path, text, commune) {
        Ok(_) => 0,
        Err(problems) => {
            for p in &problems {
                let _ = p.render(crate::announce::problem::Lang::Vi);
                let _ = p.render(crate::announce::problem::Lang::En);
            }
            problems.len()
        }
    }
}

/// A webhook request as the endpoint reads it: the signature header checked over the raw body,
/// then the body parsed, keyed and timed. Returns whether it would be accepted as an event.
pub fn webhook(signature: &str, body: &[u8]) -> bool {
    let _ = verify_signature(signature, "3304985733420011111", body, "fuzz-secret");
    match serde_json::from_slice::<WebhookEvent>(body) {
        Ok(event) => {
            let _ = crate::confirm::events::event_key(&event, body);
            crate::confirm::events::event_time(&event).is_some()
        }
        Err(_) => false,
    }
}
