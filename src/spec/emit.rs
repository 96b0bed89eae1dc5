//! Writes a document as YAML that every compose implementation reads back the same way.
//!
//! serde_yaml writes YAML 1.2, where `yes`, `on`, `8080:80` and `0440` are plain strings. But
//! docker-compose 1.x (PyYAML) reads YAML 1.1, where `yes` is `true`, `8080:80` is the base-60
//! integer 484880 and `0440` is octal — the classic compose pitfalls. So every string that either
//! version could read as something else is double-quoted; multi-line strings (config contents)
//! are literal blocks. Keys follow the same rule.

use serde_json::Value as Json;
use std::fmt::Write;

/// The document as block YAML, ending with a newline.
pub fn to_yaml(document: &Json) -> String {
    let mut out = String::new();
    match document {
        Json::Object(map) if !map.is_empty() => write_map(&mut out, map, 0, false),
        Json::Array(items) if !items.is_empty() => write_seq(&mut out, items, 0, false),
        scalar => {
            out.push_str(&inline(scalar, 0));
            out.push('\n');
        }
    }
    out
}

/// `after_dash`: the first line continues a `- ` already written (a mapping or list in a list).
fn write_map(out: &mut String, map: &serde_json::Map<String, Json>, indent: usize, after_dash: bool) {
    for (index, (key, value)) in map.iter().enumerate() {
        if index > 0 || !after_dash {
            out.push_str(&" ".repeat(indent));
        }
        out.push_str(&string(key, indent));
        out.push(':');
        match value {
            Json::Object(inner) if !inner.is_empty() => {
                out.push('\n');
                write_map(out, inner, indent + 2, false);
            }
            Json::Array(items) if !items.is_empty() => {
                out.push('\n');
                write_seq(out, items, indent, false);
            }
            scalar => {
                out.push(' ');
                out.push_str(&inline(scalar, indent + 2));
                out.push('\n');
            }
        }
    }
}

fn write_seq(out: &mut String, items: &[Json], indent: usize, after_dash: bool) {
    for (index, item) in items.iter().enumerate() {
        if index > 0 || !after_dash {
            out.push_str(&" ".repeat(indent));
        }
        out.push_str("- ");
        match item {
            Json::Object(map) if !map.is_empty() => write_map(out, map, indent + 2, true),
            Json::Array(inner) if !inner.is_empty() => write_seq(out, inner, indent + 2, true),
            scalar => {
                out.push_str(&inline(scalar, indent + 2));
                out.push('\n');
            }
        }
    }
}

fn inline(value: &Json, indent: usize) -> String {
    match value {
        Json::Null => "null".into(),
        Json::Bool(b) => b.to_string(),
        Json::Number(n) => n.to_string(),
        Json::String(s) => string(s, indent),
        Json::Array(_) => "[]".into(),
        Json::Object(_) => "{}".into(),
    }
}

/// A string plain when no YAML version reads it as anything else, a literal block when it spans
/// lines, double-quoted otherwise.
fn string(text: &str, indent: usize) -> String {
    if is_plain_safe(text) {
        return text.to_string();
    }
    if let Some(block) = literal_block(text, indent) {
        return block;
    }
    serde_json::to_string(text).unwrap_or_else(|_| format!("\"{}\"", text.escape_default()))
}

/// Conservative: letters and a few punctuation marks, no leading digit or sign (numbers, dates,
/// base-60 integers, octal), no YAML 1.1 boolean or null word, no `: ` or ` #`.
fn is_plain_safe(text: &str) -> bool {
    const WORDS: [&str; 12] = ["y", "n", "yes", "no", "on", "off", "true", "false", "null", "~", "nan", "inf"];
    let Some(first) = text.chars().next() else { return false };
    if !(first.is_ascii_alphabetic() || first == '/' || first == '_') {
        return false;
    }
    if WORDS.iter().any(|w| text.eq_ignore_ascii_case(w)) || text.ends_with(' ') {
        return false;
    }
    let bytes = text.as_bytes();
    bytes.iter().enumerate().all(|(i, &b)| match b {
        b if b.is_ascii_alphanumeric() => true,
        b'_' | b'.' | b'/' | b'-' | b'@' | b'%' | b'+' | b'=' | b'(' | b')' | b'$' | b'^' | b';' | b'~' => true,
        b' ' => bytes.get(i + 1).is_some_and(|next| *next != b'#' && *next != b' '),
        b':' => bytes.get(i + 1).is_some_and(|next| *next != b' '),
        b',' => true,
        _ => false,
    })
}

/// `|` block for multi-line text that a literal block can hold exactly.
fn literal_block(text: &str, indent: usize) -> Option<String> {
    if !text.contains('\n') || text.starts_with([' ', '\n', '\t']) || text.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return None;
    }
    let body = text.trim_end_matches('\n');
    let trailing = text.len() - body.len();
    let chomp = match trailing {
        0 => "-",
        1 => "",
        _ => "+",
    };
    let pad = " ".repeat(indent.max(2));
    let mut out = format!("|{chomp}");
    for line in text.strip_suffix('\n').unwrap_or(text).split('\n') {
        out.push('\n');
        if !line.is_empty() {
            let _ = write!(out, "{pad}{line}");
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strings_yaml_1_1_would_misread_are_quoted() {
        let out = to_yaml(&json!({"ports": ["8080:80", "127.0.0.1:53:53/udp"], "command": ["redis-server", "--appendonly", "yes"], "env": {"A": "on", "B": "01234", "C": "1.10", "D": "", "E": "true"}}));
        assert_eq!(
            out,
            "ports:\n- \"8080:80\"\n- \"127.0.0.1:53:53/udp\"\ncommand:\n- redis-server\n- \"--appendonly\"\n- \"yes\"\nenv:\n  A: \"on\"\n  B: \"01234\"\n  C: \"1.10\"\n  D: \"\"\n  E: \"true\"\n"
        );
    }

    #[test]
    fn ordinary_values_stay_plain_and_types_stay_native() {
        let out = to_yaml(&json!({"image": "nginx:1.27", "replicas": 4, "cpus": 0.5, "init": true, "user": null, "url": "http://db:5432/x", "empty": {}, "none": []}));
        assert_eq!(out, "image: nginx:1.27\nreplicas: 4\ncpus: 0.5\ninit: true\nuser: null\nurl: http://db:5432/x\nempty: {}\nnone: []\n");
    }

    #[test]
    fn nested_collections_and_mappings_in_lists() {
        let out = to_yaml(&json!({"services": {"web": {"ports": [{"target": 80, "published": 8080}], "labels": {"on": "x"}}}, "matrix": [[1, 2], []]}));
        assert_eq!(
            out,
            "services:\n  web:\n    ports:\n    - target: 80\n      published: 8080\n    labels:\n      \"on\": x\nmatrix:\n- - 1\n  - 2\n- []\n"
        );
    }

    #[test]
    fn multi_line_text_is_a_literal_block() {
        let out = to_yaml(&json!({"configs": {"a": {"content": "line 1\n  line 2\n\nend\n"}, "b": {"content": "x\ny"}}}));
        assert_eq!(out, "configs:\n  a:\n    content: |\n      line 1\n        line 2\n\n      end\n  b:\n    content: |-\n      x\n      y\n");
    }

    #[test]
    fn output_reads_back_as_the_same_document() {
        let document = json!({
            "services": {"web": {"command": ["sh", "-c", "echo 'a: b' # not a comment"], "environment": {"X": "a\"b\\c", "Y": " padded ", "Z": "multi\nline\n"}, "ports": ["80"], "deploy": {"replicas": 4}}},
            "x-weird": {"<<": "merge-looking key", "key: with colon": "-", "#": "*alias-looking", "[": "{"},
        });
        let reread: Json = serde_yaml::from_str(&to_yaml(&document)).unwrap();
        assert_eq!(reread, document);
    }
}
