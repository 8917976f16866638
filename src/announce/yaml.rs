//! YAML text → raw struct, or the problems that stopped it. serde-saphyr gives precise positions,
//! rejects duplicate keys and has no "Norway problem"; serde_path_to_error adds the field path.
//! A deserialization error stops that one file (serde cannot go on after one), which is why the raw
//! structs keep dates, durations and ids as strings: their mistakes are found later, all together.

use std::path::Path;

use serde::de::DeserializeOwned;
use serde_saphyr::Error as YamlError;

use super::problem::{Pos, Problem, ProblemKind, suggest};

/// Parses one file's text. On failure returns every problem found before giving up on the file.
pub fn parse<T: DeserializeOwned>(path: &Path, text: &str) -> Result<T, Vec<Problem>> {
    // Most files are fine: read them without tracking field paths (a tenth of the parse time),
    // and read a failing file again with tracking to name the field.
    if let Ok(value) = serde_saphyr::from_str_with_options(text, options()) {
        return Ok(value);
    }
    // Only a file that fails is searched for tabs: a tab inside a block of text (`body: |`, pasted
    // from a document) or on a blank line is valid YAML.
    let tabs = tab_problems(path, text);
    if !tabs.is_empty() {
        return Err(tabs);
    }
    let mut field = String::new();
    let result = serde_saphyr::with_deserializer_from_str_with_options(text, options(), |de| {
        serde_path_to_error::deserialize::<_, T>(de).map_err(|e| {
            field = e.path().to_string();
            e.into_inner()
        })
    });
    result.map_err(|e| vec![to_problem(path, text, &clean_field(&field), &e)])
}

/// Leading-zero numbers stay text, so a phone number in `data` keeps its 0; only `true`/`false`
/// are booleans, so `no` stays text. Nesting stops at 24 levels (the parser's default is 64): no
/// announcement needs a tenth of that, and each level of `data` is a few deserializer frames on
/// the stack of whichever thread reads the file.
fn options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        strict_booleans: true,
        leading_zero_numbers_as_strings: true,
        with_snippet: false,
        budget: serde_saphyr::budget! { max_depth: 24 },
    }
}

/// Tabs in indentation are the most common mistake of people editing YAML in a plain editor;
/// the parser's own message for them is obscure, so they are found first and named plainly.
fn tab_problems(path: &Path, text: &str) -> Vec<Problem> {
    text.lines()
        .enumerate()
        .filter_map(|(i, line)| {
            let indent = line.len() - line.trim_start_matches([' ', '\t', '-']).len();
            let col = line[..indent].find('\t')?;
            Some(Problem::new(
                path,
                Pos::new(i as u64 + 1, col as u64 + 1),
                "",
                ProblemKind::Tab,
            ))
        })
        .collect()
}

/// serde_path_to_error writes `.` for the root and `?` for unknown segments, and sees the inner
/// `value` field of every position wrapper (`send.value[0].value`): keep only the user's path.
fn clean_field(field: &str) -> String {
    match field {
        "." | "?" => String::new(),
        f => f
            .replace(".value", "")
            .trim_start_matches("value")
            .trim_start_matches('.')
            .to_string(),
    }
}

fn to_problem(path: &Path, text: &str, field: &str, error: &YamlError) -> Problem {
    let error = error.without_snippet();
    let pos = error
        .location()
        .map(|l| Pos::new(l.line().max(1), l.column().max(1)))
        .unwrap_or(Pos::FILE);
    let kind = match error {
        YamlError::SerdeUnknownField {
            field: name,
            expected,
            ..
        } => {
            let suggestion = suggest(name, expected.iter().copied());
            return Problem::new(
                path,
                pos,
                parent_field(field, name),
                ProblemKind::UnknownField {
                    field: name.clone(),
                    suggestion,
                },
            );
        }
        YamlError::SerdeMissingField { field: name, .. } => {
            return Problem::new(
                path,
                mapping_start(text, field).unwrap_or(pos),
                field,
                ProblemKind::MissingField {
                    field: name.to_string(),
                },
            );
        }
        YamlError::SerdeInvalidType {
            unexpected,
            expected,
            ..
        }
        | YamlError::SerdeInvalidValue {
            unexpected,
            expected,
            ..
        } => ProblemKind::WrongType {
            expected: expected.clone(),
            found: unexpected.clone(),
        },
        YamlError::DuplicateMappingKey { key, .. } => ProblemKind::DuplicateKey {
            key: key.clone().unwrap_or_default(),
        },
        YamlError::Unexpected { expected, .. } => ProblemKind::WrongType {
            expected: expected.trim_end_matches(" start").to_string(),
            found: found_at(text, pos),
        },
        YamlError::UnknownAnchor { .. } => ProblemKind::AliasInPlainValue,
        YamlError::Eof { .. } => ProblemKind::Empty,
        other => ProblemKind::Syntax {
            detail: first_line(&other.to_string()),
        },
    };
    Problem::new(path, pos, field, kind)
}

/// For an unknown key, serde_path_to_error's path already ends with the key itself; the problem
/// names the mapping it sits in, and the message names the key.
fn parent_field(field: &str, name: &str) -> String {
    let trimmed = field.strip_suffix(name).unwrap_or(field);
    trimmed.trim_end_matches('.').to_string()
}

/// Where the mapping at `field` starts, for "missing field" problems: the parser reports them at
/// the mapping's last key, which sends people looking at the wrong line. Top level: the first
/// line that is not a comment; a named key: the first line that starts with it.
fn mapping_start(text: &str, field: &str) -> Option<Pos> {
    let key = field.rsplit('.').next().unwrap_or(field);
    if key.contains('[') {
        return None;
    }
    text.lines().enumerate().find_map(|(i, line)| {
        let body = line.trim_start();
        let col = line.len() - body.len();
        let hit = if key.is_empty() {
            !body.is_empty() && !body.starts_with('#') && !body.starts_with("---")
        } else {
            body.strip_prefix(key)
                .is_some_and(|rest| rest.starts_with(':'))
        };
        hit.then(|| Pos::new(i as u64 + 1, line[..col].chars().count() as u64 + 1))
    })
}

/// What the value at a position looks like, for wrong-type messages.
fn found_at(text: &str, pos: Pos) -> String {
    let line = text
        .lines()
        .nth(pos.line.saturating_sub(1) as usize)
        .unwrap_or_default();
    let rest: String = line
        .chars()
        .skip(pos.column.saturating_sub(1) as usize)
        .collect();
    let rest = rest.trim();
    match rest.chars().next() {
        Some('[') | Some('-') => "a sequence".into(),
        Some('{') | None => "a map".into(),
        Some(_) => format!("\"{rest}\""),
    }
}

fn first_line(message: &str) -> String {
    message.lines().next().unwrap_or(message).trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::announce::raw::RawAnnouncement;

    fn problems(text: &str) -> Vec<String> {
        match parse::<RawAnnouncement>(Path::new("t.yaml"), text) {
            Ok(_) => vec![],
            Err(ps) => ps
                .iter()
                .map(|p| p.render(crate::announce::problem::Lang::En))
                .collect(),
        }
    }

    #[test]
    fn unknown_field_names_parent_and_suggests() {
        let out = problems("title: x\nsend:\n  - at: 2026-11-25 08:00\n    untill: 2026-12-01\n");
        assert_eq!(out.len(), 1, "{out:?}");
        assert!(
            out[0].starts_with("t.yaml:4:5: send[0]: unknown field \"untill\""),
            "{out:?}"
        );
        assert!(out[0].contains("did you mean \"until\""), "{out:?}");
    }

    #[test]
    fn tabs_are_reported_on_every_line() {
        let out = problems("title: x\nsend:\n\t- at: 2026-11-25 08:00\n\t- at: 2026-11-26 08:00\n");
        assert_eq!(out.len(), 2);
        assert!(out[0].starts_with("t.yaml:3:1: a tab"), "{out:?}");
    }

    #[test]
    fn tabs_inside_a_block_of_text_or_on_a_blank_line_are_fine() {
        let text = "title: x\nsend:\n  - at: 2026-11-25 08:00\n\t\ndata:\n  body: |\n    Nội dung:\n    \t- mục 1\n";
        let raw: crate::announce::raw::RawAnnouncement =
            parse(Path::new("t.yaml"), text).expect("valid YAML");
        let body = raw
            .data
            .as_ref()
            .map(|d| d.get().json(text)["body"].clone());
        assert_eq!(body, Some(serde_json::json!("Nội dung:\n\t- mục 1\n")));
    }

    #[test]
    fn duplicate_keys_are_refused() {
        let out = problems("title: x\ntitle: y\nsend: []\n");
        assert_eq!(out.len(), 1);
        assert!(out[0].contains("key \"title\" appears twice"), "{out:?}");
    }

    #[test]
    fn unquoted_numbers_stay_text_and_no_norway_problem() {
        let raw: crate::announce::raw::RawCommune = parse(
            Path::new("c.yaml"),
            "commune: NO\nvillages:\n  - id: no\n    name: No\n    heads:\n      - { name: A, phone: 0912345678 }\n",
        )
        .expect("parses");
        assert_eq!(raw.commune.get(), "NO");
        let head = &raw.villages.get()[0].get().heads[0];
        assert_eq!(
            head.get().phone.as_ref().map(|p| p.get().as_str()),
            Some("0912345678")
        );
    }
}
