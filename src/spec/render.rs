//! The fully resolved stack as a Compose document: templates, interpolation, overlays and
//! profiles applied, compose key names, native types — and no secret content.

use super::load::Loaded;
use super::yaml::{Node, Value};
use serde_json::{Map, Value as Json};

/// Keys whose values are strings whatever they look like (`"true"`, `"8080"`).
const STRING_MAPS: [&str; 4] = ["environment", "labels", "sysctls", "annotations"];

pub fn document(loaded: &Loaded) -> Json {
    let mut root = loaded.document.to_json();
    let Json::Object(top) = &mut root else { return root };
    if let Some(Json::Object(services)) = top.get_mut("services") {
        services.retain(|name, _| !loaded.stack.inactive.contains(name));
        for (name, service) in services.iter_mut() {
            let Json::Object(fields) = service else { continue };
            // From the tree, not the JSON: `ZIP: 01234` and `VERSION: 1.10` are strings as written.
            let node = loaded.document.get("services").and_then(|s| s.get(name));
            for key in STRING_MAPS {
                if let Some(value) = node.and_then(|n| n.get(key)) {
                    fields.insert(key.to_string(), string_map(value));
                }
            }
            // An optional dependency on a service left out by its profile goes with it, as in
            // compose's own output; the document would not load otherwise.
            match fields.get_mut("depends_on") {
                Some(Json::Object(dependencies)) => dependencies.retain(|d, _| !loaded.stack.inactive.contains(d)),
                Some(Json::Array(dependencies)) => dependencies.retain(|d| !d.as_str().is_some_and(|d| loaded.stack.inactive.contains(d))),
                _ => {}
            }
            if fields.get("depends_on").is_some_and(|d| d.as_object().is_some_and(|m| m.is_empty()) || d.as_array().is_some_and(|a| a.is_empty())) {
                fields.remove("depends_on");
            }
            // `mode: 0440` is octal to compose; written out as JSON it would read as 440.
            for key in ["configs", "secrets"] {
                let (Some(Json::Array(items)), Some(nodes)) = (fields.get_mut(key), node.and_then(|n| n.get(key)).and_then(Node::as_seq)) else { continue };
                for (item, item_node) in items.iter_mut().zip(nodes) {
                    if let (Json::Object(item), Some(mode)) = (item, item_node.get("mode").and_then(super::convert::file_mode)) {
                        item.insert("mode".into(), Json::from(mode));
                    }
                }
            }
            if let (Some(Json::Object(deploy)), Some(labels)) =
                (fields.get_mut("deploy"), node.and_then(|n| n.get("deploy")).and_then(|d| d.get("labels")))
            {
                deploy.insert("labels".into(), string_map(labels));
            }
        }
    }
    if let Some(Json::Object(secrets)) = top.get_mut("secrets") {
        for (name, secret) in secrets.iter_mut() {
            if let (Json::Object(fields), Some(object)) = (secret, loaded.stack.secrets.get(name)) {
                if fields.contains_key("content") {
                    fields.insert("content".into(), Json::String(redacted(object.content.len(), &object.hash)));
                }
            }
        }
    }
    escape_dollars(&mut root);
    root
}

/// Interpolation turned `$$` into `$`; written back out, a `$` must be `$$` again or the next
/// reader (swarmctl or compose) would take it for a variable. Extensions were not interpolated
/// (except ours), so they are written as they were.
fn escape_dollars(value: &mut Json) {
    match value {
        Json::String(text) if text.contains('$') => *text = text.replace('$', "$$"),
        Json::Array(items) => items.iter_mut().for_each(escape_dollars),
        Json::Object(fields) => fields
            .iter_mut()
            .filter(|(key, _)| !key.starts_with("x-") || *key == "x-kind" || *key == "x-rollout")
            .for_each(|(_, value)| escape_dollars(value)),
        _ => {}
    }
}

/// How a secret appears anywhere output could be seen.
pub fn redacted(length: usize, hash: &str) -> String {
    format!("<redacted, {length} bytes, {}>", &hash[..hash.len().min(12)])
}

/// `[A=1]` or `{A: 1}` → `{"A": "1"}` with each value's text as written; a key with no value
/// stays null.
fn string_map(node: &Node) -> Json {
    let mut out = Map::new();
    match &node.value {
        Value::Seq(items) => {
            for item in items {
                let text = item.as_text().unwrap_or("");
                match text.split_once('=') {
                    Some((k, v)) => out.insert(k.into(), Json::String(v.into())),
                    None => out.insert(text.into(), Json::Null),
                };
            }
        }
        Value::Map(entries) => {
            for entry in entries {
                let value = if entry.value.is_null() {
                    Json::Null
                } else {
                    entry.value.as_scalar().map_or_else(|| entry.value.to_json(), |s| Json::String(s.text.clone()))
                };
                out.insert(entry.key.clone(), value);
            }
        }
        Value::Scalar(_) => return node.to_json(),
    }
    Json::Object(out)
}

/// The document as YAML that YAML 1.1 and 1.2 readers agree on (see [`super::emit`]).
pub fn to_yaml(document: &Json) -> String {
    super::emit::to_yaml(document)
}
