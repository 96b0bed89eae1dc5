//! Problems found in a user's input, collected rather than returned on the first one, and rendered
//! as `path:line:col: error: message` followed by the source excerpt and a hint.

use crate::spec::source::{Pos, Sources};
use miette::{GraphicalReportHandler, GraphicalTheme, LabeledSpan, NamedSource, SourceSpan};
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

/// The source lines around `pos` with a label under the column, drawn by miette.
fn excerpt(diagnostic: &Diagnostic, pos: Pos, sources: &Sources, color: bool) -> String {
    let file = sources.get(pos.file);
    let offset = file.offset(pos.line, pos.col);
    let line = file.line(pos.line);
    let rest: String = line.chars().skip(pos.col.saturating_sub(1) as usize).collect();
    let length = token_length(&rest).max(1);
    let snippet = Snippet {
        message: diagnostic.message.clone(),
        source: NamedSource::new(file.path.display().to_string(), file.text.to_string()),
        span: LabeledSpan::new_with_span(diagnostic.label.clone(), SourceSpan::new(offset.into(), length)),
    };
    let theme = if color { GraphicalTheme::unicode() } else { GraphicalTheme::unicode_nocolor() };
    let mut rendered = String::new();
    let handler = GraphicalReportHandler::new_themed(theme).with_context_lines(1).with_width(120);
    if handler.render_report(&mut rendered, &snippet).is_err() {
        return String::new();
    }
    // miette repeats the message as its own header; we already printed ours.
    let body: Vec<&str> = rendered.lines().skip_while(|l| !l.contains('╭')).collect();
    body.iter().map(|l| format!("{l}\n")).collect()
}

/// Length in bytes of the word starting the text: a key, a name, a value.
fn token_length(text: &str) -> usize {
    let trimmed = text.trim_end();
    let end = trimmed.find([':', ',', ']', '}', '#']).unwrap_or(trimmed.len());
    trimmed[..end].trim_end().len()
}

#[derive(Debug)]
struct Snippet {
    message: String,
    source: NamedSource<String>,
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
