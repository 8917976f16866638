//! `loa send FILE --now`: one announcement out at once, whatever its schedule and quiet hours say,
//! with a progress bar, ending with its reach. The send is written to the ledger like any other
//! (sent once, retried, reported), so it is safe beside a running daemon on PostgreSQL; on a
//! SQLite file stop the daemon first, or let it send (`loa run`) instead.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use super::{CannotRun, Cli, find_repo_dir};
use crate::announce::problem::Lang;
use crate::clock::Clock;
use crate::daemon::{Daemon, Settings};
use crate::deliver::select::AnyChannel;
use crate::ledger::{Progress, Store};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The announcement file.
    pub file: PathBuf,
    /// The configuration file (default: loa.toml when it exists), read as `loa run` reads it.
    #[arg(long, short, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Overrides `database`: sqlite://FILE or postgres://…
    #[arg(long, value_name = "URL")]
    pub database: Option<String>,
    /// How long to keep retrying before leaving the rest to the daemon, in seconds.
    #[arg(long, default_value_t = 120)]
    pub wait: u64,
}

pub fn run(cli: &Cli, args: &Args) -> anyhow::Result<ExitCode> {
    if cli.now.is_none() {
        return Err(CannotRun("loa send sends at once: say so with --now".into()).into());
    }
    let mut config = crate::config::Config::load(args.config.as_deref())?;
    if let Some(db) = &args.database {
        config.database = db.clone();
    }
    if let Some(dir) = find_repo_dir(&args.file) {
        config.announcements = dir;
    }
    let dir = config.announcements.clone();
    // The file must be valid before anything is sent, with everything `loa check` asks of it:
    // the daemon keeps the last good version of a file that fails, and that older version is
    // what would go out.
    let commune = match crate::announce::load_commune(&dir) {
        Ok(commune) => commune,
        Err(problems) => {
            super::print_problems(&problems, cli.lang);
            return Ok(ExitCode::from(1));
        }
    };
    let (templates, _) = crate::render::Templates::load(&config.templates_dir());
    let source = match crate::content::check_file(&dir, &args.file, &commune, &templates) {
        Ok((_, source)) => source,
        Err(problems) => {
            super::print_problems(&problems, cli.lang);
            return Ok(ExitCode::from(1));
        }
    };
    let file = File {
        // The directory made absolute, not the file: a file that is a symlink keeps its own name
        // (and id), as the daemon reads it.
        path: match (args.file.parent(), args.file.file_name()) {
            (Some(parent), Some(name)) => crate::daemon::absolute(
                if parent.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    parent
                }
                .to_path_buf(),
            )
            .join(name),
            _ => crate::daemon::absolute(args.file.clone()),
        },
        commune,
        templates,
        source,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(send(cli, args, config, file))
}

/// The checked file, with what it was checked against.
struct File {
    path: PathBuf,
    commune: crate::announce::model::Commune,
    templates: crate::render::Templates,
    /// The text checked: what is planned, whatever the file holds by then.
    source: String,
}

async fn send(
    cli: &Cli,
    args: &Args,
    config: crate::config::Config,
    file: File,
) -> anyhow::Result<ExitCode> {
    let settings = Settings::from_config(&config);
    let store = Store::open(&config.database).await?;
    let channel = AnyChannel::open(&config, &store, &settings.node, Clock::System).await?;
    let mut daemon = Daemon::new(store.clone(), channel, settings);
    if let Some(links) = super::run::confirm_links(&config, &store).await? {
        daemon = daemon.with_links(links);
    }
    let tz = jiff::tz::TimeZone::get("Asia/Ho_Chi_Minh").unwrap_or(jiff::tz::TimeZone::UTC);
    let now = cli.now(&tz)?;
    // Only this file is planned: the directory may be another checkout than the daemon's, whose
    // missing files must not be cancelled nor its drafts planned.
    let id = daemon
        .load_alone(file.commune, file.templates, &file.path, file.source, now)
        .await?;
    let occurrence = daemon.send_now(&id, now).await?;
    // Ctrl-C or SIGTERM: the chunk already claimed goes out and is recorded, nothing more is
    // claimed, and the rest is left to the daemon (killed outright, the chunks on the wire would
    // be in doubt: not sent again, or sent twice if urgent).
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    {
        use tokio::signal::unix::{SignalKind, signal};
        let (mut term, mut int) = (
            signal(SignalKind::terminate())?,
            signal(SignalKind::interrupt())?,
        );
        let stop = stop.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
            stop.store(true, std::sync::atomic::Ordering::SeqCst);
        });
    }
    let stopped = || stop.load(std::sync::atomic::Ordering::SeqCst);
    let started = std::time::Instant::now();
    let progress = loop {
        let at = if cli.now.as_deref().is_some_and(|s| !s.is_empty()) {
            now
        } else {
            jiff::Timestamp::now()
        };
        let report = daemon.tick(at, &stopped).await?;
        let progress = store.progress(occurrence).await?;
        draw(&progress, cli.lang);
        if progress.pending == 0 || stopped() || started.elapsed() > Duration::from_secs(args.wait)
        {
            break progress;
        }
        // A tick that sent something stopped at its budget (see `Settings::send_budget`) with
        // more due: carry on at once. One that sent nothing waits for retries to fall due.
        if report.sent + report.failed + report.retrying == 0 {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    };
    eprintln!();
    if progress.pending > 0 {
        eprintln!(
            "{}",
            match cli.lang {
                Lang::Vi => format!(
                    "Còn {} tin đang chờ gửi lại; `loa run` sẽ gửi tiếp.",
                    progress.pending
                ),
                Lang::En => format!(
                    "{} messages are waiting to be retried; `loa run` carries on.",
                    progress.pending
                ),
            }
        );
    }
    let selection = crate::ledger::report::Selection {
        send: Some(occurrence),
        ..Default::default()
    };
    let report = store.report(&config.commune_id, &selection).await?;
    print!("{}", super::report_text::table(&report, &tz, cli.lang));
    store.close().await;
    Ok(ExitCode::from(exit_code(&progress)))
}

/// 0: every message final, and some reached; 3: some left to the daemon (after `--wait`, or
/// stopped); 4: all final and none reached, so a script or an operator sees at once that the
/// announcement reached nobody.
fn exit_code(p: &Progress) -> u8 {
    if p.pending > 0 {
        3
    } else if p.sent == 0 {
        4
    } else {
        0
    }
}

/// `[##########··········] 512/1000  gửi 500 · lỗi 12`, redrawn in place.
fn draw(p: &Progress, lang: Lang) {
    const WIDTH: i64 = 30;
    let done = p.sent + p.failed;
    // Nothing to count yet (the send is still being expanded): an empty bar, not a full one.
    let filled = (done * WIDTH).checked_div(p.total).unwrap_or(0);
    let bar: String = (0..WIDTH)
        .map(|i| if i < filled { '#' } else { '·' })
        .collect();
    let (sent, failed) = match lang {
        Lang::Vi => ("đã gửi", "lỗi"),
        Lang::En => ("sent", "failed"),
    };
    let mut err = std::io::stderr();
    let _ = write!(
        err,
        "\r[{bar}] {done}/{}  {sent} {} · {failed} {}",
        p.total, p.sent, p.failed
    );
    let _ = err.flush();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exit_code_tells_reached_left_and_reached_nobody_apart() {
        let p = |sent, failed, pending| Progress {
            total: sent + failed + pending,
            sent,
            failed,
            pending,
        };
        assert_eq!(exit_code(&p(90, 10, 0)), 0, "some refused: still a send");
        assert_eq!(exit_code(&p(50, 0, 50)), 3);
        assert_eq!(exit_code(&p(0, 0, 1)), 3, "not yet expanded");
        assert_eq!(exit_code(&p(0, 100, 0)), 4);
        assert_eq!(exit_code(&p(0, 0, 0)), 4, "an audience of nobody");
    }
}
