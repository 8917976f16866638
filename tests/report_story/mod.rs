//! One commune's morning, built through the library on a real ledger (the daemon on a manual
//! clock, a scripted provider, receipts and a reply applied as the webhooks would): the state the
//! report, dashboard and browser tests read. Every number they expect is worked out here.
#![allow(dead_code)]

use std::path::Path;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use loa::clock::Clock;
use loa::daemon::{Daemon, Settings};
use loa::deliver::{Channel, Outgoing, SendError, Sent};
use loa::ledger::{Receipt, Store};

pub const COMMUNE_ID: &str = "thu";

const COMMUNE: &str = r#"commune: Xã Thử
villages:
  - id: a
    name: Thôn A
    zalo_group: "aaaaaa01"
    heads: [{ name: Trưởng A, zalo_user: "100001" }]
  - id: b
    name: Thôn B
    heads:
      - { name: Trưởng B, zalo_user: "200001" }
      - { name: Phó B, phone: "0912345678" }
  - id: c
    name: Thôn C
    zalo_group: "cccccc01"
    heads: [{ name: Trưởng C, zalo_user: "300001" }]
leaders:
  - { id: ct, name: Chủ tịch, zalo_user: "900001" }
"#;

/// Meeting for all three villages, heads asked to confirm within 2 hours.
const HOP: &str = "title: Họp dân\nkind: meeting\naudience: { villages: [a, b, c] }\nsend:\n  - at: 2026-12-01 08:00\nconfirm: { by: [village_head], within: 2h, escalate_to: [ct] }\n";
/// An urgent notice to village A, and the next day again (still planned at the end).
const DIEN: &str = "title: Cắt điện\npriority: urgent\naudience: { villages: [a] }\nsend:\n  - at: 2026-12-01 09:00\n  - at: 2026-12-02 08:00\n";

/// The time the tests read the ledger at ("now").
pub const NOW: &str = "2026-12-01 12:00";

pub fn t(local: &str) -> Timestamp {
    let tz = TimeZone::get("Asia/Ho_Chi_Minh").expect("tz");
    loa::announce::values::parse_datetime(local, &tz, false).expect("time")
}

/// Zalo's answers: village B's head by Zalo id is outside the 7-day window (-230), village C's
/// group is disabled (-237); everything else is accepted.
struct Scripted;

impl Channel for Scripted {
    fn name(&self) -> &'static str {
        "scripted"
    }

    async fn send(&self, msg: &Outgoing<'_>) -> Result<Sent, SendError> {
        let refuse = |code: &str, reason: &str| SendError::Final {
            code: code.into(),
            reason: reason.into(),
        };
        match msg.target {
            "200001" => Err(refuse(
                "-230",
                "no interaction with the OA in the last 7 days",
            )),
            "cccccc01" => Err(refuse("-237", "group disabled")),
            _ => Ok(Sent {
                message_id: format!("m{}", msg.delivery_id),
                note: None,
            }),
        }
    }
}

pub struct Story {
    pub dir: tempfile::TempDir,
    /// The meeting's send and the urgent notice's first send.
    pub hop: i64,
    pub dien: i64,
    /// The reminder that followed the meeting up.
    pub reminder: i64,
}

async fn one(store: &Store, sql: &str, bind: &str) -> i64 {
    use sqlx::Row as _;
    sqlx::query(sql)
        .bind(bind.to_string())
        .fetch_one(store.pool())
        .await
        .expect("query")
        .try_get::<i64, _>(0)
        .expect("value")
}

fn write_repo(dir: &Path) {
    std::fs::create_dir_all(dir.join("announcements")).expect("dir");
    std::fs::create_dir_all(dir.join("templates")).expect("dir");
    std::fs::write(dir.join("announcements/commune.yaml"), COMMUNE).expect("write");
    std::fs::write(dir.join("announcements/hop.yaml"), HOP).expect("write");
    std::fs::write(dir.join("announcements/dien.yaml"), DIEN).expect("write");
    for kind in ["general", "meeting"] {
        std::fs::write(
            dir.join(format!("templates/{kind}.tera")),
            "{{ title }} · {{ send.at }}",
        )
        .expect("write");
    }
}

/// Builds the morning on `store`:
///
/// | send | village | targets | outcome |
/// |---|---|---|---|
/// | hop 08:00 | a | group | sent → delivered → seen |
/// | | b | 200001 (user), 84912345678 (phone) | -230 failed; sent → delivered |
/// | | c | group | -237 failed |
/// | dien 09:00 | a | group | sent |
///
/// Heads asked for hop: a 1, b 2, c 1; Trưởng A confirms by reply at 08:10. Trưởng B is reminded
/// at 10:00 (a reminder occurrence with one sent delivery). Someone writes a question.
pub async fn build(store: &Store) -> Story {
    let dir = tempfile::tempdir().expect("tempdir");
    write_repo(dir.path());
    let clock = Clock::manual(t("2026-12-01 07:00"));
    let settings = Settings {
        commune_id: COMMUNE_ID.into(),
        dir: dir.path().join("announcements"),
        templates: dir.path().join("templates"),
        node: "test".into(),
        horizon: jiff::SignedDuration::from_hours(48),
        lease: jiff::SignedDuration::from_secs(30),
        max_sleep: jiff::SignedDuration::from_secs(5),
        concurrency: 16,
        max_attempts: 3,
        retry_base: jiff::SignedDuration::from_secs(60),
        send_budget: loa::daemon::SEND_BUDGET,
    };
    let daemon = Daemon::new(store.clone(), Scripted, settings).with_clock(clock.clone());
    daemon.load_all(t("2026-12-01 07:00")).await.expect("load");
    for at in ["2026-12-01 08:00", "2026-12-01 09:00"] {
        clock.set(t(at));
        daemon.extend_horizon(t(at)).await.expect("extend");
        daemon.tick(t(at), &|| false).await.expect("tick");
    }
    let hop = one(
        store,
        "SELECT id FROM occurrences WHERE announcement_id = $1 AND state = 'expanded'",
        "hop",
    )
    .await;
    let dien = one(
        store,
        "SELECT id FROM occurrences WHERE announcement_id = $1 AND state = 'expanded'",
        "dien",
    )
    .await;
    let group_a = one(
        store,
        &format!("SELECT id FROM deliveries WHERE occurrence_id = {hop} AND target = $1"),
        "aaaaaa01",
    )
    .await;
    let phone_b = one(
        store,
        &format!("SELECT id FROM deliveries WHERE occurrence_id = {hop} AND target = $1"),
        "84912345678",
    )
    .await;
    // Zalo's receipts, as the webhook processor applies them.
    let c = COMMUNE_ID;
    for (msg, who, receipt, at) in [
        (
            format!("m{group_a}"),
            "100001",
            Receipt::Delivered,
            "2026-12-01 08:01",
        ),
        (
            format!("m{group_a}"),
            "100001",
            Receipt::Seen,
            "2026-12-01 08:05",
        ),
        (
            format!("m{phone_b}"),
            "84912345678",
            Receipt::Delivered,
            "2026-12-01 08:02",
        ),
    ] {
        let n = store
            .apply_receipt(c, &msg, Some(who), receipt, t(at))
            .await
            .expect("receipt");
        assert_eq!(n, 1, "{msg} {receipt:?}");
    }
    // Trưởng A replies "đã nhận"; someone else asks a question.
    let reply_at = t("2026-12-01 08:10");
    let (inbound, _) = store
        .record_inbound(c, "100001", Some("r1"), "Đã nhận ạ", reply_at)
        .await
        .expect("inbound");
    let confirmed = store
        .confirm_by_reply(c, "100001", inbound, reply_at)
        .await
        .expect("confirm");
    assert!(confirmed.is_some(), "Trưởng A's reply confirms");
    store
        .record_inbound(
            c,
            "555555",
            Some("r2"),
            "Cho hỏi họp ở đâu <b>ạ</b>?",
            t("2026-12-01 08:20"),
        )
        .await
        .expect("inbound");
    let reminder = remind(store, hop, "Trưởng B", t("2026-12-01 10:00")).await;
    Story {
        dir,
        hop,
        dien,
        reminder,
    }
}

/// A reminder as the follow-up machinery records it (migration 0008: an occurrence with
/// `parent_id` and rule -1, its delivery, and `reminded_at` on the confirmation).
async fn remind(store: &Store, send: i64, person: &str, at: Timestamp) -> i64 {
    use sqlx::Row as _;
    let us = at.as_microsecond();
    let id: i64 = sqlx::query(
        "INSERT INTO occurrences (commune_id, announcement_id, revision, rule, due, send_at, deadline, trigger,
           urgent, state, created_at, updated_at, parent_id)
         SELECT commune_id, announcement_id, revision, -1, CAST($2 AS BIGINT), CAST($2 AS BIGINT), CAST($3 AS BIGINT), '{}',
           urgent, 'expanded', CAST($2 AS BIGINT), CAST($2 AS BIGINT), id
         FROM occurrences WHERE id = $1 RETURNING id",
    )
    .bind(send)
    .bind(us)
    .bind(us + 3_600_000_000)
    .fetch_one(store.pool())
    .await
    .expect("reminder")
    .try_get(0)
    .expect("id");
    sqlx::query(
        "INSERT INTO deliveries (occurrence_id, commune_id, announcement_id, village_id, target_kind, target,
           person, text, urgent, due, deadline, state, next_attempt_at, updated_at, provider_message_id)
         SELECT id, commune_id, announcement_id, 'b', 'user', '200001', CAST($2 AS TEXT), 'Nhắc', 0, CAST($3 AS BIGINT),
           CAST($3 AS BIGINT), 'sent', CAST($3 AS BIGINT), CAST($3 AS BIGINT), 'mr'
         FROM occurrences WHERE id = $1",
    )
    .bind(id)
    .bind(person.to_string())
    .bind(us)
    .execute(store.pool())
    .await
    .expect("reminder delivery");
    sqlx::query(
        "UPDATE confirmations SET reminded_at = $2 WHERE occurrence_id = $1 AND person = $3",
    )
    .bind(send)
    .bind(us)
    .bind(person.to_string())
    .execute(store.pool())
    .await
    .expect("reminded");
    id
}

/// Serves the daemon's router with the dashboard (its clock at `NOW`; off when `token` is None)
/// on a free port; returns its base URL.
pub async fn serve(store: &Store, token: Option<&str>) -> String {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let state = std::sync::Arc::new(loa::web::WebState {
        store: store.clone(),
        commune: COMMUNE_ID.into(),
        zalo: None,
        max_age: std::time::Duration::from_secs(600),
        wake: std::sync::Arc::new(tokio::sync::Notify::new()),
        health: Default::default(),
        links: None,
        villages: [("a", "Thôn A"), ("b", "Thôn B"), ("c", "Thôn C")]
            .into_iter()
            .map(|(id, name)| (id.to_string(), name.to_string()))
            .collect(),
        tz: TimeZone::get("Asia/Ho_Chi_Minh").expect("tz"),
        dashboard: token.map(|token| {
            loa::web::dashboard::Dashboard::new(
                loa::deliver::zalo::config::Secret::new(token),
                loa::deliver::zalo::config::Secret::new("khoa-thu"),
                Clock::manual(t(NOW)),
            )
        }),
    });
    let listener = loa::listen::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let router = loa::web::router(state, 65536);
    tokio::spawn(loa::web::serve(listener, router, std::future::pending()));
    url
}
