//! Checks that need the whole stack: references between services and resources, conditions that
//! cannot be met, settings that contradict each other. Everything found is reported together.

use crate::model::stack::{Condition, Kind, MountKind, Stack};
use super::schema::did_you_mean;
use crate::diagnostics::Diagnostics;

/// Environment keys that usually hold credentials.
const SECRET_WORDS: [&str; 7] = ["PASSWORD", "PASSWD", "SECRET", "TOKEN", "API_KEY", "APIKEY", "PRIVATE_KEY"];

/// Whether a variable name looks like it holds a credential (`DB_PASSWORD`, `api_token`); a
/// `*_FILE` name holds a path to one, which is the recommended way.
pub fn looks_like_secret_key(key: &str) -> bool {
    let upper = key.to_ascii_uppercase();
    !upper.ends_with("_FILE") && SECRET_WORDS.iter().any(|w| upper.contains(w))
}

/// Replicas of one service. Beyond this a typo (`replicas: 100000`) would start thousands of
/// containers before anyone could stop it.
pub const MAX_REPLICAS: u32 = 1_000;
/// Replicas of all services of a stack together.
pub const MAX_STACK_REPLICAS: u32 = 10_000;

pub fn validate(stack: &Stack, out: &mut Diagnostics) {
    let total: u64 = stack.services.values().map(|s| u64::from(s.replicas)).sum();
    if total > u64::from(MAX_STACK_REPLICAS) {
        let first = stack.services.values().map(|s| s.pos).next();
        out.error(first, format!("the stack has {total} replicas in all, more than the limit of {MAX_STACK_REPLICAS}")).hint =
            Some("split it into several stacks".into());
    }
    let mut container_names: std::collections::BTreeMap<&str, &str> = std::collections::BTreeMap::new();
    for (name, service) in &stack.services {
        if let Some(container_name) = &service.container_name {
            let at = service.positions.get("container_name").copied().unwrap_or(service.pos);
            if let Some(first) = container_names.insert(container_name, name) {
                out.error(at, format!("services `{first}` and `{name}` both set `container_name: {container_name}`; container names are unique")).hint =
                    Some("give one of them another name, or remove `container_name`".into());
            }
        }
    }
    for (name, service) in &stack.services {
        let at = |key: &str| service.positions.get(key).copied().unwrap_or(service.pos);
        // Compose's own rule; names become container, DNS and graph node names.
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')) {
            out.error(service.pos, format!("service name `{name}` may only hold letters, digits, `.`, `_` and `-`"));
        }
        // Keys written with a wrong type were reported by the schema check; not again here.
        let written = |key: &str| service.positions.contains_key(key);
        if !written("image") && !written("build") {
            out.error(service.pos, format!("service `{name}` has neither `image` nor `build`")).hint =
                Some("add `image: name:tag`, or `build: ./dir` with a Dockerfile".into());
        }
        for dependency in &service.depends_on {
            let target = &dependency.service;
            if target == name {
                out.error(dependency.pos, format!("service `{name}` depends on itself")).hint = Some("remove this entry".into());
            } else if stack.inactive.contains(target) {
                if dependency.required {
                    out.error(dependency.pos, format!("service `{name}` depends on `{target}`, which is not active: none of its profiles is enabled")).hint =
                        Some("enable its profile with `--profile …`, or mark the dependency `required: false`".into());
                }
            } else if let Some(dependency_service) = stack.services.get(target) {
                let has_healthcheck = dependency_service.healthcheck.as_ref().is_some_and(|h| h.test.is_some());
                if dependency.condition == Condition::ServiceHealthy && !has_healthcheck {
                    out.error(dependency.pos, format!("service `{name}` waits for `{target}` to be healthy, but `{target}` has no healthcheck")).hint =
                        Some(format!("add a `healthcheck:` to `{target}`, or use `condition: service_started`"));
                }
                if dependency.condition == Condition::ServiceCompletedSuccessfully && dependency_service.replicas > 1 {
                    out.warning(dependency.pos, format!("service `{name}` waits for job `{target}` to complete, and it has {} replicas", dependency_service.replicas));
                }
            } else {
                let known = stack.services.keys().map(String::as_str);
                let diagnostic = out.error(dependency.pos, format!("service `{name}` depends on unknown service `{target}`"));
                diagnostic.label = Some("not a service of this stack".into());
                diagnostic.hint = Some(match did_you_mean(target, known) {
                    Some(suggestion) => format!("did you mean `{suggestion}`?"),
                    None => format!("defined services: {}", stack.services.keys().cloned().collect::<Vec<_>>().join(", ")),
                });
            }
        }
        if service.container_name.is_some() && service.replicas > 1 {
            out.error(at("container_name"), format!("service `{name}` sets `container_name` and has {} replicas; container names are unique", service.replicas)).hint =
                Some("remove `container_name` (swarmctl names containers `<stack>-<service>-<n>`), or use one replica".into());
        }
        if service.replicas > 1 && service.kind != Kind::Daemonset {
            for port in service.ports.iter().filter(|p| p.published.is_some()) {
                let only_one = match port.host_mode {
                    true => "on one host, and on each swarm node (`mode: host`), only one replica can bind it",
                    false => "on the host target only one replica can bind it (on a swarm the routing mesh shares it)",
                };
                out.warning(port.pos, format!("service `{name}` publishes host port {} and has {} replicas: {only_one}", port.published.unwrap_or(0), service.replicas));
            }
        }
        for network in service.networks.keys() {
            if network != "default" && !stack.networks.contains_key(network) {
                undefined(out, at(&format!("networks.{network}")), name, "network", network, stack.networks.keys());
            }
        }
        for mount in service.volumes.iter().filter(|m| m.kind == MountKind::Volume && !m.source.is_empty()) {
            if !stack.volumes.contains_key(&mount.source) {
                undefined(out, mount.pos, name, "volume", &mount.source, stack.volumes.keys());
            }
        }
        for config in &service.configs {
            if !stack.configs.contains_key(&config.source) {
                undefined(out, config.pos, name, "config", &config.source, stack.configs.keys());
            }
        }
        for secret in &service.secrets {
            if !stack.secrets.contains_key(&secret.source) {
                undefined(out, secret.pos, name, "secret", &secret.source, stack.secrets.keys());
            }
        }
        for (key, value) in &service.environment {
            let literal = value.as_deref().is_some_and(|v| !v.is_empty());
            // Only what `environment:` says; an env_file is where such values are meant to go.
            let written_here = service.positions.contains_key(&format!("environment.{key}"));
            if literal && written_here && looks_like_secret_key(key) {
                out.warning(at(&format!("environment.{key}")), format!("service `{name}`: `{key}` looks like a secret written into `environment`")).hint =
                    Some(format!("use a secret (`secrets:` + `{key}_FILE=/run/secrets/…`) so it stays out of `docker inspect`"));
            }
        }
    }
}

fn undefined<'a>(out: &mut Diagnostics, pos: super::source::Pos, service: &str, kind: &str, name: &str, known: impl Iterator<Item = &'a String> + Clone) {
    let diagnostic = out.error(pos, format!("service `{service}` uses undefined {kind} `{name}`"));
    diagnostic.hint = Some(match did_you_mean(name, known.clone().map(String::as_str)) {
        Some(suggestion) => format!("did you mean `{suggestion}`?"),
        None => format!("declare it under the top-level `{kind}s:` key"),
    });
}
