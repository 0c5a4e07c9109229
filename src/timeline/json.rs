//! Events as JSON objects — the shape `stickydb import` reads from JSON
//! lines and CSV, and a log consumer reads from each message (SPEC §7):
//! `user`, `kind`, `ts` (RFC 3339 text or integer milliseconds), and the
//! optional `event_id`, `session_id`, `amount`, `properties` (scalars),
//! `share_id`, `via`, `group_id`, `group_target`, `group_deadline`. Unknown
//! fields are refused.
//!
//! Parsing only: the write validates the event again.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use super::{Event, PropValue};
use crate::error::{InputError, Problem};

fn unparsable(field: &'static str, reason: impl Into<String>) -> InputError {
    InputError::new(
        field,
        Problem::Unparsable {
            reason: reason.into(),
        },
    )
}

/// The event a JSON object describes.
///
/// ```
/// let v = serde_json::json!({"user": "alice", "kind": "view", "ts": "2024-03-01T10:00:00Z"});
/// let e = stickydb::timeline::json::event(v)?;
/// assert_eq!(e.ts_ms, 1_709_287_200_000);
/// # Ok::<(), stickydb::InputError>(())
/// ```
pub fn event(v: Value) -> Result<Event, InputError> {
    from_raw(serde_json::from_value(v).map_err(|e| unparsable("record", e.to_string()))?)
}

/// The JSON object of an event, in the shape [`event`] reads.
pub fn to_json(e: &Event) -> Value {
    let mut o = serde_json::Map::new();
    o.insert("user".into(), Value::from(e.user.as_str()));
    o.insert("kind".into(), Value::from(e.kind.as_str()));
    o.insert("ts".into(), Value::from(e.ts_ms));
    let mut text = |name: &str, v: &Option<String>| {
        if let Some(v) = v {
            o.insert(name.into(), Value::from(v.as_str()));
        }
    };
    text("event_id", &e.event_id);
    text("session_id", &e.session_id);
    text("share_id", &e.share_id);
    text("via", &e.via);
    text("group_id", &e.group_id);
    if let Some(a) = e.amount_minor {
        o.insert("amount".into(), Value::from(a));
    }
    if let Some(t) = e.group_target {
        o.insert("group_target".into(), Value::from(t));
    }
    if let Some(d) = e.group_deadline_ms {
        o.insert("group_deadline".into(), Value::from(d));
    }
    if !e.properties.is_empty() {
        let props = e
            .properties
            .iter()
            .map(|(k, v)| {
                let v = match v {
                    PropValue::Bool(b) => Value::from(*b),
                    PropValue::Int(i) => Value::from(*i),
                    PropValue::Float(f) => Value::from(*f),
                    PropValue::Str(s) => Value::from(s.as_str()),
                };
                (k.clone(), v)
            })
            .collect();
        o.insert("properties".into(), Value::Object(props));
    }
    Value::Object(o)
}

/// The event a JSON text describes (one log message or one line).
pub fn event_from_slice(bytes: &[u8]) -> Result<Event, InputError> {
    let text = std::str::from_utf8(bytes)
        .map_err(|e| unparsable("record", format!("not UTF-8 (byte {})", e.valid_up_to())))?;
    let v = parse_value(text).map_err(|e| unparsable("record", e.to_string()))?;
    event(v)
}

/// Parses a JSON text, refusing an object that names a key twice, at any
/// depth (`{"user":"e","user":"f"}` names `user` twice: which one the
/// writer meant is unknowable, so the record is refused rather than
/// silently read as the last one). Every other rule is `serde_json`'s.
///
/// ```
/// use stickydb::timeline::json::parse_value;
/// assert!(parse_value(r#"{"user":"e","kind":"view"}"#).is_ok());
/// let e = parse_value(r#"{"user":"e","user":"f"}"#).unwrap_err();
/// assert!(e.to_string().starts_with("duplicate key \"user\""), "{e}");
/// ```
pub fn parse_value(text: &str) -> Result<Value, serde_json::Error> {
    serde_json::from_str::<Strict>(text).map(|s| s.0)
}

/// A JSON value whose objects name each key once.
struct Strict(Value);

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrictVisitor)
    }
}

struct StrictVisitor;

impl<'de> serde::de::Visitor<'de> for StrictVisitor {
    type Value = Strict;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Strict, E> {
        Ok(Strict(Value::Bool(v)))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Strict, E> {
        Ok(Strict(Value::from(v)))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Strict, E> {
        Ok(Strict(Value::from(v)))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Strict, E> {
        Ok(Strict(Value::from(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Strict, E> {
        Ok(Strict(Value::from(v)))
    }
    fn visit_string<E>(self, v: String) -> Result<Strict, E> {
        Ok(Strict(Value::String(v)))
    }
    fn visit_unit<E>(self) -> Result<Strict, E> {
        Ok(Strict(Value::Null))
    }
    fn visit_none<E>(self) -> Result<Strict, E> {
        Ok(Strict(Value::Null))
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Strict, A::Error> {
        let mut out = Vec::new();
        while let Some(Strict(v)) = seq.next_element()? {
            out.push(v);
        }
        Ok(Strict(Value::Array(out)))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Strict, A::Error> {
        let mut out = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if out.contains_key(&key) {
                return Err(serde::de::Error::custom(format_args!(
                    "duplicate key {key:?}"
                )));
            }
            let Strict(v) = map.next_value()?;
            out.insert(key, v);
        }
        Ok(Strict(Value::Object(out)))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEvent {
    user: String,
    kind: String,
    ts: Value,
    #[serde(default)]
    event_id: Option<String>,
    #[serde(default)]
    session_id: Option<String>,
    #[serde(default)]
    amount: Option<i64>,
    #[serde(default)]
    properties: Option<BTreeMap<String, Value>>,
    #[serde(default)]
    share_id: Option<String>,
    #[serde(default)]
    via: Option<String>,
    #[serde(default)]
    group_id: Option<String>,
    #[serde(default)]
    group_target: Option<u32>,
    #[serde(default)]
    group_deadline: Option<Value>,
}

/// `ts`: RFC 3339 text or integer milliseconds.
pub fn parse_ts(v: &Value) -> Result<i64, InputError> {
    match v {
        Value::Number(n) => n
            .as_i64()
            .ok_or_else(|| unparsable("ts", format!("{n} is not integer milliseconds"))),
        Value::String(s) => {
            if let Ok(ms) = s.parse::<i64>() {
                return Ok(ms);
            }
            chrono::DateTime::parse_from_rfc3339(s)
                .map(|t| t.timestamp_millis())
                .map_err(|e| unparsable("ts", format!("{s:?}: {e}")))
        }
        other => Err(unparsable(
            "ts",
            format!("{other} is neither RFC 3339 nor ms"),
        )),
    }
}

fn prop(v: Value) -> Result<PropValue, InputError> {
    Ok(match v {
        Value::Bool(b) => PropValue::Bool(b),
        Value::String(s) => PropValue::Str(s),
        Value::Number(n) => match n.as_i64() {
            Some(i) => PropValue::Int(i),
            None => PropValue::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        other => return Err(unparsable("properties", format!("{other} is not a scalar"))),
    })
}

fn from_raw(raw: RawEvent) -> Result<Event, InputError> {
    let mut e = Event::new(raw.user, raw.kind, parse_ts(&raw.ts)?);
    e.event_id = raw.event_id;
    e.session_id = raw.session_id;
    e.amount_minor = raw.amount;
    e.share_id = raw.share_id;
    e.via = raw.via;
    e.group_id = raw.group_id;
    e.group_target = raw.group_target;
    e.group_deadline_ms = raw
        .group_deadline
        .map(|v| parse_ts(&v).map_err(|e| InputError::new("group_deadline", e.problem)))
        .transpose()?;
    for (k, v) in raw.properties.unwrap_or_default() {
        e.properties.insert(k, prop(v)?);
    }
    Ok(e)
}
