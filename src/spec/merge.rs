//! The compose-spec merge rules, used both to join a stack's files and to apply overlay patches.
//!
//! Mappings merge key by key and the later value wins; lists depend on what they hold:
//! `command`, `entrypoint` and `healthcheck.test` are replaced; `environment`, `labels` and other
//! `KEY=VALUE` lists merge as mappings (`extra_hosts` also as `host:ip`); `depends_on` and
//! `networks` merge by name whether written as lists or mappings; `ports` append without
//! duplicates, as do `env_file`, `dns`, `dns_search` and `tmpfs` (one string is a list of one); `volumes`, `configs`, `secrets` and `devices` merge by target; other lists append
//! without duplicates. `!reset`
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
    /// A list of names or a mapping keyed by name (`depends_on`, `networks`).
    ByName,
    /// A list that may be written as one string (`env_file: a.env`): appended.
    List,
}

fn rule(path: &[&str]) -> Rule {
    match path {
        ["services", _, "command" | "entrypoint"] | ["services", _, "healthcheck", "test"] => Rule::Replace,
        ["services", _, "environment" | "labels" | "annotations" | "sysctls" | "extra_hosts"]
        | ["services", _, "deploy", "labels"]
        | ["services", _, "build", "args" | "labels"] => Rule::KeyValue,
        ["services", _, "volumes" | "configs" | "secrets" | "devices"] => Rule::ByTarget,
        ["services", _, "depends_on" | "networks"] => Rule::ByName,
        ["services", _, "env_file" | "dns" | "dns_search" | "tmpfs"] => Rule::List,
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
        Rule::KeyValue => {
            let separators: &[char] = if path.last() == Some(&"extra_hosts") { &['=', ':'] } else { &['='] };
            merge_maps(as_key_values(base, separators), as_key_values(overlay, separators), path)
        }
        Rule::ByTarget => merge_by_target(base, overlay, path.last().copied().unwrap_or("")),
        Rule::List => merge(as_list(base), as_list(overlay), &[]),
        Rule::ByName => match (&base.value, &overlay.value) {
            (Value::Seq(_), Value::Seq(_)) => merge(base, overlay, &[]),
            _ => merge_maps(as_names(base), as_names(overlay), path),
        },
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
    let Node { value: overlay_value, pos: overlay_pos, tag: overlay_tag } = overlay;
    let (mut entries, more) = match (base.value, overlay_value) {
        (Value::Map(entries), Value::Map(more)) => (entries, more),
        (_, value) => return Node { value, pos: overlay_pos, tag: overlay_tag },
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

/// `a.env` → `[a.env]`; lists and mappings stay.
fn as_list(node: Node) -> Node {
    match node.value {
        Value::Scalar(_) => Node { value: Value::Seq(vec![Node { tag: None, ..node.clone() }]), ..node },
        _ => node,
    }
}

/// `["A=1", "B"]` → `{A: "1", B: null}` (split at the first of `separators`); mappings stay.
fn as_key_values(node: Node, separators: &[char]) -> Node {
    let Value::Seq(items) = node.value else { return node };
    let entries = items
        .into_iter()
        .map(|item| {
            let text = item.as_text().unwrap_or("").to_string();
            let (key, value) = match text.split_once(separators) {
                Some((k, v)) => (k.to_string(), Node::scalar(v, item.pos)),
                None => (text.clone(), null_at(&item)),
            };
            Entry { key, key_pos: item.pos, value }
        })
        .collect();
    Node { value: Value::Map(entries), ..node }
}

/// `[db, cache]` → `{db: null, cache: null}`, the mapping form compose reads the same way.
fn as_names(node: Node) -> Node {
    let Value::Seq(items) = node.value else { return node };
    let entries = items
        .into_iter()
        .map(|item| Entry { key: item.as_text().unwrap_or("").to_string(), key_pos: item.pos, value: null_at(&item) })
        .collect();
    Node { value: Value::Map(entries), ..node }
}

fn null_at(item: &Node) -> Node {
    Node { value: Value::Scalar(super::yaml::Scalar { text: String::new(), plain: true }), pos: item.pos, tag: None }
}

fn merge_by_target(base: Node, overlay: Node, key: &str) -> Node {
    let Node { value: overlay_value, pos: overlay_pos, tag: overlay_tag } = overlay;
    let (mut items, more) = match (base.value, overlay_value) {
        (Value::Seq(items), Value::Seq(more)) => (items, more),
        (_, value) => return Node { value, pos: overlay_pos, tag: overlay_tag },
    };
    for item in more {
        let target = mount_target(&item, key);
        match items.iter().position(|existing| target.is_some() && mount_target(existing, key) == target) {
            Some(at) => items[at] = item,
            None => items.push(item),
        }
    }
    Node { value: Value::Seq(items), pos: base.pos, tag: None }
}

/// The container path of a volume / config / secret / device entry, in short or long syntax.
/// Configs and secrets without a target mount at `/<name>` and `/run/secrets/<name>`, and a
/// relative target is relative to that directory, so `- db_password` and `{source:
/// db_password}` are the same mount.
fn mount_target(node: &Node, key: &str) -> Option<String> {
    let default_dir = match key {
        "secrets" => "/run/secrets/",
        "configs" => "/",
        _ => "",
    };
    let in_default_dir = |name: &str| if name.starts_with('/') { name.to_string() } else { format!("{default_dir}{name}") };
    if let Some(target) = node.get("target").and_then(Node::as_text) {
        return Some(in_default_dir(target));
    }
    if let Some(source) = node.get("source").and_then(Node::as_text) {
        return Some(in_default_dir(source));
    }
    let text = node.as_text()?;
    if !default_dir.is_empty() {
        return Some(in_default_dir(text));
    }
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
    fn env_file_written_as_one_string_is_a_list_of_one() {
        let out = merged("services: {web: {env_file: [a.env]}}", "services: {web: {env_file: b.env}}");
        assert_eq!(out["services"]["web"]["env_file"], serde_json::json!(["a.env", "b.env"]));
    }

    #[test]
    fn volumes_merge_by_target() {
        let out = merged("services: {web: {volumes: ['a:/data', 'b:/logs']}}", "services: {web: {volumes: ['c:/data']}}");
        assert_eq!(out["services"]["web"]["volumes"], serde_json::json!(["c:/data", "b:/logs"]));
    }

    #[test]
    fn extra_hosts_merge_by_host_in_both_syntaxes() {
        let out = merged("services: {web: {extra_hosts: ['db:10.0.0.1', 'cache=10.0.0.2']}}", "services: {web: {extra_hosts: ['db:10.0.0.9']}}");
        assert_eq!(out["services"]["web"]["extra_hosts"], serde_json::json!({"db": "10.0.0.9", "cache": "10.0.0.2"}));
    }

    #[test]
    fn depends_on_and_networks_merge_by_name_across_list_and_map_forms() {
        let out = merged(
            "services: {web: {depends_on: [db], networks: [front]}}",
            "services: {web: {depends_on: {cache: {condition: service_healthy}}, networks: {back: {aliases: [w]}}}}",
        );
        assert_eq!(out["services"]["web"]["depends_on"], serde_json::json!({"db": null, "cache": {"condition": "service_healthy"}}));
        assert_eq!(out["services"]["web"]["networks"], serde_json::json!({"front": null, "back": {"aliases": ["w"]}}));
        let out = merged("services: {web: {depends_on: [db]}}", "services: {web: {depends_on: [db, cache]}}");
        assert_eq!(out["services"]["web"]["depends_on"], serde_json::json!(["db", "cache"]));
    }

    #[test]
    fn secrets_in_short_and_long_syntax_are_the_same_mount() {
        let out = merged("services: {web: {secrets: [token, other]}}", "services: {web: {secrets: [{source: token, mode: 0400}]}}");
        assert_eq!(out["services"]["web"]["secrets"], serde_json::json!([{"source": "token", "mode": 400}, "other"]));
        let out = merged("services: {web: {configs: [{source: a, target: /etc/a}]}}", "services: {web: {configs: [{source: b, target: /etc/a}]}}");
        assert_eq!(out["services"]["web"]["configs"], serde_json::json!([{"source": "b", "target": "/etc/a"}]));
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
