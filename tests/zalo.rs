//! The Zalo channel against the simulator, over real HTTP on loopback: follower sync and the
//! audience it gives, the classification of every error the simulator can produce, token expiry
//! in the middle of a broadcast, two daemons racing to refresh, pacing at the rate limit, and a
//! broadcast under 5xx and timeouts where every recipient must end final and none be lost.
//!
//! One test binary: this file holds what the tests share (the simulator, the channel, a daemon's
//! commune), `zalo/` the tests by subject.

#[path = "zalo/audiences.rs"]
mod audiences;
#[path = "zalo/broadcast.rs"]
mod broadcast;
#[path = "zalo/classify.rs"]
mod classify;
#[path = "zalo/names.rs"]
mod names;
mod support;
#[path = "zalo/texts.rs"]
mod texts;
#[path = "zalo/tokens.rs"]
mod tokens;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use loa::clock::Clock;
use loa::daemon::{Daemon, Settings};
use loa::deliver::zalo::channel::ZaloChannel;
use loa::deliver::zalo::config::{Secret, ZaloConfig};
use loa::deliver::{Channel, Outgoing, SendError, TargetKind};
use loa::ledger::Store;
use loa::sim::{Faults, GenerateSpec, Population, Sim, SimConfig, SimGroup, SimUser, ZnsTemplate};
use sqlx::Row as _;

async fn start_sim(config: SimConfig) -> Sim {
    let listener = loa::listen::bind("127.0.0.1:0").await.expect("bind");
    loa::sim::start(config, listener).await.expect("sim")
}

fn zalo_config(sim: &Sim) -> ZaloConfig {
    let base = sim.base_url();
    ZaloConfig {
        app_id: "3304985733420011111".into(),
        app_secret: Secret::new("sim-app-secret"),
        oauth_url: base.clone(),
        api_url: base.clone(),
        zns_url: base,
        zns_template_id: "loa-announcement".into(),
        rate_limit: 0,
        timeout_ms: 2_000,
        ..ZaloConfig::default()
    }
}

/// A channel on `store` holding a fresh token pair from the simulator.
async fn channel(sim: &Sim, store: &Store, node: &str, config: ZaloConfig) -> ZaloChannel {
    channel_at(sim, store, node, config, Clock::System).await
}

/// The same, reading `clock`.
async fn channel_at(
    sim: &Sim,
    store: &Store,
    node: &str,
    config: ZaloConfig,
    clock: Clock,
) -> ZaloChannel {
    let pair = sim.issue_tokens();
    let now = Timestamp::now();
    let expires = now + SignedDuration::from_secs(pair.expires_in_secs().expect("expires_in"));
    store
        .put_zalo_tokens(
            "default",
            &pair.access_token,
            &pair.refresh_token,
            expires,
            true,
            now,
        )
        .await
        .expect("tokens");
    ZaloChannel::open(config, store.clone(), "default", node, clock)
        .await
        .expect("channel")
}

/// Stores a new pair from the simulator in place of any other, its access token expiring `life`
/// after `now`; returns that access token.
async fn new_pair(sim: &Sim, store: &Store, now: Timestamp, life: SignedDuration) -> String {
    let pair = sim.issue_tokens();
    store
        .put_zalo_tokens(
            "default",
            &pair.access_token,
            &pair.refresh_token,
            now + life,
            false,
            now,
        )
        .await
        .expect("tokens");
    pair.access_token
}

/// A channel on `store` that reads `clock`.
async fn channel_on(sim: &Sim, store: &Store, clock: Clock) -> ZaloChannel {
    ZaloChannel::open(zalo_config(sim), store.clone(), "default", "n1", clock)
        .await
        .expect("channel")
}

/// The calls to its token endpoint the simulator has answered.
fn token_calls(sim: &Sim) -> u64 {
    sim.stats().calls("/v4/oa/access_token")
}

/// Uses `refresh_token` at the simulator directly, as another integration on the same OA would:
/// loa's next refresh with it is refused.
async fn spend_refresh_token(sim: &Sim, refresh_token: &str) {
    let spent = reqwest::Client::new()
        .post(format!("{}/v4/oa/access_token", sim.base_url()))
        .header("secret_key", "sim-app-secret")
        .form(&[
            ("grant_type", "refresh_token"),
            ("app_id", "3304985733420011111"),
            ("refresh_token", refresh_token),
        ])
        .send()
        .await
        .expect("refresh");
    assert!(spent.text().await.expect("body").contains("access_token"));
}

/// The one text column of every row `sql` selects.
async fn texts(store: &Store, sql: &str) -> Vec<String> {
    sqlx::query(sql)
        .fetch_all(store.pool())
        .await
        .expect("rows")
        .into_iter()
        .map(|r| r.get::<String, _>(0))
        .collect()
}

/// The commune's stored token pair.
async fn stored(store: &Store) -> loa::ledger::StoredTokens {
    store
        .zalo_tokens("default")
        .await
        .expect("read")
        .expect("tokens")
}

/// A simulator whose population is one follower, `1000000000000000001`.
async fn one_follower_sim() -> Sim {
    let population = Population {
        users: vec![user("1000000000000000001")],
        ..Population::default()
    };
    start_sim(SimConfig {
        population,
        ..SimConfig::default()
    })
    .await
}

/// `one_follower_sim` with a channel on a fresh SQLite ledger (keep the database alive).
async fn one_follower_channel() -> (Sim, support::TestDb, ZaloChannel) {
    let sim = one_follower_sim().await;
    let db = support::sqlite();
    let store = db.store().await;
    let ch = channel(&sim, &store, "n1", zalo_config(&sim)).await;
    (sim, db, ch)
}

/// The one whole number `sql` reads from the ledger.
async fn scalar(store: &Store, sql: &str) -> i64 {
    sqlx::query(sql)
        .fetch_one(store.pool())
        .await
        .expect(sql)
        .get::<i64, _>(0)
}

/// How many calls the simulator answered with `code`.
fn answered(sim: &Sim, code: i64) -> u64 {
    sim.stats()
        .answers_by_error
        .get(&code)
        .copied()
        .unwrap_or(0)
}

fn user(id: &str) -> SimUser {
    SimUser {
        user_id: id.into(),
        display_name: "Người thử".into(),
        phone: None,
        tags: vec![],
        last_interaction: Timestamp::now() - SignedDuration::from_hours(1),
        follower: true,
        blocked: false,
        banned: false,
        head: false,
        silent: false,
        zns_reachable: true,
    }
}

fn msg<'a>(kind: TargetKind, target: &'a str, text: &'a str) -> Outgoing<'a> {
    Outgoing {
        delivery_id: 1,
        announcement_id: "thu",
        kind,
        target,
        text,
        urgent: false,
        possible_duplicate: false,
        fallback: None,
        sent_parts: None,
    }
}

fn code(r: &Result<loa::deliver::Sent, SendError>) -> String {
    match r {
        Ok(_) => "sent".into(),
        Err(SendError::Final { code, .. }) => format!("final {code}"),
        Err(SendError::RetryLater {
            code,
            in_doubt,
            after,
            ..
        }) => {
            format!(
                "retry {code}{}{}",
                if *in_doubt { " in-doubt" } else { "" },
                if after.is_some() { " after" } else { "" }
            )
        }
        Err(SendError::RefreshCredentials { code, .. }) => format!("refresh {code}"),
        Err(SendError::NotNow { code, .. }) => format!("not now {code}"),
        Err(SendError::PartlySent { sent, then }) => {
            format!("{} after {sent}", code(&Err(*then.clone())))
        }
    }
}

/// A commune whose villages are the simulator's generated groups, and one announcement due at
/// `due` for the whole commune.
fn repo_for(dir: &Path, population: &Population, due: &str, priority: &str) {
    let ann = dir.join("announcements");
    std::fs::create_dir_all(&ann).expect("dir");
    std::fs::create_dir_all(dir.join("templates")).expect("dir");
    let mut commune = String::from("commune: Xã Thử\nvillages:\n");
    for (i, g) in population.groups.iter().enumerate() {
        commune.push_str(&format!(
            "  - {{ id: v{i}, name: \"{}\", zalo_group: \"{}\" }}\n",
            g.name, g.group_id
        ));
    }
    std::fs::write(ann.join("commune.yaml"), commune).expect("write");
    std::fs::write(
        dir.join("templates/general.tera"),
        "{{ title }}{% if village %} · {{ village.name }}{% endif %}",
    )
    .expect("write");
    std::fs::write(
        ann.join("tb.yaml"),
        format!("title: Thông báo thử\npriority: {priority}\nsend:\n  - at: {due}\n"),
    )
    .expect("write");
}

/// The heads of a commune's villages, each their village's generated head, and a notice that
/// asks them to confirm it.
fn repo_with_heads(dir: &Path, population: &Population, due: &str) {
    repo_for(dir, population, due, "urgent");
    let mut commune = String::from("commune: Xã Thử\nvillages:\n");
    for (i, g) in population.groups.iter().enumerate() {
        let head = population
            .head_of(&g.name)
            .expect("each generated village has a head");
        commune.push_str(&format!(
            "  - {{ id: v{i}, name: \"{}\", zalo_group: \"{}\", heads: [{{ name: \"Trưởng {}\", zalo_user: \"{}\" }}] }}\n",
            g.name, g.group_id, g.name, head.user_id
        ));
    }
    std::fs::write(dir.join("announcements/commune.yaml"), commune).expect("write");
    std::fs::write(
        dir.join("announcements/tb.yaml"),
        format!(
            "title: Thông báo thử\npriority: urgent\nsend:\n  - at: {due}\nconfirm: {{ by: [village_head], within: 1h }}\n"
        ),
    )
    .expect("write");
}

fn settings(dir: &Path, node: &str) -> Settings {
    Settings {
        commune_id: "default".into(),
        dir: dir.join("announcements"),
        templates: dir.join("templates"),
        node: node.into(),
        horizon: SignedDuration::from_hours(48),
        lease: SignedDuration::from_secs(30),
        max_sleep: SignedDuration::from_secs(5),
        concurrency: 128,
        max_attempts: 4,
        retry_base: SignedDuration::from_secs(60),
        send_budget: loa::daemon::SEND_BUDGET,
    }
}

async fn states(store: &Store) -> HashMap<String, i64> {
    sqlx::query("SELECT state, COUNT(*) AS n FROM deliveries GROUP BY state")
        .fetch_all(store.pool())
        .await
        .expect("states")
        .into_iter()
        .map(|r| (r.get::<String, _>("state"), r.get::<i64, _>("n")))
        .collect()
}

/// A simulator, the test's database, the repository, a daemon on the Zalo channel and its due time.
type Setup = (
    Sim,
    support::TestDb,
    tempfile::TempDir,
    Daemon<ZaloChannel>,
    Timestamp,
);

/// `followers` people in 4 villages, all within their 7-day window and following the OA,
/// `group_share` of them in their village's group.
fn villages_of(followers: usize, group_share: f64) -> Population {
    Population::generate(&GenerateSpec {
        villages: 4,
        followers,
        group_share,
        stale_share: 0.0,
        non_follower_share: 0.0,
        seed: 7,
    })
}

/// Sets up a simulator with `followers` people outside any group, a daemon on the Zalo channel,
/// and the followers synced; returns the daemon on a manual clock at the due time.
async fn broadcast_setup(
    followers: usize,
    sim_config: SimConfig,
    zalo: impl Fn(ZaloConfig) -> ZaloConfig,
    priority: &str,
) -> Setup {
    let population = villages_of(followers, 0.0);
    setup_for(population, sim_config, zalo, priority).await
}

/// `broadcast_setup` for a population of the test's own.
async fn setup_for(
    population: Population,
    sim_config: SimConfig,
    zalo: impl Fn(ZaloConfig) -> ZaloConfig,
    priority: &str,
) -> Setup {
    setup_in(support::sqlite(), population, sim_config, zalo, priority).await
}

/// `setup_for` on a database of the test's own.
async fn setup_in(
    db: support::TestDb,
    population: Population,
    sim_config: SimConfig,
    zalo: impl Fn(ZaloConfig) -> ZaloConfig,
    priority: &str,
) -> Setup {
    let repo = |dir: &Path, p: &Population, due: &str| repo_for(dir, p, due, priority);
    setup_repo(db, population, sim_config, zalo, repo).await
}

/// `setup_in` with the repository `repo` writes (given its directory, the population and the
/// due time as written in a file).
async fn setup_repo(
    db: support::TestDb,
    population: Population,
    sim_config: SimConfig,
    zalo: impl Fn(ZaloConfig) -> ZaloConfig,
    repo: impl Fn(&Path, &Population, &str),
) -> Setup {
    let followers = population.users.iter().filter(|u| u.follower).count();
    let sim = start_sim(SimConfig {
        population: population.clone(),
        ..sim_config
    })
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let due = support::local_in(120);
    repo(dir.path(), &population, &due);
    let store = db.store().await;
    // The channel reads the daemon's clock (its OA probes go by it).
    let clock = Clock::manual(Timestamp::now());
    let ch = channel_at(&sim, &store, "n1", zalo(zalo_config(&sim)), clock.clone()).await;
    let commune = loa::announce::load_commune(&dir.path().join("announcements")).expect("commune");
    let report = ch
        .sync_followers(&store, "default", &commune, Timestamp::now())
        .await
        .expect("sync");
    assert_eq!(report.followers, followers);
    let tz = jiff::tz::TimeZone::get("Asia/Ho_Chi_Minh").expect("tz");
    let due_at = loa::announce::values::parse_datetime(&due, &tz, true).expect("due");
    let daemon = Daemon::new(store, ch, settings(dir.path(), "n1")).with_clock(clock.clone());
    daemon.load_all(clock.now()).await.expect("load");
    clock.set(due_at);
    (sim, db, dir, daemon, due_at)
}
