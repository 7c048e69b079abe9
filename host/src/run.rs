//! `sluice run`: one job on this machine without the server, on a job supervisor
//! (`supervisor.rs`) like a server job: batches every interval (live sources) or as fast as the
//! job goes (deterministic ones), output to the spec's sink, refused records as JSON Lines.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

pub use crate::supervisor::BatchReport;

use crate::engine::Clock;
use crate::job::spec::{SinkSpec, SourceSpec};
use crate::job::{JobPlan, ModuleResolver};
use crate::runtime::{LoadedModule, Runtime};
use crate::sink::Sink;
use crate::source::Source;
use crate::supervisor::{self, Ended, Job, JsonLinesDeadLetters, Observer};

/// How long to run.
#[derive(Debug, Default)]
pub struct RunOptions {
    /// Stop after this many batches (default: a deterministic source's batches; live sources
    /// run until stopped).
    pub batches: Option<u64>,
    /// Worker threads (default: the machine's cores).
    pub workers: Option<usize>,
    /// Limits of the job's UDF calls (default: the runtime's).
    pub limits: Option<crate::runtime::CallLimits>,
    /// Checkpoints (`--checkpoint FILE`): the run resumes from the last one and writes new ones.
    pub checkpointing: Option<supervisor::Checkpointing>,
}

/// Where a run reads from and writes to.
pub struct RunIo {
    /// The job's source.
    pub source: Box<dyn Source>,
    /// The job's sink.
    pub sink: Box<dyn Sink>,
    /// Where refused records go (JSON Lines).
    pub dead_letters: Box<dyn Write + Send>,
    /// Where time comes from.
    pub clock: Arc<dyn Clock>,
}

/// Batch reports to a closure; counts the batches.
struct Reports<F> {
    on_batch: F,
    done: Arc<AtomicU64>,
}

impl<F: FnMut(&BatchReport) + Send + 'static> Observer for Reports<F> {
    fn on_batch(&mut self, report: &BatchReport) {
        self.done.fetch_add(1, Ordering::Relaxed);
        (self.on_batch)(report);
    }
}

/// A local run in progress.
pub struct Running {
    handle: supervisor::Handle,
    done: Arc<AtomicU64>,
}

impl Running {
    /// Asks the run to stop after its batch in flight.
    pub fn stop(&self) {
        self.handle.send(supervisor::Command::Stop);
    }

    /// A receiver of the run's state.
    pub fn watch(&self) -> tokio::sync::watch::Receiver<supervisor::JobState> {
        self.handle.watch()
    }

    /// Waits for the run to end: how many batches ran, or why it failed.
    pub fn wait(self) -> Result<u64, String> {
        match self.handle.join() {
            Ended::Failed { reason, .. } => Err(reason),
            Ended::Done(_) | Ended::Stopped | Ended::Shutdown => Ok(self.done.load(Ordering::Relaxed)),
        }
    }
}

/// Starts `plan` on a supervisor of its own; per-batch reports go to `on_batch`.
pub fn start(
    plan: &JobPlan,
    runtime: Arc<Runtime>,
    io: RunIo,
    options: RunOptions,
    on_batch: impl FnMut(&BatchReport) + Send + 'static,
) -> Running {
    let limits = options
        .limits
        .clone()
        .unwrap_or_else(|| runtime.config().default_limits.clone());
    let workers = options.workers.unwrap_or_else(crate::engine::workers::available_cores);
    let pipeline = plan.pipeline(runtime, &limits, workers);
    let job = Job {
        pipeline,
        batch_ms: plan.batch_ms,
        source: io.source,
        sink: io.sink,
        dead_letters: Box::new(JsonLinesDeadLetters(io.dead_letters)),
        checkpointing: options.checkpointing.clone(),
        max_refused: plan.spec.max_refused.unwrap_or_default(),
    };
    let done = Arc::new(AtomicU64::new(0));
    let handle = supervisor::spawn(
        supervisor::Options {
            batches: options.batches,
            name: plan.spec.name.clone(),
            poll_ms: 50,
        },
        io.clock,
        move || Ok(job),
        Reports {
            on_batch,
            done: done.clone(),
        },
    );
    Running { handle, done }
}

/// Runs `plan` until done (blocking); returns how many batches ran.
pub fn run(
    plan: &JobPlan,
    runtime: Arc<Runtime>,
    io: RunIo,
    options: RunOptions,
    on_batch: impl FnMut(&BatchReport) + Send + 'static,
) -> Result<u64, String> {
    start(plan, runtime, io, options, on_batch).wait()
}

/// Modules for a local run: by name, from a path or `builtin:examples`, each at version 1.
pub struct LocalModules {
    runtime: Arc<Runtime>,
    paths: BTreeMap<String, String>,
    base: PathBuf,
    loaded: Mutex<HashMap<String, Arc<LoadedModule>>>,
}

impl LocalModules {
    /// Modules named in `paths`; relative paths are taken from `base` (the spec's directory).
    pub fn new(runtime: Arc<Runtime>, paths: BTreeMap<String, String>, base: PathBuf) -> LocalModules {
        LocalModules {
            runtime,
            paths,
            base,
            loaded: Mutex::default(),
        }
    }
}

impl ModuleResolver for LocalModules {
    fn resolve(&self, reference: &str) -> Result<Arc<LoadedModule>, String> {
        let (name, version) = reference.split_once('@').unwrap_or((reference, "latest"));
        if !matches!(version, "latest" | "1") {
            return Err(format!(
                "a local run has one version of each module (1): write `{name}@1`, `{name}@latest` or `{name}`"
            ));
        }
        if let Some(m) = self.loaded.lock().expect("modules lock").get(name) {
            return Ok(m.clone());
        }
        let Some(location) = self.paths.get(name) else {
            let known: Vec<_> = self.paths.keys().cloned().collect();
            return Err(format!(
                "no module `{name}`: add it to `modules` in the spec (a path to its .wasm, builtin:examples or builtin:nexmark) or pass --module {name}=PATH (known: {})",
                if known.is_empty() {
                    "none".to_owned()
                } else {
                    known.join(", ")
                }
            ));
        };
        let bytes = match location.as_str() {
            "builtin:examples" => sluice_udf_artifacts::EXAMPLES.to_vec(),
            "builtin:nexmark" => sluice_udf_artifacts::NEXMARK.to_vec(),
            path => std::fs::read(self.base.join(path)).map_err(|e| {
                format!(
                    "cannot read module `{name}` from {}: {e}",
                    self.base.join(path).display()
                )
            })?,
        };
        let module = self
            .runtime
            .load(&format!("{name}@1"), &bytes)
            .map_err(|e| format!("module `{name}`: {e}"))?;
        self.loaded
            .lock()
            .expect("modules lock")
            .insert(name.to_owned(), module.clone());
        Ok(module)
    }
}

/// Makes the spec's input paths (batches file, directory) relative to `base`.
pub fn rebase_inputs(source: &mut SourceSpec, base: &Path) {
    match source {
        SourceSpec::Batches { path } | SourceSpec::Directory { path } => {
            *path = base.join(&*path).display().to_string();
        }
        SourceSpec::Union(parts) => parts.iter_mut().for_each(|p| rebase_inputs(p, base)),
        SourceSpec::Socket { .. }
        | SourceSpec::Generator { .. }
        | SourceSpec::Nexmark(_)
        | SourceSpec::Http { .. }
        | SourceSpec::Kafka(_) => {}
    }
}

/// The dead-letter writer a spec asks for (stderr by default).
pub fn dead_letter_writer(spec: Option<&SinkSpec>) -> std::io::Result<Box<dyn Write + Send>> {
    Ok(match spec {
        Some(SinkSpec::Jsonl { path: Some(p) }) if p != "-" => {
            Box::new(std::fs::OpenOptions::new().create(true).append(true).open(p)?)
        }
        _ => Box::new(std::io::stderr()),
    })
}
