//! A problem found in the announcement repository: where it is (file, line, column, field) and what
//! it is, as data. Messages are produced from the data in Vietnamese (for commune staff) or English,
//! so the same problem list feeds the terminal, `--format json`, and later the dashboard.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;

/// The language of user-facing messages.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    #[default]
    Vi,
    En,
}

/// A position in a file, 1-based; `0:0` means "the whole file".
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Pos {
    pub line: u64,
    pub column: u64,
}

impl Pos {
    pub const FILE: Pos = Pos { line: 1, column: 1 };

    pub fn new(line: u64, column: u64) -> Self {
        Pos { line, column }
    }
}

/// One problem: a location, the field it concerns, and its kind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub path: PathBuf,
    pub pos: Pos,
    /// The field path inside the file, e.g. `send[1].cron`; empty for file-level problems.
    pub field: String,
    pub kind: ProblemKind,
}

/// What is wrong. Each variant carries what its message needs; `code()` is stable for tools.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProblemKind {
    Unreadable {
        error: String,
    },
    NotUtf8,
    Tab,
    Syntax {
        detail: String,
    },
    DuplicateKey {
        key: String,
    },
    UnknownField {
        field: String,
        suggestion: Option<String>,
    },
    MissingField {
        field: String,
    },
    WrongType {
        expected: String,
        found: String,
    },
    AliasInPlainValue,
    Empty,
    InvalidDateTime {
        value: String,
    },
    ImpossibleDateTime {
        value: String,
    },
    DurationOutOfRange {
        value: String,
    },
    InvalidDuration {
        value: String,
    },
    InvalidCron {
        value: String,
        fault: CronFault,
    },
    CronNeverFires {
        value: String,
    },
    CronTooFrequent {
        value: String,
        minutes: i64,
        /// Two such sends (local time), as an example.
        first: String,
        then: String,
    },
    InvalidTimeZone {
        value: String,
    },
    InvalidQuietHours {
        value: String,
    },
    InvalidPhone {
        value: String,
    },
    InvalidZaloId {
        value: String,
    },
    DuplicateId {
        id: String,
    },
    /// `x.yaml` beside `x.yml`: both would be announcement `x`.
    SameIdFile {
        id: String,
        other: String,
    },
    UnknownValue {
        value: String,
        allowed: Vec<&'static str>,
        suggestion: Option<String>,
    },
    UnknownVillage {
        id: String,
        suggestion: Option<String>,
    },
    UnknownLeader {
        id: String,
        suggestion: Option<String>,
    },
    NoCommuneFile,
    RuleShape {
        found: Vec<&'static str>,
    },
    FieldOnlyWithCron {
        field: &'static str,
    },
    NoSendRules,
    ReminderWithoutEvent,
    RuleAfterExpiry,
    UntilBeforeFrom,
    EventEndsBeforeStart,
    StormWithoutExpiry,
    NoHeads {
        villages: Vec<String>,
    },
    NobodyToConfirm,
    /// A head or leader with neither a phone nor a Zalo id: nothing can reach them.
    NoContact {
        name: String,
    },
    TemplateMissing {
        name: String,
    },
    TemplateSyntax {
        detail: String,
    },
    TemplateRender {
        template: String,
        detail: String,
    },
    TooLong {
        chars: usize,
        limit: usize,
        village: Option<String>,
    },
}

impl ProblemKind {
    /// A stable, language-neutral code for editors and CI.
    pub fn code(&self) -> &'static str {
        use ProblemKind::*;
        match self {
            Unreadable { .. } => "unreadable",
            NotUtf8 => "not-utf8",
            Tab => "tab",
            Syntax { .. } => "yaml-syntax",
            DuplicateKey { .. } => "duplicate-key",
            UnknownField { .. } => "unknown-field",
            MissingField { .. } => "missing-field",
            WrongType { .. } => "wrong-type",
            AliasInPlainValue => "alias",
            Empty => "empty",
            InvalidDateTime { .. } => "invalid-datetime",
            ImpossibleDateTime { .. } => "impossible-datetime",
            InvalidDuration { .. } => "invalid-duration",
            DurationOutOfRange { .. } => "duration-out-of-range",
            InvalidCron { .. } => "invalid-cron",
            CronNeverFires { .. } => "cron-never-fires",
            CronTooFrequent { .. } => "cron-too-frequent",
            InvalidTimeZone { .. } => "invalid-timezone",
            InvalidQuietHours { .. } => "invalid-quiet-hours",
            InvalidPhone { .. } => "invalid-phone",
            InvalidZaloId { .. } => "invalid-zalo-id",
            DuplicateId { .. } => "duplicate-id",
            SameIdFile { .. } => "same-id-file",
            UnknownValue { .. } => "unknown-value",
            UnknownVillage { .. } => "unknown-village",
            UnknownLeader { .. } => "unknown-leader",
            NoCommuneFile => "no-commune-file",
            RuleShape { .. } => "send-rule-shape",
            FieldOnlyWithCron { .. } => "field-only-with-cron",
            NoSendRules => "no-send-rules",
            ReminderWithoutEvent => "reminder-without-event",
            RuleAfterExpiry => "rule-after-expiry",
            UntilBeforeFrom => "until-before-from",
            EventEndsBeforeStart => "event-ends-before-start",
            StormWithoutExpiry => "storm-without-expiry",
            NoHeads { .. } => "no-heads",
            NobodyToConfirm => "nobody-to-confirm",
            NoContact { .. } => "no-contact",
            TemplateMissing { .. } => "template-missing",
            TemplateSyntax { .. } => "template-syntax",
            TemplateRender { .. } => "template-render",
            TooLong { .. } => "too-long",
        }
    }

    /// The message in the given language, without location or field.
    pub fn message(&self, lang: Lang) -> String {
        match lang {
            Lang::Vi => self.message_vi(),
            Lang::En => self.message_en(),
        }
    }

    fn message_vi(&self) -> String {
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

    fn message_en(&self) -> String {
        use ProblemKind::*;
        match self {
            Unreadable { error } => format!("cannot read the file: {error}"),
            NotUtf8 => "the file is not UTF-8 text; save it again as UTF-8".into(),
            Tab => "a tab at the start of a line; YAML indents with spaces only".into(),
            Syntax { detail } => format!("YAML syntax error: {detail}"),
            DuplicateKey { key } => format!("key \"{key}\" appears twice"),
            UnknownField { field, suggestion } => {
                format!("unknown field \"{field}\"{}", did_you_mean_en(suggestion))
            }
            MissingField { field } => format!("missing required field \"{field}\""),
            WrongType { expected, found } => {
                format!("wrong type: expected {expected}, found {found}")
            }
            AliasInPlainValue => {
                "a value starting with \"*\" must be quoted, e.g. \"*/5 * * * *\"".into()
            }
            Empty => "must not be empty".into(),
            InvalidDateTime { value } => format!(
                "\"{value}\" is not a date and time; write YYYY-MM-DD HH:MM, e.g. 2026-12-01 07:30"
            ),
            ImpossibleDateTime { value } => format!("\"{value}\" is not a real date"),
            InvalidDuration { value } => {
                format!("\"{value}\" is not a duration; write e.g. 30m, 2h, 1d, 1w or 1d12h")
            }
            DurationOutOfRange { value } => {
                format!("duration \"{value}\" must be above 0 and at most 366 days")
            }
            InvalidCron { value, fault } => {
                format!(
                    "invalid cron expression \"{value}\": {}",
                    fault.message_en()
                )
            }
            CronNeverFires { value } => {
                format!("cron expression \"{value}\" never fires (no such day)")
            }
            CronTooFrequent {
                value,
                minutes,
                first,
                then,
            } => {
                let plural = if *minutes == 1 { "" } else { "s" };
                format!(
                    "cron expression \"{value}\" sends only {minutes} minute{plural} apart ({first}, then {then}); \
                     the minimum is 15{}",
                    if every_minute(value) {
                        " (7 o'clock daily is \"0 7 * * *\", not \"* 7 * * *\")"
                    } else {
                        ""
                    }
                )
            }
            InvalidTimeZone { value } => {
                format!("unknown time zone \"{value}\"; Viet Nam's is Asia/Ho_Chi_Minh")
            }
            InvalidQuietHours { value } => {
                format!("invalid quiet hours \"{value}\"; write HH:MM-HH:MM, e.g. 21:30-06:00")
            }
            InvalidPhone { value } => format!(
                "invalid phone number \"{value}\"; expected 10 digits starting with 0 (or 84…)"
            ),
            InvalidZaloId { value } => {
                format!("invalid Zalo id \"{value}\"; only digits and letters a–f")
            }
            DuplicateId { id } => format!("id \"{id}\" is used twice"),
            SameIdFile { id, other } => format!(
                "\"{other}\" is announcement \"{id}\" too; rename or remove one of the two files"
            ),
            UnknownValue {
                value,
                allowed,
                suggestion,
            } => format!(
                "invalid value \"{value}\"{}; allowed: {}",
                did_you_mean_en(suggestion),
                allowed.join(", ")
            ),
            UnknownVillage { id, suggestion } => format!(
                "village \"{id}\" is not defined in commune.yaml{}",
                did_you_mean_en(suggestion)
            ),
            UnknownLeader { id, suggestion } => format!(
                "leader \"{id}\" is not defined in commune.yaml{}",
                did_you_mean_en(suggestion)
            ),
            NoCommuneFile => "no commune.yaml in the announcement directory".into(),
            RuleShape { found } if found.is_empty() => {
                "a send rule needs exactly one of at, cron, before_event".into()
            }
            RuleShape { found } => format!(
                "a send rule takes only one of at, cron, before_event (found: {}); \
                 split it into several \"- \" items",
                found.join(", ")
            ),
            FieldOnlyWithCron { field } => format!("\"{field}\" only goes with cron"),
            NoSendRules => "at least one send rule is needed".into(),
            ReminderWithoutEvent => "before_event needs an event with starts".into(),
            RuleAfterExpiry => "this send rule lies entirely after expires".into(),
            UntilBeforeFrom => "until must be after from".into(),
            EventEndsBeforeStart => "the event ends before it starts".into(),
            StormWithoutExpiry => {
                "a storm warning needs expires, so it stops once the storm has passed".into()
            }
            NoHeads { villages } => {
                format!(
                    "village {} has no head (with a phone or zalo_user) in commune.yaml",
                    villages.join(", ")
                )
            }
            NobodyToConfirm => "needs at least one confirming role, e.g. [village_head]".into(),
            NoContact { name } => {
                format!("{name} has neither a phone nor a zalo_user: nothing can reach them")
            }
            TemplateMissing { name } => {
                format!("no template \"{name}\" (expected templates/{name}.tera)")
            }
            TemplateSyntax { detail } => format!("template syntax error: {detail}"),
            TemplateRender { template, detail } => {
                format!("template \"{template}\" does not render with this file's data: {detail}")
            }
            TooLong {
                chars,
                limit,
                village,
            } => format!(
                "the message is {chars} characters long{}, over Zalo's limit of {limit}",
                village
                    .as_ref()
                    .map(|v| format!(" (to village {v})"))
                    .unwrap_or_default()
            ),
        }
    }
}

/// What is wrong with a cron expression, found by trying its fields one at a time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CronFault {
    FieldCount(usize),
    Field { field: CronField, text: String },
    Other(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CronField {
    Second,
    Minute,
    Hour,
    DayOfMonth,
    Month,
    DayOfWeek,
}

impl CronFault {
    fn message_vi(&self) -> String {
        match self {
            CronFault::FieldCount(n) => {
                format!("cần 5 trường (phút giờ ngày tháng thứ), đang có {n}")
            }
            CronFault::Field { field, text } => {
                let (name, range) = match field {
                    CronField::Second => ("giây", "0–59"),
                    CronField::Minute => ("phút", "0–59"),
                    CronField::Hour => ("giờ", "0–23"),
                    CronField::DayOfMonth => ("ngày trong tháng", "1–31"),
                    CronField::Month => ("tháng", "1–12 hoặc JAN–DEC"),
                    CronField::DayOfWeek => ("thứ", "0–7 hoặc SUN–SAT, 0 và 7 là Chủ Nhật"),
                };
                format!(
                    "trường {name} \"{text}\" sai; cần giá trị {range}, dạng *, a, a-b, */n hoặc danh sách a,b"
                )
            }
            CronFault::Other(detail) => detail.clone(),
        }
    }

    fn message_en(&self) -> String {
        match self {
            CronFault::FieldCount(n) => {
                format!("needs 5 fields (minute hour day month weekday), found {n}")
            }
            CronFault::Field { field, text } => {
                let (name, range) = match field {
                    CronField::Second => ("second", "0–59"),
                    CronField::Minute => ("minute", "0–59"),
                    CronField::Hour => ("hour", "0–23"),
                    CronField::DayOfMonth => ("day-of-month", "1–31"),
                    CronField::Month => ("month", "1–12 or JAN–DEC"),
                    CronField::DayOfWeek => ("day-of-week", "0–7 or SUN–SAT, 0 and 7 are Sunday"),
                };
                format!(
                    "{name} field \"{text}\" is wrong; expected {range}, as *, a, a-b, */n or a list a,b"
                )
            }
            CronFault::Other(detail) => detail.clone(),
        }
    }
}

/// Whether a cron expression's minute field is `*`: the usual mistake behind a too-frequent one
/// ("* 7 * * *" for seven o'clock), worth a hint.
fn every_minute(cron: &str) -> bool {
    let fields: Vec<&str> = cron.split(' ').collect();
    let minute = if fields.len() == 6 { 1 } else { 0 };
    fields.get(minute) == Some(&"*")
}

fn did_you_mean_vi(suggestion: &Option<String>) -> String {
    suggestion
        .as_ref()
        .map(|s| format!(" (có phải ý bạn là \"{s}\"?)"))
        .unwrap_or_default()
}

fn did_you_mean_en(suggestion: &Option<String>) -> String {
    suggestion
        .as_ref()
        .map(|s| format!(" (did you mean \"{s}\"?)"))
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

impl Problem {
    pub fn new(path: &Path, pos: Pos, field: impl Into<String>, kind: ProblemKind) -> Self {
        Problem {
            path: path.to_path_buf(),
            pos,
            field: field.into(),
            kind,
        }
    }

    /// `path:line:column: field: message` — the line `loa check` prints.
    pub fn render(&self, lang: Lang) -> String {
        let mut out = format!(
            "{}:{}:{}: ",
            self.path.display(),
            self.pos.line,
            self.pos.column
        );
        if !self.field.is_empty() {
            let _ = write!(out, "{}: ", self.field);
        }
        out.push_str(&self.kind.message(lang));
        out
    }

    /// The JSON shape of `--format json`.
    pub fn to_json(&self, lang: Lang) -> serde_json::Value {
        serde_json::json!({
            "path": self.path.display().to_string(),
            "line": self.pos.line,
            "column": self.pos.column,
            "field": self.field,
            "code": self.kind.code(),
            "message": self.kind.message(lang),
        })
    }
}

/// The closest candidate by edit distance, if close enough to be a plausible typo.
pub fn suggest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<String> {
    let limit = (word.chars().count() / 3).max(1) + 1;
    candidates
        .into_iter()
        .map(|c| (edit_distance(word, c), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c.to_string())
}

/// Levenshtein distance over characters (Vietnamese ids are ASCII, but titles may not be).
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_words_only() {
        let fields = ["title", "audience", "send", "expires"];
        assert_eq!(suggest("audince", fields), Some("audience".into()));
        assert_eq!(suggest("expire", fields), Some("expires".into()));
        assert_eq!(suggest("colour", fields), None);
    }

    #[test]
    fn renders_location_field_and_message() {
        let p = Problem::new(
            Path::new("a/b.yaml"),
            Pos::new(3, 5),
            "send[0].at",
            ProblemKind::ImpossibleDateTime {
                value: "2026-02-30 07:00".into(),
            },
        );
        assert_eq!(
            p.render(Lang::Vi),
            "a/b.yaml:3:5: send[0].at: ngày giờ \"2026-02-30 07:00\" không có thật trên lịch"
        );
        assert_eq!(
            p.render(Lang::En),
            "a/b.yaml:3:5: send[0].at: \"2026-02-30 07:00\" is not a real date"
        );
    }
}
