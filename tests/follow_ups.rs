//! End to end with the simulator: a storm warning to the five village groups of a commune asks
//! the heads to confirm within an hour. Two heads confirm by reply, two by their signed link,
//! and one never answers: an hour later they alone are reminded, an hour after that the leader is
//! told which village is missing. Forged and expired links are refused; nothing happens twice;
//! `/metrics` counts all of it.

mod support;

use std::sync::Arc;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use loa::clock::Clock;
use loa::confirm::link::Links;
use loa::daemon::Daemon;
use loa::deliver::select::AnyChannel;
use loa::deliver::zalo::channel::ZaloChannel;
use loa::deliver::zalo::config::Secret;
use loa::ledger::Store;
use loa::sim::{GenerateSpec, People, Population};
use loa::web::{WEBHOOK_PATH, WebState, ZaloKeys};
use support::zalo::{APP, SECRET, quick_people, settings, start_sim, wait_count, zalo_for};

/// The commune's villages as the simulator generated them: (village id, name, head's user id).
struct Village {
    id: String,
    name: String,
    head: String,
}

fn villages(population: &Population) -> Vec<Village> {
    population
        .groups
        .iter()
        .enumerate()
        .map(|(i, g)| {
            let head = population
                .head_of(&g.name)
                .expect("each generated village has a head");
            Village {
                id: format!("v{i}"),
                name: g.name.clone(),
                head: head.user_id.clone(),
            }
        })
        .collect()
}

/// The HTTP server with webhooks and confirm links; returns its base URL.
async fn web(
    store: &Store,
    listener: tokio::net::TcpListener,
    links: Links,
    names: &[Village],
    thanks: Arc<AnyChannel>,
) {
    let wake = Arc::new(tokio::sync::Notify::new());
    let state = Arc::new(WebState {
        store: store.clone(),
        commune: "default".into(),
        zalo: Some(ZaloKeys {
            app_id: APP.into(),
            oa_secret: Secret::new(SECRET),
        }),
        max_age: Duration::from_secs(600),
        wake: wake.clone(),
        health: Default::default(),
        links: Some(links),
        villages: names
            .iter()
            .map(|v| (v.id.clone(), v.name.clone()))
            .collect(),
        tz: jiff::tz::TimeZone::get("Asia/Ho_Chi_Minh").expect("tz"),
        dashboard: None,
    });
    let ctx =
        loa::confirm::events::Context::new(&loa::config::ConfirmConfig::default(), Some(thanks));
    tokio::spawn(loa::confirm::events::process(
        store.clone(),
        "default".into(),
        Arc::new(ctx),
        wake,
    ));
    let router = loa::web::router(state, 64 * 1024);
    tokio::spawn(loa::web::serve(listener, router, std::future::pending()));
}

/// The confirm link on `site` in the last message to `user` that has one.
fn link_for(sim: &loa::sim::Sim, user: &str, site: &str) -> String {
    sim.messages()
        .iter()
        .rev()
        .filter(|m| m.to == user)
        .find_map(|m| loa::confirm::link::find_url(&m.text, site))
        .unwrap_or_else(|| panic!("no link sent to {user}"))
        .to_string()
}

async fn get(url: &str) -> (u16, String) {
    let r = reqwest::get(url).await.expect("get");
    (r.status().as_u16(), r.text().await.unwrap_or_default())
}

async fn post(url: &str) -> (u16, String) {
    let r = reqwest::Client::new().post(url).send().await.expect("post");
    (r.status().as_u16(), r.text().await.unwrap_or_default())
}

async fn count(store: &Store, sql: &str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(store.pool())
        .await
        .expect(sql)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heads_confirm_by_reply_and_link_the_silent_one_is_reminded_then_escalated() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let metrics = loa::web::metrics::install().expect("metrics recorder");
    let db = support::sqlite();
    let store = db.store().await;
    let mut population = Population::generate(&GenerateSpec {
        villages: 5,
        followers: 40,
        group_share: 1.0,
        stale_share: 0.0,
        non_follower_share: 0.0,
        seed: 21,
    });
    let vs = villages(&population);
    // Heads of villages 2 and 3 confirm by link, the head of village 4 never answers.
    for u in population.users.iter_mut() {
        if vs[2..].iter().any(|v| v.head == u.user_id) {
            u.silent = true;
        }
    }
    let leader = population
        .users
        .iter()
        .find(|u| !u.head)
        .expect("a follower to be the chairman")
        .user_id
        .clone();
    let people = People {
        seen_share: 1.0,
        ..quick_people()
    };
    let sim = start_sim(population.clone(), people).await;
    let config = zalo_for(&sim, &store).await;
    let open = || {
        ZaloChannel::open(
            config.clone(),
            store.clone(),
            "default",
            "n1",
            Clock::System,
        )
    };
    let web_listener = loa::listen::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", web_listener.local_addr().expect("addr"));
    // Links live half an hour, shorter than the hour heads have to confirm in: the reminder's
    // link must still work when the reminder goes out.
    let links = Links::new(b"test commune secret", &base, SignedDuration::from_mins(30));
    let thanks = Arc::new(AnyChannel::Zalo(Box::new(open().await.expect("channel"))));
    web(&store, web_listener, links.clone(), &vs, thanks).await;
    sim.set_webhook_url(Some(format!("{base}{WEBHOOK_PATH}")));

    // The commune: five villages, each with its Zalo group and its head; the chairman.
    let dir = tempfile::tempdir().expect("tempdir");
    let ann = dir.path().join("announcements");
    std::fs::create_dir_all(&ann).expect("dir");
    std::fs::create_dir_all(dir.path().join("templates")).expect("dir");
    let mut commune = String::from("commune: Xã Thử\nvillages:\n");
    for (v, g) in vs.iter().zip(&population.groups) {
        commune.push_str(&format!(
            "  - {{ id: {}, name: \"{}\", zalo_group: \"{}\", heads: [{{ name: \"Trưởng {}\", zalo_user: \"{}\" }}] }}\n",
            v.id, v.name, g.group_id, v.name, v.head
        ));
    }
    commune.push_str(&format!(
        "leaders:\n  - {{ id: chu-tich, name: Chủ tịch xã, zalo_user: \"{leader}\" }}\n"
    ));
    std::fs::write(ann.join("commune.yaml"), commune).expect("write");
    let at = support::zalo::storm_warning(dir.path(), "{{ title }}: bão số 13 vào đêm nay.");
    let now = Timestamp::now();
    let clock = Clock::manual(now);
    let daemon = Daemon::new(
        store.clone(),
        open().await.expect("channel"),
        settings(dir.path()),
    )
    .with_clock(clock.clone())
    .with_links(links.clone());
    daemon.load_all(now).await.expect("load");
    clock.set(at);
    support::zalo::until(at).await;

    // The send: five groups, and each head their own request with their link.
    daemon.tick(at, &|| false).await.expect("tick");
    assert_eq!(
        count(
            &store,
            "SELECT COUNT(*) FROM confirmations WHERE state = 'pending'"
        )
        .await,
        5
    );
    let sent = sim.messages();
    assert_eq!(sent.iter().filter(|m| m.kind == "group").count(), 5);
    for v in &vs {
        let own: Vec<_> = sent.iter().filter(|m| m.to == v.head).collect();
        assert_eq!(own.len(), 1, "one request for {}", v.name);
        assert!(
            own[0].text.contains("Xin ông/bà xác nhận đã nhận"),
            "{}",
            own[0].text
        );
    }

    // Two heads reply; the simulator's webhooks carry the replies.
    wait_count(
        &store,
        "SELECT COUNT(*) FROM confirmations WHERE state = 'confirmed' AND via = 'reply'",
        2,
        20,
        &sim,
    )
    .await;

    // Two heads open their link and tap the button.
    for v in &vs[2..4] {
        let url = link_for(&sim, &v.head, &base);
        let (status, page) = get(&url).await;
        assert_eq!(status, 200, "{page}");
        assert!(page.contains("Tôi đã nhận thông báo"), "{page}");
        assert!(page.contains(&v.name), "the page names the village: {page}");
        assert!(
            page.contains("bão số 13"),
            "the page quotes the message: {page}"
        );
        let (status, page) = post(&url).await;
        assert_eq!(status, 200, "{page}");
        assert!(page.contains("Đã xác nhận. Cảm ơn ông/bà!"), "{page}");
        // A second tap only says it is done.
        let (status, page) = post(&url).await;
        assert_eq!(status, 200);
        assert!(page.contains("đã được xác nhận"), "{page}");
    }
    assert_eq!(
        count(
            &store,
            "SELECT COUNT(*) FROM confirmations WHERE via = 'link'"
        )
        .await,
        2
    );

    // The silent head's link, altered or expired, confirms nothing.
    let silent = link_for(&sim, &vs[4].head, &base);
    let mut forged = silent.clone();
    let last = forged.pop().expect("non-empty");
    forged.push(if last == 'A' { 'B' } else { 'A' });
    let (status, page) = post(&forged).await;
    assert_eq!(status, 400);
    assert!(page.contains("Liên kết không hợp lệ"), "{page}");
    let key: String =
        sqlx::query_scalar("SELECT link_key FROM confirmations WHERE village_id = 'v4'")
            .fetch_one(store.pool())
            .await
            .expect("key");
    let expired = links.url(&key, Timestamp::now() - SignedDuration::from_mins(1));
    let (status, page) = post(&expired).await;
    assert_eq!(status, 410);
    assert!(page.contains("Liên kết đã hết hạn"), "{page}");
    let (status, _) = get(&format!("{base}/c/garbage")).await;
    assert_eq!(status, 400);
    assert_eq!(
        count(
            &store,
            "SELECT COUNT(*) FROM confirmations WHERE state = 'pending'"
        )
        .await,
        1
    );

    // Just before `within`: nothing; at `within`: the silent head alone is reminded, once.
    daemon
        .tick(at + SignedDuration::from_mins(59), &|| false)
        .await
        .expect("tick");
    assert_eq!(
        count(
            &store,
            "SELECT COUNT(*) FROM occurrences WHERE parent_id IS NOT NULL"
        )
        .await,
        0
    );
    let reminded_at = at + SignedDuration::from_hours(1);
    clock.set(reminded_at);
    daemon.tick(reminded_at, &|| false).await.expect("tick");
    daemon
        .tick(reminded_at + SignedDuration::from_mins(1), &|| false)
        .await
        .expect("tick");
    let reminders: Vec<_> = sim
        .messages()
        .into_iter()
        .filter(|m| m.text.starts_with("Nhắc lại"))
        .collect();
    assert_eq!(reminders.len(), 1, "{reminders:?}");
    assert_eq!(reminders[0].to, vs[4].head);
    assert!(
        reminders[0].text.contains("/c/"),
        "the reminder carries the link"
    );
    assert!(
        reminders[0].text.contains("bão số 13"),
        "and the message again"
    );
    let reminder_link = loa::confirm::link::find_url(&reminders[0].text, &base).expect("link");
    let token = reminder_link.rsplit('/').next().expect("token");
    links
        .verify(token, reminded_at + SignedDuration::from_mins(1))
        .expect("the reminder's link works when the reminder arrives");
    assert_eq!(
        count(
            &store,
            "SELECT COUNT(*) FROM confirmations WHERE reminded_at IS NOT NULL"
        )
        .await,
        1
    );

    // An hour later: the chairman is told that village 4 has not confirmed, once.
    let escalated_at = at + SignedDuration::from_hours(2);
    clock.set(escalated_at);
    daemon.tick(escalated_at, &|| false).await.expect("tick");
    daemon
        .tick(escalated_at + SignedDuration::from_mins(5), &|| false)
        .await
        .expect("tick");
    let escalations: Vec<_> = sim
        .messages()
        .into_iter()
        .filter(|m| m.text.starts_with("Báo cáo xác nhận"))
        .collect();
    assert_eq!(escalations.len(), 1, "{escalations:?}");
    assert_eq!(escalations[0].to, leader);
    let text = &escalations[0].text;
    assert!(text.contains("1 thôn chưa xác nhận"), "{text}");
    assert!(
        text.contains(&format!("- {}: Trưởng {}", vs[4].name, vs[4].name)),
        "{text}"
    );
    for v in &vs[..4] {
        assert!(
            !text.contains(&format!("- {}:", v.name)),
            "{} confirmed: {text}",
            v.name
        );
    }
    assert!(text.contains("đã nhắc lúc"), "{text}");
    let follow_ups: Vec<(i64, String)> = sqlx::query_as(
        "SELECT o.rule, d.state FROM occurrences o JOIN deliveries d ON d.occurrence_id = o.id
         WHERE o.parent_id IS NOT NULL ORDER BY o.rule DESC",
    )
    .fetch_all(store.pool())
    .await
    .expect("follow-ups");
    assert_eq!(
        follow_ups.iter().map(|(r, _)| *r).collect::<Vec<_>>(),
        vec![-1, -2],
        "one reminder, one escalation, each with one delivery"
    );
    assert!(
        follow_ups
            .iter()
            .all(|(_, s)| s != "planned" && s != "failed"),
        "{follow_ups:?}"
    );

    // `loa report` shows exactly that: one send, four of five heads confirmed (two by reply, two
    // by link), the fifth reminded and escalated, each follow-up sent once.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_loa"))
        .args(["report", "bao", "--format", "json", "--database", &db.url])
        .current_dir(dir.path())
        .output()
        .expect("loa report");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let sends = report["sends"].as_array().expect("sends");
    assert_eq!(
        sends.len(),
        1,
        "follow-ups are not sends of their own: {report}"
    );
    let send = &sends[0];
    let total = &send["total"];
    assert_eq!(
        (
            &total["targeted"],
            &total["sent"],
            &total["failed"],
            &total["pending"]
        ),
        (&10.into(), &10.into(), &0.into(), &0.into()),
        "5 groups and 5 heads' own requests: {total}"
    );
    assert_eq!(
        (&total["heads_asked"], &total["heads_confirmed"]),
        (&5.into(), &4.into())
    );
    let confirmations = send["confirmations"].as_array().expect("confirmations");
    let via = |how: &str| confirmations.iter().filter(|c| c["via"] == how).count();
    assert_eq!((via("reply"), via("link")), (2, 2));
    let pending: Vec<_> = confirmations
        .iter()
        .filter(|c| c["state"] == "pending")
        .collect();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0]["village_id"], "v4");
    assert!(!pending[0]["reminded_at"].is_null() && !pending[0]["escalated_at"].is_null());
    let kinds: Vec<&str> = send["follow_ups"]
        .as_array()
        .expect("follow-ups")
        .iter()
        .map(|f| {
            assert_eq!(f["total"]["sent"], 1, "{f}");
            f["kind"].as_str().expect("kind")
        })
        .collect();
    assert_eq!(kinds, ["reminder", "escalation"]);
    for v in send["villages"].as_array().expect("villages") {
        let confirmed = if v["village_id"] == "v4" { 0 } else { 1 };
        assert_eq!(v["heads_confirmed"], confirmed, "{v}");
    }

    // /metrics tells the same story (this file has one test: the process-wide counters are ours).
    let page = metrics.render();
    for line in [
        "loa_confirmations_total{via=\"reply\"} 2",
        "loa_confirmations_total{via=\"link\"} 2",
        "loa_follow_ups_total{stage=\"reminder\"} 1",
        "loa_follow_ups_total{stage=\"escalation\"} 1",
        "loa_sends_total{channel=\"zalo\",outcome=\"sent\"} 12",
    ] {
        assert!(page.lines().any(|l| l == line), "{line} in:\n{page}");
    }
    let (status, scraped) = get(&format!("{base}/metrics")).await;
    assert_eq!(status, 200);
    assert!(scraped.contains("loa_confirmations_pending 1"), "{scraped}");
    assert!(scraped.contains("loa_send_seconds_bucket"), "{scraped}");
}
