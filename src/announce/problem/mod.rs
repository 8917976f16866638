//! A problem found in the announcement repository: where it is (file, line, column, field) and what
//! it is, as data. Messages are produced from the data in Vietnamese (for commune staff) or English,
//! so the same problem list feeds the terminal, `--format json`, and later the dashboard.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;

mod cron;
mod en;
mod vi;

pub use cron::{CronFault, CronField};

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
