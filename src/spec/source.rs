//! The files a stack was read from, and positions inside them.
//!
//! Every value the loader produces remembers a [`Pos`] in the file the *user wrote*, also when the
//! file was a template: the tree is parsed from rendered text, and a [`LineMap`] carries each
//! rendered line back to the template line it came from.

use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Index of a file in [`Sources`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FileId(pub u32);

/// A position in a user's file: 1-based line, 1-based column (characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
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
}

impl SourceFile {
    /// Byte offset of a line/column, clamped to the text; for source excerpts.
    pub fn offset(&self, line: u32, col: u32) -> usize {
        let mut offset = 0;
        for (index, text) in self.text.split_inclusive('\n').enumerate() {
            if index + 1 == line as usize {
                let within: usize = text.chars().take(col.saturating_sub(1) as usize).map(char::len_utf8).sum();
                return offset + within;
            }
            offset += text.len();
        }
        self.text.len()
    }

    /// The text of a 1-based line, without its newline.
    pub fn line(&self, line: u32) -> &str {
        self.text.lines().nth(line.saturating_sub(1) as usize).unwrap_or("")
    }
}

/// All files read while loading one stack.
#[derive(Debug, Default)]
pub struct Sources {
    files: Vec<SourceFile>,
}

impl Sources {
    pub fn add(&mut self, path: &Path, text: impl Into<Arc<str>>) -> FileId {
        self.files.push(SourceFile { path: display_path(path), text: text.into() });
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
    std::env::current_dir()
        .ok()
        .and_then(|cwd| path.strip_prefix(&cwd).ok().map(Path::to_path_buf))
        .unwrap_or_else(|| path.to_path_buf())
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
