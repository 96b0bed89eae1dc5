//! The fully resolved stack as a Compose document: templates, interpolation, overlays and
//! profiles applied, compose key names, native types — and no secret content.

use super::load::Loaded;
use serde_json::{Map, Value as Json};

/// Keys whose values are strings whatever they look like (`"true"`, `"8080"`).
const STRING_MAPS: [&str; 4] = ["environment", "labels", "sysctls", "annotations"];

pub fn document(loaded: &Loaded) -> Json {
    let mut root = loaded.document.to_json();
    let Json::Object(top) = &mut root else { return root };
    if let Some(Json::Object(services)) = top.get_mut("services") {
        services.retain(|name, _| !loaded.stack.inactive.contains(name));
        for service in services.values_mut() {
            let Json::Object(fields) = service else { continue };
            for key in STRING_MAPS {
                if let Some(value) = fields.get_mut(key) {
                    *value = string_map(value);
                }
            }
            if let Some(Json::Object(deploy)) = fields.get_mut("deploy") {
                if let Some(labels) = deploy.get_mut("labels") {
                    *labels = string_map(labels);
                }
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
    root
}

/// How a secret appears anywhere output could be seen.
pub fn redacted(length: usize, hash: &str) -> String {
    format!("<redacted, {length} bytes, {}>", &hash[..hash.len().min(12)])
}

/// `[A=1]` or `{A: 1}` → `{"A": "1"}`; a key with no value stays null.
fn string_map(value: &Json) -> Json {
    let mut out = Map::new();
    match value {
        Json::Array(items) => {
            for item in items {
                let text = item.as_str().map_or_else(|| item.to_string(), str::to_string);
                match text.split_once('=') {
                    Some((k, v)) => out.insert(k.into(), Json::String(v.into())),
                    None => out.insert(text, Json::Null),
                };
            }
        }
        Json::Object(entries) => {
            for (k, v) in entries {
                let v = match v {
                    Json::Null => Json::Null,
                    Json::String(s) => Json::String(s.clone()),
                    other => Json::String(other.to_string()),
                };
                out.insert(k.clone(), v);
            }
        }
        other => return other.clone(),
    }
    Json::Object(out)
}

/// The document as YAML.
pub fn to_yaml(document: &Json) -> String {
    serde_yaml::to_string(document).unwrap_or_default()
}

