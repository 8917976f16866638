//! Problems in Vietnamese, for the commune staff who commit the files.

use super::ProblemKind;
use super::cron::every_minute;

impl ProblemKind {
    pub(super) fn message_vi(&self) -> String {
        use ProblemKind::*;
        match self {
            Unreadable { error } => format!("không đọc được tệp: {error}"),
            NotUtf8 => "tệp không phải văn bản UTF-8; hãy lưu lại với bảng mã UTF-8".into(),
            Tab => "có ký tự Tab ở đầu dòng; YAML chỉ cho phép thụt lề bằng dấu cách".into(),
            Syntax { detail } => format!("lỗi cú pháp YAML: {detail}"),
            DuplicateKey { key } => format!("khóa \"{key}\" xuất hiện hai lần"),
            UnknownField { field, suggestion } => {
                format!("không có trường \"{field}\"{}", did_you_mean_vi(suggestion))
            }
            MissingField { field } => format!("thiếu trường bắt buộc \"{field}\""),
            WrongType { expected, found } => {
                format!(
                    "sai kiểu: cần {}, nhưng lại là {}",
                    type_vi(expected),
                    type_vi(found)
                )
            }
            AliasInPlainValue => {
                "giá trị bắt đầu bằng \"*\" phải đặt trong dấu nháy, ví dụ \"*/5 * * * *\"".into()
            }
            Empty => "không được để trống".into(),
            InvalidDateTime { value } => format!(
                "\"{value}\" không phải ngày giờ; hãy viết dạng YYYY-MM-DD HH:MM, ví dụ 2026-12-01 07:30"
            ),
            ImpossibleDateTime { value } => format!("ngày giờ \"{value}\" không có thật trên lịch"),
            InvalidDuration { value } => format!(
                "\"{value}\" không phải khoảng thời gian; hãy viết như 30m, 2h, 1d, 1w hoặc 1d12h"
            ),
            DurationOutOfRange { value } => {
                format!("khoảng thời gian \"{value}\" phải lớn hơn 0 và không quá 366 ngày")
            }
            InvalidCron { value, fault } => {
                format!(
                    "biểu thức cron \"{value}\" không hợp lệ: {}",
                    fault.message_vi()
                )
            }
            CronNeverFires { value } => {
                format!("biểu thức cron \"{value}\" không bao giờ tới (ngày không có thật)")
            }
            CronTooFrequent {
                value,
                minutes,
                first,
                then,
            } => format!(
                "biểu thức cron \"{value}\" gửi cách nhau chỉ {minutes} phút (lúc {first} rồi {then}); \
                 tối thiểu là 15 phút{}",
                if every_minute(value) {
                    " (gửi lúc 7 giờ mỗi ngày là \"0 7 * * *\", không phải \"* 7 * * *\")"
                } else {
                    ""
                }
            ),
            InvalidTimeZone { value } => {
                format!("múi giờ \"{value}\" không tồn tại; ở Việt Nam là Asia/Ho_Chi_Minh")
            }
            InvalidQuietHours { value } => format!(
                "giờ yên tĩnh \"{value}\" không hợp lệ; hãy viết dạng HH:MM-HH:MM, ví dụ 21:30-06:00"
            ),
            InvalidPhone { value } => format!(
                "số điện thoại \"{value}\" không hợp lệ; cần 10 chữ số bắt đầu bằng 0 (hoặc 84…)"
            ),
            InvalidZaloId { value } => {
                format!("mã Zalo \"{value}\" không hợp lệ; chỉ gồm chữ số và chữ a–f")
            }
            DuplicateId { id } => format!("mã \"{id}\" bị trùng"),
            SameIdFile { id, other } => format!(
                "tệp \"{other}\" cũng là thông báo \"{id}\"; hãy đổi tên hoặc xoá một trong hai tệp"
            ),
            UnknownValue {
                value,
                allowed,
                suggestion,
            } => format!(
                "giá trị \"{value}\" không hợp lệ{}; các giá trị được phép: {}",
                did_you_mean_vi(suggestion),
                allowed.join(", ")
            ),
            UnknownVillage { id, suggestion } => format!(
                "thôn \"{id}\" không có trong commune.yaml{}",
                did_you_mean_vi(suggestion)
            ),
            UnknownLeader { id, suggestion } => format!(
                "lãnh đạo \"{id}\" không có trong commune.yaml{}",
                did_you_mean_vi(suggestion)
            ),
            NoCommuneFile => "không tìm thấy commune.yaml trong thư mục thông báo".into(),
            RuleShape { found } if found.is_empty() => {
                "mỗi quy tắc gửi cần đúng một trong at, cron, before_event".into()
            }
            RuleShape { found } => format!(
                "mỗi quy tắc gửi chỉ được có một trong at, cron, before_event (đang có: {}); \
                 hãy tách thành nhiều dòng \"- \"",
                found.join(", ")
            ),
            FieldOnlyWithCron { field } => {
                format!("\"{field}\" chỉ dùng được cùng với cron")
            }
            NoSendRules => "cần ít nhất một quy tắc gửi".into(),
            ReminderWithoutEvent => "before_event cần có sự kiện: hãy thêm event với starts".into(),
            RuleAfterExpiry => "quy tắc gửi này nằm hoàn toàn sau thời hạn expires".into(),
            UntilBeforeFrom => "until phải sau from".into(),
            EventEndsBeforeStart => "sự kiện kết thúc (ends) trước khi bắt đầu (starts)".into(),
            StormWithoutExpiry => {
                "cảnh báo bão cần có expires để không gửi tiếp khi bão đã qua".into()
            }
            NoHeads { villages } => {
                format!(
                    "thôn {} chưa có trưởng thôn (có phone hoặc zalo_user) trong commune.yaml",
                    villages.join(", ")
                )
            }
            NobodyToConfirm => "cần ít nhất một vai trò xác nhận, ví dụ [village_head]".into(),
            NoContact { name } => format!(
                "{name} không có số điện thoại (phone) hay mã Zalo (zalo_user): không gửi tin cho người này được"
            ),
            TemplateMissing { name } => {
                format!("không có mẫu tin \"{name}\" (cần tệp templates/{name}.tera)")
            }
            TemplateSyntax { detail } => format!("mẫu tin bị lỗi cú pháp: {detail}"),
            TemplateRender { template, detail } => format!(
                "mẫu tin \"{template}\" không hiển thị được với dữ liệu của tệp này: {detail}"
            ),
            TooLong {
                chars,
                limit,
                village,
            } => format!(
                "tin nhắn dài {chars} ký tự{}, vượt quá giới hạn {limit} ký tự của Zalo",
                village
                    .as_ref()
                    .map(|v| format!(" (gửi thôn {v})"))
                    .unwrap_or_default()
            ),
        }
    }
}

fn did_you_mean_vi(suggestion: &Option<String>) -> String {
    suggestion
        .as_ref()
        .map(|s| format!(" (có phải ý bạn là \"{s}\"?)"))
        .unwrap_or_default()
}

/// Serde's type descriptions ("a sequence", "a string") in Vietnamese.
fn type_vi(description: &str) -> String {
    let d = description
        .trim_start_matches("a ")
        .trim_start_matches("an ");
    let word = if d.starts_with("sequence") || d.contains("sequence") {
        "một danh sách (- ...)"
    } else if d.starts_with("string") || d.starts_with("str") {
        "một chuỗi chữ"
    } else if d.starts_with("map") || d.starts_with("struct") || d.contains("mapping") {
        "một nhóm khóa: giá trị"
    } else if d.starts_with("integer") || d.starts_with("u64") || d.starts_with("i64") {
        "một số nguyên"
    } else if d.starts_with("bool") {
        "đúng/sai (true/false)"
    } else if d.starts_with("null") || d.starts_with("unit") {
        "rỗng"
    } else {
        return description.to_string();
    };
    word.to_string()
}
