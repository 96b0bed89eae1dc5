//! Exit promptly on SIGTERM and SIGINT.
//!
//! In a container the server is PID 1, and the kernel drops signals to PID 1
//! that have no handler installed: without this, `docker stop` would wait its
//! full grace period and then SIGKILL us (exit 137). Tests of rolling updates
//! need a stop to be quick and clean (exit 0).
//!
//! std has no signal API, but it links the C library anyway, so we declare the
//! three functions we need ourselves instead of adding the `libc` crate. The
//! handler only calls async-signal-safe functions (`write`, `_exit`).

use std::os::raw::{c_int, c_void};

// Same numbers on every Linux architecture.
const SIGINT: c_int = 2;
const SIGTERM: c_int = 15;

extern "C" {
    fn signal(signum: c_int, handler: extern "C" fn(c_int)) -> usize;
    fn write(fd: c_int, buf: *const c_void, count: usize) -> isize;
    fn _exit(status: c_int) -> !;
}

extern "C" fn on_signal(signum: c_int) {
    let message: &[u8] = if signum == SIGTERM {
        b"testapp: got SIGTERM, exiting with code 0\n"
    } else {
        b"testapp: got SIGINT, exiting with code 0\n"
    };
    // SAFETY: write(2) and _exit(2) are async-signal-safe; the buffer is static.
    unsafe {
        write(1, message.as_ptr().cast(), message.len());
        _exit(0);
    }
}

/// Installs the handler for SIGTERM and SIGINT.
pub fn exit_on_termination() {
    // SAFETY: `on_signal` has the C signature signal(2) expects and is safe to run at any time.
    unsafe {
        signal(SIGTERM, on_signal);
        signal(SIGINT, on_signal);
    }
}
