//! `loa sim`: run the Zalo OA API simulator on a port, with a population from a scenario file, a
//! commune directory or a generator, and print what an operator needs to point loa at it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;

use super::CannotRun;
use crate::sim::{self, Faults, GenerateSpec, Population, SimConfig};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8089")]
    pub listen: SocketAddr,
    /// Population from a scenario file (YAML or JSON; see the `sim::population` docs).
    #[arg(long, value_name = "FILE", conflicts_with = "commune")]
    pub scenario: Option<PathBuf>,
    /// Population from the commune.yaml in this announcement directory, plus `--followers`.
    #[arg(long, value_name = "DIR")]
    pub commune: Option<PathBuf>,
    /// Generated followers (spread across the villages).
    #[arg(long, default_value_t = 200)]
    pub followers: usize,
    /// Generated villages (ignored with --commune).
    #[arg(long, default_value_t = 5)]
    pub villages: usize,
    /// Where webhook events are POSTed.
    #[arg(long, value_name = "URL")]
    pub webhook: Option<String>,
    /// Requests per window across all OA API calls; 0 turns the limit off.
    #[arg(long, default_value_t = 4000)]
    pub rate_limit: u32,
    #[arg(long, default_value_t = 60)]
    pub rate_window_secs: u64,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Share of calls answered HTTP 5xx.
    #[arg(long, default_value_t = 0.0)]
    pub server_errors: f64,
    /// Share of calls held for --timeout-hang-ms and then dropped.
    #[arg(long, default_value_t = 0.0)]
    pub timeouts: f64,
    #[arg(long, default_value_t = 30_000)]
    pub timeout_hang_ms: u64,
    /// Share of calls whose connection is closed without an answer.
    #[arg(long, default_value_t = 0.0)]
    pub drops: f64,
    /// Latency added to every call.
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
    /// ZNS refuses every message with -133 (Zalo's night ban), until turned off at /_sim/faults.
    #[arg(long)]
    pub zns_night_ban: bool,
    /// Zalo has disabled the OA: every OA and ZNS call answers -204, until turned off at
    /// /_sim/faults.
    #[arg(long)]
    pub oa_disabled: bool,
    /// Share of sends (cs, group, ZNS) answered --send-error-code instead, nothing recorded.
    #[arg(long, default_value_t = 0.0)]
    pub send_errors: f64,
    /// The code those sends are answered with (any of the reference's: -200, -211, -244…).
    #[arg(long, default_value_t = -200, allow_negative_numbers = true)]
    pub send_error_code: i64,
    /// An approved ZNS template, `ID:PARAM=MAX,…` (the most characters each parameter takes;
    /// 400 when left out); repeat for more. Given, it replaces the default,
    /// `loa-announcement:content=400`. `template_data` that does not fit is refused with -112.
    #[arg(long = "zns-template", value_name = "ID:PARAM=MAX,…", value_parser = sim::ZnsTemplate::parse)]
    pub zns_templates: Vec<sim::ZnsTemplate>,
    /// ZNS messages accepted a day (commune time) before -144.
    #[arg(long, default_value_t = 1_000_000)]
    pub zns_daily_quota: u64,
    /// Share of village heads who answer "đã nhận" to a message they receive.
    #[arg(long, default_value_t = 0.8)]
    pub head_reply_share: f64,
    /// Of those answers to a message in their village's group, the share written in the group.
    #[arg(long, default_value_t = 0.0)]
    pub in_group_reply_share: f64,
    /// A refresh also voids the access token issued with the refresh token used.
    #[arg(long)]
    pub void_access_on_refresh: bool,
    /// OAuth errors come with HTTP 400 (by default with HTTP 200, as Zalo sometimes answers).
    #[arg(long)]
    pub oauth_errors_http_400: bool,
    /// Reading a message does not reopen a person's 7-day window (by default it does, as loa's
    /// `seen_opens_window` assumes: Zalo does not document which events count as interactions).
    #[arg(long)]
    pub seen_is_no_interaction: bool,
    #[arg(long)]
    pub app_id: Option<String>,
    #[arg(long)]
    pub app_secret: Option<String>,
    #[arg(long)]
    pub oa_secret: Option<String>,
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let config = config(args)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(serve(args.listen, config))?;
    Ok(ExitCode::SUCCESS)
}

fn config(args: &Args) -> anyhow::Result<SimConfig> {
    let population = if let Some(path) = &args.scenario {
        Population::load(path)?
    } else if let Some(dir) = &args.commune {
        let catalog = crate::announce::load_dir(dir)?;
        let Some(commune) = catalog.commune else {
            let problems: Vec<String> = catalog
                .problems
                .iter()
                .map(|p| p.render(crate::announce::problem::Lang::En))
                .collect();
            return Err(CannotRun(format!(
                "no valid commune.yaml in {}:\n{}",
                dir.display(),
                problems.join("\n")
            ))
            .into());
        };
        Population::from_commune(&commune, args.followers, args.seed)
    } else {
        Population::generate(&GenerateSpec {
            villages: args.villages,
            followers: args.followers,
            seed: args.seed,
            ..GenerateSpec::default()
        })
    };
    let defaults = SimConfig::default();
    Ok(SimConfig {
        app_id: args.app_id.clone().unwrap_or(defaults.app_id),
        app_secret: args.app_secret.clone().unwrap_or(defaults.app_secret),
        oa_secret: args.oa_secret.clone().unwrap_or(defaults.oa_secret),
        rate_limit: args.rate_limit,
        rate_window: Duration::from_secs(args.rate_window_secs.max(1)),
        webhook_url: args.webhook.clone(),
        faults: Faults {
            server_error_share: args.server_errors,
            timeout_share: args.timeouts,
            timeout_hang: Duration::from_millis(args.timeout_hang_ms),
            drop_share: args.drops,
            added_latency: Duration::from_millis(args.latency_ms),
            zns_night_ban: args.zns_night_ban,
            oa_disabled: args.oa_disabled,
            send_error_share: args.send_errors,
            send_error_code: args.send_error_code,
            ..Faults::default()
        },
        zns_daily_quota: args.zns_daily_quota,
        zns_templates: if args.zns_templates.is_empty() {
            defaults.zns_templates.clone()
        } else {
            args.zns_templates.clone()
        },
        void_access_on_refresh: args.void_access_on_refresh,
        oauth_errors_http_200: !args.oauth_errors_http_400,
        seen_opens_window: !args.seen_is_no_interaction,
        people: crate::sim::People {
            head_reply_share: args.head_reply_share.clamp(0.0, 1.0),
            in_group_reply_share: args.in_group_reply_share.clamp(0.0, 1.0),
            ..defaults.people.clone()
        },
        population,
        seed: args.seed,
        ..defaults
    })
}

async fn serve(listen: SocketAddr, config: SimConfig) -> anyhow::Result<()> {
    let listener = crate::listen::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let (app_id, oa_id) = (config.app_id.clone(), config.oa_id.clone());
    let people = config.population.users.len();
    let groups = config.population.groups.len();
    let sim = sim::start(config, listener).await?;
    let tokens = sim.issue_tokens();
    println!("listening: {}", sim.base_url());
    println!("app_id: {app_id}");
    println!("oa_id: {oa_id}");
    println!("population: {people} users, {groups} groups");
    println!("access_token: {}", tokens.access_token);
    println!("refresh_token: {}", tokens.refresh_token);
    println!("expires_in: {}", tokens.expires_in);
    wait_for_signal().await;
    sim.shutdown().await;
    Ok(())
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser as _;

    #[derive(clap::Parser)]
    struct Cmd {
        #[command(flatten)]
        args: Args,
    }

    #[test]
    fn every_option_the_reference_leaves_open_is_set_from_the_command_line() {
        let cmd = Cmd::try_parse_from([
            "sim",
            "--zns-night-ban",
            "--oa-disabled",
            "--send-errors",
            "0.5",
            "--send-error-code",
            "-211",
            "--zns-daily-quota",
            "5",
            "--head-reply-share",
            "0.25",
            "--in-group-reply-share",
            "2",
            "--void-access-on-refresh",
            "--oauth-errors-http-400",
            "--seen-is-no-interaction",
            "--zns-template",
            "lich-hop:ten=30,noi_dung",
            "--zns-template",
            "bao-bao:content=250",
        ])
        .expect("parses");
        let c = config(&cmd.args).expect("config");
        assert!(c.faults.zns_night_ban && c.faults.oa_disabled && c.void_access_on_refresh);
        assert_eq!(
            (c.faults.send_error_share, c.faults.send_error_code),
            (0.5, -211)
        );
        assert!(!c.oauth_errors_http_200 && !c.seen_opens_window);
        assert_eq!(c.zns_daily_quota, 5);
        let templates: Vec<_> = c
            .zns_templates
            .iter()
            .map(|t| {
                (
                    t.id.as_str(),
                    t.params.iter().map(|p| p.max_chars).collect(),
                )
            })
            .collect();
        assert_eq!(
            templates,
            vec![("lich-hop", vec![30, 400]), ("bao-bao", vec![250])]
        );
        assert_eq!(c.people.head_reply_share, 0.25);
        assert_eq!(c.people.in_group_reply_share, 1.0, "a share is at most 1");
        let plain = config(&Cmd::try_parse_from(["sim"]).expect("parses").args).expect("config");
        let defaults = SimConfig::default();
        assert!(
            !plain.faults.zns_night_ban
                && !plain.faults.oa_disabled
                && !plain.void_access_on_refresh
        );
        assert!(plain.oauth_errors_http_200 && plain.seen_opens_window);
        assert_eq!(plain.zns_templates, defaults.zns_templates);
        assert_eq!(
            plain.people.head_reply_share,
            defaults.people.head_reply_share
        );
    }
}
