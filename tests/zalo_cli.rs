//! The Zalo commands as an operator runs them, against the simulator: `loa zalo auth` (the PKCE
//! consent exchange), `loa zalo status`, and `loa run` with `channel = "zalo"` configured only
//! through the environment — following the OA's followers and sending through the simulator.

mod support;

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use loa::sim::{Population, SimConfig};

fn loa() -> Command {
    Command::new(env!("CARGO_BIN_EXE_loa"))
}

/// Starts `cmd` (a `loa run`) with its log in `repo/daemon.log`; stopped when dropped.
fn spawn_logged(cmd: &mut Command, repo: &Path) -> support::Running {
    cmd.stdout(Stdio::null())
        .stderr(std::fs::File::create(repo.join("daemon.log")).expect("log"))
        .spawn()
        .map(support::Running)
        .expect("loa run")
}

fn zalo_env(cmd: &mut Command, base: &str, db: &str) {
    cmd.env("LOA_DATABASE", db)
        .env("LOA_CHANNEL", "zalo")
        .env("LOA_ZALO_APP_ID", "3304985733420011111")
        .env("LOA_ZALO_APP_SECRET", "sim-app-secret")
        .env("LOA_ZALO_OAUTH_URL", base)
        .env("LOA_ZALO_API_URL", base)
        .env("LOA_ZALO_ZNS_URL", base)
        .env("LOA_ZALO_ZNS_TEMPLATE_ID", "loa-announcement")
        .env("LOA_LOG", "warn");
}

/// What `loa zalo status` prints.
fn zalo_status(base: &str, db: &str, repo: &std::path::Path) -> String {
    let mut status = loa();
    zalo_env(&mut status, base, db);
    let shown = status
        .args(["zalo", "status"])
        .current_dir(repo)
        .output()
        .expect("status");
    String::from_utf8_lossy(&shown.stdout).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_then_run_through_the_simulator() {
    let dir = tempfile::tempdir().expect("tempdir");
    // The example commune, with one announcement due in a few seconds.
    let repo = dir.path();
    let (commune, sim) = example_commune_and_sim(repo).await;
    let base = sim.base_url();
    let db = format!("sqlite://{}", repo.join("loa.db").display());

    // 1. `loa zalo auth`: print the consent link; the admin consents (here: we follow the link
    //    and read where the simulator redirects); paste that address back.
    let mut auth = loa();
    zalo_env(&mut auth, &base, &db);
    let mut child = auth
        .args([
            "zalo",
            "auth",
            "--redirect-uri",
            "http://localhost/zalo-callback",
        ])
        .current_dir(repo)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map(support::Running)
        .expect("loa zalo auth");
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    let mut link = String::new();
    while !link.starts_with("http") {
        link.clear();
        assert!(
            out.read_line(&mut link).expect("read") > 0,
            "no consent link printed"
        );
    }
    assert!(
        link.contains("/v4/oa/permission?app_id=3304985733420011111&redirect_uri="),
        "{link}"
    );
    assert!(link.contains("code_challenge="), "{link}");
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let consent = client.get(link.trim()).send().await.expect("consent");
    assert_eq!(consent.status().as_u16(), 302);
    let back = consent.headers()["location"]
        .to_str()
        .expect("location")
        .to_string();
    assert!(
        back.starts_with("http://localhost/zalo-callback?"),
        "{back}"
    );
    writeln!(child.stdin.take().expect("stdin"), "{back}").expect("paste");
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).expect("rest");
    assert!(child.wait().expect("wait").success(), "{rest}");
    assert!(rest.contains("Connected"), "{rest}");
    assert_eq!(sim.stats().token_exchanges, 1);

    // 2. `loa zalo status` shows the state, never the tokens.
    let shown = zalo_status(&base, &db, repo);
    assert!(shown.contains("generation 1"), "{shown}");
    let store = loa::ledger::Store::open(&db).await.expect("store");
    let tokens = store
        .zalo_tokens("default")
        .await
        .expect("tokens")
        .expect("stored");
    assert!(!shown.contains(&tokens.access_token) && !shown.contains(&tokens.refresh_token));

    // 3. `loa run`: syncs the followers at start and sends the announcement through Zalo.
    std::fs::write(
        repo.join("announcements/thu.yaml"),
        format!(
            "title: Thông báo thử\npriority: urgent\nsend:\n  - at: {}\nconfirm: {{ by: [village_head], within: 1h }}\ndata:\n  body: Mời bà con xem thông báo.\n",
            support::local_in(4)
        ),
    )
    .expect("write");
    // With its HTTP server on, and the simulator's webhooks pointed at it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    sim.set_webhook_url(Some(format!("http://127.0.0.1:{port}/zalo/webhook")));
    let mut run = loa();
    zalo_env(&mut run, &base, &db);
    run.env("LOA_WEB_LISTEN", format!("127.0.0.1:{port}"))
        .env("LOA_ZALO_OA_SECRET", "sim-oa-secret")
        .env("LOA_CONFIRM_PUBLIC_URL", format!("http://127.0.0.1:{port}"))
        .arg("run")
        .current_dir(repo);
    let mut daemon = spawn_logged(&mut run, repo);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let groups = commune
        .villages
        .iter()
        .filter(|v| v.zalo_group.is_some())
        .count();
    loop {
        let n = sim.messages().iter().filter(|m| m.kind == "group").count();
        if n >= groups {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no group messages: {}",
            std::fs::read_to_string(repo.join("daemon.log")).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Zalo's receipts come back through the webhook: some deliveries become `delivered`.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let received: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM deliveries WHERE state IN ('delivered', 'seen')",
        )
        .fetch_one(store.pool())
        .await
        .expect("receipts");
        if received > 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no receipts: {:?}\n{}",
            sim.stats(),
            std::fs::read_to_string(repo.join("daemon.log")).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Heads got their confirm links, in texts (`cs`) and in ZNS templates, and every one opens
    // the daemon's confirm page; /metrics answers.
    let site = format!("http://127.0.0.1:{port}");
    let links: Vec<(String, String)> = sim
        .messages()
        .iter()
        .filter_map(|m| {
            let link = loa::confirm::link::find_url(&m.text, &site)?;
            Some((m.kind.to_string(), link.to_string()))
        })
        .collect();
    assert!(!links.is_empty(), "a confirm link in a head's message");
    for (kind, link) in &links {
        let page = reqwest::get(link).await.expect("confirm page");
        assert_eq!(page.status().as_u16(), 200, "{kind}: {link}");
        let page = page.text().await.unwrap_or_default();
        assert!(
            page.contains("Tôi đã nhận thông báo")
                || page.contains("Thông báo này đã được xác nhận"),
            "{kind}: {page}"
        );
    }
    let metrics = metrics(port).await;
    assert!(
        metrics.contains("loa_sends_total{channel=\"zalo\",outcome=\"sent\"}"),
        "{metrics}"
    );
    // A head without Zalo (Đinh Thị Hoa) was reached by phone; Zalo's answer said what is left
    // of the OA's ZNS quota, and /metrics and `loa zalo status` tell it.
    let by_phone = sim.messages().iter().filter(|m| m.kind == "zns").count() as u64;
    assert!(by_phone > 0, "a head reached by phone");
    let left = 1_000_000 - by_phone;
    assert!(
        metrics.contains(&format!("loa_zalo_zns_quota_remaining {left}")),
        "{metrics}"
    );
    support::stop_daemon(&mut daemon);
    let shown = zalo_status(&base, &db, repo);
    assert!(
        shown.contains(&format!("zns quota: {left} of 1000000 left today")),
        "{shown}"
    );
    let followers = store.followers("default").await.expect("followers");
    let sim_followers = sim.population().users.iter().filter(|u| u.follower).count();
    assert_eq!(
        followers.len(),
        sim_followers,
        "the sync at start saw every follower"
    );
    // Every delivery the ledger calls sent is a message the simulator accepted.
    let sent = sqlx::query_scalar::<_, String>(
        "SELECT provider_message_id FROM deliveries WHERE state IN ('sent', 'delivered', 'seen')",
    )
    .fetch_all(store.pool())
    .await
    .expect("sent");
    let at_zalo: std::collections::HashSet<String> =
        sim.messages().into_iter().map(|m| m.message_id).collect();
    assert!(
        sent.len() > groups,
        "groups and the followers outside them: {}",
        sent.len()
    );
    for id in &sent {
        for part in id.split(',') {
            assert!(at_zalo.contains(part), "{part} not at Zalo");
        }
    }
    // The village without a group (Ba Liên) was reached through its head, by Zalo id.
    let ba_lien: Vec<String> =
        sqlx::query_scalar("SELECT target_kind FROM deliveries WHERE village_id = 'ba-lien'")
            .fetch_all(store.pool())
            .await
            .expect("ba lien");
    assert!(ba_lien.iter().any(|k| k == "user"), "{ba_lien:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_oa_is_told_to_the_operator_and_loses_no_message() {
    let dir = tempfile::tempdir().expect("tempdir");
    let repo = dir.path();
    let (_, sim) = example_commune_and_sim(repo).await;
    // Zalo has disabled the OA. (The send is urgent so that quiet hours do not hold it, whatever
    // the time the test runs at.)
    sim.set_faults(loa::sim::Faults {
        oa_disabled: true,
        ..loa::sim::Faults::default()
    });
    std::fs::write(
        repo.join("announcements/thu.yaml"),
        format!(
            "title: Thông báo thử\npriority: urgent\nsend:\n  - at: {}\ndata:\n  body: Mời bà con xem thông báo.\n",
            support::local_in(4)
        ),
    )
    .expect("write");
    let db = format!("sqlite://{}", repo.join("loa.db").display());
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let mut run = loa();
    zalo_env(&mut run, &sim.base_url(), &db);
    run.env("LOA_ZALO_REFRESH_TOKEN", sim.issue_tokens().refresh_token)
        .env("LOA_WEB_LISTEN", format!("127.0.0.1:{port}"))
        .arg("run")
        .current_dir(repo);
    let mut daemon = spawn_logged(&mut run, repo);
    let store = loa::ledger::Store::open(&db).await.expect("store");
    let log = || std::fs::read_to_string(repo.join("daemon.log")).unwrap_or_default();
    // Every message of the send waits for the OA: none failed, no attempt spent.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let waiting = loop {
        let rows: Vec<(String, Option<String>, i64)> = sqlx::query_as(
            "SELECT state, error_code, attempts FROM deliveries WHERE announcement_id = 'thu'",
        )
        .fetch_all(store.pool())
        .await
        .unwrap_or_default();
        if !rows.is_empty()
            && rows
                .iter()
                .all(|(state, _, _)| state != "planned" && state != "sending")
        {
            break rows;
        }
        assert!(std::time::Instant::now() < deadline, "{rows:?}\n{}", log());
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        waiting
            .iter()
            .all(|(state, code, attempts)| state == "retrying"
                && code.as_deref() == Some("-204")
                && *attempts == 0),
        "{waiting:?}"
    );
    // The operator is told: once in the log, and by /metrics for monitoring.
    let told = log();
    assert_eq!(
        told.matches("no message can be sent from this OA until the operator mends it")
            .count(),
        1,
        "{told}"
    );
    let metrics = metrics(port).await;
    assert!(metrics.contains("loa_zalo_oa_blocked 1"), "{metrics}");
    assert!(sim.messages().is_empty());
    support::stop_daemon(&mut daemon);
}

/// The example commune and its templates copied into `repo`, and a simulator whose population
/// is drawn from that commune (60 followers, seed 3).
async fn example_commune_and_sim(
    repo: &std::path::Path,
) -> (loa::announce::model::Commune, loa::sim::Sim) {
    copy_dir(
        std::path::Path::new("announcements"),
        &repo.join("announcements"),
    );
    copy_dir(std::path::Path::new("templates"), &repo.join("templates"));
    let commune = loa::announce::load_commune(&repo.join("announcements")).expect("commune");
    let listener = loa::listen::bind("127.0.0.1:0").await.expect("bind");
    let sim = loa::sim::start(
        SimConfig {
            population: Population::from_commune(&commune, 60, 3),
            ..SimConfig::default()
        },
        listener,
    )
    .await
    .expect("sim");
    (commune, sim)
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read_dir") {
        let entry = entry.expect("entry");
        let path = entry.path();
        if path.is_dir() {
            copy_dir(&path, &to.join(entry.file_name()));
        } else {
            std::fs::copy(&path, to.join(entry.file_name())).expect("copy");
        }
    }
}

/// The daemon's `/metrics` page, as monitoring reads it.
async fn metrics(port: u16) -> String {
    reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await
        .expect("metrics")
        .text()
        .await
        .unwrap_or_default()
}
