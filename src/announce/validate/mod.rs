//! Raw structs → validated model in one step, collecting every problem with its position and field
//! rather than stopping at the first. A file that has any problem yields no model.

use std::collections::HashSet;
use std::path::Path;

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};

use super::model::*;
use super::problem::{Pos, Problem, ProblemKind, suggest};
use super::raw::*;
use super::values::*;

pub const DEFAULT_TZ: &str = "Asia/Ho_Chi_Minh";

/// The smallest gap between two sends of one cron rule: a guard against `* 7 * * *`.
pub(super) const MIN_CRON_GAP_MINUTES: i64 = 15;

/// Collects the problems of one file.
struct Checker<'a> {
    path: &'a Path,
    problems: Vec<Problem>,
}

impl Checker<'_> {
    fn report(&mut self, pos: Pos, field: impl Into<String>, kind: ProblemKind) {
        self.problems
            .push(Problem::new(self.path, pos, field, kind));
    }

    /// Runs a value parser; on error reports it at the value and returns None.
    fn value<T>(
        &mut self,
        raw: &Sp<String>,
        field: impl Into<String>,
        parse: impl FnOnce(&str) -> Result<T, ProblemKind>,
    ) -> Option<T> {
        match parse(raw.get()) {
            Ok(v) => Some(v),
            Err(kind) => {
                self.report(raw.pos(), field, kind);
                None
            }
        }
    }

    fn non_empty(&mut self, raw: &Sp<String>, field: &str) -> Option<String> {
        let text = raw.get().trim();
        if text.is_empty() {
            self.report(raw.pos(), field, ProblemKind::Empty);
            None
        } else {
            Some(text.to_string())
        }
    }
}

mod audience;
mod commune;
mod rules;

use audience::{audience, confirm};
pub use commune::commune;
use rules::{event, send_rules};

/// Validates one announcement. `commune` is None when commune.yaml is missing or broken: the file
/// is still checked for everything that does not need it.
pub fn announcement(
    path: &Path,
    id: &str,
    raw: &RawAnnouncement,
    source: &str,
    commune: Option<&Commune>,
) -> Result<Announcement, Vec<Problem>> {
    let mut c = Checker {
        path,
        problems: Vec::new(),
    };
    let fallback_tz = TimeZone::get(DEFAULT_TZ).unwrap_or(TimeZone::UTC);
    let tz = commune.map(|k| &k.tz).unwrap_or(&fallback_tz);
    let title = c.non_empty(&raw.title, "title");
    let kind = match &raw.kind {
        None => Some(Kind::General),
        Some(k) => c.value(k, "kind", |v| {
            Kind::parse(v).ok_or_else(|| unknown_value(v, &Kind::NAMES))
        }),
    };
    let priority = match &raw.priority {
        None => Some(Priority::Normal),
        Some(p) => c.value(p, "priority", |v| match v {
            "urgent" => Ok(Priority::Urgent),
            "normal" => Ok(Priority::Normal),
            _ => Err(unknown_value(v, &["urgent", "normal"])),
        }),
    };
    let audience = audience(&mut c, raw.audience.as_ref(), commune);
    let event = raw.event.as_ref().and_then(|e| event(&mut c, e, tz));
    let expires = match &raw.expires {
        Some(e) => c.value(e, "expires", |v| parse_datetime(v, tz, true)),
        None => event.as_ref().map(|e| e.ends.unwrap_or(e.starts)),
    };
    if raw.expires.is_none() && kind == Some(Kind::StormWarning) {
        let at = raw.kind.as_ref().map_or(raw.title.pos(), |k| k.pos());
        c.report(at, "kind", ProblemKind::StormWithoutExpiry);
    }
    let rules = send_rules(&mut c, raw, tz, event.as_ref(), expires);
    let catch_up = raw
        .catch_up
        .as_ref()
        .and_then(|d| c.value(d, "catch_up", parse_duration));
    let confirm = raw
        .confirm
        .as_ref()
        .and_then(|k| confirm(&mut c, k, commune, audience.as_ref()));
    let data = match raw.data.as_ref().map(|d| (d, d.get().json(source))) {
        None => serde_json::Value::Object(Default::default()),
        Some((_, json)) if json.is_object() => json,
        Some((d, json)) => {
            c.report(
                d.pos(),
                "data",
                ProblemKind::WrongType {
                    expected: "a map".into(),
                    found: json_type(&json).into(),
                },
            );
            serde_json::Value::Null
        }
    };
    if !c.problems.is_empty() {
        return Err(c.problems);
    }
    let (Some(title), Some(kind), Some(priority), Some(audience)) =
        (title, kind, priority, audience)
    else {
        return Err(c.problems);
    };
    Ok(Announcement {
        id: id.to_string(),
        path: path.to_path_buf(),
        title,
        kind,
        priority,
        audience,
        template: raw
            .template
            .as_ref()
            .map(|t| t.get().trim().to_string())
            .unwrap_or_else(|| kind.name().into()),
        template_pos: raw.template.as_ref().map_or(raw.title.pos(), |t| t.pos()),
        event,
        rules,
        expires,
        catch_up,
        confirm,
        data,
    })
}

fn unknown_value(value: &str, allowed: &[&'static str]) -> ProblemKind {
    ProblemKind::UnknownValue {
        value: value.to_string(),
        allowed: allowed.to_vec(),
        suggestion: suggest(value, allowed.iter().copied()),
    }
}

fn json_type(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "bool",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "a sequence",
        serde_json::Value::Object(_) => "a map",
    }
}
