//! Parsed versions of announcements for rendering: the one a due send names (its revision, from
//! the source the ledger keeps), cached, and read ahead for what falls due soon.

use std::path::Path;
use std::sync::Arc;

use jiff::Timestamp;

use super::Daemon;
use crate::announce;
use crate::announce::model::{Announcement, Commune};
use crate::deliver::Channel;
use crate::render::Templates;

impl<C: Channel> Daemon<C> {
    /// The version of an announcement at a revision, for rendering a due occurrence: from the
    /// cache, or parsed from the source the ledger keeps with the revision.
    pub(super) async fn version(
        &self,
        id: &str,
        revision: i64,
    ) -> anyhow::Result<Option<(Arc<Announcement>, Commune)>> {
        let guard = self.loaded.read().await;
        let Some(loaded) = guard.as_ref() else {
            return Ok(None);
        };
        let key = (id.to_string(), revision);
        let cached = self.versions.lock().ok().and_then(|c| c.get(&key).cloned());
        if let Some(ann) = cached {
            return Ok(Some((ann, loaded.commune.clone())));
        }
        let Some((path, source)) = self
            .store
            .revision_source(&self.settings.commune_id, id, revision)
            .await?
        else {
            return Ok(None);
        };
        let Ok(ann) = announce::announcement_from_text(
            &self.settings.dir,
            Path::new(&path),
            &source,
            Some(&loaded.commune),
        ) else {
            return Ok(None);
        };
        let ann = Arc::new(ann);
        if let Ok(mut cache) = self.versions.lock() {
            if cache.len() >= super::VERSION_CACHE {
                cache.clear();
            }
            cache.insert(key, ann.clone());
        }
        Ok(Some((ann, loaded.commune.clone())))
    }

    /// Parses ahead the versions of what falls due by `until`, so the due moment only renders.
    pub async fn read_ahead(&self, until: Timestamp) -> anyhow::Result<usize> {
        let sources = self
            .store
            .upcoming_sources(&self.settings.commune_id, until)
            .await?;
        let guard = self.loaded.read().await;
        let Some(loaded) = guard.as_ref() else {
            return Ok(0);
        };
        let missing: Vec<_> = {
            let cache = self
                .versions
                .lock()
                .map_err(|_| anyhow::anyhow!("version cache poisoned"))?;
            sources
                .into_iter()
                .filter(|(id, rev, _, _)| !cache.contains_key(&(id.clone(), *rev)))
                .collect()
        };
        let mut parsed = Vec::with_capacity(missing.len());
        for (id, rev, path, source) in missing {
            if let Ok(ann) = announce::announcement_from_text(
                &self.settings.dir,
                Path::new(&path),
                &source,
                Some(&loaded.commune),
            ) {
                parsed.push(((id, rev), Arc::new(ann)));
            }
        }
        let n = parsed.len();
        if let Ok(mut cache) = self.versions.lock() {
            if cache.len() + n > super::VERSION_CACHE.max(n) {
                cache.clear();
            }
            cache.extend(parsed);
        }
        Ok(n)
    }

    pub(super) async fn with_templates<R>(&self, f: impl FnOnce(&Templates) -> R) -> Option<R> {
        self.loaded.read().await.as_ref().map(|l| f(&l.templates))
    }
}
