//! `sluice run`: one job on this machine without the server. The scheduler cuts a batch every
//! interval (live sources) or as fast as the job goes (deterministic ones), runs the pipeline on
//! it, sends the output to the sink, and records the figures of each batch.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde::Serialize;

use crate::engine::{Clock, EngineError, Pipeline, StageCounts, Tick};
use crate::job::spec::{SinkSpec, SourceSpec};
use crate::job::{JobPlan, ModuleResolver};
use crate::runtime::{LoadedModule, Runtime};
use crate::sink::Sink;
use crate::source::{Source, SourceError};

/// The figures of one batch (what the console and the API will show).
#[derive(Clone, Debug, Serialize)]
pub struct BatchReport {
    /// Batch id.
    pub batch_id: u64,
    /// Batch time, ms.
    pub time_ms: i64,
    /// Records the source gave.
    pub records_in: u64,
    /// Records the job output (`None`: no output at this batch).
    pub records_out: Option<u64>,
    /// Per stage.
    pub stages: Vec<StageCounts>,
    /// Time to run the stages and the sink.
    pub processing_ms: f64,
    /// How late the batch started after its time (a slow batch delays the next).
    pub scheduling_delay_ms: f64,
    /// Scheduling delay plus processing time.
    pub total_delay_ms: f64,
    /// Records refused and sent to the dead letters.
    pub dead_letters: u64,
}

/// Why a run stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// A stage failed.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The source failed.
    #[error("source: {0}")]
    Source(#[from] SourceError),
    /// Writing output failed.
    #[error("sink: {0}")]
    Sink(#[from] std::io::Error),
}

/// How long to run.
#[derive(Debug, Default)]
pub struct RunOptions {
    /// Stop after this many batches (default: a deterministic source's batches; live sources
    /// run until Ctrl-C).
    pub batches: Option<u64>,
    /// Worker threads (default: the machine's cores).
    pub workers: Option<usize>,
    /// Stops the run (after the batch in flight) when it becomes `true`; Ctrl-C always does.
    pub stop: Option<tokio::sync::watch::Receiver<bool>>,
    /// Hot-swaps to apply between batches.
    pub swaps: Option<tokio::sync::mpsc::UnboundedReceiver<Swap>>,
    /// Limits of the job's UDF calls (default: the runtime's).
    pub limits: Option<crate::runtime::CallLimits>,
}

/// A hot-swap: stage `stage` calls `udf` from the next batch on. The reply is the id of the
/// first batch the new UDF processes, or why the swap was refused.
#[derive(Debug)]
pub struct Swap {
    /// The stage's index.
    pub stage: usize,
    /// The new UDF.
    pub udf: crate::engine::context::UdfHandle,
    /// Where the answer goes.
    pub reply: tokio::sync::oneshot::Sender<Result<u64, String>>,
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

/// Runs `plan` until done; returns how many batches ran. Per-batch reports go to `on_batch`.
pub async fn run(
    plan: &JobPlan,
    runtime: Arc<Runtime>,
    io: RunIo,
    mut options: RunOptions,
    mut on_batch: impl FnMut(&BatchReport),
) -> Result<u64, RunError> {
    let RunIo {
        mut source,
        mut sink,
        mut dead_letters,
        clock,
    } = io;
    let batch_ms = plan.batch_ms;
    let live = source.is_live();
    let limit = options.batches.or(if live { None } else { source.batches_hint() });
    let zero = if live {
        clock.now_ms().div_euclid(batch_ms) * batch_ms
    } else {
        0
    };
    let limits = options
        .limits
        .clone()
        .unwrap_or_else(|| runtime.config().default_limits.clone());
    let mut pipeline: Option<Pipeline> = Some(plan.pipeline(
        runtime,
        &limits,
        options.workers.unwrap_or_else(crate::engine::workers::available_cores),
    ));
    let mut swaps = options.swaps.take();
    let mut stop_rx = options.stop.clone();
    let mut stop = Box::pin(async move {
        let asked = async {
            match stop_rx.as_mut() {
                Some(rx) => {
                    let _ = rx.wait_for(|s| *s).await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = asked => {}
        }
    });
    let mut k = 0u64;
    loop {
        if limit.is_some_and(|n| k >= n) || options.stop.as_ref().is_some_and(|rx| *rx.borrow()) {
            break;
        }
        k += 1;
        let tick = Tick {
            batch_id: k,
            time_ms: zero + k as i64 * batch_ms,
        };
        if live {
            let wait = tick.time_ms - clock.now_ms();
            if wait > 0 {
                tokio::select! {
                    _ = tokio::time::sleep(std::time::Duration::from_millis(wait as u64)) => {}
                    _ = &mut stop => break,
                }
            }
        }
        let started_ms = if live { clock.now_ms() } else { tick.time_ms };
        let input = source.next_batch(tick)?;
        let records_in = input.len() as u64;
        let t = Instant::now();
        let mut p = pipeline.take().expect("the pipeline is returned after each batch");
        // Swaps take effect at this batch boundary: the whole batch runs with one version.
        if let Some(rx) = swaps.as_mut() {
            while let Ok(swap) = rx.try_recv() {
                let answer = if p.swap_udf(swap.stage, swap.udf) {
                    Ok(tick.batch_id)
                } else {
                    Err(format!("stage {} calls no UDF", swap.stage))
                };
                let _ = swap.reply.send(answer);
            }
        }
        let (p, result) = tokio::task::spawn_blocking(move || {
            let r = p.run_batch(tick, input);
            (p, r)
        })
        .await
        .expect("the pipeline thread does not panic");
        pipeline = Some(p);
        let out = result?;
        if let Some(batch) = &out.output {
            sink.write(tick, batch)?;
        }
        for d in &out.dead_letters {
            serde_json::to_writer(&mut dead_letters, d).map_err(std::io::Error::other)?;
            dead_letters.write_all(b"\n")?;
        }
        let processing_ms = t.elapsed().as_secs_f64() * 1e3;
        let scheduling_delay_ms = (started_ms - tick.time_ms).max(0) as f64;
        let report = BatchReport {
            batch_id: tick.batch_id,
            time_ms: tick.time_ms,
            records_in,
            records_out: out.output.as_ref().map(|b| b.len() as u64),
            stages: out.counts,
            processing_ms,
            scheduling_delay_ms,
            total_delay_ms: scheduling_delay_ms + processing_ms,
            dead_letters: out.dead_letters.len() as u64,
        };
        tracing::debug!(
            batch = report.batch_id,
            records_in = report.records_in,
            records_out = ?report.records_out,
            processing_ms = report.processing_ms,
            scheduling_delay_ms = report.scheduling_delay_ms,
            "batch done"
        );
        on_batch(&report);
    }
    Ok(k)
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
                "no module `{name}`: add it to `modules` in the spec (a path to its .wasm, or builtin:examples) or pass --module {name}=PATH (known: {})",
                if known.is_empty() {
                    "none".to_owned()
                } else {
                    known.join(", ")
                }
            ));
        };
        let bytes = match location.as_str() {
            "builtin:examples" => sluice_udf_artifacts::EXAMPLES.to_vec(),
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
        SourceSpec::Socket { .. } | SourceSpec::Generator { .. } | SourceSpec::Http { .. } => {}
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
