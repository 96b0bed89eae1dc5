//! Errors from the engine layer.
//!
//! Every error names the operation and the resource it was about (`create container
//! db-gateway-web-1: …`), and falls into a kind the executor and the CLI can match on
//! (not found, conflict, unreachable, wait failed, timeout, other API failure).
//!
//! This module must never carry secret material: errors are built from operation names,
//! resource names and the daemon's own messages, never from delivered file contents.
//! Text that came from the daemon or from a container is stripped of control characters
//! before it is stored, so printing an error cannot drive the user's terminal.

use std::fmt;
use std::time::Duration;

/// An engine operation, as named in error messages (`"create container"`).
pub type Operation = &'static str;

/// What went wrong talking to a container engine.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// The resource does not exist (HTTP 404).
    #[error("{operation} {resource}: not found: {message}")]
    NotFound {
        /// The operation that failed.
        operation: Operation,
        /// The resource it was about, e.g. `container web-1`.
        resource: String,
        /// The daemon's message.
        message: String,
    },
    /// The name is taken or the resource is in a state that forbids the operation (HTTP 409).
    #[error("{operation} {resource}: conflict: {message}")]
    Conflict {
        /// The operation that failed.
        operation: Operation,
        /// The resource it was about.
        resource: String,
        /// The daemon's message.
        message: String,
    },
    /// No engine answered at all.
    #[error(
        "no Docker engine answered at {host}: {cause}; check that the Docker daemon is running \
         there and that DOCKER_HOST points at it"
    )]
    Unreachable {
        /// The address tried (the effective DOCKER_HOST).
        host: String,
        /// Why the connection failed.
        cause: String,
    },
    /// The connection settings are unsafe or unusable; nothing was contacted.
    #[error("refusing to connect to {host}: {reason}")]
    ConnectionRefused {
        /// The address that was asked for.
        host: String,
        /// Why it was refused and how to proceed.
        reason: String,
    },
    /// A wait ended in a state that will not become the one waited for (unhealthy, exited, …).
    #[error("{operation} {resource}: {reason}{}", DetailLines(detail))]
    WaitFailed {
        /// The wait that failed, e.g. `wait healthy`.
        operation: Operation,
        /// The container waited on.
        resource: String,
        /// One line saying what happened (`unhealthy after 3 failed checks`).
        reason: String,
        /// Evidence: the last health check results or the last log lines.
        detail: Vec<String>,
    },
    /// The operation or wait did not finish in time.
    #[error("{operation} {resource}: timed out after {}{}", HumanDuration(*after), DetailLines(detail))]
    Timeout {
        /// The operation that timed out.
        operation: Operation,
        /// The resource it was about.
        resource: String,
        /// How long was waited.
        after: Duration,
        /// Evidence gathered at the deadline (health log, last log lines), possibly empty.
        detail: Vec<String>,
    },
    /// The request was understood but is invalid for this engine, or the input cannot be sent
    /// (for example file content that was redacted when a plan was saved).
    #[error("{operation} {resource}: invalid request: {message}")]
    Invalid {
        /// The operation that failed.
        operation: Operation,
        /// The resource it was about.
        resource: String,
        /// What is wrong.
        message: String,
    },
    /// Any other failure reported by the engine or the transport.
    #[error("{operation} {resource}: {message}{}", StatusSuffix(*status))]
    Api {
        /// The operation that failed.
        operation: Operation,
        /// The resource it was about.
        resource: String,
        /// The HTTP status, when the daemon answered.
        status: Option<u16>,
        /// The daemon's or transport's message.
        message: String,
    },
}

impl EngineError {
    /// The operation this error is about, when it is about one.
    pub fn operation(&self) -> Option<Operation> {
        match self {
            EngineError::NotFound { operation, .. }
            | EngineError::Conflict { operation, .. }
            | EngineError::WaitFailed { operation, .. }
            | EngineError::Timeout { operation, .. }
            | EngineError::Invalid { operation, .. }
            | EngineError::Api { operation, .. } => Some(operation),
            EngineError::Unreachable { .. } | EngineError::ConnectionRefused { .. } => None,
        }
    }

    /// What went wrong, without the operation and resource it is about (a step that failed is
    /// already named where this is shown) and without the evidence ([`EngineError::detail`]).
    pub fn reason(&self) -> String {
        match self {
            EngineError::NotFound { message, .. } => format!("not found: {message}"),
            EngineError::Conflict { message, .. } => format!("conflict: {message}"),
            EngineError::WaitFailed { reason, .. } => reason.clone(),
            EngineError::Timeout { after, .. } => format!("timed out after {}", HumanDuration(*after)),
            EngineError::Invalid { message, .. } => format!("invalid request: {message}"),
            EngineError::Api { message, status, .. } => format!("{message}{}", StatusSuffix(*status)),
            EngineError::Unreachable { .. } | EngineError::ConnectionRefused { .. } => self.to_string(),
        }
    }

    /// The evidence a wait gathered: health check results, last log lines.
    pub fn detail(&self) -> &[String] {
        match self {
            EngineError::WaitFailed { detail, .. } | EngineError::Timeout { detail, .. } => detail,
            _ => &[],
        }
    }

    /// True for 404-style errors.
    pub fn is_not_found(&self) -> bool {
        matches!(self, EngineError::NotFound { .. })
    }

    /// True for 409-style errors.
    pub fn is_conflict(&self) -> bool {
        matches!(self, EngineError::Conflict { .. })
    }

    /// True when the engine did not answer at all: unreachable, or the connection broke.
    pub fn is_engine_lost(&self) -> bool {
        matches!(self, EngineError::Unreachable { .. } | EngineError::Api { status: None, .. })
    }

    /// True when retrying later may help (engine unreachable, 5xx, transport failures, timeouts).
    pub fn is_transient(&self) -> bool {
        match self {
            EngineError::Unreachable { .. } | EngineError::Timeout { .. } => true,
            EngineError::Api { status, .. } => status.is_none_or(|code| code >= 500),
            _ => false,
        }
    }
}

/// Removes control characters (ANSI escapes included) from text that came from the daemon or
/// a container, keeping tabs. Used on every message stored in an [`EngineError`].
pub fn sanitize(text: &str) -> String {
    let mut clean = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(character) = chars.next() {
        if character == '\u{1b}' {
            // Skip an ANSI CSI sequence: ESC [ parameters final-byte.
            if chars.peek() == Some(&'[') {
                chars.next();
                for following in chars.by_ref() {
                    if ('\u{40}'..='\u{7e}').contains(&following) {
                        break;
                    }
                }
            }
            continue;
        }
        if character == '\t' || !character.is_control() {
            clean.push(character);
        }
    }
    clean
}

/// Renders detail lines as an indented block after the one-line reason.
struct DetailLines<'a>(&'a [String]);

impl fmt::Display for DetailLines<'_> {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        for line in self.0 {
            write!(formatter, "\n    {line}")?;
        }
        Ok(())
    }
}

struct StatusSuffix(Option<u16>);

impl fmt::Display for StatusSuffix {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(code) => write!(formatter, " (HTTP {code})"),
            None => Ok(()),
        }
    }
}

/// `1.5s`, `2m0s`: short, readable durations for messages.
struct HumanDuration(Duration);

impl fmt::Display for HumanDuration {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let total = self.0.as_secs_f64();
        if total < 60.0 {
            write!(formatter, "{total:.1}s")
        } else {
            let seconds = self.0.as_secs();
            write!(formatter, "{}m{}s", seconds / 60, seconds % 60)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitize_strips_ansi_sequences_and_control_characters() {
        assert_eq!(sanitize("\u{1b}[31mred\u{1b}[0m\tok\u{7}\r"), "red\tok");
    }

    #[test]
    fn wait_failed_lists_its_evidence_under_the_reason() {
        let error = EngineError::WaitFailed {
            operation: "wait healthy",
            resource: "container web-1".into(),
            reason: "unhealthy".into(),
            detail: vec!["exit 1: boom".into()],
        };
        assert_eq!(error.to_string(), "wait healthy container web-1: unhealthy\n    exit 1: boom");
    }

    #[test]
    fn server_errors_are_transient_but_client_errors_are_not() {
        let api = |status| EngineError::Api {
            operation: "start container",
            resource: "container web-1".into(),
            status,
            message: "x".into(),
        };
        assert!(api(Some(500)).is_transient());
        assert!(api(None).is_transient());
        assert!(!api(Some(400)).is_transient());
    }
}
