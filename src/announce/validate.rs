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
const MIN_CRON_GAP_MINUTES: i64 = 15;

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

pub fn commune(path: &Path, raw: &RawCommune) -> Result<Commune, Vec<Problem>> {
    let mut c = Checker {
        path,
        problems: Vec::new(),
    };
    let name = c.non_empty(&raw.commune, "commune");
    let tz = match &raw.timezone {
        None => TimeZone::get(DEFAULT_TZ).ok(),
        Some(tz) => c.value(tz, "timezone", |v| {
            TimeZone::get(v).map_err(|_| ProblemKind::InvalidTimeZone { value: v.into() })
        }),
    };
    let quiet_hours = raw
        .quiet_hours
        .as_ref()
        .and_then(|q| c.value(q, "quiet_hours", parse_quiet_hours));
    let mut seen = HashSet::new();
    let mut villages = Vec::new();
    for (i, v) in raw.villages.get().iter().enumerate() {
        let field = format!("villages[{i}]");
        let rv = v.get();
        let id = village_or_leader_id(&mut c, &rv.id, &format!("{field}.id"), &mut seen);
        let name = c.non_empty(&rv.name, &format!("{field}.name"));
        if let Some(g) = &rv.zalo_group {
            c.value(g, format!("{field}.zalo_group"), check_zalo_id);
        }
        let heads = people(
            &mut c,
            &rv.heads,
            &format!("{field}.heads"),
            false,
            &mut HashSet::new(),
        );
        if let (Some(id), Some(name)) = (id, name) {
            villages.push(Village {
                id,
                name,
                zalo_group: rv.zalo_group.as_ref().map(|g| g.get().clone()),
                zalo_tag: rv
                    .zalo_tag
                    .as_ref()
                    .map(|t| t.get().trim().to_string())
                    .filter(|t| !t.is_empty()),
                heads,
            });
        }
    }
    if raw.villages.get().is_empty() {
        c.report(raw.villages.pos(), "villages", ProblemKind::Empty);
    }
    let leaders = people(&mut c, &raw.leaders, "leaders", true, &mut seen);
    match (c.problems.is_empty(), name, tz) {
        (true, Some(name), Some(tz)) => Ok(Commune {
            name,
            tz,
            quiet_hours,
            villages,
            leaders,
        }),
        _ => Err(c.problems),
    }
}

/// Ids are compared as written; village and leader ids share one namespace so that an id in a
/// file can never mean two things.
fn village_or_leader_id(
    c: &mut Checker,
    raw: &Sp<String>,
    field: &str,
    seen: &mut HashSet<String>,
) -> Option<String> {
    let id = c.non_empty(raw, field)?;
    if !seen.insert(id.clone()) {
        c.report(raw.pos(), field, ProblemKind::DuplicateId { id });
        return None;
    }
    Some(id)
}

fn people(
    c: &mut Checker,
    raw: &[Sp<RawPerson>],
    field: &str,
    need_id: bool,
    seen: &mut HashSet<String>,
) -> Vec<Person> {
    let mut out = Vec::new();
    for (i, p) in raw.iter().enumerate() {
        let field = format!("{field}[{i}]");
        let rp = p.get();
        let id = match &rp.id {
            Some(id) => village_or_leader_id(c, id, &format!("{field}.id"), seen),
            None if need_id => {
                c.report(
                    p.pos(),
                    &field,
                    ProblemKind::MissingField { field: "id".into() },
                );
                None
            }
            None => None,
        };
        let name = c.non_empty(&rp.name, &format!("{field}.name"));
        let phone = rp
            .phone
            .as_ref()
            .and_then(|ph| c.value(ph, format!("{field}.phone"), parse_phone));
        if let Some(z) = &rp.zalo_user {
            c.value(z, format!("{field}.zalo_user"), check_zalo_id);
        }
        if let Some(name) = name {
            out.push(Person {
                id,
                name,
                phone,
                zalo_user: rp.zalo_user.as_ref().map(|z| z.get().clone()),
            });
        }
    }
    out
}

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

fn audience(
    c: &mut Checker,
    raw: Option<&Sp<RawAudience>>,
    commune: Option<&Commune>,
) -> Option<Audience> {
    let all_villages = || {
        commune
            .map(|k| k.villages.iter().map(|v| v.id.clone()).collect())
            .unwrap_or_default()
    };
    let Some(raw) = raw else {
        return Some(Audience {
            villages: all_villages(),
            whole_commune: true,
            heads_only: false,
        });
    };
    let ra = raw.get();
    // Heads only when they are the only role named: `[village_head, residents]` is everyone
    // (the heads are residents, reached with the others).
    let (mut heads, mut residents) = (false, false);
    for (i, role) in ra.roles.iter().flat_map(|r| r.get().iter()).enumerate() {
        match role.get().as_str() {
            "village_head" => heads = true,
            "residents" => residents = true,
            v => c.report(
                role.pos(),
                format!("audience.roles[{i}]"),
                unknown_value(v, &["village_head", "residents"]),
            ),
        }
    }
    let heads_only = heads && !residents;
    let named: Vec<&Sp<String>> = ra.villages.iter().flat_map(|v| v.get().iter()).collect();
    let mut villages = Vec::new();
    for (i, v) in named.iter().enumerate() {
        let id = v.get().trim();
        if let Some(k) = commune
            && k.village(id).is_none()
        {
            let suggestion = suggest(id, k.villages.iter().map(|v| v.id.as_str()));
            c.report(
                v.pos(),
                format!("audience.villages[{i}]"),
                ProblemKind::UnknownVillage {
                    id: id.into(),
                    suggestion,
                },
            );
            continue;
        }
        if !villages.iter().any(|x| x == id) {
            villages.push(id.to_string());
        }
    }
    let whole_commune = named.is_empty();
    if whole_commune {
        villages = all_villages();
    }
    if let (true, Some(roles)) = (heads_only, &ra.roles) {
        no_heads(c, roles.pos(), "audience.roles", &villages, commune);
    }
    Some(Audience {
        villages,
        whole_commune,
        heads_only,
    })
}

/// Heads are needed when the file sends to them or asks them to confirm.
fn no_heads(
    c: &mut Checker,
    pos: Pos,
    field: &str,
    villages: &[String],
    commune: Option<&Commune>,
) {
    let Some(k) = commune else { return };
    let missing: Vec<String> = villages
        .iter()
        // A head with neither a phone nor a Zalo id cannot be written to: as good as none.
        .filter(|id| {
            k.village(id).is_some_and(|v| {
                v.heads
                    .iter()
                    .all(|h| h.phone.is_none() && h.zalo_user.is_none())
            })
        })
        .cloned()
        .collect();
    if !missing.is_empty() {
        c.report(pos, field, ProblemKind::NoHeads { villages: missing });
    }
}

fn event(c: &mut Checker, raw: &Sp<RawEvent>, tz: &TimeZone) -> Option<Event> {
    let re = raw.get();
    let starts = c.value(&re.starts, "event.starts", |v| parse_datetime(v, tz, false));
    let ends = re
        .ends
        .as_ref()
        .and_then(|e| c.value(e, "event.ends", |v| parse_datetime(v, tz, false)));
    if let (Some(s), Some(e), Some(raw_end)) = (starts, ends, re.ends.as_ref())
        && e < s
    {
        c.report(
            raw_end.pos(),
            "event.ends",
            ProblemKind::EventEndsBeforeStart,
        );
    }
    let place = re
        .place
        .as_ref()
        .map(|p| p.get().trim().to_string())
        .filter(|p| !p.is_empty());
    Some(Event {
        starts: starts?,
        ends,
        place,
    })
}

fn send_rules(
    c: &mut Checker,
    raw: &RawAnnouncement,
    tz: &TimeZone,
    event: Option<&Event>,
    expires: Option<Timestamp>,
) -> Vec<SendRule> {
    if raw.send.get().is_empty() {
        c.report(raw.send.pos(), "send", ProblemKind::NoSendRules);
    }
    let mut rules = Vec::new();
    for (index, rule) in raw.send.get().iter().enumerate() {
        let field = format!("send[{index}]");
        let r = rule.get();
        let present: Vec<&'static str> = [
            ("at", r.at.is_some()),
            ("cron", r.cron.is_some()),
            ("before_event", r.before_event.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, here)| here.then_some(name))
        .collect();
        if present.len() != 1 {
            c.report(
                rule.pos(),
                &field,
                ProblemKind::RuleShape { found: present },
            );
            continue;
        }
        if r.cron.is_none() {
            for (name, value) in [("from", &r.from), ("until", &r.until)] {
                if let Some(v) = value {
                    c.report(
                        v.pos(),
                        format!("{field}.{name}"),
                        ProblemKind::FieldOnlyWithCron { field: name },
                    );
                }
            }
        }
        let kind = if let Some(at) = &r.at {
            c.value(at, format!("{field}.at"), |v| parse_datetime(v, tz, false))
                .map(|at| RuleKind::Once { at })
        } else if let Some(cron) = &r.cron {
            cron_rule(c, r, cron, &field, tz)
        } else {
            before_event_rule(c, r, rule.pos(), &field, event)
        };
        let Some(kind) = kind else { continue };
        if let Some(exp) = expires
            && rule_entirely_after(&kind, event, exp)
        {
            c.report(rule.pos(), &field, ProblemKind::RuleAfterExpiry);
        }
        rules.push(SendRule { index, kind });
    }
    rules
}

fn cron_rule(
    c: &mut Checker,
    r: &RawSendRule,
    cron: &Sp<String>,
    field: &str,
    tz: &TimeZone,
) -> Option<RuleKind> {
    let from = r
        .from
        .as_ref()
        .and_then(|f| c.value(f, format!("{field}.from"), |v| parse_datetime(v, tz, false)));
    let until = r
        .until
        .as_ref()
        .and_then(|u| c.value(u, format!("{field}.until"), |v| parse_datetime(v, tz, true)));
    if let (Some(f), Some(u), Some(raw_until)) = (from, until, r.until.as_ref())
        && u <= f
    {
        c.report(
            raw_until.pos(),
            format!("{field}.until"),
            ProblemKind::UntilBeforeFrom,
        );
    }
    let expr = c.value(cron, format!("{field}.cron"), parse_cron)?;
    // A fixed reference keeps `check` independent of the day it runs.
    let reference = from
        .unwrap_or(Timestamp::constant(1_767_225_600, 0))
        .to_zoned(tz.clone());
    let too_close = expr.too_close(&reference, SignedDuration::from_mins(MIN_CRON_GAP_MINUTES));
    match too_close {
        Err(super::cadence::NeverFires) => {
            c.report(
                cron.pos(),
                format!("{field}.cron"),
                ProblemKind::CronNeverFires { value: expr.source },
            );
            return None;
        }
        Ok(Some(close)) => {
            let local = |t: &jiff::Zoned| {
                let format = if close.gap.as_secs() % 60 == 0 && t.second() == 0 {
                    "%Y-%m-%d %H:%M"
                } else {
                    "%Y-%m-%d %H:%M:%S"
                };
                t.strftime(format).to_string()
            };
            c.report(
                cron.pos(),
                format!("{field}.cron"),
                ProblemKind::CronTooFrequent {
                    first: local(&close.first),
                    then: local(&close.then),
                    value: expr.source,
                    minutes: close.gap.as_mins(),
                },
            );
            return None;
        }
        Ok(None) => {}
    }
    Some(RuleKind::Cron {
        expr: Box::new(expr),
        from,
        until,
    })
}

fn before_event_rule(
    c: &mut Checker,
    r: &RawSendRule,
    pos: Pos,
    field: &str,
    event: Option<&Event>,
) -> Option<RuleKind> {
    let raw = r.before_event.as_ref()?;
    let mut offsets: Vec<SignedDuration> = Vec::new();
    for (i, o) in raw.get().iter().enumerate() {
        if let Some(d) = c.value(o, format!("{field}.before_event[{i}]"), parse_duration) {
            offsets.push(d);
        }
    }
    if raw.get().is_empty() {
        c.report(
            raw.pos(),
            format!("{field}.before_event"),
            ProblemKind::Empty,
        );
        return None;
    }
    if event.is_none() {
        c.report(
            pos,
            format!("{field}.before_event"),
            ProblemKind::ReminderWithoutEvent,
        );
        return None;
    }
    offsets.sort_by(|a, b| b.cmp(a));
    offsets.dedup();
    Some(RuleKind::BeforeEvent { offsets })
}

/// True when no send of the rule can happen at or before `expires`.
fn rule_entirely_after(kind: &RuleKind, event: Option<&Event>, expires: Timestamp) -> bool {
    match kind {
        RuleKind::Once { at } => *at > expires,
        RuleKind::Cron { from, .. } => from.is_some_and(|f| f > expires),
        RuleKind::BeforeEvent { offsets } => {
            !offsets.is_empty()
                && event.is_some_and(|e| {
                    offsets
                        .iter()
                        .all(|o| e.starts.checked_sub(*o).is_ok_and(|t| t > expires))
                })
        }
    }
}

fn confirm(
    c: &mut Checker,
    raw: &Sp<RawConfirm>,
    commune: Option<&Commune>,
    audience: Option<&Audience>,
) -> Option<Confirm> {
    let rc = raw.get();
    let within = c.value(&rc.within, "confirm.within", parse_duration);
    let by: Vec<&Sp<String>> = rc.by.iter().flat_map(|b| b.get().iter()).collect();
    if let Some(b) = rc.by.as_ref().filter(|b| b.get().is_empty()) {
        c.report(b.pos(), "confirm.by", ProblemKind::NobodyToConfirm);
    }
    for (i, role) in by.iter().enumerate() {
        if role.get() != "village_head" {
            c.report(
                role.pos(),
                format!("confirm.by[{i}]"),
                unknown_value(role.get(), &["village_head"]),
            );
        }
    }
    if let Some(a) = audience {
        let at = rc.by.as_ref().map_or(raw.pos(), |b| b.pos());
        no_heads(c, at, "confirm.by", &a.villages, commune);
    }
    let mut escalate_to = Vec::new();
    for (i, l) in rc
        .escalate_to
        .iter()
        .flat_map(|e| e.get().iter())
        .enumerate()
    {
        let id = l.get().trim();
        if let Some(k) = commune
            && k.leader(id).is_none()
        {
            let suggestion = suggest(id, k.leaders.iter().filter_map(|p| p.id.as_deref()));
            c.report(
                l.pos(),
                format!("confirm.escalate_to[{i}]"),
                ProblemKind::UnknownLeader {
                    id: id.into(),
                    suggestion,
                },
            );
            continue;
        }
        if let Some(leader) = commune.and_then(|k| k.leader(id))
            && leader.phone.is_none()
            && leader.zalo_user.is_none()
        {
            c.report(
                l.pos(),
                format!("confirm.escalate_to[{i}]"),
                ProblemKind::NoContact {
                    name: leader.name.clone(),
                },
            );
            continue;
        }
        escalate_to.push(id.to_string());
    }
    Some(Confirm {
        within: within?,
        escalate_to,
    })
}
