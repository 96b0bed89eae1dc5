//! An engine failure in the stack's words: which key of which service caused it, and what to do
//! about it. Best effort, from the engine's message: a failure it cannot place gets nothing
//! added (its own message stands).

use crate::diagnostics::Diagnostic;
use crate::model::stack::Service;

/// `(key, hint)` for a failure of one of `service`'s steps, when the message says which.
fn cause(reason: &str, service: &Service) -> Option<(&'static str, String)> {
    let reason = reason.to_ascii_lowercase();
    let has = |needle: &str| reason.contains(needle);
    Some(if has("port is already allocated") || has("address already in use") {
        ("ports", "another process holds this host port: free it, or publish another port".into())
    } else if has("no such image") || has("pull access denied") || has("manifest unknown") || has("repository does not exist") {
        ("image", "build or load the image on the engine first: no registry is used".into())
    } else if has("exec format error") {
        ("platform", "the image is built for another CPU: pick the image variant for this engine (`platform:`)".into())
    } else if has("bind source path does not exist") || has("invalid mount") || has("mount path") {
        ("volumes", "a bind source must exist on the engine's host (or use the short syntax, which creates it)".into())
    } else if has("unknown runtime") {
        ("runtime", "the engine has no such runtime: check `docker info` for the ones it has".into())
    } else if has("error gathering device information") || has("no such file or directory") && has("/dev/") {
        ("devices", "the device does not exist on the engine's host".into())
    } else if has("network") && (has("not found") || has("ambiguous")) {
        ("networks", "the network is gone or doubled: run the deploy again, it plans against what exists".into())
    } else if has("unhealthy") || has("health check") {
        ("healthcheck", "the health check keeps failing: its output is shown above".into())
    } else if has("executable file not found") || has("starting container process caused") {
        let key = if service.entrypoint.is_some() { "entrypoint" } else { "command" };
        (key, "the process could not start: check the command and that the image has it".into())
    } else if has("exited with code") {
        let key = if service.command.is_some() { "command" } else { "image" };
        (key, "the process exited: its last log lines are shown above".into())
    } else {
        return None;
    })
}

/// A diagnostic at the key of `service` that caused a failed step, when one can be named.
pub fn failure(step: &str, reason: &str, service: &Service) -> Option<Diagnostic> {
    let (key, hint) = cause(reason, service)?;
    let pos = service.positions.get(key).copied().unwrap_or(service.pos);
    Some(Diagnostic::error(pos, format!("service `{}`: {step} failed: {reason}", service.name)).with_hint(hint))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service() -> Service {
        let stack = crate::spec::load(
            &crate::spec::LoadOptions { path: std::path::PathBuf::from("tests/fixtures/valid/minimal"), ..Default::default() },
            &|_: &str| None::<String>,
        )
        .expect("the minimal fixture loads");
        stack.stack.services.into_values().next().expect("a service")
    }

    #[test]
    fn known_engine_messages_point_at_their_key() {
        let web = service();
        let at = |reason: &str| cause(reason, &web).map(|(key, _)| key);
        assert_eq!(at("driver failed programming external connectivity: Bind for 0.0.0.0:80 failed: port is already allocated (HTTP 500)"), Some("ports"));
        assert_eq!(at("not found: No such image: nope:1"), Some("image"));
        assert_eq!(at("invalid mount config for type \"bind\": bind source path does not exist: /x"), Some("volumes"));
        assert_eq!(at("unhealthy after 3 consecutive failed health checks"), Some("healthcheck"));
        assert_eq!(at("something nobody foresaw"), None);
        let diagnostic = failure("start container shop-web-1", "port is already allocated", &web).expect("placed");
        assert!(diagnostic.message.starts_with("service `"), "{}", diagnostic.message);
        assert!(diagnostic.hint.is_some());
    }
}
