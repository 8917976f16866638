//! `loa report` as a table for people (headings and reasons in `--lang`) and as CSV (English
//! keys, one row per village of each send, a `total` row per send and one for the whole report).
//! `--people` is in `report_people.rs`.

use jiff::Timestamp;
use jiff::tz::TimeZone;

use crate::announce::problem::Lang;
use crate::ledger::report::{Counts, Report, SendReport, words};
use crate::render::vi_time;

/// A time as people read it, in the commune's zone: `T3 01/12/2026 08:00`.
pub fn short_time(t: Timestamp, tz: &TimeZone, lang: Lang) -> String {
    let z = t.to_zoned(tz.clone());
    match lang {
        Lang::Vi => format!(
            "{} {}",
            vi_time::weekday_short(z.weekday()),
            z.strftime("%d/%m/%Y %H:%M")
        ),
        Lang::En => z.strftime("%a %d/%m/%Y %H:%M").to_string(),
    }
}

pub(super) fn iso(t: Timestamp, tz: &TimeZone) -> String {
    t.to_zoned(tz.clone())
        .strftime("%Y-%m-%dT%H:%M:%S%:z")
        .to_string()
}

/// `3/4` heads confirmed, or `–` when nobody was asked.
pub fn heads(c: &Counts) -> String {
    if c.heads_asked == 0 {
        "–".into()
    } else {
        format!("{}/{}", c.heads_confirmed, c.heads_asked)
    }
}

fn headings(lang: Lang) -> [&'static str; 11] {
    match lang {
        Lang::Vi => [
            "Thôn",
            "Số nhận",
            "Đã gửi",
            "Đã đến",
            "Đã xem",
            "Xác nhận",
            "Lỗi",
            "Đang chờ",
            "Quá hạn",
            "Bị lỡ",
            "Không rõ",
        ],
        Lang::En => [
            "Village",
            "Targeted",
            "Sent",
            "Delivered",
            "Seen",
            "Confirmed",
            "Failed",
            "Pending",
            "Expired",
            "Missed",
            "Unknown",
        ],
    }
}

fn count_cells(name: String, c: &Counts) -> Vec<String> {
    let mut row = vec![name];
    row.extend(
        [c.targeted, c.sent, c.delivered, c.seen]
            .iter()
            .map(i64::to_string),
    );
    row.push(heads(c));
    row.extend(
        [c.failed, c.pending, c.expired, c.missed, c.unknown]
            .iter()
            .map(i64::to_string),
    );
    row
}

/// Columns aligned by character count (Vietnamese letters are one character each, precomposed).
pub(super) fn grid(rows: &[Vec<String>], indent: &str) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::from(indent);
        for (c, cell) in row.iter().enumerate() {
            line.push_str(cell);
            line.extend(std::iter::repeat_n(
                ' ',
                widths[c] - cell.chars().count() + 2,
            ));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn send_block(s: &SendReport, tz: &TimeZone, lang: Lang, out: &mut String) {
    let vi = lang == Lang::Vi;
    let mut title = format!(
        "{} #{} · {} · {}",
        if vi { "Lần gửi" } else { "Send" },
        s.id,
        s.announcement_id,
        short_time(s.send_at, tz, lang)
    );
    if s.urgent {
        title.push_str(if vi { " · khẩn" } else { " · urgent" });
    }
    if s.state == "missed" {
        title.push_str(if vi { " · BỊ LỠ" } else { " · MISSED" });
    }
    out.push_str(&title);
    out.push('\n');
    let mut rows = vec![headings(lang).iter().map(|h| h.to_string()).collect()];
    for v in &s.villages {
        let name = v
            .village_id
            .clone()
            .unwrap_or_else(|| words::no_village(lang).into());
        rows.push(count_cells(name, &v.counts));
    }
    rows.push(count_cells(
        (if vi { "Tổng" } else { "Total" }).into(),
        &s.total,
    ));
    out.push_str(&grid(&rows, "  "));
    failures_block(&s.total, lang, out);
    let (pending, confirmed): (Vec<_>, Vec<_>) =
        s.confirmations.iter().partition(|c| c.state != "confirmed");
    if !pending.is_empty() {
        out.push_str(if vi {
            "  Chưa xác nhận:\n"
        } else {
            "  Not confirmed:\n"
        });
        for c in pending {
            let mut line = format!("    {} · {}", c.village_id, c.person);
            if let Some(t) = c.reminded_at {
                let label = if vi { "đã nhắc lúc" } else { "reminded" };
                line.push_str(&format!(" · {label} {}", short_time(t, tz, lang)));
            }
            if let Some(t) = c.escalated_at {
                let label = if vi {
                    "đã báo lãnh đạo lúc"
                } else {
                    "escalated"
                };
                line.push_str(&format!(" · {label} {}", short_time(t, tz, lang)));
            }
            out.push_str(&line);
            out.push('\n');
        }
    }
    if !confirmed.is_empty() {
        out.push_str(if vi {
            "  Đã xác nhận:\n"
        } else {
            "  Confirmed:\n"
        });
        for c in confirmed {
            let at = c.confirmed_at.map(|t| short_time(t, tz, lang));
            out.push_str(&format!(
                "    {} · {} · {} · {}\n",
                c.village_id,
                c.person,
                at.unwrap_or_default(),
                words::via(c.via.as_deref(), lang)
            ));
        }
    }
    for f in &s.follow_ups {
        out.push_str(&format!(
            "  ↳ {} #{} · {} · {} {}/{}\n",
            words::follow_up(f.kind, lang),
            f.id,
            short_time(f.send_at, tz, lang),
            if vi { "đã gửi" } else { "sent" },
            f.total.sent,
            f.total.targeted
        ));
    }
}

fn failures_block(c: &Counts, lang: Lang, out: &mut String) {
    if c.failures.is_empty() {
        return;
    }
    out.push_str(if lang == Lang::Vi {
        "  Không gửi được:\n"
    } else {
        "  Failed:\n"
    });
    for f in &c.failures {
        let reason = words::failure("failed", Some(&f.code), Some(&f.reason), lang);
        out.push_str(&format!("    {} × {reason} ({})\n", f.count, f.code));
    }
}

pub fn table(r: &Report, tz: &TimeZone, lang: Lang) -> String {
    let vi = lang == Lang::Vi;
    let mut out = String::new();
    if r.sends.is_empty() {
        out.push_str(if vi {
            "Không có lần gửi nào trong khoảng này.\n"
        } else {
            "No sends in this range.\n"
        });
        return out;
    }
    for s in &r.sends {
        send_block(s, tz, lang, &mut out);
        out.push('\n');
    }
    out.push_str(&if vi {
        format!("Tổng cộng {} lần gửi:\n", r.sends.len())
    } else {
        format!("All {} sends:\n", r.sends.len())
    });
    let rows = vec![
        headings(lang)[1..].iter().map(|h| h.to_string()).collect(),
        count_cells(String::new(), &r.total)[1..].to_vec(),
    ];
    out.push_str(&grid(&rows, "  "));
    failures_block(&r.total, lang, &mut out);
    out
}

/// One CSV field, quoted when it must be.
pub(super) fn field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

pub(super) fn csv_line(cells: &[String]) -> String {
    let mut line: Vec<String> = cells.iter().map(|c| field(c)).collect();
    line.push(String::new());
    line.join(",").trim_end_matches(',').to_string() + "\n"
}

const CSV_HEADER: &str = "send_id,announcement,send_at,village,targeted,sent,delivered,seen,confirmed,heads_asked,heads_confirmed,failed,pending,expired,missed,unknown\n";

fn csv_counts(prefix: [String; 4], c: &Counts) -> String {
    let mut cells: Vec<String> = prefix.to_vec();
    cells.extend(
        [
            c.targeted,
            c.sent,
            c.delivered,
            c.seen,
            c.confirmed,
            c.heads_asked,
            c.heads_confirmed,
            c.failed,
            c.pending,
            c.expired,
            c.missed,
            c.unknown,
        ]
        .iter()
        .map(i64::to_string),
    );
    cells.iter().map(|c| field(c)).collect::<Vec<_>>().join(",") + "\n"
}

pub fn csv(r: &Report, tz: &TimeZone, _lang: Lang) -> String {
    let mut out = String::from(CSV_HEADER);
    for s in &r.sends {
        let id = s.id.to_string();
        let at = iso(s.send_at, tz);
        for v in &s.villages {
            let village = v.village_id.clone().unwrap_or_default();
            out.push_str(&csv_counts(
                [id.clone(), s.announcement_id.clone(), at.clone(), village],
                &v.counts,
            ));
        }
        out.push_str(&csv_counts(
            [id, s.announcement_id.clone(), at, "total".into()],
            &s.total,
        ));
    }
    out.push_str(&csv_counts(
        [String::new(), String::new(), String::new(), "total".into()],
        &r.total,
    ));
    out
}
