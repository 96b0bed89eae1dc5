//! Compose variable interpolation: `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR-default}`,
//! `${VAR:?message}`, `${VAR?message}`, `${VAR:+replacement}`, `${VAR+replacement}`, nested
//! defaults (`${A:-${B:-x}}`) and `$$` for a literal `$`.
//!
//! One deliberate difference from docker compose: a variable that is unset and has no default is
//! an **error** naming it, not a silent empty string. Set-but-empty is not unset.
//!
//! Defaults nest by recursion, so nesting is bounded ([`MAX_NESTING`]): a hostile value with
//! thousands of `${A:-${A:-…}}` levels is refused instead of overflowing the stack.

use std::fmt;

/// Where variable values come from (process environment first, then `.env`). Shared by the
/// threads that convert services.
pub trait Lookup: Sync {
    fn get(&self, name: &str) -> Option<String>;
}

impl<F: Fn(&str) -> Option<String> + Sync> Lookup for F {
    fn get(&self, name: &str) -> Option<String> {
        self(name)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InterpolationError {
    /// `${NAME}` with NAME unset and no default.
    Unset { name: String },
    /// `${NAME:?message}` with NAME unset (or empty).
    Required { name: String, message: String },
    /// `${` without `}`, or a bad name.
    Syntax { message: String },
}

impl fmt::Display for InterpolationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InterpolationError::Unset { name } => write!(f, "variable `{name}` is not set and has no default"),
            InterpolationError::Required { name, message } if message.is_empty() => write!(f, "variable `{name}` is required"),
            InterpolationError::Required { name, message } => write!(f, "variable `{name}` is required: {message}"),
            InterpolationError::Syntax { message } => f.write_str(message),
        }
    }
}

/// How deep `${A:-${B:-…}}` may nest; real files use two or three levels.
pub const MAX_NESTING: usize = 32;

/// Substitutes every variable in `text`.
pub fn interpolate(text: &str, lookup: &dyn Lookup) -> Result<String, InterpolationError> {
    interpolate_nested(text, lookup, 0)
}

fn interpolate_nested(text: &str, lookup: &dyn Lookup, depth: usize) -> Result<String, InterpolationError> {
    if depth > MAX_NESTING {
        return Err(InterpolationError::Syntax { message: format!("variables nest deeper than {MAX_NESTING} levels") });
    }
    if !text.contains('$') {
        return Ok(text.to_string());
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(braced) = after.strip_prefix('{') {
            let end = closing_brace(braced).ok_or_else(|| InterpolationError::Syntax {
                message: format!("`${{` without a closing `}}` in `{text}`"),
            })?;
            out.push_str(&expand(&braced[..end], lookup, depth)?);
            rest = &braced[end + 1..];
        } else {
            let name_len = name_length(after);
            if name_len == 0 {
                // A lone `$` (e.g. `cost: 5$`) is kept, as compose does.
                out.push('$');
                rest = after;
            } else {
                let name = &after[..name_len];
                out.push_str(&lookup.get(name).ok_or_else(|| InterpolationError::Unset { name: name.to_string() })?);
                rest = &after[name_len..];
            }
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// The body of one `${…}`.
fn expand(body: &str, lookup: &dyn Lookup, depth: usize) -> Result<String, InterpolationError> {
    let interpolate = |text: &str, lookup: &dyn Lookup| interpolate_nested(text, lookup, depth + 1);
    let name_len = name_length(body);
    let name = &body[..name_len];
    if name.is_empty() {
        return Err(InterpolationError::Syntax { message: format!("`${{{body}}}` does not start with a variable name") });
    }
    let operator = &body[name_len..];
    let value = lookup.get(name);
    let set_and_nonempty = value.as_deref().is_some_and(|v| !v.is_empty());
    let (op, argument) = split_operator(operator).ok_or_else(|| InterpolationError::Syntax {
        message: format!("`${{{body}}}`: unknown modifier `{operator}` (expected :-, -, :?, ?, :+ or +)"),
    })?;
    match op {
        "" => value.ok_or_else(|| InterpolationError::Unset { name: name.to_string() }),
        ":-" if set_and_nonempty => Ok(value.unwrap_or_default()),
        ":-" => interpolate(argument, lookup),
        "-" => match value {
            Some(v) => Ok(v),
            None => interpolate(argument, lookup),
        },
        ":?" if set_and_nonempty => Ok(value.unwrap_or_default()),
        "?" if value.is_some() => Ok(value.unwrap_or_default()),
        ":?" | "?" => Err(InterpolationError::Required { name: name.to_string(), message: interpolate(argument, lookup)? }),
        ":+" if set_and_nonempty => interpolate(argument, lookup),
        "+" if value.is_some() => interpolate(argument, lookup),
        _ => Ok(String::new()),
    }
}

fn split_operator(operator: &str) -> Option<(&str, &str)> {
    if operator.is_empty() {
        return Some(("", ""));
    }
    for op in [":-", ":?", ":+", "-", "?", "+"] {
        if let Some(argument) = operator.strip_prefix(op) {
            return Some((op, argument));
        }
    }
    None
}

fn name_length(text: &str) -> usize {
    let mut chars = text.char_indices();
    match chars.next() {
        Some((_, c)) if c.is_ascii_alphabetic() || c == '_' => {}
        _ => return 0,
    }
    chars.find(|(_, c)| !(c.is_ascii_alphanumeric() || *c == '_')).map_or(text.len(), |(i, _)| i)
}

/// Index of the `}` closing a `${`, counting nested `${…}`.
fn closing_brace(text: &str) -> Option<usize> {
    let mut depth = 0;
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'$' if bytes.get(i + 1) == Some(&b'{') => {
                depth += 1;
                i += 1;
            }
            b'}' if depth == 0 => return Some(i),
            b'}' => depth -= 1,
            _ => {}
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(text: &str) -> Result<String, InterpolationError> {
        let lookup = |name: &str| match name {
            "SET" => Some("value".to_string()),
            "EMPTY" => Some(String::new()),
            "PORT" => Some("8080".to_string()),
            _ => None,
        };
        interpolate(text, &lookup)
    }

    macro_rules! case {
        ($name:ident, $input:expr, $expected:expr) => {
            #[test]
            fn $name() {
                assert_eq!(run($input), Ok($expected.to_string()));
            }
        };
    }

    case!(plain_variable, "$SET", "value");
    case!(braced_variable, "x-${SET}-y", "x-value-y");
    case!(dollar_dollar_is_literal, "$$SET and $${SET}", "$SET and ${SET}");
    case!(colon_dash_default_when_unset, "${UNSET:-d}", "d");
    case!(colon_dash_default_when_empty, "${EMPTY:-d}", "d");
    case!(dash_default_only_when_unset, "${EMPTY-d}|${UNSET-d}", "|d");
    case!(colon_plus_when_set_nonempty, "${SET:+r}|${EMPTY:+r}|${UNSET:+r}", "r||");
    case!(plus_when_set_even_empty, "${EMPTY+r}|${UNSET+r}", "r|");
    case!(nested_defaults, "${UNSET:-${ALSO_UNSET:-${PORT}}}", "8080");
    case!(set_but_empty_is_not_unset, "[${EMPTY}]", "[]");
    case!(lone_dollar_is_kept, "5$ and $", "5$ and $");
    case!(default_may_hold_colons_and_dashes, "${UNSET:-http://a:1/x-y}", "http://a:1/x-y");

    #[test]
    fn unset_without_default_is_an_error_naming_it() {
        assert_eq!(run("${NOPE}"), Err(InterpolationError::Unset { name: "NOPE".into() }));
        assert_eq!(run("$NOPE"), Err(InterpolationError::Unset { name: "NOPE".into() }));
    }

    #[test]
    fn required_variables_carry_their_message() {
        assert_eq!(run("${EMPTY:?must be set}"), Err(InterpolationError::Required { name: "EMPTY".into(), message: "must be set".into() }));
        assert_eq!(run("${EMPTY?must be set}"), Ok(String::new()));
        assert!(matches!(run("${UNSET?x}"), Err(InterpolationError::Required { .. })));
    }

    #[test]
    fn nesting_is_bounded() {
        let depth = 20_000;
        let text = "${UNSET:-".repeat(depth) + "x" + &"}".repeat(depth);
        assert!(matches!(run(&text), Err(InterpolationError::Syntax { message }) if message.contains("nest deeper")));
        let text = "${UNSET:-".repeat(MAX_NESTING) + "x" + &"}".repeat(MAX_NESTING);
        assert_eq!(run(&text), Ok("x".to_string()));
    }

    #[test]
    fn syntax_errors() {
        assert!(matches!(run("${SET"), Err(InterpolationError::Syntax { .. })));
        assert!(matches!(run("${SET%x}"), Err(InterpolationError::Syntax { .. })));
        assert!(matches!(run("${}"), Err(InterpolationError::Syntax { .. })));
    }
}
