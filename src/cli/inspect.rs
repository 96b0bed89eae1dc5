//! Commands that read a stack and change nothing: `validate`, `render`, `graph`.

use super::{Exit, StackArgs};
use std::io::{IsTerminal, Write};
use swarmctl::diagnostics::Diagnostics;
use swarmctl::spec::source::Sources;
use swarmctl::spec::{self, render, Loaded};

pub enum Drawing {
    Text,
    Dot,
    Mermaid,
}

/// The process exits right after a command prints: freeing a large stack's trees piece by piece
/// took a sixth of `graph` on 5,000 services (benches/spec.sh), for nothing.
fn done_with(loaded: Loaded) {
    std::mem::forget(loaded);
}

/// Loads the stack; on failure prints every diagnostic and returns the exit code.
pub fn load(args: &StackArgs) -> Result<Loaded, Exit> {
    let environment = |name: &str| std::env::var(name).ok();
    match spec::load(&args.load_options(), &environment) {
        Ok(loaded) => {
            print_diagnostics(&loaded.warnings, &loaded.sources);
            Ok(loaded)
        }
        Err(failure) => {
            print_diagnostics(&failure.diagnostics, &failure.sources);
            let errors = failure.diagnostics.0.iter().filter(|d| d.is_error()).count();
            errln!("{errors} error{} found; nothing was changed", if errors == 1 { "" } else { "s" });
            Err(Exit::InvalidInput)
        }
    }
}

pub fn print_diagnostics(diagnostics: &Diagnostics, sources: &Sources) {
    let color = use_color(std::io::stderr().is_terminal());
    let mut stderr = std::io::stderr().lock();
    for diagnostic in &diagnostics.0 {
        let _ = write!(stderr, "{}", diagnostic.render(sources, color));
    }
}

/// Colour on a terminal, unless `NO_COLOR` is set to anything but the empty string
/// (no-color.org); `CLICOLOR_FORCE` (non-empty, not `0`) forces it where output is piped.
fn use_color(terminal: bool) -> bool {
    let set = |name: &str| std::env::var_os(name).is_some_and(|v| !v.is_empty() && v != "0");
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    !no_color && (terminal || set("CLICOLOR_FORCE"))
}

pub fn validate(args: &StackArgs) -> Exit {
    match load(args) {
        Ok(loaded) => {
            let stack = &loaded.stack;
            let warnings = loaded.warnings.0.len();
            outln!(
                "stack `{}` is valid: {} service{}, {} network{}, {} volume{}{}",
                stack.name,
                stack.services.len(),
                plural(stack.services.len()),
                stack.networks.len(),
                plural(stack.networks.len()),
                stack.volumes.len(),
                plural(stack.volumes.len()),
                if warnings > 0 { format!(" ({warnings} warning{})", plural(warnings)) } else { String::new() },
            );
            done_with(loaded);
            Exit::Ok
        }
        Err(exit) => exit,
    }
}

pub fn render(args: &StackArgs, json: bool) -> Exit {
    match load(args) {
        Ok(loaded) => {
            let document = render::document(&loaded);
            if json {
                outln!("{}", serde_json::to_string_pretty(&document).unwrap_or_default());
            } else {
                out!("{}", render::to_yaml(&document));
            }
            done_with(loaded);
            Exit::Ok
        }
        Err(exit) => exit,
    }
}

pub fn graph(args: &StackArgs, drawing: Drawing) -> Exit {
    match load(args) {
        Ok(loaded) => {
            out!(
                "{}",
                match drawing {
                    Drawing::Text => loaded.graph.to_text(),
                    Drawing::Dot => loaded.graph.to_dot(),
                    Drawing::Mermaid => loaded.graph.to_mermaid(),
                }
            );
            done_with(loaded);
            Exit::Ok
        }
        Err(exit) => exit,
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}
