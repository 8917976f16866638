//! Shared test support: a fresh store on SQLite (always) and on PostgreSQL (when
//! `LOA_TEST_DATABASE_URL` is set, as CI does): each test gets its own new database.
#![allow(dead_code)]

pub mod zalo;

use loa::ledger::Store;
use sqlx::Connection as _;

pub struct TestDb {
    pub url: String,
    pub name: &'static str,
    _dir: Option<tempfile::TempDir>,
    admin: Option<(String, String)>,
}

impl TestDb {
    pub async fn store(&self) -> Store {
        Store::open(&self.url).await.expect("open store")
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        // Best effort: a leftover test database is harmless, but tidy up when we can.
        if let Some((admin, db)) = self.admin.take() {
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .ok()?;
                rt.block_on(async {
                    sqlx::any::install_default_drivers();
                    let mut conn = sqlx::AnyConnection::connect(&admin).await.ok()?;
                    sqlx::query(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
                        .execute(&mut conn)
                        .await
                        .ok()
                })
            })
            .join();
        }
    }
}

pub fn sqlite() -> TestDb {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("loa.db").display());
    TestDb {
        url,
        name: "sqlite",
        _dir: Some(dir),
        admin: None,
    }
}

pub async fn postgres() -> Option<TestDb> {
    postgres_with("").await
}

/// A PostgreSQL database ordering text as most installations do (ICU, English), not byte by
/// byte as the test server's default `C.UTF-8` does.
pub async fn postgres_icu() -> Option<TestDb> {
    postgres_with("LOCALE_PROVIDER icu ICU_LOCALE 'en-US' TEMPLATE template0").await
}

async fn postgres_with(options: &str) -> Option<TestDb> {
    let admin = std::env::var("LOA_TEST_DATABASE_URL").ok()?;
    sqlx::any::install_default_drivers();
    let db = format!("loa_test_{}_{}", std::process::id(), rand::random::<u32>());
    let mut conn = sqlx::AnyConnection::connect(&admin)
        .await
        .expect("connect to LOA_TEST_DATABASE_URL");
    sqlx::query(&format!("CREATE DATABASE {db} {options}"))
        .execute(&mut conn)
        .await
        .expect("create test database");
    let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
    Some(TestDb {
        url: format!("{base}/{db}"),
        name: "postgres",
        _dir: None,
        admin: Some((admin.clone(), db)),
    })
}

/// Every backend available here: SQLite, plus PostgreSQL when configured.
pub async fn databases() -> Vec<TestDb> {
    let mut all = vec![sqlite()];
    if let Some(pg) = postgres().await {
        all.push(pg);
    } else if std::env::var_os("CI").is_some() {
        panic!("CI must set LOA_TEST_DATABASE_URL so the PostgreSQL tests run");
    }
    all
}

/// A repository for process tests: `villages` villages each with a Zalo group, `files`
/// announcements each due at `due_local` (commune time, `YYYY-MM-DD HH:MM:SS`), every other one
/// urgent. No quiet hours, so the tests behave the same at any time of day.
pub fn fanout_repo(dir: &std::path::Path, villages: usize, files: usize, due_local: &str) {
    let ann = dir.join("announcements");
    std::fs::create_dir_all(&ann).expect("dir");
    std::fs::create_dir_all(dir.join("templates")).expect("dir");
    let mut commune = String::from("commune: Xã Thử tải\nvillages:\n");
    for v in 0..villages {
        commune.push_str(&format!(
            "  - {{ id: v{v}, name: Thôn {v}, zalo_group: \"{:08x}\" }}\n",
            0xa000_0000u32 + v as u32
        ));
    }
    std::fs::write(ann.join("commune.yaml"), commune).expect("write");
    std::fs::write(
        dir.join("templates/general.tera"),
        "{{ title }} · {{ send.at }}{% if village %} · {{ village.name }}{% endif %}",
    )
    .expect("write");
    for i in 0..files {
        let priority = if i % 2 == 0 { "urgent" } else { "normal" };
        std::fs::write(
            ann.join(format!("tb-{i:04}.yaml")),
            format!("title: Thông báo {i}\npriority: {priority}\nsend:\n  - at: {due_local}\n"),
        )
        .expect("write");
    }
}

/// Now plus `secs`, as commune-local `YYYY-MM-DD HH:MM:SS`.
pub fn local_in(secs: i64) -> String {
    let tz = jiff::tz::TimeZone::get("Asia/Ho_Chi_Minh").expect("tz");
    (jiff::Timestamp::now() + jiff::SignedDuration::from_secs(secs))
        .to_zoned(tz)
        .strftime("%Y-%m-%d %H:%M:%S")
        .to_string()
}

/// A child process that is killed when the test lets go of it: a test that fails half way would
/// otherwise leave its daemon running, holding a port and the cores the next tests measure on.
pub struct Running(pub std::process::Child);

impl std::ops::Deref for Running {
    type Target = std::process::Child;
    fn deref(&self) -> &std::process::Child {
        &self.0
    }
}

impl std::ops::DerefMut for Running {
    fn deref_mut(&mut self) -> &mut std::process::Child {
        &mut self.0
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // Through `Child`: once it was reaped, `kill` signals nothing, so a reused pid is safe.
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `loa run` in `dir` with the given environment.
pub fn spawn_daemon(dir: &std::path::Path, env: &[(&str, String)]) -> Running {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_loa"));
    cmd.arg("run")
        .current_dir(dir)
        .env("LOA_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.spawn().map(Running).expect("spawn loa run")
}

/// Asks a daemon to stop (SIGTERM) and waits for it.
pub fn stop_daemon(child: &mut std::process::Child) {
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
}

/// Lines the log channel wrote, per delivery id.
pub fn sends_per_delivery(files: &[std::path::PathBuf]) -> std::collections::HashMap<i64, usize> {
    let mut out = std::collections::HashMap::new();
    for f in files {
        for line in std::fs::read_to_string(f).unwrap_or_default().lines() {
            let v: serde_json::Value = serde_json::from_str(line).expect("whole JSON lines only");
            *out.entry(v["delivery"].as_i64().expect("delivery id"))
                .or_insert(0) += 1;
        }
    }
    out
}

/// Per delivery: (state, urgent, possible duplicate).
pub async fn delivery_rows(store: &Store) -> Vec<(i64, String, bool, bool)> {
    use sqlx::Row as _;
    sqlx::query("SELECT id, state, urgent, possible_duplicate FROM deliveries ORDER BY id")
        .fetch_all(store.pool())
        .await
        .expect("deliveries")
        .iter()
        .map(|r| {
            (
                r.try_get::<i64, _>(0).expect("id"),
                r.try_get::<String, _>(1).expect("state"),
                r.try_get::<i64, _>(2).expect("urgent") != 0,
                r.try_get::<i64, _>(3).expect("dup") != 0,
            )
        })
        .collect()
}

/// Checks the delivery guarantees against what the channel actually wrote, and returns
/// (sent, duplicates, unknown). Panics on a lost or unfinished delivery or a duplicate that the
/// guarantee does not allow.
pub fn assert_guarantees(
    rows: &[(i64, String, bool, bool)],
    sends: &std::collections::HashMap<i64, usize>,
    expected: usize,
) -> (usize, usize, usize) {
    assert_eq!(
        rows.len(),
        expected,
        "every intended delivery has its row: none lost"
    );
    let (mut sent, mut duplicates, mut unknown) = (0, 0, 0);
    for (id, state, urgent, possible_duplicate) in rows {
        let n = sends.get(id).copied().unwrap_or(0);
        match state.as_str() {
            "sent" => {
                assert!(n >= 1, "delivery {id} recorded sent but never written");
                sent += 1;
            }
            "unknown" => {
                assert!(
                    !urgent,
                    "urgent deliveries are re-sent, never left unknown ({id})"
                );
                assert!(n <= 1, "delivery {id}: in doubt means at most once");
                unknown += 1;
            }
            other => panic!("delivery {id} ended {other}, not in a final sent/unknown state"),
        }
        if n > 1 {
            assert!(
                *urgent && *possible_duplicate,
                "delivery {id} written {n} times without the at-least-once flag"
            );
            duplicates += n - 1;
        }
        if !urgent {
            assert!(n <= 1, "a normal delivery ({id}) went out {n} times");
        }
    }
    (sent, duplicates, unknown)
}

/// Waits (up to 90 s) until the store holds `expected` deliveries and none is still open
/// (planned, sending, retrying); on timeout, fails with the daemon's log from `dir`.
pub async fn wait_until_final(store: &Store, expected: usize, dir: &std::path::Path) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
    loop {
        let rows = delivery_rows(store).await;
        let open = rows
            .iter()
            .filter(|r| matches!(r.1.as_str(), "planned" | "sending" | "retrying"))
            .count();
        if rows.len() == expected && open == 0 {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not finished: {} of {expected} rows, {open} still open; daemon log:\n{}",
            rows.len(),
            std::fs::read_to_string(dir.join("daemon.log")).unwrap_or_default()
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}
