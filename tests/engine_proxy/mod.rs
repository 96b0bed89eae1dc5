//! A stand-in for the Docker engine's socket, between swarmctl and the real engine: it forwards
//! every HTTP request unchanged and counts them, and on demand it kills the process that sends
//! the n-th request before forwarding it (a crash at that exact point of a deploy), or goes
//! away as a restarting engine does. Nothing in swarmctl knows it is there.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::Shutdown;
use std::os::fd::AsRawFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub struct EngineProxy {
    dir: tempfile::TempDir,
    shared: Arc<Shared>,
}

struct Shared {
    upstream: PathBuf,
    requests: AtomicUsize,
    /// Requests that change something (not GET or HEAD), counted for [`EngineProxy::kill_before_mutation`].
    mutations: AtomicUsize,
    /// Kill the sender of this mutation (1-based); 0: never.
    kill_at_mutation: AtomicUsize,
    /// Kill the sender of this request (1-based); 0: never.
    kill_at: AtomicUsize,
    /// The process that was killed, if any.
    killed: Mutex<Option<i32>>,
    gone: AtomicBool,
    open: Mutex<Vec<UnixStream>>,
}

impl EngineProxy {
    /// Listens on a fresh socket and forwards to the machine's engine.
    pub fn start() -> EngineProxy {
        let upstream = std::env::var("DOCKER_HOST")
            .ok()
            .and_then(|host| host.strip_prefix("unix://").map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from("/var/run/docker.sock"));
        EngineProxy::to(upstream)
    }

    /// Listens on a fresh socket and forwards to the engine at the Unix socket `upstream`.
    pub fn to(upstream: PathBuf) -> EngineProxy {
        let dir = tempfile::tempdir().expect("proxy dir");
        let listener = UnixListener::bind(dir.path().join("docker.sock")).expect("bind proxy socket");
        listener.set_nonblocking(true).expect("non-blocking listener");
        let shared = Arc::new(Shared {
            upstream,
            requests: AtomicUsize::new(0),
            mutations: AtomicUsize::new(0),
            kill_at_mutation: AtomicUsize::new(0),
            kill_at: AtomicUsize::new(0),
            killed: Mutex::new(None),
            gone: AtomicBool::new(false),
            open: Mutex::new(Vec::new()),
        });
        let accepting = shared.clone();
        std::thread::spawn(move || accept(listener, accepting));
        EngineProxy { dir, shared }
    }

    /// The `DOCKER_HOST` that reaches the engine through the proxy.
    pub fn host(&self) -> String {
        format!("unix://{}", self.dir.path().join("docker.sock").display())
    }

    /// Requests forwarded or refused since the last [`EngineProxy::reset`].
    pub fn requests(&self) -> usize {
        self.shared.requests.load(Ordering::SeqCst)
    }

    /// Requests that changed something (not GET or HEAD) since the last reset.
    pub fn mutations(&self) -> usize {
        self.shared.mutations.load(Ordering::SeqCst)
    }

    /// SIGKILLs whoever sends the `n`-th request that would change something, before it reaches
    /// the engine: a crash right after the previous change.
    pub fn kill_before_mutation(&self, n: usize) {
        self.shared.kill_at_mutation.store(n, Ordering::SeqCst);
    }

    /// Counts from zero again and disarms.
    pub fn reset(&self) {
        self.shared.requests.store(0, Ordering::SeqCst);
        self.shared.mutations.store(0, Ordering::SeqCst);
        self.shared.kill_at_mutation.store(0, Ordering::SeqCst);
        self.shared.kill_at.store(0, Ordering::SeqCst);
        *self.shared.killed.lock().unwrap() = None;
    }

    /// SIGKILLs whoever sends request number `n` (counting from 1), before it reaches the engine.
    pub fn kill_sender_of(&self, n: usize) {
        self.shared.kill_at.store(n, Ordering::SeqCst);
    }

    /// The process the proxy killed, if it did.
    pub fn killed(&self) -> Option<i32> {
        *self.shared.killed.lock().unwrap()
    }

    /// The engine goes away: every open connection is cut and new ones are refused.
    pub fn go_away(&self) {
        self.shared.gone.store(true, Ordering::SeqCst);
        for stream in self.shared.open.lock().unwrap().drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
        let _ = std::fs::remove_file(self.dir.path().join("docker.sock"));
    }
}

impl Drop for EngineProxy {
    fn drop(&mut self) {
        self.go_away();
    }
}

fn accept(listener: UnixListener, shared: Arc<Shared>) {
    while !shared.gone.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((client, _)) => {
                let _ = client.set_nonblocking(false);
                let Ok(engine) = UnixStream::connect(&shared.upstream) else { continue };
                {
                    let mut open = shared.open.lock().unwrap();
                    open.extend(client.try_clone().ok());
                    open.extend(engine.try_clone().ok());
                }
                let (client_reader, engine_writer) = (client.try_clone().expect("clone"), engine.try_clone().expect("clone"));
                let forwarding = shared.clone();
                std::thread::spawn(move || forward_requests(client_reader, engine_writer, forwarding));
                std::thread::spawn(move || {
                    let (mut engine, mut client) = (engine, client);
                    let _ = std::io::copy(&mut engine, &mut client);
                    let _ = client.shutdown(Shutdown::Write);
                });
            }
            Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => std::thread::sleep(Duration::from_millis(5)),
            Err(_) => return,
        }
    }
}

/// Client to engine, one HTTP/1.1 request at a time: head, then the body its framing says.
fn forward_requests(client: UnixStream, mut engine: UnixStream, shared: Arc<Shared>) {
    let sender = peer_pid(&client);
    let mut reader = BufReader::new(client);
    loop {
        let mut head = Vec::new();
        let mut content_length = 0usize;
        let mut chunked = false;
        loop {
            let mut line = String::new();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            let lower = line.to_ascii_lowercase();
            if let Some(value) = lower.strip_prefix("content-length:") {
                content_length = value.trim().parse().unwrap_or(0);
            }
            if lower.starts_with("transfer-encoding:") && lower.contains("chunked") {
                chunked = true;
            }
            head.extend_from_slice(line.as_bytes());
            if line == "\r\n" {
                break;
            }
        }
        let number = shared.requests.fetch_add(1, Ordering::SeqCst) + 1;
        let mutation = !(head.starts_with(b"GET ") || head.starts_with(b"HEAD "));
        let mutation_number = if mutation { shared.mutations.fetch_add(1, Ordering::SeqCst) + 1 } else { 0 };
        let kill = number == shared.kill_at.load(Ordering::SeqCst) || (mutation && mutation_number == shared.kill_at_mutation.load(Ordering::SeqCst));
        if kill {
            if let Some(pid) = sender {
                // Said before it is done: the test may see the process gone at once.
                *shared.killed.lock().unwrap() = Some(pid);
                // SAFETY: sending a signal has no memory-safety preconditions.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
            let _ = reader.get_ref().shutdown(Shutdown::Both);
            let _ = engine.shutdown(Shutdown::Both);
            return;
        }
        if engine.write_all(&head).is_err() {
            return;
        }
        let copied = if chunked { copy_chunked(&mut reader, &mut engine) } else { copy_exactly(&mut reader, &mut engine, content_length) };
        if copied.is_err() {
            return;
        }
    }
}

fn copy_exactly(from: &mut impl Read, to: &mut impl Write, length: usize) -> std::io::Result<()> {
    let copied = std::io::copy(&mut from.take(length as u64), to)?;
    if copied as usize == length { Ok(()) } else { Err(std::io::ErrorKind::UnexpectedEof.into()) }
}

fn copy_chunked(from: &mut BufReader<UnixStream>, to: &mut UnixStream) -> std::io::Result<()> {
    loop {
        let mut size_line = String::new();
        from.read_line(&mut size_line)?;
        to.write_all(size_line.as_bytes())?;
        let size = usize::from_str_radix(size_line.trim().split(';').next().unwrap_or("0"), 16).unwrap_or(0);
        if size == 0 {
            // Trailers, up to the empty line.
            loop {
                let mut line = String::new();
                from.read_line(&mut line)?;
                to.write_all(line.as_bytes())?;
                if line == "\r\n" || line.is_empty() {
                    return Ok(());
                }
            }
        }
        copy_exactly(from, to, size + 2)?;
    }
}

/// The process on the other end of a Unix socket.
fn peer_pid(stream: &UnixStream) -> Option<i32> {
    let mut credentials = libc::ucred { pid: 0, uid: 0, gid: 0 };
    let mut length = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `length` bytes into `credentials`, a ucred.
    let result = unsafe {
        libc::getsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut credentials as *mut libc::ucred).cast(),
            &mut length,
        )
    };
    (result == 0 && credentials.pid > 0).then_some(credentials.pid)
}
