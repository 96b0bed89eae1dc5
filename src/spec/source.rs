//! The files a stack was read from, and positions inside them.
//!
//! Every value the loader produces remembers a [`Pos`] in the file the *user wrote*, also when the
//! file was a template: the tree is parsed from rendered text, and a [`LineMap`] carries each
//! rendered line back to the template line it came from.

use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Index of a file in [`Sources`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FileId(pub u32);

/// A position in a user's file: 1-based line, 1-based column (characters). A stack read back
/// from a revision has no files: its positions are the default, line 0.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Pos {
    pub file: FileId,
    pub line: u32,
    pub col: u32,
}

/// One file as the user wrote it.
#[derive(Debug)]
pub struct SourceFile {
    /// The path as the user would type it (relative to the working directory when possible).
    pub path: PathBuf,
    pub text: Arc<str>,
    /// Holds credentials (`.env`, an `env_file`, a secret's template): diagnostics name the
    /// position but never print an excerpt of it.
    pub sensitive: bool,
    /// Byte offset where each line starts, so excerpts cost the lines they show, not the file.
    line_starts: Vec<usize>,
    /// Lines holding a secret's inline `content:` (sorted), which excerpts mask.
    secret_lines: Vec<u32>,
}

impl SourceFile {
    fn new(path: PathBuf, text: Arc<str>, sensitive: bool) -> Self {
        let line_starts = std::iter::once(0).chain(text.match_indices('\n').map(|(at, _)| at + 1)).collect();
        let secret_lines = if text.contains("content:") { secret_content_lines(&text) } else { Vec::new() };
        SourceFile { path, text, sensitive, line_starts, secret_lines }
    }

    /// Whether a line is (part of) a secret's inline `content:` value.
    pub fn holds_secret(&self, line: u32) -> bool {
        self.secret_lines.binary_search(&line).is_ok()
    }

    /// Number of lines (a trailing newline does not start another).
    pub fn line_count(&self) -> usize {
        let ends_with_newline = self.text.ends_with('\n');
        self.line_starts.len() - usize::from(ends_with_newline)
    }

    /// Byte offset of a line/column, clamped to the text; for source excerpts.
    pub fn offset(&self, line: u32, col: u32) -> usize {
        let Some(&start) = self.line_starts.get(line.saturating_sub(1) as usize) else { return self.text.len() };
        let within: usize = self.line(line).chars().take(col.saturating_sub(1) as usize).map(char::len_utf8).sum();
        start + within
    }

    /// The text of a 1-based line, without its newline (`""` past the end).
    pub fn line(&self, line: u32) -> &str {
        let index = line.saturating_sub(1) as usize;
        let Some(&start) = self.line_starts.get(index) else { return "" };
        let end = self.line_starts.get(index + 1).map_or(self.text.len(), |next| next - 1);
        let text = &self.text[start..end.max(start)];
        text.strip_suffix('\r').unwrap_or(text)
    }
}

/// Lines of `content:` values under the top-level `secrets:` key, block scalars included. Read
/// from the text, not the parsed tree, so it holds also when the file does not parse.
fn secret_content_lines(text: &str) -> Vec<u32> {
    let indent = |line: &str| line.len() - line.trim_start().len();
    let mut lines = Vec::new();
    let mut in_secrets = false;
    let mut content_indent: Option<usize> = None;
    for (index, line) in text.lines().enumerate() {
        let number = index as u32 + 1;
        let trimmed = line.trim_start();
        if !line.is_empty() && !line.starts_with([' ', '\t', '#']) {
            in_secrets = line.starts_with("secrets:");
            content_indent = None;
            if in_secrets && line.contains("content:") {
                lines.push(number);
            }
            continue;
        }
        if !in_secrets {
            continue;
        }
        match content_indent {
            Some(key_indent) if trimmed.is_empty() || indent(line) > key_indent => {
                lines.push(number);
                continue;
            }
            _ => content_indent = None,
        }
        if trimmed.starts_with("content:") || trimmed.starts_with("\"content\":") {
            lines.push(number);
            content_indent = Some(indent(line));
        }
    }
    lines
}

/// All files read while loading one stack.
#[derive(Debug, Default)]
pub struct Sources {
    files: Vec<SourceFile>,
    /// Read once: asking the OS for it per file showed up when loading thousands of files.
    working_dir: Option<PathBuf>,
}

impl Sources {
    pub fn add(&mut self, path: &Path, text: impl Into<Arc<str>>) -> FileId {
        self.push(path, text.into(), false)
    }

    /// Adds a file whose content must never be printed (see [`SourceFile::sensitive`]).
    pub fn add_sensitive(&mut self, path: &Path, text: impl Into<Arc<str>>) -> FileId {
        self.push(path, text.into(), true)
    }

    fn push(&mut self, path: &Path, text: Arc<str>, sensitive: bool) -> FileId {
        let working_dir = self.working_dir.get_or_insert_with(|| std::env::current_dir().unwrap_or_default());
        let shown = relative_to(path, working_dir);
        self.files.push(SourceFile::new(shown, text, sensitive));
        FileId(self.files.len() as u32 - 1)
    }

    pub fn get(&self, id: FileId) -> &SourceFile {
        &self.files[id.0 as usize]
    }

    /// `path:line:col`, as compilers print it.
    pub fn locate(&self, pos: Pos) -> String {
        format!("{}:{}:{}", self.get(pos.file).path.display(), pos.line, pos.col)
    }
}

/// Shortens a path to be relative to the working directory, the way the user typed it.
pub fn display_path(path: &Path) -> PathBuf {
    match std::env::current_dir() {
        Ok(cwd) => relative_to(path, &cwd),
        Err(_) => path.to_path_buf(),
    }
}

fn relative_to(path: &Path, dir: &Path) -> PathBuf {
    path.strip_prefix(dir).map(Path::to_path_buf).unwrap_or_else(|_| path.to_path_buf())
}

/// Carries rendered-text lines back to template lines. Identity when a file had no template.
#[derive(Debug, Clone, Default)]
pub struct LineMap {
    /// `origin[rendered_line - 1]` = (template line, whether the rendered line is the template line verbatim).
    origin: Option<Vec<(u32, bool)>>,
}

impl LineMap {
    pub fn identity() -> Self {
        LineMap { origin: None }
    }

    pub fn from_origins(origin: Vec<(u32, bool)>) -> Self {
        LineMap { origin: Some(origin) }
    }

    /// Maps a rendered (line, col) to the template; the column survives only on verbatim lines.
    pub fn map(&self, line: u32, col: u32) -> (u32, u32) {
        match &self.origin {
            None => (line, col),
            Some(origin) => match origin.get(line.saturating_sub(1) as usize) {
                Some(&(source, true)) => (source, col),
                Some(&(source, false)) => (source, 1),
                None => (origin.last().map_or(line, |last| last.0), 1),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_content_lines_are_found_in_the_text() {
        let text = "services:\n  web:\n    content: not-a-secret\nsecrets:\n  a:\n    content: one-line\n  b:\n    content: |\n      line 1\n\n      line 2\n    name: b\n  c:\n    file: ./c\nconfigs:\n  d:\n    content: config\n";
        let mut sources = Sources::default();
        let id = sources.add(Path::new("s.yaml"), text);
        let file = sources.get(id);
        let held: Vec<u32> = (1..=17).filter(|&l| file.holds_secret(l)).collect();
        assert_eq!(held, vec![6, 8, 9, 10, 11]);
    }

    #[test]
    fn lines_and_offsets() {
        let mut sources = Sources::default();
        let id = sources.add(Path::new("a.yaml"), "ab\r\ncd\n\néf\n");
        let file = sources.get(id);
        assert_eq!((file.line(1), file.line(2), file.line(3), file.line(4), file.line(9)), ("ab", "cd", "", "éf", ""));
        assert_eq!(file.offset(2, 2), 5);
        assert_eq!(file.offset(4, 2), 10);
        assert_eq!(file.offset(40, 1), file.text.len());
        assert_eq!(file.line_count(), 4);
    }
}
