//! Problems found in a user's input, collected rather than returned on the first one, and rendered
//! as `path:line:col: error: message` followed by the source excerpt and a hint.

use crate::spec::source::{Pos, Sources};
use miette::{GraphicalReportHandler, GraphicalTheme, LabeledSpan, MietteError, MietteSpanContents, SourceSpan, SpanContents};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Warning,
    Error,
}

/// One problem, pointing at the place in the user's files that caused it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub message: String,
    pub pos: Option<Pos>,
    /// Short text under the caret in the excerpt.
    pub label: Option<String>,
    /// How to fix it.
    pub hint: Option<String>,
}

impl Diagnostic {
    pub fn error(pos: impl Into<Option<Pos>>, message: impl Into<String>) -> Self {
        Diagnostic { severity: Severity::Error, message: message.into(), pos: pos.into(), label: None, hint: None }
    }

    pub fn warning(pos: impl Into<Option<Pos>>, message: impl Into<String>) -> Self {
        Diagnostic { severity: Severity::Warning, ..Diagnostic::error(pos, message) }
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    pub fn with_label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// Every problem found in one load, errors and warnings, in the order found.
#[derive(Debug, Default, Clone)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    pub fn push(&mut self, diagnostic: Diagnostic) {
        self.0.push(diagnostic);
    }

    pub fn error(&mut self, pos: impl Into<Option<Pos>>, message: impl Into<String>) -> &mut Diagnostic {
        self.0.push(Diagnostic::error(pos, message));
        self.0.last_mut().expect("just pushed")
    }

    pub fn warning(&mut self, pos: impl Into<Option<Pos>>, message: impl Into<String>) -> &mut Diagnostic {
        self.0.push(Diagnostic::warning(pos, message));
        self.0.last_mut().expect("just pushed")
    }

    pub fn has_errors(&self) -> bool {
        self.0.iter().any(Diagnostic::is_error)
    }

    pub fn extend(&mut self, other: Diagnostics) {
        self.0.extend(other.0);
    }

    /// Sorted by file and position so output is stable whatever order checks ran in.
    pub fn sorted(mut self) -> Self {
        self.0.sort_by(|a, b| a.pos.cmp(&b.pos).then_with(|| b.severity.cmp(&a.severity)).then_with(|| a.message.cmp(&b.message)));
        self.0.dedup();
        self
    }
}

impl Diagnostic {
    /// Renders for a terminal: a `path:line:col: error: message` line, the excerpt, the hint.
    pub fn render(&self, sources: &Sources, color: bool) -> String {
        let kind = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let mut out = match self.pos {
            Some(pos) => format!("{}: {kind}: {}\n", sources.locate(pos), self.message),
            None => format!("{kind}: {}\n", self.message),
        };
        if let Some(pos) = self.pos {
            out.push_str(&excerpt(self, pos, sources, color));
        }
        if let Some(hint) = &self.hint {
            out.push_str(&format!("  help: {hint}\n"));
        }
        out
    }
}

/// Longest excerpt line shown; longer lines are cut around the column (minified JSON, generated
/// files), which also keeps miette's layout arithmetic within its bounds.
const MAX_EXCERPT_CHARS: usize = 160;

/// The source lines around `pos` with a label under the column, drawn by miette.
fn excerpt(diagnostic: &Diagnostic, pos: Pos, sources: &Sources, color: bool) -> String {
    let file = sources.get(pos.file);
    if file.sensitive || pos.line == 0 || pos.line as usize > file.line_count() {
        return String::new();
    }
    let Some(window) = Window::around(file, pos) else { return String::new() };
    let span = SourceSpan::new(window.span_offset.into(), window.span_length);
    // miette would print the message again as its header (we skip it) after wrapping it to the
    // width, which takes minutes on a 100,000-service cycle message: give it none.
    let snippet = Snippet {
        message: String::new(),
        span: LabeledSpan::new_with_span(diagnostic.label.clone(), span),
        source: window,
    };
    let theme = if color { GraphicalTheme::unicode() } else { GraphicalTheme::unicode_nocolor() };
    let mut rendered = String::new();
    let handler = GraphicalReportHandler::new_themed(theme).with_context_lines(1).with_width(MAX_EXCERPT_CHARS + 40);
    if handler.render_report(&mut rendered, &snippet).is_err() {
        return String::new();
    }
    // miette repeats the message as its own header; we already printed ours.
    let body: Vec<&str> = rendered.lines().skip_while(|l| !l.contains('╭')).collect();
    body.iter().map(|l| format!("{l}\n")).collect()
}

/// The few lines an excerpt shows (the line of `pos` and one on each side), each cut to
/// [`MAX_EXCERPT_CHARS`], handed to miette with their real line numbers.
#[derive(Debug)]
struct Window {
    name: String,
    text: String,
    /// 0-based line number of the window's first line in the file.
    first_line: usize,
    /// The 0-based column of `pos`, for the header miette prints (its own count is of the bytes
    /// of the possibly cut line).
    column: usize,
    span_offset: usize,
    span_length: usize,
}

impl Window {
    fn around(file: &crate::spec::source::SourceFile, pos: Pos) -> Option<Window> {
        let line = pos.line as usize;
        let first = line.saturating_sub(1).max(1);
        let last = (line + 1).min(file.line_count());
        let mut text = String::new();
        let (mut span_offset, mut span_length) = (0, 1);
        for number in first..=last {
            let content = file.line(number as u32);
            let masked;
            let content = if file.holds_secret(number as u32) {
                masked = mask_secret_content(content);
                masked.as_str()
            } else {
                content
            };
            if number == line {
                let column = (pos.col.max(1) - 1) as usize;
                let (shown, skipped) = cut_around(content, column);
                let shown = mask_secret_value(&shown);
                let column_in_shown = column.saturating_sub(skipped) + usize::from(skipped > 0);
                let byte_column: usize = shown.chars().take(column_in_shown).map(char::len_utf8).sum();
                span_offset = text.len() + byte_column;
                span_length = token_length(&shown[byte_column..]).max(1);
                text.push_str(&shown);
            } else {
                text.push_str(&mask_secret_value(&cut_around(content, 0).0));
            }
            text.push('\n');
        }
        Some(Window { name: file.path.display().to_string(), text, first_line: first - 1, column: pos.col.max(1) as usize - 1, span_offset, span_length })
    }
}

/// `DB_PASSWORD: hunter2` → `DB_PASSWORD: ********`: an excerpt never shows a value whose key
/// looks like a credential (a warning about such a value would otherwise print it into CI logs).
/// References (`${DB_PASSWORD}`), empty values and the text before the value are kept, so
/// columns stay right.
fn mask_secret_value(line: &str) -> String {
    let body = line.trim_start();
    let body = body.strip_prefix("- ").map(str::trim_start).unwrap_or(body);
    let Some(separator) = body.find([':', '=']) else { return line.to_string() };
    let key = body[..separator].trim().trim_matches(['"', '\'']);
    // `secrets: [token]` is compose structure, not a credential.
    let compose_key = key == "secrets" || crate::spec::schema::is_service_key(key);
    if key.is_empty() || key.contains(char::is_whitespace) || compose_key || !crate::spec::validate::looks_like_secret_key(key) {
        return line.to_string();
    }
    let value_start = line.len() - body.len() + separator + 1;
    let value = line[value_start..].trim();
    let quoted = value.trim_matches(['"', '\'']);
    if quoted.is_empty() || quoted.starts_with("${") || quoted.starts_with("{{") {
        return line.to_string();
    }
    let leading = line[value_start..].len() - line[value_start..].trim_start().len();
    format!("{}{}", &line[..value_start + leading], "*".repeat(8))
}

/// A line of a secret's inline `content:`: the key stays, the value becomes `********`.
fn mask_secret_content(line: &str) -> String {
    match line.find("content:") {
        Some(at) if line[at + "content:".len()..].trim().starts_with(['|', '>']) => line.to_string(),
        Some(at) => format!("{} ********", &line[..at + "content:".len()]),
        None => format!("{}********", &line[..line.len() - line.trim_start().len()]),
    }
}

/// At most [`MAX_EXCERPT_CHARS`] characters of `line` around `column`, with `…` where cut; and
/// how many characters were skipped at the start.
fn cut_around(line: &str, column: usize) -> (String, usize) {
    let length = line.chars().count();
    if length <= MAX_EXCERPT_CHARS {
        return (line.to_string(), 0);
    }
    let start = column.saturating_sub(MAX_EXCERPT_CHARS / 3).min(length - MAX_EXCERPT_CHARS / 2);
    let mut shown: String = if start > 0 { "…".to_string() } else { String::new() };
    shown.extend(line.chars().skip(start).take(MAX_EXCERPT_CHARS));
    if start + MAX_EXCERPT_CHARS < length {
        shown.push('…');
    }
    (shown, start)
}

impl miette::SourceCode for Window {
    fn read_span<'a>(
        &'a self,
        span: &SourceSpan,
        context_lines_before: usize,
        context_lines_after: usize,
    ) -> Result<Box<dyn SpanContents<'a> + 'a>, MietteError> {
        let inner = self.text.read_span(span, context_lines_before, context_lines_after)?;
        let column = if *span == SourceSpan::new(self.span_offset.into(), self.span_length) {
            self.column
        } else {
            inner.column()
        };
        Ok(Box::new(MietteSpanContents::new_named(
            self.name.clone(),
            inner.data(),
            *inner.span(),
            inner.line() + self.first_line,
            column,
            inner.line_count(),
        )))
    }
}

/// Length in bytes of what starts the text: a quoted string, a flow collection closed on the
/// same line, or a plain word (a key, a name, a value) up to `: `, `,`, `]`, `}` or ` #`.
fn token_length(text: &str) -> usize {
    let trimmed = text.trim_end().trim_end_matches('…');
    let mut chars = trimmed.char_indices();
    match chars.next() {
        Some((_, quote @ ('"' | '\''))) => {
            let mut escaped = false;
            for (at, c) in chars {
                match c {
                    '\\' if quote == '"' && !escaped => escaped = true,
                    c if c == quote && !escaped => return at + 1,
                    _ => escaped = false,
                }
            }
            trimmed.len()
        }
        Some((_, '[' | '{')) => {
            let mut depth = 0usize;
            for (at, c) in trimmed.char_indices() {
                match c {
                    '[' | '{' => depth += 1,
                    ']' | '}' => {
                        depth -= 1;
                        if depth == 0 {
                            return at + 1;
                        }
                    }
                    _ => {}
                }
            }
            1
        }
        _ => {
            let bytes = trimmed.as_bytes();
            let end = (0..bytes.len())
                .find(|&i| match bytes[i] {
                    b':' => bytes.get(i + 1).is_none_or(|next| *next == b' '),
                    b',' | b']' | b'}' => true,
                    b'#' => i > 0 && bytes[i - 1] == b' ',
                    _ => false,
                })
                .unwrap_or(bytes.len());
            trimmed[..end].trim_end().len()
        }
    }
}

#[derive(Debug)]
struct Snippet {
    message: String,
    source: Window,
    span: LabeledSpan,
}

impl fmt::Display for Snippet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Snippet {}

impl miette::Diagnostic for Snippet {
    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        Some(&self.source)
    }
    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        Some(Box::new(std::iter::once(self.span.clone())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_under_the_caret() {
        assert_eq!(token_length("imgae: nginx"), 5);
        assert_eq!(token_length("\"80:80\", x"), 7);
        assert_eq!(token_length("'it''s' x"), 4);
        assert_eq!(token_length("postgres://$DB_USER@db/app"), 26);
        assert_eq!(token_length("[nginx, [a]] # c"), 12);
        assert_eq!(token_length("[[[[…"), 1);
        assert_eq!(token_length("db # comment"), 2);
        assert_eq!(token_length("a, b]"), 1);
    }

    #[test]
    fn long_lines_are_cut_around_the_column() {
        let mut sources = Sources::default();
        let line = format!("key: {}needle{}", "x".repeat(500_000), "y".repeat(500_000));
        let id = sources.add(std::path::Path::new("big.yaml"), format!("first: 1\n{line}\nlast: 1\n"));
        let pos = Pos { file: id, line: 2, col: 500_006 };
        let text = Diagnostic::error(pos, "here").render(&sources, false);
        assert!(text.starts_with("big.yaml:2:500006: error: here\n"), "{text}");
        assert!(text.contains("[big.yaml:2:500006]"), "{text}");
        assert!(text.contains("…xxxx") && text.contains("needle") && text.contains("yyy…"), "{text}");
        assert!(text.len() < 2_000, "{} bytes", text.len());
    }

    #[test]
    fn excerpts_mask_values_whose_key_looks_secret() {
        assert_eq!(mask_secret_value("      DB_PASSWORD: hunter2"), "      DB_PASSWORD: ********");
        assert_eq!(mask_secret_value("  - API_TOKEN=abc # x"), "  - API_TOKEN=********");
        assert_eq!(mask_secret_value("      \"SECRET_KEY\": 'x'"), "      \"SECRET_KEY\": ********");
        assert_eq!(mask_secret_value("      DB_PASSWORD: ${DB_PASSWORD}"), "      DB_PASSWORD: ${DB_PASSWORD}");
        assert_eq!(mask_secret_value("      DB_PASSWORD_FILE: /run/secrets/db"), "      DB_PASSWORD_FILE: /run/secrets/db");
        assert_eq!(mask_secret_value("      SESSION_SECRET:"), "      SESSION_SECRET:");
        assert_eq!(mask_secret_value("    image: nginx"), "    image: nginx");
        assert_eq!(mask_secret_value("    secrets: [token]"), "    secrets: [token]");
        assert_eq!(mask_secret_value("secrets:"), "secrets:");
        let mut sources = Sources::default();
        let id = sources.add(std::path::Path::new("s.yaml"), "env:\n  A: 1\n  DB_PASSWORD: hunter2\n");
        let text = Diagnostic::warning(Pos { file: id, line: 2, col: 3 }, "x").render(&sources, false);
        assert!(!text.contains("hunter2") && text.contains("DB_PASSWORD: ********"), "{text}");
    }

    #[test]
    fn sensitive_files_show_no_excerpt() {
        let mut sources = Sources::default();
        let id = sources.add_sensitive(std::path::Path::new(".env"), "PASSWORD=hunter2\noops\n");
        let text = Diagnostic::error(Pos { file: id, line: 2, col: 1 }, "bad line").render(&sources, false);
        assert_eq!(text, ".env:2:1: error: bad line\n");
    }
}
