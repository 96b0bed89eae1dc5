//! `swarmctl-testapp`: the one program our integration tests run in containers.
//!
//! There is no image registry on the machines we test on, so instead of pulling
//! nginx, curl and friends we ship this small, std-only binary. It is a server
//! (`serve`: health endpoint, key/value store on a volume, env and file
//! inspection) and its own client (`check`, `tcp`, `get`, `put`), so a
//! healthcheck or a test probe never needs a tool the image lacks.
//!
//! It has no dependencies so that it builds in seconds as part of the image
//! factory (`tests/images/build.sh`). See `testapp/README.md` for the interface.

mod client;
mod config;
mod duration;
mod http;
mod kv;
mod routes;
mod server;
mod signals;
mod url;

use std::process::exit;

const USAGE: &str = "\
usage: testapp [serve]              HTTP server on $TESTAPP_PORTS (default 8080)
       testapp check <http-url>     exit 0 if GET answers 2xx within 2 s, else 1
       testapp tcp <host:port>      exit 0 if a TCP connect succeeds within 2 s, else 1
       testapp get <http-url>       print the body; exit 1 on non-2xx, 2 if unreachable
       testapp put <http-url> <value>
";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let code = match args.as_slice() {
        [] | ["serve"] => server::run(),
        ["check", url] => client::check(url),
        ["tcp", addr] => client::tcp(addr),
        ["get", url] => client::get(url),
        ["put", url, value] => client::put(url, value),
        ["help" | "-h" | "--help"] => {
            print!("{USAGE}");
            0
        }
        _ => {
            eprint!("testapp: bad arguments {args:?}\n{USAGE}");
            2
        }
    };
    exit(code);
}
