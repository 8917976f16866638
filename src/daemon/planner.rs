//! Planning: files → revisions → occurrences in the ledger. A full load reads every file (start,
//! SIGHUP, a change to commune.yaml or a template); a file change re-plans that file alone; the
//! horizon is extended as time passes. An edited file is a new revision whose future sends replace
//! the old ones; a deleted file's future sends are cancelled; a file that stops validating keeps
//! its last good version scheduled, with its problems stored for the dashboard.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use jiff::Timestamp;

use super::plan_pass::{git_commit, hash};
use super::{Daemon, Loaded};
use crate::announce::model::{Announcement, Commune};
use crate::announce::problem::{Lang, Problem};
use crate::announce::{self, COMMUNE_FILE};
use crate::content::{self, Repo};
use crate::deliver::Channel;
use crate::ledger::{Load, NewOccurrence, PlanChange, Replan};
use crate::render::Templates;
use crate::schedule::{self, Window};

/// One file's state after reading it.
pub(super) enum Entry {
    Valid {
        ann: Box<Announcement>,
        source: String,
    },
    Invalid {
        problems: Vec<Problem>,
    },
    Missing,
}

/// What a planning pass did, for logs and tests.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PlanSummary {
    pub files: usize,
    pub problems: usize,
    pub revisions: usize,
    pub inserted: usize,
    pub cancelled: usize,
    /// Planned sends given a new time by a change to commune.yaml.
    pub moved: usize,
}

impl<C: Channel> Daemon<C> {
    /// Reads every file and plans. Fails only when nothing can be planned at all (no valid
    /// commune.yaml on the first load); later, a broken commune.yaml keeps the last good one.
    pub async fn load_all(&self, now: Timestamp) -> anyhow::Result<PlanSummary> {
        let (dir, tdir) = (self.settings.dir.clone(), self.settings.templates.clone());
        let (repo, sources) = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
            let repo = Repo::open(&dir, Some(&tdir))?;
            let sources: HashMap<String, String> = repo
                .announcements
                .iter()
                .filter_map(|a| {
                    std::fs::read_to_string(&a.path)
                        .ok()
                        .map(|s| (a.id.clone(), s))
                })
                .collect();
            Ok((repo, sources))
        })
        .await??;
        for p in repo
            .problems
            .iter()
            .filter(|p| self.announcement_id_of(&p.path).is_none())
        {
            tracing::warn!(problem = %p.render(Lang::En), "problem outside announcement files");
        }
        let mut guard = self.loaded.write().await;
        // Build the new state beside the old one: a failed load keeps the last good state.
        let (commune, templates, previous) = match (repo.commune, guard.as_ref()) {
            (Some(c), prev) => (
                c,
                repo.templates,
                prev.map(|p| p.announcements.clone()).unwrap_or_default(),
            ),
            (None, Some(old)) => {
                tracing::error!(
                    "commune.yaml does not validate; keeping the last good commune and templates"
                );
                (
                    old.commune.clone(),
                    old.templates.clone(),
                    old.announcements.clone(),
                )
            }
            (None, None) => anyhow::bail!(
                "commune.yaml is missing or invalid; run `loa check {}`",
                self.settings.dir.display()
            ),
        };
        let mut entries: HashMap<String, (PathBuf, Entry)> = HashMap::new();
        for ann in repo.announcements {
            let source = sources.get(&ann.id).cloned().unwrap_or_default();
            entries.insert(
                ann.id.clone(),
                (
                    ann.path.clone(),
                    Entry::Valid {
                        ann: Box::new(ann),
                        source,
                    },
                ),
            );
        }
        for p in repo.problems {
            if let Some(id) = self.announcement_id_of(&p.path) {
                let slot = entries
                    .entry(id)
                    .or_insert_with(|| (p.path.clone(), Entry::Invalid { problems: vec![] }));
                if let Entry::Invalid { problems } = &mut slot.1 {
                    problems.push(p);
                }
            }
        }
        if self.links.is_none() {
            let valid = entries.values().filter_map(|(_, e)| match e {
                Entry::Valid { ann, .. } => Some(&**ann),
                _ => None,
            });
            let heads = crate::confirm::unable_to_confirm(&commune, valid);
            if !heads.is_empty() {
                tracing::warn!(heads = %heads.join(", "),
                    "these heads are asked to confirm but have no Zalo id and there are no confirm links ([confirm] public_url): they cannot confirm, and will be reminded and reported");
            }
        }
        let stored = self
            .store
            .stored_announcements(&self.settings.commune_id)
            .await?;
        for (id, s) in &stored {
            if s.active && !entries.contains_key(id) {
                entries.insert(
                    id.clone(),
                    (self.settings.dir.join(format!("{id}.yaml")), Entry::Missing),
                );
            }
        }
        self.store
            .upsert_commune(&self.settings.commune_id, &commune.name, now)
            .await?;
        let templates_hash = hash(&format!("{:?}", templates.dir()));
        let mut loaded = Loaded {
            commune,
            templates,
            announcements: previous,
        };
        let summary = self.plan_entries(&mut loaded, entries, now, true).await?;
        self.store
            .record_load(
                &self.settings.commune_id,
                &Load {
                    node: &self.settings.node,
                    git_commit: git_commit(&self.settings.dir).as_deref(),
                    files: summary.files,
                    problems: summary.problems,
                    templates_hash: &templates_hash,
                },
                now,
            )
            .await?;
        *guard = Some(loaded);
        drop(guard);
        release_freed_memory();
        Ok(summary)
    }

    /// Re-plans the files at `paths` only (they changed or disappeared). A change to commune.yaml
    /// or to a template needs everything re-checked: that is a full load.
    pub async fn load_files(
        &self,
        paths: &[PathBuf],
        now: Timestamp,
    ) -> anyhow::Result<PlanSummary> {
        // A path without a YAML extension below the announcements is a directory (moved in or
        // out, or made and filled before its watch was set): every file under it changed, and
        // only a full load sees which.
        let needs_full = paths.iter().any(|p| {
            p.file_name().is_some_and(|n| n == COMMUNE_FILE)
                || p.starts_with(&self.settings.templates)
                || p.extension().is_some_and(|e| e == "tera")
                || (p.starts_with(&self.settings.dir)
                    && !p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        });
        if needs_full || self.loaded.read().await.is_none() {
            return self.load_all(now).await;
        }
        let mut guard = self.loaded.write().await;
        let Some(loaded) = guard.as_mut() else {
            return Ok(PlanSummary::default());
        };
        let mut entries = HashMap::new();
        for path in paths
            .iter()
            .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        {
            let Some(id) = self.announcement_id_of(path) else {
                continue;
            };
            // A file removed beside its twin (`x.yml` beside `x.yaml`) leaves the twin as the
            // announcement.
            let path = match announce::same_id_file(path) {
                Some(twin) if !path.exists() => twin,
                _ => path.clone(),
            };
            let entry = if path.exists() {
                check_one(
                    &self.settings.dir,
                    &path,
                    &loaded.commune,
                    &loaded.templates,
                )
            } else {
                Entry::Missing
            };
            entries.insert(id, (path, entry));
        }
        self.plan_entries(loaded, entries, now, false).await
    }

    /// Plans the one file at `path` (absolute, inside the announcement directory) from the text
    /// `source` already checked against `commune` and `templates`, for `loa send`: the rest of the
    /// directory is neither planned nor cancelled, as it may be another checkout than the
    /// daemon's. Returns the announcement's id.
    pub async fn load_alone(
        &self,
        commune: Commune,
        templates: Templates,
        path: &Path,
        source: String,
        now: Timestamp,
    ) -> anyhow::Result<String> {
        // As the daemon's walk of the directory: nothing under a hidden directory (`.drafts/`).
        let hidden = path
            .strip_prefix(&self.settings.dir)
            .map(|rel| {
                rel.components()
                    .any(|c| c.as_os_str().to_string_lossy().starts_with('.'))
            })
            .unwrap_or(true);
        let id = self
            .announcement_id_of(path)
            .filter(|_| !hidden)
            .ok_or_else(|| anyhow::anyhow!("{} is not an announcement file", path.display()))?;
        let ann =
            announce::announcement_from_text(&self.settings.dir, path, &source, Some(&commune))
                .map_err(|_| anyhow::anyhow!("{} no longer validates", path.display()))?;
        self.store
            .upsert_commune(&self.settings.commune_id, &commune.name, now)
            .await?;
        let mut guard = self.loaded.write().await;
        let loaded = guard.get_or_insert_with(|| Loaded {
            commune,
            templates,
            announcements: HashMap::new(),
        });
        let entry = Entry::Valid {
            ann: Box::new(ann),
            source,
        };
        let entries = HashMap::from([(id.clone(), (path.to_path_buf(), entry))]);
        self.plan_entries(loaded, entries, now, false).await?;
        Ok(id)
    }

    /// Writes occurrences up to `now + horizon` for every known announcement, reading their
    /// current versions from the ledger.
    pub async fn extend_horizon(&self, now: Timestamp) -> anyhow::Result<PlanSummary> {
        let commune_id = &self.settings.commune_id;
        let until = self.store.planned_until(commune_id).await?;
        if until.is_some_and(|u| u >= now + self.settings.horizon / 2) {
            return Ok(PlanSummary::default());
        }
        let guard = self.loaded.read().await;
        let Some(loaded) = guard.as_ref() else {
            return Ok(PlanSummary::default());
        };
        let window = Window {
            start: until.unwrap_or(now).min(now),
            end: now + self.settings.horizon,
        };
        let mut change = PlanChange {
            planned_until: Some(window.end),
            ..Default::default()
        };
        for (id, revision, path, source) in self.store.current_sources(commune_id).await? {
            if loaded.announcements.get(&id) != Some(&revision) {
                continue;
            }
            if let Ok(ann) = announce::announcement_from_text(
                &self.settings.dir,
                Path::new(&path),
                &source,
                Some(&loaded.commune),
            ) {
                change
                    .occurrences
                    .extend(occurrences(&ann, &loaded.commune, window));
            }
        }
        let result = self.store.apply_plan(commune_id, &change, now).await?;
        drop(guard);
        release_freed_memory();
        Ok(PlanSummary {
            inserted: result.inserted,
            ..Default::default()
        })
    }

    /// The announcement id of a path inside the announcement directory, if it is one.
    fn announcement_id_of(&self, path: &Path) -> Option<String> {
        let is_yaml = path.extension().is_some_and(|e| e == "yaml" || e == "yml");
        let inside = path.strip_prefix(&self.settings.dir).is_ok();
        (is_yaml && inside && path.file_name().is_some_and(|n| n != COMMUNE_FILE))
            .then(|| announce::announcement_id(&self.settings.dir, path))
    }
}

/// A full load parses every file at once and frees most of it again; glibc keeps freed memory in
/// its arenas unless asked, and an idle daemon should not hold a load's peak for the rest of its
/// life.
fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free heap pages to the kernel; it has no preconditions.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Reads and checks one file against the loaded commune and templates.
fn check_one(dir: &Path, path: &Path, commune: &Commune, templates: &Templates) -> Entry {
    match content::check_file(dir, path, commune, templates) {
        Ok((ann, source)) => Entry::Valid {
            ann: Box::new(ann),
            source,
        },
        Err(problems) => Entry::Invalid { problems },
    }
}

/// Says that the occurrences planned for `ann` over `window` are its whole plan there, so that
/// sends planned under an earlier commune.yaml are moved or cancelled to match.
pub(super) fn replan(ann: &Announcement, window: Window) -> Replan {
    Replan {
        announcement_id: ann.id.clone(),
        rules: ann.rules.iter().map(|r| r.index as i64).collect(),
        from: window.start,
        until: window.end,
    }
}

/// The occurrences to write for one announcement in a window: those that will be sent.
pub(super) fn occurrences(
    ann: &Announcement,
    commune: &Commune,
    window: Window,
) -> Vec<NewOccurrence> {
    schedule::occurrences(ann, commune, window, window.start)
        .into_iter()
        .filter(|o| o.fate.is_sent())
        .map(|o| NewOccurrence {
            announcement_id: o.announcement.clone(),
            rule: o.rule as i64,
            due: o.due,
            send_at: o.send_at,
            deadline: schedule::deadline(ann, &o.trigger, o.send_at),
            trigger: serde_json::to_string(&o.trigger).unwrap_or_default(),
            urgent: ann.is_urgent(),
        })
        .collect()
}
