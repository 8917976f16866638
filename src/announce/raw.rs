//! The files as written: raw structs that serde-saphyr fills, with every field's position kept.
//! Nothing here is trusted; `validate` turns these into the domain types of `model`. The JSON Schema
//! that `loa schema` prints is derived from these structs, so the schema and the parser cannot drift.
//! Descriptions are in Vietnamese because editors show them to commune staff while they type.

use std::borrow::Cow;

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::Deserialize;
use serde_saphyr::Spanned;

use super::problem::Pos;

/// A value with the position of its YAML node.
#[derive(Clone, Debug, Deserialize)]
#[serde(transparent)]
pub struct Sp<T>(pub Spanned<T>);

impl<T> Sp<T> {
    pub fn get(&self) -> &T {
        &self.0.value
    }

    pub fn pos(&self) -> Pos {
        let at = &self.0.referenced;
        Pos::new(at.line().max(1), at.column().max(1))
    }
}

impl<T: JsonSchema> JsonSchema for Sp<T> {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> Cow<'static, str> {
        T::schema_name()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        T::json_schema(generator)
    }
}

/// `commune.yaml`: the commune, its villages with their heads, and its leaders.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(
    title = "loa: commune.yaml",
    description = "Mô tả xã: các thôn, trưởng thôn và lãnh đạo."
)]
pub struct RawCommune {
    #[schemars(description = "Tên xã, ví dụ \"Xã Long Môn\".")]
    pub commune: Sp<String>,
    #[serde(default)]
    #[schemars(description = "Múi giờ; mặc định Asia/Ho_Chi_Minh.")]
    pub timezone: Option<Sp<String>>,
    #[serde(default)]
    #[schemars(
        description = "Giờ yên tĩnh HH:MM-HH:MM: tin thường gửi vào giờ này được dời tới cuối khoảng; tin khẩn vẫn gửi ngay.",
        extend("pattern" = "^[0-9]{1,2}:[0-9]{2}-[0-9]{1,2}:[0-9]{2}$", "examples" = ["21:30-06:00"])
    )]
    pub quiet_hours: Option<Sp<String>>,
    #[schemars(description = "Các thôn của xã.")]
    pub villages: Sp<Vec<Sp<RawVillage>>>,
    #[serde(default)]
    #[schemars(description = "Lãnh đạo xã, nhận tin báo khi trưởng thôn chưa xác nhận.")]
    pub leaders: Vec<Sp<RawPerson>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawVillage {
    #[schemars(
        description = "Mã thôn, chữ thường không dấu, ví dụ lang-tre.",
        extend("pattern" = "^[a-z0-9][a-z0-9-]*$")
    )]
    pub id: Sp<String>,
    #[schemars(description = "Tên thôn, ví dụ \"Làng Trê\".")]
    pub name: Sp<String>,
    #[serde(default)]
    #[schemars(description = "Mã nhóm Zalo (GMF) của thôn, nếu có.")]
    pub zalo_group: Option<Sp<String>>,
    #[serde(default)]
    #[schemars(
        description = "Nhãn (tag) của thôn trong OA, dùng để biết người quan tâm thuộc thôn nào; mặc định là tên thôn."
    )]
    pub zalo_tag: Option<Sp<String>>,
    #[serde(default)]
    #[schemars(description = "Trưởng thôn (và phó thôn) — người xác nhận đã nhận tin.")]
    pub heads: Vec<Sp<RawPerson>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawPerson {
    #[serde(default)]
    #[schemars(description = "Mã người (bắt buộc với lãnh đạo), ví dụ chu-tich.")]
    pub id: Option<Sp<String>>,
    #[schemars(description = "Họ và tên.")]
    pub name: Sp<String>,
    #[serde(default)]
    #[schemars(description = "Số điện thoại, ví dụ \"0912345678\" (đặt trong dấu nháy).")]
    pub phone: Option<Sp<String>>,
    #[serde(default)]
    #[schemars(description = "Mã người dùng Zalo (user_id) đối với OA của xã.")]
    pub zalo_user: Option<Sp<String>>,
}

/// Any other `*.yaml` file: one announcement.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(
    title = "loa: thông báo",
    description = "Một thông báo của xã gửi qua Zalo."
)]
pub struct RawAnnouncement {
    #[schemars(description = "Tiêu đề thông báo (bắt buộc).")]
    pub title: Sp<String>,
    #[serde(default)]
    #[schemars(
        description = "Loại thông báo; mặc định general.",
        extend("enum" = ["storm_warning", "id_card_campaign", "power_cut", "meeting", "general"])
    )]
    pub kind: Option<Sp<String>>,
    #[serde(default)]
    #[schemars(
        description = "urgent: gửi ngay cả trong giờ yên tĩnh; normal: mặc định.",
        extend("enum" = ["urgent", "normal"])
    )]
    pub priority: Option<Sp<String>>,
    #[serde(default)]
    #[schemars(description = "Người nhận; bỏ trống là toàn xã.")]
    pub audience: Option<Sp<RawAudience>>,
    #[serde(default)]
    #[schemars(
        description = "Tên mẫu tin trong templates/ (không có đuôi .tera); mặc định bằng kind."
    )]
    pub template: Option<Sp<String>>,
    #[serde(default)]
    #[schemars(
        description = "Sự kiện mà thông báo nói tới (buổi họp, đợt làm căn cước, lịch cắt điện…)."
    )]
    pub event: Option<Sp<RawEvent>>,
    #[schemars(description = "Khi nào gửi: một hoặc nhiều quy tắc (at, cron, before_event).")]
    pub send: Sp<Vec<Sp<RawSendRule>>>,
    #[serde(default)]
    #[schemars(
        description = "Sau thời điểm này không gửi gì nữa. Mặc định: khi sự kiện kết thúc (nếu có sự kiện).",
        extend("examples" = ["2026-12-01 11:00"])
    )]
    pub expires: Option<Sp<String>>,
    #[serde(default)]
    #[schemars(
        description = "Nếu hệ thống ngừng chạy lúc đến giờ gửi, tin còn được gửi muộn tối đa bao lâu (ví dụ 3h). Mặc định theo loại tin: cảnh báo bão đến khi hết hạn; tin nhắc sự kiện đến khi sự kiện bắt đầu; tin khác 1 ngày.",
        extend("examples" = ["3h"])
    )]
    pub catch_up: Option<Sp<String>>,
    #[serde(default)]
    #[schemars(description = "Yêu cầu trưởng thôn xác nhận đã nhận tin.")]
    pub confirm: Option<Sp<RawConfirm>>,
    #[serde(default)]
    #[schemars(description = "Giá trị tự do cho mẫu tin, dùng trong mẫu như {{ data.ten }}.")]
    pub data: Option<Sp<super::data::Data>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawAudience {
    #[serde(default)]
    #[schemars(description = "Mã các thôn nhận tin (trong commune.yaml); bỏ trống là mọi thôn.")]
    pub villages: Option<Sp<Vec<Sp<String>>>>,
    #[serde(default)]
    #[schemars(
        description = "Chỉ gửi cho những vai trò này; village_head: chỉ trưởng thôn.",
        extend("items" = {"enum": ["village_head", "residents"]})
    )]
    pub roles: Option<Sp<Vec<Sp<String>>>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawEvent {
    #[schemars(description = "Bắt đầu, YYYY-MM-DD HH:MM (giờ của xã).", extend("examples" = ["2026-12-01 07:30"]))]
    pub starts: Sp<String>,
    #[serde(default)]
    #[schemars(description = "Kết thúc, YYYY-MM-DD HH:MM.")]
    pub ends: Option<Sp<String>>,
    #[serde(default)]
    #[schemars(description = "Địa điểm.")]
    pub place: Option<Sp<String>>,
}

/// One send rule: exactly one of `at`, `cron`, `before_event`. One struct rather than an untagged
/// enum, because untagged enums lose positions and give poor errors.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(extend("oneOf" = [
    {"required": ["at"]}, {"required": ["cron"]}, {"required": ["before_event"]}
]))]
pub struct RawSendRule {
    #[serde(default)]
    #[schemars(description = "Gửi một lần lúc YYYY-MM-DD HH:MM.", extend("examples" = ["2026-11-25 08:00"]))]
    pub at: Option<Sp<String>>,
    #[serde(default)]
    #[schemars(
        description = "Gửi lặp theo lịch cron 5 trường (phút giờ ngày tháng thứ), ví dụ \"0 7 * * MON\" là 7:00 mỗi thứ Hai.",
        extend("examples" = ["0 7 * * MON", "0 */6 * * *"])
    )]
    pub cron: Option<Sp<String>>,
    #[serde(default)]
    #[schemars(description = "Với cron: bắt đầu từ ngày (giờ) này.")]
    pub from: Option<Sp<String>>,
    #[serde(default)]
    #[schemars(description = "Với cron: đến hết ngày (giờ) này.")]
    pub until: Option<Sp<String>>,
    #[serde(default)]
    #[schemars(
        description = "Nhắc trước sự kiện: danh sách khoảng thời gian như 7d, 1d, 2h, 30m.",
        extend("examples" = [["7d", "1d", "2h"]])
    )]
    pub before_event: Option<Sp<Vec<Sp<String>>>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawConfirm {
    #[serde(default)]
    #[schemars(
        description = "Ai phải xác nhận; hiện có village_head.",
        extend("items" = {"enum": ["village_head"]})
    )]
    pub by: Option<Sp<Vec<Sp<String>>>>,
    #[schemars(description = "Thời hạn xác nhận, ví dụ 2h.", extend("examples" = ["2h"]))]
    pub within: Sp<String>,
    #[serde(default)]
    #[schemars(
        description = "Mã lãnh đạo (trong commune.yaml) được báo khi quá hạn chưa xác nhận."
    )]
    pub escalate_to: Option<Sp<Vec<Sp<String>>>>,
}
