//! `.env` files as docker compose reads them: `KEY=value`, `export KEY=value`, comments, single
//! quotes (literal), double quotes (escapes `\n`, `\"`), unquoted values with ` #` comments, and
//! `${VAR}` references to earlier keys or the environment inside unquoted and double-quoted values.

use super::interpolate::{self, Lookup};
use std::collections::BTreeMap;

/// What a `.env` file defines, and the problems of the lines that could not be read.
#[derive(Debug, Default)]
pub struct Parsed {
    pub vars: BTreeMap<String, String>,
    /// 1-based line and message. Messages never quote a value: `.env` files hold credentials.
    pub errors: Vec<(u32, String)>,
}

/// Parses `.env` text; a bad line is reported and skipped, the others still count.
pub fn parse(text: &str, environment: &dyn Lookup) -> Parsed {
    let mut parsed = Parsed::default();
    for (index, raw) in text.lines().enumerate() {
        let line_no = index as u32 + 1;
        match parse_line(raw, &parsed.vars, environment, line_no) {
            Ok(Some((key, value))) => {
                parsed.vars.insert(key, value);
            }
            Ok(None) => {}
            Err(error) => parsed.errors.push(error),
        }
    }
    parsed
}

fn parse_line(raw: &str, vars: &BTreeMap<String, String>, environment: &dyn Lookup, line_no: u32) -> Result<Option<(String, String)>, (u32, String)> {
    let line = raw.trim();
    if line.is_empty() || line.starts_with('#') {
        return Ok(None);
    }
    let line = line.strip_prefix("export ").map(str::trim_start).unwrap_or(line);
    let Some((key, value)) = line.split_once('=') else {
        return Err((line_no, "this line is not `KEY=value`".to_string()));
    };
    let key = key.trim();
    if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-') {
        return Err((line_no, "the part before `=` is not a valid variable name".to_string()));
    }
    let value = value.trim_start();
    let resolved = if let Some(quoted) = value.strip_prefix('\'') {
        let end = quoted.find('\'').ok_or((line_no, "unterminated single quote".to_string()))?;
        quoted[..end].to_string()
    } else if let Some(quoted) = value.strip_prefix('"') {
        let text = unescape_double(quoted).ok_or((line_no, "unterminated double quote".to_string()))?;
        substitute(&text, vars, environment, line_no)?
    } else {
        let text = match value.find(" #") {
            Some(at) => &value[..at],
            None => value,
        };
        substitute(text.trim_end(), vars, environment, line_no)?
    };
    Ok(Some((key.to_string(), resolved)))
}

fn unescape_double(text: &str) -> Option<String> {
    let mut out = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return Some(out),
            '\\' => match chars.next()? {
                'n' => out.push('\n'),
                't' => out.push('\t'),
                'r' => out.push('\r'),
                other => out.push(other),
            },
            c => out.push(c),
        }
    }
    None
}

/// `${VAR}` inside `.env` sees the process environment first, then earlier keys.
fn substitute(text: &str, earlier: &BTreeMap<String, String>, environment: &dyn Lookup, line: u32) -> Result<String, (u32, String)> {
    let lookup = |name: &str| environment.get(name).or_else(|| earlier.get(name).cloned());
    interpolate::interpolate(text, &lookup).map_err(|e| match e {
        // Syntax messages quote the text, and this text is a value.
        interpolate::InterpolationError::Syntax { .. } => (line, "a `$` in this value is not a valid reference (`$$` is a literal `$`)".to_string()),
        other => (line, other.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(text: &str) -> BTreeMap<String, String> {
        let parsed = parse(text, &|_: &str| None::<String>);
        assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
        parsed.vars
    }

    #[test]
    fn compose_dotenv_rules() {
        let vars = env("# comment\nA=1\nexport B = two words\nC='lit ${A}'\nD=\"x\\ny ${A}\"\nE=val # comment\nF=\nG=a#b\n");
        assert_eq!(vars["A"], "1");
        assert_eq!(vars["B"], "two words");
        assert_eq!(vars["C"], "lit ${A}");
        assert_eq!(vars["D"], "x\ny 1");
        assert_eq!(vars["E"], "val");
        assert_eq!(vars["F"], "");
        assert_eq!(vars["G"], "a#b");
    }

    #[test]
    fn a_bad_line_is_an_error_with_its_line_and_the_others_still_count() {
        let parsed = parse("A=1\noops hunter2\nB=2\n", &|_: &str| None::<String>);
        assert_eq!(parsed.errors.iter().map(|e| e.0).collect::<Vec<_>>(), vec![2]);
        assert!(!parsed.errors[0].1.contains("hunter2"), "a message must not quote the line: {}", parsed.errors[0].1);
        assert_eq!(parsed.vars.len(), 2);
    }

    #[test]
    fn the_environment_wins_inside_references() {
        let environment = |name: &str| (name == "A").then(|| "from-env".to_string());
        let parsed = parse("A=from-file\nB=${A}\n", &environment);
        assert_eq!(parsed.vars["B"], "from-env");
    }
}
