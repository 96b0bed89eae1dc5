//! Connecting to a Docker engine: `DOCKER_HOST`, TLS, version negotiation, a liveness ping.
//!
//! The environment is passed in as data ([`ConnectOptions`]); this module never reads it
//! itself, so the choice of engine is visible at the call site and testable. Plain TCP to a
//! non-loopback address is refused unless the caller explicitly allows it: the Docker API is
//! root on that host and carries delivered secrets.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bollard::{Docker, API_DEFAULT_VERSION};

use super::convert::error_chain;
use super::docker::DockerEngine;
use super::error::EngineError;

/// The default local socket.
pub const DEFAULT_SOCKET: &str = "/var/run/docker.sock";

/// How to reach the engine, as the caller read it from the environment and flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectOptions {
    /// `DOCKER_HOST`; `None` means the local socket.
    pub docker_host: Option<String>,
    /// `DOCKER_TLS_VERIFY` was set (to anything non-empty): use TLS and verify the server.
    pub tls_verify: bool,
    /// Directory with `ca.pem`, `cert.pem`, `key.pem` (`DOCKER_CERT_PATH`, default `~/.docker`).
    pub cert_path: Option<PathBuf>,
    /// Allow plain TCP to a non-loopback address (`--insecure`).
    pub insecure: bool,
    /// How long to wait for the first answer before declaring the engine unreachable.
    pub ping_timeout: Duration,
    /// Time limit for each API request to start answering (waits and streams excepted).
    pub request_timeout: Duration,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            docker_host: None,
            tls_verify: false,
            cert_path: None,
            insecure: false,
            ping_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(120),
        }
    }
}

impl ConnectOptions {
    /// Reads `DOCKER_HOST`, `DOCKER_TLS_VERIFY`, `DOCKER_CERT_PATH` (and `HOME` for the
    /// default certificate directory) through `lookup`, e.g. `|name| std::env::var(name).ok()`.
    pub fn from_environment(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let non_empty = |name: &str| lookup(name).filter(|value| !value.is_empty());
        let cert_path = non_empty("DOCKER_CERT_PATH")
            .map(PathBuf::from)
            .or_else(|| non_empty("HOME").map(|home| Path::new(&home).join(".docker")));
        ConnectOptions {
            docker_host: non_empty("DOCKER_HOST"),
            tls_verify: non_empty("DOCKER_TLS_VERIFY").is_some(),
            cert_path,
            ..ConnectOptions::default()
        }
    }
}

/// Where the engine is, after parsing and the safety checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DockerHost {
    /// A local Unix socket.
    Unix {
        /// Socket path.
        path: PathBuf,
    },
    /// TCP, with or without TLS.
    Tcp {
        /// Host name or address.
        host: String,
        /// Port.
        port: u16,
        /// Client certificate files when TLS is on.
        tls: Option<TlsFiles>,
    },
}

/// The three PEM files of a TLS client setup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// CA certificate that signed the engine's certificate.
    pub ca: PathBuf,
    /// Client certificate.
    pub cert: PathBuf,
    /// Client private key.
    pub key: PathBuf,
}

impl std::fmt::Display for DockerHost {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DockerHost::Unix { path } => write!(formatter, "unix://{}", path.display()),
            DockerHost::Tcp { host, port, .. } if host.contains(':') => write!(formatter, "tcp://[{host}]:{port}"),
            DockerHost::Tcp { host, port, .. } => write!(formatter, "tcp://{host}:{port}"),
        }
    }
}

impl DockerHost {
    /// Parses and checks the options: the scheme is known, TLS files exist when TLS is on, and
    /// plain TCP goes only to loopback unless `insecure`.
    pub fn from_options(options: &ConnectOptions) -> Result<DockerHost, EngineError> {
        let raw = options.docker_host.as_deref().unwrap_or("").trim();
        if raw.is_empty() {
            return Ok(DockerHost::Unix { path: PathBuf::from(DEFAULT_SOCKET) });
        }
        let refuse = |reason: String| EngineError::ConnectionRefused { host: raw.to_string(), reason };
        if let Some(path) = raw.strip_prefix("unix://") {
            let path = if path.is_empty() { DEFAULT_SOCKET } else { path };
            return Ok(DockerHost::Unix { path: PathBuf::from(path) });
        }
        let Some(address) = raw.strip_prefix("tcp://") else {
            let scheme = raw.split_once("://").map_or(raw, |(scheme, _)| scheme);
            return Err(refuse(format!(
                "unsupported DOCKER_HOST scheme {scheme:?}: use unix:///path/to/docker.sock or tcp://host:port \
                 (for ssh, forward the socket: `ssh -NL /tmp/docker.sock:/var/run/docker.sock user@host` and set \
                 DOCKER_HOST=unix:///tmp/docker.sock)"
            )));
        };
        let default_port = if options.tls_verify { 2376 } else { 2375 };
        let (host, port) = split_host_port(address.trim_end_matches('/'), default_port).map_err(refuse)?;
        let tls = if options.tls_verify {
            let directory = options.cert_path.clone().ok_or_else(|| {
                refuse("DOCKER_TLS_VERIFY is set but no certificate directory is known: set DOCKER_CERT_PATH".into())
            })?;
            let files =
                TlsFiles { ca: directory.join("ca.pem"), cert: directory.join("cert.pem"), key: directory.join("key.pem") };
            for file in [&files.ca, &files.cert, &files.key] {
                if !file.is_file() {
                    return Err(refuse(format!(
                        "TLS is on (DOCKER_TLS_VERIFY) but {} does not exist; DOCKER_CERT_PATH must hold ca.pem, \
                         cert.pem and key.pem",
                        file.display()
                    )));
                }
            }
            Some(files)
        } else {
            None
        };
        if tls.is_none() && !options.insecure && !is_loopback(&host) {
            return Err(refuse(format!(
                "plain TCP to {host} is unencrypted and unauthenticated: anyone on the network can read the \
                 traffic (including delivered secrets) and the Docker API is root on that host. Enable TLS \
                 (DOCKER_TLS_VERIFY=1, DOCKER_CERT_PATH with ca.pem, cert.pem, key.pem), tunnel through ssh, or \
                 pass --insecure if this network is trusted"
            )));
        }
        Ok(DockerHost::Tcp { host, port, tls })
    }
}

/// `host:port`, `[v6]:port`, `host` → (host, port).
fn split_host_port(address: &str, default_port: u16) -> Result<(String, u16), String> {
    let parse_port = |text: &str| text.parse::<u16>().map_err(|_| format!("invalid port {text:?} in DOCKER_HOST"));
    if let Some(rest) = address.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or_else(|| format!("unclosed '[' in {address:?}"))?;
        let port = match after.strip_prefix(':') {
            Some(port) => parse_port(port)?,
            None if after.is_empty() => default_port,
            None => return Err(format!("unexpected {after:?} after the address in DOCKER_HOST")),
        };
        return Ok((host.to_string(), port));
    }
    match address.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => Ok((host.to_string(), parse_port(port)?)),
        _ if address.is_empty() => Err("DOCKER_HOST has no host".into()),
        _ => Ok((address.to_string(), default_port)),
    }
}

/// `localhost` and loopback addresses; other names are not resolved (a name could point anywhere).
fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost") || host.parse::<IpAddr>().is_ok_and(|address| address.is_loopback())
}

/// Connects, checks that an engine answers within `ping_timeout`, and negotiates the API version
/// down to what the engine speaks (API 1.41 on Engine 20.10).
pub async fn connect(options: &ConnectOptions) -> Result<DockerEngine, EngineError> {
    let target = DockerHost::from_options(options)?;
    let display = target.to_string();
    let timeout_seconds = options.request_timeout.as_secs().max(1);
    let unreachable = |cause: String| EngineError::Unreachable { host: display.clone(), cause };
    let docker = match &target {
        DockerHost::Unix { path } => {
            if !path.exists() {
                return Err(unreachable(format!("socket {} does not exist", path.display())));
            }
            let path_text = path.to_str().ok_or_else(|| unreachable("socket path is not UTF-8".into()))?;
            Docker::connect_with_unix(path_text, timeout_seconds, API_DEFAULT_VERSION)
        }
        DockerHost::Tcp { host, port, tls: None } => {
            Docker::connect_with_http(&authority(host, *port), timeout_seconds, API_DEFAULT_VERSION)
        }
        DockerHost::Tcp { host, port, tls: Some(files) } => Docker::connect_with_ssl(
            &authority(host, *port),
            &files.key,
            &files.cert,
            &files.ca,
            timeout_seconds,
            API_DEFAULT_VERSION,
        ),
    }
    .map_err(|error| unreachable(error_chain(&error)))?;

    match tokio::time::timeout(options.ping_timeout, docker.ping()).await {
        Err(_) => return Err(unreachable(format!("no answer within {:?}", options.ping_timeout))),
        Ok(Err(error)) => return Err(unreachable(error_chain(&error))),
        Ok(Ok(_)) => {}
    }
    let docker = match tokio::time::timeout(options.ping_timeout, docker.negotiate_version()).await {
        Err(_) => return Err(unreachable(format!("version negotiation took longer than {:?}", options.ping_timeout))),
        Ok(Err(error)) => return Err(unreachable(format!("version negotiation failed: {}", error_chain(&error)))),
        Ok(Ok(docker)) => docker,
    };
    Ok(DockerEngine::from_client(docker, display))
}

fn authority(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(host: &str) -> ConnectOptions {
        ConnectOptions { docker_host: Some(host.into()), ..ConnectOptions::default() }
    }

    #[test]
    fn no_docker_host_means_the_local_socket() {
        assert_eq!(
            DockerHost::from_options(&ConnectOptions::default()),
            Ok(DockerHost::Unix { path: PathBuf::from(DEFAULT_SOCKET) })
        );
        assert_eq!(
            DockerHost::from_options(&options("unix:///run/user/1000/docker.sock")),
            Ok(DockerHost::Unix { path: PathBuf::from("/run/user/1000/docker.sock") })
        );
    }

    #[test]
    fn plain_tcp_to_loopback_is_allowed() {
        for host in ["tcp://127.0.0.1:2375", "tcp://localhost:2375", "tcp://[::1]:2375"] {
            let parsed = DockerHost::from_options(&options(host)).expect(host);
            assert!(matches!(parsed, DockerHost::Tcp { port: 2375, tls: None, .. }), "{host}: {parsed:?}");
        }
    }

    #[test]
    fn plain_tcp_to_a_remote_address_is_refused_with_the_way_out() {
        let error = DockerHost::from_options(&options("tcp://10.0.0.5:2375")).expect_err("must refuse");
        let message = error.to_string();
        assert!(matches!(error, EngineError::ConnectionRefused { .. }));
        assert!(message.contains("10.0.0.5"), "{message}");
        assert!(message.contains("DOCKER_TLS_VERIFY"), "{message}");
        assert!(message.contains("--insecure"), "{message}");
        let named = DockerHost::from_options(&options("tcp://docker.example.com")).expect_err("names too");
        assert!(named.to_string().contains("docker.example.com"));
    }

    #[test]
    fn insecure_allows_plain_tcp_anywhere() {
        let allowed = ConnectOptions { insecure: true, ..options("tcp://10.0.0.5") };
        assert_eq!(
            DockerHost::from_options(&allowed),
            Ok(DockerHost::Tcp { host: "10.0.0.5".into(), port: 2375, tls: None })
        );
    }

    #[test]
    fn tls_needs_its_three_files() {
        let temporary = tempfile::tempdir().expect("temp dir");
        let directory = temporary.path().to_path_buf();
        let tls = ConnectOptions { tls_verify: true, cert_path: Some(directory.clone()), ..options("tcp://10.0.0.5") };
        let missing = DockerHost::from_options(&tls).expect_err("no files yet");
        assert!(missing.to_string().contains("ca.pem"), "{missing}");
        for name in ["ca.pem", "cert.pem", "key.pem"] {
            std::fs::write(directory.join(name), "x").expect("write pem");
        }
        let parsed = DockerHost::from_options(&tls).expect("files present");
        assert!(matches!(parsed, DockerHost::Tcp { port: 2376, tls: Some(_), .. }), "{parsed:?}");
    }

    #[test]
    fn unknown_schemes_are_refused() {
        let error = DockerHost::from_options(&options("ssh://user@host")).expect_err("ssh unsupported");
        assert!(error.to_string().contains("ssh -NL"), "{error}");
    }

    #[test]
    fn environment_is_read_through_the_lookup() {
        let environment = |name: &str| match name {
            "DOCKER_HOST" => Some("tcp://127.0.0.1:2376".to_string()),
            "DOCKER_TLS_VERIFY" => Some("1".to_string()),
            "HOME" => Some("/home/ci".to_string()),
            _ => None,
        };
        let read = ConnectOptions::from_environment(environment);
        assert_eq!(read.docker_host.as_deref(), Some("tcp://127.0.0.1:2376"));
        assert!(read.tls_verify);
        assert_eq!(read.cert_path, Some(PathBuf::from("/home/ci/.docker")));
    }

    #[tokio::test]
    async fn a_missing_socket_is_reported_as_unreachable() {
        let error = connect(&options("unix:///nonexistent/docker.sock")).await.expect_err("no engine there");
        assert!(matches!(error, EngineError::Unreachable { .. }), "{error:?}");
        assert!(error.to_string().contains("unix:///nonexistent/docker.sock"), "{error}");
    }
}
