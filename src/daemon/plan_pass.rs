//! One planning pass written to the ledger: each file's entry (valid, broken, gone) becomes its
//! revision, its occurrences over the window and a re-plan of what was planned there before, all
//! in one change; a broken file keeps its last good version, rebuilt from the ledger.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use jiff::Timestamp;
use sha2::Digest as _;

use super::planner::{Entry, PlanSummary, occurrences, replan};
use super::{Daemon, Loaded};
use crate::announce;
use crate::announce::model::{Announcement, Commune};
use crate::announce::problem::{Lang, Problem};
use crate::deliver::Channel;
use crate::ledger::{NewRevision, PlanChange};
use crate::schedule::Window;

pub(super) fn hash(source: &str) -> String {
    let digest = sha2::Sha256::digest(source.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// The commit of the checkout holding `dir`, when it is one (recorded with each load).
pub(super) fn git_commit(dir: &Path) -> Option<String> {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["rev-parse", "HEAD"])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn problems_json(problems: &[Problem]) -> String {
    serde_json::Value::Array(problems.iter().map(|p| p.to_json(Lang::Vi)).collect()).to_string()
}

/// Adds `ann`'s sends over `window` to `change`; on a full load (`full`), also that they are its
/// whole plan there, so that those planned before under another commune.yaml are re-timed.
fn plan(
    change: &mut PlanChange,
    ann: &Announcement,
    commune: &Commune,
    window: Window,
    full: bool,
) {
    change.occurrences.extend(occurrences(ann, commune, window));
    if full {
        change.replans.push(replan(ann, window));
    }
}

impl<C: Channel> Daemon<C> {
    /// `full`: every file was read, with the commune the daemon runs with; only then are sends
    /// already planned re-timed (`Replan`): a change to commune.yaml is always a full load, and
    /// `loa send` from another checkout, whose commune.yaml may be older, must change nothing
    /// else.
    pub(super) async fn plan_entries(
        &self,
        loaded: &mut Loaded,
        entries: HashMap<String, (PathBuf, Entry)>,
        now: Timestamp,
        full: bool,
    ) -> anyhow::Result<PlanSummary> {
        let commune_id = &self.settings.commune_id;
        let stored = if full {
            self.store.stored_announcements(commune_id).await?
        } else {
            let ids: Vec<&str> = entries.keys().map(String::as_str).collect();
            self.store
                .stored_announcements_for(commune_id, &ids)
                .await?
        };
        // Asked once per pass: it starts a process.
        let commit = git_commit(&self.settings.dir);
        let had_problems: HashMap<String, String> = self
            .store
            .file_problems(commune_id)
            .await?
            .into_iter()
            .collect();
        let horizon_end = now + self.settings.horizon;
        // Unchanged announcements continue from where planning stopped (after downtime, that
        // includes what fell due meanwhile: the due loop decides to send late or record it missed).
        let resume = match self.store.planned_until(commune_id).await? {
            Some(until) if until < now => until,
            _ => now,
        };
        let mut change = PlanChange::default();
        let mut summary = PlanSummary {
            files: entries.len(),
            ..Default::default()
        };
        let mut keep: Vec<(String, i64)> = Vec::new();
        for (id, (path, entry)) in entries {
            match entry {
                Entry::Valid { ann, source } => {
                    if had_problems.contains_key(&id) {
                        change.problems.push((id.clone(), None));
                    }
                    let content_hash = hash(&source);
                    let known = stored.get(&id).filter(|s| s.active);
                    let same = known.filter(|s| s.content_hash == content_hash);
                    // A known announcement, changed or not, continues from where planning
                    // stopped: an edit made while the daemon was down does not drop what fell due
                    // meanwhile (the due loop sends the latest late or records it missed). A new
                    // file starts now: nothing from before it was known is sent.
                    let window = Window {
                        start: if known.is_some() { resume } else { now },
                        end: horizon_end,
                    };
                    plan(&mut change, &ann, &loaded.commune, window, full);
                    if same.is_none() {
                        change.revisions.push(NewRevision {
                            announcement_id: id.clone(),
                            content_hash,
                            git_commit: commit.clone(),
                            path: path.display().to_string(),
                            source,
                        });
                    }
                    keep.push((id, same.map_or(-1, |s| s.revision)));
                }
                Entry::Invalid { problems } => {
                    summary.problems += problems.len();
                    for p in &problems {
                        tracing::warn!(problem = %p.render(Lang::En), "announcement file does not validate; keeping its last good version");
                    }
                    change
                        .problems
                        .push((id.clone(), Some(problems_json(&problems))));
                    // Keep the last good version scheduled, from the ledger.
                    if let Some((rev, ann)) =
                        self.stored_version(&id, &stored, &loaded.commune).await?
                    {
                        let window = Window {
                            start: resume,
                            end: horizon_end,
                        };
                        plan(&mut change, &ann, &loaded.commune, window, full);
                        keep.push((id, rev));
                    }
                }
                Entry::Missing => {
                    if stored.get(&id).is_some_and(|s| s.active) {
                        change.deleted.push(id.clone());
                    }
                    loaded.announcements.remove(&id);
                }
            }
        }
        if full {
            change.planned_until = Some(horizon_end);
        }
        let result = self
            .store
            .apply_plan(commune_id, &change, now)
            .await
            .context("writing the plan")?;
        if full {
            // Whatever a full load did not see is gone.
            let seen: std::collections::HashSet<&String> = keep.iter().map(|(id, _)| id).collect();
            loaded.announcements.retain(|id, _| seen.contains(id));
        }
        for (id, rev) in keep {
            let rev = result.current.get(&id).copied().unwrap_or(rev);
            loaded.announcements.insert(id, rev);
        }
        summary.revisions = result.revisions;
        summary.inserted = result.inserted;
        summary.cancelled = result.cancelled;
        summary.moved = result.moved;
        tracing::info!(
            files = summary.files,
            problems = summary.problems,
            revisions = summary.revisions,
            planned = summary.inserted,
            cancelled = summary.cancelled,
            moved = summary.moved,
            "planned"
        );
        Ok(summary)
    }

    /// The last good version of an announcement, rebuilt from the source stored with its revision.
    pub(super) async fn stored_version(
        &self,
        id: &str,
        stored: &HashMap<String, crate::ledger::StoredAnnouncement>,
        commune: &Commune,
    ) -> anyhow::Result<Option<(i64, Arc<Announcement>)>> {
        let Some(s) = stored.get(id).filter(|s| s.active) else {
            return Ok(None);
        };
        let Some((path, source)) = self
            .store
            .revision_source(&self.settings.commune_id, id, s.revision)
            .await?
        else {
            return Ok(None);
        };
        match announce::announcement_from_text(
            &self.settings.dir,
            Path::new(&path),
            &source,
            Some(commune),
        ) {
            Ok(ann) => Ok(Some((s.revision, Arc::new(ann)))),
            Err(_) => Ok(None),
        }
    }
}
