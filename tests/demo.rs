//! `loa demo` as a newcomer runs it: it prints the dashboard's address, the storm warning goes
//! out through the simulator within seconds, and heads confirm — all visible on the dashboard.

mod support;

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[tokio::test]
async fn the_demo_sends_and_heads_confirm() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().expect("tempdir");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_loa"))
        .args([
            "demo",
            "--followers",
            "300",
            "--due-in",
            "2",
            "--port",
            &port.to_string(),
        ])
        .arg("--dir")
        .arg(dir.path())
        .env("LOA_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map(support::Running)
        .expect("loa demo");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let login = loop {
        let line = lines
            .next()
            .expect("the demo prints its dashboard")
            .expect("line");
        if let Some(at) = line.find("http://") {
            break line[at..].trim().to_string();
        }
    };
    assert!(
        login.starts_with(&format!("http://127.0.0.1:{port}/login?token=")),
        "{login}"
    );
    let token = login.rsplit('=').next().expect("token").to_string();

    let store =
        loa::ledger::Store::open(&format!("sqlite://{}", dir.path().join("loa.db").display()))
            .await
            .expect("the demo's database");
    let started = Instant::now();
    loop {
        let sent: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM deliveries WHERE state IN ('sent', 'delivered', 'seen')",
        )
        .fetch_one(store.pool())
        .await
        .expect("count");
        let confirmed: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM confirmations WHERE state = 'confirmed'")
                .fetch_one(store.pool())
                .await
                .expect("count");
        if sent > 100 && confirmed >= 2 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "sent {sent}, confirmed {confirmed}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let page = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}/"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("dashboard");
    assert_eq!(page.status().as_u16(), 200);
    let html = page.text().await.unwrap_or_default();
    assert!(
        html.contains("demo-bao"),
        "the demo's send is on the dashboard"
    );
    assert!(html.contains("Làng Trê"), "with the villages by name");
}
