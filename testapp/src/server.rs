//! `testapp serve`: listen on every port in `TESTAPP_PORTS`, one thread per
//! connection, and optionally exit after `TESTAPP_EXIT_AFTER` (for jobs).
//!
//! Start-up and exit are announced on stdout, because tests read container logs
//! to tell what happened.

use crate::config::Config;
use crate::http::{read_request, BadRequest, Response};
use crate::routes::App;
use crate::signals;
use std::io::{BufReader, BufWriter};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

/// A client gets this long to send its request.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

pub fn run() -> i32 {
    signals::exit_on_termination();
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("testapp: {e}");
            return 2;
        }
    };
    // Create the data directory up front (a volume mount point usually
    // exists already); failing is not fatal, `PUT /kv` will report it.
    if let Err(e) = std::fs::create_dir_all(&config.data_dir) {
        eprintln!("testapp: warning: cannot create {}: {e}", config.data_dir.display());
    }

    let mut listeners = Vec::new();
    for &port in &config.ports {
        match TcpListener::bind(("0.0.0.0", port)) {
            Ok(listener) => listeners.push(listener),
            Err(e) => {
                eprintln!("testapp: cannot listen on 0.0.0.0:{port}: {e}");
                return 1;
            }
        }
    }
    let exit_after = config.exit_after;
    let exit_code = config.exit_code;
    let app = Arc::new(App::new(config));
    let ports: Vec<String> = app.config.ports.iter().map(|p| format!("0.0.0.0:{p}")).collect();
    println!(
        "testapp: serving on {} (host {}, pid {}, healthy after {:?})",
        ports.join(", "),
        app.hostname,
        std::process::id(),
        app.config.start_delay
    );

    for listener in listeners {
        let app = Arc::clone(&app);
        thread::spawn(move || accept_loop(listener, app));
    }

    match exit_after {
        Some(delay) => {
            thread::sleep(delay);
            println!("testapp: TESTAPP_EXIT_AFTER={delay:?} elapsed, exiting with code {exit_code}");
            exit_code
        }
        None => loop {
            thread::park();
        },
    }
}

fn accept_loop(listener: TcpListener, app: Arc<App>) {
    for stream in listener.incoming() {
        match stream {
            Ok(stream) => {
                let app = Arc::clone(&app);
                thread::spawn(move || serve_connection(stream, &app));
            }
            // E.g. EMFILE; keep accepting rather than going deaf.
            Err(e) => {
                eprintln!("testapp: accept: {e}");
                thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

/// Answers the one request of a connection (we always close after answering).
fn serve_connection(stream: TcpStream, app: &App) {
    let _ = stream.set_read_timeout(Some(READ_TIMEOUT));
    let Ok(write_half) = stream.try_clone() else { return };
    let response = match read_request(&mut BufReader::new(stream)) {
        Ok(Some(request)) => {
            let mut response = app.handle(&request);
            if request.method == "HEAD" {
                response.body.clear();
            }
            response
        }
        Ok(None) | Err(BadRequest::Io(_)) => return,
        Err(bad) => Response::text(bad.status(), format!("{bad}\n")),
    };
    let _ = response.write_to(&mut BufWriter::new(write_half));
}
