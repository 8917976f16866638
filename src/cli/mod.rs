//! The `loa` command line: one small file per subcommand, each a thin layer over the library.
//! Exit codes: 0 success, 1 problems found (printed), 2 cannot run (bad arguments, unreadable
//! directory).

mod check;
mod demo;
mod plan;
mod preview;
mod report;
mod report_people;
mod report_text;
mod run;
mod schema;
mod send;
mod sim;
mod zalo;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use jiff::Timestamp;

use crate::announce::problem::Lang;

#[derive(Parser, Debug)]
#[command(
    name = "loa",
    version,
    about = "Commune announcements from YAML files to Zalo"
)]
pub struct Cli {
    /// Language of messages for people: vi (Vietnamese) or en.
    #[arg(
        long,
        global = true,
        value_enum,
        default_value = "vi",
        env = "LOA_LANG"
    )]
    pub lang: Lang,
    /// Pretend the current time is this (`--now="YYYY-MM-DD HH:MM"`, commune time); for tests and
    /// rehearsals. `loa send` takes it bare (`--now`: at once). The value needs the `=`, so that
    /// `loa send --now FILE` reads FILE as the file, not as a time.
    #[arg(long, global = true, env = "LOA_NOW", hide = true, num_args = 0..=1, require_equals = true, default_missing_value = "")]
    pub now: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Check every announcement file and template; print every problem.
    Check(check::Args),
    /// Print the JSON Schema of the file formats, for editors.
    Schema(schema::Args),
    /// List every send in a time window, with what was moved or dropped and why.
    Plan(plan::Args),
    /// Print the exact text one announcement would send.
    Preview(preview::Args),
    /// Run the daemon: plan the announcement files into the ledger and send what falls due.
    Run(run::Args),
    /// See loa work: the example commune, a simulated Zalo and a storm warning, with the dashboard.
    Demo(demo::Args),
    /// Send one announcement at once (`loa send FILE --now`), with progress and its reach.
    Send(send::Args),
    /// Print the default configuration (loa.toml).
    Config,
    /// Run the Zalo OA API simulator (for tests, benchmarks and the demo).
    Sim(sim::Args),
    /// Connect the commune's Zalo OA (auth), sync its followers, show its state.
    Zalo(zalo::Args),
    /// What the sends reached, per village and per person, from the ledger.
    Report(report::Args),
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum Format {
    #[default]
    Text,
    Json,
}

/// Where announcements and templates are; shared by the subcommands that read them.
#[derive(clap::Args, Debug)]
pub struct RepoArgs {
    /// The templates directory (default: `templates` beside the announcement directory).
    #[arg(long, value_name = "DIR")]
    pub templates: Option<PathBuf>,
}

/// An error that means the command could not run at all (exit 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CannotRun(pub String);

pub fn run(cli: Cli) -> ExitCode {
    let result = match &cli.command {
        Command::Check(args) => check::run(&cli, args),
        Command::Schema(args) => schema::run(args),
        Command::Plan(args) => plan::run(&cli, args),
        Command::Preview(args) => preview::run(&cli, args),
        Command::Run(args) => run::run(args),
        Command::Sim(args) => sim::run(args),
        Command::Demo(args) => demo::run(args),
        Command::Send(args) => send::run(&cli, args),
        Command::Zalo(args) => zalo::run(args),
        Command::Report(args) => report::run(&cli, args),
        Command::Config => {
            print!("{}", crate::config::Config::defaults_toml());
            Ok(ExitCode::SUCCESS)
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("loa: {e:#}");
            ExitCode::from(2)
        }
    }
}

impl Cli {
    /// The current time: the real clock, unless `--now` says otherwise.
    pub fn now(&self, tz: &jiff::tz::TimeZone) -> anyhow::Result<Timestamp> {
        match self.now.as_deref() {
            None | Some("") => Ok(Timestamp::now()),
            Some(s) => parse_time_arg(s, tz, "--now"),
        }
    }
}

pub fn parse_time_arg(s: &str, tz: &jiff::tz::TimeZone, flag: &str) -> anyhow::Result<Timestamp> {
    crate::announce::values::parse_datetime(s, tz, false)
        .map_err(|k| CannotRun(format!("{flag}: {}", k.message(Lang::En))).into())
}

/// Prints problems to stderr, one per line, with a count.
pub fn print_problems(problems: &[crate::announce::problem::Problem], lang: Lang) {
    for p in problems {
        eprintln!("{}", p.render(lang));
    }
}

/// The announcement directory that holds `path`: the nearest ancestor with a commune.yaml.
pub fn find_repo_dir(path: &Path) -> Option<PathBuf> {
    let mut dir = if path.is_dir() {
        Some(path)
    } else {
        path.parent()
    };
    while let Some(d) = dir {
        let d = if d.as_os_str().is_empty() {
            Path::new(".")
        } else {
            d
        };
        if d.join(crate::announce::COMMUNE_FILE).is_file() {
            return Some(d.to_path_buf());
        }
        dir = if d == Path::new(".") {
            None
        } else {
            d.parent()
        };
    }
    None
}
