//! When an announcement goes: its event, its send rules (times, crons, reminders before the
//! event) and whether any of them can still go before it expires.

use super::*;

pub(super) fn event(c: &mut Checker, raw: &Sp<RawEvent>, tz: &TimeZone) -> Option<Event> {
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

pub(super) fn send_rules(
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

pub(super) fn cron_rule(
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
        Err(crate::announce::cadence::NeverFires) => {
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

pub(super) fn before_event_rule(
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
pub(super) fn rule_entirely_after(
    kind: &RuleKind,
    event: Option<&Event>,
    expires: Timestamp,
) -> bool {
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
