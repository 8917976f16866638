//! SQLite's WAL checkpoints, off the writer's path. By default the connection that commits runs
//! the checkpoint when the log passes 1,000 pages: it copies them into the database file and
//! syncs both files inside that commit. In a fan-out that commit is the send loop's (the next
//! chunk cannot go out before it is claimed), so every few chunks the sends waited for a disk sync.
//! The writer now never checkpoints; a task copies the log on a reading connection instead, on a
//! thread of its own, a few times a second. Durability is unchanged: a commit is in the log
//! either way, and a checkpoint syncs before and after it copies.

use std::time::Duration;

use sqlx::{AnyPool, Row as _};

/// How often the log is copied into the database file. A fan-out writes a few thousand pages a
/// second, so the log stays within a few megabytes; an idle database costs one cheap call.
pub(super) const EVERY: Duration = Duration::from_millis(250);

/// The checkpointing task; it stops when the last clone of its `Store` is dropped or the pool is
/// closed.
pub(super) struct Checkpoints(tokio::task::JoinHandle<()>);

impl Drop for Checkpoints {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Checkpoints `readers`' database every `every`. A checkpoint that fails (a full disk) or finds
/// another running is tried again at the next tick: the log then only grows, nothing is lost.
pub(super) fn spawn(readers: AnyPool, every: Duration) -> Checkpoints {
    Checkpoints(tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if readers.is_closed() {
                return;
            }
            match checkpoint(&readers).await {
                Ok((_, log, copied)) if log > 0 => {
                    tracing::trace!(log, copied, "WAL checkpoint");
                }
                Ok(_) => {}
                Err(e) if readers.is_closed() => {
                    tracing::trace!(error = %e, "WAL checkpoint after close");
                    return;
                }
                Err(e) => tracing::warn!(error = %e, "WAL checkpoint failed; trying again"),
            }
        }
    }))
}

/// One passive checkpoint: copies what it can without waiting for readers or the writer.
/// Returns SQLite's (busy, pages in the log, pages copied).
pub(super) async fn checkpoint(readers: &AnyPool) -> sqlx::Result<(i64, i64, i64)> {
    let row = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
        .fetch_one(readers)
        .await?;
    Ok((row.try_get(0)?, row.try_get(1)?, row.try_get(2)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::Executor as _;

    async fn autocheckpoint(pool: &AnyPool) -> i64 {
        sqlx::query("PRAGMA wal_autocheckpoint")
            .fetch_one(pool)
            .await
            .unwrap()
            .try_get(0)
            .unwrap()
    }

    #[tokio::test]
    async fn the_log_reaches_the_database_file_without_the_writer_copying_it() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("loa.db");
        let store = super::super::Store::open(&format!("sqlite://{}", file.display()))
            .await
            .unwrap();
        assert_eq!(autocheckpoint(&store.writer).await, 0);
        assert_eq!(autocheckpoint(&store.pool).await, 1000);
        let before = std::fs::metadata(&file).unwrap().len();
        // About 2,500 pages through the writer: past the 1,000 at which it used to checkpoint.
        store
            .writer
            .execute(
                "CREATE TABLE filler (b BLOB);
                 WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2500)
                 INSERT INTO filler SELECT zeroblob(3500) FROM n;",
            )
            .await
            .unwrap();
        let grown = |len: u64| len > before + 8 * 1024 * 1024;
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while !grown(std::fs::metadata(&file).unwrap().len()) {
            assert!(
                std::time::Instant::now() < deadline,
                "the log was not copied into the database file within 5 s"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // Busy (1, -1, -1) while the task's own checkpoint runs; then nothing is left to copy.
        let (log, copied) = loop {
            match checkpoint(&store.pool).await.unwrap() {
                (0, log, copied) => break (log, copied),
                _ => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        };
        assert_eq!(log, copied, "everything in the log is copied");
        store.close().await;
    }
}
