//! What the templates see: the report's structs turned into rows of ready text (times in
//! Asia/Ho_Chi_Minh, states and reasons in Vietnamese). The numbers are copied, never recomputed.

use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde::Serialize;

use crate::announce::problem::Lang;
use crate::ledger::report::{
    ConfirmationRow, Counts, FollowUp, PersonRow, SendReport, Upcoming, words,
};
use crate::render::vi_time;

const VI: Lang = Lang::Vi;

/// `T3 01/12/2026 08:00`.
pub fn when(t: Timestamp, tz: &TimeZone) -> String {
    let z = t.to_zoned(tz.clone());
    format!(
        "{} {}",
        vi_time::weekday_short(z.weekday()),
        z.strftime("%d/%m/%Y %H:%M")
    )
}

/// One row of counts: a village, or `total`.
#[derive(Serialize)]
pub struct CountsRow {
    /// `a`, `total`, or `-` for followers outside any village: what tests select rows by.
    pub key: String,
    pub name: String,
    pub targeted: i64,
    pub sent: i64,
    pub delivered: i64,
    pub seen: i64,
    /// Heads confirmed / asked, or `–`.
    pub heads: String,
    pub failed: i64,
    pub pending: i64,
    pub expired: i64,
    pub missed: i64,
    pub unknown: i64,
}

pub fn counts_row(key: &str, name: &str, c: &Counts) -> CountsRow {
    CountsRow {
        key: key.into(),
        name: name.into(),
        targeted: c.targeted,
        sent: c.sent,
        delivered: c.delivered,
        seen: c.seen,
        heads: if c.heads_asked == 0 {
            "–".into()
        } else {
            format!("{}/{}", c.heads_confirmed, c.heads_asked)
        },
        failed: c.failed,
        pending: c.pending,
        expired: c.expired,
        missed: c.missed,
        unknown: c.unknown,
    }
}

#[derive(Serialize)]
pub struct SendView {
    pub id: i64,
    pub announcement: String,
    pub when: String,
    pub urgent: bool,
    pub missed: bool,
    pub reason: Option<String>,
    pub rows: Vec<CountsRow>,
    pub failures: Vec<String>,
    pub confirmations: Vec<ConfirmationView>,
    pub follow_ups: Vec<FollowUpView>,
}

/// Village id → name (from `commune.yaml`); an id without a name shows as itself.
pub type Names = std::collections::HashMap<String, String>;

fn name(names: &Names, id: &str) -> String {
    names.get(id).cloned().unwrap_or_else(|| id.to_string())
}

pub fn send(s: &SendReport, tz: &TimeZone, names: &Names) -> SendView {
    let mut rows: Vec<CountsRow> = s
        .villages
        .iter()
        .map(|v| match &v.village_id {
            Some(id) => counts_row(id, &name(names, id), &v.counts),
            None => counts_row("-", words::no_village(VI), &v.counts),
        })
        .collect();
    rows.push(counts_row("total", "Tổng", &s.total));
    SendView {
        id: s.id,
        announcement: s.announcement_id.clone(),
        when: when(s.send_at, tz),
        urgent: s.urgent,
        missed: s.state == "missed",
        reason: s.reason.clone(),
        rows,
        failures: failures(&s.total),
        confirmations: s
            .confirmations
            .iter()
            .map(|c| confirmation(s, c, tz, names))
            .collect(),
        follow_ups: s.follow_ups.iter().map(|f| follow_up(f, tz)).collect(),
    }
}

/// `2 × người nhận đã chặn OA (-217)`.
pub fn failures(c: &Counts) -> Vec<String> {
    c.failures
        .iter()
        .map(|f| {
            let words = words::failure("failed", Some(&f.code), Some(&f.reason), VI);
            // Words for a code without plain words already name it ("lỗi khác (-9): …").
            if words.contains(f.code.as_str()) {
                format!("{} × {words}", f.count)
            } else {
                format!("{} × {words} ({})", f.count, f.code)
            }
        })
        .collect()
}

#[derive(Serialize)]
pub struct ConfirmationView {
    pub send_id: i64,
    pub announcement: String,
    pub village: String,
    pub person: String,
    pub confirmed: bool,
    pub state: String,
    pub at: String,
    pub via: String,
    pub reminded: String,
    pub escalated: String,
}

pub fn confirmation(
    s: &SendReport,
    c: &ConfirmationRow,
    tz: &TimeZone,
    names: &Names,
) -> ConfirmationView {
    let confirmed = c.state == "confirmed";
    let opt = |t: Option<Timestamp>| t.map(|t| when(t, tz)).unwrap_or_default();
    ConfirmationView {
        send_id: s.id,
        announcement: s.announcement_id.clone(),
        village: name(names, &c.village_id),
        person: c.person.clone(),
        confirmed,
        state: words::state(&c.state, VI).into(),
        at: opt(c.confirmed_at),
        via: if confirmed {
            words::via(c.via.as_deref(), VI).into()
        } else {
            String::new()
        },
        reminded: opt(c.reminded_at),
        escalated: opt(c.escalated_at),
    }
}

#[derive(Serialize)]
pub struct FollowUpView {
    pub id: i64,
    pub kind: String,
    pub when: String,
    pub sent: i64,
    pub targeted: i64,
    pub failed: i64,
}

fn follow_up(f: &FollowUp, tz: &TimeZone) -> FollowUpView {
    FollowUpView {
        id: f.id,
        kind: words::follow_up(f.kind, VI).into(),
        when: when(f.send_at, tz),
        sent: f.total.sent,
        targeted: f.total.targeted,
        failed: f.total.failed,
    }
}

#[derive(Serialize)]
pub struct FailureView {
    pub send_id: i64,
    pub announcement: String,
    pub village: String,
    pub recipient: String,
    pub kind: String,
    pub state: String,
    pub reason: String,
    pub at: String,
}

/// The deliveries that did not reach their recipient, with why in plain words.
pub fn failed_people(rows: &[PersonRow], tz: &TimeZone, names: &Names) -> Vec<FailureView> {
    rows.iter()
        .filter(|p| words::is_failure(&p.state))
        .map(|p| FailureView {
            send_id: p.send_id,
            announcement: p.announcement_id.clone(),
            village: p
                .village_id
                .as_deref()
                .map(|id| name(names, id))
                .unwrap_or_else(|| words::no_village(VI).into()),
            recipient: p.person.clone().unwrap_or_else(|| p.target.clone()),
            kind: words::kind(&p.target_kind, VI).into(),
            state: words::state(&p.state, VI).into(),
            reason: words::failure(
                &p.state,
                p.error_code.as_deref(),
                p.error_reason.as_deref(),
                VI,
            ),
            at: when(p.at, tz),
        })
        .collect()
}

#[derive(Serialize)]
pub struct UpcomingView {
    pub when: String,
    pub announcement: String,
    pub urgent: bool,
    pub follow_up: Option<String>,
}

pub fn upcoming(u: &Upcoming, tz: &TimeZone) -> UpcomingView {
    UpcomingView {
        when: when(u.send_at, tz),
        announcement: u.announcement_id.clone(),
        urgent: u.urgent,
        follow_up: u.follow_up.map(|k| words::follow_up(k, VI).to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::report::Failure;

    #[test]
    fn a_code_is_named_once() {
        let failure = |code: &str| Failure {
            code: code.into(),
            reason: "boom".into(),
            count: 2,
        };
        let c = Counts {
            failures: vec![failure("-9"), failure("-217")],
            ..Counts::default()
        };
        let lines = failures(&c);
        assert_eq!(lines[0], "2 × lỗi khác (-9): boom");
        assert!(
            lines[1].ends_with(" (-217)") && !lines[1].contains("lỗi khác"),
            "{}",
            lines[1]
        );
    }
}
