//! The compose-spec merge rules, used both to join a stack's files and to apply overlay patches.
//!
//! Mappings merge key by key and the later value wins; lists depend on what they hold:
//! `command`, `entrypoint` and `healthcheck.test` are replaced; `environment`, `labels` and other
//! `KEY=VALUE` lists merge as mappings; `ports` append without duplicates; `volumes`, `configs`,
//! `secrets` and `devices` merge by target; other lists append without duplicates. `!reset`
//! removes a key, `!override` replaces it whole. Nodes keep their positions, so a value set by
//! an overlay still points at the overlay's line.

use super::yaml::{Entry, Node, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rule {
    /// Mappings merge, lists append unique, scalars replace.
    Deep,
    Replace,
    /// `KEY=VALUE` lists or mappings, merged as mappings.
    KeyValue,
    /// List items keyed by their mount target.
    ByTarget,
}

fn rule(path: &[&str]) -> Rule {
    match path {
        ["services", _, "command" | "entrypoint"] | ["services", _, "healthcheck", "test"] => Rule::Replace,
        ["services", _, "environment" | "labels" | "annotations" | "sysctls" | "extra_hosts"]
        | ["services", _, "deploy", "labels"]
        | ["services", _, "build", "args" | "labels"] => Rule::KeyValue,
        ["services", _, "volumes" | "configs" | "secrets" | "devices"] => Rule::ByTarget,
        _ => Rule::Deep,
    }
}

/// Merges `overlay` onto `base` at `path` (keys from the document root).
pub fn merge(base: Node, overlay: Node, path: &[&str]) -> Node {
    if overlay.has_tag("!reset") {
        return Node { tag: None, ..overlay };
    }
    if overlay.has_tag("!override") {
        return Node { tag: None, ..overlay };
    }
    match rule(path) {
        Rule::Replace => overlay,
        Rule::KeyValue => merge_maps(as_key_values(base), as_key_values(overlay), path),
        Rule::ByTarget => merge_by_target(base, overlay),
        Rule::Deep => match (base.value, overlay.value) {
            (Value::Map(base_entries), Value::Map(overlay_entries)) => {
                merge_maps(Node { value: Value::Map(base_entries), ..base }, Node { value: Value::Map(overlay_entries), ..overlay }, path)
            }
            (Value::Seq(mut items), Value::Seq(more)) => {
                for item in more {
                    if !items.iter().any(|existing| same(existing, &item)) {
                        items.push(item);
                    }
                }
                Node { value: Value::Seq(items), pos: base.pos, tag: None }
            }
            (_, value) => Node { value, ..overlay },
        },
    }
}

fn merge_maps(base: Node, overlay: Node, path: &[&str]) -> Node {
    let (Value::Map(mut entries), Value::Map(more)) = (base.value, overlay.value.clone()) else {
        return overlay;
    };
    for entry in more {
        let reset = entry.value.has_tag("!reset");
        match entries.iter().position(|e| e.key == entry.key) {
            Some(_) if reset => entries.retain(|e| e.key != entry.key),
            Some(at) => {
                let existing = entries.remove(at);
                let mut child_path = path.to_vec();
                child_path.push(&entry.key);
                let merged = merge(existing.value, entry.value, &child_path);
                entries.insert(at, Entry { key: entry.key, key_pos: entry.key_pos, value: merged });
            }
            None if reset => {}
            None => entries.push(Entry { value: Node { tag: None, ..entry.value }, ..entry }),
        }
    }
    Node { value: Value::Map(entries), pos: base.pos, tag: None }
}

/// `["A=1", "B"]` → `{A: "1", B: null}`; mappings stay as they are.
fn as_key_values(node: Node) -> Node {
    let Value::Seq(items) = node.value else { return node };
    let entries = items
        .into_iter()
        .map(|item| {
            let text = item.as_text().unwrap_or("").to_string();
            let (key, value) = match text.split_once('=') {
                Some((k, v)) => (k.to_string(), Node::scalar(v, item.pos)),
                None => (text.clone(), Node { value: Value::Scalar(super::yaml::Scalar { text: String::new(), plain: true }), ..item.clone() }),
            };
            Entry { key, key_pos: item.pos, value }
        })
        .collect();
    Node { value: Value::Map(entries), ..node }
}

fn merge_by_target(base: Node, overlay: Node) -> Node {
    let (Value::Seq(mut items), Value::Seq(more)) = (base.value, overlay.value.clone()) else {
        return overlay;
    };
    for item in more {
        let target = mount_target(&item);
        match items.iter().position(|existing| target.is_some() && mount_target(existing) == target) {
            Some(at) => items[at] = item,
            None => items.push(item),
        }
    }
    Node { value: Value::Seq(items), pos: base.pos, tag: None }
}

/// The container path of a volume / config / secret / device entry, in short or long syntax.
fn mount_target(node: &Node) -> Option<String> {
    if let Some(target) = node.get("target").and_then(Node::as_text) {
        return Some(target.to_string());
    }
    if let Some(source) = node.get("source").and_then(Node::as_text) {
        return Some(format!("/run/secrets/{source}"));
    }
    let text = node.as_text()?;
    let parts: Vec<&str> = text.split(':').collect();
    Some(match parts.len() {
        1 => parts[0].to_string(),
        _ => parts[1].to_string(),
    })
}

/// Equal values, ignoring positions.
fn same(a: &Node, b: &Node) -> bool {
    a.to_json() == b.to_json()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::source::{FileId, LineMap};
    use crate::spec::yaml::{parse, Limits};

    fn tree(text: &str) -> Node {
        parse(text, FileId(0), &LineMap::identity(), &Limits::default()).unwrap().unwrap()
    }

    fn merged(base: &str, overlay: &str) -> serde_json::Value {
        merge(tree(base), tree(overlay), &[]).to_json()
    }

    #[test]
    fn maps_merge_and_scalars_replace() {
        let out = merged("services: {web: {image: a, restart: always}}", "services: {web: {image: b}}");
        assert_eq!(out, serde_json::json!({"services": {"web": {"image": "b", "restart": "always"}}}));
    }

    #[test]
    fn command_is_replaced_not_appended() {
        let out = merged("services: {web: {command: [a, b]}}", "services: {web: {command: [c]}}");
        assert_eq!(out["services"]["web"]["command"], serde_json::json!(["c"]));
    }

    #[test]
    fn environment_merges_across_list_and_map_forms() {
        let out = merged("services: {web: {environment: [A=1, B=2]}}", "services: {web: {environment: {B: '3', C: '4'}}}");
        assert_eq!(out["services"]["web"]["environment"], serde_json::json!({"A": "1", "B": "3", "C": "4"}));
    }

    #[test]
    fn ports_append_without_duplicates() {
        let out = merged("services: {web: {ports: ['80:80']}}", "services: {web: {ports: ['80:80', '443:443']}}");
        assert_eq!(out["services"]["web"]["ports"], serde_json::json!(["80:80", "443:443"]));
    }

    #[test]
    fn volumes_merge_by_target() {
        let out = merged("services: {web: {volumes: ['a:/data', 'b:/logs']}}", "services: {web: {volumes: ['c:/data']}}");
        assert_eq!(out["services"]["web"]["volumes"], serde_json::json!(["c:/data", "b:/logs"]));
    }

    #[test]
    fn reset_removes_and_override_replaces() {
        let out = merged(
            "services: {web: {ports: ['80:80'], deploy: {placement: {constraints: [a]}}, labels: {a: '1'}}}",
            "services: {web: {ports: !reset [], deploy: {placement: {constraints: !override [b]}}, labels: !reset null}}",
        );
        assert!(out["services"]["web"].get("ports").is_none());
        assert_eq!(out["services"]["web"]["deploy"]["placement"]["constraints"], serde_json::json!(["b"]));
        assert!(out["services"]["web"].get("labels").is_none());
    }

    #[test]
    fn merged_values_keep_the_overlay_position() {
        let base = tree("services:\n  web:\n    image: a\n");
        let overlay = parse("services:\n  web:\n    image: b\n", FileId(1), &LineMap::identity(), &Limits::default()).unwrap().unwrap();
        let out = merge(base, overlay, &[]);
        let image = out.get("services").unwrap().get("web").unwrap().get("image").unwrap();
        assert_eq!(image.pos.file, FileId(1));
    }
}
