//! The client modes: `check`, `tcp`, `get`, `put`.
//!
//! They exist so that healthchecks and test probes can run inside any of our
//! images without curl (there is none) or busybox wget (it crashes resolving
//! names there). Names are resolved by glibc through `ToSocketAddrs`, so
//! Docker's embedded DNS and service aliases work.
//!
//! Exit codes follow Docker's healthcheck convention for `check` and `tcp`
//! (0 healthy, 1 not); `get` and `put` exit 1 on a non-2xx answer and 2 when
//! the server could not be reached at all.

use crate::url::{parse_http_url, split_host_port};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// Budget for `check` and `tcp`: what a healthcheck can afford.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// Budget for `get` and `put`: a KV write fsyncs, give it room.
const KV_TIMEOUT: Duration = Duration::from_secs(10);

pub fn check(url: &str) -> i32 {
    match request("GET", url, b"", PROBE_TIMEOUT) {
        Ok((status, _)) if (200..300).contains(&status) => 0,
        Ok((status, _)) => {
            eprintln!("testapp check: {url}: HTTP {status}");
            1
        }
        Err(err) => {
            eprintln!("testapp check: {url}: {err}");
            1
        }
    }
}

pub fn tcp(address: &str) -> i32 {
    let deadline = Instant::now() + PROBE_TIMEOUT;
    match split_host_port(address, None).and_then(|(host, port)| connect(&host, port, deadline)) {
        Ok(_) => 0,
        Err(err) => {
            eprintln!("testapp tcp: {address}: {err}");
            1
        }
    }
}

pub fn get(url: &str) -> i32 {
    kv_request("GET", url, b"")
}

pub fn put(url: &str, value: &str) -> i32 {
    kv_request("PUT", url, value.as_bytes())
}

fn kv_request(method: &str, url: &str, body: &[u8]) -> i32 {
    match request(method, url, body, KV_TIMEOUT) {
        Ok((status, body)) => {
            // Print the body as-is (no newline added): tests compare it exactly.
            let _ = std::io::stdout().write_all(&body);
            if (200..300).contains(&status) {
                0
            } else {
                eprintln!("testapp {}: {url}: HTTP {status}", method.to_lowercase());
                1
            }
        }
        Err(err) => {
            eprintln!("testapp {}: {url}: {err}", method.to_lowercase());
            2
        }
    }
}

/// Sends one request and returns status and body, all within `timeout`.
fn request(method: &str, url: &str, body: &[u8], timeout: Duration) -> Result<(u16, Vec<u8>), String> {
    let deadline = Instant::now() + timeout;
    let url = parse_http_url(url)?;
    let mut stream = connect(&url.host, url.port, deadline)?;
    let remaining = remaining(deadline)?;
    stream.set_read_timeout(Some(remaining)).map_err(|e| e.to_string())?;
    stream.set_write_timeout(Some(remaining)).map_err(|e| e.to_string())?;

    let head = format!(
        "{method} {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: swarmctl-testapp\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        url.path,
        url.authority,
        body.len()
    );
    stream
        .write_all(head.as_bytes())
        .and_then(|_| stream.write_all(body))
        .map_err(|e| format!("sending request: {e}"))?;
    // The server closes after one response, so read to EOF.
    let mut response = Vec::new();
    stream.read_to_end(&mut response).map_err(|e| format!("reading response: {e}"))?;
    parse_response(&response)
}

/// Resolves `host` and connects to the first address that answers before `deadline`.
fn connect(host: &str, port: u16, deadline: Instant) -> Result<TcpStream, String> {
    let addresses = resolve(host, port, deadline)?;
    let mut last_error = format!("{host} has no addresses");
    for address in addresses {
        match TcpStream::connect_timeout(&address, remaining(deadline)?) {
            Ok(stream) => return Ok(stream),
            Err(e) => last_error = format!("connecting to {address}: {e}"),
        }
    }
    Err(last_error)
}

/// Name lookup on a helper thread, so a DNS server that does not answer
/// cannot stretch the probe past its deadline (glibc would wait 5 s per try).
fn resolve(host: &str, port: u16, deadline: Instant) -> Result<Vec<SocketAddr>, String> {
    let (sender, receiver) = mpsc::channel();
    let name = host.to_string();
    thread::spawn(move || {
        let _ = sender.send((name.as_str(), port).to_socket_addrs().map(|a| a.collect::<Vec<_>>()));
    });
    match receiver.recv_timeout(remaining(deadline)?) {
        Ok(Ok(addresses)) => Ok(addresses),
        Ok(Err(e)) => Err(format!("resolving {host}: {e}")),
        Err(_) => Err(format!("resolving {host}: timed out")),
    }
}

fn remaining(deadline: Instant) -> Result<Duration, String> {
    match deadline.checked_duration_since(Instant::now()) {
        Some(left) if !left.is_zero() => Ok(left),
        _ => Err("timed out".into()),
    }
}

/// Splits a complete response into status and body (honouring Content-Length if given).
pub fn parse_response(raw: &[u8]) -> Result<(u16, Vec<u8>), String> {
    let head_end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("response without end of headers")?;
    let head = std::str::from_utf8(&raw[..head_end]).map_err(|_| "non-UTF-8 response headers")?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let status = match status_line.split(' ').collect::<Vec<_>>().as_slice() {
        [version, code, ..] if version.starts_with("HTTP/1.") => code.parse::<u16>().ok(),
        _ => None,
    }
    .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let mut body = &raw[head_end + 4..];
    let length = lines
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, value)| value.trim().parse::<usize>().ok());
    if let Some(length) = length {
        if body.len() < length {
            return Err(format!("body cut short: {} of {length} bytes", body.len()));
        }
        body = &body[..length];
    }
    Ok((status, body.to_vec()))
}

#[cfg(test)]
mod tests {
    use super::parse_response;

    #[test]
    fn responses() {
        let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA";
        assert_eq!(parse_response(raw), Ok((200, b"ok".to_vec())));
        let raw = b"HTTP/1.0 404 Not Found\r\n\r\nno such key";
        assert_eq!(parse_response(raw), Ok((404, b"no such key".to_vec())));
        assert!(parse_response(b"HTTP/1.1 200 OK\r\n").is_err());
        assert!(parse_response(b"SSH-2.0-OpenSSH\r\n\r\n").is_err());
        assert!(parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nshort").is_err());
    }
}
