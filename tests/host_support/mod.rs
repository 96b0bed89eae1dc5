//! Shared by the test binaries that run `swarmctl` against this machine's own Docker engine
//! on the host target (`deploy_docker`, `rollout_docker`, `compose_parity`): the test images,
//! the binary, and [`Stack`], one stack folder and state folder per test, taken down when
//! the test ends, pass or fail.
//!
//! Each binary includes it with `mod host_support;` and uses what it needs; the rest would
//! be dead code in that binary, hence the `allow` below (as in `swarm_support`).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Once;

pub const BINARY: &str = env!("CARGO_BIN_EXE_swarmctl");

/// The repository root (the example stacks, the test corpus, the image factory).
pub fn repository() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Builds the test images once per run (cached by tag: a second run takes about a second).
pub fn images() {
    static BUILD: Once = Once::new();
    BUILD.call_once(|| {
        let status = Command::new("bash").arg("tests/images/build.sh").current_dir(repository()).status().expect("run tests/images/build.sh");
        assert!(status.success(), "building the test images failed");
    });
}

/// `docker ARGS…`, its stdout whatever the exit code (a check reads an empty answer).
pub fn docker(args: &[&str]) -> String {
    let out = Command::new("docker").args(args).output().expect("docker");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// stdout then stderr, for assertions and their messages.
pub fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// A free TCP port on loopback, for host ports that must not collide with anything running.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A stack of one test: its file `stack.yaml` (with `NAME` replaced by the stack's name) in a
/// folder of its own, and its own `SWARMCTL_STATE_DIR`, so tests run side by side. `Drop` runs
/// `down --volumes`, so no container, network or volume outlives the test.
pub struct Stack {
    pub name: String,
    pub dir: tempfile::TempDir,
    pub state: tempfile::TempDir,
}

impl Stack {
    /// A stack with `yaml` as its file; whatever an earlier, interrupted run of the same name
    /// left is taken down first.
    pub fn new(name: &str, yaml: &str) -> Stack {
        let stack = Stack::empty(name);
        stack.write(yaml);
        stack.run(&["down", "--volumes"]);
        stack
    }

    /// A stack whose file the test writes later, with [`Stack::write`].
    pub fn empty(name: &str) -> Stack {
        images();
        Stack { name: name.into(), dir: tempfile::tempdir().unwrap(), state: tempfile::tempdir().unwrap() }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn write(&self, yaml: &str) {
        std::fs::write(self.path().join("stack.yaml"), yaml.replace("NAME", &self.name)).unwrap();
    }

    /// `swarmctl VERB <folder> ARGS… --target host`, not yet run (to spawn it, or to add
    /// `DOCKER_HOST`).
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(BINARY);
        command.arg(args[0]).arg(self.path()).args(&args[1..]).args(["--target", "host"]);
        command.env("SWARMCTL_STATE_DIR", self.state.path()).env("NO_COLOR", "1");
        command
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run swarmctl")
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        let _ = self.run(&["down", "--volumes"]);
    }
}
