//! Problems in English, for `--lang en`, logs and editors.

use super::ProblemKind;
use super::cron::every_minute;

impl ProblemKind {
    pub(super) fn message_en(&self) -> String {
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

fn did_you_mean_en(suggestion: &Option<String>) -> String {
    suggestion
        .as_ref()
        .map(|s| format!(" (did you mean \"{s}\"?)"))
        .unwrap_or_default()
}
