//! Just enough HTTP/1.1 for the server side: read one request, write one response.
//!
//! Every response carries `Connection: close`, so there is no keep-alive or
//! pipelining to get wrong; our clients (the `check`/`get`/`put` modes,
//! HAProxy checks, tests) all open one connection per request anyway.
//! Bodies need a `Content-Length`; chunked uploads are refused with 411.

use std::io::{self, BufRead, Read, Write};

/// Longest request line or header line we accept.
const MAX_LINE: usize = 8 * 1024;
/// Most headers in one request.
const MAX_HEADERS: usize = 100;
/// Largest request body (a KV value or so).
pub const MAX_BODY: usize = 16 * 1024 * 1024;

#[derive(Debug, PartialEq)]
pub struct Request {
    pub method: String,
    /// The path, percent-decoded, without the query string.
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// Why a request could not be read; each but `Io` maps to the status we answer with.
#[derive(Debug)]
pub enum BadRequest {
    /// The connection failed or timed out: nobody to answer.
    Io(io::Error),
    /// Malformed request: 400.
    Malformed(String),
    /// Body without Content-Length (e.g. chunked): 411.
    LengthRequired,
    /// Body or line too long: 413.
    TooLarge,
}

impl BadRequest {
    pub fn status(&self) -> u16 {
        match self {
            BadRequest::Io(_) => 400,
            BadRequest::Malformed(_) => 400,
            BadRequest::LengthRequired => 411,
            BadRequest::TooLarge => 413,
        }
    }
}

impl std::fmt::Display for BadRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BadRequest::Io(e) => write!(f, "connection error: {e}"),
            BadRequest::Malformed(why) => write!(f, "bad request: {why}"),
            BadRequest::LengthRequired => f.write_str("a body needs Content-Length (chunked is not supported)"),
            BadRequest::TooLarge => f.write_str("request too large"),
        }
    }
}

impl From<io::Error> for BadRequest {
    fn from(err: io::Error) -> Self {
        BadRequest::Io(err)
    }
}

impl Request {
    /// A header's value, case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Reads one request. `Ok(None)` means the peer closed before sending
/// anything (TCP health checks such as `testapp tcp` do that).
pub fn read_request<R: BufRead>(reader: &mut R) -> Result<Option<Request>, BadRequest> {
    let Some(line) = read_line(reader)? else {
        return Ok(None);
    };
    let mut parts = line.split(' ');
    let (method, target, version) = match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(m), Some(t), Some(v), None) if !m.is_empty() && !t.is_empty() => (m, t, v),
        _ => return Err(BadRequest::Malformed(format!("bad request line {line:?}"))),
    };
    if !version.starts_with("HTTP/1.") {
        return Err(BadRequest::Malformed(format!("unsupported version {version:?}")));
    }
    let raw_path = target.split('?').next().unwrap_or("");
    let Some(path) = percent_decode(raw_path) else {
        return Err(BadRequest::Malformed(format!("bad escape in {raw_path:?}")));
    };

    let mut headers = Vec::new();
    loop {
        let Some(line) = read_line(reader)? else {
            return Err(BadRequest::Malformed("headers cut short".into()));
        };
        if line.is_empty() {
            break;
        }
        if headers.len() == MAX_HEADERS {
            return Err(BadRequest::TooLarge);
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(BadRequest::Malformed(format!("bad header {line:?}")));
        };
        headers.push((name.trim().to_string(), value.trim().to_string()));
    }

    let mut request = Request { method: method.to_string(), path, headers, body: Vec::new() };
    if request.header("transfer-encoding").is_some() {
        return Err(BadRequest::LengthRequired);
    }
    if let Some(length) = request.header("content-length") {
        let Ok(length) = length.parse::<usize>() else {
            return Err(BadRequest::Malformed(format!("bad content-length {length:?}")));
        };
        if length > MAX_BODY {
            return Err(BadRequest::TooLarge);
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body)?;
        request.body = body;
    }
    Ok(Some(request))
}

/// One CRLF- (or LF-) terminated line, bounded by [`MAX_LINE`].
fn read_line<R: BufRead>(reader: &mut R) -> Result<Option<String>, BadRequest> {
    let mut buf = Vec::new();
    let n = reader.take(MAX_LINE as u64 + 1).read_until(b'\n', &mut buf)?;
    if n == 0 {
        return Ok(None);
    }
    if !buf.ends_with(b"\n") {
        return Err(if buf.len() > MAX_LINE {
            BadRequest::TooLarge
        } else {
            BadRequest::Malformed("line cut short".into())
        });
    }
    buf.pop();
    if buf.ends_with(b"\r") {
        buf.pop();
    }
    String::from_utf8(buf)
        .map(Some)
        .map_err(|_| BadRequest::Malformed("non-UTF-8 header".into()))
}

/// Decodes `%XX` escapes; `None` if an escape is broken or the result is not UTF-8.
pub fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// A response to send: status, content type and body.
#[derive(Debug, PartialEq)]
pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
}

impl Response {
    pub fn text(status: u16, body: impl Into<String>) -> Response {
        Response { status, content_type: "text/plain; charset=utf-8", body: body.into().into_bytes() }
    }

    pub fn bytes(status: u16, body: Vec<u8>) -> Response {
        Response { status, content_type: "application/octet-stream", body }
    }

    pub fn json(status: u16, body: String) -> Response {
        Response { status, content_type: "application/json", body: body.into_bytes() }
    }

    pub fn write_to<W: Write>(&self, out: &mut W) -> io::Result<()> {
        write!(
            out,
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            self.status,
            reason(self.status),
            self.content_type,
            self.body.len()
        )?;
        out.write_all(&self.body)?;
        out.flush()
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        204 => "No Content",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        411 => "Length Required",
        413 => "Payload Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &str) -> Result<Option<Request>, BadRequest> {
        read_request(&mut raw.as_bytes())
    }

    #[test]
    fn simple_get() {
        let req = parse("GET /health HTTP/1.1\r\nHost: x\r\n\r\n").unwrap().unwrap();
        assert_eq!(req.method, "GET");
        assert_eq!(req.path, "/health");
        assert_eq!(req.header("HOST"), Some("x"));
        assert!(req.body.is_empty());
    }

    #[test]
    fn put_with_body_and_bare_lf() {
        let req = parse("PUT /kv/a HTTP/1.0\nContent-Length: 5\n\nhello and more").unwrap().unwrap();
        assert_eq!(req.method, "PUT");
        assert_eq!(req.path, "/kv/a");
        assert_eq!(req.body, b"hello");
    }

    #[test]
    fn query_is_dropped_and_escapes_decoded() {
        let req = parse("GET /file/etc/my%20file?x=1 HTTP/1.1\r\n\r\n").unwrap().unwrap();
        assert_eq!(req.path, "/file/etc/my file");
    }

    #[test]
    fn empty_connection_is_not_an_error() {
        assert!(matches!(parse(""), Ok(None)));
    }

    #[test]
    fn malformed_requests() {
        assert!(matches!(parse("GET\r\n\r\n"), Err(BadRequest::Malformed(_))));
        assert!(matches!(parse("GET / HTTP/2\r\n\r\n"), Err(BadRequest::Malformed(_))));
        assert!(matches!(parse("GET / HTTP/1.1\r\nnocolon\r\n\r\n"), Err(BadRequest::Malformed(_))));
        assert!(matches!(parse("GET / HTTP/1.1\r\nHost: x\r\n"), Err(BadRequest::Malformed(_))));
        assert!(matches!(parse("GET /%zz HTTP/1.1\r\n\r\n"), Err(BadRequest::Malformed(_))));
        assert!(matches!(
            parse("PUT /kv/a HTTP/1.1\r\nContent-Length: x\r\n\r\n"),
            Err(BadRequest::Malformed(_))
        ));
    }

    #[test]
    fn chunked_and_huge_bodies_are_refused() {
        let chunked = "PUT /kv/a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert!(matches!(parse(chunked), Err(BadRequest::LengthRequired)));
        let huge = format!("PUT /kv/a HTTP/1.1\r\nContent-Length: {}\r\n\r\n", MAX_BODY + 1);
        assert!(matches!(parse(&huge), Err(BadRequest::TooLarge)));
        let long_line = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(MAX_LINE));
        assert!(matches!(parse(&long_line), Err(BadRequest::TooLarge)));
    }

    #[test]
    fn response_format() {
        let mut out = Vec::new();
        Response::text(200, "ok").write_to(&mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
        );
    }
}
