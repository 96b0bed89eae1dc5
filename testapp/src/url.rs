//! Parsing the addresses given to the client modes: `http://host:port/path`
//! and `host:port`.
//!
//! Only plain `http://` exists in our test networks, so that is all we accept;
//! a typo such as `https://` fails loudly instead of hanging on a TLS port.

/// A parsed `http://` URL.
#[derive(Debug, PartialEq)]
pub struct HttpUrl {
    /// Host name or address to resolve (IPv6 without its brackets).
    pub host: String,
    pub port: u16,
    /// `host[:port]` as written, for the `Host:` header.
    pub authority: String,
    /// Path and query, at least `/`.
    pub path: String,
}

pub fn parse_http_url(text: &str) -> Result<HttpUrl, String> {
    let rest = text
        .strip_prefix("http://")
        .ok_or_else(|| format!("{text:?}: only http:// URLs are supported"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let (host, port) = split_host_port(authority, Some(80))?;
    Ok(HttpUrl { host, port, authority: authority.to_string(), path: path.to_string() })
}

/// Splits `host:port`, `[v6]:port` (and, with a default port, `host` / `[v6]`).
pub fn split_host_port(text: &str, default_port: Option<u16>) -> Result<(String, u16), String> {
    let bad = || format!("{text:?}: expected host:port");
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or_else(bad)?;
        match after {
            "" => (host, None),
            _ => (host, Some(after.strip_prefix(':').ok_or_else(bad)?)),
        }
    } else {
        match text.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (text, None),
        }
    };
    if host.is_empty() {
        return Err(bad());
    }
    let port = match (port, default_port) {
        (Some(port), _) => port.parse().map_err(|_| bad())?,
        (None, Some(default)) => default,
        (None, None) => return Err(bad()),
    };
    Ok((host.to_string(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let url = parse_http_url("http://web:8080/health?x=1").unwrap();
        assert_eq!(
            url,
            HttpUrl { host: "web".into(), port: 8080, authority: "web:8080".into(), path: "/health?x=1".into() }
        );
        let url = parse_http_url("http://example").unwrap();
        assert_eq!((url.port, url.path.as_str()), (80, "/"));
        let url = parse_http_url("http://[::1]:81/kv/a").unwrap();
        assert_eq!((url.host.as_str(), url.port), ("::1", 81));
        assert!(parse_http_url("https://web/").is_err());
        assert!(parse_http_url("http://:80/").is_err());
        assert!(parse_http_url("http://web:http/").is_err());
    }

    #[test]
    fn host_ports() {
        assert_eq!(split_host_port("db:5432", None), Ok(("db".into(), 5432)));
        assert_eq!(split_host_port("[::1]:6379", None), Ok(("::1".into(), 6379)));
        assert!(split_host_port("db", None).is_err());
        assert!(split_host_port("db:99999", None).is_err());
    }
}
