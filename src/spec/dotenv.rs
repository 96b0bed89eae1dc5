//! `.env` files as docker compose reads them: `KEY=value`, `export KEY=value`, comments, single
//! quotes (literal), double quotes (escapes `\n`, `\"`), both of which may span lines, unquoted
//! values with ` #` comments, and `${VAR}` references to earlier keys or the environment inside
//! unquoted and double-quoted values.

use super::interpolate::{self, Lookup};
use std::collections::BTreeMap;

/// What a `.env` file defines, and the problems of the lines that could not be read.
#[derive(Debug, Default)]
pub struct Parsed {
    pub vars: BTreeMap<String, String>,
    /// 1-based line and message. Messages never quote a value: `.env` files hold credentials.
    pub errors: Vec<(u32, String)>,
}

/// Parses `.env` text; a bad entry is reported and skipped, the others still count.
pub fn parse(text: &str, environment: &dyn Lookup) -> Parsed {
    let mut parsed = Parsed::default();
    let mut rest = text;
    let mut line_no = 1;
    while !rest.is_empty() {
        let (entry, used) = parse_entry(rest, &parsed.vars, environment, line_no);
        match entry {
            Ok(Some((key, value))) => {
                parsed.vars.insert(key, value);
            }
            Ok(None) => {}
            Err(error) => parsed.errors.push(error),
        }
        line_no += rest[..used].matches('\n').count() as u32;
        rest = &rest[used..];
    }
    parsed
}

/// A `KEY=value` (none for a blank or comment line), or the line and message of a bad one.
type EntryResult = Result<Option<(String, String)>, (u32, String)>;

/// Reads the entry at the start of `text`: its result and how many bytes it used (through the
/// end of its last line; a quoted value may run over several lines).
fn parse_entry(text: &str, vars: &BTreeMap<String, String>, environment: &dyn Lookup, line_no: u32) -> (EntryResult, usize) {
    let first_line = text.find('\n').map_or(text.len(), |at| at + 1);
    let raw = text[..first_line].trim_end_matches(['\n', '\r']);
    let line = raw.trim();
    if line.is_empty() || line.starts_with('#') {
        return (Ok(None), first_line);
    }
    let line = line.strip_prefix("export ").map(str::trim_start).unwrap_or(line);
    let Some((key, value)) = line.split_once('=') else {
        return (Err((line_no, "this line is not `KEY=value`".to_string())), first_line);
    };
    let key = key.trim();
    if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-') {
        return (Err((line_no, "the part before `=` is not a valid variable name".to_string())), first_line);
    }
    let value = value.trim_start();
    let Some(quote) = value.chars().next().filter(|c| *c == '\'' || *c == '"') else {
        let text = value.find(" #").map_or(value, |at| &value[..at]);
        return (substitute(text.trim_end(), vars, environment, line_no).map(|v| Some((key.to_string(), v))), first_line);
    };
    // The quoted value runs from just after the quote, possibly past this line.
    // `value` is a slice of `text`: its offset, plus the quote.
    let opening = value.as_ptr() as usize - text.as_ptr() as usize + 1;
    let quoted = &text[opening..];
    let (content, closing) = if quote == '\'' {
        match quoted.find('\'') {
            Some(end) => (Ok(quoted[..end].to_string()), end),
            None => return (Err((line_no, "unterminated single quote".to_string())), first_line),
        }
    } else {
        match unescape_double(quoted) {
            Some((unescaped, end)) => (substitute(&unescaped, vars, environment, line_no), end),
            None => return (Err((line_no, "unterminated double quote".to_string())), first_line),
        }
    };
    let after = opening + closing;
    let used = text[after..].find('\n').map_or(text.len(), |at| after + at + 1);
    (content.map(|v| Some((key.to_string(), v))), used)
}

/// The value up to the closing `"`, unescaped, and the closing quote's byte offset.
fn unescape_double(text: &str) -> Option<(String, usize)> {
    let mut out = String::new();
    let mut chars = text.char_indices();
    while let Some((at, c)) = chars.next() {
        match c {
            '"' => return Some((out, at)),
            '\\' => match chars.next()?.1 {
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
    fn quoted_values_may_span_lines_and_later_lines_keep_their_numbers() {
        let parsed = parse("A=\"first\nsecond \\\"q\\\"\"\nB='x\n  y' # note\nC=3\nbad line\n", &|_: &str| None::<String>);
        assert_eq!(parsed.vars["A"], "first\nsecond \"q\"");
        assert_eq!(parsed.vars["B"], "x\n  y");
        assert_eq!(parsed.vars["C"], "3");
        assert_eq!(parsed.errors.iter().map(|e| e.0).collect::<Vec<_>>(), vec![6]);
    }

    #[test]
    fn an_unterminated_quote_is_reported_on_its_line_and_the_next_lines_still_count() {
        let parsed = parse("A=\"open\nB=2\n", &|_: &str| None::<String>);
        assert_eq!(parsed.errors, vec![(1, "unterminated double quote".to_string())]);
        assert_eq!(parsed.vars["B"], "2");
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
