//! Commands that talk to the engine: `plan`, `deploy`, `status`, `history`, `down`. Each picks
//! the target, calls the library and prints what it hears.

use super::inspect::load;
use super::progress::{Lines, Live};
use super::{Exit, StackArgs};
use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use swarmctl::apply::{ApplyOptions, ApplyReport, Progress, StepOutcome};
use swarmctl::deploy::{self, DeployError, DeployOptions, Deployed, Reporter};
use swarmctl::engine::{self, ConnectOptions, HostEngine};
use swarmctl::plan::{Op, Plan, PlanOptions, Step};
use swarmctl::store::local::LocalStore;
use swarmctl::store::StoreError;
use swarmctl::target::host::HostTarget;
use swarmctl::target::swarm::SwarmTarget;
use swarmctl::target::Target;
use futures::StreamExt;
use swarmctl::diagnostics::Diagnostics;
use swarmctl::spec::source::Sources;
use tokio_util::sync::CancellationToken;

/// Flags for reaching the engine, shared by every engine command.
#[derive(Debug, clap::Args, Clone)]
pub struct EngineArgs {
    /// Where to deploy: `host` (containers) or `swarm`; default: detected.
    #[arg(long, value_enum, default_value = "auto")]
    pub target: TargetArg,
    /// Allow plain TCP to a non-loopback DOCKER_HOST.
    #[arg(long)]
    pub insecure: bool,
    /// Print JSON instead of text.
    #[arg(long, value_enum, default_value = "text")]
    pub output: Output,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TargetArg {
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
    /// How long each started replica must stay up, since its start, for the deploy to count as
    /// converged; `0s` skips the check.
    #[arg(long, default_value = "3s", value_parser = duration)]
    pub stable: Duration,
    #[command(flatten)]
    pub lock: LockArgs,
    /// Concurrent engine calls.
    #[arg(long, default_value_t = 8)]
    pub parallel: usize,
}

#[derive(Debug, clap::Args, Clone)]
pub struct DownArgs {
    /// Also delete the stack's volumes, anonymous ones included (data is lost).
    #[arg(long)]
    pub volumes: bool,
    /// Keep the stack's revision history (deleted by default, with the stack).
    #[arg(long)]
    pub keep_history: bool,
    #[command(flatten)]
    pub lock: LockArgs,
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

/// The target the engine and `--target` chose.
enum Chosen {
    Host(HostTarget),
    Swarm(SwarmTarget),
}

/// Runs one generic command body with whichever target was chosen.
macro_rules! with_target {
    ($chosen:expr, |$target:ident| $body:expr) => {
        match $chosen {
            Chosen::Host($target) => $body,
            Chosen::Swarm($target) => $body,
        }
    };
}

async fn connect(args: &EngineArgs) -> Result<Chosen, Exit> {
    let mut options = ConnectOptions::from_environment(|name| std::env::var(name).ok());
    options.insecure = args.insecure;
    let docker = engine::connect(&options).await.map_err(|e| {
        errln!("error: {e}");
        Exit::Engine
    })?;
    let info = docker.info().await.map_err(|e| {
        errln!("error: {e}");
        Exit::Engine
    })?;
    // Auto: a swarm manager gets services, any other engine containers.
    match (args.target, info.swarm_manager) {
        (TargetArg::Swarm, false) => {
            errln!("error: `--target swarm`, but the engine at {} is not a swarm manager", docker.host());
            errln!("  help: point DOCKER_HOST at a manager of the swarm, or deploy containers to this engine with `--target host`");
            Err(Exit::InvalidInput)
        }
        (TargetArg::Swarm, true) | (TargetArg::Auto, true) => Ok(Chosen::Swarm(SwarmTarget::new(Arc::new(docker)))),
        (TargetArg::Host, _) | (TargetArg::Auto, false) => {
            let store = LocalStore::new(&info.id, |name| std::env::var(name).ok());
            Ok(Chosen::Host(HostTarget { engine: Arc::new(docker), store }))
        }
    }
}

fn deploy_options(deploy: &DeployArgs) -> DeployOptions {
    DeployOptions {
        plan: PlanOptions { timeout: deploy.timeout, stable: deploy.stable },
        apply: ApplyOptions { concurrency: deploy.parallel, ..ApplyOptions::default() },
        lock_timeout: deploy.lock.lock_timeout,
    }
}

pub async fn plan(stack: &StackArgs, engine_args: &EngineArgs, deploy: &DeployArgs) -> Result<Exit, Exit> {
    let loaded = load(stack)?;
    with_target!(connect(engine_args).await?, |target| plan_on(&target, &loaded, engine_args, deploy).await)
}

async fn plan_on<T: Target>(target: &T, loaded: &swarmctl::spec::Loaded, engine_args: &EngineArgs, deploy: &DeployArgs) -> Result<Exit, Exit> {
    let observed = target.observe(&loaded.stack.name, Some(&loaded.stack)).await.map_err(engine_error)?;
    let plan = target.plan(&loaded.stack, &loaded.graph, &observed, &deploy_options(deploy).plan).map_err(|e| plan_error(&e, &loaded.sources))?;
    print_plan(&plan, target.name(), None, engine_args.output);
    Ok(Exit::Ok)
}

/// `plan --cluster FILE`: the swarm plan against the nodes of a cluster file, with no engine
/// anywhere — everything is created, and placement says whether and where it fits.
pub fn plan_for_cluster(stack: &StackArgs, path: &std::path::Path, engine_args: &EngineArgs, deploy: &DeployArgs) -> Result<Exit, Exit> {
    // The cluster file is read while the stack is.
    let (loaded, cluster) = rayon::join(|| load(stack), || swarmctl::spec::cluster::load(path));
    let swarmctl::spec::Loaded { stack, graph, document, sources, .. } = loaded?;
    // Planning needs the model only: the document's memory is reused rather than new pages
    // touched (on a VM, first-touched memory costs more than freeing the tree).
    drop(document);
    let cluster = cluster.map_err(|failure| {
        super::inspect::print_diagnostics(&failure.diagnostics, &failure.sources);
        Exit::InvalidInput
    })?;
    super::inspect::print_diagnostics(&cluster.warnings, &cluster.sources);
    let observed = swarmctl::model::swarm::ObservedSwarm { nodes: cluster.nodes, ..Default::default() };
    let plan = swarmctl::plan::swarm::plan(&stack, &graph, &observed, &deploy_options(deploy).plan).map_err(|e| plan_error(&e, &sources))?;
    print_plan(&plan, "swarm", Some(path), engine_args.output);
    // The process ends here, and its exit frees these at once: freeing a thousand services'
    // specs piece by piece would take longer than planning them.
    std::mem::forget((stack, graph, sources, plan));
    Ok(Exit::Ok)
}

fn print_plan<O: Op>(plan: &Plan<O>, target: &str, cluster: Option<&std::path::Path>, output: Output) {
    match output {
        Output::Json => outln!("{}", serde_json::to_string_pretty(&serde_json::json!({ "target": target, "cluster": cluster, "plan": plan })).unwrap_or_default()),
        Output::Text => match cluster {
            Some(path) => outln!("target: {target}, the nodes of {} (no engine contacted)", path.display()),
            None => outln!("target: {target}"),
        },
    }
    if output == Output::Text {
        // Through a buffer of our own: stdout is line-buffered, and a large plan is thousands of
        // lines, a system call each.
        use std::io::Write as _;
        let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
        let _ = write!(out, "{plan}").and_then(|()| out.flush());
    }
}

pub async fn deploy(stack: &StackArgs, engine_args: &EngineArgs, deploy: &DeployArgs) -> Result<Exit, Exit> {
    let loaded = load(stack)?;
    with_target!(connect(engine_args).await?, |target| deploy_on(&target, &loaded, engine_args, deploy).await)
}

async fn deploy_on<T: Target>(target: &T, loaded: &swarmctl::spec::Loaded, engine_args: &EngineArgs, deploy: &DeployArgs) -> Result<Exit, Exit> {
    let mut options = deploy_options(deploy);
    options.apply.cancel = interrupt_on_signals();
    let printer = Printer::new(engine_args.output, target.name());
    let deployed = deploy::deploy(target, loaded, &options, &printer).await;
    if let Ok(deployed) = &deployed {
        explain_failures(deployed, loaded);
    }
    finish(deployed, &printer, &loaded.stack.name, &loaded.sources)
}

/// Removes what the engine holds of the stack, under the same lock as deploy.
pub async fn down(args: &StackArgs, engine_args: &EngineArgs, down: &DownArgs) -> Result<Exit, Exit> {
    let name = stack_name(args)?;
    with_target!(connect(engine_args).await?, |target| down_on(&target, &name, engine_args, down).await)
}

async fn down_on<T: Target>(target: &T, name: &str, engine_args: &EngineArgs, down: &DownArgs) -> Result<Exit, Exit> {
    let apply = ApplyOptions { cancel: interrupt_on_signals(), ..ApplyOptions::default() };
    let options = DeployOptions { lock_timeout: down.lock.lock_timeout, apply, ..DeployOptions::default() };
    let printer = Printer::new(engine_args.output, target.name());
    let removed = deploy::down(target, name, down.volumes, down.keep_history, &options, &printer).await;
    finish(removed, &printer, name, &Default::default())
}

/// Deploys an earlier revision again. Secret contents come from `--secret KEY=FILE`, else from
/// the stack's files when they still hold the content the revision used.
pub async fn rollback(args: &StackArgs, to: Option<u32>, secrets: &[String], engine_args: &EngineArgs, deploy: &DeployArgs) -> Result<Exit, Exit> {
    let name = stack_name(args)?;
    let mut given = std::collections::BTreeMap::new();
    for entry in secrets {
        let Some((key, file)) = entry.split_once('=') else {
            errln!("error: `--secret {entry}`: write KEY=FILE, e.g. `--secret db_password=./db_password.txt`");
            return Err(Exit::InvalidInput);
        };
        match swarmctl::spec::read::bytes(std::path::Path::new(file)) {
            Ok(content) => given.insert(key.to_string(), content),
            Err(why) => {
                errln!("error: `--secret {entry}`: cannot read `{file}`: {why}");
                return Err(Exit::InvalidInput);
            }
        };
    }
    let current = if args.stack.exists() { load(args).ok() } else { None };
    with_target!(connect(engine_args).await?, |target| rollback_on(&target, &name, to, &given, current.as_ref(), engine_args, deploy).await)
}

async fn rollback_on<T: Target>(
    target: &T,
    name: &str,
    to: Option<u32>,
    given: &std::collections::BTreeMap<String, Vec<u8>>,
    current: Option<&swarmctl::spec::Loaded>,
    engine_args: &EngineArgs,
    deploy: &DeployArgs,
) -> Result<Exit, Exit> {
    use swarmctl::model::stack::FileObject;
    let supply = |key: &str, wanted: &FileObject| -> Option<Vec<u8>> {
        if let Some(content) = given.get(key) {
            if FileObject::content_hash(name, key, content, true) == wanted.hash {
                return Some(content.clone());
            }
            errln!("warning: `--secret {key}=…` is not the content this revision used; ignored");
        }
        current.and_then(|loaded| swarmctl::store::snapshot::from_stack(&loaded.stack)(key, wanted))
    };
    let mut options = deploy_options(deploy);
    options.apply.cancel = interrupt_on_signals();
    let printer = Printer::new(engine_args.output, target.name());
    let deployed = deploy::rollback(target, name, to, &supply, &options, &printer).await;
    finish(deployed, &printer, name, &Default::default())
}

/// Prints the outcome of a deploy or down and picks the exit code.
fn finish<O: Op>(result: Result<Deployed<O>, DeployError>, printer: &Printer<O>, name: &str, sources: &Sources) -> Result<Exit, Exit> {
    let deployed = match result {
        Ok(deployed) => deployed,
        Err(DeployError::Store(StoreError::Busy { holder, .. })) => {
            errln!("error: another deploy of `{name}` is running ({holder})");
            errln!("  help: wait for it, or pass a longer `--lock-timeout`");
            return Err(Exit::Locked);
        }
        Err(DeployError::Plan(e)) => return Err(plan_error(&e, sources)),
        Err(DeployError::Interrupted) => {
            errln!("interrupted before anything changed");
            return Err(Exit::Interrupted);
        }
        Err(e @ (DeployError::NoRevision { .. } | DeployError::NotRestorable { .. })) => {
            errln!("error: {e}");
            errln!("  help: `swarmctl history {name}` lists the revisions");
            return Err(Exit::InvalidInput);
        }
        Err(e) => {
            errln!("error: {e}");
            return Err(Exit::Engine);
        }
    };
    printer.close_display();
    if deployed.plan.is_empty() {
        return Ok(Exit::Ok);
    }
    summarize(&deployed.plan, &deployed.report, printer.output, deployed.revision);
    if let Some(error) = &deployed.unrecorded {
        errln!("error: the stack's history: {error}");
        return Ok(Exit::Engine);
    }
    if let Some(rolled) = &deployed.rolled_back {
        let services = rolled.services.join(", ");
        match (&rolled.to, &rolled.report, &rolled.error) {
            (Some(to), Some(report), _) if report.converged() => errln!("{services} rolled back to revision {to}: converged; the deploy failed"),
            (Some(to), Some(_), _) => errln!("error: {services} rolled back to revision {to}, which did not converge either"),
            (Some(to), None, Some(error)) => errln!("error: {services} could not be rolled back to revision {to}: {error}"),
            _ => {}
        }
        return Ok(Exit::NotConverged);
    }
    let stopped = deploy::stopped_rollouts(&deployed.plan, &deployed.report);
    if !stopped.is_empty() && !deployed.report.interrupted {
        errln!(
            "the rollout of {} stopped where it was; the old replicas left keep serving (fix it and deploy again, `swarmctl rollback`, or set `x-rollout.auto_rollback: true`)",
            stopped.join(", ")
        );
    }
    Ok(if deployed.report.interrupted {
        Exit::Interrupted
    } else if deployed.report.engine_lost() {
        errln!("error: the engine stopped answering during the deploy; run it again once the engine is back");
        Exit::Engine
    } else if deployed.report.converged() {
        Exit::Ok
    } else {
        Exit::NotConverged
    })
}

/// Ctrl-C, SIGTERM (CI systems, `timeout`) and SIGHUP (a closed terminal) interrupt: nothing new
/// starts, waits end, in-flight calls finish and the revision says so. A second signal exits
/// at once.
fn interrupt_on_signals() -> CancellationToken {
    use tokio::signal::unix::{signal, SignalKind};
    let cancel = CancellationToken::new();
    let token = cancel.clone();
    let streams: Vec<_> = [SignalKind::interrupt(), SignalKind::terminate(), SignalKind::hangup()].into_iter().filter_map(|kind| signal(kind).ok()).collect();
    tokio::spawn(async move {
        let mut signals = futures::stream::select_all(streams.into_iter().map(tokio_stream_of));
        if signals.next().await.is_some() {
            errln!("interrupted: letting in-flight calls finish, starting nothing new (again to quit at once)");
            token.cancel();
        }
        if signals.next().await.is_some() {
            errln!("interrupted again: quitting now");
            std::process::exit(Exit::Interrupted as i32);
        }
    });
    cancel
}

/// A signal stream as a `futures` stream.
fn tokio_stream_of(mut signal: tokio::signal::unix::Signal) -> impl futures::Stream<Item = ()> {
    futures::stream::poll_fn(move |context| signal.poll_recv(context))
}

fn engine_error(e: engine::EngineError) -> Exit {
    errln!("error: {e}");
    Exit::Engine
}

/// Failed steps the stack's files can explain, at the key that caused them.
fn explain_failures<O: Op>(deployed: &Deployed<O>, loaded: &swarmctl::spec::Loaded) {
    let explained: Vec<_> = deployed
        .plan
        .steps
        .iter()
        .zip(&deployed.report.outcomes)
        .filter_map(|(step, outcome)| match outcome {
            StepOutcome::Failed { error, .. } => {
                let service = loaded.stack.services.get(step.service.as_deref()?)?;
                swarmctl::explain::failure(&format!("{} {}", step.op.verb(), step.op.object()), error, service)
            }
            _ => None,
        })
        .collect();
    if !explained.is_empty() {
        super::inspect::print_diagnostics(&Diagnostics(explained), &loaded.sources);
    }
}

/// Every problem at its place in the stack's files, and that nothing was changed.
fn plan_error(e: &swarmctl::plan::PlanError, sources: &Sources) -> Exit {
    super::inspect::print_diagnostics(&Diagnostics(e.problems.clone()), sources);
    errln!("nothing was changed");
    Exit::InvalidInput
}

/// What the CLI shows of a running deploy: the plan, then a live display on a terminal or one
/// line per step otherwise.
struct Printer<O> {
    output: Output,
    /// `host` or `swarm`, said before the plan.
    target: &'static str,
    display: Mutex<Option<Box<dyn Progress<O>>>>,
}

impl<O: Op> Printer<O> {
    fn new(output: Output, target: &'static str) -> Self {
        Printer { output, target, display: Mutex::new(None) }
    }

    fn show(&self, plan: &Plan<O>) {
        let display: Box<dyn Progress<O>> = if std::io::stderr().is_terminal() && self.output == Output::Text {
            Box::new(Live::new(plan))
        } else {
            Box::new(Lines::new(false))
        };
        if let Ok(mut slot) = self.display.lock() {
            *slot = Some(display);
        }
    }

    /// Ends the live display (which prints the failures it collected).
    fn close_display(&self) {
        if let Ok(mut slot) = self.display.lock() {
            slot.take();
        }
    }
}

impl<O: Op> Progress<O> for Printer<O> {
    fn started(&self, step: &Step<O>) {
        if let Ok(display) = self.display.lock() {
            if let Some(display) = display.as_ref() {
                display.started(step);
            }
        }
    }

    fn finished(&self, step: &Step<O>, outcome: &StepOutcome) {
        if let Ok(display) = self.display.lock() {
            if let Some(display) = display.as_ref() {
                display.finished(step, outcome);
            }
        }
    }
}

impl<O: Op> Reporter<O> for Printer<O> {
    fn waiting_for_lock(&self, holder: &str) {
        errln!("waiting for another deploy of this stack ({holder})");
    }

    /// The plan as text, or, when there is nothing to apply, the JSON document a reader
    /// expects anyway.
    fn planned(&self, plan: &Plan<O>) {
        match self.output {
            Output::Text => {
                outln!("target: {}", self.target);
                out!("{plan}");
            }
            Output::Json if plan.is_empty() => summarize(plan, &ApplyReport::default(), Output::Json, None),
            Output::Json => {}
        }
        self.show(plan);
    }

    fn replanned(&self, plan: &Plan<O>) {
        self.close_display();
        errln!("the engine changed while deploying; planning again:");
        err!("{plan}");
        self.show(plan);
    }

    fn rolling_back(&self, services: &[String], to: Option<u32>) {
        self.close_display();
        match to {
            Some(revision) => errln!("auto_rollback: {} back to revision {revision}", services.join(", ")),
            None => errln!("auto_rollback: no earlier revision of {} converged; nothing to go back to", services.join(", ")),
        }
    }
}

fn summarize<O: Op>(plan: &Plan<O>, report: &ApplyReport, output: Output, revision: Option<u32>) {
    if output == Output::Json {
        let json = serde_json::json!({ "plan": plan, "report": report, "revision": revision });
        outln!("{}", serde_json::to_string_pretty(&json).unwrap_or_default());
        return;
    }
    let done = report.count(|o| matches!(o, StepOutcome::Done { .. }));
    let failed = report.count(|o| matches!(o, StepOutcome::Failed { .. }));
    let skipped = report.count(|o| matches!(o, StepOutcome::Skipped { .. }));
    let not_run = report.count(|o| matches!(o, StepOutcome::NotRun));
    let verdict = match deploy::verdict(report) {
        "failed" => "did not converge",
        other => other,
    };
    let revision = revision.map(|r| format!(", revision {r}")).unwrap_or_default();
    outln!("{verdict} in {:.1}s: {done} done, {failed} failed, {skipped} skipped, {not_run} not run{revision}", report.seconds);
}

/// The stack's name: loaded from its files when the argument is a path, else taken as a name.
/// The stack's name: from its files' names when the argument is a path (they need not load:
/// a broken stack can still be brought down), else the argument is the name.
fn stack_name(args: &StackArgs) -> Result<String, Exit> {
    if args.stack.exists() {
        return swarmctl::spec::stack_name(&args.load_options()).map_err(|diagnostics| {
            super::inspect::print_diagnostics(&diagnostics, &Default::default());
            Exit::InvalidInput
        });
    }
    let name = args.name.clone().unwrap_or_else(|| args.stack.display().to_string());
    if let Err(why) = swarmctl::spec::files::check_stack_name(&name) {
        errln!("error: `{name}` is neither a stack directory nor a stack name: {why}");
        return Err(Exit::InvalidInput);
    }
    Ok(name)
}

pub async fn status(args: &StackArgs, engine_args: &EngineArgs) -> Result<Exit, Exit> {
    let name = stack_name(args)?;
    let loaded = if args.stack.exists() { load(args).ok() } else { None };
    with_target!(connect(engine_args).await?, |target| status_on(&target, &name, loaded.as_ref(), engine_args).await)
}

async fn status_on<T: Target>(target: &T, name: &str, loaded: Option<&swarmctl::spec::Loaded>, engine_args: &EngineArgs) -> Result<Exit, Exit> {
    // What the stack asks for: from its files, else from the last deploy's revision; where
    // its tasks were to go: from that revision.
    let last = target.store().revisions(name).await.ok().and_then(|mut r| r.pop());
    let desired = match loaded {
        Some(loaded) => Some(swarmctl::status::desired(&loaded.stack)),
        None => last.as_ref().map(|r| r.content.desired.clone()).filter(|d| !d.is_empty()),
    };
    let predicted = last.and_then(|r| r.content.placement);
    let observed = target.observe(name, None).await.map_err(engine_error)?;
    let status = target.status(name, &observed, desired.as_ref(), predicted.as_ref());
    if engine_args.output == Output::Json {
        outln!("{}", serde_json::to_string_pretty(&status).unwrap_or_default());
    } else {
        out!("{status}");
    }
    Ok(if status.all_ready() { Exit::Ok } else { Exit::NotConverged })
}

pub async fn history(args: &StackArgs, engine_args: &EngineArgs) -> Result<Exit, Exit> {
    let name = stack_name(args)?;
    with_target!(connect(engine_args).await?, |target| history_on(&target, &name, engine_args).await)
}

async fn history_on<T: Target>(target: &T, name: &str, engine_args: &EngineArgs) -> Result<Exit, Exit> {
    let revisions = target.store().revisions(name).await.map_err(|e| {
        errln!("error: {e}");
        Exit::Engine
    })?;
    if engine_args.output == Output::Json {
        outln!("{}", serde_json::to_string_pretty(&revisions).unwrap_or_default());
        return Ok(Exit::Ok);
    }
    if revisions.is_empty() {
        let place = if target.name() == "swarm" { "swarm" } else { "engine" };
        outln!("stack `{name}` has no revisions on this {place}");
    }
    let mut before: Option<&swarmctl::model::stack::Stack> = None;
    for r in &revisions {
        let c = &r.content;
        let when = swarmctl::model::host::unix_seconds_to_rfc3339(r.unix_time as i64);
        let now = c.stack.as_ref().map(|s| &s.stack);
        let changes = match (before, now) {
            (Some(before), Some(now)) => swarmctl::store::snapshot::changes(before, now),
            (None, Some(now)) => now.services.keys().map(|s| format!("+{s}")).collect(),
            _ => Vec::new(),
        };
        let mut what = if changes.is_empty() { "no service changed".to_string() } else { changes.join("; ") };
        if let Some(note) = &c.note {
            what = format!("{note}: {what}");
        }
        outln!("{:<4} {when}  {:<11} {:>6.1}s  {what}", r.number, c.result, c.seconds);
        before = now.or(before);
    }
    Ok(Exit::Ok)
}
