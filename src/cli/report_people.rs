//! `loa report --people`: one row per message, as a table (in `--lang`) or CSV (English keys),
//! with the reason a message did not arrive in plain words.

use jiff::tz::TimeZone;

use super::report_text::{csv_line, grid, iso, short_time};
use crate::announce::problem::Lang;
use crate::ledger::report::{PersonRow, words};

fn reason(p: &PersonRow, lang: Lang) -> String {
    if words::is_failure(&p.state) {
        words::failure(
            &p.state,
            p.error_code.as_deref(),
            p.error_reason.as_deref(),
            lang,
        )
    } else {
        String::new()
    }
}

pub fn people_csv(rows: &[PersonRow], tz: &TimeZone, lang: Lang) -> String {
    let mut out = String::from(
        "send_id,occurrence_id,follow_up,announcement,village,kind,target,person,state,error_code,reason,at\n",
    );
    for p in rows {
        let follow_up = p
            .follow_up
            .map(|k| words::follow_up(k, Lang::En).to_string());
        out.push_str(&csv_line(&[
            p.send_id.to_string(),
            p.occurrence_id.to_string(),
            follow_up.unwrap_or_default(),
            p.announcement_id.clone(),
            p.village_id.clone().unwrap_or_default(),
            p.target_kind.clone(),
            p.target.clone(),
            p.person.clone().unwrap_or_default(),
            p.state.clone(),
            p.error_code.clone().unwrap_or_default(),
            reason(p, lang),
            iso(p.at, tz),
        ]));
    }
    out
}

pub fn people_table(rows: &[PersonRow], tz: &TimeZone, lang: Lang) -> String {
    let vi = lang == Lang::Vi;
    let head: [&str; 7] = if vi {
        [
            "Lần gửi",
            "Thôn",
            "Người nhận",
            "Hình thức",
            "Trạng thái",
            "Lý do",
            "Lúc",
        ]
    } else {
        [
            "Send",
            "Village",
            "Recipient",
            "Kind",
            "State",
            "Reason",
            "At",
        ]
    };
    let mut table = vec![head.iter().map(|h| h.to_string()).collect::<Vec<_>>()];
    for p in rows {
        let send = match p.follow_up {
            Some(k) => format!("#{} ↳ {}", p.send_id, words::follow_up(k, lang)),
            None => format!("#{}", p.send_id),
        };
        table.push(vec![
            send,
            p.village_id
                .clone()
                .unwrap_or_else(|| words::no_village(lang).into()),
            p.person.clone().unwrap_or_else(|| p.target.clone()),
            words::kind(&p.target_kind, lang).into(),
            words::state(&p.state, lang).into(),
            reason(p, lang),
            short_time(p.at, tz, lang),
        ]);
    }
    grid(&table, "")
}
