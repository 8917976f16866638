//! What was loaded from the announcement directory: loads, revisions (every good version of every
//! file, with its source), and the current state of each file.

use std::collections::HashMap;

use jiff::Timestamp;
use sqlx::Row as _;

use super::{Store, micros};

/// The stored state of one announcement file.
#[derive(Clone, Debug)]
pub struct StoredAnnouncement {
    pub revision: i64,
    pub content_hash: String,
    pub active: bool,
}

/// One load of the directory, for the record.
pub struct Load<'a> {
    pub node: &'a str,
    pub git_commit: Option<&'a str>,
    pub files: usize,
    pub problems: usize,
    pub templates_hash: &'a str,
}

impl Store {
    pub async fn upsert_commune(&self, id: &str, name: &str, now: Timestamp) -> sqlx::Result<()> {
        let mut tx = self.write().await?;
        sqlx::query(
            "INSERT INTO communes (id, name, updated_at) VALUES ($1, $2, $3)
             ON CONFLICT (id) DO UPDATE SET name = $2, updated_at = $3",
        )
        .bind(id)
        .bind(name)
        .bind(micros(now))
        .execute(&mut *tx)
        .await?;
        tx.commit().await
    }

    pub async fn record_load(
        &self,
        commune: &str,
        load: &Load<'_>,
        now: Timestamp,
    ) -> sqlx::Result<()> {
        let mut tx = self.write().await?;
        sqlx::query(
            "INSERT INTO loads (commune_id, at, node, git_commit, files, problems, templates_hash)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(commune)
        .bind(micros(now))
        .bind(load.node)
        .bind(load.git_commit)
        .bind(load.files as i64)
        .bind(load.problems as i64)
        .bind(load.templates_hash)
        .execute(&mut *tx)
        .await?;
        tx.commit().await
    }

    /// Every announcement the store knows for the commune, with its current revision and hash.
    pub async fn stored_announcements(
        &self,
        commune: &str,
    ) -> sqlx::Result<HashMap<String, StoredAnnouncement>> {
        self.stored_where(commune, None).await
    }

    /// The same for some announcements only (a re-plan of changed files reads just those).
    pub async fn stored_announcements_for(
        &self,
        commune: &str,
        ids: &[&str],
    ) -> sqlx::Result<HashMap<String, StoredAnnouncement>> {
        let mut out = HashMap::new();
        for chunk in ids.chunks(500) {
            out.extend(self.stored_where(commune, Some(chunk)).await?);
        }
        Ok(out)
    }

    async fn stored_where(
        &self,
        commune: &str,
        ids: Option<&[&str]>,
    ) -> sqlx::Result<HashMap<String, StoredAnnouncement>> {
        let filter = match ids {
            Some(ids) if !ids.is_empty() => {
                format!(
                    " AND a.id IN ({})",
                    (0..ids.len())
                        .map(|i| format!("${}", i + 2))
                        .collect::<Vec<_>>()
                        .join(",")
                )
            }
            Some(_) => return Ok(HashMap::new()),
            None => String::new(),
        };
        let sql = format!(
            "SELECT a.id, a.revision, a.status, r.content_hash
             FROM announcements a JOIN revisions r
               ON r.commune_id = a.commune_id AND r.announcement_id = a.id AND r.revision = a.revision
             WHERE a.commune_id = $1{filter}"
        );
        let mut q = sqlx::query(&sql).bind(commune);
        for id in ids.unwrap_or_default() {
            q = q.bind(*id);
        }
        let rows = q.fetch_all(&self.pool).await?;
        let mut out = HashMap::with_capacity(rows.len());
        for row in rows {
            let status: String = row.try_get("status")?;
            out.insert(
                row.try_get("id")?,
                StoredAnnouncement {
                    revision: row.try_get("revision")?,
                    content_hash: row.try_get("content_hash")?,
                    active: status == "active",
                },
            );
        }
        Ok(out)
    }

    /// The source of a stored revision, to rebuild the last good version of a file.
    pub async fn revision_source(
        &self,
        commune: &str,
        id: &str,
        revision: i64,
    ) -> sqlx::Result<Option<(String, String)>> {
        let row = sqlx::query(
            "SELECT path, source FROM revisions WHERE commune_id = $1 AND announcement_id = $2 AND revision = $3",
        )
        .bind(commune)
        .bind(id)
        .bind(revision)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| Ok((r.try_get("path")?, r.try_get("source")?)))
            .transpose()
    }

    /// The current revision and source of every active announcement (to extend the horizon).
    pub async fn current_sources(
        &self,
        commune: &str,
    ) -> sqlx::Result<Vec<(String, i64, String, String)>> {
        let rows = sqlx::query(
            "SELECT a.id, a.revision, r.path, r.source FROM announcements a JOIN revisions r
               ON r.commune_id = a.commune_id AND r.announcement_id = a.id AND r.revision = a.revision
             WHERE a.commune_id = $1 AND a.status = 'active'",
        )
        .bind(commune)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?)))
            .collect()
    }

    /// The versions (id, revision, path, source) of the planned sends due by `until`: the due loop
    /// reads them ahead, so a fan-out of many announcements does not parse them at its due time.
    pub async fn upcoming_sources(
        &self,
        commune: &str,
        until: jiff::Timestamp,
    ) -> sqlx::Result<Vec<(String, i64, String, String)>> {
        let rows = sqlx::query(
            "SELECT r.announcement_id, r.revision, r.path, r.source FROM revisions r
             WHERE r.commune_id = $1 AND EXISTS (
               SELECT 1 FROM occurrences o WHERE o.commune_id = $1 AND o.state = 'planned' AND o.send_at <= $2
                 AND o.announcement_id = r.announcement_id AND o.revision = r.revision)",
        )
        .bind(commune)
        .bind(super::micros(until))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?)))
            .collect()
    }

    /// The latest problems of each file that does not validate, as stored JSON.
    pub async fn file_problems(&self, commune: &str) -> sqlx::Result<Vec<(String, String)>> {
        let rows = sqlx::query("SELECT id, problems FROM announcements WHERE commune_id = $1 AND problems IS NOT NULL ORDER BY id")
            .bind(commune)
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter()
            .map(|r| Ok((r.try_get("id")?, r.try_get("problems")?)))
            .collect()
    }
}
