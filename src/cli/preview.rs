//! `loa preview FILE [--at T] [--village ID]`: the exact text one send would carry. The text goes
//! to stdout; what it is (time, village, rule) goes to stderr, so the text can be piped as is.

use std::path::PathBuf;
use std::process::ExitCode;

use jiff::{SignedDuration, Timestamp};

use super::{CannotRun, Cli, RepoArgs, find_repo_dir, parse_time_arg, print_problems};
use crate::announce::problem::Lang;
use crate::content::{Repo, sample};
use crate::render::vi_time;
use crate::schedule::{self, Trigger, Window};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The announcement file.
    pub file: PathBuf,
    #[command(flatten)]
    pub repo: RepoArgs,
    /// The send time (YYYY-MM-DD HH:MM); default: the next send from now.
    #[arg(long, value_name = "T")]
    pub at: Option<String>,
    /// The village whose message to show; default: the first in the audience.
    #[arg(long, value_name = "ID")]
    pub village: Option<String>,
}

pub fn run(cli: &Cli, args: &Args) -> anyhow::Result<ExitCode> {
    let dir = find_repo_dir(&args.file)
        .ok_or_else(|| CannotRun(format!("no commune.yaml above {}", args.file.display())))?;
    let repo = Repo::open(&dir, args.repo.templates.as_deref())?;
    let Some(commune) = &repo.commune else {
        print_problems(&repo.problems, cli.lang);
        return Ok(ExitCode::from(1));
    };
    let Some(ann) = repo
        .announcements
        .iter()
        .find(|a| same_file(&a.path, &args.file))
    else {
        let own: Vec<_> = repo
            .problems
            .iter()
            .filter(|p| same_file(&p.path, &args.file))
            .cloned()
            .collect();
        if own.is_empty() {
            return Err(CannotRun(format!(
                "{} is not an announcement in {}",
                args.file.display(),
                dir.display()
            ))
            .into());
        }
        print_problems(&own, cli.lang);
        return Ok(ExitCode::from(1));
    };
    let village = match &args.village {
        None => ann
            .audience
            .villages
            .first()
            .and_then(|id| commune.village(id)),
        Some(id) if ann.audience.villages.contains(id) => commune.village(id),
        Some(id) => {
            return Err(CannotRun(format!(
                "village {id} is not in this announcement's audience ({})",
                ann.audience.villages.join(", ")
            ))
            .into());
        }
    };
    let now = cli.now(&commune.tz)?;
    // The send to show: the one at --at if a rule produces it, else --at as a one-off, else the
    // next real send, else the first send the file describes.
    let horizon = Window {
        start: now,
        end: now.checked_add(SignedDuration::from_hours(24 * 400))?,
    };
    let (at, trigger): (Timestamp, Trigger) = match &args.at {
        Some(t) => {
            let at = parse_time_arg(t, &commune.tz, "--at")?;
            let window = Window {
                start: at,
                end: at.checked_add(SignedDuration::from_mins(1))?,
            };
            let trigger = schedule::occurrences(ann, commune, window, Timestamp::MIN)
                .into_iter()
                .find(|o| o.send_at == at || o.due == at)
                .map_or(Trigger::Once, |o| o.trigger);
            (at, trigger)
        }
        None => schedule::occurrences(ann, commune, horizon, now)
            .into_iter()
            .find(|o| o.fate.is_sent())
            .map(|o| (o.send_at, o.trigger))
            .or_else(|| ann.rules.iter().find_map(|r| sample(ann, commune, r)))
            .ok_or_else(|| CannotRun("this announcement has no send time".into()))?,
    };
    let text = repo
        .templates
        .render(ann, commune, village, at, &trigger)
        .map_err(|e| CannotRun(format!("template {}: {e}", ann.template)))?;
    let to = village.map(|v| v.name.as_str()).unwrap_or(match cli.lang {
        Lang::Vi => "người theo dõi ngoài nhóm thôn",
        Lang::En => "followers outside village groups",
    });
    let chars = text.chars().count();
    match cli.lang {
        Lang::Vi => eprintln!(
            "— {} → {to} · {chars} ký tự —",
            vi_time::datetime(at, &commune.tz)
        ),
        Lang::En => eprintln!(
            "— {} → {to} · {chars} characters —",
            vi_time::datetime(at, &commune.tz)
        ),
    }
    println!("{text}");
    Ok(ExitCode::SUCCESS)
}

fn same_file(a: &std::path::Path, b: &std::path::Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}
