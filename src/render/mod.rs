//! Templates: every `*.tera` file under the templates directory, parsed once at start-up so a
//! broken template fails `loa check`, never a send. Names are paths without `.tera`; names that
//! start with `_` are shared parts (header, footer) meant for `{% include %}`.

pub mod context;
pub mod vi_time;

use std::path::{Path, PathBuf};

use jiff::Timestamp;

use crate::announce::model::{Announcement, Commune, Village};
use crate::announce::problem::{Pos, Problem, ProblemKind};
use crate::schedule::Trigger;
pub use context::View;

/// Zalo's limit for one text message, in characters.
pub const MAX_TEXT_CHARS: usize = 2000;

#[derive(Clone)]
pub struct Templates {
    tera: tera::Tera,
    dir: PathBuf,
}

impl Templates {
    /// Loads every template; a template that does not parse is reported and left out, the others
    /// still load.
    pub fn load(dir: &Path) -> (Templates, Vec<Problem>) {
        let mut problems = Vec::new();
        let mut sources = Vec::new();
        collect(dir, dir, &mut sources, &mut problems);
        sources.sort();
        let mut tera = tera::Tera::new();
        tera.autoescape_on(Vec::<&str>::new());
        // Shared parts first, so templates that include them find them. A template must also
        // come after the one it `{% extends %}`, whatever their names: those that fail are tried
        // again while another pass adds something, and only what never loads is reported.
        sources.sort_by_key(|(name, _)| !name.starts_with('_') && !name.contains("/_"));
        let mut failed = Vec::new();
        loop {
            let before = sources.len();
            for (name, text) in std::mem::take(&mut sources) {
                if let Err(e) = tera.add_raw_template(&name, &text) {
                    failed.push((name, text, e));
                }
            }
            if failed.len() == before || failed.is_empty() {
                break;
            }
            sources = failed
                .drain(..)
                .map(|(name, text, _)| (name, text))
                .collect();
        }
        for (name, _, e) in failed {
            let path = dir.join(format!("{name}.tera"));
            let (pos, detail) = error_position(&e);
            problems.push(Problem::new(
                &path,
                pos,
                "",
                ProblemKind::TemplateSyntax { detail },
            ));
        }
        (
            Templates {
                tera,
                dir: dir.to_path_buf(),
            },
            problems,
        )
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn has(&self, name: &str) -> bool {
        self.tera.contains_template(name)
    }

    /// The exact text one recipient group gets: trailing spaces trimmed per line, at most one
    /// blank line in a row, no blank lines at either end.
    pub fn render(
        &self,
        ann: &Announcement,
        commune: &Commune,
        village: Option<&Village>,
        at: Timestamp,
        trigger: &Trigger,
    ) -> Result<String, String> {
        let view = View::new(ann, commune, village, at, trigger);
        let context = tera::Context::from_serialize(&view).map_err(|e| e.to_string())?;
        let text = self
            .tera
            .render(&ann.template, &context)
            .map_err(|e| describe(&e))?;
        Ok(tidy(&text))
    }
}

fn collect(root: &Path, dir: &Path, out: &mut Vec<(String, String)>, problems: &mut Vec<Problem>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        problems.push(Problem::new(
            dir,
            Pos::FILE,
            "",
            ProblemKind::Unreadable {
                error: "không mở được thư mục mẫu tin".into(),
            },
        ));
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(root, &path, out, problems);
        } else if path.extension().is_some_and(|e| e == "tera") {
            let name = path
                .strip_prefix(root)
                .unwrap_or(&path)
                .with_extension("")
                .to_string_lossy()
                .replace('\\', "/");
            match std::fs::read_to_string(&path) {
                Ok(text) => out.push((name, text)),
                Err(e) => problems.push(Problem::new(
                    &path,
                    Pos::FILE,
                    "",
                    ProblemKind::Unreadable {
                        error: e.to_string(),
                    },
                )),
            }
        }
    }
}

/// Tera's reports carry their own position; take it for the problem and keep the message short.
fn error_position(e: &tera::Error) -> (Pos, String) {
    match e.kind() {
        tera::ErrorKind::SyntaxError(r) | tera::ErrorKind::RenderingError(r) => {
            let span = r.span();
            (
                Pos::new(span.start_line as u64, span.start_col as u64 + 1),
                one_line(r.message()),
            )
        }
        other => (Pos::FILE, one_line(&other.to_string())),
    }
}

/// A one-line description of a render error, with the template position when Tera gives one.
fn describe(e: &tera::Error) -> String {
    match e.kind() {
        tera::ErrorKind::RenderingError(r) => {
            let span = r.span();
            format!(
                "{} ({}.tera:{}:{})",
                r.message(),
                r.filename(),
                span.start_line,
                span.start_col + 1
            )
        }
        other => other
            .to_string()
            .lines()
            .next()
            .unwrap_or_default()
            .to_string(),
    }
}

/// Problems print one per line; Tera's reports can span several with a code snippet.
fn one_line(message: &str) -> String {
    message
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or_default()
        .to_string()
}

fn tidy(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut blank_run = 0;
    for line in text.lines().map(str::trim_end) {
        if line.is_empty() {
            blank_run += 1;
            if blank_run > 1 || out.is_empty() {
                continue;
            }
        } else {
            blank_run = 0;
        }
        out.push_str(line);
        out.push('\n');
    }
    out.trim_end().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_template_loads_whatever_the_name_of_the_one_it_extends() {
        let dir = tempfile::tempdir().expect("tempdir");
        let write = |name: &str, text: &str| {
            std::fs::write(dir.path().join(format!("{name}.tera")), text).expect("write")
        };
        // "general" sorts before "khung", the frame it extends.
        write(
            "general",
            "{% extends \"khung\" %}{% block body %}Nội dung{% endblock %}",
        );
        write("khung", "Xã thông báo: {% block body %}{% endblock %}.");
        write("hong", "{% if %}");
        let (templates, problems) = Templates::load(dir.path());
        assert!(templates.has("general") && templates.has("khung"));
        assert!(!templates.has("hong"));
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].path.ends_with("hong.tera"), "{problems:?}");
    }
}
