//! The announcement repository as a whole: the files, the templates, and the checks that need
//! both (a template exists, renders with the file's data, and fits in one Zalo message). This is
//! what `loa check` runs and what the daemon will load; an announcement with any problem is left
//! out of `announcements`.

use std::path::{Path, PathBuf};

use jiff::Timestamp;

use crate::announce::model::{Announcement, Commune, RuleKind, SendRule};
use crate::announce::problem::{Problem, ProblemKind};
use crate::announce::{self, Catalog, LoadError};
use crate::render::{MAX_TEXT_CHARS, Templates};
use crate::schedule::Trigger;

pub struct Repo {
    pub dir: PathBuf,
    pub commune: Option<Commune>,
    /// Announcements that passed every check, by id.
    pub announcements: Vec<Announcement>,
    pub templates: Templates,
    /// Every problem in files and templates, by path and position.
    pub problems: Vec<Problem>,
}

/// The templates directory that goes with an announcement directory: `templates/` beside it.
pub fn default_templates_dir(dir: &Path) -> PathBuf {
    match (dir.file_name(), dir.parent()) {
        (Some(_), Some(parent)) => parent.join("templates"),
        _ => dir.join("..").join("templates"),
    }
}

impl Repo {
    pub fn open(dir: &Path, templates_dir: Option<&Path>) -> Result<Repo, LoadError> {
        let Catalog {
            dir,
            commune,
            announcements,
            mut problems,
        } = announce::load_dir(dir)?;
        let templates_dir =
            templates_dir.map_or_else(|| default_templates_dir(&dir), Path::to_path_buf);
        let (templates, template_problems) = Templates::load(&templates_dir);
        problems.extend(template_problems);
        let mut valid = Vec::with_capacity(announcements.len());
        if let Some(commune) = &commune {
            let checked =
                announce::parallel_map(&announcements, |a| render_problems(a, commune, &templates));
            for (a, ps) in announcements.into_iter().zip(checked) {
                if ps.is_empty() {
                    valid.push(a);
                } else {
                    problems.extend(ps);
                }
            }
        }
        problems.sort_by(|a, b| (&a.path, a.pos).cmp(&(&b.path, b.pos)));
        problems.dedup();
        Ok(Repo {
            dir,
            commune,
            announcements: valid,
            templates,
            problems,
        })
    }

    pub fn announcement(&self, id: &str) -> Option<&Announcement> {
        announce::find(&self.announcements, id)
    }
}

/// Reads and checks one file as `loa check` does, against the loaded commune and templates: a
/// same-id twin, the YAML and its fields, then the renders. The announcement and its source, or
/// every problem found.
pub fn check_file(
    dir: &Path,
    path: &Path,
    commune: &Commune,
    templates: &Templates,
) -> Result<(Announcement, String), Vec<Problem>> {
    if let Some(other) = announce::same_id_file(path) {
        return Err(vec![announce::same_id_problem(dir, path, &other)]);
    }
    let source = announce::read_file(path)?;
    let ann = announce::announcement_from_text(dir, path, &source, Some(commune))?;
    let problems = render_problems(&ann, commune, templates);
    if problems.is_empty() {
        Ok((ann, source))
    } else {
        Err(problems)
    }
}

/// Renders the announcement the ways it will be sent — every rule (each reminder offset) for
/// every village — and reports what fails or is too long.
pub fn render_problems(
    ann: &Announcement,
    commune: &Commune,
    templates: &Templates,
) -> Vec<Problem> {
    let problem = |kind| vec![Problem::new(&ann.path, ann.template_pos, "template", kind)];
    if !templates.has(&ann.template) {
        return problem(ProblemKind::TemplateMissing {
            name: ann.template.clone(),
        });
    }
    let mut villages: Vec<Option<&crate::announce::model::Village>> = ann
        .audience
        .villages
        .iter()
        .filter_map(|id| commune.village(id))
        .map(Some)
        .collect();
    if ann.audience.whole_commune || villages.is_empty() {
        villages.push(None);
    }
    // Every rule (and every offset of a reminder rule) with every village: a template may
    // branch on either (`{% if send.before_event == "2 giờ" %}`), and a branch that fails at
    // send time would make the whole send missed.
    let samples: Vec<(Timestamp, Trigger)> = ann
        .rules
        .iter()
        .flat_map(|r| every_sample(ann, commune, r))
        .collect();
    let combos = villages
        .iter()
        .flat_map(|v| samples.iter().map(move |s| (*v, s)));
    let mut longest: Option<(usize, Option<String>)> = None;
    for (village, (at, trigger)) in combos {
        match templates.render(ann, commune, village, *at, trigger) {
            Err(detail) => {
                return problem(ProblemKind::TemplateRender {
                    template: ann.template.clone(),
                    detail,
                });
            }
            Ok(text) => {
                let chars = text.chars().count();
                if chars > MAX_TEXT_CHARS && longest.as_ref().is_none_or(|(n, _)| chars > *n) {
                    longest = Some((chars, village.map(|v| v.name.clone())));
                }
            }
        }
    }
    match longest {
        Some((chars, village)) => problem(ProblemKind::TooLong {
            chars,
            limit: MAX_TEXT_CHARS,
            village,
        }),
        None => vec![],
    }
}

/// A send of a rule for each trigger text it can carry: its first time, and for a reminder rule
/// each offset.
fn every_sample(
    ann: &Announcement,
    commune: &Commune,
    rule: &SendRule,
) -> Vec<(Timestamp, Trigger)> {
    match (&rule.kind, &ann.event) {
        (RuleKind::BeforeEvent { offsets }, Some(event)) => offsets
            .iter()
            .filter_map(|offset| reminder(event, *offset))
            .collect(),
        _ => sample(ann, commune, rule).into_iter().collect(),
    }
}

/// A representative send of a rule: its first time, with the trigger it would carry.
pub fn sample(
    ann: &Announcement,
    commune: &Commune,
    rule: &SendRule,
) -> Option<(Timestamp, Trigger)> {
    match &rule.kind {
        RuleKind::Once { at } => Some((*at, Trigger::Once)),
        RuleKind::Cron { expr, from, .. } => {
            let start = from
                .or(ann.event.as_ref().map(|e| e.starts))
                .unwrap_or(Timestamp::UNIX_EPOCH);
            let t = expr
                .cron
                .iter_from(
                    start.to_zoned(commune.tz.clone()),
                    croner::Direction::Forward,
                )
                .next()?;
            Some((
                t.timestamp(),
                Trigger::Cron {
                    expr: expr.source.clone(),
                },
            ))
        }
        RuleKind::BeforeEvent { offsets } => reminder(ann.event.as_ref()?, *offsets.first()?),
    }
}

/// The send of a reminder `offset` before `event`, with its trigger.
fn reminder(
    event: &crate::announce::model::Event,
    offset: jiff::SignedDuration,
) -> Option<(Timestamp, Trigger)> {
    let at = event.starts.checked_sub(offset).ok()?;
    Some((
        at,
        Trigger::BeforeEvent {
            offset: announce::values::format_duration(offset),
        },
    ))
}
