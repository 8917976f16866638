//! The Zalo OA API's wire format, shared by the client and the simulator so that both speak the
//! same bytes: paths, header names, bodies, replies, the token endpoint's two reply shapes, and
//! webhook events. See `zalo-oa-api.md` in the project's reference notes; every field name here is
//! the one Zalo documents (including its camelCase in ZNS quotas).

use serde::{Deserialize, Serialize};

/// Paths below the three base URLs (`oauth`, `api`, `zns`).
pub mod path {
    /// OAuth v4 for OA: exchange and refresh (POST, form body) — below the OAuth base.
    pub const ACCESS_TOKEN: &str = "/v4/oa/access_token";
    /// The consent page a commune's admin opens in a browser — below the OAuth base.
    pub const PERMISSION: &str = "/v4/oa/permission";
    pub const MESSAGE_CS: &str = "/v3.0/oa/message/cs";
    pub const GROUP_MESSAGE: &str = "/v3.0/oa/group/message";
    /// ZNS by phone — below the ZNS base (`business.openapi.zalo.me`).
    pub const ZNS_TEMPLATE: &str = "/message/template";
    pub const USER_LIST: &str = "/v3.0/oa/user/getlist";
    pub const USER_DETAIL: &str = "/v3.0/oa/user/detail";
    pub const GROUPS_OF_OA: &str = "/v3.0/oa/group/getgroupsofoa";
    pub const GROUP_MEMBERS: &str = "/v3.0/oa/group/listmember";
    pub const TAGS_OF_OA: &str = "/v2.0/oa/tag/gettagsofoa";
    pub const TAG_FOLLOWER: &str = "/v2.0/oa/tag/tagfollower";
    pub const UNTAG_FOLLOWER: &str = "/v2.0/oa/tag/rmfollowerfromtag";
    pub const REMOVE_TAG: &str = "/v2.0/oa/tag/rmtag";
    /// The shut-down v2 send: answers `-240` for text.
    pub const LEGACY_MESSAGE: &str = "/v2.0/oa/message";
}

/// Header names.
pub mod header {
    /// The access token, bare (not `Authorization: Bearer`).
    pub const ACCESS_TOKEN: &str = "access_token";
    /// The app secret, on the token endpoint.
    pub const SECRET_KEY: &str = "secret_key";
    /// Optional hardening: hex(HMAC-SHA256(app secret, access token)).
    pub const APPSECRET_PROOF: &str = "appsecret_proof";
    pub const RATE_LIMIT: &str = "x-ratelimit-limit";
    pub const RATE_REMAIN: &str = "x-ratelimit-remain";
    /// On webhooks: `mac=<hex>`.
    pub const SIGNATURE: &str = "x-zevent-signature";
    /// On retried webhooks.
    pub const NUM_RETRY: &str = "num_retry";
}

/// Every OA API reply: HTTP 200, `error` 0 on success, negative otherwise.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Envelope<T> {
    pub error: i64,
    #[serde(default)]
    pub message: String,
    #[serde(default = "none", skip_serializing_if = "Option::is_none")]
    pub data: Option<T>,
}

fn none<T>() -> Option<T> {
    None
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recipient {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_id: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Text {
    pub text: String,
}

/// The body of `message/cs` (to a follower) and `group/message` (to a group).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TextBody {
    pub recipient: Recipient,
    pub message: Text,
}

/// The body of a ZNS template send by phone (`84…`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ZnsBody {
    pub phone: String,
    pub template_id: String,
    pub template_data: serde_json::Map<String, serde_json::Value>,
    /// Ours, echoed in the receipt webhook; at most 48 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracking_id: Option<String>,
}

/// `data` of a successful cs or group send.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SentData {
    pub message_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota: Option<serde_json::Value>,
}

/// `data` of a successful ZNS send: `msg_id`, not `message_id`; quotas are strings.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZnsSentData {
    pub msg_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota: Option<ZnsQuota>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZnsQuota {
    #[serde(rename = "dailyQuota")]
    pub daily_quota: String,
    #[serde(rename = "remainingQuota")]
    pub remaining_quota: String,
}

/// `user/getlist`'s `data=` parameter.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserListQuery {
    pub offset: u32,
    /// At most 50.
    pub count: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_follower: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag_name: Option<String>,
    /// e.g. `TODAY`, `YESTERDAY`, `L7D`, `L30D`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_interaction_period: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserList {
    pub total: u64,
    pub count: u64,
    pub offset: u64,
    pub users: Vec<UserRef>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRef {
    pub user_id: String,
}

/// `user/detail`'s `data=` parameter.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserDetailQuery {
    pub user_id: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserDetail {
    pub user_id: String,
    #[serde(default)]
    pub display_name: String,
    #[serde(default)]
    pub user_is_follower: bool,
    /// `DD/MM/YYYY`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_last_interaction_date: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags_and_notes_info: Option<TagsAndNotes>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shared_info: Option<SharedInfo>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TagsAndNotes {
    #[serde(default)]
    pub tag_names: Vec<String>,
    #[serde(default)]
    pub notes: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SharedInfo {
    /// A string in Zalo's examples, a number in some clients' typings: either is read.
    #[serde(default, deserialize_with = "string_or_number")]
    pub phone: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub address: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupList {
    pub total: u64,
    pub groups: Vec<GroupInfo>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupInfo {
    pub group_id: String,
    #[serde(default)]
    pub name: String,
    /// e.g. `enabled` or `disabled`.
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub total_member: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberList {
    pub total: u64,
    pub members: Vec<Member>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub user_id: String,
    #[serde(default)]
    pub name: String,
}

/// `tag/tagfollower` and `tag/rmfollowerfromtag`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TagFollowerBody {
    pub user_id: String,
    pub tag_name: String,
}

/// `tag/rmtag`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoveTagBody {
    pub tag_name: String,
}

mod token;
mod webhook;

pub use token::{OAuthError, TokenGrant, TokenReply, appsecret_proof, parse_token_reply};
pub use webhook::{EventId, EventMessage, WebhookEvent, signature, verify_signature};

/// A JSON string, or a number read as its digits.
pub(super) fn string_or_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    match serde_json::Value::deserialize(d)? {
        serde_json::Value::String(s) => Ok(s),
        serde_json::Value::Number(n) => Ok(n.to_string()),
        serde_json::Value::Null => Ok(String::new()),
        other => Err(serde::de::Error::custom(format!(
            "expected a string or a number, found {other}"
        ))),
    }
}
