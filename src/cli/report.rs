//! `loa report [ANNOUNCEMENT] [--format table|csv|json] [--people] [--since T] [--until T]`: what
//! the sends reached, from the ledger (`ledger::report`, the same functions the dashboard uses).
//! Default: the sends of the last 7 days; with ANNOUNCEMENT, every send of it. Exit code 0, or 2
//! when it cannot run (no configuration, no database).

use std::process::ExitCode;

use clap::ValueEnum;
use jiff::SignedDuration;
use jiff::tz::TimeZone;

use super::{Cli, parse_time_arg};
use crate::ledger::Store;
use crate::ledger::report::{Selection, words};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Only this announcement (its id: the file's path without .yaml); then every send of it.
    pub announcement: Option<String>,
    #[arg(long, value_enum, default_value = "table")]
    pub format: ReportFormat,
    /// One row per recipient instead of the counts.
    #[arg(long)]
    pub people: bool,
    /// Sends from this time on (YYYY-MM-DD [HH:MM], commune time); default: 7 days ago, or every
    /// send of ANNOUNCEMENT.
    #[arg(long, value_name = "T")]
    pub since: Option<String>,
    /// Sends before this time.
    #[arg(long, value_name = "T")]
    pub until: Option<String>,
    /// The configuration file (default: loa.toml when it exists), read as `loa run` reads it.
    #[arg(long, short, value_name = "FILE")]
    pub config: Option<std::path::PathBuf>,
    /// Overrides `database`: sqlite://FILE or postgres://…
    #[arg(long, value_name = "URL")]
    pub database: Option<String>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    #[default]
    Table,
    Csv,
    Json,
}

/// The zone times are shown in.
pub const ZONE: &str = "Asia/Ho_Chi_Minh";

pub fn run(cli: &Cli, args: &Args) -> anyhow::Result<ExitCode> {
    let config = super::run::Args {
        config: args.config.clone(),
        database: args.database.clone(),
        announcements: None,
    }
    .config()?;
    let tz = TimeZone::get(ZONE)?;
    let now = cli.now(&tz)?;
    let since = match (&args.since, &args.announcement) {
        (Some(s), _) => Some(parse_time_arg(s, &tz, "--since")?),
        (None, Some(_)) => None,
        (None, None) => Some(now - SignedDuration::from_hours(24 * 7)),
    };
    let until = args
        .until
        .as_deref()
        .map(|s| parse_time_arg(s, &tz, "--until"))
        .transpose()?;
    let sel = Selection {
        announcement: args.announcement.clone(),
        since,
        until,
        send: None,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let out = runtime.block_on(async {
        let store = Store::open_existing(&config.database)
            .await
            .map_err(|e| super::CannotRun(format!("{e:#}")))?;
        let commune = &config.commune_id;
        let out = if args.people {
            let rows = store.report_people(commune, &sel).await?;
            match args.format {
                ReportFormat::Json => people_json(&rows, cli.lang)?,
                ReportFormat::Csv => super::report_people::people_csv(&rows, &tz, cli.lang),
                ReportFormat::Table => super::report_people::people_table(&rows, &tz, cli.lang),
            }
        } else {
            let report = store.report(commune, &sel).await?;
            match args.format {
                ReportFormat::Json => serde_json::to_string_pretty(&report)? + "\n",
                ReportFormat::Csv => super::report_text::csv(&report, &tz, cli.lang),
                ReportFormat::Table => super::report_text::table(&report, &tz, cli.lang),
            }
        };
        store.close().await;
        anyhow::Ok(out)
    })?;
    print!("{out}");
    Ok(ExitCode::SUCCESS)
}

/// The rows as JSON, each with its failure reason in words (`reason_words`, in `--lang`).
fn people_json(
    rows: &[crate::ledger::report::PersonRow],
    lang: crate::announce::problem::Lang,
) -> anyhow::Result<String> {
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let mut v = serde_json::to_value(r)?;
        if let Some(obj) = v.as_object_mut() {
            let words = words::is_failure(&r.state).then(|| {
                words::failure(
                    &r.state,
                    r.error_code.as_deref(),
                    r.error_reason.as_deref(),
                    lang,
                )
            });
            obj.insert("reason_words".into(), serde_json::json!(words));
        }
        out.push(v);
    }
    Ok(serde_json::to_string_pretty(&out)? + "\n")
}
