//! The Compose Specification's shape as data, and one walk over the tree that reports every key
//! outside it ("did you mean") and every value of the wrong type, with positions.
//!
//! Knowing a key is not acting on it: keys swarmctl does not act on yet load with a warning from
//! [`super::convert`], not an error here. `x-` keys are extensions and pass everywhere.

use super::yaml::{Node, Typed, Value};
use crate::diagnostics::{Diagnostic, Diagnostics};
use rayon::prelude::*;

/// What a value may look like.
#[derive(Debug)]
pub enum Shape {
    Any,
    Str,
    Int,
    Bool,
    /// Integer or decimal (cpus: 0.5 or "0.5").
    Number,
    /// `1m30s`, `500ms`.
    Duration,
    /// `512m`, `1g`, or a number of bytes.
    Size,
    /// A string, or a list of strings (command, entrypoint, dns).
    StrOrList,
    /// `KEY=VALUE` list or a mapping of scalars (environment, labels, sysctls).
    ListOrDict,
    List(&'static Shape),
    /// A mapping with known keys.
    Map(&'static [(&'static str, Shape)]),
    /// A mapping with keys of the user's choosing (services, networks).
    Dict(&'static Shape),
    /// Any of these shapes (short and long syntax).
    OneOf(&'static [Shape]),
    /// Null, or the shape (`networks: {front: }`).
    Optional(&'static Shape),
}

use Shape::*;

const SCALAR: Shape = OneOf(&[Str, Number, Bool]);

pub const TOP: Shape = Map(&[
    ("version", Str),
    ("name", Str),
    ("include", List(&OneOf(&[Str, Map(&[("path", StrOrList), ("project_directory", Str), ("env_file", StrOrList)])]))),
    ("services", Dict(&Optional(&SERVICE))),
    ("networks", Dict(&Optional(&NETWORK))),
    ("volumes", Dict(&Optional(&VOLUME))),
    ("configs", Dict(&FILE_OBJECT)),
    ("secrets", Dict(&FILE_OBJECT)),
    ("models", Dict(&Any)),
]);

const NETWORK: Shape = Map(&[
    ("driver", Str),
    ("driver_opts", Dict(&SCALAR)),
    ("attachable", Bool),
    ("enable_ipv4", Bool),
    ("enable_ipv6", Bool),
    ("external", OneOf(&[Bool, Map(&[("name", Str)])])),
    ("internal", Bool),
    ("ipam", Map(&[
        ("driver", Str),
        ("config", List(&Map(&[("subnet", Str), ("ip_range", Str), ("gateway", Str), ("aux_addresses", Dict(&Str))]))),
        ("options", Dict(&Str)),
    ])),
    ("labels", ListOrDict),
    ("name", Str),
]);

const VOLUME: Shape = Map(&[
    ("driver", Str),
    ("driver_opts", Dict(&SCALAR)),
    ("external", OneOf(&[Bool, Map(&[("name", Str)])])),
    ("labels", ListOrDict),
    ("name", Str),
]);

const FILE_OBJECT: Shape = Map(&[
    ("file", Str),
    ("environment", Str),
    ("content", Str),
    ("external", OneOf(&[Bool, Map(&[("name", Str)])])),
    ("labels", ListOrDict),
    ("name", Str),
    ("driver", Str),
    ("driver_opts", Dict(&SCALAR)),
    ("template_driver", Str),
]);

const HEALTHCHECK: Shape = Map(&[
    ("test", StrOrList),
    ("interval", Duration),
    ("timeout", Duration),
    ("retries", Int),
    ("start_period", Duration),
    ("start_interval", Duration),
    ("disable", Bool),
]);

const RESOURCES: Shape = Map(&[
    ("cpus", Number),
    ("memory", Size),
    ("pids", Int),
    ("devices", List(&Map(&[
        ("capabilities", List(&Str)),
        ("count", OneOf(&[Int, Str])),
        ("device_ids", List(&Str)),
        ("driver", Str),
        ("options", Dict(&SCALAR)),
    ]))),
    ("generic_resources", List(&Any)),
]);

const UPDATE_CONFIG: Shape = Map(&[
    ("parallelism", Int),
    ("delay", Duration),
    ("failure_action", Str),
    ("monitor", Duration),
    ("max_failure_ratio", Number),
    ("order", Str),
]);

const DEPLOY: Shape = Map(&[
    ("mode", Str),
    ("replicas", Int),
    ("endpoint_mode", Str),
    ("labels", ListOrDict),
    ("resources", Map(&[("limits", RESOURCES), ("reservations", RESOURCES)])),
    ("restart_policy", Map(&[("condition", Str), ("delay", Duration), ("max_attempts", Int), ("window", Duration)])),
    ("placement", Map(&[
        ("constraints", List(&Str)),
        ("preferences", List(&Map(&[("spread", Str)]))),
        ("max_replicas_per_node", Int),
    ])),
    ("update_config", UPDATE_CONFIG),
    ("rollback_config", UPDATE_CONFIG),
]);

const SERVICE_FILE: Shape = OneOf(&[Str, Map(&[("source", Str), ("target", Str), ("uid", Str), ("gid", Str), ("mode", OneOf(&[Int, Str]))])]);

const SERVICE: Shape = Map(&[
    ("annotations", ListOrDict),
    ("attach", Bool),
    ("blkio_config", Any),
    ("build", OneOf(&[Str, Map(&[
        ("context", Str),
        ("dockerfile", Str),
        ("dockerfile_inline", Str),
        ("args", ListOrDict),
        ("ssh", Any),
        ("cache_from", List(&Str)),
        ("cache_to", List(&Str)),
        ("additional_contexts", ListOrDict),
        ("entitlements", List(&Str)),
        ("extra_hosts", ListOrDict),
        ("isolation", Str),
        ("labels", ListOrDict),
        ("network", Str),
        ("no_cache", Bool),
        ("platforms", List(&Str)),
        ("privileged", Bool),
        ("pull", Bool),
        ("secrets", List(&SERVICE_FILE)),
        ("shm_size", Size),
        ("tags", List(&Str)),
        ("target", Str),
        ("ulimits", Any),
    ])])),
    ("cap_add", List(&Str)),
    ("cap_drop", List(&Str)),
    ("cgroup", Str),
    ("cgroup_parent", Str),
    ("command", Optional(&StrOrList)),
    ("configs", List(&SERVICE_FILE)),
    ("container_name", Str),
    ("cpu_count", Int),
    ("cpu_percent", Int),
    ("cpu_shares", Int),
    ("cpu_quota", OneOf(&[Int, Str])),
    ("cpu_period", OneOf(&[Int, Str])),
    ("cpu_rt_period", OneOf(&[Int, Str])),
    ("cpu_rt_runtime", OneOf(&[Int, Str])),
    ("cpus", Number),
    ("cpuset", Str),
    ("credential_spec", Any),
    ("depends_on", OneOf(&[List(&Str), Dict(&Optional(&Map(&[("condition", Str), ("restart", Bool), ("required", Bool)])))])),
    ("deploy", DEPLOY),
    ("develop", Any),
    ("device_cgroup_rules", List(&Str)),
    ("devices", List(&OneOf(&[Str, Map(&[("source", Str), ("target", Str), ("permissions", Str)])]))),
    ("dns", StrOrList),
    ("dns_opt", List(&Str)),
    ("dns_search", StrOrList),
    ("domainname", Str),
    ("driver_opts", Dict(&SCALAR)),
    ("entrypoint", Optional(&StrOrList)),
    ("env_file", OneOf(&[Str, List(&OneOf(&[Str, Map(&[("path", Str), ("required", Bool), ("format", Str)])]))])),
    ("environment", ListOrDict),
    ("expose", List(&OneOf(&[Str, Int]))),
    ("extends", OneOf(&[Str, Map(&[("service", Str), ("file", Str)])])),
    ("external_links", List(&Str)),
    ("extra_hosts", ListOrDict),
    ("gpus", Any),
    ("group_add", List(&OneOf(&[Str, Int]))),
    ("healthcheck", HEALTHCHECK),
    ("hostname", Str),
    ("image", Str),
    ("init", Bool),
    ("ipc", Str),
    ("isolation", Str),
    ("labels", ListOrDict),
    ("label_file", StrOrList),
    ("links", List(&Str)),
    ("logging", Map(&[("driver", Str), ("options", Dict(&Optional(&SCALAR)))])),
    ("mac_address", Str),
    ("mem_limit", Size),
    ("mem_reservation", Size),
    ("mem_swappiness", Int),
    ("memswap_limit", Size),
    ("models", Any),
    ("network_mode", Str),
    ("networks", OneOf(&[List(&Str), Dict(&Optional(&Map(&[
        ("aliases", List(&Str)),
        ("ipv4_address", Str),
        ("ipv6_address", Str),
        ("link_local_ips", List(&Str)),
        ("mac_address", Str),
        ("driver_opts", Dict(&SCALAR)),
        ("gw_priority", Int),
        ("priority", Int),
        ("interface_name", Str),
    ])))])),
    ("oom_kill_disable", Bool),
    ("oom_score_adj", Int),
    ("pid", Str),
    ("pids_limit", Int),
    ("platform", Str),
    ("ports", List(&OneOf(&[Str, Int, Map(&[
        ("name", Str),
        ("target", OneOf(&[Int, Str])),
        ("published", OneOf(&[Int, Str])),
        ("host_ip", Str),
        ("protocol", Str),
        ("app_protocol", Str),
        ("mode", Str),
    ])]))),
    ("post_start", List(&Any)),
    ("pre_stop", List(&Any)),
    ("privileged", Bool),
    ("profiles", List(&Str)),
    ("provider", Any),
    ("pull_policy", Str),
    ("pull_refresh_after", Str),
    ("read_only", Bool),
    ("restart", Str),
    ("runtime", Str),
    ("scale", Int),
    ("secrets", List(&SERVICE_FILE)),
    ("security_opt", List(&Str)),
    ("shm_size", Size),
    ("stdin_open", Bool),
    ("stop_grace_period", Duration),
    ("stop_signal", Str),
    ("storage_opt", Dict(&Any)),
    ("sysctls", ListOrDict),
    ("tmpfs", StrOrList),
    ("tty", Bool),
    ("ulimits", Dict(&OneOf(&[Int, Map(&[("soft", Int), ("hard", Int)])]))),
    ("use_api_socket", Bool),
    ("user", OneOf(&[Str, Int])),
    ("userns_mode", Str),
    ("uts", Str),
    ("volumes", List(&OneOf(&[Str, Map(&[
        ("type", Str),
        ("source", Str),
        ("target", Str),
        ("read_only", Bool),
        ("consistency", Str),
        ("bind", Map(&[("propagation", Str), ("create_host_path", Bool), ("selinux", Str), ("recursive", Str)])),
        ("volume", Map(&[("nocopy", Bool), ("subpath", Str)])),
        ("tmpfs", Map(&[("size", Size), ("mode", OneOf(&[Int, Str]))])),
        ("image", Map(&[("subpath", Str)])),
    ])]))),
    ("volumes_from", List(&Str)),
    ("working_dir", Str),
]);

/// Whether `key` is a service key of the Compose Specification (known, whether or not acted on).
pub fn is_service_key(key: &str) -> bool {
    match &SERVICE {
        Map(fields) => fields.iter().any(|(name, _)| *name == key),
        _ => false,
    }
}

/// The fields of the mapping a value of `shape` may be, through options, lists, user-named
/// entries and the variants of a short and a long syntax.
fn fields_of(shape: &'static Shape) -> &'static [(&'static str, Shape)] {
    match shape {
        Map(fields) => fields,
        Optional(inner) | List(inner) | Dict(inner) => fields_of(inner),
        OneOf(shapes) => shapes.iter().map(fields_of).find(|fields| !fields.is_empty()).unwrap_or(&[]),
        _ => &[],
    }
}

/// Whether `path` names a key of the specification inside a service, list items and
/// user-named entries left out: `["build", "dockerfile_inline"]`, `["networks", "priority"]`.
pub fn is_service_sub_key(path: &[&str]) -> bool {
    let mut shape = &SERVICE;
    for key in path {
        match fields_of(shape).iter().find(|(name, _)| name == key) {
            Some((_, next)) => shape = next,
            None => return false,
        }
    }
    true
}

/// Checks a whole document against `shape` (normally [`TOP`]).
pub fn check_document(document: &Node, shape: &Shape, out: &mut Diagnostics) {
    check(document, shape, &Place::Root, out);
}

/// Where a value sits, for messages (`services.web.ports[0]`). Checking visits every value of
/// the stack and nearly all are fine, so the text is written only when a message needs it.
#[derive(Clone, Copy)]
enum Place<'a> {
    Root,
    Key(&'a Place<'a>, &'a str),
    Index(&'a Place<'a>, usize),
}

impl std::fmt::Display for Place<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Place::Root => Ok(()),
            Place::Key(Place::Root, key) => f.write_str(key),
            Place::Key(parent, key) => write!(f, "{parent}.{key}"),
            Place::Index(parent, index) => write!(f, "{parent}[{index}]"),
        }
    }
}

fn check(node: &Node, shape: &Shape, path: &Place<'_>, out: &mut Diagnostics) {
    if let Some(problem) = mismatch(node, shape, path, out) {
        out.push(problem);
    }
}

/// Returns the diagnostic for a wrong type; unknown keys inside go straight to `out`.
fn mismatch(node: &Node, shape: &Shape, path: &Place<'_>, out: &mut Diagnostics) -> Option<Diagnostic> {
    let typed = node.as_scalar().map(|s| s.typed());
    let wrong = |expected: &str| {
        Some(Diagnostic::error(node.pos, format!("`{path}` must be {expected}, not {}", node.kind_name())))
    };
    match shape {
        Any => None,
        Optional(inner) => {
            if node.is_null() {
                None
            } else {
                mismatch(node, inner, path, out)
            }
        }
        Str => match typed {
            Some(Typed::Null) | None => wrong("a string"),
            Some(_) => None,
        },
        Int => match typed {
            Some(Typed::Int(_)) => None,
            Some(Typed::Str(s)) if s.parse::<i64>().is_ok() => None,
            _ => wrong("an integer"),
        },
        Bool => match typed {
            Some(Typed::Bool(_)) => None,
            Some(Typed::Str("true" | "false")) => None,
            _ => wrong("true or false"),
        },
        Number => match typed {
            Some(Typed::Int(_) | Typed::Float(_)) => None,
            Some(Typed::Str(s)) if s.parse::<f64>().is_ok() => None,
            _ => wrong("a number"),
        },
        Duration => match typed {
            Some(Typed::Str(s)) => match parse_duration(s) {
                Ok(_) => None,
                Err(why) => Some(
                    Diagnostic::error(node.pos, format!("`{path}`: invalid duration `{s}`: {why}"))
                        .with_hint("write durations as compose does: `30s`, `1m30s`, `500ms`, `2h`"),
                ),
            },
            Some(Typed::Int(n)) => Some(
                Diagnostic::error(node.pos, format!("`{path}`: duration `{n}` has no unit"))
                    .with_hint(format!("write `{n}s` for seconds or `{n}ms` for milliseconds")),
            ),
            _ => wrong("a duration such as `30s`"),
        },
        Size => match typed {
            Some(Typed::Int(n)) if n >= 0 => None,
            Some(Typed::Str(s)) if parse_size(s).is_some() => None,
            _ => wrong("a size such as `512m` or `1g`"),
        },
        StrOrList => match &node.value {
            Value::Scalar(_) => mismatch(node, &Str, path, out),
            Value::Seq(items) => {
                items.iter().enumerate().for_each(|(i, item)| check(item, &SCALAR, &Place::Index(path, i), out));
                None
            }
            Value::Map(_) => wrong("a string or a list of strings"),
        },
        ListOrDict => match &node.value {
            Value::Seq(items) => {
                items.iter().enumerate().for_each(|(i, item)| check(item, &Str, &Place::Index(path, i), out));
                None
            }
            Value::Map(entries) => {
                for entry in entries {
                    if !entry.value.is_null() {
                        check(&entry.value, &SCALAR, &Place::Key(path, &entry.key), out);
                    }
                }
                None
            }
            Value::Scalar(_) => wrong("a list of `KEY=VALUE` or a mapping"),
        },
        List(item_shape) => match &node.value {
            Value::Seq(items) => {
                items.iter().enumerate().for_each(|(i, item)| check(item, item_shape, &Place::Index(path, i), out));
                None
            }
            _ => wrong("a list"),
        },
        Dict(value_shape) => match &node.value {
            Value::Map(entries) => {
                // A large stack's services: checked in parallel, reported in order.
                let found: Vec<Diagnostics> = entries
                    .par_iter()
                    .with_min_len(64)
                    .filter(|entry| !entry.key.starts_with("x-"))
                    .map(|entry| {
                        let mut found = Diagnostics::default();
                        check(&entry.value, value_shape, &Place::Key(path, &entry.key), &mut found);
                        found
                    })
                    .collect();
                found.into_iter().for_each(|found| out.extend(found));
                None
            }
            _ => wrong("a mapping"),
        },
        Map(fields) => match &node.value {
            Value::Map(entries) => {
                for entry in entries {
                    if entry.key.starts_with("x-") {
                        continue;
                    }
                    match fields.iter().find(|(name, _)| *name == entry.key) {
                        Some((_, field_shape)) => check(&entry.value, field_shape, &Place::Key(path, &entry.key), out),
                        None => out.push(unknown_key(&entry.key, entry.key_pos, path, fields)),
                    }
                }
                None
            }
            _ => wrong("a mapping"),
        },
        OneOf(shapes) => {
            // The first shape of the right kind decides, so nested errors point inside it.
            let kind_matches = |shape: &Shape| match (&node.value, shape) {
                (Value::Map(_), Map(_) | Dict(_) | ListOrDict | Any) => true,
                (Value::Seq(_), List(_) | StrOrList | ListOrDict | Any) => true,
                (Value::Scalar(_), Map(_) | Dict(_) | List(_) | ListOrDict) => false,
                (Value::Scalar(_), _) => true,
                _ => false,
            };
            let candidates: Vec<&Shape> = shapes.iter().filter(|s| kind_matches(s)).collect();
            let mut first_problem = None;
            for candidate in &candidates {
                let mut nested = Diagnostics::default();
                match mismatch(node, candidate, path, &mut nested) {
                    None => {
                        out.extend(nested);
                        return None;
                    }
                    Some(problem) => {
                        first_problem.get_or_insert(problem);
                    }
                }
            }
            first_problem.or_else(|| wrong(&describe(shapes)))
        }
    }
}

fn describe(shapes: &[Shape]) -> String {
    let names: Vec<&str> = shapes
        .iter()
        .map(|s| match s {
            Str => "a string",
            Int => "an integer",
            Bool => "a boolean",
            Number => "a number",
            Map(_) | Dict(_) => "a mapping",
            List(_) => "a list",
            _ => "a value",
        })
        .collect();
    names.join(" or ")
}

fn unknown_key(key: &str, pos: super::source::Pos, path: &Place<'_>, fields: &[(&str, Shape)]) -> Diagnostic {
    let place = if matches!(path, Place::Root) { "at the top level".to_string() } else { format!("in `{path}`") };
    let diagnostic = Diagnostic::error(pos, format!("unknown key `{key}` {place}")).with_label("not a Compose Specification key");
    match did_you_mean(key, fields.iter().map(|(name, _)| *name)) {
        Some(suggestion) => diagnostic.with_hint(format!("did you mean `{suggestion}`?")),
        None => diagnostic.with_hint("extensions must start with `x-`"),
    }
}

/// The closest known name, if it is close enough to be a typo.
pub fn did_you_mean<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|candidate| (strsim::damerau_levenshtein(word, candidate), candidate))
        .filter(|(distance, candidate)| *distance <= 2.max(candidate.len() / 4) && *distance < candidate.len())
        .min()
        .map(|(_, candidate)| candidate)
}

/// Parses a compose duration: `1h2m3s`, `500ms`, `1.5s`, `10us`. Units are required.
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("empty".into());
    }
    let mut total = 0f64;
    let mut rest = text;
    while !rest.is_empty() {
        let number_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        if number_len == 0 {
            return Err(format!("expected a number at `{rest}`"));
        }
        let number: f64 = rest[..number_len].parse().map_err(|_| format!("`{}` is not a number", &rest[..number_len]))?;
        rest = &rest[number_len..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let seconds = match &rest[..unit_len] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 1e-3,
            "us" | "µs" => 1e-6,
            "ns" => 1e-9,
            "" => return Err("missing unit (h, m, s, ms, us, ns)".into()),
            unit => return Err(format!("unknown unit `{unit}` (h, m, s, ms, us, ns)")),
        };
        total += number * seconds;
        rest = &rest[unit_len..];
    }
    // NaN too: `1e400s` parses to infinity, and infinity times zero is NaN.
    if total.is_nan() || total > MAX_DURATION.as_secs_f64() {
        return Err(format!("`{text}` is longer than the limit of {}h (a year)", MAX_DURATION.as_secs() / 3600));
    }
    Ok(std::time::Duration::from_secs_f64(total))
}

/// No timeout, interval or grace period a stack needs comes near a year; past it, durations
/// overflow the engine's nanoseconds and the clock's arithmetic.
pub const MAX_DURATION: std::time::Duration = std::time::Duration::from_secs(365 * 24 * 3600);

/// Parses a byte size: `1024`, `512k`, `512m`, `1g`, `1.5gb`.
pub fn parse_size(text: &str) -> Option<u64> {
    let lower = text.trim().to_ascii_lowercase();
    let digits_end = lower.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(lower.len());
    let number: f64 = lower[..digits_end].parse().ok()?;
    let factor: u64 = match lower[digits_end..].trim() {
        "" | "b" => 1,
        "k" | "kb" | "ki" | "kib" => 1 << 10,
        "m" | "mb" | "mi" | "mib" => 1 << 20,
        "g" | "gb" | "gi" | "gib" => 1 << 30,
        "t" | "tb" | "ti" | "tib" => 1 << 40,
        _ => return None,
    };
    Some((number * factor as f64) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration as D;

    #[test]
    fn durations_as_compose_writes_them() {
        assert_eq!(parse_duration("1m30s"), Ok(D::from_secs(90)));
        assert_eq!(parse_duration("500ms"), Ok(D::from_millis(500)));
        assert_eq!(parse_duration("1.5s"), Ok(D::from_millis(1500)));
        assert_eq!(parse_duration("2h"), Ok(D::from_secs(7200)));
        assert!(parse_duration("30").is_err());
        assert!(parse_duration("10x").is_err());
        assert!(parse_duration("s").is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("512m"), Some(512 << 20));
        assert_eq!(parse_size("1g"), Some(1 << 30));
        assert_eq!(parse_size("1.5GB"), Some(3 << 29));
        assert_eq!(parse_size("12"), Some(12));
        assert_eq!(parse_size("1q"), None);
    }

    #[test]
    fn sub_keys_are_found_through_lists_variants_and_named_entries() {
        assert!(is_service_sub_key(&["build", "dockerfile_inline"]));
        assert!(is_service_sub_key(&["networks", "priority"]));
        assert!(is_service_sub_key(&["volumes", "bind", "selinux"]));
        assert!(is_service_sub_key(&["deploy", "resources", "reservations", "generic_resources"]));
        assert!(is_service_sub_key(&["env_file", "format"]));
        assert!(!is_service_sub_key(&["healthcheck", "intervall"]));
    }

    #[test]
    fn typos_get_a_suggestion() {
        assert_eq!(did_you_mean("imgae", ["image", "init"]), Some("image"));
        assert_eq!(did_you_mean("depend_on", ["depends_on", "deploy"]), Some("depends_on"));
        assert_eq!(did_you_mean("zzzzzz", ["image"]), None);
    }
}
