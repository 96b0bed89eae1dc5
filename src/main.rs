//! The `swarmctl` binary: parses the command line and maps results to documented exit codes.

mod cli;

fn main() -> std::process::ExitCode {
    cli::run()
}
