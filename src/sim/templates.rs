//! The simulator's approved ZNS templates: each names its parameters and the most characters
//! each takes. Zalo sets a parameter's limit by its type when the template is approved (a name
//! 30, a paragraph of a custom template 400: Zalo Cloud's template rules, not the reference), and
//! refuses a message whose `template_data` does not fit with `-111` (empty) or `-112` (invalid).

use serde::{Deserialize, Serialize};

/// One approved template.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZnsTemplate {
    pub id: String,
    pub params: Vec<ZnsParam>,
}

/// One parameter of a template and the most characters its value may have.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZnsParam {
    pub name: String,
    pub max_chars: usize,
}

/// A custom template's paragraph takes at most 400 characters (Zalo Cloud's template rules).
pub const DEFAULT_PARAM_MAX_CHARS: usize = 400;

impl ZnsTemplate {
    /// The template loa's demo and tests use: one text parameter, `content`.
    pub fn announcement() -> ZnsTemplate {
        ZnsTemplate {
            id: "loa-announcement".into(),
            params: vec![ZnsParam {
                name: "content".into(),
                max_chars: DEFAULT_PARAM_MAX_CHARS,
            }],
        }
    }

    /// `ID:PARAM=MAX,PARAM=MAX…` (a parameter without `=MAX` takes 400 characters), as given to
    /// `loa sim --zns-template`.
    pub fn parse(spec: &str) -> Result<ZnsTemplate, String> {
        let (id, params) = spec
            .split_once(':')
            .ok_or_else(|| format!("{spec:?}: expected ID:PARAM=MAX,…"))?;
        let id = id.trim();
        if id.is_empty() {
            return Err(format!("{spec:?}: the template id is empty"));
        }
        let params = params
            .split(',')
            .map(|p| {
                let (name, max) = p.split_once('=').unwrap_or((p, ""));
                let name = name.trim();
                if name.is_empty() {
                    return Err(format!("{spec:?}: a parameter has no name"));
                }
                let max_chars = match max.trim() {
                    "" => DEFAULT_PARAM_MAX_CHARS,
                    n => n
                        .parse()
                        .map_err(|_| format!("{spec:?}: {n:?} is not a number of characters"))?,
                };
                Ok(ZnsParam {
                    name: name.into(),
                    max_chars,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ZnsTemplate {
            id: id.into(),
            params,
        })
    }

    /// Zalo's check of a message's `template_data` against the template: `-111` when it is empty,
    /// `-112` when a parameter is missing, is not text or a number, or is longer than it may be.
    /// Keys the template does not name are let through: what Zalo does with them is not known.
    pub fn check(&self, data: &serde_json::Map<String, serde_json::Value>) -> Result<(), i64> {
        if data.is_empty() {
            return Err(-111);
        }
        for p in &self.params {
            let chars = match data.get(&p.name) {
                Some(serde_json::Value::String(s)) => s.chars().count(),
                Some(serde_json::Value::Number(n)) => n.to_string().len(),
                _ => return Err(-112),
            };
            if chars == 0 || chars > p.max_chars {
                return Err(-112);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn data(v: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn template_data_must_fill_each_parameter_within_its_length() {
        let t = ZnsTemplate::announcement();
        assert_eq!(
            t.check(&data(json!({"content": "Mời bà con họp."}))),
            Ok(())
        );
        assert_eq!(t.check(&data(json!({"content": "ă".repeat(400)}))), Ok(()));
        assert_eq!(
            t.check(&data(json!({"content": "ă".repeat(401)}))),
            Err(-112)
        );
        assert_eq!(t.check(&data(json!({}))), Err(-111));
        assert_eq!(t.check(&data(json!({"noi_dung": "họp"}))), Err(-112));
        assert_eq!(t.check(&data(json!({"content": ""}))), Err(-112));
        assert_eq!(t.check(&data(json!({"content": ["họp"]}))), Err(-112));
        assert_eq!(
            t.check(&data(json!({"content": "họp", "extra": 1}))),
            Ok(())
        );
        let two = ZnsTemplate::parse("lich-hop:ten=30,ngay=10").expect("parses");
        assert_eq!(
            two.check(&data(json!({"ten": "Ông Ba", "ngay": 20261201}))),
            Ok(())
        );
        assert_eq!(two.check(&data(json!({"ten": "Ông Ba"}))), Err(-112));
    }

    #[test]
    fn specs_parse_with_the_default_length_and_clear_errors() {
        let t = ZnsTemplate::parse("tb:content,ten=30").expect("parses");
        assert_eq!(t.id, "tb");
        assert_eq!(
            t.params,
            vec![
                ZnsParam {
                    name: "content".into(),
                    max_chars: 400
                },
                ZnsParam {
                    name: "ten".into(),
                    max_chars: 30
                },
            ]
        );
        for bad in ["tb", ":content", "tb:=30", "tb:content=lots"] {
            assert!(ZnsTemplate::parse(bad).is_err(), "{bad}");
        }
    }
}
