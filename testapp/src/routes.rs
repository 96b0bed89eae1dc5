//! What each URL answers. Pure request → response, no sockets, so it is unit-tested.
//!
//! | route               | answer                                                  |
//! |---------------------|---------------------------------------------------------|
//! | `GET /`             | JSON: hostname, ports, pid, uptime                      |
//! | `GET /health`       | 200 `ok` once healthy, else 503                         |
//! | `GET/PUT /kv/<key>` | the stored value / store the body (durably)             |
//! | `GET /env/<NAME>`   | the environment variable, or 404                        |
//! | `GET /file/<path>`  | the file at `/<path>` (a directory: its entry names)    |

use crate::config::Config;
use crate::http::{Request, Response};
use crate::kv::{valid_key, Store};
use std::io;
use std::time::Instant;

pub struct App {
    pub config: Config,
    pub started: Instant,
    pub hostname: String,
    pub store: Store,
}

impl App {
    pub fn new(config: Config) -> App {
        let store = Store::new(config.data_dir.clone());
        App { config, started: Instant::now(), hostname: hostname(), store }
    }

    pub fn handle(&self, request: &Request) -> Response {
        let method = request.method.as_str();
        let path = request.path.as_str();
        if let Some(key) = path.strip_prefix("/kv/") {
            return match method {
                "GET" => self.kv_get(key),
                "PUT" | "POST" => self.kv_put(key, &request.body),
                _ => Response::text(405, "use GET or PUT\n"),
            };
        }
        if method != "GET" && method != "HEAD" {
            return Response::text(405, "only GET here\n");
        }
        if path == "/" {
            self.info()
        } else if path == "/health" {
            self.health()
        } else if let Some(name) = path.strip_prefix("/env/") {
            match std::env::var_os(name) {
                Some(value) => Response::text(200, value.to_string_lossy()),
                None => Response::text(404, format!("{name} is not set\n")),
            }
        } else if let Some(file) = path.strip_prefix("/file") {
            read_path(file)
        } else {
            Response::text(404, format!("no route for {path}\n"))
        }
    }

    /// 503 while `TESTAPP_START_DELAY` runs, after `TESTAPP_UNHEALTHY_AFTER`,
    /// and always with `TESTAPP_UNHEALTHY=1`.
    fn health(&self) -> Response {
        let up = self.started.elapsed();
        if self.config.unhealthy {
            Response::text(503, "unhealthy (TESTAPP_UNHEALTHY)\n")
        } else if up < self.config.start_delay {
            Response::text(503, "starting (TESTAPP_START_DELAY)\n")
        } else if self.config.unhealthy_after.is_some_and(|after| up >= after) {
            Response::text(503, "unhealthy (TESTAPP_UNHEALTHY_AFTER)\n")
        } else {
            Response::text(200, "ok")
        }
    }

    fn info(&self) -> Response {
        let ports: Vec<String> = self.config.ports.iter().map(u16::to_string).collect();
        Response::json(
            200,
            format!(
                "{{\"hostname\":{},\"ports\":[{}],\"pid\":{},\"uptime_ms\":{}}}\n",
                json_string(&self.hostname),
                ports.join(","),
                std::process::id(),
                self.started.elapsed().as_millis()
            ),
        )
    }

    fn kv_get(&self, key: &str) -> Response {
        if !valid_key(key) {
            return Response::text(400, "bad key: use [A-Za-z0-9._-], not starting with '.'\n");
        }
        match self.store.get(key) {
            Ok(Some(value)) => Response::bytes(200, value),
            Ok(None) => Response::text(404, format!("no key {key}\n")),
            Err(e) => Response::text(500, format!("reading {key}: {e}\n")),
        }
    }

    fn kv_put(&self, key: &str, value: &[u8]) -> Response {
        if !valid_key(key) {
            return Response::text(400, "bad key: use [A-Za-z0-9._-], not starting with '.'\n");
        }
        match self.store.put(key, value) {
            Ok(()) => Response::text(200, "stored\n"),
            Err(e) => Response::text(500, format!("storing {key} in {}: {e}\n", self.store.dir().display())),
        }
    }
}

/// A file's content, or a directory's entry names one per line (sorted).
fn read_path(path: &str) -> Response {
    if !path.starts_with('/') {
        return Response::text(404, "use /file/<absolute path>\n");
    }
    let not_found = |e: &io::Error| e.kind() == io::ErrorKind::NotFound;
    match std::fs::read_dir(path) {
        Ok(entries) => {
            let mut names: Vec<String> =
                entries.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect();
            names.sort();
            let listing: String = names.into_iter().map(|n| n + "\n").collect();
            return Response::text(200, listing);
        }
        Err(e) if not_found(&e) => return Response::text(404, format!("{path}: no such file\n")),
        Err(_) => {} // Not a directory: read it as a file below.
    }
    match std::fs::read(path) {
        Ok(content) => Response::bytes(200, content),
        Err(e) if not_found(&e) => Response::text(404, format!("{path}: no such file\n")),
        Err(e) => Response::text(500, format!("{path}: {e}\n")),
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

fn json_string(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out + "\""
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use std::time::Duration;

    fn app(vars: &[(&str, &str)]) -> App {
        let vars: Vec<(String, String)> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        App::new(Config::from_lookup(|n| vars.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone())).unwrap())
    }

    fn call(app: &App, method: &str, path: &str, body: &str) -> (u16, String) {
        let request =
            Request { method: method.into(), path: path.into(), headers: vec![], body: body.as_bytes().to_vec() };
        let response = app.handle(&request);
        (response.status, String::from_utf8_lossy(&response.body).into_owned())
    }

    #[test]
    fn health_follows_the_start_delay() {
        assert_eq!(call(&app(&[]), "GET", "/health", ""), (200, "ok".into()));
        let mut slow = app(&[("TESTAPP_START_DELAY", "1h")]);
        assert_eq!(call(&slow, "GET", "/health", "").0, 503);
        slow.started -= Duration::from_secs(3601);
        assert_eq!(call(&slow, "GET", "/health", "").0, 200);
        assert_eq!(call(&app(&[("TESTAPP_UNHEALTHY", "1")]), "GET", "/health", "").0, 503);
        assert_eq!(call(&app(&[("TESTAPP_UNHEALTHY_AFTER", "0s")]), "GET", "/health", "").0, 503);
    }

    #[test]
    fn kv_round_trip() {
        let dir = std::env::temp_dir().join(format!("testapp-routes-{}", std::process::id()));
        let app = app(&[("TESTAPP_DATA", dir.to_str().unwrap())]);
        assert_eq!(call(&app, "GET", "/kv/a", "").0, 404);
        assert_eq!(call(&app, "PUT", "/kv/a", "hello").0, 200);
        assert_eq!(call(&app, "GET", "/kv/a", ""), (200, "hello".into()));
        assert_eq!(call(&app, "PUT", "/kv/../etc", "x").0, 400);
        assert_eq!(call(&app, "DELETE", "/kv/a", "").0, 405);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn env_file_and_info() {
        let app = app(&[("TESTAPP_PORTS", "8080,9090")]);
        assert_eq!(call(&app, "GET", "/env/PATH", "").0, 200);
        assert_eq!(call(&app, "GET", "/env/TESTAPP_SURELY_UNSET_VAR", "").0, 404);
        assert_eq!(call(&app, "GET", "/file/proc/self/status", "").0, 200);
        assert_eq!(call(&app, "GET", "/file/no/such/file", "").0, 404);
        let (status, listing) = call(&app, "GET", "/file/proc/self", "");
        assert!(status == 200 && listing.lines().any(|l| l == "status"));
        let (status, info) = call(&app, "GET", "/", "");
        assert!(status == 200 && info.contains("\"ports\":[8080,9090]"), "{info}");
        assert_eq!(call(&app, "GET", "/nope", "").0, 404);
        assert_eq!(json_string("a\"b\\\n"), "\"a\\\"b\\\\\\u000a\"");
    }
}
