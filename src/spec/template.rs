//! Helm-like templating: stack files and `*.hbs` config files are handlebars templates rendered as
//! text before YAML parsing.
//!
//! Three things make this safe for compose files:
//! - `{{.` (Swarm placeholders such as `{{.Task.Slot}}`, logging tags) is not handlebars: it is
//!   shielded before rendering and restored after, byte for byte.
//! - Strict: a missing value is an error at the template's line; a mapping or list rendered as
//!   text (instead of through `toYaml`) is an error too, not `[object]` in the output.
//! - Positions survive: every template line carries an invisible marker through rendering, so each
//!   rendered line maps back to the line the user wrote ([`LineMap`]).

use super::source::{FileId, LineMap, Pos};
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

/// Rendered text and where each of its lines came from.
#[derive(Debug)]
pub struct Rendered {
    pub text: String,
    pub lines: LineMap,
}

/// What templates see: `values.…` and `stack.name`.
pub fn context(values: &Json, stack_name: &str) -> Json {
    serde_json::json!({ "values": values, "stack": { "name": stack_name } })
}

/// Renders one template. Text without `{{` is returned as is.
pub fn render(source: &str, file: FileId, context: &Json) -> Result<Rendered, Vec<Diagnostic>> {
    if !source.contains("{{") {
        return Ok(Rendered { text: source.to_string(), lines: LineMap::identity() });
    }
    let shielded = shield_go_templates(source);
    let marked = mark_lines(&shielded);
    let registry = registry();
    let rendered = registry.render_template(&marked, context).map_err(|e| vec![render_error(&e, file)])?;
    let (text, lines, not_text) = unmark(&rendered, source);
    if !not_text.is_empty() {
        return Err(not_text
            .into_iter()
            .map(|line| {
                Diagnostic::error(Pos { file, line, col: 1 }, "a mapping or list is rendered as text")
                    .with_hint("use `{{ toYaml values.x indent=N }}` (block YAML) or `{{ toJson values.x }}` (inline)")
            })
            .collect());
    }
    Ok(Rendered { text: text.replace(SHIELD, "{{"), lines })
}

fn registry() -> Handlebars<'static> {
    let mut registry = Handlebars::new();
    registry.set_strict_mode(true);
    registry.register_escape_fn(|text| {
        // handlebars renders a mapping as `[object]` and a list as `[a, b, ]`.
        if text == "[object]" || (text.starts_with('[') && text.ends_with(", ]")) || text == "[]" {
            format!("{NOT_TEXT}{text}")
        } else {
            text.to_string()
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
    Diagnostic::error(pos, format!("template syntax: {}", error.reason()))
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
        Ok(ScopedJson::Derived(Json::String(Json::String(text).to_string())))
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
        let indent = h.hash_get("indent").and_then(|v| v.value().as_u64()).unwrap_or(0) as usize;
        let yaml = serde_yaml::to_string(value).map_err(|e| RenderErrorReason::Other(e.to_string()))?;
        let pad = " ".repeat(indent);
        let text = yaml.trim_end().lines().collect::<Vec<_>>().join(&format!("\n{pad}"));
        Ok(ScopedJson::Derived(Json::String(text)))
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
        Ok(ScopedJson::Derived(Json::String(present_param(h, "toJson")?.to_string())))
    }
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
        render(template, FileId(0), &context(&values, "shop"))
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
    fn lines_after_an_each_block_keep_their_template_line() {
        let values = serde_json::json!({"ports": [80, 443]});
        let out = run("ports:\n{{#each values.ports}}\n  - {{ this }}\n{{/each}}\nafter: true\n", values).unwrap();
        assert_eq!(out.text, "ports:\n  - 80\n  - 443\nafter: true\n");
        let after_line = out.text.lines().position(|l| l == "after: true").unwrap() as u32 + 1;
        assert_eq!(out.lines.map(after_line, 1), (5, 1));
    }
}
