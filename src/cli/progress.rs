//! How a deploy shows its progress: a live display per service on a terminal, one line per
//! finished step otherwise (CI logs).

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use swarmctl::apply::{Progress, StepOutcome};
use swarmctl::plan::{Op, Plan, Step};

/// One line per finished step (and per wait as it begins), with the time since the start.
pub struct Lines {
    started: Instant,
    color: bool,
    printed: Mutex<()>,
}

impl Lines {
    pub fn new(color: bool) -> Self {
        Lines { started: Instant::now(), color: color && std::env::var_os("NO_COLOR").is_none(), printed: Mutex::new(()) }
    }

    fn paint(&self, code: &str, text: &str) -> String {
        if self.color { format!("\x1b[{code}m{text}\x1b[0m") } else { text.to_string() }
    }
}

impl<O: Op> Progress<O> for Lines {
    fn started(&self, step: &Step<O>) {
        if !step.op.is_mutation() {
            let _guard = self.printed.lock();
            errln!("[{:>6.1}s]   {} {} …", self.started.elapsed().as_secs_f64(), step.op.verb(), step.op.object());
        }
    }

    fn finished(&self, step: &Step<O>, outcome: &StepOutcome) {
        let _guard = self.printed.lock();
        let at = self.started.elapsed().as_secs_f64();
        match outcome {
            StepOutcome::Done { seconds } => errln!("[{at:>6.1}s] {} {} {} ({seconds:.2}s)", self.paint("32", "✓"), step.op.verb(), step.op.object()),
            StepOutcome::Failed { error, detail, .. } => {
                errln!("[{at:>6.1}s] {} {} {}: {error}", self.paint("31", "✗"), step.op.verb(), step.op.object());
                for line in detail {
                    errln!("           | {line}");
                }
            }
            StepOutcome::Skipped { because } => errln!("[{at:>6.1}s] - {} {} skipped (step #{because} failed)", step.op.verb(), step.op.object()),
            StepOutcome::NotRun => {}
        }
    }
}

/// A line per service that says what it is doing now: pending, creating, waiting healthy, done
/// (with its time) or failed (with why). Failure details are printed in full when it ends.
pub struct Live {
    bars: BTreeMap<String, ServiceBar>,
    _display: MultiProgress,
    failures: Mutex<Vec<String>>,
}

struct ServiceBar {
    bar: ProgressBar,
    total: usize,
    state: Mutex<(usize, Option<Instant>)>,
}

const STACK: &str = "(stack)";

impl Live {
    pub fn new<O: Op>(plan: &Plan<O>) -> Self {
        let display = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
        let style = ProgressStyle::with_template("{spinner} {prefix:<24} {wide_msg} {elapsed:>4}").unwrap_or_else(|_| ProgressStyle::default_spinner());
        let mut totals: BTreeMap<String, usize> = BTreeMap::new();
        for step in &plan.steps {
            *totals.entry(step.service.clone().unwrap_or_else(|| STACK.into())).or_default() += 1;
        }
        let bars = totals
            .into_iter()
            .map(|(service, total)| {
                let bar = display.add(ProgressBar::new_spinner().with_style(style.clone()).with_prefix(service.clone()).with_message("pending"));
                bar.enable_steady_tick(Duration::from_millis(120));
                (service, ServiceBar { bar, total, state: Mutex::new((0, None)) })
            })
            .collect();
        Live { bars, _display: display, failures: Mutex::new(Vec::new()) }
    }

    fn bar<O>(&self, step: &Step<O>) -> Option<&ServiceBar> {
        self.bars.get(step.service.as_deref().unwrap_or(STACK))
    }
}

impl<O: Op> Progress<O> for Live {
    fn started(&self, step: &Step<O>) {
        if let Some(service) = self.bar(step) {
            if let Ok(mut state) = service.state.lock() {
                state.1.get_or_insert_with(Instant::now);
            }
            let doing = match step.op.verb() {
                "create container" => "creating".to_string(),
                "start container" => "starting".to_string(),
                verb if verb.starts_with("wait ") => format!("waiting {}", &verb[5..]),
                verb => verb.to_string(),
            };
            service.bar.set_message(format!("{doing} {}", step.op.object()));
        }
    }

    fn finished(&self, step: &Step<O>, outcome: &StepOutcome) {
        let Some(service) = self.bar(step) else { return };
        match outcome {
            StepOutcome::Done { .. } => {
                let Ok(mut state) = service.state.lock() else { return };
                state.0 += 1;
                if state.0 == service.total {
                    let seconds = state.1.map_or(0.0, |t| t.elapsed().as_secs_f64());
                    service.bar.finish_with_message(format!("✓ done in {seconds:.1}s"));
                }
            }
            StepOutcome::Failed { error, detail, .. } => {
                service.bar.abandon_with_message(format!("✗ failed: {} {}", step.op.verb(), step.op.object()));
                if let Ok(mut failures) = self.failures.lock() {
                    failures.push(format!("✗ {}: {error}", step.op.object()));
                    failures.extend(detail.iter().map(|l| format!("  | {l}")));
                }
            }
            StepOutcome::Skipped { because } => {
                if !service.bar.is_finished() {
                    service.bar.abandon_with_message(format!("- skipped (step #{because} failed)"));
                }
            }
            StepOutcome::NotRun => {}
        }
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        for service in self.bars.values() {
            if !service.bar.is_finished() {
                service.bar.abandon_with_message("- not run");
            }
        }
        if let Ok(failures) = self.failures.lock() {
            for line in failures.iter() {
                errln!("{line}");
            }
        }
    }
}
