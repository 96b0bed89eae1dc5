//! `.env` files as docker compose reads them: `KEY=value`, `export KEY=value`, comments, single
//! quotes (literal), double quotes (escapes `\n`, `\"`), unquoted values with ` #` comments, and
//! `${VAR}` references to earlier keys or the environment inside unquoted and double-quoted values.

use super::interpolate::{self, Lookup};
use std::collections::BTreeMap;

/// Parses `.env` text. Errors carry the 1-based line.
pub fn parse(text: &str, environment: &dyn Lookup) -> Result<BTreeMap<String, String>, (u32, String)> {
    let mut vars: BTreeMap<String, String> = BTreeMap::new();
    for (index, raw) in text.lines().enumerate() {
        let line_no = index as u32 + 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").map(str::trim_start).unwrap_or(line);
        let Some((key, value)) = line.split_once('=') else {
            return Err((line_no, format!("`{line}` is not KEY=value")));
        };
        let key = key.trim();
        if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-') {
            return Err((line_no, format!("`{key}` is not a valid variable name")));
        }
        let value = value.trim_start();
        let resolved = if let Some(quoted) = value.strip_prefix('\'') {
            let end = quoted.find('\'').ok_or((line_no, "unterminated single quote".to_string()))?;
            quoted[..end].to_string()
        } else if let Some(quoted) = value.strip_prefix('"') {
            let text = unescape_double(quoted).ok_or((line_no, "unterminated double quote".to_string()))?;
            substitute(&text, &vars, environment, line_no)?
        } else {
            let text = match value.find(" #") {
                Some(at) => &value[..at],
                None => value,
            };
            substitute(text.trim_end(), &vars, environment, line_no)?
        };
        vars.insert(key.to_string(), resolved);
    }
    Ok(vars)
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
    interpolate::interpolate(text, &lookup).map_err(|e| (line, e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(text: &str) -> BTreeMap<String, String> {
        parse(text, &|_: &str| None::<String>).unwrap()
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
    fn a_line_without_equals_is_an_error_with_its_line() {
        assert_eq!(parse("A=1\noops\n", &|_: &str| None::<String>).unwrap_err().0, 2);
    }
}
