//! Template values, Helm-style: the stack's `values.yaml`, then each overlay's `values.yaml`, then
//! `--values FILE`s, then `--set key.path=value`s, each layer deep-merged over the last.

use serde_json::{Map, Value as Json};

/// Deep-merges `overlay` onto `base`: mappings merge key by key, anything else replaces.
pub fn merge(base: &mut Json, overlay: Json) {
    match (base, overlay) {
        (Json::Object(base), Json::Object(overlay)) => {
            for (key, value) in overlay {
                match base.get_mut(&key) {
                    Some(existing) => merge(existing, value),
                    None => {
                        base.insert(key, value);
                    }
                }
            }
        }
        (base, overlay) => *base = overlay,
    }
}

/// Parses `a.b.c=value` into `{"a":{"b":{"c":value}}}`. Values are typed as Helm does: integers,
/// booleans and `null` become such; `{a,b}` is a list; anything else is a string.
/// A `\.` in the key is a literal dot.
pub fn parse_set(assignment: &str) -> Result<Json, String> {
    let (path, raw) = assignment
        .split_once('=')
        .ok_or_else(|| format!("`--set {assignment}` is not `key.path=value`"))?;
    let keys = split_path(path);
    if keys.iter().any(String::is_empty) {
        return Err(format!("`--set {assignment}`: the key path `{path}` has an empty part"));
    }
    let mut value = typed(raw);
    for key in keys.into_iter().rev() {
        let mut object = Map::new();
        object.insert(key, value);
        value = Json::Object(object);
    }
    Ok(value)
}

fn split_path(path: &str) -> Vec<String> {
    let mut keys = vec![String::new()];
    let mut chars = path.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'.') => {
                keys.last_mut().expect("never empty").push('.');
                chars.next();
            }
            '.' => keys.push(String::new()),
            c => keys.last_mut().expect("never empty").push(c),
        }
    }
    keys
}

fn typed(raw: &str) -> Json {
    if let Some(list) = raw.strip_prefix('{').and_then(|r| r.strip_suffix('}')) {
        return Json::Array(list.split(',').filter(|s| !s.is_empty()).map(typed).collect());
    }
    match raw {
        "true" => Json::Bool(true),
        "false" => Json::Bool(false),
        "null" => Json::Null,
        _ => raw.parse::<i64>().map(Json::from).unwrap_or_else(|_| Json::String(raw.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn set_builds_nested_typed_values() {
        assert_eq!(parse_set("web.replicas=3").unwrap(), json!({"web": {"replicas": 3}}));
        assert_eq!(parse_set("a.enabled=false").unwrap(), json!({"a": {"enabled": false}}));
        assert_eq!(parse_set("a.tag=1.25").unwrap(), json!({"a": {"tag": "1.25"}}));
        assert_eq!(parse_set("a.list={x,y}").unwrap(), json!({"a": {"list": ["x", "y"]}}));
        assert_eq!(parse_set("labels.io\\.x=y").unwrap(), json!({"labels": {"io.x": "y"}}));
        assert!(parse_set("novalue").is_err());
        assert!(parse_set("a..b=1").is_err());
    }

    #[test]
    fn later_layers_win_and_maps_merge_deeply() {
        let mut base = json!({"web": {"replicas": 1, "tag": "a"}, "db": {"size": "1g"}});
        merge(&mut base, json!({"web": {"replicas": 3}}));
        merge(&mut base, parse_set("web.tag=b").unwrap());
        assert_eq!(base, json!({"web": {"replicas": 3, "tag": "b"}, "db": {"size": "1g"}}));
    }
}
