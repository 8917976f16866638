//! `loa zalo`: connect a commune's OA and look after it. `auth` runs the OAuth v4 consent
//! exchange with PKCE and stores the tokens in the database; `sync` pulls the followers now;
//! `status` shows the tokens' state (never the tokens), what Zalo last said of the OA's ZNS quota
//! and what the follower list holds.

use std::io::BufRead as _;
use std::process::ExitCode;

use anyhow::Context as _;
use jiff::SignedDuration;

use super::run::Args as RunArgs;
use crate::clock::Clock;
use crate::deliver::zalo::api::Api;
use crate::deliver::zalo::auth::{pkce_challenge, pkce_verifier};
use crate::deliver::zalo::channel::ZaloChannel;
use crate::deliver::zalo::errors::ZALO_TZ;
use crate::deliver::zalo::quota;
use crate::deliver::zalo::wire::{TokenGrant, path};
use crate::ledger::{Store, StoredQuota};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    pub command: ZaloCommand,
}

#[derive(clap::Subcommand, Debug)]
pub enum ZaloCommand {
    /// Connect an OA: print the consent link, read back where the browser landed, store tokens.
    Auth {
        #[command(flatten)]
        run: RunArgs,
        /// The callback URL registered for the app at developers.zalo.me.
        #[arg(long, default_value = "http://localhost/zalo-callback")]
        redirect_uri: String,
    },
    /// Sync the OA's followers, village tags and group members now.
    Sync {
        #[command(flatten)]
        run: RunArgs,
    },
    /// Show the token state and the follower list (tokens themselves never print).
    Status {
        #[command(flatten)]
        run: RunArgs,
    },
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        match &args.command {
            ZaloCommand::Auth { run, redirect_uri } => auth(run, redirect_uri).await,
            ZaloCommand::Sync { run } => sync(run).await,
            ZaloCommand::Status { run } => status(run).await,
        }
    })
}

async fn auth(args: &RunArgs, redirect_uri: &str) -> anyhow::Result<ExitCode> {
    let config = args.config()?;
    let zalo = config.zalo.clone().resolve()?;
    let api = Api::new(&zalo)?;
    let verifier = pkce_verifier();
    let state = pkce_verifier()[..16].to_string();
    let url = reqwest::Url::parse_with_params(
        &api.url(crate::deliver::zalo::api::Base::OAuth, path::PERMISSION),
        &[
            ("app_id", zalo.app_id.as_str()),
            ("redirect_uri", redirect_uri),
            ("code_challenge", &pkce_challenge(&verifier)),
            ("state", &state),
        ],
    )?;
    println!("Open this link as the OA's admin and allow access:\n{url}");
    println!("Then paste the address the browser was sent to (or just the code):");
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    let line = line.trim();
    let code = match reqwest::Url::parse(line) {
        Ok(back) => {
            let get = |k: &str| {
                back.query_pairs()
                    .find(|(n, _)| n == k)
                    .map(|(_, v)| v.into_owned())
            };
            if get("state").as_deref() != Some(state.as_str()) {
                anyhow::bail!("the state in that address does not match this consent: start again");
            }
            get("code").context("that address has no code")?
        }
        Err(_) => line.to_string(),
    };
    let reply = api
        .token(&TokenGrant::AuthorizationCode {
            app_id: zalo.app_id.clone(),
            code,
            code_verifier: verifier,
        })
        .await?;
    let store = Store::open(&config.database).await?;
    let now = jiff::Timestamp::now();
    let expires = now + SignedDuration::from_secs(reply.expires_in_secs().unwrap_or(3600));
    store
        .put_zalo_tokens(
            &config.commune_id,
            &reply.access_token,
            &reply.refresh_token,
            expires,
            false,
            now,
        )
        .await?;
    println!("Connected: tokens stored in the database; the access token expires at {expires}.");
    store.close().await;
    Ok(ExitCode::SUCCESS)
}

async fn sync(args: &RunArgs) -> anyhow::Result<ExitCode> {
    let config = args.config()?;
    let commune = crate::announce::load_commune(&config.announcements).map_err(|ps| {
        super::print_problems(&ps, crate::announce::problem::Lang::En);
        anyhow::anyhow!("commune.yaml has problems")
    })?;
    let store = Store::open(&config.database).await?;
    let channel = ZaloChannel::open(
        config.zalo.clone(),
        store.clone(),
        &config.commune_id,
        "loa-zalo-sync",
        Clock::System,
    )
    .await?;
    let report = channel
        .sync_followers(&store, &config.commune_id, &commune, jiff::Timestamp::now())
        .await?;
    println!(
        "{} followers ({} tagged with a village, {} in a village group); {} heads checked; {} names looked up; {} requests",
        report.followers,
        report.tagged,
        report.in_groups,
        report.heads_checked,
        report.names,
        report.requests
    );
    if report.disabled_groups > 0 {
        println!(
            "{} village groups are disabled at Zalo: their members are written to one by one",
            report.disabled_groups
        );
    }
    store.close().await;
    Ok(ExitCode::SUCCESS)
}

async fn status(args: &RunArgs) -> anyhow::Result<ExitCode> {
    let config = args.config()?;
    let store = Store::open_existing(&config.database)
        .await
        .map_err(|e| super::CannotRun(format!("{e:#}")))?;
    match store.zalo_tokens(&config.commune_id).await? {
        None => println!("tokens: none (run `loa zalo auth` or set zalo.refresh_token)"),
        Some(t) => {
            println!(
                "tokens: generation {}, access token valid until {}",
                t.generation, t.access_expires_at
            );
            if let Some(by) = &t.refreshing_by {
                println!("refreshing: by {by}");
            }
            if let Some(e) = &t.last_error {
                println!("last refresh error: {e}");
            }
        }
    }
    if let Some(q) = store.zns_quota(&config.commune_id).await? {
        println!("{}", quota_line(&q, jiff::Timestamp::now()));
    }
    let followers = store.followers(&config.commune_id).await?;
    println!(
        "followers: {} ({} outside any village group)",
        followers.len(),
        followers.iter().filter(|f| !f.in_group).count()
    );
    store.close().await;
    Ok(ExitCode::SUCCESS)
}

/// `status`'s line for the ZNS quota: what Zalo last said is left, or, when it said so before
/// today (Vietnamese time, as Zalo renews it), only the day's quota.
fn quota_line(q: &StoredQuota, now: jiff::Timestamp) -> String {
    let zoned = |t: jiff::Timestamp| {
        jiff::tz::TimeZone::get(ZALO_TZ).map_or_else(
            |_| t.to_string(),
            |tz| t.to_zoned(tz).strftime("%Y-%m-%d %H:%M %:z").to_string(),
        )
    };
    match quota::today(q, now) {
        Some((left, low)) => format!(
            "zns quota: {left} of {} left today{}, as of {} ({})",
            q.daily,
            if low { " (low)" } else { "" },
            zoned(q.seen_at),
            q.node
        ),
        None => format!(
            "zns quota: {} a day (not used today; {} were left at {})",
            q.daily,
            q.remaining,
            zoned(q.seen_at)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_quota_line_says_what_is_left_today_or_only_the_days_quota() {
        let at = |s: &str| s.parse::<jiff::Timestamp>().expect("time");
        let q = StoredQuota {
            daily: 500,
            remaining: 37,
            seen_at: at("2026-11-25T02:13:00Z"),
            node: "vm-1".into(),
        };
        assert_eq!(
            quota_line(&q, at("2026-11-25T03:00:00Z")),
            "zns quota: 37 of 500 left today (low), as of 2026-11-25 09:13 +07:00 (vm-1)"
        );
        let plenty = StoredQuota {
            remaining: 51,
            ..q.clone()
        };
        assert_eq!(
            quota_line(&plenty, at("2026-11-25T03:00:00Z")),
            "zns quota: 51 of 500 left today, as of 2026-11-25 09:13 +07:00 (vm-1)"
        );
        // After Vietnamese midnight the count is the day before's.
        assert_eq!(
            quota_line(&q, at("2026-11-25T17:30:00Z")),
            "zns quota: 500 a day (not used today; 37 were left at 2026-11-25 09:13 +07:00)"
        );
    }
}
