//! The `swarmctl` binary: parses the command line and maps results to documented exit codes.

mod cli;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    // Loading and planning a large stack use every core (rayon); this thread is one of them, so
    // its work and its memory are shared with the other, not parked beside them.
    let _ = rayon::ThreadPoolBuilder::new().use_current_thread().build_global();
    cli::run()
}
