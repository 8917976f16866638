//! The free `data` map of an announcement, read so that the message says what the committer
//! wrote. YAML reads `50.000` as the float 50.0, but in Vietnamese writing it is fifty thousand
//! (`Lệ phí 50.000 đồng` would come out as "50.0"), and `10.10` (a date) as 10.1: a float is kept
//! as its source text. Integers, text and booleans are read as YAML reads them.

use std::borrow::Cow;
use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use serde_saphyr::Spanned;

/// One node of `data` as parsed; each child keeps where it was written.
#[derive(Debug)]
pub enum Data {
    Map(Vec<(String, Spanned<Data>)>),
    Seq(Vec<Spanned<Data>>),
    Float(f64),
    Plain(Value),
}

impl Data {
    /// The node as JSON for the templates, with floats as written in `source` (the file's text).
    pub fn json(&self, source: &str) -> Value {
        match self {
            Data::Map(entries) => Value::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.clone(), child(v, source)))
                    .collect(),
            ),
            Data::Seq(items) => Value::Array(items.iter().map(|v| child(v, source)).collect()),
            Data::Float(f) => float(*f),
            Data::Plain(v) => v.clone(),
        }
    }
}

/// A child, a float among them replaced by its source text when the location gives it.
fn child(node: &Spanned<Data>, source: &str) -> Value {
    let Data::Float(f) = node.value else {
        return node.value.json(source);
    };
    let span = node.referenced.span();
    let written = span
        .byte_offset()
        .zip(span.byte_len())
        .and_then(|(at, len)| {
            let at = usize::try_from(at).ok()?;
            source.get(at..at.checked_add(usize::try_from(len).ok()?)?)
        });
    // Only a plain literal that reads as the same number: never a quoted or multi-line span.
    match written.map(str::trim) {
        Some(text) if text.parse::<f64>().is_ok_and(|w| w == f) => Value::String(text.to_string()),
        _ => float(f),
    }
}

fn float(f: f64) -> Value {
    serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)
}

impl<'de> Deserialize<'de> for Data {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Data, D::Error> {
        deserializer.deserialize_any(DataVisitor)
    }
}

struct DataVisitor;

impl<'de> Visitor<'de> for DataVisitor {
    type Value = Data;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Data, E> {
        Ok(Data::Plain(Value::Bool(v)))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Data, E> {
        Ok(Data::Plain(Value::from(v)))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Data, E> {
        Ok(Data::Plain(Value::from(v)))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Data, E> {
        Ok(Data::Float(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Data, E> {
        Ok(Data::Plain(Value::String(v.to_string())))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Data, E> {
        Ok(Data::Plain(Value::String(v)))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Data, E> {
        Ok(Data::Plain(Value::Null))
    }

    fn visit_none<E: de::Error>(self) -> Result<Data, E> {
        Ok(Data::Plain(Value::Null))
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Data, D::Error> {
        Data::deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Data, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Spanned<Data>>()? {
            items.push(item);
        }
        Ok(Data::Seq(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Data, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            entries.push((key, map.next_value::<Spanned<Data>>()?));
        }
        Ok(Data::Map(entries))
    }
}

/// In the schema, `data` is any value, as before.
impl JsonSchema for Data {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> Cow<'static, str> {
        <Value as JsonSchema>::schema_name()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        <Value as JsonSchema>::json_schema(generator)
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    fn data(yaml: &str) -> serde_json::Value {
        let text = format!("title: x\nsend:\n  - at: 2026-12-01 08:00\n{yaml}");
        let raw: crate::announce::raw::RawAnnouncement =
            crate::announce::yaml::parse(Path::new("t.yaml"), &text).expect("parses");
        raw.data.expect("data").get().json(&text)
    }

    #[test]
    fn floats_keep_their_written_text_and_the_rest_is_read_as_yaml_reads_it() {
        assert_eq!(
            data(
                "data:\n  le_phi: 50.000\n  ngay: 10.10\n  so_nguoi: 120\n  ten: Lan\n  co: true\n  sdt: 0912345678\n"
            ),
            serde_json::json!({"le_phi": "50.000", "ngay": "10.10", "so_nguoi": 120, "ten": "Lan", "co": true, "sdt": "0912345678"})
        );
        assert_eq!(
            data("data: { le_phi: 1.5, muc: [2.50, \"3.0\", { x: 7.000 }] }\n"),
            serde_json::json!({"le_phi": "1.5", "muc": ["2.50", "3.0", {"x": "7.000"}]})
        );
    }
}
