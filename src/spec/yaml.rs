//! YAML as a tree of positioned nodes — the only module that parses YAML text.
//!
//! serde_yaml reports positions only for syntax errors, and semantic errors ("unknown service on
//! line 7") need every value's position. libyaml-safer (libyaml in safe Rust) emits events with
//! their positions, anchors and tags, which real compose files use everywhere (`x-common: &c`),
//! so we build our own tree from its events. libyaml is the parser that docker-compose's YAML
//! libraries (PyYAML, go-yaml) descend from: the same syntax is accepted and refused with the
//! same words ("while parsing a flow sequence, did not find expected ',' or ']'"), and it reads
//! a large stack in ~70 % of saphyr-parser's time. That also puts the safety budgets here,
//! where they belong: alias expansion (billion laughs), nesting depth and input size are all
//! bounded, and `<<` merge keys and duplicate keys are handled with exact positions.

use super::source::{FileId, LineMap, Pos};
use crate::diagnostics::Diagnostic;
use libyaml_safer::{EventData, Parser, ScalarStyle};
use std::collections::HashMap;

/// Bounds that keep hostile input cheap to refuse.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_bytes: usize,
    pub max_depth: usize,
    /// Nodes in the tree after alias expansion.
    pub max_nodes: usize,
    /// Nodes pasted by aliases. Real files alias small blocks (`<<: *common`); a billion-laughs
    /// file is refused after this much copying, in milliseconds.
    pub max_alias_nodes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_bytes: 16 << 20, max_depth: 128, max_nodes: 2_000_000, max_alias_nodes: 200_000 }
    }
}

/// A value with the position it was written at, and its tag (`!reset`, `!override`) if any.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub value: Value,
    pub pos: Pos,
    pub tag: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Scalar(Scalar),
    Seq(Vec<Node>),
    Map(Vec<Entry>),
}

/// A scalar's text; `plain` scalars are typed by the YAML core schema, quoted ones are strings.
#[derive(Debug, Clone, PartialEq)]
pub struct Scalar {
    pub text: String,
    pub plain: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub key: String,
    pub key_pos: Pos,
    pub value: Node,
}

/// What a scalar means under the YAML core schema.
#[derive(Debug, Clone, PartialEq)]
pub enum Typed<'a> {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(&'a str),
}

impl Scalar {
    pub fn typed(&self) -> Typed<'_> {
        if !self.plain {
            return Typed::Str(&self.text);
        }
        let t = self.text.as_str();
        match t {
            "" | "~" | "null" | "Null" | "NULL" => return Typed::Null,
            "true" | "True" | "TRUE" => return Typed::Bool(true),
            "false" | "False" | "FALSE" => return Typed::Bool(false),
            ".inf" | "+.inf" | ".Inf" | "+.Inf" => return Typed::Float(f64::INFINITY),
            "-.inf" | "-.Inf" => return Typed::Float(f64::NEG_INFINITY),
            _ => {}
        }
        if let Some(hex) = t.strip_prefix("0x") {
            if let Ok(n) = i64::from_str_radix(hex, 16) {
                return Typed::Int(n);
            }
        }
        if let Some(oct) = t.strip_prefix("0o") {
            if let Ok(n) = i64::from_str_radix(oct, 8) {
                return Typed::Int(n);
            }
        }
        let digits = t.strip_prefix(['-', '+']).unwrap_or(t);
        if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
            if let Ok(n) = t.parse::<i64>() {
                return Typed::Int(n);
            }
        }
        if looks_like_float(t) {
            if let Ok(f) = t.parse::<f64>() {
                return Typed::Float(f);
            }
        }
        Typed::Str(t)
    }
}

fn looks_like_float(t: &str) -> bool {
    let body = t.strip_prefix(['-', '+']).unwrap_or(t);
    let mantissa = body.split(['e', 'E']).next().unwrap_or("");
    !mantissa.is_empty()
        && mantissa != "."
        && mantissa.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && mantissa.bytes().filter(|&b| b == b'.').count() <= 1
        && body.bytes().all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'-' | b'+'))
}

impl Node {
    pub fn scalar(text: impl Into<String>, pos: Pos) -> Node {
        Node { value: Value::Scalar(Scalar { text: text.into(), plain: false }), pos, tag: None }
    }

    pub fn as_map(&self) -> Option<&[Entry]> {
        match &self.value {
            Value::Map(entries) => Some(entries),
            _ => None,
        }
    }

    pub fn as_seq(&self) -> Option<&[Node]> {
        match &self.value {
            Value::Seq(items) => Some(items),
            _ => None,
        }
    }

    pub fn as_scalar(&self) -> Option<&Scalar> {
        match &self.value {
            Value::Scalar(s) => Some(s),
            _ => None,
        }
    }

    /// The scalar's text whatever its type (`80` and `"80"` both give "80"); None for null and collections.
    pub fn as_text(&self) -> Option<&str> {
        match self.as_scalar()?.typed() {
            Typed::Null => None,
            _ => self.as_scalar().map(|s| s.text.as_str()),
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self.as_scalar().map(Scalar::typed), Some(Typed::Null))
    }

    pub fn get(&self, key: &str) -> Option<&Node> {
        self.as_map()?.iter().find(|e| e.key == key).map(|e| &e.value)
    }

    pub fn kind_name(&self) -> &'static str {
        match &self.value {
            Value::Scalar(s) => match s.typed() {
                Typed::Null => "null",
                Typed::Bool(_) => "a boolean",
                Typed::Int(_) => "an integer",
                Typed::Float(_) => "a number",
                Typed::Str(_) => "a string",
            },
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }

    pub fn has_tag(&self, tag: &str) -> bool {
        self.tag.as_deref() == Some(tag)
    }

    /// The value as JSON, scalars typed by the core schema.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match &self.value {
            Value::Scalar(s) => match s.typed() {
                Typed::Null => J::Null,
                Typed::Bool(b) => J::Bool(b),
                Typed::Int(i) => J::from(i),
                Typed::Float(f) => serde_json::Number::from_f64(f).map_or_else(|| J::String(s.text.clone()), J::Number),
                Typed::Str(t) => J::String(t.to_string()),
            },
            Value::Seq(items) => J::Array(items.iter().map(Node::to_json).collect()),
            Value::Map(entries) => J::Object(entries.iter().map(|e| (e.key.clone(), e.value.to_json())).collect()),
        }
    }

    /// Levels of collections: 0 for a scalar. Bounded by [`Limits::max_depth`] for parsed trees.
    fn height(&self) -> usize {
        match &self.value {
            Value::Scalar(_) => 0,
            Value::Seq(items) => 1 + items.iter().map(Node::height).max().unwrap_or(0),
            Value::Map(entries) => 1 + entries.iter().map(|e| e.value.height()).max().unwrap_or(0),
        }
    }

    /// Counts nodes, for the alias-expansion budget.
    fn size(&self) -> usize {
        match &self.value {
            Value::Scalar(_) => 1,
            Value::Seq(items) => 1 + items.iter().map(Node::size).sum::<usize>(),
            Value::Map(entries) => 1 + entries.iter().map(|e| 1 + e.value.size()).sum::<usize>(),
        }
    }
}

/// A collection being built, one per nesting level. Its items or entries so far are the tail of
/// one stack shared by all levels, from `start`: a finished collection is then allocated once at
/// its exact size, instead of growing by doubling (most of a stack's memory is these vectors).
enum Frame {
    Seq { node: Node, anchor: Option<String>, start: usize },
    Map { node: Node, anchor: Option<String>, start: usize, key: Option<(String, Pos, bool)>, merges: Vec<Node>, index: KeyIndex },
}

/// Finds a mapping's earlier entry with the same key: a scan while the mapping is small, a hash
/// map once it is large (a `services:` with thousands of entries made the scan quadratic).
#[derive(Default)]
struct KeyIndex {
    positions: HashMap<String, usize>,
}

impl KeyIndex {
    const SCAN_UP_TO: usize = 16;

    fn find<'a>(&mut self, entries: &'a [Entry], key: &str) -> Option<&'a Entry> {
        if entries.len() <= Self::SCAN_UP_TO {
            return entries.iter().find(|e| e.key == key);
        }
        if self.positions.is_empty() {
            self.positions = entries.iter().enumerate().map(|(i, e)| (e.key.clone(), i)).collect();
        }
        self.positions.get(key).map(|&i| &entries[i])
    }

    fn pushed(&mut self, entries: &[Entry]) {
        if !self.positions.is_empty() {
            if let Some(last) = entries.last() {
                self.positions.insert(last.key.clone(), entries.len() - 1);
            }
        }
    }
}

/// Parses one YAML document. `Ok(None)` for an empty file. Positions pass through `lines`.
/// A large stack file is read in two halves at once ([`super::yaml_halves`]).
pub fn parse(text: &str, file: FileId, lines: &LineMap, limits: &Limits) -> Result<Option<Node>, Diagnostic> {
    if let Some(tree) = super::yaml_halves::parse(text, file, lines, limits, super::yaml_halves::MIN_BYTES) {
        return Ok(Some(tree));
    }
    parse_whole(text, file, lines, limits).map(|parsed| parsed.root)
}

/// A parsed document, with what [`super::yaml_halves`] needs to join two parses into one.
pub(super) struct Parsed {
    pub root: Option<Node>,
    /// Nodes in the tree after alias expansion, and those aliases pasted (the budgets).
    pub nodes: usize,
    pub alias_nodes: usize,
    /// Anchors defined and aliases used: the name and the line (0-based, as libyaml counts).
    pub anchors: Vec<(String, usize)>,
    pub aliases: Vec<(String, usize)>,
}

pub(super) fn parse_whole(text: &str, file: FileId, lines: &LineMap, limits: &Limits) -> Result<Parsed, Diagnostic> {
    let at = |line: usize, col: usize| {
        let (line, col) = lines.map(line as u32, col as u32 + 1);
        Pos { file, line, col }
    };
    if text.len() > limits.max_bytes {
        return Err(Diagnostic::error(at(1, 0), format!("file is {} bytes, over the {} byte limit", text.len(), limits.max_bytes))
            .with_hint("split the stack into several files, or remove generated content"));
    }
    // An anchored node with its size (for the alias budget) and height (for the depth budget).
    let mut anchors: HashMap<String, (Node, usize, usize)> = HashMap::new();
    let mut stack: Vec<Frame> = Vec::new();
    let (mut open_items, mut open_entries): (Vec<Node>, Vec<Entry>) = (Vec::new(), Vec::new());
    let mut root: Option<Node> = None;
    let mut nodes = 0usize;
    let mut alias_nodes = 0usize;
    let mut documents = 0;
    let (mut anchors_defined, mut aliases_used) = (Vec::new(), Vec::new());
    let mut parser = Parser::new();
    parser.set_input(std::io::BufReader::with_capacity(16 << 10, text.as_bytes()));
    loop {
        let event = parser.parse().map_err(|e| {
            let mark = e.problem_mark().unwrap_or_default();
            let problem = match e.context() {
                Some(context) => format!("{context}, {}", e.problem()),
                None => e.problem().to_string(),
            };
            Diagnostic::error(at(mark.line as usize + 1, mark.column as usize), format!("invalid YAML: {problem}"))
        })?;
        let line = event.start_mark.line as usize;
        let pos = at(line + 1, event.start_mark.column as usize);
        // Where the anchor is written: a collection's end can be on a later line.
        if let EventData::Scalar { anchor: Some(anchor), .. } | EventData::SequenceStart { anchor: Some(anchor), .. } | EventData::MappingStart { anchor: Some(anchor), .. } = &event.data {
            anchors_defined.push((anchor.clone(), line));
        }
        let complete = match event.data {
            EventData::DocumentStart { .. } => {
                documents += 1;
                if documents > 1 {
                    return Err(Diagnostic::error(pos, "a stack file holds one YAML document; found a second `---`")
                        .with_hint("move the second document into its own file"));
                }
                None
            }
            EventData::Scalar { anchor, tag, value, style, .. } => {
                // Only an explicit string tag makes a plain scalar a string; `!reset` does not.
                let plain = style == ScalarStyle::Plain && !tag.as_deref().is_some_and(|t| t.ends_with("str"));
                let node = Node { value: Value::Scalar(Scalar { text: value, plain }), pos, tag };
                Some((node, anchor))
            }
            EventData::Alias { anchor } => {
                let Some((node, size, height)) = anchors.get(&anchor) else {
                    return Err(Diagnostic::error(pos, "alias refers to an unknown anchor"));
                };
                // An alias pastes a whole subtree: nested aliases could otherwise build a tree far
                // deeper than any nesting written in the file.
                if stack.len() + height > limits.max_depth {
                    return Err(too_deep(pos, limits));
                }
                alias_nodes += size;
                if alias_nodes > limits.max_alias_nodes {
                    return Err(alias_bomb(pos, limits));
                }
                nodes += size;
                let mut node = node.clone();
                node.pos = pos;
                aliases_used.push((anchor, line));
                Some((node, None))
            }
            EventData::SequenceStart { anchor, tag, .. } => {
                let node = Node { value: Value::Seq(Vec::new()), pos, tag };
                stack.push(Frame::Seq { node, anchor, start: open_items.len() });
                if stack.len() > limits.max_depth {
                    return Err(too_deep(pos, limits));
                }
                None
            }
            EventData::MappingStart { anchor, tag, .. } => {
                let node = Node { value: Value::Map(Vec::new()), pos, tag };
                stack.push(Frame::Map { node, anchor, start: open_entries.len(), key: None, merges: Vec::new(), index: KeyIndex::default() });
                if stack.len() > limits.max_depth {
                    return Err(too_deep(pos, limits));
                }
                None
            }
            EventData::SequenceEnd => match stack.pop() {
                Some(Frame::Seq { mut node, anchor, start }) => {
                    node.value = Value::Seq(open_items.drain(start..).collect());
                    Some((node, anchor))
                }
                _ => None,
            },
            EventData::MappingEnd => match stack.pop() {
                Some(Frame::Map { mut node, anchor, start, merges, .. }) => {
                    let mut entries: Vec<Entry> = open_entries.drain(start..).collect();
                    merge_keys(&mut entries, merges)?;
                    node.value = Value::Map(entries);
                    Some((node, anchor))
                }
                _ => None,
            },
            EventData::StreamEnd => break,
            EventData::StreamStart { .. } | EventData::DocumentEnd { .. } => None,
        };
        let Some((node, anchor)) = complete else { continue };
        nodes += 1;
        if nodes > limits.max_nodes {
            return Err(Diagnostic::error(pos, format!("the file holds more than {} values", limits.max_nodes))
                .with_hint("split the stack into several files, or remove generated content"));
        }
        if let Some(anchor) = anchor {
            let (size, height) = (node.size(), node.height());
            anchors.insert(anchor, (node.clone(), size, height));
        }
        match stack.last_mut() {
            None => root = Some(node),
            Some(Frame::Seq { .. }) => open_items.push(node),
            Some(Frame::Map { start, key, merges, index, .. }) => match key.take() {
                None => {
                    let Value::Scalar(scalar) = node.value else {
                        return Err(Diagnostic::error(node.pos, format!("a mapping key must be a string, not {}", node.kind_name())));
                    };
                    *key = Some((scalar.text, node.pos, scalar.plain));
                }
                Some((name, key_pos, plain)) => {
                    if name == "<<" && plain {
                        merges.push(node);
                    } else if let Some(first) = index.find(&open_entries[*start..], &name) {
                        return Err(Diagnostic::error(key_pos, format!("duplicate key `{name}`"))
                            .with_label("defined again here")
                            .with_hint(format!("`{name}` is first defined at line {}; keep one of them", first.key_pos.line)));
                    } else {
                        open_entries.push(Entry { key: name, key_pos, value: node });
                        index.pushed(&open_entries[*start..]);
                    }
                }
            },
        }
    }
    Ok(Parsed { root, nodes, alias_nodes, anchors: anchors_defined, aliases: aliases_used })
}

/// `<<: *base` / `<<: [*a, *b]`: keys written in the mapping win, then earlier sources.
fn merge_keys(entries: &mut Vec<Entry>, merges: Vec<Node>) -> Result<(), Diagnostic> {
    for source in merges {
        let sources: Vec<Node> = match source.value {
            Value::Seq(items) => items,
            Value::Map(_) => vec![source],
            _ => return Err(Diagnostic::error(source.pos, "`<<` merges a mapping or a list of mappings")),
        };
        for merged in sources {
            let Value::Map(merged_entries) = merged.value else {
                return Err(Diagnostic::error(merged.pos, "`<<` merges a mapping or a list of mappings"));
            };
            for entry in merged_entries {
                if !entries.iter().any(|e| e.key == entry.key) {
                    entries.push(entry);
                }
            }
        }
    }
    Ok(())
}

fn alias_bomb(pos: Pos, limits: &Limits) -> Diagnostic {
    Diagnostic::error(pos, format!("YAML aliases expand to more than {} values", limits.max_alias_nodes))
        .with_hint("this looks like an alias bomb (\"billion laughs\"); expand fewer aliases")
}

fn too_deep(pos: Pos, limits: &Limits) -> Diagnostic {
    Diagnostic::error(pos, format!("YAML nested deeper than {} levels", limits.max_depth))
        .with_hint("no compose file needs this; was the file generated by mistake?")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(text: &str) -> Result<Option<Node>, Diagnostic> {
        parse(text, FileId(0), &LineMap::identity(), &Limits::default())
    }

    #[test]
    fn every_value_knows_its_line_and_column() {
        let root = tree("services:\n  web:\n    image: nginx\n").unwrap().unwrap();
        let image = root.get("services").unwrap().get("web").unwrap().get("image").unwrap();
        assert_eq!((image.pos.line, image.pos.col), (3, 12));
        assert_eq!(image.as_text(), Some("nginx"));
    }

    #[test]
    fn duplicate_key_points_at_the_duplicate() {
        let err = tree("a: 1\nb: 2\na: 3\n").unwrap_err();
        assert_eq!(err.pos.map(|p| (p.line, p.col)), Some((3, 1)));
        assert!(err.message.contains("duplicate key `a`"));
    }

    #[test]
    fn duplicate_keys_are_found_in_large_mappings_too() {
        let mut text: String = (0..100).map(|i| format!("k{i}: {i}\n")).collect();
        text.push_str("k42: again\n");
        let err = tree(&text).unwrap_err();
        assert_eq!(err.pos.map(|p| p.line), Some(101));
        assert!(err.hint.unwrap_or_default().contains("line 43"));
    }

    #[test]
    fn merge_keys_fill_in_what_the_mapping_does_not_say() {
        let root = tree("x: &base {image: a, restart: always}\ny:\n  <<: *base\n  image: b\n").unwrap().unwrap();
        let y = root.get("y").unwrap();
        assert_eq!(y.get("image").unwrap().as_text(), Some("b"));
        assert_eq!(y.get("restart").unwrap().as_text(), Some("always"));
    }

    #[test]
    fn billion_laughs_is_refused_quickly() {
        let mut text = String::from("a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
        for i in 1..10 {
            let refs = vec![format!("*a{}", i - 1); 9].join(", ");
            text.push_str(&format!("a{i}: &a{i} [{refs}]\n"));
        }
        let started = std::time::Instant::now();
        let err = tree(&text).unwrap_err();
        assert!(err.message.contains("aliases expand"), "{}", err.message);
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
    }

    #[test]
    fn deep_nesting_is_refused() {
        let text = "[".repeat(10_000) + &"]".repeat(10_000);
        let err = tree(&text).unwrap_err();
        assert!(err.message.contains("nested deeper"), "{}", err.message);
    }

    #[test]
    fn aliases_cannot_nest_deeper_than_the_file_does() {
        // Each anchor is 100 levels deep and holds the previous one: 130 of them would build a
        // 13,000-level tree that overflows the stack of every recursive walk after parsing.
        let mut text = String::new();
        for k in 0..130 {
            let inner = if k == 0 { "x".to_string() } else { format!("*a{}", k - 1) };
            text.push_str(&format!("x{k}: &a{k} {}{inner}{}\n", "[".repeat(100), "]".repeat(100)));
        }
        let err = tree(&text).unwrap_err();
        assert!(err.message.contains("nested deeper"), "{}", err.message);
        assert_eq!(err.pos.map(|p| p.line), Some(2));
        // An alias of a shallow anchor inside a nested mapping is fine.
        assert!(tree("a: &a {b: [1, 2]}\nc: {d: {e: *a}}\n").is_ok());
    }

    #[test]
    fn plain_scalars_follow_the_core_schema_and_quoted_ones_stay_strings() {
        let root = tree("a: 4\nb: '4'\nc: true\nd: ~\ne: 1.5\nf: 0x1F\ng: 1e3\nh: 1.2.3\n").unwrap().unwrap();
        let typed = |k: &str| root.get(k).unwrap().as_scalar().unwrap().typed().clone();
        assert_eq!(typed("a"), Typed::Int(4));
        assert_eq!(typed("b"), Typed::Str("4"));
        assert_eq!(typed("c"), Typed::Bool(true));
        assert_eq!(typed("d"), Typed::Null);
        assert_eq!(typed("e"), Typed::Float(1.5));
        assert_eq!(typed("f"), Typed::Int(31));
        assert_eq!(typed("g"), Typed::Float(1000.0));
        assert_eq!(typed("h"), Typed::Str("1.2.3"));
    }

    #[test]
    fn tags_are_kept_for_reset_and_override() {
        let root = tree("ports: !reset []\n").unwrap().unwrap();
        assert!(root.get("ports").unwrap().has_tag("!reset"));
    }

    #[test]
    fn syntax_errors_have_positions() {
        let err = tree("a:\n  b: [1, 2\n").unwrap_err();
        assert!(err.pos.is_some());
        assert!(err.message.starts_with("invalid YAML"));
    }

    /// The published libyaml-safer panicked on each of these (vendor/libyaml-safer/PATCHES.md);
    /// they parse, or fail, as libyaml does.
    #[test]
    fn inputs_the_published_parser_panicked_on_parse_as_libyaml_does() {
        // A block scalar whose last line has no line break: the text without one (PyYAML agrees).
        for (text, want) in [("a: |\n  x", "x"), ("a: >\n  x\n  y", "x y"), ("a: |+\n  x", "x"), ("b: 1\na: |\n  x\n  y", "x\ny")] {
            let root = tree(text).unwrap().unwrap();
            assert_eq!(root.get("a").and_then(Node::as_text), Some(want), "{text:?}");
        }
        // A tag ended by a ',' in a flow sequence.
        let root = tree("a: [!, b]").unwrap().unwrap();
        assert_eq!(root.get("a").and_then(Node::as_seq).map(<[Node]>::len), Some(2));
        // An escape cut off by the end of the input.
        let err = tree("a: \"x\\").unwrap_err();
        assert!(err.message.contains("found unknown escape character"), "{}", err.message);
    }
}
