//! Zalo's webhooks into loa: every bad request refused with nothing recorded (forged, missing and
//! stale signatures, replays, oversized and malformed bodies), and, end to end with the
//! simulator, receipts and reads moving deliveries forward, replies kept, follows applied.

mod support;

use std::sync::Arc;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use loa::deliver::zalo::config::Secret;
use loa::deliver::zalo::wire::signature;
use loa::ledger::Store;
use loa::web::{WEBHOOK_PATH, WebState, ZaloKeys};
use sqlx::Row as _;

use support::zalo::{APP, SECRET, settings, wait_count, zalo_for};

async fn server(store: &Store, max_body: usize) -> String {
    server_with(store, max_body, None).await
}

async fn server_with(
    store: &Store,
    max_body: usize,
    channel: Option<Arc<loa::deliver::select::AnyChannel>>,
) -> String {
    // The test's own HTTP client (reqwest with rustls, no default provider) needs one.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let wake = Arc::new(tokio::sync::Notify::new());
    let state = Arc::new(WebState {
        store: store.clone(),
        commune: "default".into(),
        zalo: Some(ZaloKeys {
            app_id: APP.into(),
            oa_secret: Secret::new(SECRET),
        }),
        max_age: Duration::from_secs(u64::from(
            loa::config::WebConfig::default().webhook_max_age_secs,
        )),
        wake: wake.clone(),
        health: Default::default(),
        links: None,
        villages: Default::default(),
        tz: jiff::tz::TimeZone::UTC,
        dashboard: None,
    });
    let ctx = loa::confirm::events::Context::new(&loa::config::ConfirmConfig::default(), channel);
    tokio::spawn(loa::confirm::events::process(
        store.clone(),
        "default".into(),
        Arc::new(ctx),
        wake,
    ));
    let listener = loa::listen::bind("127.0.0.1:0").await.expect("bind");
    let url = format!(
        "http://{}{WEBHOOK_PATH}",
        listener.local_addr().expect("addr")
    );
    let router = loa::web::router(state, max_body);
    tokio::spawn(loa::web::serve(listener, router, std::future::pending()));
    url
}

fn event(name: &str, ts: Timestamp, extra: &str) -> (String, String) {
    let ms = ts.as_millisecond().to_string();
    let body = format!(r#"{{"app_id":"{APP}","event_name":"{name}","timestamp":"{ms}"{extra}}}"#);
    (body, ms)
}

async fn post(url: &str, body: &str, sig: Option<String>) -> (u16, String) {
    let mut req = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_string());
    if let Some(sig) = sig {
        req = req.header("X-ZEvent-Signature", sig);
    }
    let resp = req.send().await.expect("post");
    (
        resp.status().as_u16(),
        resp.text().await.unwrap_or_default(),
    )
}

async fn stored(store: &Store) -> i64 {
    sqlx::query("SELECT COUNT(*) AS n FROM webhook_events")
        .fetch_one(store.pool())
        .await
        .expect("count")
        .get::<i64, _>("n")
}

#[tokio::test]
async fn bad_requests_are_refused_and_nothing_is_recorded() {
    let db = support::sqlite();
    let store = db.store().await;
    let url = server(&store, 4096).await;
    let now = Timestamp::now();
    let (body, ms) = event(
        "follow",
        now,
        r#","follower":{"id":"1000000000000000001"},"oa_id":"1""#,
    );
    let good = format!("mac={}", signature(APP, body.as_bytes(), &ms, SECRET));

    // Missing, forged (another secret), and tampered (the body changed after signing).
    assert_eq!(post(&url, &body, None).await.0, 401);
    let forged = format!("mac={}", signature(APP, body.as_bytes(), &ms, "guessed"));
    assert_eq!(post(&url, &body, Some(forged)).await.0, 401);
    let tampered = body.replace("1000000000000000001", "1000000000000000002");
    assert_eq!(post(&url, &tampered, Some(good.clone())).await.0, 401);
    assert_eq!(post(&url, &body, Some("mac=".into())).await.0, 401);
    assert_eq!(post(&url, &body, Some("mac=zz".repeat(40))).await.0, 401);
    // Stale: correctly signed, a day old.
    let (old, old_ms) = event(
        "follow",
        now - SignedDuration::from_hours(24),
        r#","follower":{"id":"1000000000000000001"}"#,
    );
    let old_sig = format!("mac={}", signature(APP, old.as_bytes(), &old_ms, SECRET));
    assert_eq!(post(&url, &old, Some(old_sig)).await.0, 401);
    // Malformed: not JSON; JSON that is not an event (signed all the same).
    assert_eq!(post(&url, "{not json", Some(good.clone())).await.0, 401);
    let not_event = format!(r#"{{"timestamp":"{ms}","hello":1}}"#);
    let sig = format!("mac={}", signature(APP, not_event.as_bytes(), &ms, SECRET));
    assert_eq!(post(&url, &not_event, Some(sig)).await.0, 400);
    // Oversized.
    let (big, big_ms) = event(
        "user_send_text",
        now,
        &format!(
            r#","message":{{"text":"{}","msg_id":"x"}}"#,
            "a".repeat(8000)
        ),
    );
    let big_sig = format!("mac={}", signature(APP, big.as_bytes(), &big_ms, SECRET));
    assert_eq!(post(&url, &big, Some(big_sig)).await.0, 413);
    assert_eq!(stored(&store).await, 0, "nothing recorded");

    // The good one, then its replay: stored once.
    assert_eq!(
        post(&url, &body, Some(good.clone())).await,
        (200, "ok".into())
    );
    assert_eq!(
        post(&url, &body, Some(good)).await,
        (200, "duplicate".into())
    );
    assert_eq!(stored(&store).await, 1);
    // And applied: the follower is known.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while store
        .followers("default")
        .await
        .expect("followers")
        .is_empty()
    {
        assert!(std::time::Instant::now() < deadline, "follow not applied");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn zalos_retries_after_an_outage_are_accepted() {
    // Zalo retries an event with its first body 30 s, 5, 15, 30 and 60 minutes apart: the
    // retries after an outage of the webhook carry a timestamp up to about two hours old.
    let db = support::sqlite();
    let store = db.store().await;
    let url = server(&store, 4096).await;
    let sent = Timestamp::now() - SignedDuration::from_mins(110);
    let (body, ms) = event(
        "user_send_text",
        sent,
        r#","sender":{"id":"1000000000000000001"},"recipient":{"id":"1"},"message":{"text":"đã nhận","msg_id":"retry-1"}"#,
    );
    let sig = format!("mac={}", signature(APP, body.as_bytes(), &ms, SECRET));
    assert_eq!(
        post(&url, &body, Some(sig.clone())).await,
        (200, "ok".into())
    );
    assert_eq!(
        post(&url, &body, Some(sig)).await,
        (200, "duplicate".into())
    );
    assert_eq!(stored(&store).await, 1);
}

#[tokio::test]
async fn receipts_reads_and_replies_from_the_simulator() {
    use loa::clock::Clock;
    use loa::daemon::Daemon;
    use loa::deliver::zalo::channel::ZaloChannel;
    use loa::sim::{Faults, GenerateSpec, People, Population, SimConfig};

    let db = support::sqlite();
    let store = db.store().await;
    let url = server(&store, 64 * 1024).await;
    let population = Population::generate(&GenerateSpec {
        villages: 2,
        followers: 40,
        group_share: 0.0,
        stale_share: 0.0,
        non_follower_share: 0.0,
        seed: 5,
    });
    let people = People {
        receive_delay: Duration::from_millis(20),
        seen_delay: Duration::from_millis(60),
        seen_share: 1.0,
        head_reply_share: 1.0,
        reply_delay: Duration::from_millis(40),
        ..People::default()
    };
    // Zalo's retries and duplicates: every other event sent twice, and out of order.
    let faults = Faults {
        duplicate_webhook_share: 0.5,
        reorder_webhooks: true,
        ..Faults::default()
    };
    let listener = loa::listen::bind("127.0.0.1:0").await.expect("bind");
    let sim = loa::sim::start(
        SimConfig {
            population: population.clone(),
            people,
            faults,
            webhook_url: Some(url),
            ..SimConfig::default()
        },
        listener,
    )
    .await
    .expect("sim");
    let dir = tempfile::tempdir().expect("tempdir");
    let ann = dir.path().join("announcements");
    std::fs::create_dir_all(&ann).expect("dir");
    std::fs::create_dir_all(dir.path().join("templates")).expect("dir");
    let mut commune = String::from("commune: Xã Thử\nvillages:\n");
    for (i, g) in population.groups.iter().enumerate() {
        commune.push_str(&format!("  - {{ id: v{i}, name: \"{}\" }}\n", g.name));
    }
    std::fs::write(ann.join("commune.yaml"), commune).expect("write");
    std::fs::write(dir.path().join("templates/general.tera"), "{{ title }}").expect("write");
    let due = support::local_in(60);
    std::fs::write(
        ann.join("tb.yaml"),
        format!("title: Thông báo\nsend:\n  - at: {due}\n"),
    )
    .expect("write");
    let now = Timestamp::now();
    let config = zalo_for(&sim, &store).await;
    let channel = ZaloChannel::open(config, store.clone(), "default", "n1", Clock::System)
        .await
        .expect("channel");
    let commune_model = loa::announce::load_commune(&ann).expect("commune");
    channel
        .sync_followers(&store, "default", &commune_model, now)
        .await
        .expect("sync");
    let settings = settings(dir.path());
    let clock = Clock::manual(now);
    let daemon = Daemon::new(store.clone(), channel, settings).with_clock(clock.clone());
    daemon.load_all(now).await.expect("load");
    let tz = jiff::tz::TimeZone::get("Asia/Ho_Chi_Minh").expect("tz");
    let at = loa::announce::values::parse_datetime(&due, &tz, true).expect("due");
    clock.set(at);
    let report = daemon.tick(at, &|| false).await.expect("tick");
    // 40 followers, none in a group (the two generated village heads among them).
    assert_eq!(report.sent, 40, "{report:?}");

    // Everyone reads (seen_share 1.0): every delivery ends `seen`, whatever order the events came in.
    wait_count(
        &store,
        "SELECT COUNT(*) FROM deliveries WHERE state = 'seen'",
        40,
        20,
        &sim,
    )
    .await;
    // The heads replied; their texts are kept for staff, once each despite duplicated webhooks.
    wait_count(&store, "SELECT COUNT(*) FROM inbound_messages", 2, 10, &sim).await;
    let stats = sim.stats();
    assert!(stats.webhooks_duplicated > 0, "{stats:?}");
    // Every delivery event went sent → delivered → seen or straight to seen; none went back.
    let back: i64 = sqlx::query(
        "SELECT COUNT(*) AS n FROM delivery_events a JOIN delivery_events b ON a.delivery_id = b.delivery_id
         WHERE a.state = 'seen' AND b.state = 'delivered' AND b.id > a.id",
    )
    .fetch_one(store.pool())
    .await
    .expect("order")
    .get("n");
    assert_eq!(back, 0);
}

#[tokio::test]
async fn heads_confirm_by_reply_and_are_thanked() {
    heads_confirm(false).await;
}

/// Heads who answer in their village's Zalo group (`user_send_group_text`) rather than to the OA.
#[tokio::test]
async fn heads_who_answer_in_their_village_group_confirm_too() {
    heads_confirm(true).await;
}

/// Three villages' heads, asked to confirm a storm warning, each reply "đã nhận" (or the like):
/// to the OA, or, `in_groups`, in their village's group, which the warning went to.
async fn heads_confirm(in_groups: bool) {
    use loa::clock::Clock;
    use loa::daemon::Daemon;
    use loa::deliver::select::AnyChannel;
    use loa::deliver::zalo::channel::ZaloChannel;
    use loa::sim::{GenerateSpec, Population};

    let db = support::sqlite();
    let store = db.store().await;
    let population = Population::generate(&GenerateSpec {
        villages: 3,
        followers: 12,
        group_share: if in_groups { 1.0 } else { 0.0 },
        stale_share: 0.0,
        non_follower_share: 0.0,
        seed: 9,
    });
    let people = loa::sim::People {
        in_group_reply_share: if in_groups { 1.0 } else { 0.0 },
        ..support::zalo::quick_people()
    };
    let sim = support::zalo::start_sim(population.clone(), people).await;
    let now = Timestamp::now();
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
    let thanks = Arc::new(AnyChannel::Zalo(Box::new(open().await.expect("channel"))));
    let url = server_with(&store, 64 * 1024, Some(thanks)).await;
    sim.set_webhook_url(Some(url));

    // The commune: each generated village with its head (by Zalo id), and a storm warning to the
    // heads that asks them to confirm within an hour.
    let dir = tempfile::tempdir().expect("tempdir");
    let ann = dir.path().join("announcements");
    std::fs::create_dir_all(&ann).expect("dir");
    std::fs::create_dir_all(dir.path().join("templates")).expect("dir");
    let mut commune = String::from("commune: Xã Thử\nvillages:\n");
    for (i, g) in population.groups.iter().enumerate() {
        let head = population.head_of(&g.name).expect("head");
        let group = if in_groups {
            format!(", zalo_group: \"{}\"", g.group_id)
        } else {
            String::new()
        };
        commune.push_str(&format!(
            "  - {{ id: v{i}, name: \"{}\"{group}, heads: [{{ name: \"{}\", zalo_user: \"{}\" }}] }}\n",
            g.name, head.display_name, head.user_id
        ));
    }
    commune.push_str(
        "leaders:\n  - { id: chu-tich, name: Chủ tịch, zalo_user: \"5512727797175877300\" }\n",
    );
    std::fs::write(ann.join("commune.yaml"), commune).expect("write");
    let at = support::zalo::storm_warning(dir.path(), "{{ title }}");
    let settings = settings(dir.path());
    let clock = Clock::manual(now);
    let daemon = Daemon::new(store.clone(), open().await.expect("channel"), settings)
        .with_clock(clock.clone());
    daemon.load_all(now).await.expect("load");
    clock.set(at);
    support::zalo::until(at).await;
    daemon.tick(at, &|| false).await.expect("tick");
    let requested: i64 =
        sqlx::query("SELECT COUNT(*) AS n FROM confirmations WHERE state = 'pending'")
            .fetch_one(store.pool())
            .await
            .expect("requested")
            .get("n");
    assert_eq!(requested, 3, "one confirmation per head");

    // Each head replies (one of "đã nhận", "Đã nhận ạ", "ok", "da nhan", "1"): confirmed by reply.
    wait_count(&store, "SELECT COUNT(*) FROM confirmations WHERE state = 'confirmed' AND via = 'reply' AND inbound_id IS NOT NULL", 3, 20, &sim).await;
    // And each was thanked with a message of their own.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let thanked = sim
            .messages()
            .iter()
            .filter(|m| m.text.starts_with("Cảm ơn"))
            .count();
        if thanked == 3 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "thanked {thanked}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
