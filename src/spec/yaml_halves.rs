//! A large stack file parsed in two halves at once. Most of a big stack is its `services:`
//! mapping, and reading YAML was a third of `plan` on one: libyaml reads a character at a time
//! and nothing in it can be shared between threads. So the services are cut in two at the key
//! line of a service, and each half is parsed on its own core:
//!
//! ```text
//! whole:   head  services:  first services    second services    tail
//! first:   head  services:  first services    `  <cut>:`, blank  tail
//! second:  head  services:  blank             second services
//! ```
//!
//! Blank lines keep every line where it was, so every position is the whole parse's. What
//! comes out is the whole parse's tree, or nothing, and then the caller parses the file whole
//! (which also words every error). What makes it the whole parse's:
//! - `first` ends its services with the sentinel `<cut>:` (null) on the cut line: the scanner
//!   was between two services there, not inside a quoted scalar or a flow collection;
//! - `second` parses: its half ends between services too (a quote or a bracket left open would
//!   meet the end of the input), and the line after the services is at column 0, which ends
//!   every block scalar and plain scalar of a service;
//! - every line at the services' indentation is a plain `key:` line (no `<<` merge, no `?`,
//!   nothing either half could read differently), and no key is in both halves;
//! - no alias in one half names an anchor defined in the other (an alias takes the latest
//!   anchor before it, which for the whole parse could be there);
//! - the budgets hold for both parses together;
//! - lines break at `\n` or `\r\n` only (libyaml also breaks them at NEL, LS, PS and a lone
//!   `\r`, which would move the blank lines' positions).
//!
//! The tests hold it to that: on every fixture, and on generated files with quotes, flow
//! collections, block scalars, anchors and duplicates on both sides of the cut.

use super::source::{FileId, LineMap};
use super::yaml::{parse_whole, Entry, Limits, Node, Value};
use std::collections::HashSet;

/// Below this many bytes of services, one core reads the file sooner than two halves and their copies.
pub const MIN_BYTES: usize = 256 << 10;

/// The whole parse's tree of `text`, read in two halves at once; `None` when the file is
/// small, is not cut the way the checks need, or does not parse (the caller parses it whole).
pub fn parse(text: &str, file: FileId, lines: &LineMap, limits: &Limits, min_bytes: usize) -> Option<Node> {
    if text.len() > limits.max_bytes {
        return None;
    }
    let cut = Cut::find(text, min_bytes)?;
    let (first_text, second_text) = cut.halves(text);
    let (first, second) = rayon::join(|| parse_whole(&first_text, file, lines, limits), || parse_whole(&second_text, file, lines, limits));
    let (mut first, mut second) = (first.ok()?, second.ok()?);
    if first.nodes + second.nodes > limits.max_nodes || first.alias_nodes + second.alias_nodes > limits.max_alias_nodes {
        return None;
    }
    let first_half = |line: usize| line > cut.services_line && line < cut.cut_line;
    let second_half = |line: usize| line >= cut.cut_line;
    let defined = |anchors: &[(String, usize)], half: &dyn Fn(usize) -> bool| -> HashSet<String> {
        anchors.iter().filter(|(_, line)| half(*line)).map(|(name, _)| name.clone()).collect()
    };
    let (first_anchors, second_anchors) = (defined(&first.anchors, &first_half), defined(&second.anchors, &second_half));
    let crosses = |aliases: &[(String, usize)], other: &HashSet<String>| aliases.iter().any(|(name, line)| second_half(*line) && other.contains(name));
    if crosses(&second.aliases, &first_anchors) || crosses(&first.aliases, &second_anchors) {
        return None;
    }

    let tail = std::mem::take(services(second.root.as_mut()?)?);
    let services = services(first.root.as_mut()?)?;
    let sentinel = services.pop()?;
    let at = lines.map(cut.cut_line as u32 + 1, 3);
    let cut_at = |entry: &Entry| entry.key == cut.key && (entry.key_pos.line, entry.key_pos.col) == at;
    if !cut_at(&sentinel) || !sentinel.value.is_null() || sentinel.value.tag.is_some() || !tail.first().is_some_and(cut_at) {
        return None;
    }
    let mut keys: HashSet<&str> = services.iter().map(|e| e.key.as_str()).collect();
    if !tail.iter().all(|e| keys.insert(e.key.as_str())) {
        return None;
    }
    services.extend(tail);
    first.root
}

/// The entries of the top-level `services:` mapping.
fn services(root: &mut Node) -> Option<&mut Vec<Entry>> {
    let Value::Map(top) = &mut root.value else { return None };
    match &mut top.iter_mut().find(|e| e.key == "services")?.value.value {
        Value::Map(services) => Some(services),
        _ => None,
    }
}

/// Where a file is cut: byte offsets and 0-based lines.
struct Cut<'a> {
    /// The line after `services:`, the cut line, the first line after the services.
    services: usize,
    cut: usize,
    end: usize,
    services_line: usize,
    cut_line: usize,
    /// The cut line's key: the second half's first service.
    key: &'a str,
}

impl<'a> Cut<'a> {
    /// The key line of a service near the middle of the file's bytes after `services:`.
    fn find(text: &'a str, min_bytes: usize) -> Option<Cut<'a>> {
        let other_breaks = ["\u{85}", "\u{2028}", "\u{2029}"].iter().any(|b| text.contains(b)) || (text.contains('\r') && text.replace("\r\n", "").contains('\r'));
        if other_breaks {
            return None;
        }
        let mut services: Option<(usize, usize)> = None;
        let mut keys: Vec<(usize, usize, &str)> = Vec::new();
        let (mut offset, mut end) = (0, text.len());
        for (index, raw) in text.split_inclusive('\n').enumerate() {
            let line = raw.trim_end_matches(['\n', '\r']);
            if services.is_none() {
                if is_services_line(line) {
                    services = Some((offset + raw.len(), index));
                }
            } else if matches!(line.bytes().next(), Some(b) if b != b' ' && b != b'#') {
                end = offset;
                break;
            } else if line.starts_with("  ") && !matches!(line.bytes().nth(2), None | Some(b' ' | b'#')) {
                keys.push((offset, index, simple_key(&line[2..])?));
            }
            offset += raw.len();
        }
        let (services, services_line) = services?;
        if end - services < min_bytes.max(1) {
            return None;
        }
        let middle = services + (text.len() - services) / 2;
        let candidates = keys.get(1..)?;
        let &(cut, cut_line, key) = candidates.iter().find(|k| k.0 >= middle).or(candidates.last())?;
        Some(Cut { services, cut, end, services_line, cut_line, key })
    }

    fn halves(&self, text: &str) -> (String, String) {
        let blank = |part: &str| "\n".repeat(part.bytes().filter(|&b| b == b'\n').count());
        let first = [&text[..self.cut], "  ", self.key, ":", &blank(&text[self.cut..self.end]), &text[self.end..]].concat();
        let second = [&text[..self.services], &blank(&text[self.services..self.cut]), &text[self.cut..self.end]].concat();
        (first, second)
    }
}

/// `services:` at column 0 with nothing after it but a comment.
fn is_services_line(line: &str) -> bool {
    line.strip_prefix("services:")
        .is_some_and(|rest| rest.is_empty() || (rest.starts_with([' ', '\t']) && matches!(rest.trim_start().bytes().next(), None | Some(b'#'))))
}

/// The key of `name: …` or `name:`, for a name of letters, digits, `_`, `.` and `-`.
fn simple_key(line: &str) -> Option<&str> {
    let name_end = line.bytes().position(|b| !(b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-')))?;
    let (name, rest) = line.split_at(name_end);
    let starts_well = name.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_');
    let ends_well = rest.strip_prefix(':').is_some_and(|after| after.is_empty() || after.starts_with([' ', '\t']));
    (starts_well && ends_well).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn whole(text: &str) -> Option<Node> {
        parse_whole(text, FileId(0), &LineMap::identity(), &Limits::default()).ok().and_then(|parsed| parsed.root)
    }

    /// Halves at any size: `Some` only with the whole parse's tree.
    fn halves(text: &str) -> Option<Node> {
        let tree = parse(text, FileId(0), &LineMap::identity(), &Limits::default(), 0);
        if let Some(tree) = &tree {
            assert_eq!(Some(tree), whole(text).as_ref(), "halves differ from the whole parse of:\n{text}");
        }
        tree
    }

    fn services(count: usize) -> String {
        let mut text = String::from("name: demo\nx-common: &common\n  restart: always\nservices:\n");
        for i in 0..count {
            text.push_str(&format!("  svc{i}:\n    <<: *common\n    image: \"app:{i}\"\n    command: |\n      run {i}\n    environment: {{A: \"{i}\"}}\n"));
        }
        text.push_str("networks:\n  back: {}\n");
        text
    }

    #[test]
    fn a_large_file_is_read_in_halves_with_the_whole_parses_tree() {
        let text = services(4_000);
        assert!(text.len() > MIN_BYTES);
        let tree = parse(&text, FileId(0), &LineMap::identity(), &Limits::default(), MIN_BYTES).expect("cut in two");
        assert_eq!(Some(tree), whole(&text));
        assert!(parse(&services(10), FileId(0), &LineMap::identity(), &Limits::default(), MIN_BYTES).is_none(), "a small file is read whole");
        // A service defined in both halves: read whole, so the error is the whole parse's.
        let twice = text.replace("networks:", "  svc1:\n    image: again\nnetworks:");
        let error = super::super::yaml::parse(&twice, FileId(0), &LineMap::identity(), &Limits::default()).unwrap_err();
        assert!(error.message.contains("duplicate key `svc1`"), "{}", error.message);
        assert_eq!(error.pos.map(|p| p.line), Some(twice.lines().count() as u32 - 3));
    }

    #[test]
    fn every_fixture_reads_the_same_in_halves() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut pending = vec![root.join("stacks"), root.join("tests/fixtures"), root.join("overlays")];
        let (mut files, mut cut) = (0, 0);
        while let Some(dir) = pending.pop() {
            for entry in std::fs::read_dir(&dir).unwrap().map(Result::unwrap) {
                let path = entry.path();
                if path.is_dir() {
                    pending.push(path);
                } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                    let text = std::fs::read_to_string(&path).unwrap();
                    files += 1;
                    cut += usize::from(halves(&text).is_some());
                }
            }
        }
        assert!(files > 100 && cut > 50, "{cut} of {files} files were read in halves");
    }

    /// Files the cut must not be fooled by: each is either read whole or read right.
    #[test]
    fn what_spans_the_cut_is_read_whole() {
        for text in [
            // A quote open across the cut, closed after the services.
            "services:\n  a:\n    command: \"foo\n  b: bar\nx-end: \"\n",
            // A flow mapping open across the cut.
            "services:\n  a: {image: x,\n  b: y}\n",
            // An anchor in the first half, its alias in the second, and the other way round.
            "x: &c 1\nservices:\n  a: &c 2\n  b: *c\n",
            "x: &c 1\nservices:\n  a: 1\n  b: &c 2\ny: *c\n",
            // An anchored service body: its mapping ends on the cut line.
            "x: &c 1\nservices:\n  a: &c\n    k: v\n  b: *c\n",
            // The same service in both halves; a merge at the services' indentation.
            "services:\n  a: 1\n  b: 2\n  a: 3\n",
            "x: &m {c: 1}\nservices:\n  a: 1\n  <<: *m\n  b: 2\n",
            // A lone carriage return breaks a line for libyaml.
            "services:\n  a: 1\r  b: 2\n  c: 3\n",
        ] {
            assert!(halves(text).is_none(), "read in halves:\n{text}");
        }
        for text in [
            "x: &c 1\nservices:\n  a: 1\n  b: *c\n",
            "services:\n  a: |+\n    kept\n\n  b: 2\n",
            "services:\r\n  a: 1\r\n  b: 2\r\n",
            "services:  # the stack\n  a: 1\n  # b is next\n  b:\n    c: [1,\n      2]\n  c: 3",
        ] {
            assert!(halves(text).is_some(), "read whole:\n{text}");
        }
    }

    /// Pieces of service bodies: some span lines, some look like a service's key line while
    /// inside a quote or a flow collection, some define or use anchors.
    fn piece() -> impl Strategy<Value = &'static str> {
        prop::sample::select(vec![
            "    image: app\n",
            "    command: \"a\n",
            "    b\"\n",
            "  k: v\"\n",
            "    env: {A: 1,\n",
            "    B: 2}\n",
            "  k: v}\n",
            "    list: [1,\n",
            "  k: 2]\n",
            "    script: |\n      echo hi\n",
            "    keep: |+\n      x\n\n",
            "    folded: >-\n      a\n      b\n",
            "    anchored: &x {k: v}\n",
            "    block: &x\n      k: v\n",
            "    aliased: *x\n",
            "    <<: *x\n",
            "  dup:\n",
            "  # comment\n",
            "\n",
            "  - item\n",
            "    plain multi\n     line\n",
            "    'single\n  quoted'\n",
            "    ? complex\n    : key\n",
        ])
    }

    proptest! {
        #[test]
        fn halves_never_differ_from_the_whole(
            bodies in prop::collection::vec(prop::collection::vec(piece(), 0..3), 2..12),
            tail in prop::sample::select(vec!["", "networks: {}\n", "x: *x\n", "x: &x 1\n", "y: \"\n", "\tz: 1\n"]),
        ) {
            let mut text = String::from("x-base: &x {k: 0}\nservices:\n");
            for (i, body) in bodies.iter().enumerate() {
                text.push_str(&format!("  s{i}:\n"));
                body.iter().for_each(|p| text.push_str(p));
            }
            text.push_str(tail);
            halves(&text);
        }
    }
}
