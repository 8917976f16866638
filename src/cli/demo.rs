//! `loa demo`: loa working in one command. On a fresh temporary SQLite file it starts the Zalo
//! simulator with the example commune (Xã Long Môn, 5 villages) and 2,000 generated followers,
//! then the daemon with its HTTP server, confirm links and dashboard, plus a storm warning due a
//! few seconds after start that asks the village heads to confirm within a minute. Within a
//! minute the dashboard shows people reached and heads confirming (by reply, and one by link);
//! a silent head is reminded after a minute and the leaders told after two.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use jiff::{SignedDuration, Timestamp};

use crate::config::Config;
use crate::sim::{People, Population, SimConfig};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The dashboard's port (another free port is used when it is taken).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Followers the simulator generates across the villages.
    #[arg(long, default_value_t = 2000)]
    pub followers: usize,
    /// Where the demo keeps its files (default: a new directory under the system's temp dir).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Seconds from start until the storm warning is due.
    #[arg(long, default_value_t = 8)]
    pub due_in: u64,
}

/// The example commune, built into the binary so the demo needs nothing beside it.
const FILES: &[(&str, &str)] = &[
    (
        "announcements/commune.yaml",
        include_str!("../../announcements/commune.yaml"),
    ),
    (
        "announcements/bao-so-13.yaml",
        include_str!("../../announcements/bao-so-13.yaml"),
    ),
    (
        "announcements/cat-dien-2026-12-05.yaml",
        include_str!("../../announcements/cat-dien-2026-12-05.yaml"),
    ),
    (
        "announcements/cccd/go-da-yen-ngua.yaml",
        include_str!("../../announcements/cccd/go-da-yen-ngua.yaml"),
    ),
    (
        "announcements/cccd/lang-tre.yaml",
        include_str!("../../announcements/cccd/lang-tre.yaml"),
    ),
    (
        "announcements/hop-thon-yen-ngua.yaml",
        include_str!("../../announcements/hop-thon-yen-ngua.yaml"),
    ),
    (
        "announcements/tiem-phong-dai.yaml",
        include_str!("../../announcements/tiem-phong-dai.yaml"),
    ),
    (
        "templates/_footer.tera",
        include_str!("../../templates/_footer.tera"),
    ),
    (
        "templates/_header.tera",
        include_str!("../../templates/_header.tera"),
    ),
    (
        "templates/general.tera",
        include_str!("../../templates/general.tera"),
    ),
    (
        "templates/id_card_campaign.tera",
        include_str!("../../templates/id_card_campaign.tera"),
    ),
    (
        "templates/meeting.tera",
        include_str!("../../templates/meeting.tera"),
    ),
    (
        "templates/power_cut.tera",
        include_str!("../../templates/power_cut.tera"),
    ),
    (
        "templates/storm_warning.tera",
        include_str!("../../templates/storm_warning.tera"),
    ),
];

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(demo(args))?;
    Ok(ExitCode::SUCCESS)
}

async fn demo(args: &Args) -> anyhow::Result<()> {
    super::run::init_logging("text");
    let dir = args.dir.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("loa-demo-{}", Timestamp::now().as_second()))
    });
    write_commune(&dir, args.due_in)?;
    let commune = crate::announce::load_commune(&dir.join("announcements"))
        .map_err(|p| anyhow::anyhow!("the example commune does not load: {p:?}"))?;

    // The simulator: the commune's villages, heads and leaders, and generated followers.
    let sim_listener = crate::listen::bind("127.0.0.1:0").await?;
    let people = People {
        receive_delay: Duration::from_secs(2),
        seen_delay: Duration::from_secs(6),
        seen_share: 0.7,
        head_reply_share: 0.5,
        reply_delay: Duration::from_secs(12),
        ..People::default()
    };
    let sim_config = SimConfig {
        population: Population::from_commune(&commune, args.followers, 13),
        people,
        ..SimConfig::default()
    };
    let (app_id, app_secret, oa_secret) = (
        sim_config.app_id.clone(),
        sim_config.app_secret.clone(),
        sim_config.oa_secret.clone(),
    );
    let sim = crate::sim::start(sim_config, sim_listener).await?;

    // The daemon's HTTP server: the asked port, or any free one.
    let web = match std::net::TcpListener::bind(("127.0.0.1", args.port)) {
        Ok(l) => l.local_addr()?,
        Err(_) => std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?,
    };
    let base = format!("http://{web}");
    sim.set_webhook_url(Some(format!("{base}{}", crate::web::WEBHOOK_PATH)));

    let token: String = {
        let bytes: [u8; 12] = rand::random();
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    };
    let mut config = Config {
        database: format!("sqlite://{}", dir.join("loa.db").display()),
        announcements: dir.join("announcements"),
        channel: "zalo".into(),
        max_sleep_ms: 1_000,
        ..Config::default()
    };
    config.zalo.app_id = app_id;
    config.zalo.app_secret = crate::deliver::zalo::config::Secret::new(app_secret);
    config.zalo.oa_secret = crate::deliver::zalo::config::Secret::new(oa_secret);
    config.zalo.oauth_url = sim.base_url();
    config.zalo.api_url = sim.base_url();
    config.zalo.zns_url = sim.base_url();
    config.zalo.zns_template_id = "loa-announcement".into();
    config.web.listen = web.to_string();
    config.web.dashboard_token = crate::deliver::zalo::config::Secret::new(token.clone());
    config.confirm.public_url = base.clone();

    // The OA is connected: the simulator's tokens, as `loa zalo auth` would store them.
    let store = crate::ledger::Store::open(&config.database).await?;
    let pair = sim.issue_tokens();
    let now = Timestamp::now();
    store
        .put_zalo_tokens(
            &config.commune_id,
            &pair.access_token,
            &pair.refresh_token,
            now + SignedDuration::from_hours(24),
            true,
            now,
        )
        .await?;
    store.close().await;

    println!(
        "loa demo — Xã Long Môn, {} người theo dõi OA (giả lập)",
        args.followers
    );
    println!();
    println!("  Bảng điều khiển: {base}/login?token={token}");
    println!("  Zalo giả lập:    {}/_sim/messages", sim.base_url());
    println!("  Thư mục:         {}", dir.display());
    println!();
    println!(
        "Cảnh báo bão được gửi sau {} giây; trưởng thôn xác nhận trong 1 phút (trả lời hoặc bấm liên kết),",
        args.due_in
    );
    println!("ai im lặng sẽ được nhắc, sau 2 phút báo lãnh đạo xã. Dừng bằng Ctrl-C.");
    println!();

    tokio::spawn(tap_one_link(sim.clone(), base));
    super::run::serve(config).await
}

/// One village head confirms by tapping their link (the others reply, or stay silent): the
/// simulator's people only write back, so the demo taps for them.
async fn tap_one_link(sim: crate::sim::Sim, base: String) {
    tokio::time::sleep(Duration::from_secs(20)).await;
    let heads: Vec<String> = sim
        .population()
        .users
        .iter()
        .filter(|u| u.head)
        .map(|u| u.user_id.clone())
        .collect();
    let link = sim.messages().iter().rev().find_map(|m| {
        if !heads.contains(&m.to) {
            return None;
        }
        crate::confirm::link::find_url(&m.text, &base).map(str::to_string)
    });
    if let Some(link) = link {
        match reqwest::Client::new().post(&link).send().await {
            Ok(r) => tracing::info!(
                status = r.status().as_u16(),
                "demo: a head tapped their confirm link"
            ),
            Err(e) => tracing::warn!(error = %e, "demo: could not tap a confirm link"),
        }
    }
}

/// The example commune, and a storm warning due `due_in` seconds from now.
fn write_commune(dir: &Path, due_in: u64) -> anyhow::Result<()> {
    for (path, text) in FILES {
        let path = dir.join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    let tz = jiff::tz::TimeZone::get("Asia/Ho_Chi_Minh").unwrap_or(jiff::tz::TimeZone::UTC);
    let local = |secs: i64| {
        (Timestamp::now() + SignedDuration::from_secs(secs))
            .to_zoned(tz.clone())
            .strftime("%Y-%m-%d %H:%M:%S")
            .to_string()
    };
    let demo = format!(
        "# The demo's storm warning: due a few seconds after `loa demo` starts.
title: Cảnh báo bão số 13 (bão Kalmaegi) — tin thử nghiệm
kind: storm_warning
priority: urgent
send:
  - at: {}
expires: {}
confirm: {{ by: [village_head], within: 1m, escalate_to: [chu-tich] }}
data:
  storm: Bão số 13 (Kalmaegi)
  level: cấp 12, giật cấp 15
  landfall: đêm nay, ven biển Quảng Ngãi – Bình Định
  rain: mưa rất to 200–400 mm, nguy cơ lũ quét và sạt lở đất ở vùng núi
  actions:
    - Chằng chống nhà cửa, chặt tỉa cây gần nhà
    - Không qua suối, ngầm tràn khi nước lên
  hotline: \"0255 3860 123\"
",
        local(due_in as i64),
        local(86_400)
    );
    std::fs::write(dir.join("announcements/demo-bao.yaml"), demo)?;
    Ok(())
}
