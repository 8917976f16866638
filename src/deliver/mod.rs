//! Delivery: channels send one message to one target and classify what happened. The daemon only
//! sees this trait; the `log` channel writes what would be sent as JSON lines, and the Zalo channel
//! (group, follower and phone sends over the OA API) implements the same trait.

pub mod log;
pub mod select;
pub mod targets;
pub mod zalo;

use std::future::Future;
use std::time::Duration;

/// Who a message goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TargetKind {
    /// A village's Zalo group (GMF): one message reaches all its members.
    Group,
    /// A follower of the OA, by Zalo user id.
    User,
    /// A phone number (ZNS), for people who do not follow the OA.
    Phone,
}

impl TargetKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TargetKind::Group => "group",
            TargetKind::User => "user",
            TargetKind::Phone => "phone",
        }
    }

    pub fn parse(s: &str) -> Option<TargetKind> {
        [TargetKind::Group, TargetKind::User, TargetKind::Phone]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

/// One message to one target.
#[derive(Clone, Debug)]
pub struct Outgoing<'a> {
    pub delivery_id: i64,
    pub announcement_id: &'a str,
    pub kind: TargetKind,
    pub target: &'a str,
    pub text: &'a str,
    pub urgent: bool,
    /// Set when this may repeat an earlier attempt whose outcome is unknown.
    pub possible_duplicate: bool,
    /// Another address for the same person (a head's phone behind their Zalo id).
    pub fallback: Option<&'a str>,
    /// The ids of the parts of a long text an earlier attempt got accepted (comma-separated):
    /// only the parts after them are sent.
    pub sent_parts: Option<&'a str>,
}

/// The provider accepted the message.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Sent {
    /// The provider's id; several, comma-separated, when a long text went out in parts.
    pub message_id: String,
    /// How it went when not as addressed (a head reached by phone after the Zalo window closed).
    pub note: Option<String>,
}

/// Why a send did not succeed, classified by what to do next.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Try again later (rate limit, 5xx, timeout); `after` is the provider's hint, if any.
    /// `in_doubt`: the provider may have accepted it anyway (a timeout after the request was
    /// sent), so the retry is flagged as a possible duplicate.
    #[error("retry later ({code}): {reason}")]
    RetryLater {
        code: String,
        reason: String,
        after: Option<Duration>,
        in_doubt: bool,
    },
    /// Refused for now for a reason that passes by itself (a night ban, a quota, the rate
    /// limit): tried again `after` this, and not counted as an attempt.
    #[error("not now ({code}): {reason}")]
    NotNow {
        code: String,
        reason: String,
        after: Duration,
    },
    /// The credentials must be refreshed before trying again.
    #[error("credentials need refreshing ({code}): {reason}")]
    RefreshCredentials { code: String, reason: String },
    /// Final for this recipient (not a follower, blocked, invalid phone…).
    #[error("failed ({code}): {reason}")]
    Final { code: String, reason: String },
    /// A long text sent in parts: the first parts were accepted (`sent`: their ids,
    /// comma-separated), then a part met `then`. Recorded with the delivery, so that a retry
    /// sends only the parts after them and nobody gets a part twice.
    #[error("{then} (after parts {sent} were accepted)")]
    PartlySent { sent: String, then: Box<SendError> },
}

impl SendError {
    pub fn code(&self) -> &str {
        match self {
            SendError::RetryLater { code, .. }
            | SendError::NotNow { code, .. }
            | SendError::RefreshCredentials { code, .. }
            | SendError::Final { code, .. } => code,
            SendError::PartlySent { then, .. } => then.code(),
        }
    }

    pub fn reason(&self) -> &str {
        match self {
            SendError::RetryLater { reason, .. }
            | SendError::NotNow { reason, .. }
            | SendError::RefreshCredentials { reason, .. }
            | SendError::Final { reason, .. } => reason,
            SendError::PartlySent { then, .. } => then.reason(),
        }
    }
}

/// A way to send messages.
pub trait Channel: Send + Sync + 'static {
    fn name(&self) -> &'static str;
    fn send(&self, msg: &Outgoing<'_>) -> impl Future<Output = Result<Sent, SendError>> + Send;

    /// While the provider refuses the sender itself (Zalo's OA: `zalo/halt.rs`), when this
    /// channel tries again: the send loop claims nothing before then, and one delivery at that
    /// time, so that due messages stay free for a daemon whose channel takes them. `None`: sending.
    fn paused_until(&self) -> Option<jiff::Timestamp> {
        None
    }
}
