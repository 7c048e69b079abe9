//! The job supervisor: one per running job, owning the job's whole tick (source -> pipeline ->
//! sink -> dead letters -> report) and one closed set of commands (`Stop`, `Swap`,
//! `Shutdown`). It has no thread of its own: each step (the commands that came, then every
//! batch that is due) runs in the pipeline's worker pool (the tenant's lane in the server), and
//! the process's one timer (`task.rs`) wakes it at its next batch time, or a command does at
//! once.
//!
//! Its state (`Starting`, `Running`, `Stopping`, `Stopped`, `Failed`) is changed only here, and
//! published on a watch channel; whoever started it (the server's job table, `sluice run`) only
//! sends commands and reads the state. A panic anywhere in the job ends it as `Failed` with the
//! panic's message; it never takes the process down.
//!
//! ```text
//! Starting --built--> Running --Stop--> Stopping --> Stopped
//!    |                   |--Shutdown--> Stopped (the server resumes it at its next start)
//!    |                   |--batches done--> Stopped
//!    '--error/panic------'--error/panic--> Failed{reason}
//! ```

mod checkpoints;
mod pause;
pub mod refusals;
pub mod report;
mod task;
#[cfg(test)]
mod tests;

use std::io::Write;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, TryRecvError};
use std::time::{Duration, Instant};

use serde::Serialize;

pub use checkpoints::Checkpointing;
pub use report::BatchReport;

use checkpoints::Checkpointer;
use refusals::Refusals;
use task::Task;

use crate::engine::context::UdfHandle;
use crate::engine::{Clock, DeadLetter, EngineError, Pipeline, Tick};
use crate::job::spec::RefusedLimits;
use crate::sink::Sink;
use crate::source::{Source, SourceError};

/// What a supervisor can be told.
#[derive(Debug)]
pub enum Command {
    /// Stop after the batch in flight.
    Stop,
    /// The server is shutting down: stop after the batch in flight, to be resumed at its next
    /// start.
    Shutdown,
    /// Make a stage call another UDF from the next batch on.
    Swap(Swap),
}

/// A hot-swap: stage `stage` calls `udf` from the next batch on. The reply is the id of the
/// first batch the new UDF processes, or why the swap was refused.
#[derive(Debug)]
pub struct Swap {
    /// The stage's index.
    pub stage: usize,
    /// The new UDF.
    pub udf: UdfHandle,
    /// Where the answer goes.
    pub reply: tokio::sync::oneshot::Sender<Result<u64, String>>,
}

/// Where a job is in its life.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum JobState {
    /// Its spec is being checked, its modules loaded and its source opened.
    Starting,
    /// Batches run.
    Running,
    /// It was told to stop and finishes its batch in flight.
    Stopping,
    /// It stopped.
    Stopped,
    /// Its storage failed (a full disk, an I/O error): it waits, and resumes from its last
    /// checkpoint.
    Paused {
        /// `disk_full` or `io_error`.
        code: &'static str,
        /// What failed.
        reason: String,
    },
    /// It failed.
    Failed {
        /// Why.
        reason: String,
    },
}

impl JobState {
    /// Whether the run is over.
    pub fn is_over(&self) -> bool {
        matches!(self, JobState::Stopped | JobState::Failed { .. })
    }

    /// The word the registry and the API use.
    pub fn word(&self) -> &'static str {
        match self {
            JobState::Starting => "starting",
            JobState::Running => "running",
            JobState::Stopping => "stopping",
            JobState::Paused { .. } => "paused",
            JobState::Stopped => "stopped",
            JobState::Failed { .. } => "failed",
        }
    }
}

/// How a run ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ended {
    /// A deterministic source (or `--batches`) ran out after this many batches.
    Done(u64),
    /// Told to stop.
    Stopped,
    /// Stopped by the server's shutdown.
    Shutdown,
    /// Failed: why, and for a failed UDF call the kind of failure (`timeout`, ...).
    Failed {
        /// The error, naming the stage, the UDF and the limit where there is one.
        reason: String,
        /// `UdfError::code` of a failed UDF call.
        udf_failure: Option<&'static str>,
    },
}

/// Why a batch failed.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// A stage failed.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The source failed.
    #[error("source: {0}")]
    Source(#[from] SourceError),
    /// Writing output or dead letters failed.
    #[error("sink: {0}")]
    Sink(#[from] std::io::Error),
    /// More records were refused than `max_refused` allows.
    #[error("{0}")]
    Refused(String),
    /// What the batch took from its source could not be logged.
    #[error("batch log: {0}")]
    CutLog(std::io::Error),
}

/// Where refused records go.
pub trait DeadLetterSink: Send {
    /// Takes one batch's refused records.
    fn write(&mut self, letters: &[DeadLetter]) -> std::io::Result<()>;
    /// Takes one batch's UDF log lines (and how many more were dropped); by default they go to
    /// the host's own log at debug level only (as the runtime sends every line).
    fn logs(&mut self, _lines: &[crate::engine::UdfLogLine], _dropped: u64) {}
}

/// Refused records as JSON Lines on a writer (`sluice run`).
pub struct JsonLinesDeadLetters(pub Box<dyn Write + Send>);

impl DeadLetterSink for JsonLinesDeadLetters {
    fn write(&mut self, letters: &[DeadLetter]) -> std::io::Result<()> {
        for d in letters {
            serde_json::to_writer(&mut self.0, d).map_err(std::io::Error::other)?;
            self.0.write_all(b"\n")?;
        }
        self.0.flush()
    }
}

/// What a running job reads, runs and writes.
pub struct Job {
    /// Its stages, on their workers.
    pub pipeline: Pipeline,
    /// The batch interval, ms.
    pub batch_ms: i64,
    /// Its source.
    pub source: Box<dyn Source>,
    /// Its sink.
    pub sink: Box<dyn Sink>,
    /// Where refused records go.
    pub dead_letters: Box<dyn DeadLetterSink>,
    /// Where and how often it checkpoints (none: it starts from scratch every time).
    pub checkpointing: Option<Checkpointing>,
    /// How many refused records fail it after all (under `skip`).
    pub max_refused: RefusedLimits,
}

/// What a supervisor tells whoever watches it, from the thread its step runs on.
pub trait Observer: Send + 'static {
    /// The state changed (`Running` once the job is built, then `Stopping`, `Stopped` or
    /// `Failed`; a shutdown ends in `Stopped` with `ended == Some(Ended::Shutdown)`).
    fn on_state(&mut self, _state: &JobState, _ended: Option<&Ended>) {}
    /// A batch completed.
    fn on_batch(&mut self, _report: &BatchReport) {}
    /// The job was restored from a checkpoint (before its first batch of this run).
    fn on_restored(&mut self, _meta: &crate::checkpoint::CheckpointMeta) {}
    /// A checkpoint was written.
    fn on_checkpoint(&mut self, _info: &crate::checkpoint::CheckpointInfo) {}
}

/// Settings of a run.
#[derive(Clone, Debug)]
pub struct Options {
    /// Stop after this many batches (default: a deterministic source's batches; live sources
    /// run until stopped).
    pub batches: Option<u64>,
    /// The job's name (its start thread's name, logs).
    pub name: String,
    /// How long to wait for a command at most before looking at the clock again (a manual
    /// clock in tests moves without waking anyone).
    pub poll_ms: u64,
}

/// A running supervisor, as its owner holds it.
pub struct Handle {
    commands: Sender<Command>,
    state: tokio::sync::watch::Receiver<JobState>,
    task: Arc<Task>,
}

impl Handle {
    /// Sends a command; `false` if the run is over.
    pub fn send(&self, command: Command) -> bool {
        let sent = self.commands.send(command).is_ok();
        if sent {
            self.task.wake();
        }
        sent
    }

    /// The state now.
    pub fn state(&self) -> JobState {
        self.state.borrow().clone()
    }

    /// A receiver of the state, to wait for changes.
    pub fn watch(&self) -> tokio::sync::watch::Receiver<JobState> {
        self.state.clone()
    }

    /// Waits (blocking) for the run to end.
    pub fn join(self) -> Ended {
        self.task.join()
    }
}

/// Starts a supervisor: a short-lived thread runs `build` (check the spec, load modules, open
/// the source: `Starting`) and restores the last checkpoint; from then on the job has no
/// thread of its own: its steps (batches, commands) run in its pipeline's worker pool (the
/// tenant's lane in the server), woken by the shared timer at each batch time or by a command,
/// until the source is done, a command ends it, or a batch fails.
pub fn spawn(
    options: Options,
    clock: Arc<dyn Clock>,
    build: impl FnOnce() -> Result<Job, String> + Send + 'static,
    observer: impl Observer,
) -> Handle {
    let (commands, rx) = std::sync::mpsc::channel();
    let (state_tx, state) = tokio::sync::watch::channel(JobState::Starting);
    let task = Task::new(options, clock);
    let starter = task.clone();
    std::thread::Builder::new()
        .name(format!(
            "sluice-start-{}",
            starter.options.name.chars().take(20).collect::<String>()
        ))
        .spawn(move || {
            let mut core = Core {
                commands: rx,
                state: state_tx,
                observer: Box::new(observer),
            };
            let (options, clock) = (&starter.options, &*starter.clock);
            match std::panic::catch_unwind(AssertUnwindSafe(|| Run::start(&mut core, options, clock, build))) {
                Ok(Ok(run)) => starter.begin(core, run),
                Ok(Err(ended)) => starter.end(core, ended),
                Err(panic) => starter.end(core, panicked(options, panic)),
            }
        })
        .expect("the OS can start a thread");
    Handle { commands, state, task }
}

/// A panic in the job as its end.
fn panicked(options: &Options, panic: Box<dyn std::any::Any + Send>) -> Ended {
    let message = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".into());
    tracing::error!(job = %options.name, "the job's supervisor panicked: {message}");
    Ended::Failed {
        reason: format!("internal error in the job's supervisor ({message}); the job was stopped, see the server log"),
        udf_failure: None,
    }
}

/// What survives a panic of the run: the command queue, the state and the observer.
struct Core {
    commands: Receiver<Command>,
    state: tokio::sync::watch::Sender<JobState>,
    observer: Box<dyn Observer>,
}

/// What a step of the run asks for next.
enum Step {
    /// Wake me in this many milliseconds of the job's clock (or at a command).
    Wait(i64),
    /// The run is over.
    Over(Ended),
}

/// A running job between its steps: where it is and what it keeps.
struct Run {
    job: Job,
    checkpoints: Option<Checkpointer>,
    refusals: Refusals,
    live: bool,
    limit: Option<u64>,
    /// The last batch run, and time zero.
    k: u64,
    zero: i64,
    /// Where a job without a checkpoint yet goes back to after a storage failure.
    start: pause::StartPoint,
    backoff: pause::Backoff,
    /// Storage failed and the job waits until then before going back to its last checkpoint.
    pause_until: Option<i64>,
    /// It went back after a storage failure and is `paused` until a checkpoint is written.
    paused: bool,
}

/// How long a step may run batches back to back before it lets the pool's other jobs go.
const STEP_SLICE: Duration = Duration::from_millis(50);

impl Core {
    fn set(&mut self, state: JobState, ended: Option<&Ended>) {
        self.observer.on_state(&state, ended);
        self.state.send_replace(state);
    }

    /// Handles the commands that came (without waiting), applying swaps from batch `next`;
    /// `Some` when one ends the run.
    fn commands(&mut self, job: &mut Job, next: u64) -> Option<Ended> {
        loop {
            let command = match self.commands.try_recv() {
                Ok(c) => c,
                Err(TryRecvError::Empty) => return None,
                Err(TryRecvError::Disconnected) => Command::Stop,
            };
            match command {
                Command::Stop => {
                    self.set(JobState::Stopping, None);
                    return Some(Ended::Stopped);
                }
                Command::Shutdown => return Some(Ended::Shutdown),
                Command::Swap(swap) => {
                    // Between batches: the whole next batch runs with the new version.
                    let answer = if job.pipeline.swap_udf(swap.stage, swap.udf) {
                        Ok(next)
                    } else {
                        Err(format!("stage {} calls no UDF", swap.stage))
                    };
                    let _ = swap.reply.send(answer);
                }
            }
        }
    }
}

impl Run {
    /// Builds the job, restores its last checkpoint and says it runs.
    fn start(
        core: &mut Core,
        options: &Options,
        clock: &dyn Clock,
        build: impl FnOnce() -> Result<Job, String>,
    ) -> Result<Run, Ended> {
        let failed = |reason| Ended::Failed {
            reason,
            udf_failure: None,
        };
        let mut job = build().map_err(failed)?;
        let live = job.source.is_live();
        let batch_ms = job.batch_ms;
        let mut checkpoints = job.checkpointing.take().map(Checkpointer::new);
        let restored = match checkpoints.as_mut().map(|c| c.restore(&mut job)) {
            Some(Err(reason)) => return Err(failed(reason)),
            Some(Ok(Some(meta))) => Some(meta),
            _ => None,
        };
        // Batch `k` is at `zero + k * interval`; a restored job goes on from its checkpoint's
        // batch and time zero (batches it missed while it was down run back to back).
        let (k, zero) = match &restored {
            Some(meta) => {
                core.observer.on_restored(meta);
                (meta.batch_id, meta.zero_ms)
            }
            None if live => (0, clock.now_ms().div_euclid(batch_ms) * batch_ms),
            None => (0, 0),
        };
        core.set(JobState::Running, None);
        let limit = options.batches.or(if live { None } else { job.source.batches_hint() });
        let start = pause::StartPoint {
            k,
            zero,
            position: job.source.position(),
        };
        Ok(Run {
            refusals: Refusals::new(job.max_refused),
            job,
            checkpoints,
            live,
            limit,
            k,
            zero,
            start,
            backoff: pause::Backoff::default(),
            pause_until: None,
            paused: false,
        })
    }

    fn tick(&self, k: u64) -> Tick {
        Tick {
            batch_id: k,
            time_ms: self.zero.saturating_add((k as i64).saturating_mul(self.job.batch_ms)),
        }
    }

    /// Runs what is due: commands, then the batches whose time has come (for at most
    /// `STEP_SLICE`); says when to come back.
    fn step(&mut self, core: &mut Core, options: &Options, clock: &dyn Clock) -> Step {
        let began = Instant::now();
        loop {
            if let Some(until) = self.pause_until {
                if let Some(ended) = core.commands(&mut self.job, 0) {
                    return Step::Over(ended);
                }
                let now = clock.now_ms();
                if now < until {
                    return Step::Wait(until - now);
                }
                self.pause_until = None;
                let checkpoints = self.checkpoints.as_mut().expect("only a job with checkpoints pauses");
                match pause::go_back(&mut self.job, checkpoints, &self.start) {
                    Ok((k, zero)) => {
                        (self.k, self.zero) = (k, zero);
                        self.paused = true;
                    }
                    Err(ended) => return Step::Over(ended),
                }
            }
            if self.limit.is_some_and(|n| self.k >= n) {
                return Step::Over(self.finish(core, Ended::Done(self.k)));
            }
            let tick = self.tick(self.k + 1);
            if let Some(ended) = core.commands(&mut self.job, tick.batch_id) {
                return Step::Over(self.finish(core, ended));
            }
            if self.live {
                let wait = tick.time_ms - clock.now_ms();
                if wait > 0 {
                    return Step::Wait(wait);
                }
            }
            if began.elapsed() > STEP_SLICE {
                return Step::Wait(0);
            }
            self.k += 1;
            if let Err(ended) = self.batch(core, clock, tick, &options.name) {
                return Step::Over(ended);
            }
        }
    }

    /// Runs batch `tick` and checkpoints after it; a storage failure with checkpoints pauses.
    fn batch(&mut self, core: &mut Core, clock: &dyn Clock, tick: Tick, name: &str) -> Result<(), Ended> {
        let job = &mut self.job;
        let failure = match run_tick(
            job,
            self.checkpoints.as_ref(),
            &mut self.refusals,
            clock,
            tick,
            self.live,
            name,
        ) {
            Ok(report) => {
                core.observer.on_batch(&report);
                match self.checkpoints.as_mut().map(|c| c.after(job, tick, self.zero, false)) {
                    Some(Ok(Some(info))) => {
                        core.observer.on_checkpoint(&info);
                        if self.paused {
                            // Storage works again.
                            self.paused = false;
                            self.backoff = pause::Backoff::default();
                            core.set(JobState::Running, None);
                        }
                        None
                    }
                    Some(Err(f)) => Some((f.reason, f.storage)),
                    _ => None,
                }
            }
            Err(e) => {
                let storage = pause::storage_failure(&e);
                if storage.is_none() {
                    let udf_failure = match &e {
                        RunError::Engine(EngineError::Udf { source, .. }) => Some(source.code()),
                        _ => None,
                    };
                    return Err(Ended::Failed {
                        reason: e.to_string(),
                        udf_failure,
                    });
                }
                Some((e.to_string(), storage))
            }
        };
        let Some((reason, storage)) = failure else {
            return Ok(());
        };
        // Storage failed: with checkpoints, wait and go back to the last one; without, there
        // is nothing to go back to.
        match (storage, self.checkpoints.is_some()) {
            (Some(code), true) => {
                self.pause_until = Some(core.pause(clock, code, &reason, &mut self.backoff));
                Ok(())
            }
            _ => Err(Ended::Failed {
                reason,
                udf_failure: None,
            }),
        }
    }

    /// A clean end writes a last checkpoint (of the last batch run), so the next start goes on
    /// from there.
    fn finish(&mut self, core: &mut Core, ended: Ended) -> Ended {
        let last = self.tick(self.k);
        match self.checkpoints.as_mut() {
            Some(c) if last.batch_id > 0 => match c.after(&mut self.job, last, self.zero, true) {
                Ok(info) => {
                    if let Some(info) = info {
                        core.observer.on_checkpoint(&info);
                    }
                    ended
                }
                // Storage failed: the next start goes back to the checkpoint before, and runs the
                // batches since again (exactly-once sinks skip what they hold).
                Err(f) if f.storage.is_some() => {
                    tracing::warn!(reason = f.reason, "the last checkpoint of the run was not written");
                    ended
                }
                Err(f) => Ended::Failed {
                    reason: f.reason,
                    udf_failure: None,
                },
            },
            _ => ended,
        }
    }
}

/// One batch: source, stages, sink and dead letters, all in the pipeline's worker pool.
fn run_tick(
    job: &mut Job,
    checkpoints: Option<&Checkpointer>,
    refusals: &mut Refusals,
    clock: &dyn Clock,
    tick: Tick,
    live: bool,
    name: &str,
) -> Result<BatchReport, RunError> {
    let started_ms = if live { clock.now_ms() } else { tick.time_ms };
    let t = Instant::now();
    let pool = job.pipeline.pool();
    let Job {
        pipeline,
        source,
        sink,
        dead_letters,
        ..
    } = job;
    let (records_in, out) = pool.install(|| -> Result<_, RunError> {
        let input = source.next_batch(tick)?;
        if let (Some(c), Some(cut)) = (checkpoints, source.cut()) {
            c.log_cut(tick.batch_id, &cut).map_err(RunError::CutLog)?;
            source.cut_durable();
        }
        let records_in = input.len() as u64;
        let out = pipeline.run_batch(tick, input)?;
        refusals
            .check(tick.batch_id, &out.dead_letters, &out.counts)
            .map_err(RunError::Refused)?;
        crate::failpoints::in_batch(name, tick.batch_id);
        sink.write_batch(tick, out.output.as_ref(), &out.dead_letters)?;
        if checkpoints.is_none() {
            source.cut_durable();
        }
        if !out.dead_letters.is_empty() {
            dead_letters.write(&out.dead_letters)?;
        }
        if !out.logs.is_empty() || out.logs_dropped > 0 {
            dead_letters.logs(&out.logs, out.logs_dropped);
        }
        Ok((records_in, out))
    })?;
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
        warm_instances: pipeline.warm_instances(),
        kafka: source.kafka_status(),
    };
    tracing::debug!(
        batch = report.batch_id,
        records_in = report.records_in,
        records_out = ?report.records_out,
        processing_ms = report.processing_ms,
        scheduling_delay_ms = report.scheduling_delay_ms,
        "batch done"
    );
    Ok(report)
}
