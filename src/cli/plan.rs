//! `loa plan [DIR] [--from T] [--days N]`: every send in the window, in time order, with the
//! audience, the rule that produced it, and what was moved or dropped and why.

use std::path::PathBuf;
use std::process::ExitCode;

use jiff::{SignedDuration, Timestamp};

use super::{CannotRun, Cli, Format, RepoArgs, parse_time_arg, print_problems};
use crate::announce::model::{Announcement, Audience, Commune};
use crate::announce::problem::Lang;
use crate::content::Repo;
use crate::render::vi_time;
use crate::schedule::{self, Fate, Occurrence, Trigger, Window};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The announcement directory (holding commune.yaml).
    #[arg(default_value = "announcements")]
    pub dir: PathBuf,
    #[command(flatten)]
    pub repo: RepoArgs,
    /// Start of the window (YYYY-MM-DD [HH:MM], commune time); default: now.
    #[arg(long, value_name = "T")]
    pub from: Option<String>,
    /// Length of the window in days.
    #[arg(long, default_value_t = 14, value_parser = clap::value_parser!(u16).range(1..=3660))]
    pub days: u16,
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
}

pub fn run(cli: &Cli, args: &Args) -> anyhow::Result<ExitCode> {
    let repo = Repo::open(&args.dir, args.repo.templates.as_deref())?;
    let Some(commune) = &repo.commune else {
        print_problems(&repo.problems, cli.lang);
        return Err(CannotRun("commune.yaml is missing or invalid; run `loa check`".into()).into());
    };
    let now = cli.now(&commune.tz)?;
    let start = match &args.from {
        Some(f) => parse_time_arg(f, &commune.tz, "--from")?,
        None => now,
    };
    let end = start.checked_add(SignedDuration::from_hours(24 * i64::from(args.days)))?;
    let window = Window { start, end };
    let plan = schedule::plan(&repo.announcements, commune, window, now);
    match args.format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&to_json(&plan, &repo, commune))?
        ),
        Format::Text => print!("{}", table(&plan, &repo, commune, window, cli.lang)),
    }
    if repo.problems.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    print_problems(&repo.problems, cli.lang);
    eprintln!(
        "{}",
        match cli.lang {
            Lang::Vi => "Các tệp có lỗi ở trên không có trong kế hoạch.",
            Lang::En => "Files with the problems above are left out of the plan.",
        }
    );
    Ok(ExitCode::from(1))
}

fn local(t: Timestamp, commune: &Commune) -> String {
    t.to_zoned(commune.tz.clone())
        .strftime("%Y-%m-%dT%H:%M:%S%:z")
        .to_string()
}

fn to_json(plan: &[Occurrence], repo: &Repo, commune: &Commune) -> serde_json::Value {
    let rows: Vec<_> = plan
        .iter()
        .map(|o| {
            let ann = repo.announcement(&o.announcement);
            serde_json::json!({
                "announcement": o.announcement,
                "title": ann.map(|a| a.title.as_str()),
                "audience": ann.map(|a| audience(&a.audience, commune, Lang::En)),
                "rule": o.rule,
                "trigger": o.trigger,
                "due": local(o.due, commune),
                "send_at": local(o.send_at, commune),
                "fate": o.fate,
                "sent": o.fate.is_sent(),
            })
        })
        .collect();
    serde_json::Value::Array(rows)
}

fn short_time(t: Timestamp, commune: &Commune, lang: Lang) -> String {
    let z = t.to_zoned(commune.tz.clone());
    match lang {
        Lang::Vi => format!(
            "{} {}",
            vi_time::weekday_short(z.weekday()),
            z.strftime("%d/%m/%Y %H:%M")
        ),
        Lang::En => z.strftime("%a %d/%m/%Y %H:%M").to_string(),
    }
}

fn audience(a: &Audience, commune: &Commune, lang: Lang) -> String {
    let names: Vec<&str> = a
        .villages
        .iter()
        .filter_map(|id| commune.village(id))
        .map(|v| v.name.as_str())
        .collect();
    let list = if names.len() > 3 {
        format!("{} +{}", names[..2].join(", "), names.len() - 2)
    } else {
        names.join(", ")
    };
    match (lang, a.whole_commune, a.heads_only) {
        (Lang::Vi, true, false) => "toàn xã".into(),
        (Lang::En, true, false) => "whole commune".into(),
        (Lang::Vi, true, true) => "trưởng các thôn".into(),
        (Lang::En, true, true) => "all village heads".into(),
        (Lang::Vi, false, true) => format!("trưởng thôn: {list}"),
        (Lang::En, false, true) => format!("heads: {list}"),
        (_, false, false) => list,
    }
}

fn rule(t: &Trigger, lang: Lang) -> String {
    match (t, lang) {
        (Trigger::Once, Lang::Vi) => "một lần".into(),
        (Trigger::Once, Lang::En) => "one-shot".into(),
        (Trigger::Cron { expr }, _) => format!("cron \"{expr}\""),
        (Trigger::BeforeEvent { offset }, Lang::Vi) => format!("{offset} trước sự kiện"),
        (Trigger::BeforeEvent { offset }, Lang::En) => format!("{offset} before event"),
    }
}

fn note(o: &Occurrence, commune: &Commune, lang: Lang) -> String {
    let due = o
        .due
        .to_zoned(commune.tz.clone())
        .strftime("%d/%m %H:%M")
        .to_string();
    match (&o.fate, lang) {
        (Fate::Send, _) => String::new(),
        (Fate::MovedQuietHours, Lang::Vi) => format!("dời từ {due} (giờ yên tĩnh)"),
        (Fate::MovedQuietHours, Lang::En) => format!("moved from {due} (quiet hours)"),
        (Fate::AfterExpiry, Lang::Vi) => "BỎ: sau thời hạn expires".into(),
        (Fate::AfterExpiry, Lang::En) => "DROPPED: after expiry".into(),
        (Fate::Past, Lang::Vi) => "BỎ: thời điểm đã qua".into(),
        (Fate::Past, Lang::En) => "DROPPED: in the past".into(),
        (Fate::Merged, Lang::Vi) => "BỎ: trùng giờ với lần gửi khác".into(),
        (Fate::Merged, Lang::En) => "DROPPED: same time as another send".into(),
        (Fate::AfterEventStart, Lang::Vi) => {
            format!("BỎ: giờ yên tĩnh dời đến sau khi sự kiện bắt đầu (nhắc lúc {due})")
        }
        (Fate::AfterEventStart, Lang::En) => {
            format!("DROPPED: quiet hours would hold it past the event's start (due {due})")
        }
    }
}

fn table(
    plan: &[Occurrence],
    repo: &Repo,
    commune: &Commune,
    window: Window,
    lang: Lang,
) -> String {
    let tz = commune.tz.iana_name().unwrap_or("UTC");
    let (from, to) = (
        short_time(window.start, commune, lang),
        short_time(window.end, commune, lang),
    );
    let mut out = match lang {
        Lang::Vi => format!(
            "Kế hoạch gửi của {} từ {from} đến {to} (giờ {tz})\n\n",
            commune.name
        ),
        Lang::En => format!(
            "Sends of {} from {from} to {to} ({tz} time)\n\n",
            commune.name
        ),
    };
    let header: [&str; 5] = match lang {
        Lang::Vi => ["Thời gian", "Thông báo", "Người nhận", "Quy tắc", "Ghi chú"],
        Lang::En => ["Time", "Announcement", "Audience", "Rule", "Note"],
    };
    let mut rows = vec![header.map(String::from)];
    for o in plan {
        let ann: Option<&Announcement> = repo.announcement(&o.announcement);
        let shown = if o.fate.is_sent() || o.fate == Fate::Merged {
            o.send_at
        } else {
            o.due
        };
        rows.push([
            short_time(shown, commune, lang),
            o.announcement.clone(),
            ann.map(|a| audience(&a.audience, commune, lang))
                .unwrap_or_default(),
            rule(&o.trigger, lang),
            note(o, commune, lang),
        ]);
    }
    let widths: Vec<usize> = (0..5)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    for row in &rows {
        let mut line = String::new();
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
    let sent = plan.iter().filter(|o| o.fate.is_sent()).count();
    let dropped = plan.len() - sent;
    out.push_str(&match lang {
        Lang::Vi => format!("\n{sent} lần gửi; {dropped} lần bỏ.\n"),
        Lang::En => format!("\n{sent} sends; {dropped} dropped.\n"),
    });
    out
}
