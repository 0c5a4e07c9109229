//! Definitions, rules and feature values as JSON (docs/features.md): what
//! `stickydb features define FILE` reads and `features get` prints.

use serde_json::{Map, Value};

use super::{Definition, FeatureValue, Features, Op, TagRule, Window, DEFAULT_CAP};
use crate::error::{InputError, Problem};
use crate::timeline::PropValue;

fn bad(field: &'static str, reason: impl Into<String>) -> InputError {
    InputError::new(
        field,
        Problem::Invalid {
            reason: reason.into(),
        },
    )
}

fn text<'a>(
    o: &'a Map<String, Value>,
    field: &'static str,
    key: &str,
) -> Result<Option<&'a str>, InputError> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(bad(field, format!("{key} must be a string, not {other}"))),
    }
}

fn count(
    o: &Map<String, Value>,
    field: &'static str,
    key: &str,
) -> Result<Option<u32>, InputError> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .map(Some)
            .ok_or_else(|| bad(field, format!("{key} must be a whole number"))),
    }
}

fn prop(v: &Value) -> Option<PropValue> {
    match v {
        Value::Bool(b) => Some(PropValue::Bool(*b)),
        Value::Number(n) => n
            .as_i64()
            .map(PropValue::Int)
            .or_else(|| n.as_f64().map(PropValue::Float)),
        Value::String(s) => Some(PropValue::Str(s.clone())),
        _ => None,
    }
}

/// One definition from its JSON object.
pub fn definition(o: &Map<String, Value>) -> Result<Definition, InputError> {
    const KNOWN: [&str; 9] = [
        "name", "kinds", "where", "op", "field", "key", "k", "cap", "window",
    ];
    if let Some(k) = o.keys().find(|k| !KNOWN.contains(&k.as_str())) {
        return Err(bad("definition", format!("unknown field {k:?}")));
    }
    let name = text(o, "definition.name", "name")?.unwrap_or_default();
    let op_name = text(o, "definition.op", "op")?.unwrap_or_default();
    let op = Op::parse(op_name)
        .ok_or_else(|| bad("definition.op", format!("unknown op {op_name:?}")))?;
    let kinds: Vec<String> = match o.get("kinds") {
        Some(Value::Array(items)) => items
            .iter()
            .map(|k| k.as_str().map(str::to_owned))
            .collect::<Option<_>>()
            .ok_or_else(|| bad("definition.kinds", "kinds are strings"))?,
        Some(Value::String(k)) => vec![k.clone()],
        _ => return Err(bad("definition.kinds", "a list of event kinds is needed")),
    };
    let window = match text(o, "definition.window", "window")? {
        None => Window::Lifetime,
        Some(w) => Window::parse(w).map_err(|p| InputError::new("definition.window", p))?,
    };
    let mut d = Definition::new(name, kinds, op, window);
    if let Some(filter) = o.get("where") {
        let filter = filter
            .as_object()
            .ok_or_else(|| bad("definition.where", "where is an object of property values"))?;
        for (k, v) in filter {
            let v = prop(v).ok_or_else(|| bad("definition.where", format!("{k}: not a scalar")))?;
            d = d.with_filter(k.clone(), v);
        }
    }
    d.field = text(o, "definition.field", "field")?.map(str::to_owned);
    d.key = text(o, "definition.key", "key")?.map(str::to_owned);
    d.k = count(o, "definition.k", "k")?.unwrap_or(0);
    d.cap = count(o, "definition.cap", "cap")?.unwrap_or(DEFAULT_CAP);
    Ok(d)
}

/// Definitions and rules from a JSON array or JSON lines of objects (an
/// object with `tag` is a rule, any other a definition); errors name the
/// item's position.
pub fn parse(input: &str) -> Result<(Vec<Definition>, Vec<TagRule>), InputError> {
    let items: Vec<Value> = match serde_json::from_str::<Value>(input) {
        Ok(Value::Array(items)) => items,
        Ok(one @ Value::Object(_)) => vec![one],
        _ => input
            .lines()
            .filter(|l| !l.trim().is_empty())
            .enumerate()
            .map(|(i, l)| {
                serde_json::from_str(l).map_err(|e| {
                    InputError::new(
                        "definitions",
                        Problem::Unparsable {
                            reason: e.to_string(),
                        },
                    )
                    .at(i)
                })
            })
            .collect::<Result<_, _>>()?,
    };
    let (mut defs, mut rules) = (Vec::new(), Vec::new());
    for (i, item) in items.iter().enumerate() {
        let o = item
            .as_object()
            .ok_or_else(|| bad("definitions", "each item is an object").at(i))?;
        if o.contains_key("tag") {
            if let Some(k) = o.keys().find(|k| *k != "tag" && *k != "when") {
                return Err(bad("rule", format!("unknown field {k:?}")).at(i));
            }
            let tag = text(o, "rule.tag", "tag")
                .map_err(|e| e.at(i))?
                .unwrap_or_default();
            let when = text(o, "rule.when", "when")
                .map_err(|e| e.at(i))?
                .unwrap_or_default();
            rules.push(TagRule::new(tag, when));
        } else {
            defs.push(definition(o).map_err(|e| e.at(i))?);
        }
    }
    Ok((defs, rules))
}

fn prop_json(v: &PropValue) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// A definition as its JSON object (what `define` reads).
pub fn definition_json(d: &Definition) -> Value {
    let mut o = Map::new();
    o.insert("name".into(), d.name.clone().into());
    o.insert("kinds".into(), d.kinds.clone().into());
    if !d.filter.is_empty() {
        let w: Map<String, Value> = d
            .filter
            .iter()
            .map(|(k, v)| (k.clone(), prop_json(v)))
            .collect();
        o.insert("where".into(), w.into());
    }
    o.insert("op".into(), d.op.name().into());
    if let Some(f) = &d.field {
        o.insert("field".into(), f.clone().into());
    }
    if let Some(k) = &d.key {
        o.insert("key".into(), k.clone().into());
    }
    if d.k != 0 {
        o.insert("k".into(), d.k.into());
    }
    if d.cap != DEFAULT_CAP {
        o.insert("cap".into(), d.cap.into());
    }
    o.insert("window".into(), d.window.text().into());
    o.into()
}

/// A feature's value as JSON: numbers, `null`, a property value, a list,
/// `[[key, count], …]` for `top_k`, an object per key for a keyed feature.
pub fn value_json(v: &FeatureValue) -> Value {
    match v {
        FeatureValue::Null => Value::Null,
        FeatureValue::Int(i) => (*i).into(),
        FeatureValue::Float(f) => {
            serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number)
        }
        FeatureValue::Value(p) => prop_json(p),
        FeatureValue::List(items) => items.iter().map(prop_json).collect(),
        FeatureValue::Ranked(items) => items
            .iter()
            .map(|(k, n)| Value::Array(vec![k.clone().into(), (*n).into()]))
            .collect(),
        FeatureValue::Keyed(map) => map
            .iter()
            .map(|(k, v)| (k.clone(), value_json(v)))
            .collect::<Map<_, _>>()
            .into(),
    }
}

/// A user's features as `stickydb features get` prints them.
pub fn features_json(f: &Features) -> Value {
    let values: Map<String, Value> = f
        .values
        .iter()
        .map(|(n, v)| (n.clone(), value_json(v)))
        .collect();
    serde_json::json!({
        "user": f.user,
        "at_ms": f.at_ms,
        "version": f.version,
        "features": values,
        "truncated": f.truncated,
        "tags": f.tags,
    })
}
