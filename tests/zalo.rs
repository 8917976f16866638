//! The Zalo channel against the simulator, over real HTTP on loopback: follower sync and the
//! audience it gives, the classification of every error the simulator can produce, token expiry
//! in the middle of a broadcast, two daemons racing to refresh, pacing at the rate limit, and a
//! broadcast under 5xx and timeouts where every recipient must end final and none be lost.

mod support;

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
    sim.stats()
        .requests_by_path
        .get("/v4/oa/access_token")
        .copied()
        .unwrap_or(0)
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

#[tokio::test]
async fn any_code_zalo_may_answer_a_send_is_classified_over_the_wire() {
    let (sim, _db, ch) = one_follower_channel().await;
    let (follower, group, phone) = ("1000000000000000001", "aaaaaaaaaaaaaaaaaaa1", "84912345678");
    for (kind, target, fault, want) in [
        (TargetKind::User, follower, -200, "retry -200"),
        (TargetKind::Group, group, -200, "retry -200"),
        (TargetKind::User, follower, -211, "not now -211"),
        (TargetKind::User, follower, -244, "final -244"),
        (TargetKind::Phone, phone, -115, "not now -115"),
        (TargetKind::Phone, phone, -114, "final -114"),
    ] {
        sim.set_faults(loa::sim::Faults {
            send_error_share: 1.0,
            send_error_code: fault,
            ..loa::sim::Faults::default()
        });
        let got = code(&ch.send(&msg(kind, target, "Thông báo thử")).await);
        assert_eq!(got, want, "{kind:?} answered {fault}");
    }
    assert!(sim.messages().is_empty(), "a refused send records nothing");
    sim.set_faults(loa::sim::Faults::default());
    let sent = ch
        .send(&msg(TargetKind::User, follower, "Thông báo thử"))
        .await;
    assert_eq!(code(&sent), "sent");
}

#[tokio::test]
async fn every_error_the_simulator_produces_is_classified() {
    let mut population = Population::default();
    let mut blocked = user("1000000000000000002");
    blocked.blocked = true;
    let mut banned = user("1000000000000000003");
    banned.banned = true;
    let mut stale = user("1000000000000000004");
    stale.last_interaction = Timestamp::now() - SignedDuration::from_hours(8 * 24);
    let mut not_following = user("1000000000000000005");
    not_following.follower = false;
    let mut no_zns = user("1000000000000000006");
    no_zns.phone = Some("84900000006".into());
    no_zns.zns_reachable = false;
    population.users = vec![
        user("1000000000000000001"),
        blocked,
        banned,
        stale,
        not_following,
        no_zns,
    ];
    population.groups = vec![
        SimGroup {
            group_id: "aaaaaaaaaaaaaaaaaaa1".into(),
            name: "A".into(),
            disabled: false,
            oa_is_member: true,
            members: vec!["1000000000000000001".into()],
        },
        SimGroup {
            group_id: "aaaaaaaaaaaaaaaaaaa2".into(),
            name: "B".into(),
            disabled: true,
            oa_is_member: true,
            members: vec![],
        },
        SimGroup {
            group_id: "aaaaaaaaaaaaaaaaaaa3".into(),
            name: "C".into(),
            disabled: false,
            oa_is_member: false,
            members: vec![],
        },
    ];
    let sim = start_sim(SimConfig {
        population,
        ..SimConfig::default()
    })
    .await;
    let db = support::sqlite();
    let store = db.store().await;
    let mut config = zalo_config(&sim);
    config.timeout_ms = 300;
    // After a -32 the client pauses for the rest of the window: keep that short here.
    config.rate_window_ms = 200;
    let ch = channel(&sim, &store, "n1", config.clone()).await;
    let text = "Thông báo thử";
    let cases: Vec<(TargetKind, &str, &str, &str)> = vec![
        (TargetKind::User, "1000000000000000001", text, "sent"),
        (TargetKind::Group, "aaaaaaaaaaaaaaaaaaa1", text, "sent"),
        (TargetKind::Phone, "84912345678", text, "sent"),
        (TargetKind::User, "1000000000000000005", text, "final -213"),
        (TargetKind::User, "1999999999999999999", text, "final -213"),
        (TargetKind::User, "1000000000000000002", text, "final -217"),
        (TargetKind::User, "1000000000000000003", text, "final -227"),
        (TargetKind::User, "1000000000000000004", text, "final -230"),
        (
            TargetKind::Group,
            "aaaaaaaaaaaaaaaaaaa2",
            text,
            "final -237",
        ),
        (
            TargetKind::Group,
            "aaaaaaaaaaaaaaaaaaa3",
            text,
            "final -403",
        ),
        (
            TargetKind::Group,
            "ffffffffffffffffffff",
            text,
            "final -403",
        ),
        (TargetKind::Phone, "8412", text, "final -108"),
        (TargetKind::Phone, "84900000006", text, "final -114"),
        (TargetKind::User, "1000000000000000001", "", "final -201"),
    ];
    for (kind, target, text, want) in &cases {
        let got = code(&ch.send(&msg(*kind, target, text)).await);
        assert_eq!(&got, want, "{kind:?} {target}");
    }
    // The reason is said once, not Zalo's words repeating ours (it did: "…7 days: …7 days").
    match ch
        .send(&msg(TargetKind::User, "1000000000000000004", text))
        .await
    {
        Err(SendError::Final { reason, .. }) => {
            assert_eq!(reason, "no interaction with the OA in the last 7 days")
        }
        other => panic!("{other:?}"),
    }
    // A head outside the window, or inactive for 45 days, with a phone: reached by ZNS, and the
    // record says how. One who blocked the OA is not written to by phone either.
    for (user, code) in [
        ("1000000000000000004", "-230"),
        ("1000000000000000003", "-227"),
    ] {
        let mut head = msg(TargetKind::User, user, text);
        head.fallback = Some("84912345678");
        let sent = ch.send(&head).await.expect("by phone");
        let note = sent.note.as_deref().unwrap_or("");
        assert!(note.contains("ZNS") && note.contains(code), "{sent:?}");
    }
    let mut blocked = msg(TargetKind::User, "1000000000000000002", text);
    blocked.fallback = Some("84912345678");
    assert_eq!(code(&ch.send(&blocked).await), "final -217");

    // A ZNS template Zalo has not approved.
    let wrong = ZaloChannel::open(
        ZaloConfig {
            zns_template_id: "khong-duyet".into(),
            ..config.clone()
        },
        store.clone(),
        "default",
        "n1",
        Clock::System,
    )
    .await
    .expect("channel");
    assert_eq!(
        code(
            &wrong
                .send(&msg(TargetKind::Phone, "84912345678", text))
                .await
        ),
        "final -109"
    );

    // Faults: a rate limit (retry once the window turns), a 5xx (retry; nothing went), a timeout
    // (retry, flagged as possibly delivered).
    let faults = [
        (
            Faults {
                rate_limit_burst: 1,
                ..Faults::default()
            },
            "not now -32",
        ),
        (
            Faults {
                server_error_share: 1.0,
                ..Faults::default()
            },
            "retry http-5",
        ),
        (
            Faults {
                timeout_share: 1.0,
                timeout_hang: Duration::from_secs(2),
                ..Faults::default()
            },
            "retry timeout in-doubt",
        ),
    ];
    for (fault, want) in faults {
        sim.set_faults(fault);
        let got = code(
            &ch.send(&msg(TargetKind::User, "1000000000000000001", text))
                .await,
        );
        assert!(got.starts_with(want), "{got} (want {want})");
    }
    sim.set_faults(Faults::default());

    // Revoked (-216) and expired (-220, and ZNS's -124) tokens: refreshed once, then sent.
    let before = sim.stats().token_refreshes;
    sim.revoke_access_tokens();
    assert_eq!(
        code(
            &ch.send(&msg(TargetKind::User, "1000000000000000001", text))
                .await
        ),
        "sent"
    );
    sim.expire_access_tokens();
    assert_eq!(
        code(
            &ch.send(&msg(TargetKind::Group, "aaaaaaaaaaaaaaaaaaa1", text))
                .await
        ),
        "sent"
    );
    sim.revoke_access_tokens();
    assert_eq!(
        code(&ch.send(&msg(TargetKind::Phone, "84912345678", text)).await),
        "sent"
    );
    let stats = sim.stats();
    assert_eq!(stats.token_refreshes - before, 3);
    assert_eq!(stats.refresh_reuse_rejections, 0);
    assert!(stats.answers_by_error.get(&-216).copied().unwrap_or(0) >= 1);
    assert!(stats.answers_by_error.get(&-220).copied().unwrap_or(0) >= 1);
    assert!(stats.answers_by_error.get(&-124).copied().unwrap_or(0) >= 1);
}

#[tokio::test]
async fn a_refusal_of_the_oa_itself_gives_up_on_nobody_and_stops_calling() {
    let sim = one_follower_sim().await;
    let db = support::sqlite();
    let store = db.store().await;
    // The operator mistyped the app secret: every call's appsecret_proof is wrong (-242).
    let config = ZaloConfig {
        appsecret_proof: true,
        app_secret: Secret::new("mistyped-secret"),
        ..zalo_config(&sim)
    };
    let clock = Clock::manual(Timestamp::now());
    let ch = channel_at(&sim, &store, "n1", config, clock.clone()).await;
    let notice = msg(TargetKind::User, "1000000000000000001", "Thông báo");
    let send = || ch.send(&notice);
    let refused = || answered(&sim, -242);
    // Refused for now: not counted as an attempt, whatever the message's count, and due again
    // at once (for another daemon, whose calls Zalo may take: this one claims nothing before
    // its next probe, in 10 minutes).
    let not_now = |r: Result<loa::deliver::Sent, SendError>| match r {
        Err(SendError::NotNow { code, after, .. }) if after.is_zero() => code,
        other => panic!("{other:?}"),
    };
    let t0 = clock.now();
    assert_eq!(not_now(send().await), "-242");
    assert_eq!(ch.paused_until(), Some(t0 + SignedDuration::from_mins(10)));
    // Until then the channel makes no request: every send is refused here.
    clock.set(clock.now() + SignedDuration::from_mins(4));
    for _ in 0..5 {
        assert_eq!(not_now(send().await), "-242");
    }
    assert_eq!(refused(), 1);
    assert_eq!(ch.paused_until(), Some(t0 + SignedDuration::from_mins(10)));
    // Ten minutes on, one send probes; the others wait for its answer.
    clock.set(clock.now() + SignedDuration::from_mins(6));
    let (a, b, c) = tokio::join!(send(), send(), send());
    for r in [a, b, c] {
        assert_eq!(not_now(r), "-242");
    }
    assert_eq!(refused(), 2);
    // A probe that gets no answer (Zalo times out) tells nothing: the sends that waited for it
    // do not probe in turn, one request each, but wait a minute for the next probe.
    sim.set_faults(Faults {
        timeout_share: 1.0,
        timeout_hang: Duration::from_secs(3),
        ..Faults::default()
    });
    let calls = || {
        sim.stats()
            .requests_by_path
            .get("/v3.0/oa/message/cs")
            .copied()
            .unwrap_or(0)
    };
    let before = calls();
    assert_eq!(before, 2, "the two refused");
    clock.set(clock.now() + SignedDuration::from_mins(10));
    let (a, b, c) = tokio::join!(send(), send(), send());
    let outcomes: Vec<String> = [a, b, c].iter().map(code).collect();
    assert_eq!(
        outcomes
            .iter()
            .filter(|c| c.as_str() == "not now -242")
            .count(),
        2,
        "{outcomes:?}"
    );
    assert_eq!(calls(), before + 1);
    assert_eq!(not_now(send().await), "-242");
    assert_eq!(
        ch.paused_until(),
        Some(clock.now() + SignedDuration::from_secs(60))
    );
}

#[tokio::test]
async fn zns_at_night_and_past_its_daily_quota_waits_and_refuses_nobody() {
    let population = Population {
        users: vec![user("1000000000000000001")],
        ..Population::default()
    };
    let sim = start_sim(SimConfig {
        population,
        zns_daily_quota: 1,
        faults: Faults {
            zns_night_ban: true,
            ..Faults::default()
        },
        ..SimConfig::default()
    })
    .await;
    let db = support::sqlite();
    let store = db.store().await;
    let ch = channel(&sim, &store, "n1", zalo_config(&sim)).await;
    let notice = msg(TargetKind::Phone, "84912345678", "Họp thôn");
    let send = || ch.send(&notice);
    // A head outside the 7-day window, reached by phone during the night ban: tried again later.
    assert_eq!(code(&send().await), "not now -133");
    sim.set_faults(Faults::default());
    assert_eq!(code(&send().await), "sent");
    // The day's quota spent: tried again later, not given up on.
    assert_eq!(code(&send().await), "not now -144");
    // The OA's texts are not ZNS: the ban and the quota do not touch them.
    assert_eq!(
        code(
            &ch.send(&msg(TargetKind::User, "1000000000000000001", "Họp thôn"))
                .await
        ),
        "sent"
    );
    let stats = sim.stats();
    assert_eq!(stats.answers_by_error.get(&-133).copied(), Some(1));
    assert_eq!(stats.answers_by_error.get(&-144).copied(), Some(1));
}

#[tokio::test]
async fn two_daemons_race_to_refresh_and_refresh_once() {
    for db in support::databases().await {
        let sim = start_sim(SimConfig {
            void_access_on_refresh: true,
            ..SimConfig::default()
        })
        .await;
        let store = db.store().await;
        let config = zalo_config(&sim);
        let a = Arc::new(channel(&sim, &store, "daemon-a", config.clone()).await);
        // The second daemon has its own connection pool, as a second process would.
        let store_b = Store::open(&db.url).await.expect("second store");
        let b = Arc::new(
            ZaloChannel::open(config, store_b, "default", "daemon-b", Clock::System)
                .await
                .expect("b"),
        );
        // Both learn the token, then Zalo says it has expired: everyone asks for a new one at once.
        a.tokens.access().await.expect("a");
        let first = b.tokens.access().await.expect("b");
        sim.expire_access_tokens();
        let mut tasks = Vec::new();
        for i in 0..40 {
            let ch = if i % 2 == 0 { a.clone() } else { b.clone() };
            let generation = first.generation;
            tasks.push(tokio::spawn(async move {
                ch.tokens.rejected(generation).await.map(|t| t.token)
            }));
        }
        let mut tokens = std::collections::HashSet::new();
        for t in tasks {
            tokens.insert(t.await.expect("join").expect("token"));
        }
        let stats = sim.stats();
        assert_eq!(
            stats.token_refreshes, 1,
            "{}: one refresh for everyone",
            db.name
        );
        assert_eq!(
            stats.refresh_reuse_rejections, 0,
            "{}: never locked out",
            db.name
        );
        assert_eq!(tokens.len(), 1, "{}: everyone uses the new token", db.name);
        // And the new token works for both.
        for ch in [&a, &b] {
            assert!(
                ch.send(&msg(TargetKind::Phone, "84912345678", "x"))
                    .await
                    .is_ok()
            );
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
    let followers = population.users.iter().filter(|u| u.follower).count();
    let sim = start_sim(SimConfig {
        population: population.clone(),
        ..sim_config
    })
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let due = support::local_in(120);
    repo_for(dir.path(), &population, &due, priority);
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

#[tokio::test]
async fn followers_outside_groups_are_reached_one_by_one() {
    let (sim, _db, _dir, daemon, due) =
        broadcast_setup(300, SimConfig::default(), |c| c, "normal").await;
    let report = daemon.tick(due, &|| false).await.expect("tick");
    // Four village groups (each holding only its head), and each of the other 296 followers by
    // `message/cs`.
    assert_eq!(report.sent, 300, "{report:?}");
    let messages = sim.messages();
    assert_eq!(messages.iter().filter(|m| m.kind == "group").count(), 4);
    assert_eq!(messages.iter().filter(|m| m.kind == "cs").count(), 296);
    let ids = texts(
        &daemon.store,
        "SELECT provider_message_id FROM deliveries WHERE state = 'sent'",
    )
    .await;
    let sim_ids: std::collections::HashSet<&str> =
        messages.iter().map(|m| m.message_id.as_str()).collect();
    assert!(
        ids.iter().all(|id| sim_ids.contains(id.as_str())),
        "every recorded id is Zalo's"
    );
}

/// Whom the simulator's messages of `kind` (`cs`, `group`, `zns`) were sent to, in order.
fn sent_to(messages: &[loa::sim::SimMessage], kind: &str) -> Vec<String> {
    messages
        .iter()
        .filter(|m| m.kind == kind)
        .map(|m| m.to.clone())
        .collect()
}

#[tokio::test]
async fn the_members_of_a_disabled_village_group_are_reached_one_by_one() {
    let mut population = villages_of(200, 1.0);
    // Zalo has disabled one village's group; listmember still names its members.
    population.groups[1].disabled = true;
    let disabled = population.groups[1].group_id.clone();
    let members: std::collections::BTreeSet<String> =
        population.groups[1].members.iter().cloned().collect();
    assert!(members.len() > 10, "{members:?}");
    let (sim, _db, _dir, daemon, due) =
        setup_for(population, SimConfig::default(), |c| c, "normal").await;
    daemon.tick(due, &|| false).await.expect("tick");
    let messages = sim.messages();
    // The three other groups carry it; the disabled one's members get it one by one.
    let groups = sent_to(&messages, "group");
    assert_eq!(groups.len(), 3, "{groups:?}");
    assert!(!groups.contains(&disabled));
    let one_by_one: std::collections::BTreeSet<String> =
        sent_to(&messages, "cs").into_iter().collect();
    assert_eq!(one_by_one, members);
    // The group's own message is recorded as refused, in Zalo's words.
    let refused = texts(
        &daemon.store,
        "SELECT error_code FROM deliveries WHERE state = 'failed'",
    )
    .await;
    assert_eq!(refused, vec!["-237".to_string()]);
}

#[tokio::test]
async fn members_of_village_groups_refused_since_the_sync_are_reached_one_by_one_once() {
    for db in support::databases().await {
        let population = villages_of(200, 1.0);
        let (sim, _db, _dir, daemon, due) =
            setup_in(db, population, SimConfig::default(), |c| c, "normal").await;
        // After the sync, Zalo disables one village's group and the OA is taken out of another.
        let mut groups = sim.population().groups;
        groups[1].disabled = true;
        groups[2].oa_is_member = false;
        let refused = [groups[1].group_id.clone(), groups[2].group_id.clone()];
        let mut members: Vec<String> = groups[1].members.clone();
        members.extend(groups[2].members.iter().cloned());
        members.sort();
        assert!(members.len() > 20, "{members:?}");
        for g in &groups[1..3] {
            sim.set_group(g.clone());
        }
        daemon.tick(due, &|| false).await.expect("tick");
        let messages = sim.messages();
        let groups_sent = sent_to(&messages, "group");
        assert_eq!(groups_sent.len(), 2, "{groups_sent:?}");
        // Each member of the two refused groups got the message once, in that same tick.
        let mut one_by_one = sent_to(&messages, "cs");
        one_by_one.sort();
        assert_eq!(one_by_one, members);
        let mut codes = texts(
            &daemon.store,
            "SELECT error_code FROM deliveries WHERE state = 'failed' ORDER BY error_code",
        )
        .await;
        codes.sort();
        assert_eq!(codes, vec!["-237".to_string(), "-403".to_string()]);
        assert_eq!(
            states(&daemon.store).await.get("sent").copied(),
            Some(2 + members.len() as i64)
        );
        // Nothing more on the next ticks: the failover is done once.
        for later in [1, 60] {
            let at = due + SignedDuration::from_secs(later);
            daemon.tick(at, &|| false).await.expect("tick");
        }
        assert_eq!(sim.messages().len(), messages.len());
        // Until the next sync, the record no longer counts anyone as reached by those groups.
        let followers = daemon.store.followers("default").await.expect("followers");
        assert!(
            followers
                .iter()
                .all(|f| !f.groups.iter().any(|g| refused.contains(g))),
            "{followers:?}"
        );
        let out = followers.iter().filter(|f| !f.in_group).count();
        assert_eq!(out, members.len());
    }
}

#[tokio::test]
async fn token_expiry_in_the_middle_of_a_broadcast() {
    let (sim, _db, _dir, daemon, due) =
        broadcast_setup(1500, SimConfig::default(), |c| c, "urgent").await;
    // Expire the token once some messages have gone out, while the broadcast runs.
    let expire = async {
        while sim.stats().messages < 300 {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        sim.expire_access_tokens();
    };
    let (report, ()) = tokio::join!(daemon.tick(due, &|| false), expire);
    let report = report.expect("tick");
    assert_eq!(report.sent, 1500, "{report:?}");
    let stats = sim.stats();
    assert_eq!(stats.token_refreshes, 1);
    assert_eq!(stats.refresh_reuse_rejections, 0);
    assert!(
        stats.answers_by_error.get(&-220).copied().unwrap_or(0) >= 1,
        "the expiry was seen mid-broadcast"
    );
    assert_eq!(states(&daemon.store).await.get("sent"), Some(&1500));
}

/// Zalo has disabled the OA (`-204` for every call).
fn disabled() -> Faults {
    Faults {
        oa_disabled: true,
        ..Faults::default()
    }
}

#[tokio::test]
async fn a_disabled_oa_costs_one_request_each_ten_minutes_and_everyone_goes_once_it_is_enabled() {
    let (sim, _db, _dir, daemon, due) =
        broadcast_setup(600, SimConfig::default(), |c| c, "normal").await;
    sim.set_faults(disabled());
    let refused = || answered(&sim, -204);
    let attempts = || scalar(&daemon.store, "SELECT SUM(attempts) FROM deliveries");
    let turn = |at: Timestamp| {
        daemon.clock.set(at);
        daemon.tick(at, &|| false)
    };
    let report = turn(due).await.expect("tick");
    assert_eq!(report.sent, 0, "{report:?}");
    // Only the chunk on the wire when the first refusal came was asked (128 in flight).
    let first = refused();
    assert!((1..=128).contains(&first), "{first}");
    // Nobody's message is given up, and no attempt is spent: those refused wait as `retrying`,
    // the others were not claimed.
    let waiting = || async {
        let st = states(&daemon.store).await;
        st.get("retrying").copied().unwrap_or(0) + st.get("planned").copied().unwrap_or(0)
    };
    assert_eq!(waiting().await, 600);
    assert_eq!(attempts().await, 0);
    // Five minutes on, nothing is claimed and nothing asked; at ten, one probe, refused.
    turn(due + SignedDuration::from_mins(5))
        .await
        .expect("tick");
    assert_eq!(refused(), first);
    turn(due + SignedDuration::from_mins(10) + SignedDuration::from_secs(1))
        .await
        .expect("tick");
    assert_eq!(refused(), first + 1);
    assert_eq!(waiting().await, 600);
    assert_eq!(attempts().await, 0);
    // Zalo enables the OA again: the next probe goes through, and everyone with it.
    sim.set_faults(Faults::default());
    let report = turn(due + SignedDuration::from_mins(20) + SignedDuration::from_secs(2))
        .await
        .expect("tick");
    assert_eq!(report.sent, 600, "{report:?}");
    assert_eq!(refused(), first + 1);
    assert_eq!(states(&daemon.store).await.get("sent"), Some(&600));
    assert_eq!(sim.messages().len(), 600, "each once");
}

#[tokio::test]
async fn a_restart_tries_at_once_what_waited_for_a_refused_oa() {
    let (sim, _db, dir, daemon, due) =
        broadcast_setup(40, SimConfig::default(), |c| c, "normal").await;
    sim.set_faults(disabled());
    let refused = || answered(&sim, -204);
    daemon.clock.set(due);
    daemon.tick(due, &|| false).await.expect("tick");
    assert_eq!(states(&daemon.store).await.get("retrying"), Some(&40));
    // A minute on, nothing is due yet (the next try is in ten).
    let later = due + SignedDuration::from_mins(1);
    daemon.clock.set(later);
    assert_eq!(daemon.tick(later, &|| false).await.expect("tick").sent, 0);
    // A new process (the operator restarts loa) tries them at once, the first as a probe, and
    // claims the others only once it gets through: still refused, that is one request, not one
    // per message.
    let (sim, store, dir) = (&sim, &daemon.store, dir.path());
    let restart = |at: Timestamp| async move {
        let clock = Clock::manual(at);
        let ch = channel_at(sim, store, "n1", zalo_config(sim), clock.clone()).await;
        let restarted = Daemon::new(store.clone(), ch, settings(dir, "n1")).with_clock(clock);
        restarted.recover(at, true).await.expect("recover");
        restarted.tick(at, &|| false).await.expect("tick")
    };
    let before = refused();
    assert_eq!(restart(later).await.sent, 0);
    assert_eq!(refused(), before + 1);
    assert_eq!(states(&daemon.store).await.get("retrying"), Some(&40));
    // The operator mends the OA and restarts loa again: they go at once.
    sim.set_faults(Faults::default());
    let report = restart(later + SignedDuration::from_mins(1)).await;
    assert_eq!(report.sent, 40, "{report:?}");
    assert_eq!(refused(), before + 1);
}

#[tokio::test]
async fn messages_zalo_refused_one_daemon_go_at_once_from_a_daemon_it_takes() {
    for db in support::databases().await {
        let name = db.name;
        let population = villages_of(600, 0.0);
        let proof = |c| ZaloConfig {
            appsecret_proof: true,
            ..c
        };
        let (sim, _db, dir, daemon, due) =
            setup_in(db, population, SimConfig::default(), proof, "normal").await;
        // A second daemon on the same database, whose operator mistyped the app secret: Zalo
        // refuses each of its calls (-242), and it stops calling.
        let mistyped = ZaloConfig {
            app_secret: Secret::new("a-mistyped-secret"),
            ..proof(zalo_config(&sim))
        };
        let clock = daemon.clock.clone();
        let ch = ZaloChannel::open(
            mistyped,
            daemon.store.clone(),
            "default",
            "n2",
            clock.clone(),
        )
        .await
        .expect("channel");
        let other = Daemon::new(daemon.store.clone(), ch, settings(dir.path(), "n2"))
            .with_clock(clock.clone());
        other.load_all(due).await.expect("load");
        assert_eq!(other.tick(due, &|| false).await.expect("tick").sent, 0);
        let refused = answered(&sim, -242);
        assert!((1..=128).contains(&refused), "{name}: {refused}");
        // Until its probe, ten minutes on, it claims nothing: no request, and no message held.
        let later = due + SignedDuration::from_secs(30);
        clock.set(later);
        assert_eq!(other.tick(later, &|| false).await.expect("tick").sent, 0);
        assert_eq!(answered(&sim, -242), refused, "{name}");
        assert_eq!(
            other.channel.paused_until(),
            Some(due + SignedDuration::from_mins(10))
        );
        // The daemon Zalo takes sends everything at once, the messages refused to the other
        // among them (before, those waited for the other's probe).
        let report = daemon.tick(later, &|| false).await.expect("tick");
        assert_eq!(report.sent, 600, "{name}: {report:?}");
        assert_eq!(
            states(&daemon.store).await.get("sent"),
            Some(&600),
            "{name}"
        );
        assert_eq!(sim.messages().len(), 600, "{name}: each once");
        // The refusals spent no attempt.
        let attempts = scalar(
            &daemon.store,
            "SELECT CAST(SUM(attempts) AS BIGINT) FROM deliveries",
        )
        .await;
        assert_eq!(attempts, 600, "{name}");
    }
}

#[tokio::test]
async fn no_rate_limit_errors_at_the_configured_limit() {
    // Zalo's 4,000 a minute, scaled: 100 per 500 ms on both sides.
    let sim_config = SimConfig {
        rate_limit: 100,
        rate_window: Duration::from_millis(500),
        ..SimConfig::default()
    };
    let (sim, _db, _dir, daemon, due) = broadcast_setup(
        596,
        sim_config,
        |c| ZaloConfig {
            rate_limit: 100,
            rate_window_ms: 500,
            ..c
        },
        "normal",
    )
    .await;
    let report = daemon.tick(due, &|| false).await.expect("tick");
    assert_eq!(report.sent, 596, "{report:?}");
    let stats = sim.stats();
    assert_eq!(stats.rate_limited, 0, "no -32");
    assert!(
        stats.max_requests_in_window <= 100,
        "{}",
        stats.max_requests_in_window
    );
}

#[tokio::test]
async fn under_server_errors_and_timeouts_every_recipient_ends_final_and_none_is_lost() {
    // The reliability suite's Zalo part: 10 % 5xx, 5 % timeouts, a burst of -32, and the access
    // token revoked in the middle.
    let faults = Faults {
        server_error_share: 0.10,
        timeout_share: 0.05,
        timeout_hang: Duration::from_millis(600),
        ..Faults::default()
    };
    let (sim, _db, _dir, daemon, due) = broadcast_setup(
        800,
        SimConfig {
            faults: faults.clone(),
            seed: 11,
            ..SimConfig::default()
        },
        |c| ZaloConfig {
            timeout_ms: 250,
            // After a -32 the client waits for the window to turn: keep the window short here.
            rate_window_ms: 200,
            ..c
        },
        "urgent",
    )
    .await;
    // The burst of -32 comes once the followers are synced, in the middle of the sends.
    sim.set_faults(Faults {
        rate_limit_burst: 20,
        ..faults
    });
    // Tick, then move the clock past the backoff, until nothing is left to send.
    let mut now = due;
    for round in 0..12 {
        daemon.clock.set(now);
        daemon.tick(now, &|| false).await.expect("tick");
        if round == 0 {
            sim.revoke_access_tokens();
        }
        now += SignedDuration::from_mins(30);
    }
    let by_state = states(&daemon.store).await;
    let non_final: usize = ["planned", "retrying", "sending"]
        .iter()
        .filter_map(|s| by_state.get(*s))
        .map(|n| *n as usize)
        .sum();
    assert_eq!(non_final, 0, "{by_state:?}");
    let rows = sqlx::query(
        "SELECT target, state, provider_message_id, possible_duplicate FROM deliveries",
    )
    .fetch_all(daemon.store.pool())
    .await
    .expect("rows");
    assert_eq!(rows.len(), 800);
    let mut received: HashMap<String, Vec<String>> = HashMap::new();
    for m in sim.messages() {
        received
            .entry(m.to.clone())
            .or_default()
            .push(m.message_id.clone());
    }
    let mut duplicates = 0;
    for r in &rows {
        let target: String = r.get("target");
        let state: String = r.get("state");
        let flagged = r.get::<i64, _>("possible_duplicate") != 0;
        let got = received.get(&target).map(Vec::len).unwrap_or(0);
        if state == "sent" {
            // Not lost: what the ledger calls sent, Zalo has, under the recorded id.
            let id: String = r.get("provider_message_id");
            assert!(
                received.get(&target).is_some_and(|ids| ids.contains(&id)),
                "{target}: sent but not at Zalo"
            );
        } else {
            assert_eq!(state, "failed", "{target}");
        }
        if got > 1 {
            duplicates += 1;
            assert!(
                flagged,
                "{target}: received {got} times without a possible-duplicate flag"
            );
        }
    }
    let stats = sim.stats();
    assert!(stats.server_errors > 0 && stats.timeouts > 0, "{stats:?}");
    assert!(stats.rate_limited > 0, "the burst answered -32: {stats:?}");
    // Every duplicate is a retried timeout: at most one per timeout the simulator produced.
    assert!(
        duplicates as u64 <= stats.timeouts,
        "{duplicates} > {}",
        stats.timeouts
    );
    println!(
        "reliability (Zalo: 10% 5xx, 5% timeouts, a -32 burst, token revoked): lost 0, duplicates {duplicates} (bound: timeouts {}, each flagged), non-final {non_final}; sent {:?}, failed {:?}, refreshes {}",
        stats.timeouts,
        by_state.get("sent"),
        by_state.get("failed"),
        stats.token_refreshes
    );
}

#[tokio::test]
async fn a_long_text_cut_off_by_the_rate_limit_resumes_at_the_part_that_failed() {
    // Zalo takes 7 calls per half second here; the village groups' and the follower's deliveries
    // of a 3-part text need twice that. Each round sends what the window allows; a delivery stopped at
    // its second or third part carries on from there at its retry, and nobody gets a part twice.
    let (sim, _db, dir, daemon, due) = broadcast_setup(
        1,
        SimConfig {
            rate_limit: 7,
            rate_window: Duration::from_millis(500),
            ..SimConfig::default()
        },
        |c| ZaloConfig {
            rate_window_ms: 100,
            ..c
        },
        "urgent",
    )
    .await;
    let paragraph =
        "Bà con chú ý chằng chống nhà cửa, không ra sông suối khi có mưa lớn. ".repeat(10);
    let long = vec![paragraph; 5].join("\n\n");
    std::fs::write(
        dir.path().join("templates/general.tera"),
        format!("{{{{ title }}}}\n\n{long}"),
    )
    .expect("template");
    daemon.load_all(due).await.expect("reload");
    let mut now = due;
    for _ in 0..6 {
        daemon.clock.set(now);
        daemon.tick(now, &|| false).await.expect("tick");
        now += SignedDuration::from_mins(30);
        tokio::time::sleep(Duration::from_millis(600)).await;
    }
    let by_state = states(&daemon.store).await;
    let total: i64 = by_state.values().sum();
    assert!(total >= 4, "{by_state:?}");
    assert_eq!(by_state.get("sent"), Some(&total), "{by_state:?}");
    let mut parts: HashMap<(String, String), usize> = HashMap::new();
    for m in sim.messages() {
        let part = m.text.split(' ').next().unwrap_or_default().to_string();
        *parts.entry((m.to.clone(), part)).or_default() += 1;
    }
    assert_eq!(parts.len(), 3 * total as usize, "{parts:?}");
    assert!(parts.values().all(|n| *n == 1), "a part twice: {parts:?}");
    // Each delivery keeps the ids of all its parts, in order.
    let ids = texts(&daemon.store, "SELECT provider_message_id FROM deliveries").await;
    assert!(ids.iter().all(|i| i.split(',').count() == 3), "{ids:?}");
    // And the limit did cut texts off, without those refusals counting as attempts.
    let limited = answered(&sim, -32);
    assert!(
        limited > 0,
        "every text went out at once; the test tests nothing"
    );
    let attempts = scalar(&daemon.store, "SELECT MAX(attempts) FROM deliveries").await;
    assert_eq!(attempts, 1, "a rate-limit refusal is not an attempt");
}

#[tokio::test]
async fn a_refused_refresh_never_replaces_good_tokens() {
    let sim = start_sim(SimConfig::default()).await;
    let db = support::sqlite();
    let store = db.store().await;
    let ch = channel(&sim, &store, "n1", zalo_config(&sim)).await;
    let before = stored(&store).await;
    // Spend the stored refresh token behind loa's back (as a second, misconfigured integration
    // would): Zalo then answers loa's refresh with an error body, with HTTP 200.
    spend_refresh_token(&sim, &before.refresh_token).await;
    let err = ch
        .tokens
        .rejected(before.generation)
        .await
        .expect_err("refused");
    assert!(err.to_string().contains("-14002"), "{err}");
    let after = stored(&store).await;
    assert_eq!(
        (
            after.access_token.as_str(),
            after.refresh_token.as_str(),
            after.generation
        ),
        (
            before.access_token.as_str(),
            before.refresh_token.as_str(),
            before.generation
        ),
        "the error body replaced nothing"
    );
    assert!(after.last_error.unwrap_or_default().contains("-14002"));
    assert_eq!(after.refreshing_by, None, "the lease is released");
}

#[tokio::test]
async fn a_refused_refresh_is_not_asked_again_for_every_send_and_a_new_authorisation_is_taken_at_once()
 {
    let sim = one_follower_sim().await;
    let db = support::sqlite();
    let store = db.store().await;
    let clock = Clock::manual(Timestamp::now());
    let ch = channel_at(&sim, &store, "n1", zalo_config(&sim), clock.clone()).await;
    let before = stored(&store).await;
    // In use, as in a running daemon.
    ch.tokens.access().await.expect("token");
    // The refresh token spent behind loa's back, and the access token refused: each send of a
    // fan-out asks for a new one.
    spend_refresh_token(&sim, &before.refresh_token).await;
    let spent_by_the_test = token_calls(&sim);
    for _ in 0..20 {
        assert!(ch.tokens.rejected(before.generation).await.is_err());
    }
    assert_eq!(
        token_calls(&sim) - spent_by_the_test,
        1,
        "one refusal, not one per send"
    );
    // Sends meanwhile wait for the operator to mend it (a spent refresh token), without
    // spending an attempt (counted, a fan-out's messages failed while the operator authorised
    // the OA again), and without a request: the refused access token is not tried again.
    sim.revoke_access_tokens();
    let notice = msg(TargetKind::User, "1000000000000000001", "Họp");
    let send = || ch.send(&notice);
    for _ in 0..5 {
        match send().await {
            Err(SendError::NotNow { code, after, .. }) => {
                assert_eq!(code, "-216");
                // Due again at once, for another daemon: this one claims nothing until its
                // next probe, minutes away.
                assert!(after.is_zero(), "{after:?}");
                let paused = ch.paused_until().expect("paused");
                assert!(
                    paused > clock.now() + SignedDuration::from_mins(5),
                    "{paused}"
                );
            }
            other => panic!("{other:?}"),
        }
    }
    let refused = sim
        .stats()
        .answers_by_error
        .get(&-216)
        .copied()
        .unwrap_or(0);
    assert_eq!(refused, 0);
    assert_eq!(token_calls(&sim) - spent_by_the_test, 1);
    // The operator authorises the OA again (`loa zalo auth` writes a new pair): the next probe
    // takes it, and the messages go.
    let token = new_pair(&sim, &store, clock.now(), SignedDuration::from_hours(25)).await;
    clock.set(clock.now() + SignedDuration::from_mins(10));
    assert_eq!(code(&send().await), "sent");
    assert_eq!(code(&send().await), "sent");
    assert_eq!(stored(&store).await.access_token, token);
    // And a send that meets a refused access token takes a newer pair at once.
    let access = ch
        .tokens
        .rejected(before.generation)
        .await
        .expect("the new pair");
    assert_eq!(access.token, token);
}

#[tokio::test]
async fn a_token_shorter_lived_than_the_margin_is_not_refreshed_on_every_use() {
    let sim = start_sim(SimConfig::default()).await;
    let db = support::sqlite();
    let store = db.store().await;
    // A one-hour token under the default six-hour margin.
    new_pair(
        &sim,
        &store,
        Timestamp::now(),
        SignedDuration::from_hours(1),
    )
    .await;
    let ch = channel_on(&sim, &store, Clock::System).await;
    for _ in 0..20 {
        ch.tokens.access().await.expect("access");
    }
    assert_eq!(token_calls(&sim), 0, "used until half its life is over");
}

#[tokio::test]
async fn an_idle_daemon_keeps_its_token_alive() {
    let sim = start_sim(SimConfig::default()).await;
    let db = support::sqlite();
    let store = db.store().await;
    let clock = Clock::manual(Timestamp::now());
    let ch = channel_on(&sim, &store, clock.clone()).await;
    let now = clock.now();
    new_pair(&sim, &store, now, SignedDuration::from_hours(25)).await;
    let before = sim.stats().token_refreshes;
    let task = tokio::spawn(
        ch.tokens
            .clone()
            .keep_alive(std::time::Duration::from_millis(20)),
    );
    ch.tokens.access().await.expect("fresh");
    // A day passes with nothing to send: the token is refreshed all the same.
    clock.set(now + SignedDuration::from_hours(24));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while sim.stats().token_refreshes == before {
        assert!(std::time::Instant::now() < deadline, "never refreshed");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    task.abort();
    assert_eq!(sim.stats().token_refreshes, before + 1);
}

#[tokio::test]
async fn a_new_pair_the_database_refuses_at_first_is_kept() {
    let sim = start_sim(SimConfig::default()).await;
    let db = support::sqlite();
    let store = db.store().await;
    let ch = channel(&sim, &store, "n1", zalo_config(&sim)).await;
    let before = stored(&store).await;
    // The database refuses to store a new pair for a moment (a full disk, a fail-over), after
    // Zalo has already spent the old refresh token.
    sqlx::query(
        "CREATE TRIGGER refuse_tokens BEFORE UPDATE OF access_token ON zalo_tokens
         BEGIN SELECT RAISE(ABORT, 'disk full'); END",
    )
    .execute(store.pool())
    .await
    .expect("trigger");
    let lifted = {
        let store = store.clone();
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(1_500)).await;
            sqlx::query("DROP TRIGGER refuse_tokens")
                .execute(store.pool())
                .await
                .expect("drop trigger");
        })
    };
    let access = ch
        .tokens
        .rejected(before.generation)
        .await
        .expect("the new pair is kept until the database takes it");
    lifted.await.expect("lifted");
    let after = stored(&store).await;
    assert_eq!(after.access_token, access.token);
    assert_ne!(after.refresh_token, before.refresh_token);
    assert_eq!(after.generation, before.generation + 1);
    // The stored refresh token is the live one: the OA is not locked out.
    let again = ch
        .tokens
        .rejected(access.generation)
        .await
        .expect("refreshes again");
    assert_eq!(again.generation, access.generation + 1);
    assert_eq!(sim.stats().refresh_reuse_rejections, 0);
}

#[tokio::test]
async fn a_failed_early_refresh_waits_instead_of_retrying_on_every_send() {
    let sim = start_sim(SimConfig::default()).await;
    let db = support::sqlite();
    let store = db.store().await;
    // A 25-hour token, five hours before it expires: inside the six-hour margin, so each use
    // wants a refresh.
    let now = Timestamp::now();
    let expires = now + SignedDuration::from_hours(25);
    new_pair(&sim, &store, now, SignedDuration::from_hours(25)).await;
    let clock = Clock::manual(now);
    let ch = channel_on(&sim, &store, clock.clone()).await;
    ch.tokens.access().await.expect("fresh");
    clock.set(expires - SignedDuration::from_hours(5));
    let before = stored(&store).await;
    // The refresh token spent behind loa's back: every refresh is refused.
    spend_refresh_token(&sim, &before.refresh_token).await;
    let refused = sim.stats().refresh_reuse_rejections;
    let asks: Vec<_> = (0..20).map(|_| ch.tokens.access()).collect();
    for access in futures_util::future::join_all(asks).await {
        let access = access.expect("the current token still works");
        assert_eq!(access.token, before.access_token);
    }
    for _ in 0..20 {
        ch.tokens.access().await.expect("still works");
    }
    assert_eq!(
        sim.stats().refresh_reuse_rejections - refused,
        1,
        "one refresh tried, then a pause"
    );
}

/// A simulator whose one follower, 1000000000000000004, last wrote to the OA 8 days ago (outside
/// the 7-day window), with these ZNS templates.
async fn stale_follower_sim(zns_templates: Vec<ZnsTemplate>) -> Sim {
    let mut stale = user("1000000000000000004");
    stale.last_interaction = Timestamp::now() - SignedDuration::from_hours(8 * 24);
    start_sim(SimConfig {
        population: Population {
            users: vec![stale],
            ..Population::default()
        },
        zns_templates,
        ..SimConfig::default()
    })
    .await
}

#[tokio::test]
async fn a_long_text_cut_off_by_phone_carries_on_by_phone() {
    // A head outside Zalo's 7-day window, reached by phone: the first part of a long text went
    // by ZNS, then a night ban cut it off. The retry tries the Zalo id first, is refused (-230),
    // and sends the rest by phone after the part already in.
    let sim = stale_follower_sim(SimConfig::default().zns_templates).await;
    let db = support::sqlite();
    let store = db.store().await;
    let ch = channel(&sim, &store, "n1", zalo_config(&sim)).await;
    let paragraph =
        "Bà con chú ý chằng chống nhà cửa, không ra sông suối khi có mưa lớn. ".repeat(10);
    let text = vec![paragraph; 3].join("\n\n");
    let retry = Outgoing {
        fallback: Some("84912345678"),
        sent_parts: Some("zns-part-1"),
        ..msg(TargetKind::User, "1000000000000000004", &text)
    };
    let sent = ch.send(&retry).await.expect("the rest by phone");
    let ids: Vec<&str> = sent.message_id.split(',').collect();
    // A text that may go by phone is split to fit the template's 400-character parameter,
    // whichever way it goes: about 2,100 characters make six parts.
    let n = ids.len();
    assert_eq!(n, 6, "{ids:?}");
    assert_eq!(ids[0], "zns-part-1");
    let zns: Vec<String> = sim.messages().iter().map(|m| m.text.clone()).collect();
    assert_eq!(zns.len(), n - 1, "all but the first part: {zns:?}");
    for (i, text) in zns.iter().enumerate() {
        assert!(text.contains(&format!("({}/{n}) ", i + 2)), "{zns:?}");
    }
}

#[tokio::test]
async fn a_long_text_by_phone_goes_in_parts_the_template_takes() {
    // The simulator refuses a ZNS parameter longer than the template allows (-112), as Zalo
    // does; loa splits a text for a phone to `zns_text_max`. A head outside the window gets
    // the whole text by phone, in parts, each accepted.
    let template = ZnsTemplate::parse("loa-announcement:content=300").expect("spec");
    let sim = stale_follower_sim(vec![template]).await;
    let db = support::sqlite();
    let store = db.store().await;
    let text = "Bà con chú ý chằng chống nhà cửa, không ra sông suối khi có mưa lớn. ".repeat(12);
    assert!(text.chars().count() > 800);
    let head = Outgoing {
        fallback: Some("84912345678"),
        ..msg(TargetKind::User, "1000000000000000004", &text)
    };
    // The template's parameter takes 300; loa, left at its default 400, sends a part too long.
    let loose = channel(&sim, &store, "n1", zalo_config(&sim)).await;
    let refused = loose.send(&head).await;
    assert_eq!(code(&refused), "final -112", "{refused:?}");
    match &refused {
        Err(SendError::Final { reason, .. }) => {
            assert!(reason.contains("template data invalid"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(answered(&sim, -112), 1);
    // Told the template's 300: every part fits, the head gets the whole text.
    let fitted = ZaloConfig {
        zns_text_max: 300,
        ..zalo_config(&sim)
    };
    let ch = channel(&sim, &store, "n1", fitted).await;
    let sent = ch.send(&head).await.expect("by phone in parts");
    assert!(sent.note.is_some_and(|n| n.contains("ZNS")));
    let parts: Vec<String> = sim.messages().iter().map(|m| m.text.clone()).collect();
    let n = parts.len();
    assert!(n >= 3, "{parts:?}");
    assert_eq!(sent.message_id.split(',').count(), n);
    for (i, p) in parts.iter().enumerate() {
        let data: serde_json::Value = serde_json::from_str(p).expect("template_data");
        let content = data["content"].as_str().expect("content");
        assert!(content.chars().count() <= 300, "{content}");
        assert!(
            content.starts_with(&format!("({}/{n}) ", i + 1)),
            "{content}"
        );
    }
    // The same head on Zalo, inside the window: the same parts, so that a text cut off on Zalo
    // carries on by phone where it stopped.
    let mut fresh = user("1000000000000000005");
    fresh.phone = Some("84912345679".into());
    sim.set_user(fresh);
    let before = sim.messages().len();
    let on_zalo = Outgoing {
        fallback: Some("84912345679"),
        ..msg(TargetKind::User, "1000000000000000005", &text)
    };
    let sent = ch.send(&on_zalo).await.expect("by cs");
    assert!(sent.note.is_none());
    assert_eq!(sim.messages().len() - before, n);
    // Without a phone to fall back on, Zalo's own limit: one message.
    let plain = msg(TargetKind::User, "1000000000000000005", &text);
    ch.send(&plain).await.expect("by cs");
    assert_eq!(sim.messages().len() - before, n + 1);
}

#[tokio::test]
async fn a_template_without_loas_parameter_is_refused_for_each_phone_not_retried() {
    // The approved template names its parameter otherwise than `zns_text_param`.
    let sim = start_sim(SimConfig {
        zns_templates: vec![ZnsTemplate::parse("loa-announcement:noi_dung").expect("spec")],
        ..SimConfig::default()
    })
    .await;
    let db = support::sqlite();
    let store = db.store().await;
    let ch = channel(&sim, &store, "n1", zalo_config(&sim)).await;
    let r = ch
        .send(&msg(TargetKind::Phone, "84912345678", "Mời bà con họp."))
        .await;
    assert_eq!(code(&r), "final -112", "{r:?}");
    let fixed = ZaloConfig {
        zns_text_param: "noi_dung".into(),
        ..zalo_config(&sim)
    };
    let ch = channel(&sim, &store, "n1", fixed).await;
    let r = ch
        .send(&msg(TargetKind::Phone, "84912345678", "Mời bà con họp."))
        .await;
    assert_eq!(code(&r), "sent", "{r:?}");
}

#[tokio::test]
async fn a_long_text_goes_in_numbered_parts() {
    let (sim, _db, ch) = one_follower_channel().await;
    let paragraph =
        "Bà con chú ý chằng chống nhà cửa, không ra sông suối khi có mưa lớn. ".repeat(10);
    let text = vec![paragraph; 7].join("\n\n");
    assert!(text.chars().count() > 4000);
    let sent = ch
        .send(&msg(TargetKind::User, "1000000000000000001", &text))
        .await
        .expect("sent");
    // Seven paragraphs of 700 characters: two whole paragraphs fit in a part, so four parts.
    let messages = sim.messages();
    assert_eq!(messages.len(), 4);
    assert_eq!(sent.message_id.split(',').count(), 4);
    for (i, m) in messages.iter().enumerate() {
        assert!(m.text.starts_with(&format!("({}/4) ", i + 1)), "{}", m.text);
        assert!(m.text.chars().count() <= 2000);
        assert!(sent.message_id.contains(&m.message_id));
    }
}

#[tokio::test]
async fn the_zns_quota_zalo_reports_is_kept_for_the_operator() {
    // Each ZNS Zalo accepts says how many the OA may send a day and how many are left; the
    // channel keeps the latest in the database, without holding up the send, where `loa zalo
    // status`, the dashboard and /metrics read it. Once spent, Zalo refuses phone messages
    // until midnight (-144), and they wait for it.
    let sim = start_sim(SimConfig {
        zns_daily_quota: 4,
        ..SimConfig::default()
    })
    .await;
    let db = support::sqlite();
    let store = db.store().await;
    let ch = channel(&sim, &store, "n1", zalo_config(&sim)).await;
    assert_eq!(store.zns_quota("default").await.expect("read"), None);
    let before = Timestamp::now();
    for n in 0..3 {
        let phone = format!("8491234560{n}");
        ch.send(&msg(TargetKind::Phone, &phone, "Mời bà con họp."))
            .await
            .expect("by phone");
    }
    let kept = async {
        loop {
            match store.zns_quota("default").await.expect("read") {
                Some(q) if q.remaining == 1 => return q,
                _ => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    };
    let q = tokio::time::timeout(Duration::from_secs(5), kept)
        .await
        .expect("the last report written");
    assert_eq!((q.daily, q.node.as_str()), (4, "n1"));
    assert!(q.seen_at >= before && q.seen_at <= Timestamp::now());
    // The last one of the day, then a refusal until midnight, which reports nothing.
    ch.send(&msg(TargetKind::Phone, "84912345603", "Mời bà con họp."))
        .await
        .expect("the day's last");
    let spent = ch
        .send(&msg(TargetKind::Phone, "84912345604", "Mời bà con họp."))
        .await;
    assert!(
        matches!(&spent, Err(SendError::NotNow { code, .. }) if code == "-144"),
        "{spent:?}"
    );
    let spent = async {
        while store
            .zns_quota("default")
            .await
            .expect("read")
            .map(|q| q.remaining)
            != Some(0)
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(5), spent)
        .await
        .expect("none left, recorded");
}
