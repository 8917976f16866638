//! The announcement directory: `commune.yaml` plus one `*.yaml` file per announcement, at any
//! depth. Loading parses and validates every file, in parallel, and keeps going past bad ones: the
//! result holds every valid announcement and every problem.

pub mod cadence;
pub mod data;
pub mod model;
pub mod problem;
pub mod raw;
pub mod validate;
pub mod values;
mod yaml;

use std::path::{Path, PathBuf};

use model::{Announcement, Commune};
use problem::{Pos, Problem, ProblemKind};

pub const COMMUNE_FILE: &str = "commune.yaml";

/// Everything loaded from one announcement directory.
#[derive(Debug)]
pub struct Catalog {
    pub dir: PathBuf,
    /// None when commune.yaml is missing or has problems.
    pub commune: Option<Commune>,
    /// Valid announcements, by id.
    pub announcements: Vec<Announcement>,
    /// Every problem, by path and position.
    pub problems: Vec<Problem>,
}

/// Why a directory could not be loaded at all (as opposed to having problems).
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read announcement directory {dir}: {source}")]
    Dir {
        dir: PathBuf,
        source: std::io::Error,
    },
}

impl Catalog {
    pub fn announcement(&self, id: &str) -> Option<&Announcement> {
        find(&self.announcements, id)
    }

    pub fn by_path(&self, path: &Path) -> Option<&Announcement> {
        let wanted = std::fs::canonicalize(path).ok()?;
        self.announcements
            .iter()
            .find(|a| std::fs::canonicalize(&a.path).ok().as_deref() == Some(&wanted))
    }
}

/// Looks an announcement up by id in a list kept sorted by id, as loading leaves it.
pub fn find<'a>(announcements: &'a [Announcement], id: &str) -> Option<&'a Announcement> {
    let i = announcements
        .binary_search_by(|a| a.id.as_str().cmp(id))
        .ok()?;
    announcements.get(i)
}

/// `commune.yaml` alone, validated.
pub fn load_commune(dir: &Path) -> Result<Commune, Vec<Problem>> {
    let commune_path = dir.join(COMMUNE_FILE);
    if !commune_path.is_file() {
        return Err(vec![Problem::new(
            &commune_path,
            Pos::FILE,
            "",
            ProblemKind::NoCommuneFile,
        )]);
    }
    read(&commune_path).and_then(|text| {
        let raw: raw::RawCommune = yaml::parse(&commune_path, &text)?;
        validate::commune(&commune_path, &raw)
    })
}

pub fn load_dir(dir: &Path) -> Result<Catalog, LoadError> {
    let mut files = Vec::new();
    walk(dir, dir, &mut files).map_err(|source| LoadError::Dir {
        dir: dir.to_path_buf(),
        source,
    })?;
    files.sort();
    let mut problems = Vec::new();
    // `x.yaml` and `x.yml` would both be announcement `x`: neither is loaded until one goes.
    // Found in the list just walked, not by asking the disk again for each file.
    let listed: std::collections::HashSet<PathBuf> = files.iter().cloned().collect();
    files.retain(|path| match twin(path).filter(|t| listed.contains(t)) {
        Some(other) => {
            problems.push(same_id_problem(dir, path, &other));
            false
        }
        None => true,
    });
    let commune = match load_commune(dir) {
        Ok(c) => Some(c),
        Err(ps) => {
            problems.extend(ps);
            None
        }
    };
    let results = parallel_map(&files, |path| {
        load_announcement(dir, path, commune.as_ref())
    });
    let mut announcements = Vec::new();
    for r in results {
        match r {
            Ok(a) => announcements.push(a),
            Err(ps) => problems.extend(ps),
        }
    }
    announcements.sort_by(|a, b| a.id.cmp(&b.id));
    problems.sort_by(|a, b| (&a.path, a.pos).cmp(&(&b.path, b.pos)));
    Ok(Catalog {
        dir: dir.to_path_buf(),
        commune,
        announcements,
        problems,
    })
}

/// Every `*.yaml`/`*.yml` below `dir` except the commune file; hidden folders (`.git`) skipped.
fn walk(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let name = entry.file_name();
        if name.to_string_lossy().starts_with('.') {
            continue;
        }
        if entry.file_type()?.is_dir() {
            walk(root, &path, out)?;
        } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml")
            && path != root.join(COMMUNE_FILE)
        {
            out.push(path);
        }
    }
    Ok(())
}

fn read(path: &Path) -> Result<String, Vec<Problem>> {
    let bytes = std::fs::read(path).map_err(|e| {
        vec![Problem::new(
            path,
            Pos::FILE,
            "",
            ProblemKind::Unreadable {
                error: e.to_string(),
            },
        )]
    })?;
    String::from_utf8(bytes)
        .map_err(|_| vec![Problem::new(path, Pos::FILE, "", ProblemKind::NotUtf8)])
}

/// The other file that would have the same announcement id as `path` (`x.yml` for `x.yaml`, and
/// the other way round), if it exists.
pub fn same_id_file(path: &Path) -> Option<PathBuf> {
    twin(path).filter(|other| other.is_file())
}

/// The path with the other YAML extension.
fn twin(path: &Path) -> Option<PathBuf> {
    match path.extension()?.to_str()? {
        "yaml" => Some(path.with_extension("yml")),
        "yml" => Some(path.with_extension("yaml")),
        _ => None,
    }
}

/// The problem reported on `path` when `other` has its announcement id.
pub fn same_id_problem(dir: &Path, path: &Path, other: &Path) -> Problem {
    Problem::new(
        path,
        Pos::FILE,
        "",
        ProblemKind::SameIdFile {
            id: announcement_id(dir, path),
            other: other
                .file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
        },
    )
}

/// The id of an announcement: its path below the directory, without extension, with `/`.
pub fn announcement_id(dir: &Path, path: &Path) -> String {
    path.strip_prefix(dir)
        .unwrap_or(path)
        .with_extension("")
        .to_string_lossy()
        .replace('\\', "/")
}

fn load_announcement(
    dir: &Path,
    path: &Path,
    commune: Option<&Commune>,
) -> Result<Announcement, Vec<Problem>> {
    let text = read(path)?;
    announcement_from_text(dir, path, &text, commune)
}

/// Parses and validates one announcement from its text (a file just changed, or a stored revision).
pub fn announcement_from_text(
    dir: &Path,
    path: &Path,
    text: &str,
    commune: Option<&Commune>,
) -> Result<Announcement, Vec<Problem>> {
    let raw: raw::RawAnnouncement = yaml::parse(path, text)?;
    validate::announcement(path, &announcement_id(dir, path), &raw, text, commune)
}

/// Reads one file as text, or the problem that prevents it.
pub fn read_file(path: &Path) -> Result<String, Vec<Problem>> {
    read(path)
}

/// Maps `f` over `items` on all cores, keeping order. Files are independent, so this is where
/// checking 10,000 of them gets its second core.
pub fn parallel_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(8);
    if threads == 1 || items.len() < 64 {
        return items.iter().map(f).collect();
    }
    let chunk = items.len().div_ceil(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = items
            .chunks(chunk)
            .map(|c| s.spawn(|| c.iter().map(&f).collect::<Vec<R>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    })
}
