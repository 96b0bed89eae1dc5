//! The server's settings, all from environment variables.
//!
//! Containers are configured through `environment:` in compose files, so the
//! server reads nothing else. Bad values stop the program at start (exit 2)
//! rather than being ignored: a typo in a stack must not pass silently.

use crate::duration::parse_duration;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, PartialEq)]
pub struct Config {
    /// `TESTAPP_PORTS`: comma list, default `8080`.
    pub ports: Vec<u16>,
    /// `TESTAPP_START_DELAY`: `/health` answers 503 until this has passed.
    pub start_delay: Duration,
    /// `TESTAPP_UNHEALTHY=1`: `/health` always answers 503.
    pub unhealthy: bool,
    /// `TESTAPP_UNHEALTHY_AFTER`: `/health` answers 503 once this has passed.
    pub unhealthy_after: Option<Duration>,
    /// `TESTAPP_DATA`: where `/kv` values are stored, default `/data`.
    pub data_dir: PathBuf,
    /// `TESTAPP_EXIT_AFTER`: exit after this long (unset: run forever).
    pub exit_after: Option<Duration>,
    /// `TESTAPP_EXIT_CODE`: the code to exit with then, default 0.
    pub exit_code: i32,
}

impl Config {
    pub fn from_env() -> Result<Config, String> {
        Config::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the settings through `lookup`, so tests need not touch the real environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Config, String> {
        // An empty value counts as unset, as compose's `VAR:` / `VAR=` yield "".
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let duration = |name: &str| -> Result<Option<Duration>, String> {
            get(name).map(|v| parse_duration(&v).map_err(|e| format!("{name}: {e}"))).transpose()
        };
        Ok(Config {
            ports: parse_ports(&get("TESTAPP_PORTS").unwrap_or_else(|| "8080".into()))?,
            start_delay: duration("TESTAPP_START_DELAY")?.unwrap_or(Duration::ZERO),
            unhealthy: get("TESTAPP_UNHEALTHY").is_some_and(|v| is_true(&v)),
            unhealthy_after: duration("TESTAPP_UNHEALTHY_AFTER")?,
            data_dir: PathBuf::from(get("TESTAPP_DATA").unwrap_or_else(|| "/data".into())),
            exit_after: duration("TESTAPP_EXIT_AFTER")?,
            exit_code: match get("TESTAPP_EXIT_CODE") {
                Some(v) => v.trim().parse().map_err(|_| format!("TESTAPP_EXIT_CODE: {v:?} is not a number"))?,
                None => 0,
            },
        })
    }
}

fn is_true(value: &str) -> bool {
    matches!(value.trim().to_ascii_lowercase().as_str(), "1" | "true" | "yes" | "on")
}

/// `8080` or `8080,9090` (spaces allowed, duplicates dropped).
pub fn parse_ports(text: &str) -> Result<Vec<u16>, String> {
    let mut ports = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let port: u16 = part.parse().map_err(|_| format!("TESTAPP_PORTS: {part:?} is not a port"))?;
        if port == 0 {
            return Err("TESTAPP_PORTS: port 0 is not allowed".into());
        }
        if !ports.contains(&port) {
            ports.push(port);
        }
    }
    if ports.is_empty() {
        return Err("TESTAPP_PORTS: no ports given".into());
    }
    Ok(ports)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Result<Config, String> {
        let vars: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::from_lookup(|name| vars.get(name).cloned())
    }

    #[test]
    fn defaults() {
        let c = config(&[]).unwrap();
        assert_eq!(c.ports, vec![8080]);
        assert_eq!(c.start_delay, Duration::ZERO);
        assert!(!c.unhealthy);
        assert_eq!(c.data_dir, PathBuf::from("/data"));
        assert_eq!((c.exit_after, c.exit_code), (None, 0));
    }

    #[test]
    fn everything_set() {
        let c = config(&[
            ("TESTAPP_PORTS", "80, 9090,80"),
            ("TESTAPP_START_DELAY", "500ms"),
            ("TESTAPP_UNHEALTHY", "1"),
            ("TESTAPP_UNHEALTHY_AFTER", "1m"),
            ("TESTAPP_DATA", "/srv"),
            ("TESTAPP_EXIT_AFTER", "2s"),
            ("TESTAPP_EXIT_CODE", "3"),
        ])
        .unwrap();
        assert_eq!(c.ports, vec![80, 9090]);
        assert_eq!(c.start_delay, Duration::from_millis(500));
        assert!(c.unhealthy);
        assert_eq!(c.unhealthy_after, Some(Duration::from_secs(60)));
        assert_eq!(c.data_dir, PathBuf::from("/srv"));
        assert_eq!((c.exit_after, c.exit_code), (Some(Duration::from_secs(2)), 3));
    }

    #[test]
    fn empty_means_unset() {
        let c = config(&[("TESTAPP_EXIT_AFTER", ""), ("TESTAPP_PORTS", " ")]).unwrap();
        assert_eq!((c.exit_after, c.ports), (None, vec![8080]));
    }

    #[test]
    fn bad_values_are_errors() {
        assert!(config(&[("TESTAPP_PORTS", "http")]).is_err());
        assert!(config(&[("TESTAPP_PORTS", "0")]).is_err());
        assert!(config(&[("TESTAPP_PORTS", ",")]).is_err());
        assert!(config(&[("TESTAPP_START_DELAY", "soon")]).is_err());
        assert!(config(&[("TESTAPP_EXIT_CODE", "x")]).is_err());
    }
}
