//! Commands that talk to the engine: `plan`, `deploy`, `status`, `history`, `down`.

use super::inspect::load;
use super::progress::{Lines, Live};
use super::{Exit, StackArgs};
use std::io::IsTerminal;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use swarmctl::apply::{self, ApplyOptions, ApplyReport, StepOutcome};
use super::status::StackStatus;
use swarmctl::engine::{self, ConnectOptions, Engine, ObservedState};
use swarmctl::plan::host::{self, PlanOptions};
use swarmctl::plan::Plan;
use swarmctl::spec::{render, Loaded};
use swarmctl::store::{self, history, lock};

/// Flags for reaching the engine, shared by every engine command.
#[derive(Debug, clap::Args, Clone)]
pub struct EngineArgs {
    /// Where to deploy: `host` (containers) or `swarm`; default: detected.
    #[arg(long, value_enum, default_value = "auto")]
    pub target: Target,
    /// Allow plain TCP to a non-loopback DOCKER_HOST.
    #[arg(long)]
    pub insecure: bool,
    /// Print JSON instead of text.
    #[arg(long, value_enum, default_value = "text")]
    pub output: Output,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Target {
    Auto,
    Host,
    Swarm,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    Text,
    Json,
}

#[derive(Debug, clap::Args, Clone)]
pub struct DeployArgs {
    /// Longest wait for a replica to be running, healthy or complete.
    #[arg(long, default_value = "5m", value_parser = duration)]
    pub timeout: Duration,
    #[command(flatten)]
    pub lock: LockArgs,
    /// Concurrent engine calls.
    #[arg(long, default_value_t = 8)]
    pub parallel: usize,
}

/// One deploy or down of a stack at a time; the others wait this long, then exit 4.
#[derive(Debug, clap::Args, Clone)]
pub struct LockArgs {
    /// How long to wait for another deploy or down of this stack to finish.
    #[arg(long, default_value = "5m", value_parser = duration)]
    pub lock_timeout: Duration,
}

fn duration(text: &str) -> Result<Duration, String> {
    swarmctl::spec::schema::parse_duration(text)
}

type Shared = Arc<dyn Engine>;

async fn connect(args: &EngineArgs) -> Result<(Shared, String), Exit> {
    let mut options = ConnectOptions::from_environment(|name| std::env::var(name).ok());
    options.insecure = args.insecure;
    let docker = engine::connect(&options).await.map_err(|e| {
        eprintln!("error: {e}");
        Exit::Engine
    })?;
    let info = docker.info().await.map_err(|e| {
        eprintln!("error: {e}");
        Exit::Engine
    })?;
    match (args.target, info.swarm_manager) {
        (Target::Swarm, _) => {
            eprintln!("error: the swarm target is not available yet; use `--target host`");
            return Err(Exit::InvalidInput);
        }
        (Target::Auto, true) => {
            eprintln!("error: this engine is a swarm manager, and the swarm target is not available yet");
            eprintln!("  help: deploy plain containers to this engine with `--target host`");
            return Err(Exit::InvalidInput);
        }
        _ => {}
    }
    Ok((Arc::new(docker), info.id))
}

async fn observe(engine: &Shared, loaded: &Loaded) -> Result<ObservedState, Exit> {
    engine.observe(&loaded.stack.name, &host::candidate_names(&loaded.stack)).await.map_err(|e| {
        eprintln!("error: {e}");
        Exit::Engine
    })
}

fn make_plan(loaded: &Loaded, observed: &ObservedState, timeout: Duration) -> Result<Plan, Exit> {
    host::plan(&loaded.stack, &loaded.graph, observed, &PlanOptions { timeout }).map_err(|e| {
        eprint!("{e}");
        eprintln!("nothing was changed");
        Exit::InvalidInput
    })
}

fn print_plan(plan: &Plan, output: Output) {
    match output {
        Output::Json => println!("{}", serde_json::to_string_pretty(plan).unwrap_or_default()),
        Output::Text => print!("{plan}"),
    }
}

/// Before applying: the plan as text, or, when there is nothing to apply, the JSON document a
/// reader expects anyway. Whether there is work to do.
fn announce(plan: &Plan, output: Output) -> bool {
    match output {
        Output::Text => print!("{plan}"),
        Output::Json if plan.is_empty() => summarize(plan, &ApplyReport::default(), Output::Json, None),
        Output::Json => {}
    }
    !plan.is_empty()
}

pub async fn plan(stack: &StackArgs, engine_args: &EngineArgs, deploy: &DeployArgs) -> Result<Exit, Exit> {
    let loaded = load(stack)?;
    let (engine, _) = connect(engine_args).await?;
    let observed = observe(&engine, &loaded).await?;
    print_plan(&make_plan(&loaded, &observed, deploy.timeout)?, engine_args.output);
    Ok(Exit::Ok)
}

pub async fn deploy(stack: &StackArgs, engine_args: &EngineArgs, deploy: &DeployArgs) -> Result<Exit, Exit> {
    let loaded = load(stack)?;
    let (engine, engine_id) = connect(engine_args).await?;
    let state = state_dir(&engine_id, &loaded.stack.name)?;
    let name = loaded.stack.name.clone();
    let _lock = take_lock(&state, &name, &deploy.lock)?;
    let observed = observe(&engine, &loaded).await?;
    let plan = make_plan(&loaded, &observed, deploy.timeout)?;
    if !announce(&plan, engine_args.output) {
        return Ok(Exit::Ok);
    }
    let options = ApplyOptions {
        concurrency: deploy.parallel,
        kill_after_mutations: std::env::var("SWARMCTL_TEST_KILL_AFTER").ok().and_then(|k| k.parse().ok()),
        ..ApplyOptions::default()
    };
    let cancel = options.cancel.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("interrupted: letting in-flight calls finish, starting nothing new");
            cancel.store(true, Ordering::SeqCst);
        }
    });
    let mut plan = plan;
    let mut report = run(&plan, &engine, engine_args, &options).await;
    // Level-triggered: the engine may have moved while we worked (a killed deploy's last call
    // landing late, an object gone). Look again and converge, a bounded number of times.
    for _ in 0..2 {
        if report.interrupted || !report.only_races() {
            break;
        }
        let Ok(observed) = observe(&engine, &loaded).await else { break };
        let Ok(again) = make_plan(&loaded, &observed, deploy.timeout) else { break };
        if again.is_empty() {
            break;
        }
        eprintln!("the engine changed while deploying; planning again:");
        eprint!("{again}");
        report = run(&again, &engine, engine_args, &options).await;
        plan = again;
    }
    let result = if report.interrupted {
        "interrupted"
    } else if report.converged() {
        "converged"
    } else {
        "failed"
    };
    let failed = report.count(|o| matches!(o, StepOutcome::Failed { .. }));
    let document = render::document(&loaded);
    let revision = history::record(&state, result, plan.steps.len(), failed, report.seconds, document);
    summarize(&plan, &report, engine_args.output, revision.ok());
    Ok(if report.interrupted {
        Exit::Interrupted
    } else if report.converged() {
        Exit::Ok
    } else {
        Exit::NotConverged
    })
}

/// The stack's lock, waiting for its holder as long as `--lock-timeout` allows.
fn take_lock(state: &std::path::Path, name: &str, args: &LockArgs) -> Result<lock::DeployLock, Exit> {
    match lock::acquire(state, args.lock_timeout, |holder| eprintln!("waiting for another deploy of `{name}` ({holder})")) {
        Ok(lock) => Ok(lock),
        Err(lock::LockError::Busy { holder }) => {
            eprintln!("error: another deploy of `{name}` is running ({holder})");
            eprintln!("  help: wait for it, or pass a longer `--lock-timeout` (now {:?})", args.lock_timeout);
            Err(Exit::Locked)
        }
        Err(lock::LockError::Io(e)) => {
            eprintln!("error: cannot take the deploy lock in {}: {e}", state.display());
            Err(Exit::Engine)
        }
    }
}

fn state_dir(engine_id: &str, stack: &str) -> Result<std::path::PathBuf, Exit> {
    let root = store::state_root(|name| std::env::var(name).ok());
    store::stack_dir(&root, engine_id, stack).map_err(|e| {
        eprintln!("error: cannot use state directory {}: {e}", root.display());
        Exit::Engine
    })
}

async fn run(plan: &Plan, engine: &Shared, engine_args: &EngineArgs, options: &ApplyOptions) -> ApplyReport {
    if std::io::stderr().is_terminal() && engine_args.output == Output::Text {
        apply::apply(plan, engine.clone(), &Live::new(plan), options).await
    } else {
        apply::apply(plan, engine.clone(), &Lines::new(false), options).await
    }
}

fn summarize(plan: &Plan, report: &ApplyReport, output: Output, revision: Option<u32>) {
    if output == Output::Json {
        let json = serde_json::json!({ "plan": plan, "report": report, "revision": revision });
        println!("{}", serde_json::to_string_pretty(&json).unwrap_or_default());
        return;
    }
    let done = report.count(|o| matches!(o, StepOutcome::Done { .. }));
    let failed = report.count(|o| matches!(o, StepOutcome::Failed { .. }));
    let skipped = report.count(|o| matches!(o, StepOutcome::Skipped { .. }));
    let not_run = report.count(|o| matches!(o, StepOutcome::NotRun));
    let verdict = if report.interrupted {
        "interrupted"
    } else if report.converged() {
        "converged"
    } else {
        "did not converge"
    };
    let revision = revision.map(|r| format!(", revision {r}")).unwrap_or_default();
    println!("{verdict} in {:.1}s: {done} done, {failed} failed, {skipped} skipped, {not_run} not run{revision}", report.seconds);
}

/// The stack's name: loaded from its files when the argument is a path, else taken as a name.
fn stack_name(args: &StackArgs) -> Result<String, Exit> {
    if args.stack.exists() {
        return load(args).map(|l| l.stack.name);
    }
    Ok(args.name.clone().unwrap_or_else(|| args.stack.display().to_string()))
}

pub async fn status(args: &StackArgs, engine_args: &EngineArgs) -> Result<Exit, Exit> {
    let name = stack_name(args)?;
    let (engine, _) = connect(engine_args).await?;
    let observed = observe_named(&engine, &name).await?;
    let status = StackStatus::new(&name, &observed.containers);
    if engine_args.output == Output::Json {
        println!("{}", serde_json::to_string_pretty(&status).unwrap_or_default());
    } else {
        print!("{status}");
    }
    Ok(if status.all_ready() { Exit::Ok } else { Exit::NotConverged })
}

async fn observe_named(engine: &Shared, name: &str) -> Result<ObservedState, Exit> {
    engine.observe(name, &Default::default()).await.map_err(|e| {
        eprintln!("error: {e}");
        Exit::Engine
    })
}

pub async fn history(args: &StackArgs, engine_args: &EngineArgs) -> Result<Exit, Exit> {
    let name = stack_name(args)?;
    let (_, engine_id) = connect(engine_args).await?;
    let revisions = history::list(&state_dir(&engine_id, &name)?);
    if engine_args.output == Output::Json {
        println!("{}", serde_json::to_string_pretty(&revisions).unwrap_or_default());
        return Ok(Exit::Ok);
    }
    if revisions.is_empty() {
        println!("stack `{name}` has no revisions on this engine");
    }
    for r in &revisions {
        println!("revision {:<4} unix {}  {:<12} {} steps, {} failed, {:.1}s", r.number, r.unix_time, r.result, r.steps, r.failed_steps, r.seconds);
    }
    Ok(Exit::Ok)
}

/// Removes what the engine holds of the stack, under the same lock as deploy.
pub async fn down(args: &StackArgs, engine_args: &EngineArgs, volumes: bool, lock: &LockArgs) -> Result<Exit, Exit> {
    let name = stack_name(args)?;
    let (engine, engine_id) = connect(engine_args).await?;
    let _lock = take_lock(&state_dir(&engine_id, &name)?, &name, lock)?;
    let observed = observe_named(&engine, &name).await?;
    let plan = host::plan_down(&name, &observed, volumes);
    if !announce(&plan, engine_args.output) {
        return Ok(Exit::Ok);
    }
    let report = apply::apply(&plan, engine, &Lines::new(std::io::stderr().is_terminal()), &ApplyOptions::default()).await;
    summarize(&plan, &report, engine_args.output, None);
    Ok(if report.converged() { Exit::Ok } else { Exit::NotConverged })
}
