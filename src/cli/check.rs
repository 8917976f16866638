//! `loa check [DIR]`: validate every file and template, print every problem, exit 1 if any.

use std::path::PathBuf;
use std::process::ExitCode;

use super::{Cli, Format, RepoArgs};
use crate::announce::problem::Lang;
use crate::content::Repo;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The announcement directory (holding commune.yaml).
    #[arg(default_value = "announcements")]
    pub dir: PathBuf,
    #[command(flatten)]
    pub repo: RepoArgs,
    /// text: one `path:line:column: field: message` line per problem; json: an array for tools.
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
}

pub fn run(cli: &Cli, args: &Args) -> anyhow::Result<ExitCode> {
    let repo = Repo::open(&args.dir, args.repo.templates.as_deref())?;
    match args.format {
        Format::Json => {
            let problems: Vec<_> = repo.problems.iter().map(|p| p.to_json(cli.lang)).collect();
            println!("{}", serde_json::to_string_pretty(&problems)?);
        }
        Format::Text => {
            for p in &repo.problems {
                println!("{}", p.render(cli.lang));
            }
            let files = repo.announcements.len();
            let n = repo.problems.len();
            eprintln!("{}", summary(cli.lang, n, files));
        }
    }
    Ok(if repo.problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn summary(lang: Lang, problems: usize, valid: usize) -> String {
    match (lang, problems) {
        (Lang::Vi, 0) => format!("Không có lỗi: {valid} thông báo hợp lệ."),
        (Lang::Vi, n) => format!("{n} lỗi; {valid} thông báo hợp lệ."),
        (Lang::En, 0) => format!("No problems: {valid} valid announcements."),
        (Lang::En, n) => format!("{n} problem(s); {valid} valid announcements."),
    }
}
