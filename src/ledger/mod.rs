//! The delivery ledger: the database is the truth of what is due and what was sent. One store over
//! sqlx's `Any` driver, so the same SQL (with `$1` placeholders, which SQLite accepts too) runs on
//! SQLite — the default, one daemon — and PostgreSQL — several daemons sharing the work. The few
//! differences (how a write transaction begins, `FOR UPDATE SKIP LOCKED`, advisory locks) live here.
//!
//! Times are stored as microseconds since the Unix epoch, so both backends compare them the same.

mod checkpoint;
mod deliveries;
mod expansion;
mod failover;
mod files;
mod follow_ups;
mod followers;
mod links;
mod migrate;
mod occurrences;
mod quota;
mod receipts;
mod recovery;
mod replan;
mod replies;
pub mod report;
mod sqlite_json;
mod states;
mod tokens;

use std::fmt::Write as _;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use jiff::Timestamp;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor as _};

pub use deliveries::{Claim, ClaimedDelivery, Outcome, Progress};
pub use expansion::{Expansion, NewConfirmation, NewDelivery};
pub use failover::{GROUP_REFUSED, HeadCopy, RefusedGroup, SendTarget};
pub use files::{Load, StoredAnnouncement};
pub use follow_ups::{FollowUp, Late, Stage};
pub use links::LinkTarget;
pub use occurrences::{ClaimedOccurrence, NewOccurrence, NewRevision, PlanChange, PlanResult};
pub use quota::StoredQuota;
pub use receipts::{PendingEvent, Receipt};
pub use replan::{Replan, Replanned};
pub use states::{DeliveryState, OccurrenceState};
pub use tokens::StoredTokens;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    /// Where write transactions run: on SQLite one connection of its own, so writers queue in
    /// the process instead of in SQLite's busy handler (which sleeps), and the pages a fan-out
    /// rewrites stay in that connection's cache (a connection's cache is dropped whenever another
    /// one wrote). On PostgreSQL the same pool as reads.
    writer: AnyPool,
    dialect: Dialect,
    /// On SQLite, the task that copies the log into the database file (the writer never does).
    checkpoints: Option<Arc<checkpoint::Checkpoints>>,
}

pub type Tx = sqlx::Transaction<'static, sqlx::Any>;

/// Microseconds since the epoch, the stored form of a time.
pub fn micros(t: Timestamp) -> i64 {
    t.as_microsecond()
}

pub fn from_micros(us: i64) -> Timestamp {
    Timestamp::from_microsecond(us).unwrap_or(Timestamp::MAX)
}

impl Store {
    /// Opens (creating a SQLite file if needed) and migrates. `url` is `sqlite://path` (or a bare
    /// path) or `postgres://…`.
    /// Opens a database that must exist already. The commands that only read it (`loa report`,
    /// `loa zalo status`) must not create an empty SQLite file where the operator mistyped the
    /// path or ran them from another directory, and then report an empty ledger.
    pub async fn open_existing(url: &str) -> anyhow::Result<Store> {
        let sqlite = url
            .strip_prefix("sqlite://")
            .or(url.strip_prefix("sqlite:"))
            .map(|p| p.split('?').next().unwrap_or(p));
        if let Some(path) = sqlite
            && !std::path::Path::new(path).exists()
        {
            anyhow::bail!(
                "no database at {path}: run from the directory of loa.toml, or name it with --config or --database"
            );
        }
        Store::open(url).await
    }

    pub async fn open(url: &str) -> anyhow::Result<Store> {
        sqlx::any::install_default_drivers();
        let (url, dialect) = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            (url.to_string(), Dialect::Postgres)
        } else {
            let path = url
                .strip_prefix("sqlite://")
                .or(url.strip_prefix("sqlite:"))
                .unwrap_or(url);
            (format!("sqlite://{path}?mode=rwc"), Dialect::Sqlite)
        };
        let options = AnyConnectOptions::from_str(&url)
            .with_context(|| format!("database URL {}", redact(&url)))?;
        let pool = match dialect {
            Dialect::Sqlite => {
                sqlite_pool(4, READER_CACHE_KIB, true)
                    .connect_with(options.clone())
                    .await
            }
            Dialect::Postgres => {
                AnyPoolOptions::new()
                    .max_connections(8)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect_with(options.clone())
                    .await
            }
        }
        .with_context(|| format!("cannot open the database {}", redact(&url)))?;
        let writer = match dialect {
            Dialect::Sqlite => sqlite_pool(1, WRITER_CACHE_KIB, false)
                .connect_with(options)
                .await
                .with_context(|| format!("cannot open the database {}", redact(&url)))?,
            Dialect::Postgres => pool.clone(),
        };
        let mut store = Store {
            pool,
            writer,
            dialect,
            checkpoints: None,
        };
        // sqlx's migrator locks on PostgreSQL but not on SQLite, where two processes opening a
        // new file at once both try the first migration and one fails. Trying again then finds
        // it applied by the other.
        let mut attempt = 0;
        loop {
            match migrate::run(&store).await {
                Ok(()) => break,
                Err(e) if dialect == Dialect::Sqlite && attempt < 5 => {
                    attempt += 1;
                    tracing::debug!(error = %e, attempt, "migration raced another process; trying again");
                    tokio::time::sleep(Duration::from_millis(100 * attempt)).await;
                }
                Err(e) => return Err(e).context("applying migrations"),
            }
        }
        if dialect == Dialect::Sqlite {
            let task = checkpoint::spawn(store.pool.clone(), checkpoint::EVERY);
            store.checkpoints = Some(Arc::new(task));
        }
        Ok(store)
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// A write transaction. On SQLite it takes the write lock at once (`BEGIN IMMEDIATE`), so a
    /// transaction that reads then writes can never fail half-way on a lock upgrade.
    pub async fn write(&self) -> sqlx::Result<Tx> {
        match self.dialect {
            Dialect::Sqlite => self.writer.begin_with("BEGIN IMMEDIATE").await,
            Dialect::Postgres => self.pool.begin().await,
        }
    }

    /// Serialises planning of one commune across daemons for the rest of the transaction.
    async fn planning_lock(&self, tx: &mut Tx, commune: &str) -> sqlx::Result<()> {
        if self.dialect == Dialect::Postgres {
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(lock_key(commune))
                .execute(&mut **tx)
                .await?;
        }
        Ok(())
    }

    /// `FOR UPDATE SKIP LOCKED` where the backend has it: daemons claim disjoint rows.
    fn skip_locked(&self) -> &'static str {
        match self.dialect {
            Dialect::Sqlite => "",
            Dialect::Postgres => "FOR UPDATE SKIP LOCKED",
        }
    }

    /// Runs a claim statement (`$1` commune, `$2` node, `$3` lease end, `$4` now, `$5` limit) in a
    /// write transaction and returns the claimed rows.
    async fn claim_rows(
        &self,
        sql: &str,
        commune: &str,
        node: &str,
        now: Timestamp,
        lease_until: Timestamp,
        limit: i64,
    ) -> sqlx::Result<Vec<sqlx::any::AnyRow>> {
        let mut tx = self.write().await?;
        let rows = sqlx::query(sql)
            .bind(commune)
            .bind(node)
            .bind(micros(lease_until))
            .bind(micros(now))
            .bind(limit)
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(rows)
    }

    pub async fn close(&self) {
        self.writer.close().await;
        self.pool.close().await;
    }
}

/// Page cache of each reading connection: the dashboard's and the reports' queries read much of
/// the ledger, and 16 MiB keeps it in memory instead of re-reading it from the OS.
const READER_CACHE_KIB: u32 = 16 * 1024;

/// Page cache of the one writing connection: 2 MiB, which holds what the send loop rewrites.
/// Larger costs more than it saves: when a B-tree page splits, SQLite briefly renumbers a page to
/// the lock-byte page (262,145 with 4 KiB pages), and the next commit then walks the whole cache to
/// drop pages beyond the end of the file, once per chunk in a fan-out. With 16 MiB (4,096 pages)
/// that walk, nearly all cache misses, was about 2% of the daemon's CPU in `perf`; with 2 MiB about
/// 1%. With 512 KiB the walk shrank further but page lookups rose as much (the README's figures).
const WRITER_CACHE_KIB: u32 = 2 * 1024;

/// SQLite connections of `max` in a pool. WAL lets the dashboard read while the daemon writes;
/// NORMAL sync is durable across a process crash (the kill the crash test does) and fsyncs at
/// checkpoints; busy_timeout waits for another process's writer instead of failing. Only
/// `checkpoints` connections copy the log into the database file (see `checkpoint`). No ping
/// before each use: a file does not drop a connection, and each ping was a round trip to the
/// connection's thread before every write.
fn sqlite_pool(max: u32, cache_kib: u32, checkpoints: bool) -> AnyPoolOptions {
    AnyPoolOptions::new()
        .max_connections(max)
        .acquire_timeout(Duration::from_secs(30))
        .test_before_acquire(false)
        .after_connect(move |conn, _| {
            Box::pin(async move {
                if !checkpoints {
                    conn.execute("PRAGMA wal_autocheckpoint = 0").await?;
                }
                conn.execute("PRAGMA journal_mode = WAL").await?;
                conn.execute("PRAGMA synchronous = NORMAL").await?;
                conn.execute("PRAGMA busy_timeout = 10000").await?;
                conn.execute("PRAGMA foreign_keys = ON").await?;
                conn.execute(format!("PRAGMA cache_size = -{cache_kib}").as_str())
                    .await?;
                conn.execute("PRAGMA temp_store = MEMORY").await?;
                Ok(())
            })
        })
}

/// A stable 64-bit key per commune for advisory locks.
fn lock_key(commune: &str) -> i64 {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(format!("loa-planning:{commune}").as_bytes());
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(bytes)
}

/// Database URLs may carry passwords; never print them.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://***{}", &url[..scheme], &url[at..])
        }
        _ => url.to_string(),
    }
}

/// Placeholders for generated statements, in binding order: `?` on SQLite, `$n` on PostgreSQL.
/// SQLite looks a numbered parameter's name up by walking a list, once per parameter, so a
/// statement with thousands of `$n` binds costs quadratic time (the fan-out benchmark spent 61% of
/// its time there); anonymous `?` parameters are bound by position.
/// Splits `items` into slices whose lengths are powers of two (at most `max`, itself a power of
/// two): a multi-row statement's text depends on its row count, and with a handful of sizes the
/// prepared statements stay cached instead of being parsed again for every batch.
pub(crate) fn pow2_chunks<T>(items: &[T], max: usize) -> impl Iterator<Item = &[T]> {
    let mut rest = items;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut size = max.max(1);
        while size > rest.len() {
            size /= 2;
        }
        let (head, tail) = rest.split_at(size);
        rest = tail;
        Some(head)
    })
}

pub(crate) struct Placeholders {
    dialect: Dialect,
    next: usize,
}

impl Placeholders {
    pub(crate) fn new(dialect: Dialect) -> Placeholders {
        Placeholders { dialect, next: 0 }
    }

    pub(crate) fn next(&mut self) -> String {
        let mut p = String::with_capacity(4);
        self.push_next(&mut p);
        p
    }

    fn push_next(&mut self, out: &mut String) {
        self.next += 1;
        match self.dialect {
            Dialect::Sqlite => out.push('?'),
            Dialect::Postgres => {
                let _ = write!(out, "${}", self.next);
            }
        }
    }

    /// `(p, p, …), (p, …)` for `rows` rows of `cols` columns; `cast(col)` may give a column a
    /// type (`CAST(p AS type)`). Written straight into one string: an expansion of 100,000
    /// deliveries asks for 1.7 million placeholders, and a string for each cost 17 allocations
    /// per delivery.
    pub(crate) fn rows(
        &mut self,
        rows: usize,
        cols: usize,
        cast: impl Fn(usize) -> Option<&'static str>,
    ) -> String {
        let mut out = String::with_capacity(rows * cols * 4);
        for r in 0..rows {
            if r > 0 {
                out.push(',');
            }
            out.push('(');
            for c in 0..cols {
                if c > 0 {
                    out.push(',');
                }
                match cast(c) {
                    Some(ty) => {
                        out.push_str("CAST(");
                        self.push_next(&mut out);
                        let _ = write!(out, " AS {ty})");
                    }
                    None => self.push_next(&mut out),
                }
            }
            out.push(')');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_never_print() {
        assert_eq!(
            super::redact("postgres://loa:secret@db:5432/loa"),
            "postgres://***@db:5432/loa"
        );
        assert_eq!(super::redact("sqlite://loa.db"), "sqlite://loa.db");
    }

    #[test]
    fn placeholders_per_dialect() {
        use super::{Dialect, Placeholders};
        assert_eq!(
            Placeholders::new(Dialect::Postgres).rows(2, 3, |_| None),
            "($1,$2,$3),($4,$5,$6)"
        );
        assert_eq!(
            Placeholders::new(Dialect::Sqlite).rows(1, 2, |c| (c == 0).then_some("BIGINT")),
            "(CAST(? AS BIGINT),?)"
        );
        let mut ph = Placeholders::new(Dialect::Postgres);
        assert_eq!(
            ph.rows(1, 2, |c| (c == 1).then_some("TEXT")),
            "($1,CAST($2 AS TEXT))"
        );
        assert_eq!(ph.next(), "$3");
    }
}
