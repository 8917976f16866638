//! The states of occurrences and deliveries, as stored.

use std::fmt;

/// planned → claimed → expanded, or missed (deadline passed before it could go out), or cancelled
/// (file deleted, or superseded by a new revision).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OccurrenceState {
    Planned,
    Claimed,
    Expanded,
    Missed,
    Cancelled,
}

impl OccurrenceState {
    pub fn as_str(self) -> &'static str {
        match self {
            OccurrenceState::Planned => "planned",
            OccurrenceState::Claimed => "claimed",
            OccurrenceState::Expanded => "expanded",
            OccurrenceState::Missed => "missed",
            OccurrenceState::Cancelled => "cancelled",
        }
    }
}

/// planned → sending → sent → delivered → seen → confirmed; or retrying (next attempt time),
/// failed (final, with the provider's code), expired (deadline passed), missed (downtime past the
/// deadline), unknown (the process died while the request was in flight).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DeliveryState {
    Planned,
    Sending,
    Sent,
    Delivered,
    Seen,
    Confirmed,
    Retrying,
    Failed,
    Expired,
    Missed,
    Unknown,
}

impl DeliveryState {
    pub const ALL: [DeliveryState; 11] = [
        DeliveryState::Planned,
        DeliveryState::Sending,
        DeliveryState::Sent,
        DeliveryState::Delivered,
        DeliveryState::Seen,
        DeliveryState::Confirmed,
        DeliveryState::Retrying,
        DeliveryState::Failed,
        DeliveryState::Expired,
        DeliveryState::Missed,
        DeliveryState::Unknown,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Planned => "planned",
            DeliveryState::Sending => "sending",
            DeliveryState::Sent => "sent",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Seen => "seen",
            DeliveryState::Confirmed => "confirmed",
            DeliveryState::Retrying => "retrying",
            DeliveryState::Failed => "failed",
            DeliveryState::Expired => "expired",
            DeliveryState::Missed => "missed",
            DeliveryState::Unknown => "unknown",
        }
    }

    pub fn parse(s: &str) -> Option<DeliveryState> {
        DeliveryState::ALL.into_iter().find(|d| d.as_str() == s)
    }

    /// No further sending will happen (webhooks may still move a sent message to delivered/seen).
    pub fn is_final(self) -> bool {
        !matches!(
            self,
            DeliveryState::Planned | DeliveryState::Sending | DeliveryState::Retrying
        )
    }
}

impl fmt::Display for DeliveryState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
