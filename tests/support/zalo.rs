//! Zalo set-up shared by the tests that drive the daemon against the simulator: tokens in the
//! store and a configuration pointing at the simulator, daemon settings for a temporary commune,
//! and polling the ledger for a count.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use loa::deliver::zalo::config::Secret;
use loa::ledger::Store;

pub const APP: &str = "3304985733420011111";
pub const SECRET: &str = "sim-oa-secret";

/// A token pair from the simulator in the store, and the Zalo configuration pointing at it.
pub async fn zalo_for(
    sim: &loa::sim::Sim,
    store: &Store,
) -> loa::deliver::zalo::config::ZaloConfig {
    let pair = sim.issue_tokens();
    let now = Timestamp::now();
    store
        .put_zalo_tokens(
            "default",
            &pair.access_token,
            &pair.refresh_token,
            now + SignedDuration::from_hours(20),
            true,
            now,
        )
        .await
        .expect("tokens");
    let base = sim.base_url();
    loa::deliver::zalo::config::ZaloConfig {
        app_id: APP.into(),
        app_secret: Secret::new("sim-app-secret"),
        oauth_url: base.clone(),
        api_url: base.clone(),
        zns_url: base,
        rate_limit: 0,
        ..Default::default()
    }
}

pub fn settings(dir: &std::path::Path) -> loa::daemon::Settings {
    loa::daemon::Settings {
        commune_id: "default".into(),
        dir: dir.join("announcements"),
        templates: dir.join("templates"),
        node: "n1".into(),
        horizon: SignedDuration::from_hours(48),
        lease: SignedDuration::from_secs(30),
        max_sleep: SignedDuration::from_secs(5),
        concurrency: 64,
        max_attempts: 3,
        retry_base: SignedDuration::from_secs(60),
        send_budget: loa::daemon::SEND_BUDGET,
    }
}

/// Polls `SELECT COUNT(*) …` until it reaches `want` (failing on more, or after `secs`).
pub async fn wait_count(store: &Store, sql: &str, want: i64, secs: u64, sim: &loa::sim::Sim) {
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let n: i64 = sqlx::query_scalar(sql)
            .fetch_one(store.pool())
            .await
            .expect(sql);
        assert!(n <= want, "{sql}: {n} > {want}");
        if n == want {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{sql}: {n} of {want}; {:?}",
            sim.stats()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Simulated people who act within milliseconds: receive, read and (village heads) reply.
pub fn quick_people() -> loa::sim::People {
    loa::sim::People {
        receive_delay: Duration::from_millis(20),
        seen_delay: Duration::from_millis(40),
        head_reply_share: 1.0,
        reply_delay: Duration::from_millis(40),
        ..loa::sim::People::default()
    }
}

/// The simulator on a free port, with this population and these people.
pub async fn start_sim(
    population: loa::sim::Population,
    people: loa::sim::People,
) -> loa::sim::Sim {
    let listener = loa::listen::bind("127.0.0.1:0").await.expect("bind");
    loa::sim::start(
        loa::sim::SimConfig {
            population,
            people,
            ..loa::sim::SimConfig::default()
        },
        listener,
    )
    .await
    .expect("sim")
}

/// An urgent storm warning due two seconds from now (real time: a reply must come after the
/// request it confirms) that asks heads to confirm within an hour and escalates to `chu-tich`;
/// its template is `template`. Returns when it is due.
pub fn storm_warning(dir: &std::path::Path, template: &str) -> Timestamp {
    std::fs::write(dir.join("templates/storm_warning.tera"), template).expect("write");
    let due = super::local_in(2);
    std::fs::write(
        dir.join("announcements/bao.yaml"),
        format!(
            "title: Cảnh báo bão\nkind: storm_warning\npriority: urgent\nsend:\n  - at: {due}\nexpires: {}\nconfirm: {{ by: [village_head], within: 1h, escalate_to: [chu-tich] }}\n",
            super::local_in(86_400)
        ),
    )
    .expect("write");
    let tz = jiff::tz::TimeZone::get("Asia/Ho_Chi_Minh").expect("tz");
    loa::announce::values::parse_datetime(&due, &tz, true).expect("due")
}

/// Sleeps until the real clock reaches `at` (webhook times are real).
pub async fn until(at: Timestamp) {
    while Timestamp::now() < at {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
