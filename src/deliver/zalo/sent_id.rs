//! What loa keeps of a send's success: Zalo's id for the message (`message_id`, or `msg_id` on
//! ZNS), as a string or a number, and a ZNS reply's quota (`quota.dailyQuota`,
//! `quota.remainingQuota`, strings in the reference, numbers read too). Everything else in
//! `data` is skipped unread. A success whose
//! `data` is missing or not what the reference shows still counts as sent (`Api::call` asks this
//! type to read a unit then): `error: 0` is Zalo's word that the message went, and treating the
//! reply as unreadable would send the message again.

use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// The message's id; None when the success carried none that can be read. `quota`: the daily
/// quota and what is left of it, when `data` holds both.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct SentId {
    pub id: Option<String>,
    pub quota: Option<Quota>,
}

/// A ZNS reply's `quota`: phone messages a day, and how many are left today.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quota {
    pub daily: u64,
    pub remaining: u64,
}

impl<'de> de::Deserialize<'de> for SentId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<SentId, D::Error> {
        d.deserialize_any(Data)
    }
}

/// `data` itself: a map is searched for the id; anything else is a success without one.
struct Data;

impl<'de> Visitor<'de> for Data {
    type Value = SentId;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a send's data")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<SentId, A::Error> {
        let mut sent = SentId::default();
        while let Some(key) = map.next_key::<Key>()? {
            match key {
                Key::Id if sent.id.is_none() => sent.id = map.next_value::<Id>()?.0,
                Key::Quota => sent.quota = quota(&map.next_value::<serde_json::Value>()?),
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(sent)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<SentId, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(SentId::default())
    }

    fn visit_unit<E>(self) -> Result<SentId, E> {
        Ok(SentId::default())
    }

    fn visit_none<E>(self) -> Result<SentId, E> {
        Ok(SentId::default())
    }

    fn visit_str<E>(self, _: &str) -> Result<SentId, E> {
        Ok(SentId::default())
    }

    fn visit_bool<E>(self, _: bool) -> Result<SentId, E> {
        Ok(SentId::default())
    }

    fn visit_i64<E>(self, _: i64) -> Result<SentId, E> {
        Ok(SentId::default())
    }

    fn visit_u64<E>(self, _: u64) -> Result<SentId, E> {
        Ok(SentId::default())
    }

    fn visit_f64<E>(self, _: f64) -> Result<SentId, E> {
        Ok(SentId::default())
    }
}

/// A key of `data`: the id's name, the quota's, or another.
enum Key {
    Id,
    Quota,
    Other,
}

impl<'de> de::Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Key, D::Error> {
        struct Name;
        impl Visitor<'_> for Name {
            type Value = Key;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a key")
            }
            fn visit_str<E>(self, v: &str) -> Result<Key, E> {
                Ok(match v {
                    "message_id" | "msg_id" => Key::Id,
                    "quota" => Key::Quota,
                    _ => Key::Other,
                })
            }
        }
        d.deserialize_identifier(Name)
    }
}

/// `quota` read as Zalo's ZNS reply gives it; None unless it holds both counts. Small and rare
/// (phone messages), so read whole rather than field by field.
fn quota(v: &serde_json::Value) -> Option<Quota> {
    let count = |key: &str| match v.get(key)? {
        serde_json::Value::String(s) => s.trim().parse().ok(),
        serde_json::Value::Number(n) => n.as_u64(),
        _ => None,
    };
    Some(Quota {
        daily: count("dailyQuota")?,
        remaining: count("remainingQuota")?,
    })
}

/// The id's value: a string, or a number written as one; anything else is no id.
struct Id(Option<String>);

impl<'de> de::Deserialize<'de> for Id {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Id, D::Error> {
        struct Value;
        impl<'de> Visitor<'de> for Value {
            type Value = Id;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a message id")
            }
            fn visit_str<E>(self, v: &str) -> Result<Id, E> {
                Ok(Id((!v.is_empty()).then(|| v.to_string())))
            }
            fn visit_string<E>(self, v: String) -> Result<Id, E> {
                Ok(Id((!v.is_empty()).then_some(v)))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Id, E> {
                Ok(Id(Some(v.to_string())))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Id, E> {
                Ok(Id(Some(v.to_string())))
            }
            fn visit_f64<E>(self, _: f64) -> Result<Id, E> {
                Ok(Id(None))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Id, E> {
                Ok(Id(None))
            }
            fn visit_unit<E>(self) -> Result<Id, E> {
                Ok(Id(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Id, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Id(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Id, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Id(None))
            }
        }
        d.deserialize_any(Value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(data: &str) -> SentId {
        serde_json::from_str::<SentId>(data).expect("a success reads")
    }

    fn id(data: &str) -> Option<String> {
        read(data).id
    }

    #[test]
    fn a_success_is_read_whatever_else_its_data_holds() {
        let cs = r#"{"message_id":"63ecf43f0df7dba892e6","user_id":"1","sent_time":"1626926349402","quota":{"a":1}}"#;
        assert_eq!(id(cs).as_deref(), Some("63ecf43f0df7dba892e6"));
        let zns = r#"{"msg_id":"a1b2","sent_time":1626926349402,"quota":{"dailyQuota":500}}"#;
        assert_eq!(id(zns).as_deref(), Some("a1b2"));
        assert_eq!(
            id(r#"{"message_id":1234567890123}"#).as_deref(),
            Some("1234567890123")
        );
        for odd in [
            r#"{}"#,
            r#""""#,
            "[]",
            "null",
            "0",
            r#"{"message_id":null}"#,
            r#"{"message_id":{"x":1}}"#,
        ] {
            assert_eq!(id(odd), None, "{odd}");
        }
    }

    #[test]
    fn a_zns_reply_gives_its_quota_when_it_holds_both_counts() {
        let quota = |data: &str| read(data).quota;
        let both = Some(Quota {
            daily: 500,
            remaining: 37,
        });
        // As the reference shows it (strings), and as numbers.
        let zns = r#"{"msg_id":"a1","quota":{"dailyQuota":"500","remainingQuota":"37"}}"#;
        assert_eq!(quota(zns), both);
        assert_eq!(read(zns).id.as_deref(), Some("a1"));
        assert_eq!(
            quota(r#"{"quota":{"remainingQuota":37,"dailyQuota":500},"msg_id":"a1"}"#),
            both
        );
        for none in [
            r#"{"msg_id":"a1"}"#,
            r#"{"msg_id":"a1","quota":{"dailyQuota":"500"}}"#,
            r#"{"msg_id":"a1","quota":{"dailyQuota":"500","remainingQuota":"many"}}"#,
            r#"{"msg_id":"a1","quota":{"dailyQuota":-1,"remainingQuota":3}}"#,
            r#"{"msg_id":"a1","quota":null}"#,
            r#"{"msg_id":"a1","quota":[1,2]}"#,
            r#"{"msg_id":"a1","quota":"500"}"#,
        ] {
            assert_eq!(quota(none), None, "{none}");
            assert_eq!(read(none).id.as_deref(), Some("a1"), "{none}");
        }
    }
}
