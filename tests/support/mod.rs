//! Shared test support: a fresh store on SQLite (always) and on PostgreSQL (when
//! `LOA_TEST_DATABASE_URL` is set, as CI does): each test gets its own new database.
#![allow(dead_code)]

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
    let admin = std::env::var("LOA_TEST_DATABASE_URL").ok()?;
    sqlx::any::install_default_drivers();
    let db = format!("loa_test_{}_{}", std::process::id(), rand::random::<u32>());
    let mut conn = sqlx::AnyConnection::connect(&admin)
        .await
        .expect("connect to LOA_TEST_DATABASE_URL");
    sqlx::query(&format!("CREATE DATABASE {db}"))
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
