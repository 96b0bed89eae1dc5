//! Helm-like templating: stack files and `*.hbs` config files are handlebars templates rendered as
//! text before YAML parsing.
//!
//! Four things make this safe for compose files:
//! - `{{.` (Swarm placeholders such as `{{.Task.Slot}}`, logging tags) is not handlebars: it is
//!   shielded before rendering and restored after, byte for byte.
//! - Strict: a missing value is an error at the template's line; a mapping or list rendered as
//!   text (instead of through `toYaml`) is an error too, not `[object]` in the output.
//! - Values are data, never syntax: in a stack file, what `{{ values.x }}` inserts stands in
//!   the text as a token ([`Rendered::literals`]) that is put back into the scalar (or key) it
//!   landed in after YAML parsing and interpolation. A `--set` value with a newline cannot add
//!   keys, and `$HOME` in a value stays `$HOME`. `quote`, `toYaml` and `toJson` produce YAML
//!   syntax on purpose, with their strings escaped (`$` doubled, so interpolation keeps it).
//! - Positions survive: every template line carries an invisible marker through rendering, so each
//!   rendered line maps back to the line the user wrote ([`LineMap`]).

use super::source::{FileId, LineMap, Pos};
use super::yaml::{Node, Value};
use std::sync::{Arc, Mutex};
use crate::diagnostics::Diagnostic;
use handlebars::{
    Context, Handlebars, Helper, HelperDef, RenderContext, RenderError, RenderErrorReason, ScopedJson, TemplateError,
};
use serde_json::Value as Json;

/// Stands in for a `{{` that belongs to Swarm / Go templates.
const SHIELD: char = '\u{E000}';
const MARK_OPEN: char = '\u{E001}';
const MARK_CLOSE: char = '\u{E002}';
/// Prefixes a mapping or list that was rendered as text.
const NOT_TEXT: char = '\u{E003}';
/// `LITERAL_OPEN index LITERAL_CLOSE` stands for `Rendered::literals[index]`.
const LITERAL_OPEN: char = '\u{E004}';
const LITERAL_CLOSE: char = '\u{E005}';
/// Prefixes helper output that is YAML syntax by design (`quote`, `toYaml`, `toJson`).
const SYNTAX: char = '\u{E006}';
/// `{{ toYaml x indent=N }}` indents by at most this much.
pub const MAX_INDENT: u64 = 64;

/// What a template renders into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// A stack file: values go in as data (see the module docs).
    Yaml,
    /// A config or secret file: values go in as text.
    Text,
}

/// Rendered text and where each of its lines came from.
#[derive(Debug)]
pub struct Rendered {
    pub text: String,
    pub lines: LineMap,
    /// The values a YAML template inserted, in token order: see [`substitute_literals`].
    pub literals: Vec<String>,
}

/// What templates see: `values.…` and `stack.name`.
pub fn context(values: &Json, stack_name: &str) -> Json {
    serde_json::json!({ "values": values, "stack": { "name": stack_name } })
}

/// Renders one template. Text without `{{` is returned as is.
pub fn render(source: &str, file: FileId, context: &Json, output: Output) -> Result<Rendered, Vec<Diagnostic>> {
    if !source.contains("{{") {
        return Ok(Rendered { text: source.to_string(), lines: LineMap::identity(), literals: Vec::new() });
    }
    check_blocks(source, file).map_err(|d| vec![d])?;
    let shielded = shield_go_templates(source);
    let marked = mark_lines(&shielded);
    let literals = Arc::new(Mutex::new(Vec::new()));
    let registry = registry(output, literals.clone());
    let mut output = Budget { text: Vec::with_capacity(marked.len()), exceeded: false };
    if let Err(e) = registry.render_template_to_write(&marked, context, &mut output) {
        if output.exceeded {
            return Err(vec![Diagnostic::error(Pos { file, line: 1, col: 1 }, format!("the template renders to more than {MAX_RENDERED_BYTES} bytes"))
                .with_hint("a loop over a large value (or loops nested in loops) expands too far")]);
        }
        return Err(vec![render_error(&e, file)]);
    }
    let rendered = String::from_utf8_lossy(&output.text);
    let (text, lines, not_text) = unmark(&rendered, source);
    if !not_text.is_empty() {
        return Err(not_text
            .into_iter()
            .map(|line| {
                let col = source.split('\n').nth(line as usize - 1).and_then(|l| l.find("{{").map(|at| l[..at].chars().count())).map_or(1, |chars| chars as u32 + 1);
                Diagnostic::error(Pos { file, line, col }, "a mapping or list is rendered as text")
                    .with_hint("use `{{ toYaml values.x indent=N }}` (block YAML) or `{{ toJson values.x }}` (inline)")
            })
            .collect());
    }
    drop(registry);
    let literals = Arc::try_unwrap(literals).map(|m| m.into_inner().unwrap_or_default()).unwrap_or_default();
    Ok(Rendered { text: text.replace(SHIELD, "{{").replace(SYNTAX, ""), lines, literals })
}

/// Rendered text is parsed as YAML afterwards, whose budget is the same: nested loops over large
/// values could otherwise expand a small file into gigabytes before anything looks at it.
pub const MAX_RENDERED_BYTES: usize = 16 << 20;

/// Collects rendered text and refuses to grow past [`MAX_RENDERED_BYTES`].
struct Budget {
    text: Vec<u8>,
    exceeded: bool,
}

impl std::io::Write for Budget {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        if self.text.len() + bytes.len() > MAX_RENDERED_BYTES {
            self.exceeded = true;
            return Err(std::io::Error::other("template output budget exceeded"));
        }
        self.text.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Finds a `{{#block}}` that is never closed, or closed by the wrong `{{/name}}`, and says so at
/// the line that opened it: handlebars itself only reports "expected …" at the end of the file.
fn check_blocks(source: &str, file: FileId) -> Result<(), Diagnostic> {
    // Block names with the byte offset of their `{{`; positions are computed for errors only.
    let mut open: Vec<(String, usize)> = Vec::new();
    let mut rest = source;
    let mut offset = 0;
    while let Some(at) = rest.find("{{") {
        let tag_start = offset + at;
        let after = &rest[at + 2..];
        let (content, consumed) = if let Some(comment) = after.strip_prefix("!--") {
            (None, 3 + comment.find("--}}").map_or(comment.len(), |end| end + 4))
        } else {
            match after.find("}}") {
                Some(end) => (Some(&after[..end]), end + 2),
                None => (None, after.len()),
            }
        };
        offset = tag_start + 2 + consumed;
        rest = &source[offset..];
        let Some(content) = content else { continue };
        let inner = content.trim_start_matches(['~', '{']).trim_start();
        let name_of = |text: &str| text.trim_start_matches(['>', '*']).split(|c: char| c.is_whitespace() || c == '~' || c == '}').next().unwrap_or("").to_string();
        if let Some(block) = inner.strip_prefix('#') {
            open.push((name_of(block), tag_start));
        } else if let Some(inverse) = inner.strip_prefix('^') {
            let name = name_of(inverse);
            if !name.is_empty() {
                open.push((name, tag_start));
            }
        } else if let Some(close) = inner.strip_prefix('/') {
            let name = name_of(close);
            match open.pop() {
                None => {
                    return Err(Diagnostic::error(position(source, tag_start, file), format!("`{{{{/{name}}}}}` closes no block")).with_hint(format!("remove it, or open the block with `{{{{#{name} …}}}}`")));
                }
                Some((opened, opened_at)) if opened != name => {
                    let opened_line = position(source, opened_at, file).line;
                    return Err(Diagnostic::error(position(source, tag_start, file), format!("`{{{{/{name}}}}}` closes `{{{{#{opened}}}}}` opened at line {opened_line}"))
                        .with_hint(format!("close `{opened}` first with `{{{{/{opened}}}}}`")));
                }
                Some(_) => {}
            }
        }
    }
    match open.pop() {
        Some((name, at)) => Err(Diagnostic::error(position(source, at, file), format!("`{{{{#{name}}}}}` is never closed")).with_hint(format!("close it with `{{{{/{name}}}}}`"))),
        None => Ok(()),
    }
}

/// The line and column (characters) of a byte offset.
fn position(source: &str, offset: usize, file: FileId) -> Pos {
    let before = &source[..offset];
    let line = before.matches('\n').count() as u32 + 1;
    let line_start = before.rfind('\n').map_or(0, |n| n + 1);
    Pos { file, line, col: before[line_start..].chars().count() as u32 + 1 }
}

fn registry(output: Output, literals: Arc<Mutex<Vec<String>>>) -> Handlebars<'static> {
    let mut registry = Handlebars::new();
    registry.set_strict_mode(true);
    registry.register_escape_fn(move |text| {
        // handlebars renders a mapping as `[object]` and a list as `[a, b]`; a string value that
        // merely looks like a list is valid JSON (`["CMD", "true"]`, `[80, 443]`) and passes.
        let list_as_text = text.starts_with('[') && text.ends_with(']') && serde_json::from_str::<Json>(text).is_err();
        if text == "[object]" || list_as_text {
            format!("{NOT_TEXT}{text}")
        } else if output == Output::Text || text.starts_with(SYNTAX) {
            text.to_string()
        } else {
            let mut literals = literals.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            literals.push(text.to_string());
            format!("{LITERAL_OPEN}{}{LITERAL_CLOSE}", literals.len() - 1)
        }
    });
    registry.register_helper("default", Box::new(DefaultHelper));
    registry.register_helper("quote", Box::new(QuoteHelper));
    registry.register_helper("toYaml", Box::new(ToYamlHelper));
    registry.register_helper("toJson", Box::new(ToJsonHelper));
    registry
}

/// Replaces the `{{` of `{{.Task.Slot}}`, `{{ .Name }}`, `{{- .x }}` with [`SHIELD`].
fn shield_go_templates(source: &str) -> String {
    let mut out = String::with_capacity(source.len());
    let mut rest = source;
    while let Some(at) = rest.find("{{") {
        out.push_str(&rest[..at]);
        let after = rest[at + 2..].trim_start_matches(['-', ' ']);
        if after.starts_with('.') {
            out.push(SHIELD);
        } else {
            out.push_str("{{");
        }
        rest = &rest[at + 2..];
    }
    out.push_str(rest);
    out
}

/// Appends `MARK_OPEN line MARK_CLOSE` to every line not inside an open `{{ … }}`.
fn mark_lines(source: &str) -> String {
    let mut out = String::with_capacity(source.len() + source.len() / 4);
    let mut open = 0i64;
    for (index, line) in source.split('\n').enumerate() {
        open += line.matches("{{").count() as i64 - line.matches("}}").count() as i64;
        out.push_str(line);
        if open <= 0 && !is_standalone_block_tag(line) {
            open = 0;
            out.push(MARK_OPEN);
            out.push_str(&(index + 1).to_string());
            out.push(MARK_CLOSE);
        }
        out.push('\n');
    }
    out.pop();
    out
}

/// `{{#each …}}`, `{{/if}}`, `{{else}}` alone on a line: handlebars removes such lines, and a
/// marker would keep them.
fn is_standalone_block_tag(line: &str) -> bool {
    let t = line.trim();
    t.starts_with("{{") && t.ends_with("}}") && t.matches("{{").count() == 1 && {
        let inner = t[2..].trim_start_matches('~').trim_start();
        inner.starts_with(['#', '/', '^', '!']) || inner.starts_with("else")
    }
}

/// Strips the markers; returns the text, its line map and the lines that rendered a mapping as text.
fn unmark(rendered: &str, source: &str) -> (String, LineMap, Vec<u32>) {
    let source_lines: Vec<&str> = source.split('\n').collect();
    let mut text = String::with_capacity(rendered.len());
    let mut origins: Vec<Option<u32>> = Vec::new();
    let mut clean_lines = Vec::new();
    let mut not_text = Vec::new();
    for line in rendered.split('\n') {
        let mut clean = String::with_capacity(line.len());
        let mut origin = None;
        let mut chars = line.chars();
        while let Some(c) = chars.next() {
            if c == MARK_OPEN {
                let number: String = chars.by_ref().take_while(|&c| c != MARK_CLOSE).collect();
                origin = number.parse().ok();
            } else {
                clean.push(c);
            }
        }
        origins.push(origin);
        clean_lines.push(clean);
    }
    // A line with no marker came from an expansion that ends on a later marked line.
    let mut next = origins.iter().rev().flatten().next().copied().unwrap_or(1);
    for origin in origins.iter_mut().rev() {
        match origin {
            Some(line) => next = *line,
            None => *origin = Some(next),
        }
    }
    let mut map = Vec::with_capacity(clean_lines.len());
    for (clean, origin) in clean_lines.iter().zip(&origins) {
        let line = origin.unwrap_or(1);
        if clean.contains(NOT_TEXT) {
            not_text.push(line);
        }
        let verbatim = source_lines.get(line as usize - 1).is_some_and(|s| *s == clean.replace(SHIELD, "{{"));
        map.push((line, verbatim));
        text.push_str(clean);
        text.push('\n');
    }
    text.pop();
    not_text.dedup();
    (text, LineMap::from_origins(map), not_text)
}

fn render_error(error: &RenderError, file: FileId) -> Diagnostic {
    let pos = Pos { file, line: error.line_no.unwrap_or(1) as u32, col: error.column_no.unwrap_or(1) as u32 };
    match error.reason() {
        RenderErrorReason::MissingVariable(path) => {
            let path = path.clone().unwrap_or_else(|| "value".into());
            let key = path.strip_prefix("values.").unwrap_or(&path);
            Diagnostic::error(pos, format!("missing value `{path}`"))
                .with_hint(format!("set `{key}` in values.yaml, an overlay's values.yaml, --values FILE or --set {key}=…, or use `{{{{ default {path} \"…\" }}}}`"))
        }
        RenderErrorReason::TemplateError(template) => template_error(template, file),
        other => Diagnostic::error(pos, format!("template: {other}")),
    }
}

fn template_error(error: &TemplateError, file: FileId) -> Diagnostic {
    let (line, col) = error.pos().unwrap_or((1, 1));
    let pos = Pos { file, line: line as u32, col: col as u32 };
    // The parser lists every token it expected; that list says nothing to a user.
    let reason = error.reason().to_string();
    let reason = match reason.find(": expected") {
        Some(at) if reason.len() > 100 => &reason[..at],
        _ => reason.as_str(),
    };
    Diagnostic::error(pos, format!("template syntax: {reason}")).with_hint("check that every `{{` has its `}}` and every `{{#block}}` its `{{/block}}`")
}

/// `{{ default values.x "fallback" }}`: the fallback when the value is missing, null or empty.
struct DefaultHelper;

impl HelperDef for DefaultHelper {
    fn call_inner<'reg: 'rc, 'rc>(
        &self,
        h: &Helper<'rc>,
        _: &'reg Handlebars<'reg>,
        _: &'rc Context,
        _: &mut RenderContext<'reg, 'rc>,
    ) -> Result<ScopedJson<'rc>, RenderError> {
        let fallback = h.param(1).ok_or(RenderErrorReason::ParamNotFoundForIndex("default", 1))?;
        let value = h.param(0).filter(|p| !p.is_value_missing() && !matches!(p.value(), Json::Null) && p.value() != "");
        Ok(ScopedJson::Derived(value.unwrap_or(fallback).value().clone()))
    }
}

/// `{{ quote values.x }}`: a double-quoted YAML string, escaped.
struct QuoteHelper;

impl HelperDef for QuoteHelper {
    fn call_inner<'reg: 'rc, 'rc>(
        &self,
        h: &Helper<'rc>,
        _: &'reg Handlebars<'reg>,
        _: &'rc Context,
        _: &mut RenderContext<'reg, 'rc>,
    ) -> Result<ScopedJson<'rc>, RenderError> {
        let value = present_param(h, "quote")?;
        let text = match value {
            Json::String(s) => s.clone(),
            other => other.to_string(),
        };
        Ok(ScopedJson::Derived(Json::String(format!("{SYNTAX}{}", Json::String(text.replace('$', "$$"))))))
    }
}

/// `{{ toYaml values.x indent=8 }}`: block YAML; lines after the first are indented by `indent`.
struct ToYamlHelper;

impl HelperDef for ToYamlHelper {
    fn call_inner<'reg: 'rc, 'rc>(
        &self,
        h: &Helper<'rc>,
        _: &'reg Handlebars<'reg>,
        _: &'rc Context,
        _: &mut RenderContext<'reg, 'rc>,
    ) -> Result<ScopedJson<'rc>, RenderError> {
        let value = present_param(h, "toYaml")?;
        let indent = h.hash_get("indent").and_then(|v| v.value().as_u64()).unwrap_or(0);
        if indent > MAX_INDENT {
            return Err(RenderErrorReason::Other(format!("toYaml indent={indent} is more than the limit of {MAX_INDENT}")).into());
        }
        let yaml = serde_yaml::to_string(&escape_dollars(value)).map_err(|e| RenderErrorReason::Other(e.to_string()))?;
        let pad = " ".repeat(indent as usize);
        let text = yaml.trim_end().lines().collect::<Vec<_>>().join(&format!("\n{pad}"));
        Ok(ScopedJson::Derived(Json::String(format!("{SYNTAX}{text}"))))
    }
}

/// `{{ toJson values.x }}`: inline JSON, which YAML reads as a flow collection.
struct ToJsonHelper;

impl HelperDef for ToJsonHelper {
    fn call_inner<'reg: 'rc, 'rc>(
        &self,
        h: &Helper<'rc>,
        _: &'reg Handlebars<'reg>,
        _: &'rc Context,
        _: &mut RenderContext<'reg, 'rc>,
    ) -> Result<ScopedJson<'rc>, RenderError> {
        let json = escape_dollars(present_param(h, "toJson")?).to_string();
        Ok(ScopedJson::Derived(Json::String(format!("{SYNTAX}{json}"))))
    }
}

/// The value with `$` doubled in every string (not in keys, which interpolation never reads), so
/// interpolation gives back the value as it was.
fn escape_dollars(value: &Json) -> Json {
    match value {
        Json::String(s) => Json::String(s.replace('$', "$$")),
        Json::Array(items) => Json::Array(items.iter().map(escape_dollars).collect()),
        Json::Object(map) => Json::Object(map.iter().map(|(k, v)| (k.clone(), escape_dollars(v))).collect()),
        other => other.clone(),
    }
}

/// Puts the values a YAML template inserted back into the scalars and keys their tokens landed
/// in, after parsing and interpolation: as data, whatever they contain.
pub fn substitute_literals(node: &mut Node, literals: &[String]) {
    if literals.is_empty() {
        return;
    }
    match &mut node.value {
        Value::Scalar(scalar) => {
            if scalar.text.contains(LITERAL_OPEN) {
                scalar.text = put_back(&scalar.text, literals);
            }
        }
        Value::Seq(items) => items.iter_mut().for_each(|item| substitute_literals(item, literals)),
        Value::Map(entries) => {
            for entry in entries {
                if entry.key.contains(LITERAL_OPEN) {
                    entry.key = put_back(&entry.key, literals);
                }
                substitute_literals(&mut entry.value, literals);
            }
        }
    }
}

fn put_back(text: &str, literals: &[String]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find(LITERAL_OPEN) {
        out.push_str(&rest[..open]);
        let after = &rest[open + LITERAL_OPEN.len_utf8()..];
        let Some(close) = after.find(LITERAL_CLOSE) else { break };
        out.push_str(after[..close].parse::<usize>().ok().and_then(|i| literals.get(i)).map_or("", String::as_str));
        rest = &after[close + LITERAL_CLOSE.len_utf8()..];
    }
    out.push_str(rest);
    out
}

/// The first parameter, which must exist (strict mode for our own helpers).
fn present_param<'a>(h: &'a Helper<'_>, helper: &'static str) -> Result<&'a Json, RenderError> {
    match h.param(0) {
        Some(p) if p.is_value_missing() => {
            Err(RenderErrorReason::MissingVariable(p.relative_path().cloned().or_else(|| Some(helper.into()))).into())
        }
        Some(p) => Ok(p.value()),
        None => Err(RenderErrorReason::ParamNotFoundForIndex(helper, 0).into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(template: &str, values: Json) -> Result<Rendered, Vec<Diagnostic>> {
        render(template, FileId(0), &context(&values, "shop"), Output::Text)
    }

    #[test]
    fn values_and_stack_name_render() {
        let out = run("name: {{ stack.name }}\nreplicas: {{ values.web.replicas }}\n", serde_json::json!({"web": {"replicas": 3}})).unwrap();
        assert_eq!(out.text, "name: shop\nreplicas: 3\n");
    }

    #[test]
    fn swarm_placeholders_pass_through() {
        let out = run("hostname: \"{{.Node.Hostname}}-{{ .Task.Slot }}\"\nx: {{ values.a }}\n", serde_json::json!({"a": 1})).unwrap();
        assert_eq!(out.text, "hostname: \"{{.Node.Hostname}}-{{ .Task.Slot }}\"\nx: 1\n");
    }

    #[test]
    fn missing_value_names_the_key_and_line() {
        let err = run("a: 1\nb: {{ values.web.tag }}\n", serde_json::json!({})).unwrap_err();
        assert_eq!(err[0].pos.unwrap().line, 2);
        assert!(err[0].message.contains("values.web.tag"), "{}", err[0].message);
    }

    #[test]
    fn a_mapping_rendered_as_text_is_an_error() {
        let err = run("a: 1\nres: {{ values.res }}\n", serde_json::json!({"res": {"cpus": 1}})).unwrap_err();
        assert_eq!(err[0].pos.unwrap().line, 2);
        assert!(err[0].message.contains("rendered as text"));
        assert_eq!(err[0].pos.unwrap().col, 6);
    }

    #[test]
    fn a_list_rendered_as_text_is_an_error_but_a_json_looking_string_is_not() {
        let values = serde_json::json!({"args": ["nginx", "-g", "daemon off;"], "test": "[\"CMD\", \"true\"]", "ports": [80, 443]});
        let err = run("a: 1\ncommand: {{ values.args }}\n", values.clone()).unwrap_err();
        assert_eq!(err[0].pos.map(|p| (p.line, p.col)), Some((2, 10)));
        let out = run("test: {{ values.test }}\nports: {{ values.ports }}\n", values).unwrap();
        assert_eq!(out.text, "test: [\"CMD\", \"true\"]\nports: [80, 443]\n");
    }

    #[test]
    fn no_html_escaping() {
        let out = run("cmd: {{ values.c }}\n", serde_json::json!({"c": "a<b && c>'d'"})).unwrap();
        assert_eq!(out.text, "cmd: a<b && c>'d'\n");
    }

    #[test]
    fn helpers_default_quote_to_yaml() {
        let values = serde_json::json!({"res": {"limits": {"cpus": "0.5", "memory": "1g"}}, "name": "a \"b\""});
        let out = run(
            "x: {{ default values.missing \"7\" }}\ny: {{ quote values.name }}\nres:\n  {{ toYaml values.res indent=2 }}\nz: 1\n",
            values,
        )
        .unwrap();
        assert_eq!(out.text, "x: 7\ny: \"a \\\"b\\\"\"\nres:\n  limits:\n    cpus: '0.5'\n    memory: 1g\nz: 1\n");
        // The expanded block maps back to the template line that produced it.
        assert_eq!(out.lines.map(5, 3), (4, 1));
        assert_eq!(out.lines.map(7, 1), (5, 1));
    }

    #[test]
    fn unclosed_and_mismatched_blocks_point_at_their_line() {
        let err = run("a: 1\n{{#if values.x}}\nb: 2\n", serde_json::json!({})).unwrap_err();
        assert_eq!((err[0].pos.unwrap().line, err[0].message.as_str()), (2, "`{{#if}}` is never closed"));
        let err = run("{{#each values.x}}\n  {{#if this}}\n{{/each}}\n", serde_json::json!({})).unwrap_err();
        assert_eq!(err[0].pos.unwrap().line, 3);
        assert!(err[0].message.contains("closes `{{#if}}` opened at line 2"), "{}", err[0].message);
        let err = run("a: {{/if}}\n", serde_json::json!({})).unwrap_err();
        assert_eq!(err[0].pos.map(|p| (p.line, p.col)), Some((1, 4)));
        // Comments and Swarm placeholders are not blocks.
        assert!(run("{{!-- {{#if}} --}}\nx: \"{{.Task.Slot}}\"\n", serde_json::json!({})).is_ok());
    }

    #[test]
    fn output_is_bounded() {
        let items: Vec<u32> = (0..3000).collect();
        let err = run("{{#each values.a}}{{#each ../values.a}}xxxxxxxx{{/each}}{{/each}}\n", serde_json::json!({"a": items})).unwrap_err();
        assert!(err[0].message.contains("renders to more than"), "{}", err[0].message);
    }

    #[test]
    fn lines_after_an_each_block_keep_their_template_line() {
        let values = serde_json::json!({"ports": [80, 443]});
        let out = run("ports:\n{{#each values.ports}}\n  - {{ this }}\n{{/each}}\nafter: true\n", values).unwrap();
        assert_eq!(out.text, "ports:\n  - 80\n  - 443\nafter: true\n");
        let after_line = out.text.lines().position(|l| l == "after: true").unwrap() as u32 + 1;
        assert_eq!(out.lines.map(after_line, 1), (5, 1));
    }
}
