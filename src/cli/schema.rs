//! `loa schema`: the JSON Schema of the file formats, derived from the parser's own structs.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::announce::raw::{RawAnnouncement, RawCommune};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Which file kind; without it, one schema that accepts either.
    #[arg(value_enum)]
    pub kind: Option<SchemaKind>,
    /// Write `commune.schema.json`, `announcement.schema.json` and `loa.schema.json` into DIR.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum SchemaKind {
    Commune,
    Announcement,
}

pub fn commune() -> serde_json::Value {
    schemars::schema_for!(RawCommune).to_value()
}

pub fn announcement() -> serde_json::Value {
    schemars::schema_for!(RawAnnouncement).to_value()
}

/// One schema for every file in the directory: each file is exactly one of the two kinds (their
/// required fields differ and neither allows unknown fields).
pub fn combined() -> serde_json::Value {
    let mut defs = serde_json::Map::new();
    let mut branch = |name: &str, mut schema: serde_json::Value| {
        if let Some(obj) = schema.as_object_mut() {
            if let Some(serde_json::Value::Object(d)) = obj.remove("$defs") {
                defs.extend(d);
            }
            obj.remove("$schema");
        }
        defs.insert(name.to_string(), schema);
        serde_json::json!({ "$ref": format!("#/$defs/{name}") })
    };
    let one_of = vec![
        branch("commune", commune()),
        branch("announcement", announcement()),
    ];
    serde_json::json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "loa",
        "description": "Tệp của loa: commune.yaml hoặc một thông báo.",
        "oneOf": one_of,
        "$defs": defs,
    })
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let pretty = |v: &serde_json::Value| serde_json::to_string_pretty(v).map(|s| s + "\n");
    if let Some(dir) = &args.out {
        std::fs::create_dir_all(dir)?;
        std::fs::write(dir.join("commune.schema.json"), pretty(&commune())?)?;
        std::fs::write(
            dir.join("announcement.schema.json"),
            pretty(&announcement())?,
        )?;
        std::fs::write(dir.join("loa.schema.json"), pretty(&combined())?)?;
        return Ok(ExitCode::SUCCESS);
    }
    let schema = match args.kind {
        None => combined(),
        Some(SchemaKind::Commune) => commune(),
        Some(SchemaKind::Announcement) => announcement(),
    };
    print!("{}", pretty(&schema)?);
    Ok(ExitCode::SUCCESS)
}
