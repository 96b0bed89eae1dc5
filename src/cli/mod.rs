//! The command line: clap definitions, and one small function per command that turns arguments
//! into options, calls the library, and prints. All printing happens here.

/// `println!`, `print!`, `eprintln!`, `eprint!` that survive a closed stream: with
/// `swarmctl deploy | head` the deploy goes on, and its exit code stays true, after the reader
/// has gone (the std macros panic on a broken pipe).
macro_rules! outln { ($($arg:tt)*) => {{ use std::io::Write as _; let _ = writeln!(std::io::stdout(), $($arg)*); }} }
macro_rules! out { ($($arg:tt)*) => {{ use std::io::Write as _; let _ = write!(std::io::stdout(), $($arg)*); }} }
macro_rules! errln { ($($arg:tt)*) => {{ use std::io::Write as _; let _ = writeln!(std::io::stderr(), $($arg)*); }} }
macro_rules! err { ($($arg:tt)*) => {{ use std::io::Write as _; let _ = write!(std::io::stderr(), $($arg)*); }} }

mod deploy;
mod inspect;
mod progress;

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;

/// Documented exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Done; for deploy: converged.
    Ok = 0,
    /// Deploy ran but did not converge.
    NotConverged = 1,
    /// Invalid input (stack, values, flags); nothing was changed.
    InvalidInput = 2,
    /// The engine failed or could not be reached.
    Engine = 3,
    /// Another deploy of this stack holds the lock.
    Locked = 4,
    /// Interrupted (Ctrl-C).
    Interrupted = 130,
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> ExitCode {
        ExitCode::from(exit as u8)
    }
}

#[derive(Debug, Parser)]
#[command(name = "swarmctl", version, about = "Deploy Compose stacks to one Docker host or a Swarm", long_about = None)]
#[command(after_help = "Exit codes: 0 ok/converged, 1 did not converge, 2 invalid input, 3 engine error, 4 locked by another deploy, 130 interrupted.")]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Load the stack and report every problem; changes nothing.
    Validate(StackArgs),
    /// Print the fully resolved stack as a Compose document (secrets redacted).
    Render {
        #[command(flatten)]
        stack: StackArgs,
        #[arg(long, short, value_enum, default_value = "yaml")]
        output: RenderFormat,
    },
    /// Print the dependency graph: waves and critical path, DOT or Mermaid.
    Graph {
        #[command(flatten)]
        stack: StackArgs,
        #[arg(long, short, value_enum, default_value = "text")]
        format: GraphFormat,
    },
    /// Show what deploy would change; changes nothing.
    Plan {
        #[command(flatten)]
        stack: StackArgs,
        #[command(flatten)]
        engine: deploy::EngineArgs,
        #[command(flatten)]
        deploy: deploy::DeployArgs,
        /// Plan for the hypothetical swarm nodes of a cluster file instead of an engine (none
        /// is contacted): will the stack fit, and where does each replica go.
        #[arg(long, value_name = "FILE", conflicts_with_all = ["target", "insecure"])]
        cluster: Option<PathBuf>,
    },
    /// Plan, apply in dependency order, wait until converged; exit 0 only if it converged.
    Deploy {
        #[command(flatten)]
        stack: StackArgs,
        #[command(flatten)]
        engine: deploy::EngineArgs,
        #[command(flatten)]
        deploy: deploy::DeployArgs,
    },
    /// Services, replicas, health and per-container state; exit 1 unless every replica is ready.
    Status {
        #[command(flatten)]
        stack: StackArgs,
        #[command(flatten)]
        engine: deploy::EngineArgs,
    },
    /// Put the whole stack back as an earlier revision had it (default: the one before the
    /// last), with the same rolling rules; recorded as a new revision.
    Rollback {
        #[command(flatten)]
        stack: StackArgs,
        /// The revision to go back to (see `history`).
        #[arg(long, value_name = "N")]
        to: Option<u32>,
        /// A secret's content, which history never keeps: KEY=FILE; repeatable. Needed only for
        /// a secret that must be created again and that the stack's files no longer hold.
        #[arg(long = "secret", value_name = "KEY=FILE")]
        secrets: Vec<String>,
        #[command(flatten)]
        engine: deploy::EngineArgs,
        #[command(flatten)]
        deploy: deploy::DeployArgs,
    },
    /// Revisions deployed so far, and what each changed.
    History {
        #[command(flatten)]
        stack: StackArgs,
        #[command(flatten)]
        engine: deploy::EngineArgs,
    },
    /// Remove the stack's containers and networks (and volumes with --volumes).
    Down {
        #[command(flatten)]
        stack: StackArgs,
        #[command(flatten)]
        engine: deploy::EngineArgs,
        #[command(flatten)]
        down: deploy::DownArgs,
    },
}

/// How a stack is named on the command line; every command that reads a stack takes these.
#[derive(Debug, Args, Clone)]
pub struct StackArgs {
    /// A stack directory, or a single compose file.
    pub stack: PathBuf,
    /// An overlay directory (values.yaml and <stack>.yaml patches); repeatable, applied in order.
    #[arg(long = "overlay", value_name = "DIR")]
    pub overlays: Vec<PathBuf>,
    /// A values file over the stack's values.yaml; repeatable.
    #[arg(long = "values", value_name = "FILE")]
    pub values: Vec<PathBuf>,
    /// Set a value: key.path=value; repeatable, highest precedence.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Enable services with this profile; repeatable.
    #[arg(long = "profile", value_name = "NAME")]
    pub profiles: Vec<String>,
    /// Stack name (default: top-level `name:`, else the directory name).
    #[arg(long)]
    pub name: Option<String>,
}

impl StackArgs {
    pub fn load_options(&self) -> swarmctl::spec::LoadOptions {
        swarmctl::spec::LoadOptions {
            path: self.stack.clone(),
            overlays: self.overlays.clone(),
            values_files: self.values.clone(),
            set: self.set.clone(),
            profiles: self.profiles.clone(),
            name: self.name.clone(),
        }
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum RenderFormat {
    Yaml,
    Json,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum GraphFormat {
    Text,
    Dot,
    Mermaid,
}

pub fn run() -> ExitCode {
    let cli = Cli::parse();
    let exit = match cli.command {
        Command::Plan { stack, engine, deploy, cluster: Some(cluster) } => deploy::plan_for_cluster(&stack, &cluster, &engine, &deploy).unwrap_or_else(|exit| exit),
        Command::Plan { stack, engine, deploy, cluster: None } => block_on(deploy::plan(&stack, &engine, &deploy)),
        Command::Deploy { stack, engine, deploy } => block_on(deploy::deploy(&stack, &engine, &deploy)),
        Command::Status { stack, engine } => block_on(deploy::status(&stack, &engine)),
        Command::Rollback { stack, to, secrets, engine, deploy } => block_on(deploy::rollback(&stack, to, &secrets, &engine, &deploy)),
        Command::History { stack, engine } => block_on(deploy::history(&stack, &engine)),
        Command::Down { stack, engine, down } => block_on(deploy::down(&stack, &engine, &down)),
        Command::Validate(stack) => inspect::validate(&stack),
        Command::Render { stack, output } => inspect::render(&stack, matches!(output, RenderFormat::Json)),
        Command::Graph { stack, format } => inspect::graph(&stack, match format {
            GraphFormat::Text => inspect::Drawing::Text,
            GraphFormat::Dot => inspect::Drawing::Dot,
            GraphFormat::Mermaid => inspect::Drawing::Mermaid,
        }),
    };
    exit.into()
}

/// Runs a command that talks to an engine. Commands that do not (validate, render, graph,
/// plan --cluster) start no runtime and no threads.
fn block_on(command: impl std::future::Future<Output = Result<Exit, Exit>>) -> Exit {
    match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime.block_on(command).unwrap_or_else(|exit| exit),
        Err(e) => {
            errln!("error: cannot start the async runtime: {e}");
            Exit::Engine
        }
    }
}
